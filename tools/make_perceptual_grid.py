"""Build docs/perceptual_grid_{photo,shaded}.png: 6x6 end frames of "from A to B" on the example photo.

Row = A (start), column = B (end); the diagonal shows the start frame of "from A to neutral".
    python tools/make_perceptual_grid.py
"""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from flame_transit.api import animate
from flame_transit.evaluation.perceptual import BASIC_EMOTIONS, _end_frames

ROOT = Path(__file__).resolve().parents[1]
CELL = 160
TOP, LEFT = 28, 84  # label strips


def main() -> None:
    photo = ROOT / "examples" / "face.jpg"
    n = len(BASIC_EMOTIONS)
    grids = {look: np.full((TOP + n * CELL, LEFT + n * CELL, 3), 255, np.uint8) for look in ("photo", "shaded")}
    for i, a in enumerate(BASIC_EMOTIONS):
        for j, b in enumerate(BASIC_EMOTIONS):
            text = f"Turn this face from {a} to {b if a != b else 'neutral'}."
            anim = animate(str(photo), text, size=CELL, seed=0)
            for look, grid in grids.items():
                anim.render_options["look"] = look
                f0, f1 = _end_frames(anim)
                frame = f0 if a == b else f1
                img = np.asarray(Image.fromarray(frame).resize((CELL, CELL)))
                grid[TOP + i * CELL:TOP + (i + 1) * CELL, LEFT + j * CELL:LEFT + (j + 1) * CELL] = img
    for look, grid in grids.items():
        im = Image.fromarray(grid)
        d = ImageDraw.Draw(im)
        d.text((4, 2), "from (row)\nto (col)", fill=(0, 0, 0))
        for k, e in enumerate(BASIC_EMOTIONS):
            d.text((LEFT + k * CELL + 6, TOP // 2 - 5), f"to {e}", fill=(0, 0, 0))
            d.text((6, TOP + k * CELL + CELL // 2 - 5), f"from {e}", fill=(0, 0, 0))
        out = ROOT / "docs" / f"perceptual_grid_{look}.png"
        im.save(out)
        print("wrote", out)


if __name__ == "__main__":
    main()
