import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flame_transit.errors import InputError
from flame_transit.export import export, load_npz, save_npz
from flame_transit.export.npz import FORMAT_VERSION, POSE_PARTS


def test_round_trip_trajectory(tmp_path, clip, small_head):
    traj, verts = clip
    path = save_npz(tmp_path / "clip.npz", traj, vertices=verts, faces=small_head.faces,
                    expression_names=small_head.expression_names, instruction="Turn this face from disgust to happiness.",
                    seed=7, metadata={"note": "test"})
    anim = load_npz(path)
    p, q = traj.params, anim.params
    assert anim.num_frames == traj.num_frames and anim.fps == traj.fps
    assert torch.equal(q.shape, p.shape) and q.shape.ndim == 1  # constant identity comes back as (S,)
    assert torch.equal(q.expression, p.expression) and torch.equal(q.pose, p.pose) and torch.equal(q.cam, p.cam)
    assert torch.equal(q.offsets, p.offsets) and torch.equal(q.vertices_2d, p.vertices_2d)
    assert torch.equal(q.crop_to_image, p.crop_to_image) and q.image_size == (480, 640)
    assert q.fit_rms == pytest.approx(0.012) and q.head_name == small_head.name == anim.head_name
    np.testing.assert_array_equal(anim.vertices, verts.astype(np.float32))
    np.testing.assert_array_equal(anim.faces, small_head.faces)
    assert anim.instruction.startswith("Turn this face") and anim.seed == 7
    assert anim.expression_names == small_head.expression_names
    assert anim.anchor_frames == traj.anchor_frames and anim.anchor_labels == ["disgust", "neutral", "happiness"]
    assert anim.metadata["note"] == "test" and anim.format_version == FORMAT_VERSION


def test_plain_numpy_layout_and_flame_pose_views(tmp_path, clip, small_head):
    traj, verts = clip
    path = save_npz(tmp_path / "clip.npz", traj, head=small_head)  # meshes computed by the head
    with np.load(path, allow_pickle=False) as z:
        t = traj.num_frames
        assert z["pose"].shape == (t, 15) and z["shape"].shape == (t, small_head.num_shape)
        assert z["vertices"].shape == (t, small_head.num_vertices, 3) and z["faces"].dtype == np.int32
        for name, sl in POSE_PARTS:
            np.testing.assert_array_equal(z[name], z["pose"][:, sl])
        np.testing.assert_allclose(z["jaw_pose"], traj.params.jaw_pose.numpy())
        np.testing.assert_allclose(z["vertices"], verts, atol=1e-6)
        assert str(z["format"]) == "flame_transit.animation" and int(z["seed"]) == -1
        np.testing.assert_allclose(z["times"], np.arange(t) / traj.fps)
    assert load_npz(path).seed is None


def test_facepararams_clip_and_explicit_metadata(tmp_path, clip, small_head):
    traj, verts = clip
    path = save_npz(tmp_path / "p.npz", traj.params, vertices=verts, faces=small_head.faces, fps=25,
                    head_name="given", anchor_frames=[0, 3], anchor_labels=["a", "b"])
    anim = load_npz(path)
    assert anim.fps == 25 and anim.head_name == "given" and anim.anchor_frames == [0, 3]


def test_export_dispatch(tmp_path, clip, small_head):
    traj, verts = clip
    assert export(tmp_path / "x.npz", traj, vertices=verts, faces=small_head.faces).exists()
    with pytest.raises(InputError, match="unknown output suffix"):
        export(tmp_path / "x.fbx", traj, vertices=verts, faces=small_head.faces)
    assert not (tmp_path / "x.fbx").exists()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(vertices=np.zeros((3, 120, 3))), "frames"),
        (dict(vertices="nope"), "numeric"),
        (dict(vertices=np.full((13, 120, 3), np.nan)), "NaN"),
        (dict(faces=[[0, 1, 500]]), "outside"),
        (dict(faces=np.zeros((4, 4), int)), r"\(F, 3\)"),
        (dict(fps=0), "fps"),
        (dict(seed=-3), "seed"),
        (dict(seed=1.5), "seed"),
        (dict(expression_names=["a"]), "expression names"),
        (dict(metadata={"x": object()}), "JSON"),
        (dict(anchor_frames=[0, 99]), "outside"),
    ],
)
def test_bad_inputs_leave_nothing(tmp_path, clip, small_head, change, match):
    traj, verts = clip
    kwargs = dict(vertices=verts, faces=small_head.faces)
    kwargs.update(change)
    with pytest.raises(InputError, match=match):
        save_npz(tmp_path / "bad.npz", traj, **kwargs)
    assert _leftovers(tmp_path) == []


def test_unwritable_places(tmp_path, clip, small_head):
    traj, verts = clip
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        save_npz(tmp_path / "afile" / "clip.npz", traj, vertices=verts, faces=small_head.faces)
    (tmp_path / "adir.npz").mkdir()
    with pytest.raises(InputError, match="directory"):
        save_npz(tmp_path / "adir.npz", traj, vertices=verts, faces=small_head.faces)
    with pytest.raises(InputError, match=r"\.npz"):
        save_npz(tmp_path / "clip.txt", traj, vertices=verts, faces=small_head.faces)
    assert _leftovers(tmp_path) == ["adir.npz", "afile"]


def test_failed_write_keeps_the_old_file(tmp_path, clip, small_head, monkeypatch):
    traj, verts = clip
    path = save_npz(tmp_path / "clip.npz", traj, vertices=verts, faces=small_head.faces, seed=1)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        save_npz(path, traj, vertices=verts, faces=small_head.faces, seed=2)
    assert path.read_bytes() == before and _leftovers(tmp_path) == ["clip.npz"]


def test_load_rejects_foreign_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_npz(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="readable"):
        load_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(InputError, match="not a flame_transit animation"):
        load_npz(tmp_path / "other.npz")
    np.savez(tmp_path / "future.npz", format=np.array("flame_transit.animation"), format_version=np.array(FORMAT_VERSION + 1))
    with pytest.raises(InputError, match="upgrade"):
        load_npz(tmp_path / "future.npz")


@settings(max_examples=15, deadline=None)
@given(st.text(max_size=40), st.integers(0, 2**40), st.floats(1.0, 240, allow_nan=False))
def test_any_instruction_seed_fps_round_trip(tmp_path_factory, clip, small_head, text, seed, fps):
    traj, verts = clip
    out = tmp_path_factory.mktemp("h") / "c.npz"
    anim = load_npz(save_npz(out, traj.params, vertices=verts, faces=small_head.faces, instruction=text,
                             seed=seed, fps=fps, compress=False))
    assert anim.instruction == text and anim.seed == seed and anim.fps == fps


def test_npz_describes_itself(tmp_path):
    import json

    from flame_transit import animate

    anim = animate(None, "from sad to happy", fps=5, duration=0.4, look="shaded", size=64)
    with np.load(anim.save(tmp_path / "clip.npz")) as z:
        layout = json.loads(str(z["layout_json"]))
        assert {"units", "axes", "pose", "cam", "vertices"} <= set(layout)
        assert "jaw_pose [6:9]" in layout["pose"]
        assert list(z["shape_names"]) == list(anim.head.shape_names)
        assert z["shape_names"].shape[0] == z["shape"].shape[1]
