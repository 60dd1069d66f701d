#!/usr/bin/env bash
# The flame-transit command line, one step per use: info, render, export, batch.
#
#   bash examples/cli.sh            # full-size run into ./out/cli/
#   FPS=8 DURATION=0.5 SIZE=128 bash examples/cli.sh   # a quick run
#   bash examples/cli.sh --help
#
# Settings come from environment variables (defaults in brackets):
#   IMAGE     face photo                     [examples/face.jpg, bundled]
#   OUT       output folder                  [out/cli]
#   FPS       frames per second              [24]
#   DURATION  seconds per transition         [1.5]
#   SIZE      rendered frame size in pixels  [384]
#   PYTHON    the Python with flame_transit  [python]
#   FT        how to call the CLI            [flame-transit, else "$PYTHON -m flame_transit"]
#
# Everything runs offline on a CPU. The jobs below pass --quiet (no progress bars); add -v
# before a subcommand to log what happens (renderer, timings).
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE="${IMAGE:-$HERE/face.jpg}"
OUT="${OUT:-out/cli}"
FPS="${FPS:-24}"
DURATION="${DURATION:-1.5}"
SIZE="${SIZE:-384}"
PYTHON="${PYTHON:-python}"
if [[ -z "${FT:-}" ]]; then
    if command -v flame-transit >/dev/null 2>&1; then FT="flame-transit"; else FT="$PYTHON -m flame_transit"; fi
fi
# shared options of every job (fps, seconds per transition, no progress bars)
TIMING=(--fps "$FPS" --duration "$DURATION" --quiet)

mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*"; }

step "1. what is installed: head model, its dimensions, optional assets (FLAME, DECA, CLIP), renderer"
$FT info

step "2. render: photo + instruction -> video, plus a contact sheet and the expression plot"
$FT render --image "$IMAGE" --instruction "turn this face from disgust to happiness" \
    --out "$OUT/clip.mp4" --sheet "$OUT/sheet.png" --plot "$OUT/trajectory.png" \
    --size "$SIZE" "${TIMING[@]}"

step "3. export the transition as parameters + meshes: .npz, animated .glb, a folder of .obj"
# one job is:  $FT export --image "$IMAGE" --instruction "..." --out anim.glb  (like step 2);
# here the same job to all three formats as a CSV batch (see step 4), so models load once
INSTR="change this face from anger to surprise"
# (relative image and out paths in a CSV are read from the CSV's folder, here $OUT)
cat > "$OUT/exports.csv" <<EOF
image,instruction,out
$IMAGE,$INSTR,anim.npz
$IMAGE,$INSTR,anim.glb
$IMAGE,$INSTR,anim_obj/
EOF
$FT export --batch "$OUT/exports.csv" "${TIMING[@]}"

step "4. batch: one job per CSV row (columns image,instruction[,out]; no image = the bundled head)"
# the options apply to every row: here the shaded mesh look, a different sample (--seed) and a
# pass through the subject's neutral face between expressions (--through-neutral)
cat > "$OUT/jobs.csv" <<EOF
image,instruction,out
$IMAGE,"from sad to neutral, then very happy",batch/sad_to_happy.gif
,slightly happy then surprised,batch/bundled_head.mp4
EOF
$FT render --batch "$OUT/jobs.csv" --out "$OUT/batch" --look shaded --through-neutral --seed 1 \
    --size "$SIZE" "${TIMING[@]}"

step "5. read the .npz back (plain numpy, no pickle)"
"$PYTHON" - "$OUT/anim.npz" <<'EOF'
import sys
import numpy as np

with np.load(sys.argv[1]) as d:
    print(f"instruction {str(d['instruction'])!r}, {len(d['times'])} frames at {float(d['fps']):g} fps")
    for key in ("shape", "expression", "pose", "jaw_pose", "cam", "vertices", "faces"):
        print(f"  {key:10s} {d[key].shape}")
    print(f"  keyframes {list(d['anchor_labels'])} at frames {list(d['anchor_frames'])}")
EOF

step "done: outputs in $OUT"
ls -R "$OUT" | head -40
