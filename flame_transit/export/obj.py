"""``.obj`` sequence export: one Wavefront OBJ per frame in a folder.

The folder holds ``frame_0000.obj``, ``frame_0001.obj``, ... (zero-padded to at least four
digits; same vertex order and triangles in every file, so tools can treat them as a sequence of
shape keys) and a manifest ``sequence.json``:
``{"format": "flame_transit.obj_sequence", "version": 1, "fps": ..., "frames": T,
"vertices": V, "faces": F, "files": [...], "head_name": ..., "anchor_frames": [...],
"anchor_labels": [...]}``.

The folder is written whole or not at all (a temporary folder beside it, renamed when done). An
existing folder is replaced only when it is empty, holds an earlier flame_transit export (its
``sequence.json``) or ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..errors import InputError
from ..io_utils import DIRECTORY_MARKER, PathLike, atomic_directory, user_path
from .common import resolve_clip

__all__ = ["save_obj_sequence", "write_obj_sequence", "OBJ_SEQUENCE_FORMAT"]

OBJ_SEQUENCE_FORMAT = "flame_transit.obj_sequence"


def save_obj_sequence(
    folder: PathLike,
    vertices: Any = None,
    faces: Any = None,
    *,
    params: Any = None,
    head: Any = None,
    fps: Optional[float] = None,
    overwrite: bool = False,
    prefix: str = "frame_",
    digits: int = 6,
    anchor_frames: Optional[Sequence[int]] = None,
    anchor_labels: Optional[Sequence[str]] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    progress: bool = False,
) -> Path:
    """Write one ``.obj`` per frame into ``folder``, atomically.

    Args:
        folder: output folder (created; see the module docstring for replacing one).
        vertices: ``(T, V, 3)`` meshes in metres; computed with ``head`` when omitted.
        faces: ``(F, 3)`` triangles; default ``head.faces``.
        params: optional :class:`~flame_transit.trajectory.Trajectory` / :class:`FaceParams`
            (fps, anchors, head name for the manifest; meshes via ``head``).
        head: a :class:`~flame_transit.head.Head`.
        fps: frames per second for the manifest (default the trajectory's, else 30).
        overwrite: replace a non-empty folder that flame_transit did not write.
        prefix: file name prefix (``frame_`` → ``frame_0000.obj``).
        digits: decimals written per coordinate (6 = micrometres).
        anchor_frames, anchor_labels: keyframe markers for the manifest.
        metadata: extra JSON-serialisable values stored under ``"metadata"`` in the manifest.
        progress: show a tqdm progress bar.

    Returns:
        The folder's absolute path.
    """
    import trimesh
    from tqdm.auto import tqdm
    from trimesh.exchange.obj import export_obj

    if not isinstance(prefix, str) or not prefix or os.sep in prefix or (os.altsep and os.altsep in prefix):
        raise InputError(f"prefix must be a plain file name prefix, got {prefix!r}")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 12:
        raise InputError(f"digits must be an integer in 1..12, got {digits!r}")
    face_params, v, f, info = resolve_clip(
        params, vertices=vertices, faces=faces, head=head, fps=fps,
        anchor_frames=anchor_frames, anchor_labels=anchor_labels,
    )
    try:
        meta_json = json.loads(json.dumps(dict(metadata or {})))
    except (TypeError, ValueError) as exc:
        raise InputError(f"metadata must be JSON-serialisable: {exc}") from exc
    t = v.shape[0]
    width = max(4, len(str(t - 1)))
    names = [f"{prefix}{i:0{width}d}.obj" for i in range(t)]
    with atomic_directory(folder, overwrite=overwrite) as tmp:
        for i in tqdm(range(t), desc="obj", unit="frame", disable=not progress):
            mesh = trimesh.Trimesh(vertices=v[i], faces=f, process=False, validate=False)
            text = export_obj(
                mesh, include_normals=False, include_color=False, include_texture=False,
                write_texture=False, digits=digits, header=f"flame_transit frame {i} of {t}",
            )
            (tmp / names[i]).write_text(text, encoding="utf-8")
        manifest = {
            "format": OBJ_SEQUENCE_FORMAT,
            "version": 1,
            "fps": info.fps,
            "frames": t,
            "vertices": int(v.shape[1]),
            "faces": int(f.shape[0]),
            "files": names,
            "head_name": info.head_name,
            "anchor_frames": info.anchor_frames,
            "anchor_labels": info.anchor_labels,
            "units": "metres",
            "axes": "+X subject's left, +Y up, +Z towards the viewer",
            "metadata": meta_json,
        }
        (tmp / DIRECTORY_MARKER).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return user_path(os.fspath(folder)).absolute()


#: alias of :func:`save_obj_sequence`
write_obj_sequence = save_obj_sequence
