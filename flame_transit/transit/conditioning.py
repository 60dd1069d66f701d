"""How instructions become model conditions, for training and for inference.

An instruction names K expressions ("from A to B": K = 2; "make this face happy": K = 1;
"from happy to neutral, then to sad": K = 3). The parser
(:func:`flame_transit.text.parse_instruction`) splits it into K *segments*, each with a label,
an intensity, the words that named it, explicit action units and, for blends ("bittersweet"),
a mix of labels. Each anchor ``k`` is generated from its own condition:

* **segment text** -- what the segment names. With ``segment_text="canonical"`` (default) it is
  the canonical word of the segment's label ("disgust" for "grossed out", "revolted", ...): the
  parser's vocabulary does the synonym work, so unseen wordings and synonyms give the same
  condition as the training words. With ``"raw"`` it is the segment's own words (minus intensity
  modifiers): the model then has to generalise from the text embedding alone.
* **instruction context** -- the embedding of the full instruction (used by models trained
  with ``conditioning="segment+instruction"``; hidden at random in training so the model cannot
  lean on it).
* **position** -- ``k`` (used by ``"segment+instruction"`` and ``"instruction+position"``;
  the latter conditions on the full instruction and ``k`` only, the closest to the paper's
  single CLIP embedding).

Blends are generated component by component (same latent noise) and mixed by their weights;
intensity, explicit AUs and the subject's neutral are applied afterwards in
:mod:`flame_transit.transit.anchors`.

Training pairs each data row with a random *text item* of its label (:class:`TextPool`), built
from the training templates and training words only; held-out templates and words never enter
training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

__all__ = [
    "SEGMENT_TEXT_MODES",
    "Component",
    "SegmentQuery",
    "TextPool",
    "canonical_phrase",
    "segment_queries",
    "build_text_pool",
    "embed_pool",
]

SEGMENT_TEXT_MODES = ("canonical", "raw")
_NEUTRAL = "neutral"


@dataclass
class Component:
    """One generated expression: the segment text, its label and its weight in the segment."""

    text: str
    label: Optional[str]
    weight: float = 1.0


@dataclass
class SegmentQuery:
    """Everything needed to produce one anchor.

    Attributes:
        components: what to generate and mix (one for a plain expression).
        context: the full instruction text.
        position: the segment's index k in the instruction.
        label: label of the anchor (for :class:`~flame_transit.trajectory.Anchors`).
        intensity: scale of the expression relative to the neutral face (1.0 = typical).
        aus: explicit action units ``{"AU12": 1.0, "AU26": 0.5}`` to set on top.
    """

    components: List[Component]
    context: str
    position: int
    label: str
    intensity: float = 1.0
    aus: Dict[str, float] = field(default_factory=dict)


def canonical_phrase(label: str) -> str:
    """The text embedded for a label in ``"canonical"`` mode (the label's canonical noun).

    Example:
        >>> canonical_phrase("disgust"), canonical_phrase("neutral")
        ('disgust', 'neutral')
    """
    try:
        from ..text.vocabulary import canonical_word

        return str(canonical_word(label, "noun"))
    except Exception:  # unknown label or no text package: the label itself
        return str(label)


def _words_text(words: Any) -> str:
    if words is None:
        return ""
    if isinstance(words, str):
        return words
    try:
        return " ".join(str(w) for w in words)
    except TypeError:
        return str(words)


_INTENSITY_RE: Optional[re.Pattern] = None


def _strip_intensity(text: str) -> str:
    global _INTENSITY_RE
    if _INTENSITY_RE is None:
        try:
            from ..text.vocabulary import INTENSITY_WORDS

            words = sorted(INTENSITY_WORDS, key=len, reverse=True)
        except Exception:
            words = ["slightly", "very", "a little", "extremely", "somewhat"]
        # whole whitespace-separated words only ("wide-eyed" keeps its "wide")
        _INTENSITY_RE = re.compile(r"(?<!\S)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\S)", re.IGNORECASE)
    out = " ".join(_INTENSITY_RE.sub(" ", text).split())
    return out or text


def _mix_items(mix: Any) -> List[Tuple[str, float]]:
    if not mix:
        return []
    if isinstance(mix, dict):
        items = list(mix.items())
    else:
        items = []
        for entry in mix:
            if isinstance(entry, (tuple, list)) and len(entry) >= 2:
                items.append((entry[0], entry[1]))
            else:  # an object with label/weight
                items.append((getattr(entry, "label"), getattr(entry, "weight", 1.0)))
    return [(str(l), float(w)) for l, w in items if float(w) > 0]


def segment_queries(parsed: Any, text: Optional[str] = None, segment_text: str = "canonical",
                    known_labels: Optional[Sequence[str]] = None) -> List[SegmentQuery]:
    """The anchor queries of a parsed instruction.

    Args:
        parsed: a :class:`~flame_transit.text.ParsedInstruction` (``.segments``).
        text: the instruction text (default: ``parsed.text`` when present).
        segment_text: ``"canonical"`` or ``"raw"`` (see the module docstring).
        known_labels: labels the model was trained on; components with other labels (e.g. a
            pure facial-action segment) are generated as neutral.
    """
    if segment_text not in SEGMENT_TEXT_MODES:
        raise ValueError(f"segment_text must be one of {SEGMENT_TEXT_MODES}, got {segment_text!r}")
    context = text if text is not None else str(getattr(parsed, "text", "") or "")
    known = set(known_labels) if known_labels is not None else None
    queries = []
    for k, seg in enumerate(parsed.segments):
        label = getattr(seg, "label", None)
        label = str(label) if label is not None else "custom"
        mix_items = _mix_items(getattr(seg, "mix", None))
        if label == "custom" and mix_items:  # a blend: name it after its parts
            label = "+".join(l for l, _ in sorted(mix_items, key=lambda x: -x[1]))
        raw = _strip_intensity(_words_text(getattr(seg, "words", None)))
        comps: List[Component] = []
        for lab, w in mix_items:
            comps.append(Component(canonical_phrase(lab) if segment_text == "canonical" else (raw or lab), lab, w))
        if not comps:  # facial actions only: the actions go on top of a neutral face
            lab = _NEUTRAL if label == "custom" else label
            lab = lab if (known is None or lab in known) else _NEUTRAL
            if segment_text == "canonical" or not raw or lab != label:
                phrase = canonical_phrase(lab)
            else:
                phrase = raw
            comps = [Component(phrase, lab, 1.0)]
        if known is not None:
            comps = [c if c.label in known else Component(canonical_phrase(_NEUTRAL), _NEUTRAL, c.weight) for c in comps]
        if label == "custom" and raw:
            label = raw
        aus = getattr(seg, "aus", None) or {}
        intensity = getattr(seg, "intensity", 1.0)
        queries.append(SegmentQuery(
            components=comps,
            context=context or raw or label,
            position=k,
            label=label,
            intensity=1.0 if intensity is None else float(intensity),
            aus={str(a): float(v) for a, v in dict(aus).items()},
        ))
    return queries


# -- training text -------------------------------------------------------------------------------


@dataclass
class TextPool:
    """Text items for training: item ``i`` = (segment text ``texts[seg[i]]``, instruction
    ``texts[ctx[i]]``, position ``pos[i]``, label index ``label[i]``)."""

    texts: List[str]
    seg: np.ndarray
    ctx: np.ndarray
    pos: np.ndarray
    label: np.ndarray
    label_names: Tuple[str, ...]
    instructions: int = 0
    rejected: int = 0
    mode: str = "canonical"

    def __len__(self) -> int:
        return int(len(self.seg))

    def describe(self) -> Dict[str, Any]:
        return {
            "items": len(self), "instructions": int(self.instructions), "unique_texts": len(self.texts),
            "rejected_instructions": int(self.rejected), "segment_text": self.mode,
            "templates": "flame_transit.text.templates TRAIN_TEMPLATES + SINGLE_TEMPLATES, TRAIN_WORDS",
        }


def _training_instructions(label_names: Sequence[str], rng: np.random.Generator, size: int) -> List[Tuple[str, List[str]]]:
    """``size`` (instruction, labels) drawn from the training templates and words only."""
    from ..text.templates import SINGLE_TEMPLATES, TRAIN_TEMPLATES, TRAIN_WORDS, render_instruction

    labels = [l for l in label_names if l in TRAIN_WORDS]
    emotions = [l for l in labels if l != _NEUTRAL]
    out = []
    for _ in range(size):
        r = rng.random()
        # neutral appears in about one instruction in six, like the other labels
        pool = labels if rng.random() < 0.5 else emotions
        if r < 0.15:
            b = pool[int(rng.integers(len(pool)))]
            t = SINGLE_TEMPLATES[int(rng.integers(len(SINGLE_TEMPLATES)))]
            out.append((render_instruction(t, None, b, rng), [b]))
            continue
        a, b = (pool[int(i)] for i in rng.choice(len(pool), size=2, replace=False))
        t = TRAIN_TEMPLATES[int(rng.integers(len(TRAIN_TEMPLATES)))]
        text = render_instruction(t, a, b, rng)
        labs = [a, b]
        if r > 0.9 and "{b}" in t and text.endswith("."):
            c = pool[int(rng.integers(len(pool)))]
            if c != b:
                word = render_instruction("{b}", None, c, rng)
                text = text[:-1] + f", then to {word[:1].lower() + word[1:]}."
                labs.append(c)
        out.append((text, labs))
    return out


def build_text_pool(label_names: Sequence[str], *, seed: int = 0, size: int = 3000, split: str = "train",
                    segment_text: str = "canonical") -> TextPool:
    """Training text items for each label.

    Instructions are rendered from :data:`~flame_transit.text.templates.TRAIN_TEMPLATES`,
    :data:`~flame_transit.text.templates.SINGLE_TEMPLATES` and the training words, then parsed
    with the library's parser (so training sees exactly the segment texts inference will see);
    instructions whose parse does not give the intended labels are dropped and counted.
    """
    if split != "train":
        raise ValueError("only the training split may be used to build a training pool")
    from ..text import parse_instruction

    rng = np.random.default_rng(seed)
    names = tuple(label_names)
    index: Dict[str, int] = {}
    texts: List[str] = []

    def tid(t: str) -> int:
        if t not in index:
            index[t] = len(texts)
            texts.append(t)
        return index[t]

    seg, ctx, pos, lab = [], [], [], []
    rejected = 0
    instructions = _training_instructions(names, rng, size)
    for text, labels in instructions:
        try:
            parsed = parse_instruction(text)
        except Exception:
            rejected += 1
            continue
        queries = segment_queries(parsed, text, segment_text, names)
        if [q.label for q in queries] != labels:
            rejected += 1
            continue
        c = tid(text)
        for q in queries:
            for comp in q.components:
                seg.append(tid(comp.text))
                ctx.append(c)
                pos.append(q.position)
                lab.append(names.index(comp.label))
    # every label also appears alone (a bare word is a valid one-target instruction)
    for l in names:
        t = canonical_phrase(l)
        seg.append(tid(t))
        ctx.append(tid(t))
        pos.append(0)
        lab.append(names.index(l))
    return TextPool(
        texts=texts, seg=np.asarray(seg, np.int64), ctx=np.asarray(ctx, np.int64), pos=np.asarray(pos, np.int64),
        label=np.asarray(lab, np.int64), label_names=names, instructions=len(instructions) - rejected,
        rejected=rejected, mode=segment_text,
    )


def embed_pool(pool: TextPool, encoder: Any, batch: int = 256, contexts: bool = True) -> torch.Tensor:
    """Embeddings ``(len(pool.texts), D)`` of the texts in the pool (batched); with
    ``contexts=False`` only the segment texts are encoded (the other rows stay zero)."""
    dim = int(encoder.dim)
    needed = np.arange(len(pool.texts)) if contexts else np.unique(pool.seg)
    out = torch.zeros(len(pool.texts), dim)
    for s in range(0, len(needed), batch):
        idx = needed[s : s + batch]
        out[torch.as_tensor(idx)] = encoder.encode([pool.texts[i] for i in idx]).float()
    return out
