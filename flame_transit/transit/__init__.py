"""Transit: instruction → anchor expressions (IFED + I2FET CVAE), the neutral face (NED), the
MotionCLIP-style baseline, checkpoints and training.

* :func:`generate_anchors` / :func:`generate_anchors_batch` -- instruction(s) → :class:`~flame_transit.trajectory.Anchors`;
* :func:`neutral_anchor` -- the subject's neutral face (NED);
* :func:`load_checkpoint`, :func:`load_default_model`, :class:`TransitModel`;
* :func:`train` with :class:`TrainConfig` (``flame-transit train``);
* the models: :class:`IFED`, :class:`I2FET`, :class:`NED`, :class:`MotionCLIPBaseline`.

Names are imported lazily (torch models load on first use).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "generate_anchors": "anchors",
    "generate_anchors_batch": "anchors",
    "neutral_anchor": "anchors",
    "resolve_model": "anchors",
    "TransitModel": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_default_model": "checkpoint",
    "save_checkpoint": "checkpoint",
    "default_checkpoint_path": "checkpoint",
    "TrainConfig": "train",
    "train": "train",
    "IFED": "ifed",
    "IFEDConfig": "ifed",
    "I2FET": "i2fet",
    "I2FETConfig": "i2fet",
    "NED": "ned",
    "NEDConfig": "ned",
    "MotionCLIPBaseline": "baseline",
    "BaselineConfig": "baseline",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
