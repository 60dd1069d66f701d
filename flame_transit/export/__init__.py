"""Exporters: ``.npz`` parameters + meshes, ``.obj`` sequences, animated ``.glb``, ARKit curves.

All writers validate their inputs first and write atomically (a temporary beside the target,
renamed when complete); bad input or an unwritable place raises
:class:`~flame_transit.errors.InputError` and leaves nothing behind.

* :func:`save_npz` / :func:`load_npz` -- per-frame FLAME-layout parameters, meshes, metadata;
* :func:`save_obj_sequence` -- ``frame_0000.obj`` ... plus ``sequence.json`` in a folder;
* :func:`save_glb` -- the head with named expression morph targets and one ``weights`` animation;
* :func:`save_arkit_csv` / :func:`save_arkit_json` / :func:`load_arkit_curves` -- ARKit's 52
  blendshape curves (Live Link Face CSV, JSON);
* :func:`export` -- dispatch on the path through :mod:`flame_transit.outputs`;
* :func:`compute_vertices` -- run a head over a clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import InputError
from ..io_utils import PathLike
from ..outputs import check_output_path, output_format, suffixes
from .common import ClipInfo, compute_vertices
from .curves import ArkitCurves, load_arkit_curves, save_arkit_csv, save_arkit_json
from .gltf import MAX_MORPH_TARGETS, save_glb
from .npz import FORMAT_VERSION, NpzAnimation, load_npz, save_npz
from .obj import save_obj_sequence, write_obj_sequence

__all__ = [
    "ArkitCurves",
    "ClipInfo",
    "FORMAT_VERSION",
    "MAX_MORPH_TARGETS",
    "NpzAnimation",
    "compute_vertices",
    "export",
    "load_arkit_curves",
    "load_npz",
    "save_arkit_csv",
    "save_arkit_json",
    "save_glb",
    "save_npz",
    "save_obj_sequence",
    "write_obj_sequence",
    "EXPORT_SUFFIXES",
]

#: suffixes :func:`export` understands ("" = a folder of .obj files)
EXPORT_SUFFIXES = suffixes("export") + ("",)


def export(path: PathLike, params: Any = None, *, head: Any = None, fps: Optional[float] = None,
           instruction: str = "", seed: Optional[int] = None, **kwargs: Any) -> Path:
    """Export a clip, choosing the format from ``path`` (:mod:`flame_transit.outputs`).

    ``*.npz`` → :func:`save_npz`, ``*.glb`` → :func:`save_glb`, ``*.csv`` →
    :func:`save_arkit_csv`, ``*.json`` → :func:`save_arkit_json`, a path without a suffix (or
    ending in ``/``) → :func:`save_obj_sequence` into that folder. ``params`` (a
    :class:`~flame_transit.trajectory.Trajectory`), ``head`` and ``fps`` go to every writer;
    ``instruction`` and ``seed`` are stored as provenance (in the ``.obj`` manifest's and the
    ``.glb``'s metadata); other keyword arguments go to the chosen writer.

    Raises:
        InputError: an unknown suffix (e.g. ``.obj`` for a single file, ``.fbx``) or a rendered
            format (``.mp4``, ``.gif``, ``.png``: use :meth:`~flame_transit.api.Animation.save`).
    """
    p = check_output_path(path, kind="export")
    name = output_format(path, kind="export").name
    common: Dict[str, Any] = dict(head=head, fps=fps)
    if name == "npz":
        return save_npz(p, params, instruction=instruction, seed=seed, **common, **kwargs)
    if name == "csv":
        return save_arkit_csv(p, params, **common, **kwargs)
    if name == "json":
        return save_arkit_json(p, params, instruction=instruction, seed=seed, **common, **kwargs)
    provenance = {k: v for k, v in (("instruction", instruction), ("seed", seed)) if v not in ("", None)}
    if provenance:
        kwargs["metadata"] = {**provenance, **dict(kwargs.get("metadata") or {})}
    if name == "glb":
        return save_glb(p, params=params, **common, **kwargs)
    if name == "obj":
        return Path(save_obj_sequence(p, params=params, **common, **kwargs))
    raise InputError(f"internal: no writer for the export format {name!r}")  # the table and this list agree
