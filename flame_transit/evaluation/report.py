"""Reports of the paper's protocol: markdown tables (with the paper's CK+ numbers), confusion
matrices as PNG, and :func:`run_ablation_table` (several models, one classifier, one case set).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..data.dataset import ExpressionDataset
from ..errors import InputError
from ..io_utils import user_path
from .cases import _as_cases, make_eval_cases
from .classifier import ExpressionClassifier, default_classifier
from .scoring import EvalResult, evaluate_generator, oracle_generator

__all__ = [
    "PAPER_RESULTS",
    "markdown_table",
    "save_confusion_png",
    "run_ablation_table",
]

log = logging.getLogger(__name__)


#: numbers the paper reports on CK+ (percent): Acc1, Acc2, G-mean
PAPER_RESULTS: Dict[str, Tuple[float, float, float]] = {
    "I2FET (paper)": (91.44, 84.03, 80.30),
    "I2FET w/o IFED (paper)": (76.89, 63.23, 63.59),
    "MotionCLIP (paper)": (52.00, 20.00, 40.48),
}


def markdown_table(
    results: Union[Mapping[str, EvalResult], Sequence[EvalResult]],
    *,
    paper_reference: bool = True,
    title: Optional[str] = None,
) -> str:
    """Markdown table: model | Acc1 | Acc2 | G-mean (percent) | seconds per instruction.

    Example:
        >>> r = EvalResult(0.9, 0.8, 0.7, np.zeros((2, 2)), ("a", "b"), {}, 10, 20, 0.01)
        >>> print(markdown_table({"toy": r}, paper_reference=False).splitlines()[2])
        | toy | 90.00 | 80.00 | 70.00 | 0.0100 |
    """
    items = list(results.items()) if isinstance(results, Mapping) else [(r.name, r) for r in results]
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines += ["| Model | Acc1 (%) | Acc2 (%) | G-mean (%) | s / instruction |", "|---|---:|---:|---:|---:|"]
    for name, r in items:
        lines.append(f"| {name} | {100 * r.acc1:.2f} | {100 * r.acc2:.2f} | {100 * r.gmean:.2f} | {r.seconds_per_instruction:.4f} |")
    if paper_reference:
        for name, (a1, a2, g) in PAPER_RESULTS.items():
            lines.append(f"| {name} | {a1:.2f} | {a2:.2f} | {g:.2f} | (CK+, A6000) |")
    return "\n".join(lines) + "\n"


def save_confusion_png(result: EvalResult, path: Union[str, Path], *, normalize: bool = True) -> Path:
    """Confusion matrix (rows: true classes that occur; columns: all predicted classes) as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..io_utils import atomic_path

    cm = np.asarray(result.confusion, dtype=np.float64)
    rows = [i for i in range(len(cm)) if cm[i].sum() > 0] or list(range(len(cm)))
    m = cm[rows]
    if normalize:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(1.0 + 0.75 * len(result.label_names), 1.2 + 0.6 * len(rows)), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(len(result.label_names)))
    ax.set_xticklabels(result.label_names, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([result.label_names[i] for i in rows])
    ax.set_xlabel("predicted")
    ax.set_ylabel("instructed")
    for r in range(m.shape[0]):
        for c in range(m.shape[1]):
            if m[r, c] > 0:
                ax.text(c, r, f"{m[r, c]:.2f}" if normalize else f"{int(m[r, c])}", ha="center", va="center",
                        fontsize=7, color="white" if m[r, c] > 0.6 * (m.max() or 1) else "black")
    ax.set_title(f"{result.name or 'model'}: Acc1 {100 * result.acc1:.1f}  Acc2 {100 * result.acc2:.1f}  "
                 f"G {100 * result.gmean:.1f}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "model"


def run_ablation_table(
    models: Mapping[str, Callable[[List[str]], Sequence[Any]]],
    cases: Optional[Sequence[Any]] = None,
    classifier: Optional[ExpressionClassifier] = None,
    *,
    head: Any = None,
    out_dir: Optional[Union[str, Path]] = None,
    templates: Optional[Sequence[str]] = None,
    oracle: Optional[ExpressionDataset] = None,
    paper_reference: bool = True,
    batch_size: int = 64,
    progress: bool = True,
    title: str = "Instruction-driven expression generation (paper protocol)",
) -> str:
    """Evaluate several models on the same cases and classifier; return (and write) a table.

    Args:
        models: name -> ``generate_fn`` (e.g. ``{"I2FET": ..., "I2FET w/o IFED": ...,
            "I2FET w/o vertex loss": ..., "MotionCLIP-style": ...}``).
        cases: eval cases (default :func:`make_eval_cases` with ``templates``).
        classifier: the judge (default :func:`default_classifier` of ``head``).
        head: the head model (for the default classifier).
        out_dir: where to write ``ablation.md``, ``results.json`` and ``confusion_<model>.png``.
        templates: templates for the default cases.
        oracle: a labelled dataset (e.g. the synthetic test split) whose real rows are scored
            as an extra "data (classifier ceiling)" row.
        paper_reference: append the paper's CK+ numbers.

    Returns:
        The markdown text.
    """
    if not models:
        raise InputError("run_ablation_table needs at least one model")
    if cases is None:
        cases = make_eval_cases(templates)
    cases = _as_cases(cases)
    if classifier is None:
        classifier = default_classifier(head)
    results: Dict[str, EvalResult] = {}
    entries = list(models.items())
    if oracle is not None:
        entries.append(("data (classifier ceiling)", oracle_generator(oracle, cases)))
    for name, fn in entries:
        results[name] = evaluate_generator(fn, cases, classifier, batch_size=batch_size, name=name, progress=progress)
        log.info("%s", results[name])
    md = markdown_table(results, paper_reference=paper_reference, title=title)
    acc = classifier.meta.get("heldout_accuracy")
    md += (
        f"\n{len(cases)} instructions ({len({c.labels for c in cases})} ordered emotion pairs), "
        f"{sum(len(c.labels) for c in cases)} expressions; classifier: {classifier.kind} on "
        f"{classifier.meta.get('source', '?')}"
        + (f", held-out accuracy {100 * acc:.2f}%" if acc is not None else "")
        + ". Paper rows: the numbers the paper reports on CK+ (not comparable one-to-one).\n"
    )
    if out_dir is not None:
        from ..io_utils import atomic_write_text

        out = user_path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "ablation.md", md)
        atomic_write_text(out / "results.json", json.dumps({k: v.to_dict() for k, v in results.items()}, indent=2))
        for name, r in results.items():
            save_confusion_png(r, out / f"confusion_{_slug(name)}.png")
    return md
