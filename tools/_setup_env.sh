# Sourced by tools/test.sh and tools/quickstart.sh: system GL libraries, a virtualenv, the package.
VENV="${FLAME_TRANSIT_VENV:-.venv}"
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
python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
# The CPU wheel of torch first, so no dependency pulls a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0" 2>&1 | grep -v '^WARNING: Location' || true
python -m pip install -q -e ".[test]" 2>&1 | grep -v '^WARNING: Location' || true
