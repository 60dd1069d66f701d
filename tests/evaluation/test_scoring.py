"""The paper's evaluation protocol: classifier, Acc1 / Acc2 / G-mean, tables, confusion PNGs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from flame_transit.data import BASIC_EMOTIONS, make_synthetic_dataset
from flame_transit.errors import AssetError, CheckpointMismatchError, InputError
from flame_transit.evaluation import (
    PAPER_TEMPLATES,
    EvalCase,
    ExpressionClassifier,
    evaluate_generator,
    make_eval_cases,
    markdown_table,
    oracle_generator,
    parse_labels,
    run_ablation_table,
    save_confusion_png,
    scores_from_predictions,
    train_classifier,
)
from flame_transit.head import load_head


@pytest.fixture(scope="module")
def head():
    return load_head()


@pytest.fixture(scope="module")
def splits(head):
    data = make_synthetic_dataset(head, samples_per_emotion=200, seed=11)
    return data.split(test=0.1, val=0.1, seed=0)


@pytest.fixture(scope="module")
def classifier(splits):
    return train_classifier(splits.train, seed=0)


@pytest.fixture(scope="module")
def cases():
    return make_eval_cases()


def test_classifier_accuracy_on_synthetic_test_split(classifier, splits, head):
    acc = classifier.accuracy(splits.test)
    print(f"\nclassifier (logreg) accuracy on the synthetic test split: {acc:.4f} ({len(splits.test)} rows)")
    assert acc >= 0.97
    # a fresh draw with another seed (the classifier never saw these identities)
    fresh = make_synthetic_dataset(head, samples_per_emotion=60, seed=12345)
    assert classifier.accuracy(fresh) >= 0.97
    mlp = train_classifier(splits.train, kind="mlp", seed=0, hidden=32, max_iter=60)
    assert mlp.accuracy(splits.test) >= 0.95


def test_classifier_deterministic_and_round_trip(classifier, splits, tmp_path):
    again = train_classifier(splits.train, seed=0)
    for (W1, b1), (W2, b2) in zip(classifier.weights, again.weights):
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)
    back = ExpressionClassifier.load(classifier.save(tmp_path / "clf.npz"))
    x = splits.test
    np.testing.assert_array_equal(back.predict(x.expression, x.jaw_pose), classifier.predict(x.expression, x.jaw_pose))
    assert back.label_names == classifier.label_names and back.head_name == classifier.head_name
    # torch input works too
    t = classifier.predict(torch.as_tensor(x.expression), torch.as_tensor(x.jaw_pose))
    np.testing.assert_array_equal(t, classifier.predict(x.expression, x.jaw_pose))
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(AssetError, match="classifier"):
        ExpressionClassifier.load(tmp_path / "bad.npz")
    with pytest.raises(AssetError, match="not found"):
        ExpressionClassifier.load(tmp_path / "none.npz")
    with pytest.raises(CheckpointMismatchError, match="expects 22"):
        classifier.predict(np.zeros((2, 50)), np.zeros((2, 3)))


def test_make_eval_cases(cases):
    assert len(cases) == 42 * len(PAPER_TEMPLATES)
    pairs = {c.labels for c in cases}
    assert len(pairs) == 42 and all(a != b and a in BASIC_EMOTIONS and b in BASIC_EMOTIONS for a, b in pairs)
    assert cases[0] == EvalCase("Turn this face from happiness to sadness.", ("happiness", "sadness"))
    few = make_eval_cases(per_pair=2, rng=0)
    assert len(few) == 84 and few == make_eval_cases(per_pair=2, rng=0)
    syn = make_eval_cases(words="heldout", rng=1)
    assert len(syn) == 210 and syn[0].labels == ("happiness", "sadness") and "happiness" not in syn[0].instruction
    with pytest.raises(InputError):
        make_eval_cases(emotions=["happiness"])
    with pytest.raises(InputError):
        make_eval_cases(per_pair=9)


def _swap(generate):
    def swapped(texts):
        return [SimpleNamespace(expression=o.expression[::-1], jaw_pose=o.jaw_pose[::-1]) for o in generate(texts)]

    return swapped


def test_perfect_and_swapped_generators(classifier, splits, cases):
    perfect = oracle_generator(splits.test, cases, seed=0)
    r = evaluate_generator(perfect, cases, classifier, name="perfect")
    assert (r.acc1, r.acc2, r.gmean) == (1.0, 1.0, 1.0)
    assert r.n_cases == 210 and r.n_expressions == 420 and r.confusion.sum() == 420
    s = evaluate_generator(_swap(oracle_generator(splits.test, cases, seed=0)), cases, classifier, name="swapped")
    assert (s.acc1, s.acc2, s.gmean) == (0.0, 0.0, 0.0)


def test_half_right_generator(classifier, splits, cases):
    """Right start expression, neutral target: Acc1 = 0.5, Acc2 = 0."""
    neutral = splits.test.subset(labels=["neutral"])
    base = oracle_generator(splits.test, cases)

    def first_only(texts):
        out = base(texts)
        return [SimpleNamespace(expression=np.stack([o.expression[0], neutral.expression[0]]),
                                jaw_pose=np.stack([o.jaw_pose[0], neutral.jaw_pose[0]])) for o in out]

    r = evaluate_generator(first_only, cases, classifier)
    assert r.acc1 == pytest.approx(0.5) and r.acc2 == 0.0 and r.acc2 <= r.acc1
    # every emotion is a start as often as a target: recall 0.5 for each class
    assert set(r.per_class.values()) == {0.5} and r.gmean == pytest.approx(0.5)
    assert r.confusion[:, classifier.label_names.index("neutral")].sum() == 210


def test_neutral_inserted_anchors_are_skipped(classifier, splits, cases):
    base = oracle_generator(splits.test, cases)
    neutral = splits.test.subset(labels=["neutral"])

    def with_neutral(texts):
        out = []
        for o in base(texts):
            e = np.stack([o.expression[0], neutral.expression[0], o.expression[1]])
            j = np.stack([o.jaw_pose[0], neutral.jaw_pose[0], o.jaw_pose[1]])
            out.append(SimpleNamespace(expression=torch.as_tensor(e), jaw_pose=torch.as_tensor(j)))
        return out

    r = evaluate_generator(with_neutral, cases[:20], classifier)
    assert r.acc1 == 1.0

    def wrong_count(texts):
        return [SimpleNamespace(expression=np.zeros((4, 22)), jaw_pose=np.zeros((4, 3))) for _ in texts]

    with pytest.raises(InputError, match="anchors"):
        evaluate_generator(wrong_count, cases[:3], classifier)
    with pytest.raises(InputError, match="results for"):
        evaluate_generator(lambda texts: [], cases[:3], classifier)
    with pytest.raises(InputError, match=".expression"):
        evaluate_generator(lambda texts: [object() for _ in texts], cases[:3], classifier)


def test_trajectory_anchors_type(classifier, splits, cases):
    from flame_transit.trajectory import Anchors

    base = oracle_generator(splits.test, cases)

    def gen(texts):
        return [Anchors(expression=o.expression, jaw_pose=o.jaw_pose) for o in base(texts)]

    assert evaluate_generator(gen, cases[:30], classifier).acc1 == 1.0


def test_scores_by_hand():
    t = [("happiness", "sadness"), ("sadness", "happiness"), ("anger", "fear")]
    p = [("happiness", "sadness"), ("sadness", "neutral"), ("anger", "surprise")]
    acc1, acc2, g, cm, per_class = scores_from_predictions(t, p, ("neutral",) + BASIC_EMOTIONS)
    assert acc1 == pytest.approx(4 / 6) and acc2 == pytest.approx(1 / 3) and acc2 <= acc1
    assert per_class == {"happiness": 0.5, "sadness": 1.0, "fear": 0.0, "anger": 1.0}
    assert g == 0.0  # fear never right
    t2, p2 = t[:2], p[:2]
    _, _, g2, _, _ = scores_from_predictions(t2, p2, ("neutral",) + BASIC_EMOTIONS)
    assert g2 == pytest.approx(np.sqrt(0.5 * 1.0))
    with pytest.raises(InputError):
        scores_from_predictions([("happiness",)], [("joy",)], BASIC_EMOTIONS)


def test_tables_and_pngs(classifier, splits, cases, tmp_path):
    models = {
        "perfect": oracle_generator(splits.test, cases, seed=0),
        "swapped": _swap(oracle_generator(splits.test, cases, seed=0)),
    }
    md = run_ablation_table(models, cases, classifier, out_dir=tmp_path / "abl", oracle=splits.test, progress=False)
    lines = md.splitlines()
    assert any(l.startswith("| perfect | 100.00 | 100.00 | 100.00 |") for l in lines)
    assert any(l.startswith("| swapped | 0.00 | 0.00 | 0.00 |") for l in lines)
    assert any("I2FET (paper) | 91.44 | 84.03 | 80.30" in l for l in lines)
    names = sorted(p.name for p in (tmp_path / "abl").iterdir())
    assert names == ["ablation.md", "confusion_data_classifier_ceiling.png", "confusion_perfect.png",
                     "confusion_swapped.png", "results.json"]
    png = (tmp_path / "abl" / "confusion_perfect.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    r = evaluate_generator(models["perfect"], cases[:10], classifier, name="x")
    save_confusion_png(r, tmp_path / "sub" / "cm.png", normalize=False)
    assert (tmp_path / "sub" / "cm.png").stat().st_size > 1000
    assert "| x |" in markdown_table([r], paper_reference=False)
    with pytest.raises(InputError):
        run_ablation_table({}, cases, classifier)


def test_parse_labels():
    assert parse_labels("Change this face from anger to surprise.") == ["anger", "surprise"]
    assert parse_labels("Make the face happy, then sad") == ["happiness", "sadness"]
