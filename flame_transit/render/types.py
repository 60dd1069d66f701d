"""What backends draw: a :class:`Frame` is a background and a list of :class:`Layer` (triangles
in output pixels with per-vertex attributes and one of two shading kinds). What to draw for each
look is decided once, in :mod:`flame_transit.render.scene` and :mod:`flame_transit.render.photo`,
and shared by all backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

__all__ = ["LOOKS", "Layer", "Frame"]

#: the looks a renderer draws
LOOKS = ("shaded", "photo")


@dataclass
class Layer:
    """Triangles in output-pixel space with per-vertex attributes.

    ``kind == "lit"``: colour = ``color`` x diffuse light of ``normal`` (+ ``specular``).
    ``kind == "photo"``: colour ``c`` = ``texture`` sampled at ``uv`` (output pixels; mixed with
    ``texture2`` by ``mix`` when given), relit by the per-vertex shading ratio ``ratio``
    (interpolated; None = 1): ``c * r`` where ``r <= 1``, ``c + (r - 1) * luma(c)`` where
    ``r > 1`` (a grey lift: lifting a photo's shadow by multiplication over-saturates it). See
    :func:`relight`.

    ``depth`` (N,) is ``s * z`` (larger = nearer); with ``depth_test=False`` the layer is
    painted in list order without touching the depth buffer. ``alpha`` blends the layer over
    what is already drawn.
    """

    name: str
    kind: str
    xy: np.ndarray
    faces: np.ndarray
    depth: Optional[np.ndarray] = None
    normal: Optional[np.ndarray] = None
    color: Optional[np.ndarray] = None
    ratio: Optional[np.ndarray] = None
    uv: Optional[np.ndarray] = None
    texture: str = ""
    texture2: str = ""
    mix: float = 0.0
    alpha: float = 1.0
    depth_test: bool = True
    cull_back: bool = False
    specular: float = 0.0


@dataclass
class Frame:
    """One frame's draw list: a clear colour (or a texture painted as background) and layers."""

    layers: List[Layer]
    background: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    background_texture: str = ""
    #: True: front faces have a positive signed area ``(b-a) x (c-a)`` in pixel coordinates
    #: ``(u, v)``; False: negative (layers with ``cull_back`` drop the others)
    front_ccw_pixels: bool = False
    #: pixel box ``(x0, y0, x1, y1)`` whose edges deserve more than one sample a pixel: the lips
    #: over the dark mouth in the photo look, where a stair-stepped lip line shows at once.
    #: Backends without multisampling may draw it again supersampled; None: nowhere
    edge_box: Optional[Tuple[int, int, int, int]] = None
