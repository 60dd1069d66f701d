"""Datasets of labelled expression codes: synthetic FACS emotion data, datasets built from
labelled photos through the encoder, dataset files.

* :class:`ExpressionDataset` (``.npz`` files, splits, subsets) -- :mod:`.dataset`;
* :func:`make_synthetic_dataset`, :func:`instruction_pairs` -- :mod:`.synthetic`;
* :func:`fit_au_basis` (AUs in a FLAME model's expression space) -- :mod:`.flame_space`;
* :func:`build_dataset`, :func:`read_ckplus`, :func:`read_csv`, :func:`read_folders` -- :mod:`.builder`.

Everything but :mod:`.dataset` is imported on first use (they pull in torch).
"""

from __future__ import annotations

import importlib
from typing import Any

from .dataset import BASIC_EMOTIONS, LABEL_NAMES, DatasetSplits, ExpressionDataset, label_index, normalize_label

_LAZY = {
    "make_synthetic_dataset": ".synthetic",
    "instruction_pairs": ".synthetic",
    "sample_au_codes": ".synthetic",
    "render_template": ".synthetic",
    "AU_NAMES": ".synthetic",
    "EMOTION_SPECS": ".synthetic",
    "FlameAUBasis": ".flame_space",
    "fit_au_basis": ".flame_space",
    "build_dataset": ".builder",
    "read_ckplus": ".builder",
    "read_csv": ".builder",
    "read_folders": ".builder",
    "LabelledImage": ".builder",
    "BuildReport": ".builder",
}

__all__ = [
    "BASIC_EMOTIONS",
    "LABEL_NAMES",
    "DatasetSplits",
    "ExpressionDataset",
    "label_index",
    "normalize_label",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
