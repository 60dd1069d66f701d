"""Renderer backends and their registry.

A backend is a :class:`~flame_transit.render.base.Renderer` subclass that rasterises
:class:`~flame_transit.render.types.Frame` draw lists. Backends registered here:

* ``"gl"`` (:mod:`.gl`, the default): moderngl on EGL; Mesa's llvmpipe on a CPU, the NVIDIA
  driver's EGL on a GPU.
* ``"pytorch3d"`` (:mod:`.torch3d`): PyTorch3D's rasteriser with the shared compositor of
  :mod:`.raster`. Never picked by ``"auto"``: it is untested on real PyTorch3D here; ask for it
  by name.

Adding a backend is one file and one :func:`register_backend` call (see docs/CONVENTIONS.md);
a rasteriser only implements :meth:`.raster.RasterRenderer._rasterize`. Backends are imported
on first use, from the ``"module:Class"`` target of their registration.

Example:
    >>> available_renderers()[0], get_renderer("auto").name, check_renderer_name(" OpenGL ")
    ('gl', 'gl', 'opengl')
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from ...errors import InputError

__all__ = [
    "Backend",
    "BACKENDS",
    "register_backend",
    "get_renderer",
    "available_renderers",
    "check_renderer_name",
    "renderer_names",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backend:
    """A registered backend.

    Attributes:
        name: what :func:`get_renderer` takes.
        target: ``"package.module:Class"``, imported on first use.
        aliases: other names for it.
        auto: ``"auto"`` may pick it (in registration order).
        requires: a module that must be importable for the backend to be listed as available
            (``""``: always listed; starting it may still fail with a clear error).
    """

    name: str
    target: str
    aliases: Tuple[str, ...] = ()
    auto: bool = False
    requires: str = ""


#: name -> backend, in registration order
BACKENDS: Dict[str, Backend] = {}


def register_backend(name: str, target: str, *, aliases: Tuple[str, ...] = (), auto: bool = False,
                     requires: str = "") -> Backend:
    """Make ``get_renderer(name)`` build ``target`` (``"module:Class"``); returns the entry.

    Example:
        >>> register_backend("gl", "flame_transit.render.backends.gl:GLRenderer",
        ...                  aliases=("moderngl", "opengl", "egl"), auto=True).name
        'gl'
    """
    key = name.strip().lower()
    module, _, cls = target.partition(":")
    if not key or key == "auto" or not module or not cls:
        raise InputError(f"register_backend needs a name other than 'auto' and a 'module:Class' target, got {name!r}, {target!r}")
    taken = {a: b.name for b in BACKENDS.values() if b.name != key for a in (b.name, *b.aliases)}
    clash = [a for a in (key, *aliases) if a in taken]
    if clash:
        raise InputError(f"renderer name {clash[0]!r} is already taken by backend {taken[clash[0]]!r}")
    BACKENDS[key] = Backend(key, target, tuple(a.strip().lower() for a in aliases), auto, requires)
    return BACKENDS[key]


register_backend("gl", "flame_transit.render.backends.gl:GLRenderer", aliases=("moderngl", "opengl", "egl"), auto=True)
register_backend("pytorch3d", "flame_transit.render.backends.torch3d:PyTorch3DRenderer", aliases=("torch3d",),
                 requires="pytorch3d")


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def renderer_names() -> Tuple[str, ...]:
    """Every name :func:`get_renderer` accepts: ``"auto"``, the backends and their aliases."""
    return ("auto",) + tuple(n for b in BACKENDS.values() for n in (b.name, *b.aliases))


def available_renderers() -> List[str]:
    """Backends :func:`get_renderer` can build on this machine (without starting them)."""
    return [b.name for b in BACKENDS.values() if not b.requires or _found(b.requires)]


def _lookup(key: str) -> Backend:
    for b in BACKENDS.values():
        if key == b.name or key in b.aliases:
            return b
    raise KeyError(key)


def check_renderer_name(name: Any) -> str:
    """``name`` normalised (stripped, lower case); :class:`InputError` unless it is ``"auto"``
    or a registered backend or alias. Starts nothing, so it can run before any work.

    Example:
        >>> check_renderer_name(" GL ")
        'gl'
    """
    if not isinstance(name, str):
        raise InputError(f"renderer name must be a string, got {name!r}")
    key = name.strip().lower()
    if key not in renderer_names():
        raise InputError(f"unknown renderer {name!r}; choose 'auto' or one of {', '.join(BACKENDS)}")
    return key


def get_renderer(name: str = "auto", **kwargs: Any) -> Any:
    """A renderer backend by name.

    Args:
        name: a registered backend (``"gl"``, ``"pytorch3d"``), an alias, or ``"auto"``: the
            first available backend registered with ``auto=True`` (``"gl"``).
        **kwargs: backend options (``gl``: ``samples``, ``backend``, EGL options;
            ``pytorch3d``: ``device``, ``bin_size``).

    Raises:
        RendererUnavailableError: the backend cannot start here (message says what to install).
        InputError: unknown name.

    Example:
        >>> get_renderer("gl").name
        'gl'
    """
    key = check_renderer_name(name)
    if key == "auto":
        choices = [b for b in BACKENDS.values() if b.auto and (not b.requires or _found(b.requires))]
        if not choices:
            raise InputError(f"no backend can be picked automatically; choose one of {', '.join(BACKENDS)}")
        backend = choices[0]
        log.debug("renderer 'auto' -> %s", backend.name)
    else:
        backend = _lookup(key)
    module, _, cls = backend.target.partition(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)
