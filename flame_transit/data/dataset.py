"""Expression datasets: anchors (expression + jaw) with emotion labels, stored as ``.npz``.

An :class:`ExpressionDataset` is what the trainers (I2FET, NED, the baseline) and the evaluation
classifier consume. Each row is one face: the head model's expression coefficients, its jaw
rotation, the identity (shape) coefficients, the global head rotation, an emotion label and a
subject id (so splits can keep a subject's faces together, as the paper's CK+ protocol needs).

Labels index :data:`LABEL_NAMES` (canonical order, neutral first). Datasets built from
different sources (synthetic, CK+, a CSV of photos) share this order.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import AssetError, InputError
from ..expressions import EMOTIONS, LABELS, label_of
from ..io_utils import read_npz, user_path

__all__ = [
    "LABEL_NAMES",
    "BASIC_EMOTIONS",
    "ExpressionDataset",
    "DatasetSplits",
    "label_index",
    "normalize_label",
    "atomic_write_bytes",
]

PathLike = Union[str, "os.PathLike[str]"]

#: canonical label order of every dataset (index = integer label), from the table of expression
#: classes (:data:`flame_transit.expressions.EXPRESSION_CLASSES`)
LABEL_NAMES: Tuple[str, ...] = LABELS
#: the basic emotions (no neutral), the classes of the paper's evaluation
BASIC_EMOTIONS: Tuple[str, ...] = EMOTIONS

_FORMAT = "flame_transit.expression_dataset"
_VERSION = 1


def normalize_label(label: Union[str, int, np.integer]) -> str:
    """Canonical label name for a name, any word of the expression vocabulary
    (:func:`flame_transit.expressions.label_of`) or an index into :data:`LABEL_NAMES`.

    Example:
        >>> normalize_label("Happy"), normalize_label(3), normalize_label("joyful")
        ('happiness', 'surprise', 'happiness')
    """
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        if not 0 <= int(label) < len(LABEL_NAMES):
            raise InputError(f"label index {int(label)} is outside 0..{len(LABEL_NAMES) - 1} ({', '.join(LABEL_NAMES)})")
        return LABEL_NAMES[int(label)]
    if not isinstance(label, str):
        raise InputError(f"a label must be a name or an index, got {type(label).__name__}")
    try:
        return label_of(label)
    except KeyError:
        raise InputError(f"unknown emotion label {label!r}; known: {', '.join(LABEL_NAMES)}") from None


def label_index(label: Union[str, int, np.integer]) -> int:
    """Index of a label in :data:`LABEL_NAMES`.

    Example:
        >>> label_index("disgusted")
        6
    """
    return LABEL_NAMES.index(normalize_label(label))


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``."""
    from ..io_utils import atomic_write_bytes as _write

    return _write(path, data)


class DatasetSplits(NamedTuple):
    """Train / validation / test parts of a dataset (disjoint)."""

    train: "ExpressionDataset"
    val: "ExpressionDataset"
    test: "ExpressionDataset"


_ARRAY_FIELDS = ("expression", "jaw_pose", "shape", "global_pose", "labels", "subject")


@dataclass
class ExpressionDataset:
    """Labelled expression codes of one head model.

    Attributes:
        expression: ``(N, E)`` float32 expression coefficients (open head: AU intensities).
        jaw_pose: ``(N, 3)`` float32 jaw axis-angle (radians).
        shape: ``(N, S)`` float32 identity coefficients.
        global_pose: ``(N, 3)`` float32 head rotation, axis-angle.
        labels: ``(N,)`` int64 indices into ``label_names``.
        subject: ``(N,)`` int64 subject ids; ``-1`` = unknown.
        head_name: id of the head model the codes belong to.
        expression_names: ``E`` names of the expression coordinates.
        label_names: label vocabulary (default :data:`LABEL_NAMES`).
        source: a human-readable description of where the data came from.
        intensity: optional ``(N,)`` overall expression intensity in ``[0, 1]`` (synthetic data).
        paths: optional ``(N,)`` source image paths (real data).
        meta: JSON-serialisable extras (generator settings, build report, ...).

    Example:
        >>> ds = ExpressionDataset.from_arrays(np.zeros((4, 3)), labels=[0, 1, 1, 2],
        ...                                    expression_names=("AU1", "AU2", "AU4"))
        >>> len(ds), ds.counts()["happiness"]
        (4, 2)
    """

    expression: np.ndarray
    jaw_pose: np.ndarray
    shape: np.ndarray
    global_pose: np.ndarray
    labels: np.ndarray
    subject: np.ndarray
    head_name: str = ""
    expression_names: Tuple[str, ...] = ()
    label_names: Tuple[str, ...] = LABEL_NAMES
    source: str = ""
    intensity: Optional[np.ndarray] = None
    paths: Optional[np.ndarray] = None
    meta: Dict[str, Any] = field(default_factory=dict)

    # -- construction and validation ---------------------------------------------------------
    def __post_init__(self) -> None:
        def arr(name: str, dtype: Any, ndim: int) -> np.ndarray:
            value = getattr(self, name)
            try:
                a = np.asarray(value, dtype=dtype)
            except (TypeError, ValueError) as exc:
                raise InputError(f"ExpressionDataset.{name} is not numeric: {exc}") from exc
            if ndim == 2 and a.ndim == 1 and a.size == 0:
                a = a.reshape(0, 0)
            if a.ndim != ndim:
                raise InputError(f"ExpressionDataset.{name} must be {ndim}-D, got shape {a.shape}")
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise InputError(f"ExpressionDataset.{name} contains NaN or infinite values")
            setattr(self, name, a)
            return a

        e = arr("expression", np.float32, 2)
        n = e.shape[0]
        arr("jaw_pose", np.float32, 2)
        arr("shape", np.float32, 2)
        arr("global_pose", np.float32, 2)
        labels = arr("labels", np.int64, 1)
        arr("subject", np.int64, 1)
        for name, width in (("jaw_pose", 3), ("global_pose", 3)):
            a = getattr(self, name)
            if a.shape != (n, width):
                raise InputError(f"ExpressionDataset.{name} must be ({n}, {width}), got {a.shape}")
        for name in ("shape", "labels", "subject"):
            if getattr(self, name).shape[0] != n:
                raise InputError(
                    f"ExpressionDataset.{name} has {getattr(self, name).shape[0]} rows, expression has {n}"
                )
        if self.intensity is not None:
            it = arr("intensity", np.float32, 1)
            if it.shape[0] != n:
                raise InputError(f"ExpressionDataset.intensity has {it.shape[0]} rows, expression has {n}")
        if self.paths is not None:
            self.paths = np.asarray([str(p) for p in self.paths], dtype=object)
            if self.paths.shape[0] != n:
                raise InputError(f"ExpressionDataset.paths has {self.paths.shape[0]} rows, expression has {n}")
        self.label_names = tuple(str(x) for x in self.label_names)
        if len(set(self.label_names)) != len(self.label_names) or not self.label_names:
            raise InputError(f"label_names must be distinct and non-empty, got {self.label_names}")
        if n and (labels.min() < 0 or labels.max() >= len(self.label_names)):
            raise InputError(
                f"labels must index label_names (0..{len(self.label_names) - 1}), got values "
                f"{int(labels.min())}..{int(labels.max())}"
            )
        self.expression_names = tuple(str(x) for x in self.expression_names)
        if not self.expression_names:
            self.expression_names = tuple(f"exp{i:03d}" for i in range(e.shape[1]))
        if len(self.expression_names) != e.shape[1]:
            raise InputError(
                f"{len(self.expression_names)} expression names for {e.shape[1]} expression columns"
            )
        self.head_name = str(self.head_name)
        self.source = str(self.source)
        self.meta = dict(self.meta or {})

    @classmethod
    def from_arrays(
        cls,
        expression: Any,
        *,
        labels: Sequence[Union[int, str]],
        jaw_pose: Any = None,
        shape: Any = None,
        global_pose: Any = None,
        subject: Any = None,
        **kwargs: Any,
    ) -> "ExpressionDataset":
        """Build a dataset filling the optional arrays with zeros (subject: ``-1``); labels may
        be names or synonyms."""
        e = np.asarray(expression, dtype=np.float32)
        if e.ndim != 2:
            raise InputError(f"expression must be (N, E), got shape {e.shape}")
        n = e.shape[0]
        label_names = tuple(kwargs.get("label_names", LABEL_NAMES))
        lab = np.asarray(
            [x if isinstance(x, (int, np.integer)) else label_names.index(normalize_label(x)) for x in labels],
            dtype=np.int64,
        ) if len(labels) else np.zeros(0, np.int64)
        return cls(
            expression=e,
            jaw_pose=np.zeros((n, 3), np.float32) if jaw_pose is None else jaw_pose,
            shape=np.zeros((n, 0), np.float32) if shape is None else shape,
            global_pose=np.zeros((n, 3), np.float32) if global_pose is None else global_pose,
            labels=lab,
            subject=np.full(n, -1, np.int64) if subject is None else subject,
            **kwargs,
        )

    # -- basic access ------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.expression.shape[0])

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items() if v)
        return (
            f"ExpressionDataset(n={len(self)}, head={self.head_name!r}, E={self.num_expression}, "
            f"subjects={self.num_subjects}, {counts}, source={self.source!r})"
        )

    @property
    def num_expression(self) -> int:
        return int(self.expression.shape[1])

    @property
    def num_subjects(self) -> int:
        known = self.subject[self.subject >= 0]
        return int(len(np.unique(known)))

    @property
    def label_strings(self) -> List[str]:
        """Label names of the rows."""
        return [self.label_names[i] for i in self.labels]

    def features(self) -> np.ndarray:
        """``(N, E + 3)`` float32: expression then jaw pose, the classifier's input."""
        return np.concatenate([self.expression, self.jaw_pose], axis=1).astype(np.float32)

    def pose15(self) -> np.ndarray:
        """``(N, 15)`` FLAME pose (global, neck=0, jaw, eyes=0)."""
        pose = np.zeros((len(self), 15), np.float32)
        pose[:, 0:3] = self.global_pose
        pose[:, 6:9] = self.jaw_pose
        return pose

    def counts(self) -> Dict[str, int]:
        """Rows per label name (every label name, zeros included)."""
        c = np.bincount(self.labels, minlength=len(self.label_names))
        return {name: int(c[i]) for i, name in enumerate(self.label_names)}

    def label_index(self, label: Union[str, int]) -> int:
        """Index of ``label`` (name, synonym or index) in this dataset's ``label_names``."""
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            if not 0 <= int(label) < len(self.label_names):
                raise InputError(f"label index {label} outside 0..{len(self.label_names) - 1}")
            return int(label)
        name = str(label).strip().lower()
        if name in self.label_names:
            return self.label_names.index(name)
        canon = normalize_label(label)
        if canon not in self.label_names:
            raise InputError(f"label {label!r} is not in this dataset's labels {self.label_names}")
        return self.label_names.index(canon)

    # -- selection ---------------------------------------------------------------------------
    def take(self, indices: Any) -> "ExpressionDataset":
        """Rows ``indices`` (int array or boolean mask) as a new dataset."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise InputError(f"mask must have shape ({len(self)},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise InputError(f"row index out of range for a dataset of {len(self)} rows")
        return ExpressionDataset(
            expression=self.expression[idx],
            jaw_pose=self.jaw_pose[idx],
            shape=self.shape[idx],
            global_pose=self.global_pose[idx],
            labels=self.labels[idx],
            subject=self.subject[idx],
            head_name=self.head_name,
            expression_names=self.expression_names,
            label_names=self.label_names,
            source=self.source,
            intensity=None if self.intensity is None else self.intensity[idx],
            paths=None if self.paths is None else self.paths[idx],
            meta=dict(self.meta),
        )

    def subset(
        self,
        labels: Optional[Iterable[Union[str, int]]] = None,
        subjects: Optional[Iterable[int]] = None,
    ) -> "ExpressionDataset":
        """Rows whose label is in ``labels`` (names, synonyms or indices) and/or whose subject is
        in ``subjects``. Label indices are kept (not renumbered).

        Example:
            >>> ds = ExpressionDataset.from_arrays(np.zeros((3, 2)), labels=["neutral", "happy", "sad"])
            >>> ds.subset(labels=["happiness", "sad"]).label_strings
            ['happiness', 'sadness']
        """
        mask = np.ones(len(self), dtype=bool)
        if labels is not None:
            if isinstance(labels, (str, int)):
                labels = [labels]
            wanted = [self.label_index(x) for x in labels]
            mask &= np.isin(self.labels, wanted)
        if subjects is not None:
            mask &= np.isin(self.subject, np.asarray(list(subjects), dtype=np.int64))
        return self.take(mask)

    @staticmethod
    def concat(parts: Sequence["ExpressionDataset"]) -> "ExpressionDataset":
        """Stack datasets of the same head and label vocabulary."""
        if not parts:
            raise InputError("concat needs at least one dataset")
        first = parts[0]
        for p in parts[1:]:
            if p.head_name != first.head_name or p.expression_names != first.expression_names:
                raise InputError(
                    f"cannot concatenate datasets of different heads ({first.head_name!r}, {p.head_name!r})"
                )
            if p.label_names != first.label_names:
                raise InputError("cannot concatenate datasets with different label_names")
            if p.shape.shape[1] != first.shape.shape[1]:
                raise InputError("cannot concatenate datasets with different shape dimensions")

        def cat(name: str) -> Optional[np.ndarray]:
            vals = [getattr(p, name) for p in parts]
            if any(v is None for v in vals):
                return None
            return np.concatenate(vals, axis=0)

        return ExpressionDataset(
            expression=cat("expression"),
            jaw_pose=cat("jaw_pose"),
            shape=cat("shape"),
            global_pose=cat("global_pose"),
            labels=cat("labels"),
            subject=cat("subject"),
            head_name=first.head_name,
            expression_names=first.expression_names,
            label_names=first.label_names,
            source=" + ".join(dict.fromkeys(p.source for p in parts)),
            intensity=cat("intensity"),
            paths=cat("paths"),
            meta=dict(first.meta),
        )

    # -- splitting ---------------------------------------------------------------------------
    def split(
        self,
        test: float = 0.1,
        val: float = 0.1,
        seed: int = 0,
        *,
        by_subject: Optional[bool] = None,
    ) -> DatasetSplits:
        """Paper protocol: ``test`` of the data for testing, then ``val`` of the rest for validation.

        Args:
            test: fraction of all rows for the test part.
            val: fraction of the remaining (training) rows for validation.
            seed: shuffling seed (same seed, same split).
            by_subject: keep each subject's rows in one part. Default: when every row has a
                subject id and there are at least 10 subjects. Fractions are then met as
                closely as whole subjects allow.

        Returns:
            :class:`DatasetSplits` ``(train, val, test)``; label proportions are kept (stratified)
            when splitting rows.

        Example:
            >>> ds = ExpressionDataset.from_arrays(np.zeros((100, 2)), labels=[i % 4 for i in range(100)])
            >>> [len(p) for p in ds.split(test=0.1, val=0.1, seed=0)]
            [81, 9, 10]
        """
        for name, frac in (("test", test), ("val", val)):
            if not (isinstance(frac, (int, float)) and 0.0 <= float(frac) < 1.0):
                raise InputError(f"split fraction {name}={frac!r} must be in [0, 1)")
        rng = np.random.default_rng(seed)
        n = len(self)
        known = bool(n) and bool((self.subject >= 0).all())
        if by_subject is None:
            by_subject = known and self.num_subjects >= 10
        if by_subject and not known:
            raise InputError("split(by_subject=True) needs a subject id (>= 0) for every row")
        if by_subject:
            rest, test_idx = _group_split(np.arange(n), self.subject, test, rng)
            train_idx, val_idx = _group_split(rest, self.subject[rest], val, rng)
        else:
            rest, test_idx = _stratified_split(np.arange(n), self.labels, test, rng)
            train_idx, val_idx = _stratified_split(rest, self.labels[rest], val, rng)
        return DatasetSplits(self.take(np.sort(train_idx)), self.take(np.sort(val_idx)), self.take(np.sort(test_idx)))

    # -- files -------------------------------------------------------------------------------
    def save(self, path: PathLike) -> Path:
        """Write the dataset to an ``.npz`` file (atomically: temp file then ``os.replace``)."""
        import io

        path = user_path(path)
        if path.suffix != ".npz":
            raise InputError(f"dataset files end in .npz, got {path.name!r}")
        header = {
            "format": _FORMAT,
            "version": _VERSION,
            "head_name": self.head_name,
            "expression_names": list(self.expression_names),
            "label_names": list(self.label_names),
            "source": self.source,
            "meta": self.meta,
        }
        try:
            header_json = json.dumps(header)
        except TypeError as exc:
            raise InputError(f"dataset meta must be JSON-serialisable: {exc}") from exc
        arrays: Dict[str, np.ndarray] = {name: getattr(self, name) for name in _ARRAY_FIELDS}
        arrays["header_json"] = np.array(header_json)
        if self.intensity is not None:
            arrays["intensity"] = self.intensity
        if self.paths is not None:
            arrays["paths"] = np.asarray([str(p) for p in self.paths], dtype=np.str_)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: PathLike) -> "ExpressionDataset":
        """Read a dataset written by :meth:`save`; raises :class:`AssetError` on a bad file."""
        path = user_path(path)
        data = read_npz(path, "dataset", AssetError)
        if "header_json" not in data:
            raise AssetError(
                f"{path} is not a flame_transit expression dataset (no header); build one with "
                "flame_transit.data.make_synthetic_dataset or build_dataset"
            )
        try:
            header = json.loads(str(data["header_json"]))
        except json.JSONDecodeError as exc:
            raise AssetError(f"{path}: dataset header is not valid JSON ({exc})") from exc
        if header.get("format") != _FORMAT:
            raise AssetError(f"{path}: unknown dataset format {header.get('format')!r}")
        if int(header.get("version", 0)) > _VERSION:
            raise AssetError(
                f"{path} was written by a newer flame_transit (dataset version {header['version']}); upgrade"
            )
        missing = [k for k in _ARRAY_FIELDS if k not in data]
        if missing:
            raise AssetError(f"{path} is missing dataset arrays {missing}")
        try:
            return cls(
                **{k: data[k] for k in _ARRAY_FIELDS},
                head_name=header.get("head_name", ""),
                expression_names=tuple(header.get("expression_names", ())),
                label_names=tuple(header.get("label_names", LABEL_NAMES)),
                source=header.get("source", ""),
                intensity=data.get("intensity"),
                paths=data["paths"].astype(object) if "paths" in data else None,
                meta=header.get("meta", {}),
            )
        except InputError as exc:
            raise AssetError(f"{path}: inconsistent dataset file: {exc}") from exc

    def check_head(self, head: Any) -> None:
        """Raise :class:`InputError` unless ``head`` (a :class:`~flame_transit.head.Head`) is the
        model these codes belong to."""
        if self.head_name and getattr(head, "name", None) != self.head_name:
            raise InputError(
                f"this dataset holds codes of head {self.head_name!r}, not {getattr(head, 'name', head)!r}; "
                "build the dataset for that head"
            )
        if int(getattr(head, "num_expression", self.num_expression)) != self.num_expression:
            raise InputError(
                f"dataset has {self.num_expression} expression coefficients, head has {head.num_expression}"
            )


def _stratified_split(
    idx: np.ndarray, labels: np.ndarray, frac: float, rng: np.random.Generator
) -> Tuple[np.ndarray, np.ndarray]:
    """(rest, held) with ``round(frac * len)`` held rows, per-label proportional."""
    n = len(idx)
    n_held = int(round(frac * n))
    if n_held == 0:
        return idx.copy(), idx[:0]
    perm = rng.permutation(n)
    # order rows so that taking the first n_held gives proportional labels: rank within label
    lab = labels[perm]
    rank = np.zeros(n, dtype=np.float64)
    for value in np.unique(lab):
        where = np.flatnonzero(lab == value)
        rank[where] = (np.arange(len(where)) + rng.random()) / len(where)
    order = perm[np.argsort(rank, kind="stable")]
    return idx[order[n_held:]], idx[order[:n_held]]


def _group_split(
    idx: np.ndarray, groups: np.ndarray, frac: float, rng: np.random.Generator
) -> Tuple[np.ndarray, np.ndarray]:
    """(rest, held): whole groups held out until about ``frac`` of the rows are held."""
    target = frac * len(idx)
    if target <= 0:
        return idx.copy(), idx[:0]
    uniq, counts = np.unique(groups, return_counts=True)
    order = rng.permutation(len(uniq))
    held: List[int] = []
    total = 0
    for j in order:
        if total >= target:
            break
        # take the group if that brings us closer to the target
        if abs(total + counts[j] - target) <= abs(total - target) or not held:
            held.append(int(uniq[j]))
            total += int(counts[j])
    mask = np.isin(groups, held)
    if mask.all():  # never hold out everything
        mask[groups == held[-1]] = False
    return idx[~mask], idx[mask]
