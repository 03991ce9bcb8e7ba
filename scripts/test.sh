#!/usr/bin/env bash
# The whole test suite (needs scripts/setup.sh to have run once). Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${HEARTH_VENV:-.venv}
if [ ! -x "$VENV/bin/pytest" ]; then
  echo "test.sh: $VENV is missing: run 'bash scripts/setup.sh --no-demo' first" >&2
  exit 2
fi
"$VENV/bin/ruff" check edge cloud_sync tests benchmarks || exit 1
"$VENV/bin/mypy" || exit 1
# Firmware core: C++ unit tests (ctest) and the board simulator that the Python tests below drive.
PATH="$PWD/$VENV/bin:$PATH" bash scripts/build_firmware.sh || exit 1
"$VENV/bin/pytest" -q -p no:cacheprovider "$@"
rc=$?
# pytest exits 5 when it collected no test: that is a failure for us, not a pass.
if [ "$rc" = 5 ]; then echo "test.sh: no tests were collected" >&2; exit 1; fi
exit $rc
