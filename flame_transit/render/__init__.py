"""Renderers: meshes -> ``uint8`` frames, two looks (``"shaded"``, ``"photo"``), backends
``"gl"`` (moderngl/EGL, CPU or GPU; the default) and ``"pytorch3d"`` (optional, by name).

* :mod:`.types` (the draw list: :class:`Frame`, :class:`Layer`), :mod:`.lights` (the light
  model), :mod:`.camera`, :mod:`.inputs` (argument checks);
* :mod:`.scene`, :mod:`.photo`, :mod:`.mouth`: what each look draws, shared by all backends;
* :mod:`.base` (the :class:`Renderer` interface), :mod:`.backends` (the backends and their
  registry: :func:`get_renderer`, :func:`register_backend`).

Example:
    >>> import numpy as np
    >>> from flame_transit.render import get_renderer
    >>> verts = np.array([[-0.1, -0.1, 0.0], [0.1, -0.1, 0.0], [0.0, 0.1, 0.0]])
    >>> with get_renderer("gl") as r:
    ...     frame = r.render(verts, [[0, 1, 2]], size=(32, 32))
    >>> frame.shape, frame.dtype.name
    ((32, 32, 3), 'uint8')
"""

from .backends import available_renderers, get_renderer, register_backend
from .base import Renderer, render_frames
from .camera import RenderCamera, camera_from_params, default_camera
from .lights import shade_lambert
from .types import LOOKS, Frame, Layer

__all__ = [
    "LOOKS",
    "Frame",
    "Layer",
    "RenderCamera",
    "Renderer",
    "available_renderers",
    "camera_from_params",
    "default_camera",
    "get_renderer",
    "register_backend",
    "render_frames",
    "shade_lambert",
]
