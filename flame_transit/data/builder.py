"""Build an :class:`~flame_transit.data.dataset.ExpressionDataset` from labelled photos through
the encoder (photo -> :class:`~flame_transit.params.FaceParams` -> expression + jaw codes).

Layouts read:

* **CK+** (:func:`read_ckplus`): ``cohn-kanade-images/S005/001/S005_001_00000001.png ...`` and
  ``Emotion/S005/001/S005_001_00000011_emotion.txt`` holding one float label in CK+'s order
  (0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise). Each
  labelled sequence gives its **last frame** (the peak) with the label and, optionally, its
  **first frame** as neutral. The two folders are found anywhere below the root (the official
  zips nest them in ``extended-cohn-kanade-images/`` and ``Emotion_labels/``).
* **CSV** (:func:`read_csv`): a header with ``path,label`` (optional ``subject``); relative
  paths are relative to the CSV's folder; labels are names or synonyms ("happy", "angry").
* **Folder per label** (:func:`read_folders`): ``root/happiness/*.jpg``, ``root/angry/*.png``...

:func:`build_dataset` encodes the images in parallel (``multiprocessing`` with the spawn start
method, one encoder per worker), shows a tqdm bar, appends every result to a **partial-results
file** keyed by image path (JSON lines; a rerun skips what is done, so an interrupted build
resumes), logs and skips failures (no face, unreadable file) and counts them in the dataset's
``meta["build"]`` report.
"""

from __future__ import annotations

import csv
import json
import logging
import functools
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import AssetError, InputError, NoFaceError
from ..io_utils import user_path
from .dataset import LABEL_NAMES, ExpressionDataset, normalize_label

__all__ = [
    "CKPLUS_LABELS",
    "IMAGE_SUFFIXES",
    "LabelledImage",
    "BuildReport",
    "read_ckplus",
    "read_csv",
    "read_folders",
    "read_image",
    "build_dataset",
]

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
EncodeFn = Callable[[np.ndarray], Any]

#: CK+'s emotion codes -> canonical label names
CKPLUS_LABELS: Dict[int, str] = {
    0: "neutral",
    1: "anger",
    2: "contempt",
    3: "disgust",
    4: "fear",
    5: "happiness",
    6: "sadness",
    7: "surprise",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class LabelledImage:
    """One labelled photo: ``path``, canonical ``label`` name and an optional ``subject`` id."""

    path: str
    label: str
    subject: str = ""


@dataclass
class BuildReport:
    """What :func:`build_dataset` did: counts and the failures (path, reason)."""

    total: int = 0
    encoded: int = 0
    from_cache: int = 0
    failed: int = 0
    failures: List[Tuple[str, str]] = field(default_factory=list)
    #: (path, message) of the warnings the encoder raised on the images encoded in this build
    warnings: List[Tuple[str, str]] = field(default_factory=list)

    def to_dict(self, max_failures: int = 100) -> Dict[str, Any]:
        return {"total": self.total, "encoded": self.encoded, "from_cache": self.from_cache,
                "failed": self.failed, "failures": [list(f) for f in self.failures[:max_failures]],
                "warnings": [list(w) for w in self.warnings[:max_failures]]}

    def __str__(self) -> str:
        return (f"{self.total} images: {self.encoded} encoded ({self.from_cache} from the partial-results "
                f"file), {self.failed} skipped")


# -- layouts ------------------------------------------------------------------------------------


def _find_dir(root: Path, name: str, max_depth: int = 3) -> Optional[Path]:
    """First folder called ``name`` (case-insensitive) at most ``max_depth`` levels below root."""
    frontier = [root]
    for _ in range(max_depth + 1):
        nxt = []
        for d in frontier:
            if d.name.lower() == name.lower() and d.is_dir():
                return d
            try:
                nxt.extend(sorted(p for p in d.iterdir() if p.is_dir()))
            except OSError:
                continue
        frontier = nxt
    return None


def _images_in(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_ckplus(root: PathLike, *, neutral: bool = True) -> List[LabelledImage]:
    """Labelled images of a CK+ tree: the last frame of each labelled sequence (its emotion) and,
    with ``neutral``, the first frame (neutral).

    Raises:
        AssetError: the folders are missing or a label file is malformed (the message names it).
    """
    root = user_path(root)
    if not root.is_dir():
        raise AssetError(f"CK+ root folder not found: {root}")
    images = _find_dir(root, "cohn-kanade-images")
    emotion = _find_dir(root, "Emotion")
    if images is None or emotion is None:
        raise AssetError(
            f"{root} does not look like CK+: need folders 'cohn-kanade-images' (S005/001/*.png) and "
            f"'Emotion' (S005/001/*_emotion.txt); found images={images}, Emotion={emotion}"
        )
    out: List[LabelledImage] = []
    label_files = sorted(emotion.glob("*/*/*_emotion.txt"))
    if not label_files:
        raise AssetError(f"no *_emotion.txt label files under {emotion} (expected Emotion/S005/001/...)")
    missing = 0
    for lf in label_files:
        subject, seq = lf.parent.parent.name, lf.parent.name
        try:
            text = lf.read_text(encoding="ascii", errors="strict").strip()
            code = float(text.split()[0])
        except (OSError, UnicodeDecodeError, ValueError, IndexError) as exc:
            raise AssetError(f"CK+ label file {lf} must hold one number 0-7, could not read it ({exc})") from exc
        if code != int(code) or int(code) not in CKPLUS_LABELS:
            raise AssetError(f"CK+ label file {lf} holds {text!r}; CK+ labels are 0-7")
        folder = images / subject / seq
        frames = _images_in(folder) if folder.is_dir() else []
        if not frames:
            missing += 1
            log.warning("CK+: no frames for labelled sequence %s/%s (looked in %s); skipped", subject, seq, folder)
            continue
        out.append(LabelledImage(str(frames[-1]), CKPLUS_LABELS[int(code)], subject))
        if neutral and len(frames) > 1:
            out.append(LabelledImage(str(frames[0]), "neutral", subject))
    if missing:
        log.warning("CK+: %d labelled sequences had no frames", missing)
    return out


def read_csv(path: PathLike) -> List[LabelledImage]:
    """Labelled images from a CSV with columns ``path,label`` (optional ``subject``); a label is
    a name, a synonym or an index into :data:`~flame_transit.data.dataset.LABEL_NAMES`.

    Raises:
        AssetError: the file is missing or has no such columns; InputError: an unknown label
        (the message names the line).
    """
    path = user_path(path)
    if not path.is_file():
        raise AssetError(f"CSV file not found: {path}")
    base = path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AssetError(f"cannot read CSV {path}: {exc}") from exc
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise AssetError(f"CSV {path} is empty; expected a header 'path,label' and one row per image")
    header = [c.strip().lower() for c in rows[0]]
    if "path" not in header or "label" not in header:
        raise AssetError(f"CSV {path} needs a header with columns 'path' and 'label' (got {rows[0]})")
    ip, il = header.index("path"), header.index("label")
    isub = header.index("subject") if "subject" in header else None
    out = []
    for lineno, r in enumerate(rows[1:], start=2):
        if len(r) <= max(ip, il):
            raise AssetError(f"{path}:{lineno}: expected columns {header}, got {r}")
        p = user_path(r[ip].strip())
        if not p.is_absolute():
            p = base / p
        try:
            label = normalize_label(int(r[il]) if r[il].strip().isdigit() else r[il])
        except InputError as exc:
            raise InputError(f"{path}:{lineno}: {exc}") from exc
        subject = r[isub].strip() if isub is not None and len(r) > isub else ""
        out.append(LabelledImage(str(p), label, subject))
    return out


def read_folders(root: PathLike) -> List[LabelledImage]:
    """Labelled images from ``root/<label>/*.<image>``; folder names are labels or synonyms."""
    root = user_path(root)
    if not root.is_dir():
        raise AssetError(f"image folder not found: {root}")
    out = []
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise AssetError(f"{root} has no sub-folders; expected one folder per label ({', '.join(LABEL_NAMES)})")
    for d in subdirs:
        try:
            label = normalize_label(d.name)
        except InputError as exc:
            raise InputError(f"folder {d} is not named after a label: {exc}") from exc
        out.extend(LabelledImage(str(p), label) for p in _images_in(d))
    return out


def read_image(path: PathLike) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB (grey and RGBA images converted); raises :class:`AssetError`."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise AssetError(f"cannot read image {path}: {exc}") from exc


# -- encoding -----------------------------------------------------------------------------------


def default_encoder_factory(head: Any = None) -> EncodeFn:
    """The library's encoder (``flame_transit.encode.encode``) bound to ``head``."""
    import functools

    from ..encode import encode

    # the dataset keeps expression / pose / shape only: skip the per-subject vertex offsets
    return functools.partial(encode, head=head, offsets=False)


def _tolist(x: Any) -> List[float]:
    if x is None:
        return []
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1).tolist()


def _encode_path(encode: EncodeFn, path: str) -> Dict[str, Any]:
    rec: Dict[str, Any] = {"path": path}
    try:
        st = os.stat(path)
        rec["size"], rec["mtime"] = st.st_size, st.st_mtime
        image = read_image(path)
        params = encode(image)
        pose = _tolist(params.pose)
        if len(pose) == 6:  # DECA order
            pose = pose[:3] + [0.0] * 3 + pose[3:] + [0.0] * 6
        if len(pose) != 15:
            raise InputError(f"the encoder returned a pose of {len(pose)} values")
        rec.update(ok=True, expression=_tolist(params.expression), pose=pose, shape=_tolist(params.shape),
                   head_name=str(getattr(params, "head_name", "")),
                   fit_rms=None if getattr(params, "fit_rms", None) is None else float(params.fit_rms))
    except NoFaceError as exc:
        rec.update(ok=False, error=f"no face: {exc}")
    except Exception as exc:  # noqa: BLE001 - a bad image must not stop a long build
        rec.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    return rec


def _encode_timed(encode: EncodeFn, path: str) -> Dict[str, Any]:
    """:func:`_encode_path` as one batch row (:func:`~flame_transit.batch.runner.recording_row`:
    its warnings recorded in ``warnings``), plus the worker (``host:pid``) and the seconds it
    took."""
    from ..batch import worker_id
    from ..batch.runner import recording_row

    t0 = time.perf_counter()
    with recording_row() as found:
        rec = _encode_path(encode, path)
    rec.update(worker=worker_id(), seconds=round(time.perf_counter() - t0, 4))
    if found:
        rec["warnings"] = [list(w) for w in found]
    return rec


def _encode_task(factory: Callable[[], EncodeFn], path: str) -> Dict[str, Any]:
    """One image on a batch worker (process pool, Dask, Ray): the encoder is built once per
    worker from ``factory`` and reused for its next images."""
    from ..batch import worker_cache

    try:
        key = pickle.dumps(factory)
    except Exception:  # noqa: BLE001 - a lambda sent by cloudpickle (Dask, Ray)
        import cloudpickle

        key = cloudpickle.dumps(factory)
    return _encode_timed(worker_cache(("encoder", key), factory), path)


class _Factory:
    """A picklable zero-argument factory returning a fixed encode function."""

    def __init__(self, fn: EncodeFn) -> None:
        self.fn = fn

    def __call__(self) -> EncodeFn:
        return self.fn


class _DefaultFactory:
    def __init__(self, head_path: Optional[str]) -> None:
        self.head_path = head_path

    def __call__(self) -> EncodeFn:
        from ..head import load_head

        return default_encoder_factory(load_head(self.head_path) if self.head_path else None)


_CACHE_FORMAT = "flame_transit.build_cache"


def _read_cache(path: Path, head_name: str = "") -> Dict[str, Dict[str, Any]]:
    """Records of a partial-results file, last record per path wins; a torn last line is ignored."""
    done: Dict[str, Dict[str, Any]] = {}
    if not path.exists():
        return done
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().split("\n")
    except OSError as exc:
        raise AssetError(f"cannot read the partial-results file {path}: {exc}") from exc
    torn = 0
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            torn += 1  # an interrupted write: that image is simply encoded again
            continue
        if not isinstance(rec, dict):
            torn += 1
            continue
        if rec.get("format") == _CACHE_FORMAT:
            if head_name and rec.get("head_name") not in (None, head_name):
                raise AssetError(
                    f"partial-results file {path} holds codes of head {rec.get('head_name')!r}, not "
                    f"{head_name!r}; use another cache file or delete it"
                )
            continue
        if "path" in rec and isinstance(rec.get("ok"), bool):
            done[rec["path"]] = rec
    if torn:
        log.warning("ignoring %d unreadable line(s) in %s (interrupted writes)", torn, path)
    return done


def _fresh(rec: Dict[str, Any]) -> bool:
    """The cached record still describes the file on disk."""
    try:
        st = os.stat(rec["path"])
    except OSError:
        return "size" not in rec  # file gone: keep a record that never saw it
    return rec.get("size") == st.st_size and rec.get("mtime") == st.st_mtime


def build_dataset(
    items: Sequence[LabelledImage],
    *,
    encode_fn: Optional[EncodeFn] = None,
    encoder_factory: Optional[Callable[[], EncodeFn]] = None,
    head: Any = None,
    workers: Optional[int] = None,
    cache_path: Optional[PathLike] = None,
    progress: bool = True,
    source: str = "",
    retry_failed: bool = False,
    engine: str = "local",
    address: Optional[str] = None,
) -> ExpressionDataset:
    """Encode labelled images into an expression dataset.

    Args:
        items: labelled images (:func:`read_ckplus`, :func:`read_csv`, :func:`read_folders`).
        encode_fn: ``image (H, W, 3) uint8 RGB -> FaceParams``; default: the library encoder
            for ``head``. With ``workers > 1`` it must be picklable (a module-level function or
            a picklable object); otherwise the build runs in this process.
        encoder_factory: alternatively a picklable zero-argument callable that builds the encode
            function once per worker (for encoders with heavy state).
        head: the head model (a :class:`~flame_transit.head.Head`, a path, or ``None`` = open
            head): names the expression coordinates and the default encoder's model.
        workers: processes (default: CPU count, at most the number of images); ``<= 1`` = here.
            With ``engine`` ``"dask"``/``"ray"`` and no ``address``: the local cluster's size.
        cache_path: partial-results file (JSON lines keyed by image path). Results are appended
            as they arrive; a rerun reuses them (entries of changed files are redone).
        progress: show a tqdm bar.
        source: description stored in the dataset (default: derived from the items).
        retry_failed: re-encode images that failed before instead of reusing the failure.
        engine: ``"local"`` (this machine), ``"dask"`` or ``"ray"``
            (:func:`~flame_transit.batch.open_engine`; each worker builds its encoder once).
        address: an existing Dask scheduler / Ray cluster; ``None`` starts a local one.

    Returns:
        :class:`ExpressionDataset` of the encoded images (failures skipped) with ``paths`` and
        the build report in ``meta["build"]``.
    """
    items = list(items)
    if not items:
        raise InputError("build_dataset: no labelled images (check the folder / CSV)")
    for it in items:
        if not isinstance(it, LabelledImage):
            raise InputError(f"build_dataset takes LabelledImage items, got {type(it).__name__}")
    from ..head import Head, load_head

    head_obj = head if isinstance(head, Head) else None
    head_path = None if head is None or isinstance(head, Head) else str(head)
    if head_obj is None:
        head_obj = load_head(head_path)

    if encoder_factory is None:
        if encode_fn is not None:
            encoder_factory = _Factory(encode_fn)
        elif isinstance(head, Head) and head_path is None and head.kind != "open":
            encoder_factory = _Factory(default_encoder_factory(head))
        else:
            encoder_factory = _DefaultFactory(head_path)

    paths = list(dict.fromkeys(str(user_path(it.path).absolute()) for it in items))
    report = BuildReport(total=len(items))
    cache_file = user_path(cache_path) if cache_path is not None else None
    done: Dict[str, Dict[str, Any]] = {}
    if cache_file is not None:
        done = {p: r for p, r in _read_cache(cache_file, head_obj.name).items()
                if _fresh(r) and (r.get("ok") or not retry_failed)}
    todo = [p for p in paths if p not in done]
    report.from_cache = sum(1 for p in paths if p in done and done[p].get("ok"))

    from ..batch import check_engine, open_engine
    from ..batch.runner import warn_again

    engine = check_engine(engine, address)
    n_workers = (os.cpu_count() or 1) if workers is None else int(workers)
    n_workers = max(1, min(n_workers, len(todo)))
    if n_workers > 1 and engine == "local":
        try:
            pickle.dumps(encoder_factory)
        except Exception as exc:  # noqa: BLE001 - lambdas, closures, local classes
            log.warning("the encoder cannot be sent to worker processes (%s); encoding in this process", exc)
            n_workers = 1

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(paths), initial=len(paths) - len(todo), desc="encoding", unit="img")
    cache_fh = None
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        new_file = not cache_file.exists() or cache_file.stat().st_size == 0
        if not new_file:
            with open(cache_file, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                torn_end = fh.read(1) != b"\n"
        cache_fh = open(cache_file, "a", encoding="utf-8")
        if not new_file and torn_end:
            cache_fh.write("\n")  # end a torn last line so the next record starts fresh
        if new_file:
            cache_fh.write(json.dumps({"format": _CACHE_FORMAT, "head_name": head_obj.name}) + "\n")
            cache_fh.flush()

    def record(rec: Dict[str, Any]) -> None:
        done[rec["path"]] = rec
        if rec.get("warnings"):  # said once, here, naming the image (not again on resume)
            warn_again(rec["path"], rec["warnings"])
            report.warnings.extend((rec["path"], message) for _, message in rec["warnings"])
        if cache_fh is not None:
            cache_fh.write(json.dumps(rec) + "\n")
            cache_fh.flush()
        if bar is not None:
            bar.update(1)

    try:
        if todo:
            here = engine == "local" and n_workers == 1
            fn = functools.partial(_encode_timed, encoder_factory()) if here else \
                functools.partial(_encode_task, encoder_factory)
            with open_engine(engine, address=address, workers=n_workers if engine == "local" else (workers or None)) as eng:
                for rec in eng.map_unordered(fn, todo):
                    record(rec)
    finally:
        if cache_fh is not None:
            cache_fh.close()
        if bar is not None:
            bar.close()

    # assemble in item order
    subjects: Dict[str, int] = {}
    rows: List[Tuple[LabelledImage, Dict[str, Any]]] = []
    for it in items:
        key = str(user_path(it.path).absolute())
        rec = done[key]
        if not rec.get("ok"):
            report.failed += 1
            report.failures.append((it.path, str(rec.get("error", "failed"))))
            continue
        rows.append((it, rec))
    report.encoded = len(rows)
    for path, reason in report.failures[:20]:
        log.warning("skipped %s: %s", path, reason)
    if report.failed:
        log.warning("%d of %d images skipped (see meta['build']['failures'])", report.failed, report.total)
    if not rows:
        raise NoFaceError(
            f"none of the {report.total} images could be encoded (first failure: "
            f"{report.failures[0][1] if report.failures else '?'})"
        )
    E = head_obj.num_expression
    bad = [r["path"] for _, r in rows if len(r["expression"]) != E]
    if bad:
        raise InputError(
            f"the encoder returned {len(rows[0][1]['expression'])} expression coefficients for {bad[0]}, "
            f"but head {head_obj.name!r} has {E}; pass the encoder's head as head="
        )
    names = {r.get("head_name") for _, r in rows} - {""}
    if len(names) > 1:
        raise InputError(f"the encoder produced codes of several heads: {sorted(names)}")
    if names and next(iter(names)) != head_obj.name:
        raise InputError(
            f"the encoder produced codes of head {next(iter(names))!r}, not {head_obj.name!r}; pass the same head"
        )
    S = max(len(r["shape"]) for _, r in rows)
    shape = np.zeros((len(rows), S), np.float32)
    for i, (_, r) in enumerate(rows):
        shape[i, : len(r["shape"])] = r["shape"]
    pose = np.array([r["pose"] for _, r in rows], dtype=np.float32)
    subj = []
    for it, _ in rows:
        if it.subject:
            subj.append(subjects.setdefault(it.subject, len(subjects)))
        else:
            subj.append(-1)
    if not source:
        source = f"{report.encoded} labelled photos through the encoder"
    return ExpressionDataset(
        expression=np.array([r["expression"] for _, r in rows], dtype=np.float32),
        jaw_pose=pose[:, 6:9],
        shape=shape,
        global_pose=pose[:, 0:3],
        labels=np.array([LABEL_NAMES.index(it.label) for it, _ in rows], dtype=np.int64),
        subject=np.array(subj, dtype=np.int64),
        head_name=head_obj.name,
        expression_names=tuple(head_obj.expression_names),
        source=source,
        paths=np.array([it.path for it, _ in rows], dtype=object),
        meta={"build": report.to_dict(), "subjects": list(subjects)},
    )
