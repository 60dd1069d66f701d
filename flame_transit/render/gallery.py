"""Pictures of both looks for the docs: ``python -m flame_transit.render.gallery [OUT_DIR]``.

Writes ``render_shaded.png`` (the bundled open head: prototype expressions, a turned head, the
mouth up close), ``render_photo_neutral_smile.png`` (skimage's public-domain astronaut photo:
source / re-rendered at the source expression / neutral / smile / surprise / fear / closed
lids) and ``render_photo_mouth.png`` (the mouth region of those frames, enlarged).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

__all__ = ["EXPRESSIONS", "make_gallery"]


def _expressions() -> Tuple[Tuple[str, Dict[str, float], float], ...]:
    """(label, AU intensities, jaw opening in radians) of the pictures: every expression class's
    prototype (:data:`flame_transit.expressions.PROTOTYPES`) at the open head's legibility gain
    (what the transit stage generates on average), and closed lids."""
    from ..expressions import PROTOTYPES
    from ..head.open_head import EXPRESSION_GAIN, JAW_RAD_PER_AU26

    out = []
    for name, proto in PROTOTYPES.items():
        aus = {k: EXPRESSION_GAIN * v for k, v in proto.items()}
        out.append((name, {k: v for k, v in aus.items() if k != "AU26"}, aus.get("AU26", 0.0) * JAW_RAD_PER_AU26))
    return tuple(out) + (("eyes closed", {"AU43": 1.0}, 0.0),)


#: the pictures' expressions (see :func:`_expressions`)
EXPRESSIONS = _expressions()


def _expr(head, aus: Dict[str, float]):
    import torch

    e = torch.zeros(head.num_expression)
    names = list(head.expression_names)
    for k, v in aus.items():
        if k in names:
            e[names.index(k)] = v
    return e


def _label(img: np.ndarray, text: str) -> np.ndarray:
    try:
        from PIL import Image, ImageDraw
    except ImportError:  # pragma: no cover
        return img
    im = Image.fromarray(img)
    draw = ImageDraw.Draw(im)
    draw.rectangle([0, 0, 8 + 6 * len(text), 14], fill=(255, 255, 255))
    draw.text((4, 2), text, fill=(0, 0, 0))
    return np.asarray(im)


def _grid(tiles: Sequence[np.ndarray], cols: int) -> np.ndarray:
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + cols - 1) // cols
    out = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    return out


def _save(path: Path, img: np.ndarray) -> None:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        iio.imwrite(tmp, img)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def make_gallery(out_dir: os.PathLike = "docs", renderer: str = "gl") -> List[Path]:
    """Render the pictures into ``out_dir``; returns their paths."""
    import skimage.data
    import torch

    from ..encode import encode
    from ..head import load_head
    from .backends import get_renderer
    from .photo import resize_image

    out = Path(out_dir)
    head = load_head()
    r = get_renderer(renderer)
    written: List[Path] = []

    # shaded: the prototypes, front and turned
    n = len(EXPRESSIONS)
    ex = torch.stack([_expr(head, a) for _, a, _ in EXPRESSIONS])
    pose = torch.zeros(n, 15)
    pose[:, 6] = torch.tensor([j for _, _, j in EXPRESSIONS])
    turned = pose.clone()
    turned[:, 1] = 0.5
    turned[:, 0] = 0.12
    with torch.no_grad():
        front = head(expression=ex, pose=pose).vertices.numpy()
        side = head(expression=ex, pose=turned).vertices.numpy()
        rest = head().vertices.numpy()
    tiles = [_label(f, lab) for f, (lab, _, _) in zip(r.render(front, head.faces, head=head, size=256, rest_vertices=rest), EXPRESSIONS)]
    tiles += list(r.render(side, head.faces, head=head, size=256, rest_vertices=head(pose=turned[:1]).vertices[0].numpy()))
    path = out / "render_shaded.png"
    _save(path, _grid(tiles, n))
    written.append(path)

    # photo look on the astronaut
    img = skimage.data.astronaut()
    p = encode(img, head)
    ex = torch.stack([p.expression] + [_expr(head, a) for _, a, _ in EXPRESSIONS])
    pose = p.pose.repeat(n + 1, 1)
    pose[1:, 6:9] = 0
    pose[1:, 6] = torch.tensor([j for _, _, j in EXPRESSIONS])
    with torch.no_grad():
        verts = head(shape=p.shape, expression=ex, pose=pose, offsets=p.offsets).vertices.numpy()
    frames = r.render(verts, head.faces, p, look="photo", photo=img, head=head)
    v2 = p.vertices_2d.numpy()[:468]
    lo, hi = v2.min(axis=0), v2.max(axis=0)
    pad = 0.18 * (hi - lo)
    x0, y0 = np.maximum(np.floor(lo - pad).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(hi + pad).astype(int), [img.shape[1], img.shape[0]])

    def crop(a: np.ndarray, size: int = 256) -> np.ndarray:
        c = np.ascontiguousarray(a[y0:y1, x0:x1])
        return resize_image(c, (size, int(round(size * c.shape[1] / c.shape[0]))))

    labels = ["photo", "re-rendered (source)"] + [lab for lab, _, _ in EXPRESSIONS]
    pics = [img] + list(frames)
    tiles = [_label(crop(a), lab) for a, lab in zip(pics, labels)]
    path = out / "render_photo_neutral_smile.png"
    _save(path, _grid(tiles, 5))
    written.append(path)

    # mouth close-ups (nearest-neighbour x3, to see what the pixels are)
    face_w = float(hi[0] - lo[0])
    cx = int(round(float(p.vertices_2d[13, 0])))
    cy = int(round(float(p.vertices_2d[13, 1]) + 0.04 * face_w))
    half_w, half_h = int(0.26 * face_w), int(0.19 * face_w)
    mouths = []
    for a, lab in zip(pics, labels):
        m = a[max(cy - half_h, 0):cy + half_h, max(cx - half_w, 0):cx + half_w]
        mouths.append(_label(np.repeat(np.repeat(m, 4, axis=0), 4, axis=1), lab))
    path = out / "render_photo_mouth.png"
    _save(path, _grid(mouths, 5))
    written.append(path)
    r.close()
    return written


if __name__ == "__main__":  # pragma: no cover
    for p in make_gallery(sys.argv[1] if len(sys.argv) > 1 else "docs"):
        print("wrote", p)
