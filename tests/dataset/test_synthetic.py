"""Synthetic FACS emotion data."""

from __future__ import annotations

import numpy as np
import pytest

from flame_transit.data import BASIC_EMOTIONS, LABEL_NAMES, instruction_pairs, make_synthetic_dataset
from flame_transit.data.synthetic import AU_NAMES, EMOTION_SPECS
from flame_transit.errors import InputError
from flame_transit.head import load_head
from flame_transit.head.open_head import EMOTION_PROTOTYPES, JAW_RAD_PER_AU26


@pytest.fixture(scope="module")
def head():
    return load_head()


@pytest.fixture(scope="module")
def data(head):
    return make_synthetic_dataset(head, samples_per_emotion=150, seed=0)


def test_deterministic(head, data):
    again = make_synthetic_dataset(head, samples_per_emotion=150, seed=0)
    for name in ("expression", "jaw_pose", "shape", "global_pose", "labels", "subject", "intensity"):
        np.testing.assert_array_equal(getattr(again, name), getattr(data, name))
    other = make_synthetic_dataset(head, samples_per_emotion=150, seed=1)
    assert not np.array_equal(other.expression, data.expression)


def test_shapes_labels_balance(head, data):
    assert data.expression.shape == (150 * 8, head.num_expression)
    assert data.shape.shape == (len(data), head.num_shape)
    assert data.head_name == head.name and data.expression_names == head.expression_names
    assert set(data.counts().values()) == {150}
    assert data.num_subjects >= 20
    no_neutral = make_synthetic_dataset(head, samples_per_emotion=5, include_neutral=False, seed=0)
    assert no_neutral.counts()["neutral"] == 0 and len(no_neutral) == 35
    two = make_synthetic_dataset(head, samples_per_emotion=5, emotions=["happy", "sad"], seed=0)
    assert {k for k, v in two.counts().items() if v} == {"neutral", "happiness", "sadness"}


def test_values_plausible(data):
    assert (data.expression >= 0).all() and data.expression.max() <= 1.25
    assert (data.jaw_pose[:, 0] >= 0).all() and data.jaw_pose[:, 0].max() <= 1.25 * JAW_RAD_PER_AU26 + 1e-6
    assert np.abs(data.global_pose).max() < 0.6
    neutral = data.subset(labels=["neutral"])
    assert neutral.expression.mean() < 0.05 and (neutral.intensity == 0).all()
    emo = data.subset(labels=list(BASIC_EMOTIONS))
    assert emo.intensity.min() >= 0.35 and emo.intensity.max() <= 1.0
    # identities vary across subjects, a subject keeps its identity
    s0 = data.shape[data.subject == 0]
    assert np.allclose(s0, s0[0]) and not np.allclose(data.shape[data.subject == 1][0], s0[0])


def _au_columns(data):
    """AU name -> class-wise values, with one-sided AUs summed into their bilateral AU."""
    names = list(data.expression_names)
    cols = {a: data.expression[:, names.index(a)].copy() for a in names if a[-1] not in "LR"}
    for a in ("AU12", "AU14"):
        cols[a] += data.expression[:, names.index(a + "L")] + data.expression[:, names.index(a + "R")]
    return cols


def test_prototype_aus_dominate_their_classes(data):
    """Each emotion's strongest mean AUs are its EMFACS core AUs, far above the other classes;
    surprise and fear open the jaw (AU26)."""
    cols = _au_columns(data)
    for emotion in BASIC_EMOTIONS:
        core = set(EMOTION_SPECS[emotion].core)
        # every core AU is part of the open head's prototype of that emotion (one-sided merged)
        proto = {a[:-1] if a[:-1] in ("AU12", "AU14") else a for a in EMOTION_PROTOTYPES[emotion]}
        assert core <= proto, (emotion, core, proto)
        mask = data.labels == LABEL_NAMES.index(emotion)
        mean = {a: v[mask].mean() for a, v in cols.items()}
        top = set(sorted(mean, key=mean.get, reverse=True)[: len(core)])
        assert top == core, (emotion, top, core)
        for a in core:
            # far stronger than in any class whose spec does not use that AU at all
            lacking = [e for e in LABEL_NAMES if e == "neutral" or
                       (a not in EMOTION_SPECS[e].core and a not in EMOTION_SPECS[e].optional)]
            other = max(cols[a][data.labels == LABEL_NAMES.index(e)].mean() for e in lacking)
            assert mean[a] > 4 * other, (emotion, a, mean[a], other)
    jaw = {e: data.subset(labels=[e]).jaw_pose[:, 0].mean() for e in LABEL_NAMES}
    assert min(jaw["surprise"], jaw["fear"]) > 2 * max(v for k, v in jaw.items() if k not in ("surprise", "fear", "happiness"))


def test_contempt_is_unilateral_and_asymmetry_exists(data):
    names = list(data.expression_names)
    c = data.subset(labels=["contempt"]).expression
    left, right = c[:, names.index("AU12L")], c[:, names.index("AU12R")]
    assert (np.abs(left - right) > 0.2).mean() > 0.9
    assert 0.3 < (left > right).mean() < 0.7  # both sides occur
    h = data.subset(labels=["happiness"]).expression
    assert (np.abs(h[:, names.index("AU12L")] - h[:, names.index("AU12R")]) > 0.02).mean() > 0.3


def test_optional_aus_vary(data):
    names = list(data.expression_names)
    dis = data.subset(labels=["disgust"]).expression[:, names.index("AU16")]
    frac = (dis > 0.15).mean()
    assert 0.4 < frac < 0.8  # present with probability ~0.6
    assert set(EMOTION_SPECS) == set(BASIC_EMOTIONS)


def test_bad_arguments(head):
    with pytest.raises(InputError, match="samples_per_emotion"):
        make_synthetic_dataset(head, samples_per_emotion=0)
    with pytest.raises(InputError, match="unknown emotion"):
        make_synthetic_dataset(head, samples_per_emotion=2, emotions=["boredom"])
    with pytest.raises(InputError, match="intensity_range"):
        make_synthetic_dataset(head, samples_per_emotion=2, intensity_range=(0.0, 1.0))


def test_instruction_pairs(data):
    from flame_transit.text.templates import TRAIN_TEMPLATES

    pairs = instruction_pairs(data, TRAIN_TEMPLATES, 0, num_pairs=300)
    assert len(pairs) == 300 and pairs == instruction_pairs(data, TRAIN_TEMPLATES, 0, num_pairs=300)
    for text, a, b in pairs:
        assert isinstance(text, str) and text
        assert data.labels[a] != data.labels[b]
        assert 0 not in (data.labels[a], data.labels[b])  # no neutral by default
    same = np.mean([data.subject[a] == data.subject[b] for _, a, b in pairs])
    assert same > 0.95
    ordered = {(int(data.labels[a]), int(data.labels[b])) for _, a, b in pairs}
    assert len(ordered) == 42  # every ordered pair of the 7 emotions appears
    canon = instruction_pairs(data, ["Turn this face from {a} to {b}."], 1, num_pairs=5, synonyms=False)
    for text, a, b in canon:
        assert text == f"Turn this face from {data.label_names[data.labels[a]]} to {data.label_names[data.labels[b]]}."
    with pytest.raises(InputError, match="template"):
        instruction_pairs(data, [], 0)
    with pytest.raises(InputError, match="two emotions"):
        instruction_pairs(data.subset(labels=["happy"]), TRAIN_TEMPLATES, 0)


def test_au_names_match_open_head(head):
    assert AU_NAMES == head.expression_names
