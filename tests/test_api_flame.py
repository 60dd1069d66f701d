"""A FLAME user's path with nothing but the FLAME file: animate(), the CLI, exports, training.

Runs on the face-shaped FLAME-format model built from the open head (``face_flame`` fixture):
its landmarks and AU map are found automatically (first use), then read from the cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from flame_transit import animate
from flame_transit.cli import main
from flame_transit.errors import InputError

PHOTO = str(Path(__file__).resolve().parents[1] / "examples" / "face.jpg")
INSTRUCTION = "turn this face from disgust to happiness"


@pytest.fixture(autouse=True)
def _own_worker_cache(monkeypatch):
    """The CLI keeps models in the process-wide batch worker cache, whose load counts other
    tests read: these tests use their own."""
    from flame_transit.batch import worker

    monkeypatch.setattr(worker, "_CACHE", {})
    monkeypatch.setattr(worker, "_LOADS", {})


@pytest.fixture(scope="module")
def flame_anim(face_flame):
    path, _, _ = face_flame
    return animate(PHOTO, INSTRUCTION, head=str(path), fps=8, duration=0.5, hold=0.0, size=128, seed=0)


def test_flame_parameters_and_au_trajectory(flame_anim, face_flame):
    _, arrays, _ = face_flame
    anim = flame_anim
    t = anim.num_frames
    assert anim.head.kind == "flame" and anim.params.expression.shape == (t, 100)  # FLAME's 100
    assert anim.params.pose.shape == (t, 15) and anim.vertices.shape == (t, len(arrays["v_template"]), 3)
    assert anim.trajectory.labels == ["disgust", "happiness"]
    # the AU trajectory stays available (ARKit curves etc.): the anchors' AUs at the keyframes
    assert anim.au.shape == (t, len(anim.au_names)) and anim.au_names[-1] == "AU26"
    names = list(anim.au_names)
    first, last = anim.au[anim.anchor_frames[0]], anim.au[anim.anchor_frames[-1]]
    assert first[names.index("AU9")] > 0.3 and last[names.index("AU12")] > 0.3  # disgust: nose wrinkle; smile
    assert last[names.index("AU12")] > first[names.index("AU12")]
    assert anim.arkit.shape == (t, 52)  # so ARKit curves exist for FLAME clips too
    # the photo fit used DECA's 50 coefficients (zero-padded to 100 in the clip)
    assert anim.subject.expression.shape[-1] == 50 and anim.subject.head_name == anim.head.name
    # expressions differ between the anchors, in the first 50 (DECA's) as in all 100
    e = anim.params.expression
    assert (e[anim.anchor_frames[0], :50] - e[anim.anchor_frames[-1], :50]).abs().max() > 0.1


def test_flame_single_target_starts_from_the_photo_with_its_action_units(face_flame):
    path, _, _ = face_flame
    anim = animate(PHOTO, "make her look sad", head=str(path), fps=8, duration=0.5, hold=0.0, size=64)
    assert anim.trajectory.labels == ["photo", "sadness"]
    # the photo keyframe's AUs: the open head's fit of the same photo (a smile: AU12 at its bound)
    names = list(anim.au_names)
    open_anim = animate(PHOTO, "make her look sad", fps=8, duration=0.5, hold=0.0, size=64)
    np.testing.assert_allclose(anim.au[0], open_anim.au[0], atol=0.05)
    assert anim.au[0][names.index("AU12")] > 1.0 and anim.au[-1][names.index("AU15")] > 0.3
    assert anim.arkit.shape == (anim.num_frames, 52)


def test_flame_frames_both_looks(flame_anim):
    photo = flame_anim.frames
    assert photo.shape[1:] == (128, 128, 3) and photo.std() > 10
    flame_anim.render_options["look"] = "shaded"
    flame_anim._frames = None
    shaded = flame_anim.frames
    flame_anim.render_options["look"] = "photo"
    assert shaded.shape == photo.shape and not np.array_equal(shaded, photo)
    # the face moves between the anchors in the render
    assert np.abs(shaded[0].astype(int) - shaded[-1].astype(int)).mean() > 1.0


def test_flame_exports_keep_flame_topology(flame_anim, face_flame, tmp_path):
    import trimesh

    _, arrays, _ = face_flame
    faces, v = np.asarray(arrays["f"], dtype=np.int64), len(arrays["v_template"])
    flame_anim.save(tmp_path / "clip.npz")
    with np.load(tmp_path / "clip.npz") as z:
        np.testing.assert_array_equal(z["faces"], faces)  # FLAME's f, eyeballs included, in order
        assert z["vertices"].shape[1:] == (v, 3) and z["expression"].shape[1] == 100
    flame_anim.save(tmp_path / "objs")
    mesh = trimesh.load(sorted((tmp_path / "objs").glob("*.obj"))[0], process=False)
    assert len(mesh.vertices) == v
    np.testing.assert_array_equal(np.asarray(mesh.faces), faces)
    np.testing.assert_allclose(mesh.vertices, flame_anim.vertices[0], atol=1e-5)
    flame_anim.save(tmp_path / "clip.glb")
    scene = trimesh.load(tmp_path / "clip.glb", process=False)
    geom = list(scene.geometry.values())[0]
    assert len(geom.vertices) == v and len(geom.faces) == len(faces)
    # DECA's layout on request
    flame_anim.save(tmp_path / "deca.npz", layout="deca")
    with np.load(tmp_path / "deca.npz") as z:
        t = flame_anim.num_frames
        assert {k: z[k].shape for k in z.files} == {"shape": (100,), "exp": (t, 50), "pose": (t, 6), "cam": (t, 3)}
        np.testing.assert_allclose(z["exp"], flame_anim.params.expression[:, :50].numpy(), atol=1e-6)
        np.testing.assert_allclose(z["pose"][:, 3:], flame_anim.params.pose[:, 6:9].numpy(), atol=1e-6)


def test_cli_render_and_deca_export_with_only_the_flame_file(face_flame, tmp_path, capsys):
    path, _, _ = face_flame
    common = ["--instruction", "from sadness to surprise", "--head", str(path), "--fps", "4", "--duration", "0.5",
              "--hold", "0", "--quiet"]
    assert main(["render", "--image", PHOTO, *common, "--size", "96", "--through-neutral", "--out",
                 str(tmp_path / "c.gif")]) == 0
    assert (tmp_path / "c.gif").stat().st_size > 1000 and "(5 frames" in capsys.readouterr().out  # 2 segments: through neutral
    assert main(["export", *common, "--layout", "deca", "--out", str(tmp_path / "d.npz")]) == 0
    with np.load(tmp_path / "d.npz") as z:
        assert z["exp"].shape[1] == 50 and z["pose"].shape[1] == 6
    capsys.readouterr()
    assert main(["export", "--instruction", "happy", "--layout", "deca", "--out", str(tmp_path / "e.npz")]) != 0
    assert "give --head FLAME.pkl" in capsys.readouterr().err and not (tmp_path / "e.npz").exists()


def test_encoder_option_checked_before_work(face_flame):
    path, _, _ = face_flame
    with pytest.raises(InputError, match="encoder must be one of"):
        animate(PHOTO, INSTRUCTION, encoder="dlib")
    with pytest.raises(InputError, match="FLAME"):
        animate(PHOTO, INSTRUCTION, encoder="deca")  # the open head: DECA predicts FLAME
    with pytest.raises(InputError, match="deca_model"):
        animate(PHOTO, INSTRUCTION, head=str(path), deca_model="x.tar")


def test_flame_space_training_and_model_option(face_flame, tmp_path, capsys):
    path, _, _ = face_flame
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"samples_per_emotion": 24, "ned_epochs": 1, "text_pool_size": 64,
                                  "vertex_subset": 64, "progress": False}))
    out = tmp_path / "flame_i2fet.pt"
    assert main(["train", "--head", str(path), "--config", str(config), "--epochs", "1", "--out", str(out)]) == 0
    anim = animate(None, "from neutral to surprise", head=str(path), model=str(out), fps=4, duration=0.5, seed=0)
    assert anim.params.expression.shape[1] == 100 and anim.head.kind == "flame"
    with pytest.raises(InputError, match="no action-unit trajectory"):
        anim.au  # a FLAME-space model makes FLAME coefficients directly, no AU codes
    from flame_transit.transit.checkpoint import load_checkpoint

    tm = load_checkpoint(out)
    assert tm.head_name == anim.head.name and tm.meta["expression_gain"] > 1.0
    assert "au_basis" in tm.meta["training_data"]["source"] or tm.meta["expression_gain"] == 2.0
    assert torch.isfinite(anim.params.expression).all()


def test_encoder_object_in_the_main_call(face_flame):
    """Any object with ``encode(image, face_index=...)`` (DecaEncoder's interface) encodes the
    photo; here a stand-in that returns DECA's layout (100 shape, 50 expression)."""
    from flame_transit.encode import encode
    from flame_transit.params import FaceParams

    path, _, _ = face_flame
    calls = []

    class StandIn:
        def encode(self, image, face_index=None):
            calls.append(face_index)
            fit = encode(image, head=anim_head)  # a real fit, re-labelled as a DECA-style code
            return FaceParams(shape=fit.shape[:100], expression=0.0 * fit.expression[:50], pose=fit.pose, cam=fit.cam,
                              head_name=fit.head_name, crop_to_image=fit.crop_to_image, image_size=fit.image_size,
                              vertices_2d=fit.vertices_2d, extras={"encoder": "stand-in"})

    from flame_transit.head import load_head

    anim_head = load_head(path)
    anim = animate(PHOTO, INSTRUCTION, head=anim_head, encoder=StandIn(), fps=4, duration=0.5, hold=0.0, size=96,
                   start="photo", face=0)
    assert calls == [0] and anim.subject.extras["encoder"] == "stand-in"
    assert anim.params.expression.shape[1] == 100 and float(anim.params.expression[0].abs().max()) == 0.0
    assert anim.trajectory.labels[0] == "photo"
    with pytest.raises(InputError, match="encode"):
        animate(PHOTO, INSTRUCTION, head=anim_head, encoder=object())


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=12))
def test_fuzz_encoder_names(name):
    """A typed encoder name is one of the known ones or one clear error, before any work."""
    if name in ("mediapipe", "deca"):
        return
    with pytest.raises(InputError, match="encoder must be one of"):
        animate(None, "happy", encoder=name)
