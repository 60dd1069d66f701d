#!/bin/bash
# The benchmark run on a lent GPU machine (NVIDIA, EGL; see docs/SCALE.md and benchmarks/RESULTS_GPU.md).
#
# Run from the repository root on that machine, with these ignored folders beside the code:
#   .gl/     Debian's GL loader packages (libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
#   .whl/    wheels the machine's Python lacks (moderngl, glcontext, smplx, trimesh,
#            imageio-ffmpeg, pyrender, PyOpenGL 3.1.0, pyglet, freetype-py, iopath)
#   .devrun/pytorch3d_src.tar.gz  optional: PyTorch3D's source, built here for the GPU
# MediaPipe cannot be installed there: the photo's detections are replayed from
# benchmarks/device/detections.npz (mediapipe_replay.py says why and what that leaves out).
# Results go to $OUT (default /tmp/gpu_out).
set -u
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
ROOT=$PWD
export PYTHONUNBUFFERED=1
step() { echo; echo "=== $* ($(date -u +%T))"; }

PIN_BENCH=""; PIN_BUILD=""
if command -v taskset >/dev/null; then PIN_BENCH="taskset -c 0-7"; PIN_BUILD="taskset -c 8-15"; fi

step "GL loaders and wheels"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -f "$vendor" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$vendor
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$ROOT/benchmarks/device:$ROOT:/tmp/site
export FLAME_TRANSIT_REPLAY_DETECTIONS=$ROOT/benchmarks/device/detections.npz
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
nproc | tee -a "$OUT/gpu.txt"

step "GL context on the GPU's EGL"
timeout 60 python3 - <<'EOF' 2>&1 | tee -a "$OUT/gpu.txt"
import numpy as np, torch
from flame_transit.render import get_renderer
print("numpy", np.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available())
with get_renderer("gl") as r:
    img = r.render(np.array([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.0, 0.5, 0.0]]), np.array([[0, 1, 2]]), size=64)
    print("gl device:", r.device_info, "| drawn pixels:", int((np.asarray(img)[..., :3] != np.asarray(img)[0, 0, :3]).any(-1).sum()))
EOF

P3D=/tmp/p3d
if [ -f .devrun/pytorch3d_src.tar.gz ]; then
  step "PyTorch3D build (background, CPUs 8-15, at most ${P3D_BUILD_S:-240} s)"
  (mkdir -p /tmp/p3d_src && cd /tmp/p3d_src && tar xzf "$ROOT/.devrun/pytorch3d_src.tar.gz" \
     && FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=8 $PIN_BUILD timeout "${P3D_BUILD_S:-240}" \
        python3 -m pip install -q --no-build-isolation --no-deps --no-cache-dir --target $P3D . ;
   echo "build rc=$?") > "$OUT/p3d_build.log" 2>&1 &
  BUILD=$!
fi

step "benchmarks: lbs, render, clips (GL on the GPU; CPUs 0-7)"
$PIN_BENCH timeout 240 python3 -m benchmarks --only lbs,render,clips --out "$OUT/RESULTS_GPU.md" --json "$OUT/gpu.json" 2>&1 \
  | grep -v "^USDT" | tee "$OUT/bench.log"

if [ -n "${BUILD:-}" ]; then
  step "waiting for the PyTorch3D build"
  wait "$BUILD"; tail -5 "$OUT/p3d_build.log"
  if PYTHONPATH=$PYTHONPATH:$P3D python3 -c "from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes"; then
    export PYTHONPATH=$PYTHONPATH:$P3D
    step "tests/render/test_torch3d.py on the real PyTorch3D (CUDA)"
    timeout 60 python3 -m pytest -q -x -p no:cacheprovider tests/render/test_torch3d.py 2>&1 | tail -15 | tee "$OUT/p3d_tests.log"
    step "100 clips through PyTorch3D"
    timeout 100 python3 -m benchmarks.bench_clips --clips 100 --renderer pytorch3d 2>&1 | grep -v "^USDT" | tee "$OUT/clips_p3d.md"
  fi
fi

step "warm clip end to end (quick; with PyTorch3D when it built)"
$PIN_BENCH timeout 100 python3 -m benchmarks --quick --only e2e --out "$OUT/RESULTS_GPU_e2e.md" 2>&1 | grep -v "^USDT" | tee -a "$OUT/bench.log"

step "tests/render with the GL backend on the GPU"
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/render 2>&1 | tail -15 | tee "$OUT/render_tests.log"
step done
