"""Perceptual evaluation: the facex judge on real pixels, the photo test set, scores, the CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from flame_transit.errors import InputError
from flame_transit.evaluation.perceptual import (
    BASIC_EMOTIONS,
    FACEX_LABELS,
    FacexJudge,
    markdown_table,
    perceptual_eval,
    photo_test_set,
    save_results,
)

PHOTO = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "face.jpg")


def _judge_or_skip():
    try:
        return FacexJudge()
    except InputError as exc:
        pytest.skip(str(exc))


def test_photo_test_set_variants():
    variants = photo_test_set(PHOTO)
    orig = variants["original"]
    assert set(variants) >= {"original", "flipped", "crop", "loose", "small", "dark", "bright", "warm"}
    np.testing.assert_array_equal(variants["flipped"][:, ::-1], orig)
    assert variants["small"].shape[0] < orig.shape[0] and variants["loose"].shape[0] > orig.shape[0]
    assert variants["dark"].mean() < orig.mean() < variants["bright"].mean()
    for v in variants.values():
        assert v.dtype == np.uint8 and v.ndim == 3 and v.shape[2] == 3


def test_judge_reads_the_smiling_photo_as_happy_and_flat_grey_as_not():
    judge = _judge_or_skip()
    p = judge.predict_proba(photo_test_set(PHOTO)["original"])
    assert p.shape == (len(FACEX_LABELS),)
    assert abs(p.sum() - 1) < 1e-3
    assert FACEX_LABELS[int(p.argmax())] == "happiness"  # the astronaut smiles with teeth
    grey = judge.predict_proba(np.full((256, 256, 3), 128, np.uint8))
    assert grey[FACEX_LABELS.index("happiness")] < p[FACEX_LABELS.index("happiness")]


def test_judge_rejects_bad_input():
    judge = _judge_or_skip()
    with pytest.raises(InputError, match="uint8 RGB"):
        judge.predict_proba(np.zeros((10, 10), np.float32))


def test_perceptual_eval_small_run(tmp_path):
    judge = _judge_or_skip()
    photo = photo_test_set(PHOTO)["original"]
    res = perceptual_eval({"astronaut": photo}, emotions=("happiness", "fear"), looks=("photo", "shaded"),
                          templates=("Turn this face from {a} to {b}.",), judge=judge, size=256, fps=10,
                          duration=0.5, hold=0.0)
    assert set(res) == {"photo", "shaded"}
    for r in res.values():
        assert r.n_clips == 2 and len(r.rows) == 2
        assert 0 <= r.scores.acc1 <= 1 and 0 <= r.direction <= 1
        assert r.scores.confusion.sum() == 4  # two frames read per clip
        assert {row["instruction"] for row in r.rows} == {"Turn this face from happiness to fear.",
                                                         "Turn this face from fear to happiness."}
    # the astronaut's own smile: the clip that ends in happiness reads happy at its last frame
    last = {row["instruction"]: row["last"] for row in res["photo"].rows}
    assert last["Turn this face from fear to happiness."] == "happiness"
    out = save_results(res, tmp_path / "perc")
    data = json.loads((out / "results.json").read_text())
    assert data["photo"]["n_clips"] == 2
    assert (out / "confusion_photo.png").stat().st_size > 1000
    assert "| photo |" in (out / "README.md").read_text()


def test_perceptual_eval_rejects_unknown_look():
    judge = _judge_or_skip()
    with pytest.raises(InputError, match="look"):
        perceptual_eval(PHOTO, looks=("cartoon",), judge=judge)


def test_markdown_table_lists_every_emotion():
    from flame_transit.evaluation import EvalResult
    from flame_transit.evaluation.perceptual import PerceptualResult

    cm = np.zeros((7, 7), np.int64)
    pc = {e: 0.5 for e in BASIC_EMOTIONS}
    r = PerceptualResult("photo", EvalResult(0.5, 0.25, 0.5, cm, FACEX_LABELS, pc, 30, 60), 0.9, 30)
    table = markdown_table({"photo": r})
    assert "| photo | 50.0 | 25.0 | 50.0 | 90.0 | 30 |" in table
    for e in BASIC_EMOTIONS:
        assert f"| {e} | 50.0 |" in table


def test_cli_perceptual_bad_variant_fails_before_work(tmp_path):
    _judge_or_skip()
    proc = subprocess.run([sys.executable, "-m", "flame_transit", "eval", "--perceptual", "--image", PHOTO,
                           "--variants", "sideways", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "sideways" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()
