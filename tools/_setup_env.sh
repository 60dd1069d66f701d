# Sourced by tools/test.sh and tools/quickstart.sh: system GL libraries, a virtualenv, the package.
VENV="${FLAME_TRANSIT_VENV:-.venv}"

_pip() {  # pip, quiet, with this machine's noisy index warnings filtered; fails loudly
  local log
  log="$(mktemp)"
  if ! python -m pip install -q "$@" >"$log" 2>&1; then
    grep -v '^WARNING: Location' "$log" >&2; rm -f "$log"; return 1
  fi
  grep -v '^WARNING: Location' "$log" || true
  rm -f "$log"
}

if ! ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing the offscreen GL libraries (libegl1 libgl1 libgl1-mesa-dri)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libgl1 libgl1-mesa-dri >/dev/null
  else
    echo "[setup] warning: libEGL not found; run: sudo apt-get install libegl1 libgl1 libgl1-mesa-dri" >&2
  fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
_pip --upgrade pip
# The CPU wheel of torch first, so no dependency pulls a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || _pip "torch==2.13.0"
_pip -e ".[test]"
