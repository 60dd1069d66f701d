"""Build docs/perceptual_grid_{photo,shaded}.png: 6x6 end frames of "from A to B" on the example photo.

Row = A (start), column = B (end); the diagonal shows the start frame of "from A to neutral".
    python tools/make_perceptual_grid.py
"""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from flame_transit.api import animate
from flame_transit.perceptual import BASIC_EMOTIONS, _end_frames

ROOT = Path(__file__).resolve().parents[1]
CELL = 160


def main() -> None:
    photo = ROOT / "examples" / "face.jpg"
    n = len(BASIC_EMOTIONS)
    grids = {look: np.full(((n + 1) * CELL, (n + 1) * CELL, 3), 255, np.uint8) for look in ("photo", "shaded")}
    for i, a in enumerate(BASIC_EMOTIONS):
        for j, b in enumerate(BASIC_EMOTIONS):
            text = f"Turn this face from {a} to {b if a != b else 'neutral'}."
            anim = animate(str(photo), text, size=CELL, seed=0)
            for look, grid in grids.items():
                anim.render_options["look"] = look
                f0, f1 = _end_frames(anim)
                frame = f0 if a == b else f1
                img = np.asarray(Image.fromarray(frame).resize((CELL, CELL)))
                grid[(i + 1) * CELL:(i + 2) * CELL, (j + 1) * CELL:(j + 2) * CELL] = img
    for look, grid in grids.items():
        im = Image.fromarray(grid)
        d = ImageDraw.Draw(im)
        d.text((4, 4), "from (row)\nto (col)", fill=(0, 0, 0))
        for k, e in enumerate(BASIC_EMOTIONS):
            d.text(((k + 1) * CELL + 6, CELL // 2), e, fill=(0, 0, 0))
            d.text((6, (k + 1) * CELL + CELL // 2), e, fill=(0, 0, 0))
        out = ROOT / "docs" / f"perceptual_grid_{look}.png"
        im.save(out)
        print("wrote", out)


if __name__ == "__main__":
    main()
