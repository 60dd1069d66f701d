import json

import numpy as np
import pytest
import trimesh

from flame_transit.errors import InputError
from flame_transit.export import export, save_obj_sequence, write_obj_sequence


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_writes_one_obj_per_frame_and_manifest(tmp_path, clip, small_head):
    traj, verts = clip
    out = save_obj_sequence(tmp_path / "seq", verts, small_head.faces, params=traj)
    t = traj.num_frames
    assert _names(out) == sorted([f"frame_{i:04d}.obj" for i in range(t)] + ["sequence.json"])
    manifest = json.loads((out / "sequence.json").read_text())
    assert manifest["format"] == "flame_transit.obj_sequence" and manifest["frames"] == t
    assert manifest["fps"] == traj.fps and manifest["anchor_labels"] == traj.labels
    for i in (0, t // 2, t - 1):
        mesh = trimesh.load(out / f"frame_{i:04d}.obj", process=False, maintain_order=True)
        assert mesh.vertices.shape == verts[i].shape
        np.testing.assert_allclose(mesh.vertices, verts[i], atol=1e-6)
        np.testing.assert_array_equal(mesh.faces, small_head.faces)
    assert _names(tmp_path) == ["seq"]  # no temporary folders left


def test_head_computes_meshes_and_export_dispatch(tmp_path, clip, small_head):
    traj, verts = clip
    out = export(tmp_path / "viaexport", traj, head=small_head)
    mesh = trimesh.load(out / "frame_0003.obj", process=False, maintain_order=True)
    np.testing.assert_allclose(mesh.vertices, verts[3], atol=1e-6)
    assert write_obj_sequence is save_obj_sequence


def test_replaces_own_folder_but_not_foreign_one(tmp_path, clip, small_head):
    traj, verts = clip
    seq = tmp_path / "seq"
    save_obj_sequence(seq, verts, small_head.faces)
    save_obj_sequence(seq, verts[:3], small_head.faces)  # ours: replaced, old frames gone
    assert _names(seq) == ["frame_0000.obj", "frame_0001.obj", "frame_0002.obj", "sequence.json"]

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="overwrite=True"):
        save_obj_sequence(foreign, verts, small_head.faces)
    assert _names(foreign) == ["thesis.tex"]
    save_obj_sequence(foreign, verts[:1], small_head.faces, overwrite=True)
    assert _names(foreign) == ["frame_0000.obj", "sequence.json"]

    empty = tmp_path / "empty"
    empty.mkdir()
    save_obj_sequence(empty, verts[:1], small_head.faces)
    assert _names(empty) == ["frame_0000.obj", "sequence.json"]
    assert _names(tmp_path) == ["empty", "mine", "seq"]


def test_failure_midway_leaves_nothing(tmp_path, clip, small_head, monkeypatch):
    traj, verts = clip
    seq = tmp_path / "seq"
    save_obj_sequence(seq, verts[:2], small_head.faces)
    calls = {"n": 0}
    real = trimesh.exchange.obj.export_obj

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(trimesh.exchange.obj, "export_obj", flaky)
    with pytest.raises(OSError, match="disk full"):
        save_obj_sequence(seq, verts, small_head.faces)
    assert _names(seq) == ["frame_0000.obj", "frame_0001.obj", "sequence.json"]  # old export intact
    assert _names(tmp_path) == ["seq"]
    calls["n"] = 0
    with pytest.raises(OSError):
        save_obj_sequence(tmp_path / "new", verts, small_head.faces)
    assert _names(tmp_path) == ["seq"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(vertices=np.zeros((2, 5))), r"\(T, V, 3\)"),
        (dict(faces=[[0, 1, 2.5]]), "integer"),
        (dict(faces=[[-1, 1, 2]]), "outside"),
        (dict(prefix="a/b"), "prefix"),
        (dict(digits=0), "digits"),
        (dict(fps=float("nan")), "fps"),
    ],
)
def test_bad_inputs(tmp_path, clip, small_head, kwargs, match):
    traj, verts = clip
    args = dict(vertices=verts, faces=small_head.faces)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        save_obj_sequence(tmp_path / "seq", **args)
    assert _names(tmp_path) == []


def test_target_is_a_file(tmp_path, clip, small_head):
    traj, verts = clip
    (tmp_path / "seq").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        save_obj_sequence(tmp_path / "seq", verts, small_head.faces)
    with pytest.raises(InputError, match="is a file"):
        save_obj_sequence(tmp_path / "seq" / "sub", verts, small_head.faces)
    assert _names(tmp_path) == ["seq"]
