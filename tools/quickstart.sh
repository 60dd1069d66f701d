#!/usr/bin/env bash
# Set up a fresh environment and render the example clip (the README's main command).
#   bash tools/quickstart.sh ["instruction"]
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/_setup_env.sh
mkdir -p out
INSTRUCTION="${1:-turn this face from disgust to happiness}"
flame-transit render --image examples/face.jpg --instruction "$INSTRUCTION" \
  --out out/clip.mp4 --sheet out/contact_sheet.png --plot out/trajectory.png
echo "open out/clip.mp4 (contact sheet: out/contact_sheet.png, trajectory plot: out/trajectory.png)"
