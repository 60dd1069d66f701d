"""Exporters: ``.npz`` parameters + meshes, ``.obj`` sequences, animated ``.glb``.

All writers validate their inputs first and write atomically (a temporary beside the target,
renamed when complete); bad input or an unwritable place raises
:class:`~flame_transit.errors.InputError` and leaves nothing behind.

* :func:`save_npz` / :func:`load_npz` -- per-frame FLAME-layout parameters, meshes, metadata;
* :func:`save_obj_sequence` -- ``frame_0000.obj`` ... plus ``sequence.json`` in a folder;
* :func:`save_glb` -- one mesh, one morph target per frame, a ``weights`` animation;
* :func:`export` -- dispatch on the path (``.npz``, ``.glb``, anything without a suffix or
  ending in ``/`` = an ``.obj`` folder);
* :func:`compute_vertices` -- run a head over a clip.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io_utils import PathLike
from .common import ClipInfo, compute_vertices
from .gltf import MAX_GLB_FRAMES, save_glb
from .npz import FORMAT_VERSION, NpzAnimation, load_npz, save_npz
from .obj import save_obj_sequence, write_obj_sequence

__all__ = [
    "ClipInfo",
    "FORMAT_VERSION",
    "MAX_GLB_FRAMES",
    "NpzAnimation",
    "compute_vertices",
    "export",
    "load_npz",
    "save_glb",
    "save_npz",
    "save_obj_sequence",
    "write_obj_sequence",
    "EXPORT_SUFFIXES",
]

#: suffixes :func:`export` understands ("" = a folder of .obj files)
EXPORT_SUFFIXES = (".npz", ".glb", "")


def export(path: PathLike, params: Any = None, **kwargs: Any) -> Path:
    """Export a clip, choosing the format from ``path``.

    ``*.npz`` → :func:`save_npz`, ``*.glb`` → :func:`save_glb`, a path without a suffix (or
    ending in ``/``) → :func:`save_obj_sequence` into that folder. Keyword arguments go to the
    chosen writer.

    Raises:
        InputError: an unknown suffix (e.g. ``.obj`` for a single file, ``.fbx``).
    """
    text = os.fspath(path)
    p = Path(text)
    suffix = "" if text.endswith(("/", os.sep)) else p.suffix.lower()
    if suffix == ".npz":
        return save_npz(p, params, **kwargs)
    if suffix == ".glb":
        return save_glb(p, params=params, **kwargs)
    if suffix == "":
        return save_obj_sequence(p, params=params, **kwargs)
    raise InputError(
        f"cannot export to {text!r}: unknown suffix {suffix!r}; use .npz (parameters + meshes), "
        ".glb (animated mesh) or a folder name without a suffix (.obj sequence)"
    )
