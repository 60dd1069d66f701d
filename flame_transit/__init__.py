"""flame_transit: instruction-driven 3D facial expression transitions on FLAME-layout heads.

Heavy parts (torch models, MediaPipe, text encoders, renderers) are imported lazily, so
``import flame_transit`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_head": "flame_transit.head",
    "Head": "flame_transit.head",
    "HeadOutput": "flame_transit.head",
    "FaceParams": "flame_transit.params",
    "animate": "flame_transit.api",
    "Animation": "flame_transit.api",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flame_transit' has no attribute {name!r}")
