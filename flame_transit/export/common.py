"""Shared checks for the exporters: mesh arrays, frame rates, clip metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import InputError
from ..params import FaceParams
from ..checks import MAX_VERTEX_POSITIONS, check_fps

__all__ = ["ClipInfo", "as_vertices", "as_faces", "check_fps", "compute_vertices", "resolve_clip", "resolve_fps"]



def as_vertices(vertices: Any, name: str = "vertices") -> np.ndarray:
    """``(T, V, 3)`` float32 C-contiguous; a single ``(V, 3)`` mesh becomes ``(1, V, 3)``."""
    if isinstance(vertices, torch.Tensor):
        vertices = vertices.detach().cpu().numpy()
    try:
        v = np.asarray(vertices, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a numeric array (T, V, 3): {exc}") from exc
    if v.ndim == 2:
        v = v[None]
    if v.ndim != 3 or v.shape[2] != 3 or v.shape[0] == 0 or v.shape[1] == 0:
        raise InputError(f"{name} must have shape (T, V, 3) with T, V >= 1, got {tuple(v.shape)}")
    if v.shape[0] * v.shape[1] > MAX_VERTEX_POSITIONS:
        raise InputError(
            f"{name} holds {v.shape[0]} frames x {v.shape[1]} vertices, more than this exporter "
            f"handles ({MAX_VERTEX_POSITIONS:,} positions); export every n-th frame (vertices[::n])"
        )
    if not np.isfinite(v).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(v)


def as_faces(faces: Any, num_vertices: int) -> np.ndarray:
    """``(F, 3)`` int64 triangle indices in ``[0, num_vertices)``."""
    if isinstance(faces, torch.Tensor):
        faces = faces.detach().cpu().numpy()
    f = np.asarray(faces)
    if f.dtype.kind not in "iu" and f.size:
        if f.dtype.kind == "f" and np.all(f == np.round(f)):
            f = f.astype(np.int64)
        else:
            raise InputError(f"faces must be integer vertex indices, got dtype {f.dtype}")
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0:
        raise InputError(f"faces must have shape (F, 3) triangles with F >= 1, got {tuple(f.shape)}")
    f = f.astype(np.int64)
    if f.min() < 0 or f.max() >= num_vertices:
        raise InputError(f"faces index vertices outside 0..{num_vertices - 1} (min {f.min()}, max {f.max()})")
    return np.ascontiguousarray(f)


def compute_vertices(head: Any, params: FaceParams, *, chunk: int = 256) -> np.ndarray:
    """Run ``head`` over every frame of ``params``; ``(T, V, 3)`` float32 metres (head frame).

    Frames go through the head in chunks of ``chunk`` to bound memory; the identity (shape,
    offsets) is shared when it is a single ``(S,)`` / ``(V, 3)``.
    """
    expr = params.expression.reshape(-1, params.expression.shape[-1])
    pose = params.pose.reshape(-1, 15)
    t = expr.shape[0]
    shape = params.shape
    per_frame_shape = shape.ndim > 1 and shape.reshape(-1, shape.shape[-1]).shape[0] == t and t > 1
    out = []
    with torch.no_grad():
        for a in range(0, t, chunk):
            b = min(t, a + chunk)
            s = shape.reshape(-1, shape.shape[-1])[a:b] if per_frame_shape else shape.reshape(-1)
            res = head(shape=s, expression=expr[a:b], pose=pose[a:b], offsets=params.offsets)
            out.append(res.vertices.detach().cpu().to(torch.float32).numpy())
    return np.concatenate(out, 0)


def resolve_fps(params: Any, fps: Optional[float] = None) -> float:
    """The clip's frame rate: ``fps`` when given, else the trajectory's, else 30; checked."""
    return check_fps(fps if fps is not None else getattr(params, "fps", 30.0))


@dataclass
class ClipInfo:
    """What an exporter needs to know about a clip besides its meshes."""

    fps: float = 30.0
    head_name: str = ""
    expression_names: Tuple[str, ...] = ()
    anchor_frames: List[int] = field(default_factory=list)
    anchor_labels: List[str] = field(default_factory=list)


def resolve_clip(
    params: Any = None,
    *,
    vertices: Any = None,
    faces: Any = None,
    head: Any = None,
    fps: Optional[float] = None,
    expression_names: Optional[Sequence[str]] = None,
    anchor_frames: Optional[Sequence[int]] = None,
    anchor_labels: Optional[Sequence[str]] = None,
) -> Tuple[Optional[FaceParams], np.ndarray, np.ndarray, ClipInfo]:
    """Gather ``(params, vertices, faces, info)`` from whatever the caller passed.

    ``params`` may be a :class:`~flame_transit.trajectory.Trajectory` (fps and anchors come with
    it), a :class:`FaceParams` clip or ``None``. Meshes come from ``vertices``/``faces`` or are
    computed with ``head``.
    """
    from ..trajectory import Trajectory

    info = ClipInfo()
    face_params: Optional[FaceParams] = None
    if isinstance(params, Trajectory):
        face_params = params.params
        info.fps = params.fps
        info.anchor_frames = list(params.anchor_frames)
        info.anchor_labels = list(params.labels)
    elif isinstance(params, FaceParams):
        face_params = params
    elif params is not None:
        raise InputError(f"params must be a Trajectory or FaceParams, got {type(params).__name__}")
    info.fps = resolve_fps(params, fps)

    if head is not None:
        info.head_name = str(getattr(head, "name", ""))
        info.expression_names = tuple(getattr(head, "expression_names", ()))
        if faces is None:
            faces = head.faces
        if vertices is None:
            if face_params is None:
                raise InputError("to compute meshes with head=, pass the clip's parameters too")
            vertices = compute_vertices(head, face_params)
    if vertices is None or faces is None:
        raise InputError("pass the meshes (vertices= (T, V, 3) and faces= (F, 3)) or head= to compute them")
    v = as_vertices(vertices)
    f = as_faces(faces, v.shape[1])
    if face_params is not None:
        info.head_name = face_params.head_name or info.head_name
        t = face_params.expression.reshape(-1, face_params.expression.shape[-1]).shape[0]
        if t != v.shape[0]:
            raise InputError(f"parameters have {t} frames but vertices have {v.shape[0]}")
    if expression_names is not None:
        info.expression_names = tuple(str(x) for x in expression_names)
    if anchor_frames is not None:
        info.anchor_frames = [int(x) for x in anchor_frames]
        if anchor_labels is None:
            info.anchor_labels = []  # the trajectory's labels belong to its own frames
    if anchor_labels is not None:
        info.anchor_labels = [str(x) for x in anchor_labels]
    if len(info.anchor_labels) != len(info.anchor_frames):
        if not info.anchor_labels:
            info.anchor_labels = [f"anchor{i}" for i in range(len(info.anchor_frames))]
        else:
            raise InputError(f"{len(info.anchor_frames)} anchor frames but {len(info.anchor_labels)} anchor labels")
    if any(not 0 <= a < v.shape[0] for a in info.anchor_frames):
        raise InputError(f"anchor frames {info.anchor_frames} fall outside the clip's {v.shape[0]} frames")
    return face_params, v, f, info
