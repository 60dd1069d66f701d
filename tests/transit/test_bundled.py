"""The bundled checkpoint (open head + MiniLM): loads, matches the head, names the right emotions."""

from __future__ import annotations

import numpy as np

import pytest
import torch

from flame_transit.transit.checkpoint import default_checkpoint_path, load_default_model

PAIRS = [("disgust", "happiness"), ("happiness", "sadness"), ("surprise", "anger"), ("fear", "contempt"),
         ("contempt", "surprise"), ("anger", "fear"), ("sadness", "disgust")]


@pytest.fixture(scope="module")
def head():
    from flame_transit.head import load_head

    return load_head()


@pytest.fixture(scope="module")
def classifier(head):
    from flame_transit.evaluate import default_classifier

    return default_classifier(head, samples_per_emotion=120)


def test_bundled_file_small_and_matching(head):
    path = default_checkpoint_path(head)
    assert path.stat().st_size <= 3_200_000
    tm = load_default_model(head)
    assert tm.head_name == head.name and tm.expression_dim == head.num_expression
    assert tm.text_encoder_name == "minilm-l6-v2" and tm.text_dim == 384
    assert tm.ned is not None and tm.kind == "i2fet"
    cfg = tm.model.cfg
    assert (cfg.ifed.param_layers, cfg.ifed.text_layers, cfg.ifed.caft_layers) == (2, 1, 1) and cfg.use_ifed
    scores = tm.meta["evaluation"]["scores"]
    assert scores["paper"]["acc2"] >= 0.9 and scores["heldout"]["acc2"] >= 0.9


def test_bundled_names_the_right_emotions(head, classifier):
    from flame_transit.text.templates import HELDOUT_TEMPLATES, PAPER_TEMPLATES, render_instruction
    from flame_transit.transit import generate_anchors_batch

    texts, labels = [], []
    for i, (a, b) in enumerate(PAIRS):
        texts.append(render_instruction(PAPER_TEMPLATES[i % 5], a, b))
        texts.append(render_instruction(HELDOUT_TEMPLATES[i % len(HELDOUT_TEMPLATES)], a, b, rng=i, words="heldout"))
        labels += [[a, b], [a, b]]
    out = generate_anchors_batch(texts, head=head, seed=0)
    expr = torch.cat([o.expression for o in out]).numpy()
    jaw = torch.cat([o.jaw_pose for o in out]).numpy()
    pred = [classifier.label_names[k] for k in classifier.predict(expr, jaw)]
    want = [l for pair in labels for l in pair]
    assert sum(p == w for p, w in zip(pred, want)) >= len(want) - 1, list(zip(texts, pred))


def test_bundled_intensity_and_actions(head):
    from flame_transit.transit import generate_anchors

    au = {n: i for i, n in enumerate(head.expression_names)}
    smile = [float(generate_anchors(t, head=head, seed=0).expression[0, au["AU12"]])
             for t in ("Make this face slightly happy.", "Make this face happy.", "Make this face very happy.")]
    assert smile[0] < smile[1] < smile[2]
    brows = generate_anchors("Make this face happy and raise the eyebrows.", head=head, seed=0)
    assert float(brows.expression[0, au["AU1"]]) == pytest.approx(1.0)
    assert float(brows.expression[0, au["AU12"]]) > 0.4
    wide = generate_anchors("Make this face surprised.", head=head, seed=0)
    assert float(wide.jaw_pose[0, 0]) > 0.05  # surprise drops the jaw


def test_bundled_neutral_and_subject(head):
    from flame_transit.params import FaceParams
    from flame_transit.transit import generate_anchors, neutral_anchor

    au = {n: i for i, n in enumerate(head.expression_names)}
    smiling = torch.zeros(head.num_expression)
    smiling[au["AU12"]], smiling[au["AU6"]] = 0.9, 0.8
    subject = FaceParams(shape=torch.zeros(head.num_shape), expression=smiling, pose=torch.zeros(15), head_name=head.name)
    n = neutral_anchor(subject, head=head)
    assert float(n.expression.abs().max()) < 0.3  # NED removes the smile
    a = generate_anchors("Turn this face from anger to neutral.", subject=subject, head=head, seed=0)
    assert a.labels == ["anger", "neutral"] and float(a.expression[1].abs().max()) < 0.35


def test_bundled_batch_of_hundreds_matches_single_calls(head):
    # speed is measured in benchmarks/bench_i2fet.py, never asserted here (shared CI machines)
    from flame_transit.text import parse_instruction
    from flame_transit.text.templates import PAPER_TEMPLATES, render_instruction
    from flame_transit.transit import generate_anchors, generate_anchors_batch

    parsed = [parse_instruction(render_instruction(PAPER_TEMPLATES[i % 5], a, b)) for i, (a, b) in enumerate(PAIRS * 72)]
    out = generate_anchors_batch(parsed, head=head, seed=1)
    assert len(out) == len(parsed)
    for k in (0, len(parsed) // 2, len(parsed) - 1):
        single = generate_anchors(parsed[k], head=head, seed=1)
        np.testing.assert_allclose(out[k].expression.numpy(), single.expression.numpy(), atol=1e-5)
