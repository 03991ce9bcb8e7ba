#!/usr/bin/env bash
# Build and flash one board:  scripts/flash.sh --board relay-board --port /dev/ttyUSB0 [--image merged.bin]
# Installs the pinned esptool (the `boards` extra) into the virtualenv on first use. Without PlatformIO
# (`pip install platformio`) pass --image with a prebuilt merged image. Profiles: hardware/boards/*.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HEARTH_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "flash.sh: $VENV is missing: run 'bash scripts/setup.sh --no-demo' first" >&2
  exit 2
fi
if ! "$VENV/bin/python" -c "import esptool" 2>/dev/null; then
  echo "flash.sh: installing esptool (pip install -e '.[boards]')" >&2
  "$VENV/bin/python" -m pip --disable-pip-version-check -q install -c scripts/constraints.txt -e ".[boards]"
fi
export PATH="$(cd "$VENV/bin" && pwd):$PATH"  # so the venv's esptool is the one found
if "$VENV/bin/hearth" boards flash --help >/dev/null 2>&1; then
  exec "$VENV/bin/hearth" boards flash "$@"
fi
exec "$VENV/bin/python" -m edge.flash "$@"  # same code path, for checkouts whose CLI lacks `boards flash`
