"""Typed objects passed between stages.

:class:`FaceParams` is what the encoder produces and what the trajectory, head and renderer
consume: FLAME-layout parameters plus how the face sits in the source photo.

Camera convention (DECA's weak perspective, stated once here and used everywhere):
    a head-frame point ``X`` (metres) maps to *crop NDC* ``n = s * (X[:2] + (tx, ty))`` with
    ``cam = (s, tx, ty)``; crop NDC has x to the right and y **up**, both in ``[-1, 1]`` over the
    square crop. ``FaceParams.crop_to_image`` (2, 3) then maps crop NDC to image pixels
    ``(u, v)`` (u right, v down, pixel centres at integers + 0.5). Depth for rasterisation is
    ``s * X[2]`` (larger = nearer the camera).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from .errors import InputError

__all__ = ["FaceParams", "project_points", "crop_to_image_matrix"]


def crop_to_image_matrix(center_xy: Tuple[float, float], size_px: float) -> np.ndarray:
    """Affine ``(2, 3)`` from crop NDC (y up) to pixels for a square crop of side ``size_px``
    centred at pixel ``center_xy``.

    Example:
        >>> crop_to_image_matrix((100.0, 50.0), 200.0) @ np.array([1.0, 1.0, 1.0])
        array([200., -50.])
    """
    half = float(size_px) / 2.0
    cx, cy = center_xy
    return np.array([[half, 0.0, cx], [0.0, -half, cy]], dtype=np.float64)


def project_points(points: torch.Tensor, cam: torch.Tensor, crop_to_image: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Weak-perspective projection.

    Args:
        points: ``(..., N, 3)`` metres in the head frame.
        cam: ``(..., 3)`` = (scale, tx, ty).
        crop_to_image: optional ``(..., 2, 3)``; without it the result is crop NDC.

    Returns:
        ``(..., N, 3)``: x, y in pixels (or NDC) and depth ``s * z`` (larger = nearer).

    Example:
        >>> p = project_points(torch.zeros(1, 4, 3), torch.tensor([[2.0, 0.5, 0.0]]))
        >>> p[0, 0].tolist()
        [1.0, 0.0, 0.0]
    """
    s = cam[..., None, 0:1]
    t = cam[..., None, 1:3]
    xy = s * (points[..., :2] + t)
    depth = s * points[..., 2:3]
    if crop_to_image is not None:
        a = crop_to_image.to(points)
        xy = torch.einsum("...ij,...nj->...ni", a[..., :2], xy) + a[..., None, :, 2]
    return torch.cat([xy, depth], dim=-1)


@dataclass
class FaceParams:
    """FLAME-layout parameters of one face (or a batch / a clip: leading dims ``(...)``).

    Attributes:
        shape: identity coefficients ``(..., S)``.
        expression: expression coefficients ``(..., E)`` (open head: FACS AU intensities, 1.0 =
            strong E-level activation).
        pose: ``(..., 15)`` axis-angle radians: global, neck, jaw, left eye, right eye.
        cam: ``(..., 3)`` weak-perspective (scale, tx, ty); see the module docstring.
        head_name: id of the head model these parameters belong to.
        offsets: optional per-subject vertex offsets ``(V, 3)`` in metres.
        image_size: ``(H, W)`` of the source photo, if any.
        crop_to_image: ``(2, 3)`` crop NDC → pixel affine, if the face came from a photo.
        vertices_2d: ``(V, 2)`` projected pixel positions of the fitted mesh (texture UVs).
        fit_rms: RMS landmark error of the fit as a fraction of face width.
        extras: anything else a stage wants to carry (e.g. DECA's texture/light codes).
    """

    shape: torch.Tensor
    expression: torch.Tensor
    pose: torch.Tensor
    cam: torch.Tensor = field(default_factory=lambda: torch.tensor([1.0, 0.0, 0.0]))
    head_name: str = ""
    offsets: Optional[torch.Tensor] = None
    image_size: Optional[Tuple[int, int]] = None
    crop_to_image: Optional[torch.Tensor] = None
    vertices_2d: Optional[torch.Tensor] = None
    fit_rms: Optional[float] = None
    extras: Dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("shape", "expression", "pose", "cam"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor):
                value = torch.as_tensor(np.asarray(value), dtype=torch.float32)
                setattr(self, name, value)
        if self.pose.shape[-1] != 15:
            raise InputError(f"FaceParams.pose must be (..., 15), got {tuple(self.pose.shape)}")
        if self.cam.shape[-1] != 3:
            raise InputError(f"FaceParams.cam must be (..., 3), got {tuple(self.cam.shape)}")

    @property
    def jaw_pose(self) -> torch.Tensor:
        """``(..., 3)`` jaw axis-angle."""
        return self.pose[..., 6:9]

    @property
    def global_orient(self) -> torch.Tensor:
        """``(..., 3)`` global axis-angle."""
        return self.pose[..., 0:3]

    @property
    def num_frames(self) -> int:
        return int(self.expression.shape[0]) if self.expression.ndim > 1 else 1

    def replace(self, **changes: object) -> "FaceParams":
        """A copy with some fields changed (dataclasses.replace)."""
        return replace(self, **changes)

    def neutral(self) -> "FaceParams":
        """The same face with expression and jaw set to zero (head pose kept)."""
        pose = self.pose.clone()
        pose[..., 6:9] = 0
        return self.replace(expression=torch.zeros_like(self.expression), pose=pose)
