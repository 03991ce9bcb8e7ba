"""PlatformIO pre-build hook: write include/board_profile.h from the board profile.

The profile is $HEARTH_BOARD if set (a name in hardware/boards/ or a path to a .toml), else the env's
`custom_hearth_board`. The header is produced by the agent's own code (`python -m edge.boards header`), so the
firmware, the simulator and the agent read one validated description of the board. edge.boards only rewrites
the file when its content changes, so unchanged profiles do not trigger a rebuild.
"""

import os
import subprocess
import sys
from pathlib import Path

Import("env")  # noqa: F821  (provided by PlatformIO's SCons)

project = Path(env.subst("$PROJECT_DIR"))  # noqa: F821
repo = project.parent
board = os.environ.get("HEARTH_BOARD") or env.GetProjectOption("custom_hearth_board", "relay-board")  # noqa: F821
out = project / "include" / "board_profile.h"


def python() -> str:
    """The repository's virtualenv if there is one (edge.boards needs Python >= 3.11 for tomllib)."""
    explicit = os.environ.get("HEARTH_PYTHON")
    if explicit:
        return explicit
    for candidate in (repo / ".venv" / "bin" / "python", repo / ".venv" / "Scripts" / "python.exe"):
        if candidate.exists():
            return str(candidate)
    return sys.executable


cmd = [python(), "-m", "edge.boards", "header", "--board", board, "--out", str(out)]
result = subprocess.run(cmd, cwd=repo)
if result.returncode != 0:
    sys.stderr.write(
        f"gen_profile.py: `{' '.join(cmd)}` failed (exit {result.returncode}); fix the profile "
        f"hardware/boards/{board}.toml or set HEARTH_BOARD / HEARTH_PYTHON\n"
    )
    env.Exit(1)  # noqa: F821
print(f"gen_profile.py: {out.relative_to(repo)} from profile {board}")
