"""Evaluation: the paper's protocol (Acc1 / Acc2 / G-mean of generated anchors, read by an
expression classifier), the ablation run of ``flame-transit eval``, and the perceptual check of
rendered clips by an independent classifier (``flame-transit eval --perceptual``).

Names are imported on first use (the modules pull in torch, matplotlib, renderers).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    # the judge
    "ExpressionClassifier": "classifier",
    "train_classifier": "classifier",
    "default_classifier": "classifier",
    # instructions and the labels they name
    "PAPER_TEMPLATES": "cases",
    "EvalCase": "cases",
    "make_eval_cases": "cases",
    "eval_cases": "cases",
    "parse_labels": "cases",
    # scores
    "EvalResult": "scoring",
    "evaluate_generator": "scoring",
    "oracle_generator": "scoring",
    "scores_from_predictions": "scoring",
    # reports
    "PAPER_RESULTS": "report",
    "markdown_table": "report",
    "save_confusion_png": "report",
    "run_ablation_table": "report",
    # the paper protocol on transit models
    "ABLATIONS": "protocol",
    "generator_for": "protocol",
    "evaluate_model": "protocol",
    "run_paper_protocol": "protocol",
    # rendered clips judged by facex
    "perceptual_eval": "perceptual",
    "FacexJudge": "perceptual",
    "PerceptualResult": "perceptual",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
