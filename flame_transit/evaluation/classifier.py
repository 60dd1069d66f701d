"""The judge of the paper's protocol: an expression classifier on expression + jaw codes.

A deterministic softmax regression (or a small MLP), trained on a synthetic FACS split drawn with
a seed disjoint from any training seed (:func:`default_classifier`) or on any
:class:`~flame_transit.data.ExpressionDataset`. It predicts neutral as well, so an anchor too
weak to read as its emotion counts as wrong. Saved as ``.npz`` (:meth:`ExpressionClassifier.save`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..data.dataset import ExpressionDataset
from ..errors import AssetError, CheckpointMismatchError, InputError
from ..io_utils import read_npz_with_header, user_path

__all__ = [
    "ExpressionClassifier",
    "train_classifier",
    "default_classifier",
    "CLASSIFIER_SEED",
]


#: seed offset of the classifier's synthetic data, far from the usual training seeds
CLASSIFIER_SEED = 7_000_003


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
        header, data = read_npz_with_header(path, "expression classifier", "ExpressionClassifier.save", _CLS_FORMAT,
                                            AssetError)
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
