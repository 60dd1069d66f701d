"""Dataset builder: CK+ / CSV / folder layouts, encoding with resumable partial results."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flame_transit.data.builder import (
    build_dataset,
    read_ckplus,
    read_csv,
    read_folders,
    read_image,
)
from flame_transit.errors import AssetError, InputError, NoFaceError
from flame_transit.head import load_head
from tests.dataset.fakes import astronaut, make_fake_ckplus, stub_encode, warning_encode


@pytest.fixture(scope="module")
def ckplus(tmp_path_factory):
    return make_fake_ckplus(tmp_path_factory.mktemp("ckplus") / "CK+")


@pytest.fixture(scope="module")
def head():
    return load_head()


def test_read_ckplus_peak_and_neutral(ckplus):
    items = read_ckplus(ckplus)
    by = {(it.subject, it.label): it.path for it in items}
    assert len(items) == 6  # 3 labelled sequences x (peak + neutral); unlabelled one ignored
    assert by[("S005", "happiness")].endswith("S005_001_00000003.png")  # last frame
    assert by[("S010", "surprise")].endswith("S010_002_00000002.png")
    assert by[("S011", "anger")].endswith("S011_001_00000002.png")
    neutrals = [it.path for it in items if it.label == "neutral"]
    assert len(neutrals) == 3 and all(p.endswith("_00000001.png") for p in neutrals)
    assert len(read_ckplus(ckplus, neutral=False)) == 3


def test_read_ckplus_nested_and_bad_files(tmp_path, ckplus):
    nested = tmp_path / "zip"
    shutil.copytree(ckplus / "cohn-kanade-images", nested / "extended-cohn-kanade-images" / "cohn-kanade-images")
    shutil.copytree(ckplus / "Emotion", nested / "Emotion_labels" / "Emotion")
    assert len(read_ckplus(nested)) == 6
    bad = next((nested / "Emotion_labels" / "Emotion").glob("*/*/*_emotion.txt"))
    bad.write_text("happy\n")
    with pytest.raises(AssetError, match="must hold one number"):
        read_ckplus(nested)
    bad.write_text("9.0\n")
    with pytest.raises(AssetError, match="0-7"):
        read_ckplus(nested)
    with pytest.raises(AssetError, match="does not look like CK"):
        read_ckplus(tmp_path / "zip" / "Emotion_labels")
    with pytest.raises(AssetError, match="not found"):
        read_ckplus(tmp_path / "nowhere")


def test_build_with_stub_encoder(ckplus, head, tmp_path):
    items = read_ckplus(ckplus)
    ds = build_dataset(items, encode_fn=stub_encode, head=head, workers=1, progress=False)
    # the flat grey peak frame of S011/001 has no face: logged and skipped
    assert len(ds) == 5 and ds.meta["build"]["failed"] == 1
    assert "no face" in ds.meta["build"]["failures"][0][1]
    assert ds.counts()["neutral"] == 3 and ds.counts()["happiness"] == 1 and ds.counts()["anger"] == 0
    assert ds.head_name == head.name and ds.expression.shape == (5, head.num_expression)
    assert ds.num_subjects == 3
    hap = ds.subset(labels=["happy"])
    expected = stub_encode(read_image(hap.paths[0]))
    np.testing.assert_allclose(hap.expression[0], expected.expression.numpy(), rtol=1e-6)
    np.testing.assert_allclose(hap.jaw_pose[0], expected.pose[6:9].numpy(), rtol=1e-6)
    tr, va, te = ds.split(test=0.2, val=0.2, seed=0)
    assert len(tr) + len(va) + len(te) == 5
    ds.save(tmp_path / "ck.npz")


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        return stub_encode(image)


def test_resumable(ckplus, head, tmp_path):
    items = read_ckplus(ckplus)
    cache = tmp_path / "partial.jsonl"
    first = _Counting()
    build_dataset(items[:3], encode_fn=first, head=head, workers=1, cache_path=cache, progress=False)
    assert first.calls == 3
    # an interrupted write leaves a torn last line: ignored
    with open(cache, "a") as fh:
        fh.write('{"path": "/x", "ok": tr')
    second = _Counting()
    ds = build_dataset(items, encode_fn=second, head=head, workers=1, cache_path=cache, progress=False)
    assert second.calls == 3  # only the new images
    assert ds.meta["build"]["from_cache"] == 3 - sum(1 for it in items[:3] if "S011_001_00000002" in it.path)
    third = _Counting()
    again = build_dataset(items, encode_fn=third, head=head, workers=1, cache_path=cache, progress=False)
    assert third.calls == 0 and np.array_equal(again.expression, ds.expression)
    # failures are reused unless retry_failed; changed files are redone
    fourth = _Counting()
    build_dataset(items, encode_fn=fourth, head=head, workers=1, cache_path=cache, progress=False, retry_failed=True)
    assert fourth.calls == 1
    lines = cache.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "flame_transit.build_cache"


def test_parallel_matches_serial(ckplus, head):
    items = read_ckplus(ckplus)
    serial = build_dataset(items, encode_fn=stub_encode, head=head, workers=1, progress=False)
    parallel = build_dataset(items, encode_fn=stub_encode, head=head, workers=2, progress=False)
    np.testing.assert_array_equal(parallel.expression, serial.expression)
    np.testing.assert_array_equal(parallel.labels, serial.labels)
    assert list(parallel.paths) == list(serial.paths)


def test_unpicklable_encoder_falls_back_to_serial(ckplus, head, caplog):
    items = read_ckplus(ckplus)[:2]
    ds = build_dataset(items, encode_fn=lambda im: stub_encode(im), head=head, workers=2, progress=False)
    assert len(ds) == 2 and "cannot be sent to worker" in caplog.text


def test_all_failures_raise(ckplus, head):
    def no_face(image):
        raise NoFaceError("none")

    with pytest.raises(NoFaceError, match="none of the 2 images"):
        build_dataset(read_ckplus(ckplus)[:2], encode_fn=no_face, head=head, workers=1, progress=False)


def test_wrong_width_encoder(ckplus, head):
    def wide(image):
        p = stub_encode(image)
        return p.replace(expression=np.zeros(50, dtype=np.float32))

    with pytest.raises(InputError, match="expression coefficients"):
        build_dataset(read_ckplus(ckplus)[:2], encode_fn=wide, head=head, workers=1, progress=False)


def test_csv_and_folder_layouts(tmp_path, head):
    img = astronaut(64)
    (tmp_path / "happy").mkdir()
    (tmp_path / "Sad").mkdir()
    Image.fromarray(img).save(tmp_path / "happy" / "a.png")
    Image.fromarray(img[:, ::-1]).convert("L").save(tmp_path / "Sad" / "b.jpg")  # grey -> RGB
    items = read_folders(tmp_path)
    assert sorted((it.label, it.path.rsplit("/", 1)[-1]) for it in items) == [("happiness", "a.png"), ("sadness", "b.jpg")]
    assert read_image(tmp_path / "Sad" / "b.jpg").shape == (64, 64, 3)
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("path,label,subject\nhappy/a.png,happy,p1\nSad/b.jpg,5,p1\n")
    rows = read_csv(csv_path)
    assert [(r.label, r.subject) for r in rows] == [("happiness", "p1"), ("anger", "p1")]
    ds = build_dataset(rows, encode_fn=stub_encode, head=head, workers=1, progress=False)
    assert ds.label_strings == ["happiness", "anger"] and ds.subject.tolist() == [0, 0]

    csv_path.write_text("path,label\nhappy/a.png,bored\n")
    with pytest.raises(InputError, match="labels.csv:2"):
        read_csv(csv_path)
    csv_path.write_text("file,emotion\nhappy/a.png,happy\n")
    with pytest.raises(AssetError, match="'path' and 'label'"):
        read_csv(csv_path)
    (tmp_path / "misc").mkdir()
    with pytest.raises(InputError, match="not named after a label"):
        read_folders(tmp_path)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(AssetError, match="cannot read image"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(InputError, match="no labelled images"):
        build_dataset([], encode_fn=stub_encode, head=head)


def test_real_encoder(ckplus, head):
    encode = pytest.importorskip("flame_transit.encode")
    if not hasattr(encode, "encode"):
        pytest.skip("flame_transit.encode.encode not available")
    items = [it for it in read_ckplus(ckplus) if it.subject == "S005"]
    ds = build_dataset(items, head=head, workers=1, progress=False)
    assert len(ds) == 2 and ds.meta["build"]["failed"] == 0
    assert ds.expression.shape == (2, head.num_expression)
    # the peak and the neutral frame are the same photo here: the same codes
    np.testing.assert_allclose(ds.expression[0], ds.expression[1], atol=1e-5)
    assert np.isfinite(ds.expression).all() and (ds.expression >= -1e-6).all()


@pytest.mark.parametrize("workers", [1, 2])
def test_encoder_warnings_name_their_image_once_and_go_into_the_report(ckplus, head, tmp_path, workers):
    """Warnings from the encoder (on a pool or cluster worker they were printed there, unlabelled)
    come back to this process naming the image, and into meta["build"]; a resumed build does
    not say them again."""
    items = read_ckplus(ckplus)
    cache = tmp_path / "partial.jsonl"
    with pytest.warns(UserWarning) as caught:
        ds = build_dataset(items, encode_fn=warning_encode, head=head, workers=workers, cache_path=cache, progress=False)
    said = sorted(str(w.message) for w in caught if "faces found" in str(w.message))
    paths = sorted(str(Path(it.path).absolute()) for it in items)
    assert said == [f"{p}: 2 faces found; using the largest" for p in paths]
    assert sorted(p for p, _ in ds.meta["build"]["warnings"]) == paths
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # everything comes from the partial-results file
        build_dataset(items, encode_fn=warning_encode, head=head, workers=workers, cache_path=cache, progress=False)
