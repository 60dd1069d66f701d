"""The output formats: one table of what each path suffix writes, and the path checks.

Every writer entry point resolves a path here: :meth:`~flame_transit.api.Animation.save`,
:func:`~flame_transit.export.export` and the CLI (``render`` / ``export``) before any work.
The numeric limits (fps, frame size) live in :mod:`flame_transit.checks`.

=============  ========  ==========================================================
suffix         kind      what is written
=============  ========  ==========================================================
``.mp4``       render    H.264 video of the rendered frames
``.gif``       render    looping GIF of the rendered frames
``.png``       render    contact sheet of the rendered frames
``.npz``       export    parameters + meshes + metadata
``.glb``       export    glTF: the head with named expression morph targets, animated
``.csv``       export    ARKit blendshape curves, Live Link Face's CSV layout
``.json``      export    ARKit blendshape curves as JSON
folder         export    one ``.obj`` per frame (a name without suffix, or ending in ``/``)
=============  ========  ==========================================================

Example:
    >>> output_format("clip.MP4").name, output_format("frames/").name, output_format("c.csv").kind
    ('mp4', 'obj', 'export')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple, Union

from .errors import InputError
from .io_utils import user_path

__all__ = ["OutputFormat", "OUTPUT_FORMATS", "output_format", "check_output_path", "suffixes"]


@dataclass(frozen=True)
class OutputFormat:
    """One output format: ``name`` (the writer's key), ``suffix`` (``""`` = a folder),
    ``kind`` (``"render"``: needs rendered frames; ``"export"``: parameters and meshes only)
    and a one-line ``description``."""

    name: str
    suffix: str
    kind: str
    description: str


#: every output format, by suffix ("" = a folder of .obj files)
OUTPUT_FORMATS: Dict[str, OutputFormat] = {
    f.suffix: f
    for f in (
        OutputFormat("mp4", ".mp4", "render", "H.264 video"),
        OutputFormat("gif", ".gif", "render", "looping GIF"),
        OutputFormat("png", ".png", "render", "contact sheet"),
        OutputFormat("npz", ".npz", "export", "parameters + meshes"),
        OutputFormat("glb", ".glb", "export", "glTF head with named expression shapes, animated"),
        OutputFormat("csv", ".csv", "export", "ARKit curves, Live Link Face CSV"),
        OutputFormat("json", ".json", "export", "ARKit curves, JSON"),
        OutputFormat("obj", "", "export", "a folder of .obj files, one per frame"),
    )
}
_KINDS = {"render": ("render",), "export": ("export",), "any": ("render", "export")}


def suffixes(kind: str = "any") -> Tuple[str, ...]:
    """The file suffixes of ``kind`` (``"render"``, ``"export"`` or ``"any"``), folders left out.

    Example:
        >>> suffixes("render")
        ('.mp4', '.gif', '.png')
    """
    return tuple(s for s, f in OUTPUT_FORMATS.items() if s and f.kind in _KINDS[kind])


def _is_folder_target(text: str, p: Path) -> bool:
    return text.endswith(("/", os.sep)) or p.suffix == "" or p.is_dir()


def output_format(path: Union[str, os.PathLike], kind: str = "any") -> OutputFormat:
    """The :class:`OutputFormat` that ``path`` names: its suffix (any case), or the ``.obj``
    folder for a name without a suffix, ending in a separator, or an existing folder.

    Raises:
        InputError: an empty path, an unknown suffix, or a format not of ``kind``.
    """
    if kind not in _KINDS:
        raise InputError(f"kind must be one of {tuple(_KINDS)}, got {kind!r}")
    if path is None or (isinstance(path, str) and path.strip() == ""):
        raise InputError("output path is empty; give e.g. clip.mp4, seq.npz, anim.glb, curves.csv or a folder/")
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"output path must be a str or a path, got {type(path).__name__}; give e.g. 'clip.mp4'")
    text = os.fspath(path)
    if isinstance(text, bytes):
        raise InputError("output path must be text, got bytes; decode it (e.g. path.decode())")
    p = user_path(text)
    fmt = OUTPUT_FORMATS[""] if _is_folder_target(text, p) else OUTPUT_FORMATS.get(p.suffix.lower())
    allowed = suffixes(kind)
    folder_ok = "obj" if kind != "render" else None
    if fmt is None or fmt.kind not in _KINDS[kind]:
        if fmt is not None and fmt.name == "obj":
            raise InputError(f"{text!r}: {kind} writes a file; use a name ending in {', '.join(allowed)}")
        raise InputError(
            f"unknown output suffix {p.suffix.lower()!r} in {text!r}; use one of {', '.join(allowed)}"
            + (" or a folder name (for .obj files)" if folder_ok else "")
        )
    return fmt


def check_output_path(path: Union[str, os.PathLike], kind: str = "any") -> Path:
    """Validate an output path before any work is done; the path (``~`` expanded).

    ``kind`` is ``"render"`` (video or contact sheet), ``"export"`` (parameters, meshes,
    curves) or ``"any"``. A path without a suffix (or ending in a separator) means an ``.obj``
    folder.

    Raises:
        InputError: unknown suffix, a file where a folder is meant, or a place that cannot be
            written.
    """
    from .io_utils import prepare_output_path

    fmt = output_format(path, kind)
    text = os.fspath(path)
    p = user_path(text)
    if fmt.name == "obj":
        if p.exists() and not p.is_dir():
            raise InputError(f"{text!r} is a file; an .obj sequence needs a folder name")
        parent = p.parent
        if parent.exists() and not os.access(parent, os.W_OK):
            raise InputError(f"cannot write into {parent}: permission denied")
        return p
    p = prepare_output_path(p)
    if not os.access(p.parent, os.W_OK):
        raise InputError(f"cannot write {p}: folder {p.parent} is not writable")
    return p
