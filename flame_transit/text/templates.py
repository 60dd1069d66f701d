"""Instruction templates: the paper's five, training paraphrases, and a held-out set.

Placeholders: ``{a}`` / ``{b}`` (start / target expression; a noun or an adjective, e.g. "from
disgust to happiness" or "from disgusted to happy"), ``{a_adj}`` / ``{b_adj}`` (adjective only),
``{a_noun}`` / ``{b_noun}`` (noun only). A rendered sentence starts with a capital letter.

* :data:`PAPER_TEMPLATES`: the five templates of the I2FET paper.
* :data:`TRAIN_TEMPLATES`: the paper's five + paraphrases; the only templates training may use.
* :data:`HELDOUT_TEMPLATES`: paraphrases reserved for evaluating generalisation to unseen wording.
  Disjoint from :data:`TRAIN_TEMPLATES` (a test checks it); never train on them.
* :data:`SINGLE_TEMPLATES`: one-target instructions ("Make this face {b_adj}.").
* :data:`TRAIN_WORDS` / :data:`HELDOUT_WORDS`: the expression words used to fill the templates;
  held-out words are synonyms that training renders never use.

Example:
    >>> render_instruction(PAPER_TEMPLATES[0], "disgust", "happiness")
    'Turn this face from disgust to happiness.'
    >>> import numpy as np
    >>> s = render_instruction(TRAIN_TEMPLATES[7], "fear", "anger", np.random.default_rng(0))
    >>> isinstance(s, str)
    True
"""

from __future__ import annotations

import random
import string
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from ..expressions import EXPRESSION_CLASSES
from .vocabulary import EXPRESSIONS, label_of

__all__ = [
    "PAPER_TEMPLATES",
    "TRAIN_PARAPHRASES",
    "TRAIN_TEMPLATES",
    "HELDOUT_TEMPLATES",
    "SINGLE_TEMPLATES",
    "HELDOUT_SINGLE_TEMPLATES",
    "TRAIN_WORDS",
    "HELDOUT_WORDS",
    "render_instruction",
    "template_fields",
    "canonical_instruction",
]

PAPER_TEMPLATES: Tuple[str, ...] = (
    "Turn this face from {a} to {b}.",
    "Change this face from {a} to {b}.",
    "Transform this face from {a} to {b}.",
    "Modify this face, changing it from {a} to {b}.",
    "Replace this face from {a} to {b}.",
)

TRAIN_PARAPHRASES: Tuple[str, ...] = (
    "Make this face go from {a} to {b}.",
    "Turn the face from {a} into {b}.",
    "Change the expression from {a} to {b}.",
    "Let the face shift from {a} to {b}.",
    "Morph this face from {a} to {b}.",
    "Start {a_adj}, end {b_adj}.",
    "{a} to {b}.",
    "From {a} to {b}, please.",
    "Show this person going from {a} to {b}.",
    "Animate the face from {a} to {b}.",
    "The face should change from {a} to {b}.",
    "Convert this face from {a} to {b}.",
    "Transition from {a} to {b}.",
    "Go from {a} to {b}.",
    "Have the face turn from {a} to {b}.",
    "Begin with a {a_adj} face and end with a {b_adj} one.",
    "First {a_adj}, then {b_adj}.",
    "{a_adj} -> {b_adj}",
    "Switch the expression from {a} to {b}.",
    "Make the person look {a_adj} at first and {b_adj} at the end.",
    "Change this {a_adj} face into a {b_adj} face.",
    "Turn a face showing {a_noun} into one showing {b_noun}.",
    "Transform the expression of this face from {a_noun} to {b_noun}.",
    "The person is {a_adj}, then becomes {b_adj}.",
    "Make the face change its expression from {a} to {b}.",
)

TRAIN_TEMPLATES: Tuple[str, ...] = PAPER_TEMPLATES + TRAIN_PARAPHRASES

# Never used for training: evaluation of unseen wording only.
HELDOUT_TEMPLATES: Tuple[str, ...] = (
    "Alter this face from {a} to {b}.",
    "Shift the expression of this face from {a} to {b}.",
    "Could you make this face change from {a} to {b}?",
    "Please turn the {a_adj} face into a {b_adj} one.",
    "Begin {a_adj} and finish {b_adj}.",
    "Let this face move from {a} towards {b}.",
    "Evolve the expression from {a_noun} to {b_noun}.",
    "{a_adj} first, {b_adj} afterwards.",
    "Take this face from {a} to {b}.",
    "Gradually change the face from {a} into {b}.",
    "Transition the face: {a} \u2192 {b}.",
    "I want the face to go from {a} to {b}.",
    "Edit the face so it changes from {a} to {b}.",
    "Adjust this face from {a} to {b}.",
    "Have this face start out {a_adj} and become {b_adj}.",
)

SINGLE_TEMPLATES: Tuple[str, ...] = (
    "Make this face {b_adj}.",
    "Turn this face {b_adj}.",
    "Change this face to {b}.",
    "Give this face an expression of {b_noun}.",
    "Show {b_noun}.",
    "Make the person look {b_adj}.",
)
HELDOUT_SINGLE_TEMPLATES: Tuple[str, ...] = (
    "Render this face {b_adj}.",
    "Let the face look {b_adj}.",
    "I want a {b_adj} face.",
)

# Words used to fill templates (nouns read after "from"/"to"; adjectives after "look"/"a ... face"),
# from the table of expression classes (flame_transit.expressions).
TRAIN_WORDS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    label: {form: c.words(form, "train") for form in ("noun", "adj")} for label, c in EXPRESSION_CLASSES.items()
}
HELDOUT_WORDS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    label: {form: c.words(form, "heldout") for form in ("noun", "adj")} for label, c in EXPRESSION_CLASSES.items()
}

_FIELDS = {"a", "b", "a_adj", "b_adj", "a_noun", "b_noun"}

RngLike = Union[None, int, np.random.Generator, random.Random]


def template_fields(template: str) -> Tuple[str, ...]:
    """Placeholder names used by a template.

    Example:
        >>> template_fields("Start {a_adj}, end {b_adj}.")
        ('a_adj', 'b_adj')
    """
    names = []
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            if field not in _FIELDS:
                raise InputError(f"template {template!r} has unknown placeholder {{{field}}}; "
                                 f"use {sorted(_FIELDS)}")
            names.append(field)
    return tuple(names)


def _choice(rng: RngLike, options: Sequence[str]) -> str:
    if rng is None:
        return options[0]
    if isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(int(rng))
    if isinstance(rng, random.Random):
        return options[rng.randrange(len(options))]
    return options[int(rng.integers(len(options)))]


def _label(x: Optional[str], which: str) -> str:
    if x is None:
        raise InputError(f"this template needs expression {which!r}")
    try:
        return label_of(x)
    except KeyError:
        raise InputError(f"unknown expression {x!r}; use one of {', '.join(EXPRESSIONS)}") from None


def render_instruction(template: str, a: Optional[str] = None, b: Optional[str] = None,
                       rng: RngLike = None, words: str = "train") -> str:
    """Fill a template with expression words.

    Args:
        template: a template with ``{a}``/``{b}``-style placeholders.
        a: start expression (label or any vocabulary word, e.g. ``"happy"``).
        b: target expression.
        rng: None for the canonical words (deterministic: "disgust", "happiness"); an int seed,
            ``numpy.random.Generator`` or ``random.Random`` to sample synonyms.
        words: ``"train"`` (:data:`TRAIN_WORDS`), ``"heldout"`` (:data:`HELDOUT_WORDS`) or
            ``"all"`` (both) for the synonym pool when ``rng`` is given.

    Returns:
        the instruction, first letter capitalised.

    Example:
        >>> render_instruction("Start {a_adj}, end {b_adj}.", "sadness", "surprise")
        'Start sad, end surprised.'
    """
    if words not in ("train", "heldout", "all"):
        raise InputError(f"words must be 'train', 'heldout' or 'all', got {words!r}")
    fields = template_fields(template)
    labels = {"a": _label(a, "a") if any(f.startswith("a") for f in fields) else None,
              "b": _label(b, "b") if any(f.startswith("b") for f in fields) else None}
    if isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(int(rng))
    values = {}
    for f in dict.fromkeys(fields):
        which, _, form = f.partition("_")
        lab = labels[which]
        if not form:
            form = "noun" if rng is None else _choice(rng, ("noun", "adj"))
        if rng is None:
            pool: Sequence[str] = TRAIN_WORDS[lab][form][:1]
        else:
            pool = (list(TRAIN_WORDS[lab][form]) if words in ("train", "all") else []) + \
                   (list(HELDOUT_WORDS[lab][form]) if words in ("heldout", "all") else [])
            pool = pool or TRAIN_WORDS[lab][form][:1]  # a class with no held-out words yet
        values[f] = _choice(rng, pool)
    text = template.format(**values)
    return text[:1].upper() + text[1:]


def canonical_instruction(labels: Sequence[str], template: str = PAPER_TEMPLATES[0]) -> str:
    """The canonical text of a sequence of expressions (cache-friendly for two labels).

    Example:
        >>> canonical_instruction(["disgust", "happiness"])
        'Turn this face from disgust to happiness.'
        >>> canonical_instruction(["happiness", "neutral", "sadness"])
        'Turn this face from happiness to neutral, then to sadness.'
        >>> canonical_instruction(["fear"])
        'Change this face to fear.'
    """
    labs = [_label(x, "label") for x in labels]
    if not labs:
        raise InputError("canonical_instruction needs at least one expression")
    if len(labs) == 1:
        return render_instruction(SINGLE_TEMPLATES[2], b=labs[0])
    text = render_instruction(template, labs[0], labs[1])
    if len(labs) > 2:
        rest = "".join(f", then to {TRAIN_WORDS[x]['noun'][0]}" for x in labs[2:])
        text = text[:-1] + rest + "." if text.endswith(".") else text + rest
    return text
