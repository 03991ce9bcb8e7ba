#!/usr/bin/env bash
# Host build of the firmware core: configure into firmware/build-host/, build the core, the unit tests, the
# board simulator and the Arduino compile check (all with AddressSanitizer + UBSan), then run ctest.
# Exits non-zero on any failure. Needs: g++, cmake, libgtest-dev, libmosquitto-dev (mosquitto for the
# simulator's MQTT test; without it that part is skipped). The ESP32 build itself is `pio run` in firmware/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=firmware/build-host
SANITIZE=${HEARTH_SANITIZE:-ON}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || missing+=(g++)
[ -f /usr/include/mosquitto.h ] || missing+=(libmosquitto-dev)
[ -d /usr/include/gtest ] || missing+=(libgtest-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "build_firmware.sh: missing ${missing[*]}: sudo apt-get install -y ${missing[*]} mosquitto" >&2
  exit 2
fi

cmake -S firmware -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_SANITIZE="$SANITIZE"
cmake --build "$BUILD" -j "$JOBS"
ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS"
echo "build_firmware.sh: all firmware tests passed"
echo "simulator: $(cd "$BUILD" && pwd)/hearth-board-sim"
