"""Checks of user-given numbers, shared by the stages that take them (one message each)."""

from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from .errors import InputError

__all__ = ["positive_number"]


def positive_number(name: str, value: object, *, allow_zero: bool = False, maximum: Optional[float] = None,
                    minimum: Optional[float] = None) -> float:
    """``value`` as a float; :class:`InputError` naming ``name`` unless it is a finite real
    number ``> 0`` (``>= 0`` with ``allow_zero``), at least ``minimum`` and at most ``maximum``.

    Example:
        >>> positive_number("fps", 25, maximum=1000)
        25.0
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
