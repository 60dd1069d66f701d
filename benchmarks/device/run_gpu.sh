#!/bin/bash
# The benchmark run on a lent GPU machine (NVIDIA, EGL); its results are benchmarks/RESULTS_GPU.md.
#
# Run from the repository root on that machine, with these ignored folders beside the code:
#   .gl/     Debian's GL loader packages (libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
#   .whl/    wheels the machine's Python lacks (moderngl, glcontext, smplx, trimesh,
#            imageio-ffmpeg, pyrender, PyOpenGL 3.1.0, pyglet, freetype-py, iopath)
#   .devrun/prepare.sh  optional: run in the background at the start to put more packages
#            (PyTorch3D built on the machine, say) into /tmp/extra, which is on PYTHONPATH
# MediaPipe cannot be installed there: the photo's detections are replayed from
# benchmarks/device/detections.npz (mediapipe_replay.py says why and what that leaves out).
# BEFORE and AFTER are the benchmark sections run before and after prepare.sh has finished;
# P3D_CLIPS the clips of the PyTorch3D batch; AB=1 runs renderers_ab.py (AB_ARGS=--profile adds
# its cProfile); E2E=0 and TESTS=0 skip the end-to-end section and tests/render. Only the first
# 8 files by name came back from the lent machine's $OUT: keep what matters to the fewest files.
# Results go to $OUT (default /tmp/gpu_out).
set -u -o pipefail  # a step's timeout (124) reaches its '|| failed' marker through grep and tee
OUT=${OUT:-/tmp/gpu_out}
BEFORE=${BEFORE-lbs,render}  # set and empty: none
AFTER=${AFTER-clips}
mkdir -p "$OUT"
ROOT=$PWD
export PYTHONUNBUFFERED=1
step() { echo; echo "=== $* ($(date -u +%T))"; }
unprofiled() { grep -v "^USDT" || true; }  # torch's profiler markers; no line left is no failure
failed() { echo "!!! the step above exited with $1 (124: its time limit)" | tee -a "$OUT/failures.txt"; }
bench() {  # bench NAME SECTIONS [--quick]: python -m benchmarks into $OUT/NAME.md
  if [ -n "$2" ]; then
    timeout "${BENCH_S:-240}" python3 -m benchmarks --only "$2" ${3:-} --out "$OUT/$1.md" \
      --json "$OUT/$1.json" 2>&1 | unprofiled | tee -a "$OUT/bench.log" || failed $?
  fi
}

step "GL loaders and wheels"
ls .gl/*.deb >/dev/null 2>&1 || { echo "no .gl/*.deb: put Debian's GL loader packages there (see above)"; exit 1; }
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -f "$vendor" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$vendor
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$ROOT/benchmarks/device:$ROOT:/tmp/site:/tmp/extra
export FLAME_TRANSIT_REPLAY_DETECTIONS=$ROOT/benchmarks/device/detections.npz
export PYGLET_HEADLESS=1  # pyrender imports pyglet's window module, which otherwise needs X11's libraries
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"

step "GL context on the GPU's EGL"
timeout 60 python3 - <<'EOF' 2>&1 | tee -a "$OUT/gpu.txt"
import numpy as np, torch
from flame_transit.render import get_renderer
print("numpy", np.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available())
with get_renderer("gl") as r:
    img = r.render(np.array([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.0, 0.5, 0.0]]), np.array([[0, 1, 2]]), size=64)
    print("gl device:", r.device_info, "| drawn pixels:", int((np.asarray(img)[..., :3] != np.asarray(img)[0, 0, :3]).any(-1).sum()))
EOF
rc=$?; [ $rc = 0 ] || failed $rc

if [ -f .devrun/prepare.sh ]; then
  step "prepare.sh (background)"
  (bash .devrun/prepare.sh; echo "prepare rc=$?") > "$OUT/prepare.log" 2>&1 &
  PREPARE=$!
fi

step "benchmarks before prepare.sh: $BEFORE"
bench gpu_before "$BEFORE"
if [ -n "${PREPARE:-}" ]; then step "waiting for prepare.sh"; wait "$PREPARE"; tail -3 "$OUT/prepare.log"; fi
step "benchmarks after prepare.sh: $AFTER"
bench gpu_after "$AFTER"

if python3 -c "from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes" 2>/dev/null; then
  step "tests/render/test_torch3d.py on PyTorch3D (CUDA)"
  timeout 90 python3 -m pytest -q -p no:cacheprovider tests/render/test_torch3d.py 2>&1 | tail -15 | tee "$OUT/p3d_tests.log" || failed $?
  if [ "${AB:-0}" = 1 ]; then
    step "one clip's frames through each renderer"
    timeout 90 python3 benchmarks/device/renderers_ab.py --rounds "${AB_ROUNDS:-3}" ${AB_ARGS:-} 2>&1 | unprofiled | tee "$OUT/renderers_ab.txt" || failed $?
  fi
  step "${P3D_CLIPS:-100} clips through PyTorch3D"
  timeout "${P3D_CLIPS_S:-120}" python3 -m benchmarks.bench_clips --clips "${P3D_CLIPS:-100}" --renderer pytorch3d 2>&1 \
    | unprofiled | tee "$OUT/clips_p3d.md" || failed $?
fi

if [ "${E2E:-1}" = 1 ]; then
  step "warm clip end to end (quick; also through PyTorch3D when it is importable)"
  BENCH_S=100 bench gpu_e2e e2e --quick
fi

if [ "${TESTS:-1}" = 1 ]; then
  step "tests/render on the GPU (GL and, when importable, PyTorch3D)"
  timeout 90 python3 -m pytest -q -p no:cacheprovider tests/render 2>&1 | tail -15 | tee "$OUT/render_tests.log" || failed $?
fi
step done
