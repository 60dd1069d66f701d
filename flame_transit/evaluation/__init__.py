"""Evaluation: the paper's protocol (Acc1 / Acc2 / G-mean of generated anchors, read by an
expression classifier), the ablation run of ``flame-transit eval``, and the perceptual check of
rendered clips by an independent classifier (``flame-transit eval --perceptual``).

Names are imported on first use (the modules pull in torch, matplotlib, renderers).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    # scoring: classifier, cases, scores, reports
    "PAPER_TEMPLATES": "scoring",
    "PAPER_RESULTS": "scoring",
    "EvalCase": "scoring",
    "EvalResult": "scoring",
    "ExpressionClassifier": "scoring",
    "train_classifier": "scoring",
    "default_classifier": "scoring",
    "make_eval_cases": "scoring",
    "parse_labels": "scoring",
    "evaluate_generator": "scoring",
    "oracle_generator": "scoring",
    "scores_from_predictions": "scoring",
    "markdown_table": "scoring",
    "save_confusion_png": "scoring",
    "run_ablation_table": "scoring",
    # the paper protocol on transit models
    "ABLATIONS": "protocol",
    "generator_for": "protocol",
    "eval_cases": "protocol",
    "evaluate_model": "protocol",
    "run_paper_protocol": "protocol",
    # rendered clips judged by facex
    "perceptual_eval": "perceptual",
    "FacexJudge": "perceptual",
    "PerceptualResult": "perceptual",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
