"""The renderer's camera: DECA's weak perspective ``(s, tx, ty)`` to crop NDC, then the
``crop_to_image`` affine to output pixels (see :mod:`flame_transit.params`); depth ``s * z``
(larger = nearer). The camera looks down the head frame's -Z axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from ..errors import InputError
from .inputs import _get, _to_numpy

__all__ = ["RenderCamera", "default_camera", "framing_cam", "camera_from_params", "pixel_box", "points_box"]


@dataclass
class RenderCamera:
    """Weak-perspective camera in output pixels.

    Attributes:
        cam: ``(T, 3)`` or ``(1, 3)`` (scale, tx, ty) per frame.
        crop_to_image: ``(T, 2, 3)`` or ``(1, 2, 3)`` crop NDC -> output pixels.
        size: ``(H, W)`` of the output frames.
    """

    cam: np.ndarray
    crop_to_image: np.ndarray
    size: Tuple[int, int]

    def frame(self, t: int) -> Tuple[np.ndarray, np.ndarray]:
        c = self.cam[t if self.cam.shape[0] > 1 else 0]
        a = self.crop_to_image[t if self.crop_to_image.shape[0] > 1 else 0]
        return c, a

    def project(self, points: np.ndarray, t: int = 0) -> np.ndarray:
        """``(N, 3)`` head-frame points of frame ``t`` -> ``(N, 3)`` = pixel u, v and depth
        ``s * z`` (larger = nearer); the same maths as :func:`flame_transit.params.project_points`.
        """
        (s, tx, ty), a = self.frame(t)
        pts = np.asarray(points, dtype=np.float64)
        nx = s * (pts[:, 0] + tx)
        ny = s * (pts[:, 1] + ty)
        out = np.empty((len(pts), 3), dtype=np.float64)
        out[:, 0] = a[0, 0] * nx + a[0, 1] * ny + a[0, 2]
        out[:, 1] = a[1, 0] * nx + a[1, 1] * ny + a[1, 2]
        out[:, 2] = s * pts[:, 2]
        return out

    def pixels_per_metre(self, t: int = 0) -> float:
        (s, _, _), a = self.frame(t)
        return float(abs(s) * np.sqrt(abs(np.linalg.det(a[:, :2]))))


def default_camera(vertices: np.ndarray, size: Tuple[int, int], fill: float = 0.8) -> RenderCamera:
    """A camera that frames every frame of ``vertices (T, V, 3)`` in a centred square crop,
    the mesh filling ``fill`` of it.

    Example:
        >>> cam = default_camera(np.array([[[-1.0, -1, 0], [1, 1, 0], [0, 0, 1]]]), (100, 100))
        >>> cam.project(np.array([[1.0, 1.0, 0.0]])).round(1).tolist()
        [[90.0, 10.0, 0.0]]
    """
    h, w = size
    from ..params import crop_to_image_matrix

    a = crop_to_image_matrix((w / 2.0, h / 2.0), float(min(h, w)))
    return RenderCamera(framing_cam(vertices, fill), a[None], (h, w))


def framing_cam(vertices: np.ndarray, fill: float = 0.8) -> np.ndarray:
    """``(1, 3)`` orthographic ``(scale, tx, ty)`` that centres every frame of ``vertices
    (..., V, 3)`` in the unit crop, filling ``fill`` of it (independent of the frame size)."""
    v = np.asarray(vertices).reshape(-1, 3)
    lo, hi = v.min(axis=0), v.max(axis=0)
    centre = (lo + hi) / 2.0
    extent = float(max((hi - lo)[0], (hi - lo)[1], 1e-9))
    return np.array([[2.0 * fill / extent, -centre[0], -centre[1]]])


def camera_from_params(
    params: Any,
    vertices: np.ndarray,
    size: Tuple[int, int],
    image_size: Optional[Tuple[int, int]] = None,
) -> RenderCamera:
    """The renderer's camera for ``params`` (a FaceParams, a dict with ``cam`` /
    ``crop_to_image`` / ``image_size``, or None for :func:`default_camera`), in pixels of a
    frame of ``size``.

    ``crop_to_image`` maps to pixels of the source photo (``image_size``); it is scaled to the
    output size. Without ``crop_to_image`` the crop is the centred square of the frame.
    """
    cam = _get(params, "cam")
    if cam is None:
        return default_camera(vertices, size)
    cam = _to_numpy(cam, "params.cam").astype(np.float64)
    if cam.shape[-1] != 3:
        raise InputError(f"params.cam must be (..., 3) = (scale, tx, ty), got {tuple(cam.shape)}")
    cam = cam.reshape(-1, 3)
    if not np.isfinite(cam).all() or np.any(cam[:, 0] == 0):
        raise InputError(f"params.cam must be finite with a non-zero scale, got {cam[:2].tolist()}")
    if cam.shape[0] not in (1, vertices.shape[0]):
        raise InputError(f"params.cam has {cam.shape[0]} frames but vertices have {vertices.shape[0]}")
    h, w = size
    a = _get(params, "crop_to_image")
    if a is None:
        from ..params import crop_to_image_matrix

        a = crop_to_image_matrix((w / 2.0, h / 2.0), float(min(h, w)))[None]
    else:
        a = _to_numpy(a, "params.crop_to_image").astype(np.float64)
        if a.shape[-2:] != (2, 3):
            raise InputError(f"params.crop_to_image must be (2, 3), got {tuple(a.shape)}")
        a = a.reshape(-1, 2, 3)
        if a.shape[0] not in (1, vertices.shape[0]):
            raise InputError(f"params.crop_to_image has {a.shape[0]} frames but vertices have {vertices.shape[0]}")
        src = image_size or _get(params, "image_size")
        if src is not None:
            sh, sw = int(src[0]), int(src[1])
            a = a * np.array([w / sw, h / sh])[None, :, None]
    if not np.isfinite(a).all():
        raise InputError("params.crop_to_image contains NaN or infinite values")
    return RenderCamera(cam, a, (h, w))


def pixel_box(lo: np.ndarray, hi: np.ndarray, size: Tuple[int, int], margin: int) -> Optional[Tuple[int, int, int, int]]:
    """The whole-pixel box ``(x0, y0, x1, y1)`` (x1, y1 exclusive) that holds the pixel-space
    bounds ``lo = (x, y)`` .. ``hi = (x, y)`` with ``margin`` pixels around, clipped to a frame
    of ``size (H, W)``; None when none of it is inside.

    Example:
        >>> pixel_box(np.array([10.2, 5.0]), np.array([20.5, 7.5]), (64, 64), margin=2)
        (8, 3, 23, 10)
    """
    h, w = size
    x0, y0 = (int(np.clip(np.floor(v) - margin, 0, m)) for v, m in zip(lo, (w, h)))
    x1, y1 = (int(np.clip(np.ceil(v) + margin, 0, m)) for v, m in zip(hi, (w, h)))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def points_box(xy: np.ndarray, size: Tuple[int, int], margin: int) -> Optional[Tuple[int, int, int, int]]:
    """:func:`pixel_box` around the finite points of ``xy (N, 2)`` (pixels); None when there
    are none or none of the box is inside the frame.

    Example:
        >>> points_box(np.array([[10.2, 5.0], [20.5, 7.5], [np.nan, 0.0]]), (64, 64), margin=2)
        (8, 3, 23, 10)
    """
    xy = np.asarray(xy, dtype=np.float64)
    if not len(xy):
        return None
    # column by column: numpy reduces a narrow (N, 2) array along axis 0 ~20x slower
    x, y = xy[:, 0], xy[:, 1]
    lo, hi = np.array([x.min(), y.min()]), np.array([x.max(), y.max()])
    if not np.isfinite(lo).all() or not np.isfinite(hi).all():
        xy = xy[np.isfinite(xy).all(axis=1)]
        return points_box(xy, size, margin) if len(xy) else None
    return pixel_box(lo, hi, size, margin)
