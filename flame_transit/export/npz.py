"""``.npz`` export of a clip: per-frame FLAME-layout parameters, meshes and metadata.

File layout (format ``"flame_transit.animation"``, version :data:`FORMAT_VERSION`; every array is
plain numpy, readable with ``np.load(path)`` and no pickle):

==================  ==============  ===========================================================
key                 shape / dtype   meaning
==================  ==============  ===========================================================
format              str             ``"flame_transit.animation"``
format_version      int64           :data:`FORMAT_VERSION`
shape               (T, S) f32      identity coefficients per frame (constant over a clip)
expression          (T, E) f32      expression coefficients (open head: FACS AU intensities)
pose                (T, 15) f32     axis-angle: global, neck, jaw, left eye, right eye
global_orient       (T, 3) f32      ``pose[:, 0:3]``; also ``neck_pose``, ``jaw_pose``,
                                    ``leye_pose``, ``reye_pose`` (FLAME's names)
cam                 (T, 3) f32      weak perspective (s, tx, ty), see ``flame_transit.params``
vertices            (T, V, 3) f32   meshes in metres, head frame
faces               (F, 3) i32      triangles
fps                 float64         frames per second
times               (T,) f64        seconds
head_name           str             head model id
instruction         str             the text instruction ("" if none)
seed                int64           random seed, ``-1`` when unknown
expression_names    (E,) str        name of each expression coordinate
anchor_frames       (K,) int64      frame at which each keyframe is reached
anchor_labels       (K,) str        keyframe names
offsets             (V, 3) f32      optional per-subject vertex offsets
crop_to_image       (2, 3) f64      optional crop-NDC → photo-pixel affine
image_size          (2,) int64      optional (H, W) of the photo
vertices_2d         (V, 2) f32      optional photo-pixel positions of the fitted mesh
meta_json           str             optional JSON object of extra metadata
==================  ==============  ===========================================================
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import InputError
from ..io_utils import PathLike, atomic_write_bytes, read_npz, user_path
from ..params import FaceParams
from .common import resolve_clip

__all__ = ["FORMAT", "FORMAT_VERSION", "NpzAnimation", "save_npz", "load_npz", "POSE_PARTS"]

FORMAT = "flame_transit.animation"
FORMAT_VERSION = 1
#: FLAME's names for the five 3-value parts of the 15-value pose
POSE_PARTS: Tuple[Tuple[str, slice], ...] = (
    ("global_orient", slice(0, 3)),
    ("neck_pose", slice(3, 6)),
    ("jaw_pose", slice(6, 9)),
    ("leye_pose", slice(9, 12)),
    ("reye_pose", slice(12, 15)),
)

#: what the arrays mean, stored in every file as ``layout_json`` (the file describes itself)
LAYOUT: Dict[str, str] = {
    "units": "metres (vertices, offsets); radians (pose); seconds (times); pixels (vertices_2d, image_size)",
    "axes": "head frame: +X the subject's left, +Y up, +Z towards the viewer",
    "vertices": "(T, V, 3) posed meshes in the head frame, before the camera",
    "faces": "(F, 3) triangles, vertex indices from 0, counter-clockwise seen from outside",
    "shape": "(T, S) identity coefficients, one row per frame (equal rows); names in shape_names",
    "expression": "(T, E) expression coefficients; names in expression_names",
    "pose": "(T, 15) axis-angle, FLAME order: " + ", ".join(
        f"{n} [{sl.start}:{sl.stop}]" for n, sl in POSE_PARTS) + "; each part is also stored alone",
    "cam": "(T, 3) weak perspective (s, tx, ty): crop NDC = s * (X[:2] + (tx, ty)), x right, y up, in [-1, 1]",
    "crop_to_image": "(2, 3) affine from crop NDC to image pixels (when encoded from a photo)",
    "times": "(T,) seconds of each frame (frame / fps)",
    "anchor_frames": "frame index of each keyframe; labels in anchor_labels",
}


@dataclass
class NpzAnimation:
    """What :func:`load_npz` returns.

    ``params`` is a :class:`FaceParams` clip (``expression (T, E)``, ``pose (T, 15)``,
    ``cam (T, 3)``; ``shape`` is ``(S,)`` when constant over the clip, else ``(T, S)``).
    """

    params: FaceParams
    vertices: np.ndarray
    faces: np.ndarray
    fps: float
    head_name: str = ""
    instruction: str = ""
    seed: Optional[int] = None
    expression_names: Tuple[str, ...] = ()
    anchor_frames: List[int] = field(default_factory=list)
    anchor_labels: List[str] = field(default_factory=list)
    format_version: int = FORMAT_VERSION
    metadata: Dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.vertices.shape[0])


def _np(t: Any, dtype: Any = np.float32) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    return np.asarray(t, dtype=dtype)


def save_npz(
    path: PathLike,
    params: Any,
    *,
    vertices: Any = None,
    faces: Any = None,
    head: Any = None,
    fps: Optional[float] = None,
    head_name: Optional[str] = None,
    instruction: str = "",
    seed: Optional[int] = None,
    expression_names: Optional[Sequence[str]] = None,
    anchor_frames: Optional[Sequence[int]] = None,
    anchor_labels: Optional[Sequence[str]] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    compress: bool = True,
    shape_names: Optional[Sequence[str]] = None,
) -> Path:
    """Write a clip's parameters and meshes to ``path`` (``.npz``), atomically.

    Args:
        path: target file; must end in ``.npz``.
        params: a :class:`~flame_transit.trajectory.Trajectory` (fps and anchors are taken from
            it) or a :class:`FaceParams` clip of T frames.
        vertices: ``(T, V, 3)`` meshes; computed with ``head`` when omitted.
        faces: ``(F, 3)``; default ``head.faces``.
        head: the :class:`~flame_transit.head.Head` (also supplies ``head_name`` and
            ``expression_names``).
        fps: frames per second (overrides the trajectory's).
        head_name: head model id (default ``params.head_name``, else ``head.name``).
        instruction, seed: provenance; ``seed=None`` is stored as ``-1``.
        expression_names: names of the E expression coordinates (default the head's, else
            ``exp000``...).
        anchor_frames, anchor_labels: keyframe markers (default the trajectory's).
        metadata: extra JSON-serialisable values, stored as ``meta_json``.
        compress: ``np.savez_compressed`` (default) or plain ``np.savez``.
        shape_names: names of the identity coefficients (default: ``head.shape_names``).

    Every file also holds ``layout_json``, the meaning, units and axes of its arrays (:data:`LAYOUT`).

    Returns:
        The absolute path written.

    Example:
        >>> import tempfile, torch, numpy as np
        >>> p = FaceParams(shape=torch.zeros(2, 4), expression=torch.zeros(2, 3), pose=torch.zeros(2, 15))
        >>> out = save_npz(tempfile.mkdtemp() + "/clip.npz", p, vertices=np.zeros((2, 3, 3)), faces=[[0, 1, 2]], fps=24)
        >>> anim = load_npz(out)
        >>> anim.num_frames, anim.fps, anim.params.expression.shape
        (2, 24.0, torch.Size([2, 3]))
    """
    if Path(os.fspath(path)).suffix.lower() != ".npz":
        raise InputError(f"save_npz writes .npz files, got {os.fspath(path)!r}")
    face_params, v, f, info = resolve_clip(
        params, vertices=vertices, faces=faces, head=head, fps=fps,
        expression_names=expression_names, anchor_frames=anchor_frames, anchor_labels=anchor_labels,
    )
    if face_params is None:
        raise InputError("save_npz needs the clip's parameters (a Trajectory or FaceParams)")
    if head_name is not None:
        info.head_name = str(head_name)
    t = v.shape[0]
    expr = _np(face_params.expression).reshape(t, -1)
    pose = _np(face_params.pose).reshape(t, 15)
    cam = _np(face_params.cam)
    cam = np.broadcast_to(cam.reshape(-1, 3), (t, 3)) if cam.reshape(-1, 3).shape[0] in (1, t) else None
    if cam is None:
        raise InputError(f"params.cam must be (3,) or ({t}, 3), got {tuple(face_params.cam.shape)}")
    shape = _np(face_params.shape)
    s_rows = shape.reshape(-1, shape.shape[-1]) if shape.ndim else shape.reshape(1, 1)
    if s_rows.shape[0] not in (1, t):
        raise InputError(f"params.shape must be (S,) or ({t}, S), got {tuple(shape.shape)}")
    shape = np.broadcast_to(s_rows, (t, s_rows.shape[1]))
    for name, arr in (("expression", expr), ("pose", pose), ("cam", cam), ("shape", shape)):
        if not np.isfinite(arr).all():
            raise InputError(f"params.{name} contains NaN or infinite values")
    e = expr.shape[1]
    names = info.expression_names or tuple(f"exp{i:03d}" for i in range(e))
    if len(names) != e:
        raise InputError(f"{len(names)} expression names for {e} expression coefficients")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InputError(f"seed must be a non-negative integer or None, got {seed!r}")

    arrays: Dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "shape": np.ascontiguousarray(shape, dtype=np.float32),
        "expression": expr,
        "pose": pose,
        "cam": np.ascontiguousarray(cam, dtype=np.float32),
        "vertices": v,
        "faces": f.astype(np.int32),
        "fps": np.array(info.fps, dtype=np.float64),
        "times": np.arange(t, dtype=np.float64) / info.fps,
        "head_name": np.array(str(info.head_name)),
        "instruction": np.array(str(instruction)),
        # numpy string arrays drop trailing NUL characters; the UTF-8 bytes round-trip exactly
        "instruction_utf8": np.frombuffer(str(instruction).encode("utf-8", "surrogatepass"), dtype=np.uint8),
        "seed": np.array(-1 if seed is None else int(seed), dtype=np.int64),
        "expression_names": np.array(list(names), dtype=str) if names else np.zeros(0, dtype="<U1"),
        "anchor_frames": np.array(info.anchor_frames, dtype=np.int64),
        "anchor_labels": np.array(info.anchor_labels, dtype=str) if info.anchor_labels else np.zeros(0, dtype="<U1"),
        "layout_json": np.array(json.dumps(LAYOUT)),
    }
    if shape_names is not None:
        snames = [str(x) for x in shape_names]
    else:
        snames = list(getattr(head, "shape_names", ()) or ())
    # a clip may use fewer coefficients than the model has (FLAME: 100 of 300): the leading names
    snames = snames[:shape.shape[1]] if len(snames) >= shape.shape[1] else []
    arrays["shape_names"] = np.array(snames or [f"shape{i:03d}" for i in range(shape.shape[1])], dtype=str) \
        if shape.shape[1] else np.zeros(0, dtype="<U1")
    for name, sl in POSE_PARTS:
        arrays[name] = np.ascontiguousarray(pose[:, sl])
    if face_params.offsets is not None:
        arrays["offsets"] = _np(face_params.offsets)
    if face_params.crop_to_image is not None:
        arrays["crop_to_image"] = _np(face_params.crop_to_image, np.float64)
    if face_params.image_size is not None:
        arrays["image_size"] = np.array(face_params.image_size, dtype=np.int64)
    if face_params.vertices_2d is not None:
        arrays["vertices_2d"] = _np(face_params.vertices_2d)
    meta = dict(metadata or {})
    if face_params.fit_rms is not None:
        meta.setdefault("fit_rms", float(face_params.fit_rms))
    if meta:
        try:
            arrays["meta_json"] = np.array(json.dumps(meta))
        except (TypeError, ValueError) as exc:
            raise InputError(f"metadata must be JSON-serialisable: {exc}") from exc
    writer = np.savez_compressed if compress else np.savez
    # the archive is built in memory, then written: a full disk or `ulimit -f` fails in one clean
    # OSError (zipfile's own writer, failing half-way, also complained from ZipFile.__del__)
    buf = io.BytesIO()
    writer(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return user_path(os.fspath(path)).absolute()


def load_npz(path: PathLike) -> NpzAnimation:
    """Read a file written by :func:`save_npz`.

    Raises:
        InputError: the file is missing, not an ``.npz`` archive, or not a flame_transit
            animation (or from a newer format version).
    """
    p = user_path(os.fspath(path))
    data = read_npz(p, "animation", InputError)
    if str(data.get("format", "")) != FORMAT:
        raise InputError(f"{p} is not a flame_transit animation (no format={FORMAT!r} entry)")
    version = int(data["format_version"])
    if version > FORMAT_VERSION:
        raise InputError(f"{p} has format version {version}; this flame_transit reads up to {FORMAT_VERSION}, upgrade it")
    shape = torch.from_numpy(np.array(data["shape"]))
    if shape.ndim == 2 and shape.shape[0] >= 1 and bool((shape == shape[:1]).all()):
        shape = shape[0].clone()
    get = lambda k: torch.from_numpy(np.array(data[k])) if k in data else None
    image_size = tuple(int(x) for x in data["image_size"]) if "image_size" in data else None
    meta = json.loads(str(data["meta_json"])) if "meta_json" in data else {}
    params = FaceParams(
        shape=shape,
        expression=get("expression"),
        pose=get("pose"),
        cam=get("cam"),
        head_name=str(data["head_name"]),
        offsets=get("offsets"),
        image_size=image_size,  # type: ignore[arg-type]
        crop_to_image=get("crop_to_image"),
        vertices_2d=get("vertices_2d"),
        fit_rms=meta.get("fit_rms"),
    )
    seed = int(data["seed"])
    return NpzAnimation(
        params=params,
        vertices=np.array(data["vertices"]),
        faces=np.array(data["faces"], dtype=np.int64),
        fps=float(data["fps"]),
        head_name=str(data["head_name"]),
        instruction=(bytes(data["instruction_utf8"]).decode("utf-8", "surrogatepass")
                     if "instruction_utf8" in data else str(data["instruction"])),
        seed=None if seed < 0 else seed,
        expression_names=tuple(str(x) for x in data["expression_names"]),
        anchor_frames=[int(x) for x in data["anchor_frames"]],
        anchor_labels=[str(x) for x in data["anchor_labels"]],
        format_version=version,
        metadata=meta,
    )
