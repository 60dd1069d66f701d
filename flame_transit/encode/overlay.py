"""Visual check of a fit: the fitted mesh's wireframe and MediaPipe's landmarks on the photo."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from ..errors import InputError
from .image_io import ImageLike, load_image

__all__ = ["draw_fit"]


def draw_fit(
    image: ImageLike,
    params: Any,
    head: Any = None,
    *,
    scale: Optional[float] = None,
    edge_color: Tuple[int, int, int] = (0, 230, 255),
    landmark_color: Optional[Tuple[int, int, int]] = (255, 60, 60),
    crop_to_face: bool = True,
) -> np.ndarray:
    """Wireframe of ``params.vertices_2d`` (the head's skin triangles) over the photo.

    Args:
        image: the photo the parameters were encoded from.
        params: :class:`~flame_transit.params.FaceParams` with ``vertices_2d``.
        head: the head (faces); ``None`` = the bundled open head.
        scale: upscaling factor of the drawing; ``None`` = longer side about 768 pixels.
        edge_color: RGB of mesh edges.
        landmark_color: RGB of MediaPipe's detected landmarks (``params.extras["landmarks"]``),
            ``None`` to omit them.
        crop_to_face: crop the drawing to the face crop (``params.crop_to_image``) when known.

    Returns:
        ``(H', W', 3)`` uint8 image.
    """
    from PIL import Image, ImageDraw

    from .encoder import resolve_head

    if params.vertices_2d is None:
        raise InputError("these parameters carry no vertices_2d (encode with a head to get them)")
    head = resolve_head(head)
    rgb = load_image(image)
    v2 = np.asarray(params.vertices_2d, dtype=np.float64)
    if v2.shape != (head.num_vertices, 2):
        raise InputError(f"vertices_2d has shape {v2.shape}, head {head.name!r} has {head.num_vertices} vertices")
    box = (0.0, 0.0, float(rgb.shape[1]), float(rgb.shape[0]))
    if crop_to_face and params.crop_to_image is not None:
        c = np.asarray(params.crop_to_image, dtype=np.float64)
        corners = np.array([[-1.0, -1.0, 1.0], [1.0, 1.0, 1.0]]) @ c.T
        x0, y0 = corners.min(axis=0)
        x1, y1 = corners.max(axis=0)
        box = (max(0.0, x0), max(0.0, y0), min(float(rgb.shape[1]), x1), min(float(rgb.shape[0]), y1))
    img = Image.fromarray(rgb).crop(tuple(int(round(b)) for b in box))
    ox, oy = int(round(box[0])), int(round(box[1]))
    if scale is None:
        scale = 768.0 / max(img.width, img.height, 1)
    img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))), Image.LANCZOS)
    draw = ImageDraw.Draw(img)
    p = (v2 - [ox, oy]) * scale
    faces = np.asarray(head.faces, dtype=np.int64)
    edges = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1), axis=0)
    for a, b in edges:
        draw.line([tuple(p[a]), tuple(p[b])], fill=edge_color, width=1)
    lms = params.extras.get("landmarks") if isinstance(params.extras, dict) else None
    if landmark_color is not None and lms is not None:
        pts = np.asarray(lms, dtype=np.float64)
        if pts.ndim == 3:  # a clip: the first frame's
            pts = pts[0]
        q = (pts[:, :2] - [ox, oy]) * scale
        r = max(1.5, scale * 0.4)
        for x, y in q:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=landmark_color)
    return np.asarray(img)
