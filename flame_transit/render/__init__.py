"""Renderers: meshes -> ``uint8`` frames, two looks (``"shaded"``, ``"photo"``), backends
``"gl"`` (moderngl/EGL, CPU or GPU) and ``"pytorch3d"`` (optional, CUDA).

Example:
    >>> import numpy as np
    >>> from flame_transit.render import get_renderer
    >>> verts = np.array([[-0.1, -0.1, 0.0], [0.1, -0.1, 0.0], [0.0, 0.1, 0.0]])
    >>> with get_renderer("gl") as r:
    ...     frame = r.render(verts, [[0, 1, 2]], size=(32, 32))
    >>> frame.shape, frame.dtype.name
    ((32, 32, 3), 'uint8')
"""

from .base import (
    LOOKS,
    Frame,
    Layer,
    RenderCamera,
    Renderer,
    available_renderers,
    camera_from_params,
    default_camera,
    get_renderer,
    render_frames,
    shade_lambert,
)

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
    "render_frames",
    "shade_lambert",
]
