"""Evaluation cases: instructions and the labels of the expressions they name.

* :func:`make_eval_cases`: every ordered pair of emotions × templates ("from A to B");
* :func:`eval_cases`: the three case sets of ``flame-transit eval`` (paper templates, held-out
  templates, held-out templates and synonyms);
* :func:`parse_labels`: the labels an instruction names.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ..data.dataset import BASIC_EMOTIONS, LABEL_NAMES, normalize_label
from ..errors import InputError
from ..expressions import label_of
from ..text.templates import PAPER_TEMPLATES  # the paper's instruction templates (re-exported)

__all__ = [
    "PAPER_TEMPLATES",
    "EvalCase",
    "make_eval_cases",
    "eval_cases",
    "parse_labels",
]


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


def eval_cases(which: str = "paper", seed: int = 0) -> List[Any]:
    """Evaluation instructions.

    ``"paper"``: the paper's 5 templates × the 42 ordered pairs of the 7 basic emotions,
    canonical words (210). ``"heldout"``: the held-out templates × the 42 pairs with training
    words (630). ``"heldout_words"``: held-out templates with held-out synonyms (630).
    """
    from ..text.templates import HELDOUT_TEMPLATES

    if which == "paper":
        return make_eval_cases(PAPER_TEMPLATES)
    if which == "heldout":
        return make_eval_cases(HELDOUT_TEMPLATES, rng=seed, words="train")
    if which == "heldout_words":
        return make_eval_cases(HELDOUT_TEMPLATES, rng=seed, words="heldout")
    raise ValueError(f"unknown case set {which!r}; use 'paper', 'heldout' or 'heldout_words'")
