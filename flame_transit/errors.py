"""Exceptions raised by flame_transit.

Every error a user can cause derives from :class:`FlameTransitError`, so callers can catch one
type; each message names the problem and what to do about it. What flame_transit reads but
does not fully understand (words of an instruction it ignored, a clipped intensity) is a
:class:`InstructionWarning`, a ``UserWarning`` the command line prints as one line.
"""

from __future__ import annotations

__all__ = [
    "FlameTransitError",
    "AssetError",
    "InputError",
    "NoFaceError",
    "InstructionError",
    "CheckpointMismatchError",
    "RendererUnavailableError",
    "InstructionWarning",
]


class FlameTransitError(Exception):
    """Base class of all errors raised on purpose by flame_transit."""


class AssetError(FlameTransitError):
    """A model file (FLAME pickle, DECA checkpoint, CLIP weights, ...) is missing or malformed."""


class InputError(FlameTransitError, ValueError):
    """An argument has the wrong type, shape, range or value."""


class NoFaceError(FlameTransitError):
    """No face was found in the input image."""


class InstructionError(FlameTransitError, ValueError):
    """An instruction could not be parsed into expressions."""


class CheckpointMismatchError(AssetError):
    """A checkpoint was trained for a different head model or text encoder."""


class RendererUnavailableError(FlameTransitError):
    """The requested renderer backend cannot start on this machine."""


class InstructionWarning(UserWarning):
    """An instruction was read, but some of it was ignored or adjusted (unknown words beside
    known ones, an intensity clipped to its range)."""
