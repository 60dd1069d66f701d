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
(:func:`default_classifier`) or on any :class:`~flame_transit.data.ExpressionDataset`. It
predicts neutral as well, so an anchor too weak to read as its emotion counts as wrong.

Models plug in as ``generate_fn(instructions: list[str]) -> list[anchors]``, where each anchors
object has ``.expression (K, E)`` and ``.jaw_pose (K, 3)`` (torch or numpy; e.g.
:class:`flame_transit.trajectory.Anchors`). :func:`run_ablation_table` evaluates several models
and writes a markdown table, JSON and confusion-matrix PNGs.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ..data.dataset import BASIC_EMOTIONS, LABEL_NAMES, ExpressionDataset, normalize_label
from ..expressions import label_of
from ..errors import AssetError, CheckpointMismatchError, InputError
from ..io_utils import read_npz, user_path
from ..text.templates import PAPER_TEMPLATES  # the paper's instruction templates (re-exported)

__all__ = [
    "PAPER_TEMPLATES",
    "PAPER_RESULTS",
    "EvalCase",
    "EvalResult",
    "ExpressionClassifier",
    "train_classifier",
    "default_classifier",
    "make_eval_cases",
    "parse_labels",
    "evaluate_generator",
    "oracle_generator",
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

#: seed offset of the classifier's synthetic data, far from the usual training seeds
CLASSIFIER_SEED = 7_000_003


# -- classifier ---------------------------------------------------------------------------------

_CLS_FORMAT = "flame_transit.expression_classifier"


@dataclass
class ExpressionClassifier:
    """A classifier of expression codes (expression + jaw pose) into emotion labels.

    Prediction is numpy only (softmax regression, or a one-hidden-layer MLP with tanh).

    Attributes:
        label_names: the classes.
        head_name: the head model whose codes it classifies.
        expression_names: that head's expression coordinates.
        mean, std: ``(E + 3,)`` feature standardisation.
        weights: ``[(W1, b1), ...]`` layers; the last one produces logits.
        kind: ``"logreg"`` or ``"mlp"``.
        meta: training settings and accuracies.
    """

    label_names: Tuple[str, ...]
    head_name: str
    expression_names: Tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    weights: List[Tuple[np.ndarray, np.ndarray]]
    kind: str = "logreg"
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def num_features(self) -> int:
        return int(self.mean.shape[0])

    @property
    def num_expression(self) -> int:
        return self.num_features - 3

    def _features(self, expression: Any, jaw_pose: Any) -> np.ndarray:
        e = _to_numpy(expression).reshape(-1, _to_numpy(expression).shape[-1])
        j = _to_numpy(jaw_pose).reshape(-1, 3)
        if e.shape[1] != self.num_expression:
            raise CheckpointMismatchError(
                f"the classifier expects {self.num_expression} expression coefficients (head "
                f"{self.head_name!r}), got {e.shape[1]}; train a classifier for this head"
            )
        if len(e) != len(j):
            raise InputError(f"{len(e)} expression rows but {len(j)} jaw rows")
        return np.concatenate([e, j], axis=1)

    def logits(self, expression: Any, jaw_pose: Any) -> np.ndarray:
        """``(N, C)`` class scores for expression ``(N, E)`` and jaw pose ``(N, 3)``."""
        x = (self._features(expression, jaw_pose) - self.mean) / self.std
        for i, (W, b) in enumerate(self.weights):
            x = x @ W + b
            if i < len(self.weights) - 1:
                x = np.tanh(x)
        return x

    def predict_proba(self, expression: Any, jaw_pose: Any) -> np.ndarray:
        """``(N, C)`` class probabilities."""
        z = self.logits(expression, jaw_pose)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, expression: Any, jaw_pose: Any) -> np.ndarray:
        """``(N,)`` int64 indices into ``label_names``."""
        return self.logits(expression, jaw_pose).argmax(axis=1).astype(np.int64)

    def predict_names(self, expression: Any, jaw_pose: Any) -> List[str]:
        return [self.label_names[i] for i in self.predict(expression, jaw_pose)]

    def accuracy(self, dataset: ExpressionDataset) -> float:
        """Fraction of ``dataset`` rows classified as their label."""
        self.check_dataset(dataset)
        pred = self.predict(dataset.expression, dataset.jaw_pose)
        truth = np.array([self.label_names.index(n) for n in dataset.label_strings])
        return float((pred == truth).mean()) if len(truth) else float("nan")

    def check_dataset(self, dataset: ExpressionDataset) -> None:
        if dataset.num_expression != self.num_expression:
            raise CheckpointMismatchError(
                f"dataset has {dataset.num_expression} expression coefficients, the classifier "
                f"{self.num_expression} (head {self.head_name!r})"
            )
        unknown = sorted(set(dataset.label_strings) - set(self.label_names))
        if unknown:
            raise InputError(f"the classifier does not know the labels {unknown} (knows {self.label_names})")

    # -- files -------------------------------------------------------------------------------
    def save(self, path: Union[str, Path]) -> Path:
        """Write to ``.npz`` atomically."""
        import io

        from ..io_utils import atomic_write_bytes

        header = {
            "format": _CLS_FORMAT,
            "label_names": list(self.label_names),
            "head_name": self.head_name,
            "expression_names": list(self.expression_names),
            "kind": self.kind,
            "layers": len(self.weights),
            "meta": self.meta,
        }
        arrays = {"header_json": np.array(json.dumps(header)), "mean": self.mean, "std": self.std}
        for i, (W, b) in enumerate(self.weights):
            arrays[f"W{i}"], arrays[f"b{i}"] = W, b
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: Union[str, Path]) -> "ExpressionClassifier":
        path = user_path(path)
        data = read_npz(path, "classifier", AssetError)
        try:
            header = json.loads(str(data["header_json"]))
        except Exception as exc:
            raise AssetError(f"{path} is not a classifier file written by ExpressionClassifier.save ({exc})") from exc
        if header.get("format") != _CLS_FORMAT:
            raise AssetError(f"{path} is not an expression classifier (format {header.get('format')!r})")
        try:
            weights = [(data[f"W{i}"], data[f"b{i}"]) for i in range(int(header["layers"]))]
            return cls(
                label_names=tuple(header["label_names"]),
                head_name=header["head_name"],
                expression_names=tuple(header["expression_names"]),
                mean=data["mean"],
                std=data["std"],
                weights=weights,
                kind=header["kind"],
                meta=header.get("meta", {}),
            )
        except KeyError as exc:
            raise AssetError(f"{path}: classifier file lacks {exc}") from exc


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    return a


def train_classifier(
    dataset: ExpressionDataset,
    *,
    kind: str = "logreg",
    seed: int = 0,
    l2: float = 1e-3,
    hidden: int = 64,
    max_iter: int = 500,
    label_names: Optional[Sequence[str]] = None,
) -> ExpressionClassifier:
    """Train a deterministic expression classifier on ``dataset`` (expression + jaw features).

    Args:
        dataset: labelled codes (e.g. a synthetic split not used to train any generator).
        kind: ``"logreg"`` (softmax regression) or ``"mlp"`` (one tanh hidden layer).
        seed: initialisation seed (MLP); same seed, same classifier.
        l2: weight decay on the weights (mean squared weight times ``l2``).
        hidden: hidden units of the MLP.
        max_iter: L-BFGS iterations.
        label_names: the classes (default: the dataset's labels that occur, in canonical order).

    Returns:
        :class:`ExpressionClassifier`; ``meta["train_accuracy"]`` holds its training accuracy.

    Example:
        >>> from flame_transit.data import make_synthetic_dataset
        >>> clf = train_classifier(make_synthetic_dataset(samples_per_emotion=20, seed=3))
        >>> clf.accuracy(make_synthetic_dataset(samples_per_emotion=20, seed=4)) > 0.8
        True
    """
    from scipy.optimize import minimize

    if kind not in ("logreg", "mlp"):
        raise InputError(f"classifier kind must be 'logreg' or 'mlp', got {kind!r}")
    if len(dataset) == 0:
        raise InputError("cannot train a classifier on an empty dataset")
    if label_names is None:
        present = set(dataset.label_strings)
        label_names = [n for n in dataset.label_names if n in present]
    label_names = tuple(label_names)
    if len(label_names) < 2:
        raise InputError(f"a classifier needs at least two classes, the dataset has {label_names}")
    try:
        y = np.array([label_names.index(n) for n in dataset.label_strings], dtype=np.int64)
    except ValueError as exc:
        raise InputError(f"dataset labels outside label_names {label_names}: {exc}") from exc
    X = dataset.features().astype(np.float64)
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std = np.where(std < 1e-6, 1.0, std)
    Xs = (X - mean) / std
    N, D = Xs.shape
    C = len(label_names)
    Y = np.zeros((N, C))
    Y[np.arange(N), y] = 1.0
    rng = np.random.default_rng(seed)

    if kind == "logreg":
        shapes = [(D, C), (C,)]
        x0 = np.zeros(D * C + C)
    else:
        shapes = [(D, hidden), (hidden,), (hidden, C), (C,)]
        x0 = np.concatenate([
            rng.normal(0, 1 / math.sqrt(D), D * hidden), np.zeros(hidden),
            rng.normal(0, 1 / math.sqrt(hidden), hidden * C), np.zeros(C),
        ])

    def unpack(theta: np.ndarray) -> List[np.ndarray]:
        out, i = [], 0
        for s in shapes:
            n = int(np.prod(s))
            out.append(theta[i:i + n].reshape(s))
            i += n
        return out

    def loss_grad(theta: np.ndarray) -> Tuple[float, np.ndarray]:
        params = unpack(theta)
        if kind == "logreg":
            W, b = params
            z = Xs @ W + b
        else:
            W1, b1, W2, b2 = params
            h = np.tanh(Xs @ W1 + b1)
            z = h @ W2 + b2
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.sum(Y * np.log(p + 1e-12)) / N
        dz = (p - Y) / N
        if kind == "logreg":
            grads = [Xs.T @ dz + l2 * W, dz.sum(0)]
            loss += 0.5 * l2 * np.sum(W**2)
        else:
            dW2 = h.T @ dz + l2 * W2
            dh = dz @ W2.T * (1 - h**2)
            grads = [Xs.T @ dh + l2 * W1, dh.sum(0), dW2, dz.sum(0)]
            loss += 0.5 * l2 * (np.sum(W1**2) + np.sum(W2**2))
        return float(loss), np.concatenate([g.reshape(-1) for g in grads])

    res = minimize(loss_grad, x0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    params = unpack(res.x)
    weights = [(params[i], params[i + 1]) for i in range(0, len(params), 2)]
    clf = ExpressionClassifier(
        label_names=label_names,
        head_name=dataset.head_name,
        expression_names=dataset.expression_names,
        mean=mean,
        std=std,
        weights=weights,
        kind=kind,
        meta={"seed": int(seed), "l2": l2, "hidden": hidden if kind == "mlp" else 0,
              "train_rows": int(N), "source": dataset.source, "converged": bool(res.success)},
    )
    clf.meta["train_accuracy"] = clf.accuracy(dataset)
    return clf


def default_classifier(
    head: Any = None,
    *,
    seed: int = CLASSIFIER_SEED,
    samples_per_emotion: int = 300,
    kind: str = "logreg",
    include_neutral: bool = True,
    au_basis: Any = None,
) -> ExpressionClassifier:
    """The evaluation classifier of a head: trained on a synthetic FACS set drawn with ``seed``
    (disjoint from generator training data drawn with small seeds), checked on another draw.

    ``meta["heldout_accuracy"]`` holds the accuracy on a fresh synthetic draw (``seed + 1``).
    """
    from ..data.synthetic import make_synthetic_dataset

    train = make_synthetic_dataset(head, samples_per_emotion=samples_per_emotion, seed=seed,
                                   include_neutral=include_neutral, au_basis=au_basis)
    clf = train_classifier(train, kind=kind, seed=seed)
    check = make_synthetic_dataset(head, samples_per_emotion=max(samples_per_emotion // 3, 20), seed=seed + 1,
                                   include_neutral=include_neutral, au_basis=au_basis)
    clf.meta["heldout_accuracy"] = clf.accuracy(check)
    return clf


# -- cases --------------------------------------------------------------------------------------


class EvalCase(NamedTuple):
    """One instruction and the labels of the expressions it names, in order."""

    instruction: str
    labels: Tuple[str, ...]


def make_eval_cases(
    templates: Optional[Sequence[str]] = None,
    emotions: Sequence[str] = BASIC_EMOTIONS,
    rng: Union[np.random.Generator, int, None] = None,
    *,
    per_pair: Optional[int] = None,
    words: Optional[str] = None,
) -> List[EvalCase]:
    """Every ordered pair of distinct emotions × templates ("from A to B").

    Args:
        templates: templates with ``{a}``/``{b}`` placeholders (default: the paper's five,
            :data:`PAPER_TEMPLATES`; use ``flame_transit.text.templates.HELDOUT_TEMPLATES`` to
            test unseen wording).
        emotions: the emotions to pair (default: the seven basic ones -> 42 ordered pairs).
        rng: generator or seed, used with ``per_pair`` and ``words``.
        per_pair: use only this many randomly chosen templates per pair.
        words: ``None`` = canonical words ("disgust", "happiness"); ``"train"``, ``"heldout"``
            or ``"all"`` = synonyms from that pool drawn with ``rng``.

    Example:
        >>> cases = make_eval_cases()
        >>> len(cases), cases[0]
        (210, EvalCase(instruction='Turn this face from happiness to sadness.', labels=('happiness', 'sadness')))
    """
    from ..data.synthetic import render_template

    templates = tuple(PAPER_TEMPLATES if templates is None else templates)
    if not templates:
        raise InputError("make_eval_cases needs at least one template")
    emo = [normalize_label(e) for e in emotions]
    if len(set(emo)) != len(emo) or len(emo) < 2:
        raise InputError(f"need at least two distinct emotions, got {list(emotions)}")
    if per_pair is not None and not 1 <= per_pair <= len(templates):
        raise InputError(f"per_pair must be in 1..{len(templates)}, got {per_pair}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    cases: List[EvalCase] = []
    for a in emo:
        for b in emo:
            if a == b:
                continue
            if per_pair is None:
                chosen = templates
            else:
                chosen = [templates[i] for i in sorted(gen.choice(len(templates), per_pair, replace=False))]
            for t in chosen:
                text = render_template(t, [a, b], gen if words else None, words or "train")
                cases.append(EvalCase(text, (a, b)))
    return cases


_WORD_RE = re.compile(r"[a-z]+")


def parse_labels(instruction: str) -> List[str]:
    """Emotion labels named in an instruction, in order (the text package's parser when it
    can read it, else a plain word lookup).

    Example:
        >>> parse_labels("Turn this face from disgusted to happy.")
        ['disgust', 'happiness']
    """
    try:
        from ..text.parse import parse_instruction

        labels = [str(seg.label) for seg in parse_instruction(instruction).segments]
        if labels and all(l in LABEL_NAMES for l in labels):
            return labels
    except Exception:  # noqa: BLE001 - fall back to the word lookup below
        pass
    out = []
    for w in _WORD_RE.findall(str(instruction).lower()):
        try:
            out.append(label_of(w))
        except KeyError:
            pass
    return out


def _as_cases(cases: Iterable[Any]) -> List[EvalCase]:
    out = []
    for c in cases:
        try:
            text, labels = c
        except (TypeError, ValueError) as exc:
            raise InputError(f"an eval case must be (instruction, [label_A, label_B]), got {c!r}") from exc
        if isinstance(labels, str):
            raise InputError(f"labels of case {text!r} must be a list of labels, got the string {labels!r}")
        labs = tuple(normalize_label(l) for l in labels)
        if not labs:
            raise InputError(f"case {text!r} names no expressions")
        out.append(EvalCase(str(text), labs))
    if not out:
        raise InputError("no eval cases")
    return out


# -- evaluation ---------------------------------------------------------------------------------


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


# -- reporting ----------------------------------------------------------------------------------


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
