"""Checks of user-given numbers and the numeric limits, shared by every stage that takes them.

The limits live here and nowhere else: :func:`~flame_transit.animate`, the trajectory, the
video writer, the exporters, the renderers and the CLI all check against these constants.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from .errors import InputError

__all__ = [
    "positive_number", "check_fps", "check_frame_size", "MIN_FPS", "MAX_FPS", "MAX_GIF_FPS", "MIN_SIZE",
    "MAX_SIZE", "MAX_FRAMES", "MAX_VERTEX_POSITIONS", "MAX_MORPH_TARGETS", "MAX_TEMPERATURE",
]

#: slowest frame rate accepted anywhere (a transition of a few seconds needs frames to show it)
MIN_FPS = 1.0
#: fastest frame rate accepted anywhere (high-speed video; a clip is also capped in frames)
MAX_FPS = 240.0
#: smallest output frame side, pixels (``animate(size=...)``, ``--size``)
MIN_SIZE = 16
#: largest frame side, pixels, for outputs and renderers (render targets of 8192 are common to
#: current drivers -- llvmpipe here allows 16384 -- and the photo look supersamples the mouth
#: 2x2, so outputs stop at half of that)
MAX_SIZE = 4096
#: fastest GIF: its delays are centiseconds, and browsers treat delays under 2 cs as 10 cs
MAX_GIF_FPS = 50.0
#: longest clip a trajectory builds, in frames
MAX_FRAMES = 10_000
#: largest mesh sequence an exporter accepts, in vertex positions (frames x vertices)
MAX_VERTEX_POSITIONS = 60_000_000
#: most named morph targets in a .glb
MAX_MORPH_TARGETS = 64
#: largest latent temperature: the CVAE's latent is N(0, I); ten standard deviations out the
#: decoder only extrapolates (and far beyond, overflows to NaN)
MAX_TEMPERATURE = 10.0


def positive_number(name: str, value: object, *, allow_zero: bool = False, maximum: Optional[float] = None,
                    minimum: Optional[float] = None) -> float:
    """``value`` as a float; :class:`InputError` naming ``name`` unless it is a finite real
    number ``> 0`` (``>= 0`` with ``allow_zero``), at least ``minimum`` and at most ``maximum``.

    Example:
        >>> positive_number("duration", 2.5)
        2.5
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise InputError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise InputError(f"{name} must be finite, got {value!r}")
    if v < 0 or (v == 0 and not allow_zero):
        raise InputError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    if maximum is not None and v > maximum:
        raise InputError(f"{name} must be at most {maximum:g}, got {value!r}")
    if minimum is not None and v < minimum:
        raise InputError(f"{name} must be at least {minimum:g}, got {value!r}")
    return v


def check_fps(fps: object) -> float:
    """``fps`` as a float; :class:`InputError` unless it is a real number in
    ``[MIN_FPS, MAX_FPS]``.

    Example:
        >>> check_fps(25)
        25.0
    """
    return positive_number("fps", fps, minimum=MIN_FPS, maximum=MAX_FPS)


def check_frame_size(size: object) -> None:
    """:class:`InputError` unless ``size`` is an int or a ``(height, width)`` pair of ints in
    ``[MIN_SIZE, MAX_SIZE]`` (an output frame size).

    Example:
        >>> check_frame_size((480, 640))
    """
    sizes = size if isinstance(size, (tuple, list)) else (size, size)
    if len(sizes) != 2 or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) and MIN_SIZE <= s <= MAX_SIZE
        for s in sizes
    ):
        raise InputError(f"size must be an int or (height, width) between {MIN_SIZE} and {MAX_SIZE}, got {size!r}")
