"""Templates: paper's five, train/held-out separation, rendering."""

from __future__ import annotations

import random

import numpy as np
import pytest

from flame_transit.errors import InputError
from flame_transit.text.templates import (
    HELDOUT_SINGLE_TEMPLATES,
    HELDOUT_TEMPLATES,
    HELDOUT_WORDS,
    PAPER_TEMPLATES,
    SINGLE_TEMPLATES,
    TRAIN_TEMPLATES,
    TRAIN_WORDS,
    canonical_instruction,
    render_instruction,
    template_fields,
)
from flame_transit.text.vocabulary import EXPRESSIONS, label_of


def test_paper_templates_verbatim():
    assert [render_instruction(t, "disgust", "happiness") for t in PAPER_TEMPLATES] == [
        "Turn this face from disgust to happiness.",
        "Change this face from disgust to happiness.",
        "Transform this face from disgust to happiness.",
        "Modify this face, changing it from disgust to happiness.",
        "Replace this face from disgust to happiness.",
    ]
    assert TRAIN_TEMPLATES[:5] == PAPER_TEMPLATES


def test_heldout_is_disjoint_from_training():
    norm = lambda t: " ".join(t.lower().split())  # noqa: E731
    assert not {norm(t) for t in TRAIN_TEMPLATES} & {norm(t) for t in HELDOUT_TEMPLATES}
    assert not set(SINGLE_TEMPLATES) & set(HELDOUT_SINGLE_TEMPLATES)
    assert len(HELDOUT_TEMPLATES) >= 10 and len(TRAIN_TEMPLATES) >= 25
    for lab in EXPRESSIONS:
        for form in ("noun", "adj"):
            assert not set(TRAIN_WORDS[lab][form]) & set(HELDOUT_WORDS[lab][form]), (lab, form)
            for w in TRAIN_WORDS[lab][form] + HELDOUT_WORDS[lab][form]:
                assert label_of(w) == lab, w


def test_every_template_names_both_expressions():
    for t in TRAIN_TEMPLATES + HELDOUT_TEMPLATES:
        f = template_fields(t)
        assert any(x.startswith("a") for x in f) and any(x.startswith("b") for x in f), t
    for t in SINGLE_TEMPLATES + HELDOUT_SINGLE_TEMPLATES:
        assert all(x.startswith("b") for x in template_fields(t)), t


def test_render_is_deterministic_and_uses_synonyms():
    t = TRAIN_TEMPLATES[0]
    a = [render_instruction(t, "fear", "anger", np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    assert render_instruction(t, "fear", "anger", 7) == render_instruction(t, "fear", "anger", 7)
    seen = {render_instruction(t, "fear", "anger", np.random.default_rng(s)) for s in range(40)}
    assert len(seen) > 10
    r = render_instruction(t, "fear", "anger", random.Random(0))
    assert r.startswith("Turn this face from ")
    held = {render_instruction(t, "fear", "anger", s, words="heldout") for s in range(40)}
    train_words = {w for forms in TRAIN_WORDS.values() for ws in forms.values() for w in ws}
    for text in held:
        assert not any(f" {w} " in f" {text[:-1]} " for w in ("scared", "angry", "fear", "anger"))
    assert held.isdisjoint(seen) and train_words


def test_render_accepts_words_and_capitalises():
    assert render_instruction("{a_adj} -> {b_adj}", "joy", "grossed out") == "Happy -> disgusted"
    with pytest.raises(InputError):
        render_instruction(PAPER_TEMPLATES[0], "happy", "zorgle")
    with pytest.raises(InputError):
        render_instruction("from {x} to {b}", "happy", "sad")
    with pytest.raises(InputError):
        render_instruction(PAPER_TEMPLATES[0], "happy")
    with pytest.raises(InputError):
        render_instruction(PAPER_TEMPLATES[0], "happy", "sad", 0, words="secret")


def test_canonical_instruction():
    assert canonical_instruction(["sadness", "anger"]) == "Turn this face from sadness to anger."
    assert canonical_instruction(["happy", "calm", "sad"]) == \
        "Turn this face from happiness to neutral, then to sadness."
    with pytest.raises(InputError):
        canonical_instruction([])
