"""ExpressionDataset: validation, files, splits, subsets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flame_transit.data import LABEL_NAMES, ExpressionDataset, normalize_label
from flame_transit.errors import AssetError, InputError


def _toy(n: int = 200, subjects: int = 20, seed: int = 0) -> ExpressionDataset:
    rng = np.random.default_rng(seed)
    return ExpressionDataset(
        expression=rng.normal(size=(n, 5)),
        jaw_pose=rng.normal(size=(n, 3)),
        shape=rng.normal(size=(n, 4)),
        global_pose=rng.normal(size=(n, 3)),
        labels=np.arange(n) % len(LABEL_NAMES),
        subject=np.arange(n) % subjects if subjects else np.full(n, -1),
        head_name="toy",
        expression_names=tuple(f"e{i}" for i in range(5)),
        source="toy",
        intensity=rng.random(n),
        paths=[f"/img/{i}.png" for i in range(n)],
        meta={"note": "x"},
    )


def test_save_load_round_trip(tmp_path):
    ds = _toy()
    path = ds.save(tmp_path / "ds.npz")
    back = ExpressionDataset.load(path)
    for name in ("expression", "jaw_pose", "shape", "global_pose", "labels", "subject", "intensity"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ds, name))
    assert list(back.paths) == list(ds.paths)
    assert (back.head_name, back.expression_names, back.label_names, back.source, back.meta) == (
        ds.head_name, ds.expression_names, ds.label_names, ds.source, ds.meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds.npz"]  # no temp files left


def test_save_needs_npz_suffix(tmp_path):
    with pytest.raises(InputError, match=".npz"):
        _toy().save(tmp_path / "ds.txt")


@pytest.mark.parametrize("content, match", [
    (b"not a zip at all", "not a readable"),
    (b"PK\x03\x04 truncated", "not a readable"),
])
def test_load_garbage_raises_asset_error(tmp_path, content, match):
    p = tmp_path / "bad.npz"
    p.write_bytes(content)
    with pytest.raises(AssetError, match=match):
        ExpressionDataset.load(p)


def test_load_foreign_npz_and_missing(tmp_path):
    p = tmp_path / "foreign.npz"
    np.savez(p, a=np.zeros(3))
    with pytest.raises(AssetError, match="not a flame_transit expression dataset"):
        ExpressionDataset.load(p)
    with pytest.raises(AssetError, match="not found"):
        ExpressionDataset.load(tmp_path / "missing.npz")
    with pytest.raises(AssetError, match="directory"):
        ExpressionDataset.load(tmp_path)


def test_load_inconsistent_arrays(tmp_path):
    ds = _toy(20)
    path = ds.save(tmp_path / "ds.npz")
    with np.load(path) as npz:
        data = {k: npz[k] for k in npz.files}
    data["labels"] = data["labels"][:5]
    np.savez(tmp_path / "cut.npz", **data)
    with pytest.raises(AssetError, match="labels"):
        ExpressionDataset.load(tmp_path / "cut.npz")


@pytest.mark.parametrize("change, match", [
    ({"jaw_pose": np.zeros((10, 2))}, "jaw_pose"),
    ({"labels": np.full(10, 99)}, "labels must index"),
    ({"expression": np.full((10, 5), np.nan)}, "NaN"),
    ({"subject": np.zeros(3)}, "subject"),
    ({"expression_names": ("a",)}, "expression names"),
])
def test_validation_errors(change, match):
    kw = dict(expression=np.zeros((10, 5)), jaw_pose=np.zeros((10, 3)), shape=np.zeros((10, 2)),
              global_pose=np.zeros((10, 3)), labels=np.zeros(10), subject=np.zeros(10))
    kw.update(change)
    with pytest.raises(InputError, match=match):
        ExpressionDataset(**kw)


def test_split_by_subject_sizes_and_no_leakage():
    ds = _toy(400, subjects=40)
    tr, va, te = ds.split(test=0.1, val=0.1, seed=3)
    assert len(tr) + len(va) + len(te) == len(ds)
    assert len(te) == pytest.approx(40, abs=10) and len(va) == pytest.approx(36, abs=10)
    s_tr, s_va, s_te = (set(p.subject.tolist()) for p in (tr, va, te))
    assert not (s_tr & s_va) and not (s_tr & s_te) and not (s_va & s_te)
    paths = [set(p.paths) for p in (tr, va, te)]
    assert not (paths[0] & paths[1]) and not (paths[0] & paths[2]) and not (paths[1] & paths[2])
    # same seed, same split; another seed, another split
    again = ds.split(test=0.1, val=0.1, seed=3)
    assert list(again.test.paths) == list(te.paths)
    assert list(ds.split(test=0.1, val=0.1, seed=4).test.paths) != list(te.paths)


def test_split_rows_stratified_when_no_subjects():
    ds = _toy(800, subjects=0)
    tr, va, te = ds.split(test=0.1, val=0.1, seed=0)
    assert (len(tr), len(va), len(te)) == (648, 72, 80)
    assert set(te.counts().values()) == {10}  # 100 per label -> 10 each in the test part
    assert not set(tr.paths) & set(te.paths)
    with pytest.raises(InputError, match="subject"):
        ds.split(by_subject=True)
    with pytest.raises(InputError, match="fraction"):
        ds.split(test=1.5)


def test_subset_take_concat():
    ds = _toy(80)
    sub = ds.subset(labels=["happy", "anger"])
    assert set(sub.label_strings) == {"happiness", "anger"} and len(sub) == 20
    assert len(ds.subset(subjects=[0, 1])) == 8
    assert len(ExpressionDataset.concat([sub, sub])) == 40
    with pytest.raises(InputError, match="unknown emotion"):
        ds.subset(labels=["bored"])
    with pytest.raises(InputError, match="mask"):
        ds.take(np.ones(3, dtype=bool))
    assert ds.features().shape == (80, 8) and ds.pose15()[:, 6:9].tolist() == ds.jaw_pose.tolist()


@given(st.text(max_size=20))
@settings(max_examples=60, deadline=None)
def test_normalize_label_fuzz(text):
    try:
        out = normalize_label(text)
    except InputError as exc:
        assert "label" in str(exc)
    else:
        assert out in LABEL_NAMES
