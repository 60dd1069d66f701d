"""Instruction → per-anchor conditions; the training text pool never sees held-out wording."""

from __future__ import annotations

import re

import numpy as np
import pytest

from flame_transit.data.dataset import LABEL_NAMES
from flame_transit.text import parse_instruction
from flame_transit.transit.conditioning import build_text_pool, canonical_phrase, embed_pool, segment_queries


def q(text, mode="canonical"):
    return segment_queries(parse_instruction(text), text, mode, LABEL_NAMES)


def test_two_segments_canonical_text():
    qs = q("Turn this face from grossed out to joyful.")
    assert [x.label for x in qs] == ["disgust", "happiness"]
    assert [x.components[0].text for x in qs] == ["disgust", "happiness"]
    assert [x.position for x in qs] == [0, 1]
    assert all(x.context == "Turn this face from grossed out to joyful." for x in qs)


def test_raw_text_strips_intensity():
    qs = q("from very joyful to slightly gloomy", mode="raw")
    assert [x.components[0].text for x in qs] == ["joyful", "gloomy"]
    assert [x.intensity for x in qs] == pytest.approx([1.25, 0.3])


def test_k1_k3_blends_and_actions():
    assert len(q("Make this face angry.")) == 1
    assert [x.label for x in q("from happy to neutral, then to sad")] == ["happiness", "neutral", "sadness"]
    blend = q("happy and surprised")[0]
    assert {c.label for c in blend.components} == {"happiness", "surprise"}
    assert sum(c.weight for c in blend.components) == pytest.approx(1.0)
    act = q("raise the eyebrows")[0]
    assert [c.label for c in act.components] == ["neutral"] and act.aus == {"AU1": 1.0, "AU2": 1.0}


def test_canonical_phrase():
    assert canonical_phrase("happiness") == "happiness"


def test_pool_uses_training_wording_only():
    from flame_transit.text.templates import HELDOUT_TEMPLATES, HELDOUT_WORDS, TRAIN_WORDS

    pool = build_text_pool(LABEL_NAMES, seed=0, size=400)
    assert pool.rejected == 0 and len(pool) > 400
    assert set(np.unique(pool.label)) == set(range(len(LABEL_NAMES)))
    train_words = {w for forms in TRAIN_WORDS.values() for ws in forms.values() for w in ws}
    held = {w for forms in HELDOUT_WORDS.values() for ws in forms.values() for w in ws} - train_words
    blob = "\n".join(pool.texts).lower()
    for w in held:
        assert not re.search(r"\b" + re.escape(w.lower()) + r"\b", blob), w
    patterns = [re.compile(re.sub(r"\\\{[a-z_]+\\\}", ".+", re.escape(t)), re.IGNORECASE) for t in HELDOUT_TEMPLATES]
    from flame_transit.text.templates import render_instruction

    assert all(p.fullmatch(render_instruction(t, "fear", "anger")) for p, t in zip(patterns, HELDOUT_TEMPLATES))
    for text in pool.texts:
        assert not any(p.fullmatch(text) for p in patterns), text
    with pytest.raises(ValueError):
        build_text_pool(LABEL_NAMES, split="heldout")


def test_embed_pool_segment_only():
    from flame_transit.text import get_text_encoder

    pool = build_text_pool(LABEL_NAMES, seed=1, size=50)
    emb = embed_pool(pool, get_text_encoder("hash:16"), contexts=False)
    seg_rows = np.unique(pool.seg)
    assert emb.shape == (len(pool.texts), 16)
    assert bool((emb[seg_rows].norm(dim=1) > 0.99).all())
    others = np.setdiff1d(np.arange(len(pool.texts)), seg_rows)
    assert float(emb[others].abs().sum()) == 0.0
