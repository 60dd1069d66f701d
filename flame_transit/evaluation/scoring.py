"""The paper's evaluation protocol: classify generated expressions, report Acc1 / Acc2 / G-mean.

Protocol (I2FET paper, sec. IV): an expression classifier, trained on held-out labelled data,
labels each expression a model generates for an instruction ("Turn this face from disgust to
happiness." -> two anchors). Then

* **Acc1** -- accuracy over every expression named in the instructions (each anchor counts once);
* **Acc2** -- fraction of instructions whose expressions are *all* classified right;
* **G-mean** -- geometric mean over the true classes of the per-class recall (so a model that
  never produces one emotion scores 0).

Here the classifier is a deterministic softmax regression (or a small MLP) on expression + jaw
codes, trained on a synthetic FACS split generated with a seed disjoint from any training seed
(:func:`~.classifier.default_classifier`) or on any :class:`~flame_transit.data.ExpressionDataset`. It
predicts neutral as well, so an anchor too weak to read as its emotion counts as wrong.

Models plug in as ``generate_fn(instructions: list[str]) -> list[anchors]``, where each anchors
object has ``.expression (K, E)`` and ``.jaw_pose (K, 3)`` (torch or numpy; e.g.
:class:`flame_transit.trajectory.Anchors`). :func:`~.report.run_ablation_table` evaluates several models
and writes a markdown table, JSON and confusion-matrix PNGs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..data.dataset import ExpressionDataset
from ..errors import InputError
from .cases import _as_cases, parse_labels
from .classifier import ExpressionClassifier, _to_numpy

__all__ = [
    "EvalResult",
    "scores_from_predictions",
    "evaluate_generator",
    "oracle_generator",
]


@dataclass
class EvalResult:
    """Scores of one model under the paper's protocol (fractions in [0, 1]).

    Attributes:
        acc1: per-expression accuracy.
        acc2: per-instruction accuracy (all expressions right).
        gmean: geometric mean of the per-class recalls of the true classes.
        confusion: ``(C, C)`` counts, rows = true label, columns = predicted (``label_names``).
        label_names: classes of the confusion matrix (the classifier's).
        per_class: true class -> recall.
        n_cases, n_expressions: how many instructions / expressions were scored.
        seconds_per_instruction: wall time of ``generate_fn`` per instruction.
        predictions: predicted labels per case.
        name: model name.
    """

    acc1: float
    acc2: float
    gmean: float
    confusion: np.ndarray
    label_names: Tuple[str, ...]
    per_class: Dict[str, float]
    n_cases: int
    n_expressions: int
    seconds_per_instruction: float = float("nan")
    predictions: List[Tuple[str, ...]] = field(default_factory=list)
    name: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "acc1": self.acc1,
            "acc2": self.acc2,
            "gmean": self.gmean,
            "per_class": self.per_class,
            "confusion": self.confusion.tolist(),
            "label_names": list(self.label_names),
            "n_cases": self.n_cases,
            "n_expressions": self.n_expressions,
            "seconds_per_instruction": self.seconds_per_instruction,
        }

    def __str__(self) -> str:
        return (f"{self.name or 'model'}: Acc1 {100 * self.acc1:.2f}  Acc2 {100 * self.acc2:.2f}  "
                f"G-mean {100 * self.gmean:.2f}  ({self.n_cases} instructions)")


def scores_from_predictions(
    truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], label_names: Sequence[str]
) -> Tuple[float, float, float, np.ndarray, Dict[str, float]]:
    """(acc1, acc2, gmean, confusion, per_class) from per-case true and predicted label lists.

    Example:
        >>> from flame_transit.data.dataset import LABEL_NAMES
        >>> t = [("happiness", "sadness"), ("sadness", "happiness")]
        >>> p = [("happiness", "sadness"), ("sadness", "anger")]
        >>> a1, a2, g, cm, pc = scores_from_predictions(t, p, LABEL_NAMES)
        >>> a1, a2, round(g, 4)
        (0.75, 0.5, 0.7071)
    """
    names = tuple(label_names)
    idx = {n: i for i, n in enumerate(names)}
    C = len(names)
    cm = np.zeros((C, C), dtype=np.int64)
    right = total = all_right = 0
    for t, p in zip(truth, predicted):
        if len(t) != len(p):
            raise InputError(f"case with {len(t)} true labels got {len(p)} predictions")
        ok = True
        for a, b in zip(t, p):
            if a not in idx or b not in idx:
                raise InputError(f"label {a if a not in idx else b!r} is not among {names}")
            cm[idx[a], idx[b]] += 1
            total += 1
            right += a == b
            ok &= a == b
        all_right += ok
    n = len(truth)
    acc1 = right / total if total else float("nan")
    acc2 = all_right / n if n else float("nan")
    per_class: Dict[str, float] = {}
    for i, name in enumerate(names):
        support = cm[i].sum()
        if support:
            per_class[name] = float(cm[i, i] / support)
    recalls = np.array(list(per_class.values()))
    gmean = float(np.exp(np.mean(np.log(recalls)))) if len(recalls) and recalls.min() > 0 else 0.0
    return float(acc1), float(acc2), gmean, cm, per_class


def _select_anchors(out: Any, n_labels: int, text: str) -> Tuple[np.ndarray, np.ndarray]:
    try:
        expr = _to_numpy(out.expression)
        jaw = _to_numpy(out.jaw_pose)
    except AttributeError as exc:
        raise InputError(f"generate_fn must return objects with .expression and .jaw_pose; got {type(out).__name__}") from exc
    K = expr.shape[0]
    if jaw.shape != (K, 3):
        raise InputError(f"anchors for {text!r}: jaw_pose must be ({K}, 3), got {jaw.shape}")
    if K == n_labels:
        sel = np.arange(K)
    elif K == 2 * n_labels - 1:  # neutral inserted between consecutive expressions
        sel = np.arange(0, K, 2)
    else:
        labels = [str(l).lower() for l in (getattr(out, "labels", None) or [])]
        keep = [i for i, l in enumerate(labels) if l != "neutral"]
        if len(labels) == K and len(keep) == n_labels:
            sel = np.array(keep)
        else:
            raise InputError(
                f"generate_fn returned {K} anchors for {text!r}, which names {n_labels} expressions; "
                f"expected {n_labels} (or {2 * n_labels - 1} with neutral faces in between)"
            )
    return expr[sel], jaw[sel]


def evaluate_generator(
    generate_fn: Callable[[List[str]], Sequence[Any]],
    cases: Iterable[Any],
    classifier: ExpressionClassifier,
    *,
    batch_size: int = 64,
    name: str = "",
    progress: bool = False,
) -> EvalResult:
    """Score a model under the paper's protocol.

    Args:
        generate_fn: ``instructions -> anchors``: one object per instruction with
            ``.expression (K, E)`` and ``.jaw_pose (K, 3)`` (torch or numpy). ``K`` equals the
            number of expressions named, or ``2n - 1`` with neutral faces in between (those are
            skipped).
        cases: :class:`EvalCase` or ``(instruction, [label_A, label_B])`` pairs
            (see :func:`make_eval_cases`).
        classifier: the judge (:func:`default_classifier`).
        batch_size: instructions per ``generate_fn`` call.
        name: model name for tables.
        progress: show a tqdm bar.

    Returns:
        :class:`EvalResult`.
    """
    cases = _as_cases(cases)
    unknown = sorted({l for c in cases for l in c.labels} - set(classifier.label_names))
    if unknown:
        raise InputError(f"the classifier cannot recognise {unknown}; it knows {classifier.label_names}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    feats_e: List[np.ndarray] = []
    feats_j: List[np.ndarray] = []
    seconds = 0.0
    batches = range(0, len(cases), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=f"eval {name}".strip(), unit="batch")
    for start in batches:
        chunk = cases[start:start + batch_size]
        texts = [c.instruction for c in chunk]
        t0 = time.perf_counter()
        outs = list(generate_fn(texts))
        seconds += time.perf_counter() - t0
        if len(outs) != len(chunk):
            raise InputError(f"generate_fn returned {len(outs)} results for {len(chunk)} instructions")
        for case, out in zip(chunk, outs):
            e, j = _select_anchors(out, len(case.labels), case.instruction)
            feats_e.append(e)
            feats_j.append(j)
    pred = classifier.predict(np.concatenate(feats_e), np.concatenate(feats_j))
    predicted: List[Tuple[str, ...]] = []
    i = 0
    for c in cases:
        predicted.append(tuple(classifier.label_names[k] for k in pred[i:i + len(c.labels)]))
        i += len(c.labels)
    acc1, acc2, gmean, cm, per_class = scores_from_predictions([c.labels for c in cases], predicted, classifier.label_names)
    return EvalResult(
        acc1=acc1, acc2=acc2, gmean=gmean, confusion=cm, label_names=classifier.label_names,
        per_class=per_class, n_cases=len(cases), n_expressions=int(len(pred)),
        seconds_per_instruction=seconds / len(cases), predictions=predicted, name=name,
    )


def oracle_generator(
    dataset: ExpressionDataset, cases: Optional[Iterable[Any]] = None, seed: int = 0
) -> Callable[[List[str]], List[Any]]:
    """A "generator" returning real rows of ``dataset`` for the emotions an instruction names:
    the classifier's ceiling on that data (and a perfect model for tests).

    The labels of an instruction come from ``cases`` when given, else from :func:`parse_labels`.
    """
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    rows = {n: np.flatnonzero(dataset.labels == i) for i, n in enumerate(dataset.label_names)}
    known = {c.instruction: c.labels for c in _as_cases(cases)} if cases is not None else {}

    def generate(texts: List[str]) -> List[Any]:
        out = []
        for t in texts:
            labels = known.get(t) or parse_labels(t)
            if not labels:
                raise InputError(f"oracle: no emotion word in {t!r}")
            idx = []
            for l in labels:
                if not len(rows.get(l, [])):
                    raise InputError(f"oracle: the dataset has no {l!r} rows")
                idx.append(int(rng.choice(rows[l])))
            out.append(SimpleNamespace(expression=dataset.expression[idx], jaw_pose=dataset.jaw_pose[idx]))
        return out

    return generate
