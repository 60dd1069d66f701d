"""The light model every look and backend shares (camera frame = head frame: +Z towards the
viewer, +Y up): ``shade(n) = AMBIENT + HEADLIGHT * max(n.z, 0) + KEY * max(n . KEY_DIR, 0)``,
two-sided; a surface facing the viewer gets exactly 1.0, so albedos are "the colour when seen
face-on". A Blinn specular for the shaded look, and :func:`relight` for photo colours.

The functions take numpy arrays or torch tensors (rasteriser backends shade on their device with
this code); the GL backend's shaders are generated from the same constants.
"""

from __future__ import annotations

from typing import Any, Callable, Tuple

import numpy as np

__all__ = ["AMBIENT", "HEADLIGHT", "KEY", "KEY_DIR", "HALF_KEY", "SPECULAR", "SHININESS", "LUMA",
           "shade_lambert", "specular_highlight", "relight"]

AMBIENT = 0.36
HEADLIGHT = 0.40
KEY_DIR = np.array([-0.45, 0.55, 0.70]) / np.linalg.norm([-0.45, 0.55, 0.70])
KEY = (1.0 - AMBIENT - HEADLIGHT) / float(KEY_DIR[2])
#: Blinn specular of the shaded look: highlights of the headlight (half vector = +Z) and the key
SPECULAR = 0.10
SHININESS = 24.0
HALF_KEY = (KEY_DIR + np.array([0.0, 0.0, 1.0])) / np.linalg.norm(KEY_DIR + np.array([0.0, 0.0, 1.0]))
#: Rec. 601 luma weights
LUMA = np.array([0.299, 0.587, 0.114])


def _xp(x: Any) -> Tuple[Any, Callable[[Any], Any]]:
    """(array module, constant -> array like ``x``) for a numpy array or a torch tensor."""
    if type(x).__module__.startswith("torch"):
        import torch

        return torch, lambda c: torch.as_tensor(c, dtype=x.dtype, device=x.device)
    return np, lambda c: np.asarray(c, dtype=np.float64)


def _front(normals: Any) -> Tuple[Any, Any, Callable[[Any], Any]]:
    n = normals if type(normals).__module__.startswith("torch") else np.asarray(normals, dtype=np.float64)
    xp, const = _xp(n)
    return xp.where(n[..., 2:3] < 0, -n, n), xp, const


def shade_lambert(normals: Any) -> Any:
    """Diffuse light factor of unit normals ``(..., 3)`` (two-sided: normals facing away from
    the viewer are flipped), 1.0 for a surface facing the viewer. numpy or torch.

    Example:
        >>> float(shade_lambert(np.array([0.0, 0.0, 1.0])))
        1.0
    """
    n, xp, const = _front(normals)
    zero = const(0.0)
    return AMBIENT + HEADLIGHT * xp.maximum(n[..., 2], zero) + KEY * xp.maximum(n @ const(KEY_DIR), zero)


def specular_highlight(normals: Any) -> Any:
    """Blinn highlight of unit normals ``(..., 3)`` per unit of a layer's ``specular``.

    Example:
        >>> round(float(specular_highlight(np.array([0.0, 0.0, 1.0]))), 4)
        0.1086
    """
    n, xp, const = _front(normals)
    zero = const(0.0)
    return SPECULAR * (xp.maximum(n[..., 2], zero) ** SHININESS
                       + 0.6 * xp.maximum(n @ const(HALF_KEY), zero) ** SHININESS)


def relight(color: Any, ratio: Any) -> Any:
    """Apply a shading ratio ``(...)`` to photo colours ``(..., 3)`` in 0..1 (see
    :class:`~flame_transit.render.types.Layer`): ``c * r`` where ``r <= 1``, a grey lift
    ``c + (r - 1) * luma(c)`` where ``r > 1``. numpy or torch.

    Example:
        >>> relight(np.array([0.5, 0.2, 0.1]), np.array(0.5)).tolist()
        [0.25, 0.1, 0.05]
    """
    if not type(color).__module__.startswith("torch"):
        color, ratio = np.asarray(color, dtype=np.float64), np.asarray(ratio, dtype=np.float64)
    xp, const = _xp(color)
    r = ratio[..., None]
    lum = (color @ const(LUMA))[..., None]
    out = xp.where(r <= 1.0, color * r, color + (r - 1.0) * lum)
    return xp.clip(out, 0.0, 1.0)
