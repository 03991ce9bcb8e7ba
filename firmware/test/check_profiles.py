#!/usr/bin/env python3
"""Every bundled board profile (hardware/boards/*.toml) must load in the firmware core.

The agent turns a profile into the entity spec (`python -m edge.boards spec`); the firmware and the simulator
parse it with EntityTable::load. This runs both for real: the spec from edge.boards, parsed by the simulator
binary (built from the same core as the firmware). Exit 77 (ctest: skipped) when edge.boards is unavailable.

usage: check_profiles.py PATH/TO/hearth-board-sim REPO_ROOT
"""

import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    sim, repo = sys.argv[1], Path(sys.argv[2])
    profiles = sorted(p.stem for p in (repo / "hardware" / "boards").glob("*.toml"))
    if not profiles:
        print("check_profiles: no bundled profiles; skipped")
        return 77
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in profiles:
            spec = Path(tmp) / f"{name}.spec"
            gen = subprocess.run([sys.executable, "-m", "edge.boards", "spec", "--board", name, "--out", str(spec)],
                                 cwd=repo, capture_output=True, text=True)
            if gen.returncode != 0:
                if "No module named" in gen.stderr:
                    print(f"check_profiles: edge.boards not importable here ({gen.stderr.strip()}); skipped")
                    return 77
                print(f"FAIL {name}: edge.boards could not write the spec: {gen.stderr.strip()}")
                failed += 1
                continue
            run = subprocess.run([sim, "--spec", str(spec), "--no-serial"], stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True, timeout=30)
            if run.returncode != 0 or "ready" not in run.stdout:
                print(f"FAIL {name}: the firmware core rejects its spec: {run.stderr.strip()}")
                failed += 1
            else:
                print(f"ok   {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
