"""Write the bundled example photo ``examples/face.jpg``.

The source is scikit-image's ``astronaut`` image: NASA's portrait of astronaut Eileen Collins
(public domain, as a work of the US government). Usage: ``python tools/make_example_photo.py``.
"""

from pathlib import Path

import imageio.v3 as iio
from skimage import data

out = Path(__file__).resolve().parent.parent / "examples" / "face.jpg"
out.parent.mkdir(parents=True, exist_ok=True)
iio.imwrite(out, data.astronaut(), quality=92)
print(f"wrote {out}")
