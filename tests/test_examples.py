"""The scripts in examples/ run (fast settings) and write what they say they write.

Python examples run in-process through their ``main(argv)`` (one ``--help`` each as a real
subprocess); ``examples/cli.sh`` runs as a real bash process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FAST = ["--fps", "6", "--duration", "0.4"]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", ["python_api.py", "flame_user.py", "export_to_blender.py", "drive_arkit_avatar.py", "cli.sh"])
def test_help(script):
    cmd = ["bash", str(EXAMPLES / script), "--help"] if script.endswith(".sh") else [sys.executable, str(EXAMPLES / script), "--help"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert ("usage:" in res.stdout) if script.endswith(".py") else ("FPS" in res.stdout and "DURATION" in res.stdout)


def test_readme_lists_every_example():
    text = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    scripts = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".py", ".sh"))
    assert scripts and all(name in text for name in scripts), scripts


def test_python_api(tmp_path, capsys):
    out = tmp_path / "api"
    assert _load("python_api").main(FAST + ["--size", "128", "--samples", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "disgust -> happiness" in text and "AU9" in text and "AU12" in text and "temperature 0" in text
    assert "same seed again -> same anchors: True" in text
    for name in ("clip.mp4", "sheet.png", "keyframes.png", "params.npz", "trajectory.png"):
        assert (out / name).stat().st_size > 1000, name
    from PIL import Image

    sheet = np.asarray(Image.open(out / "sheet.png").convert("L"), dtype=np.float32)
    assert sheet.std() > 20  # frames, not a blank page
    with np.load(out / "params.npz") as npz:
        assert npz["expression"].shape[1] == 22 and list(npz["anchor_labels"]) == ["disgust", "happiness"]


def test_cli_sh(tmp_path):
    env = dict(os.environ, FPS="5", DURATION="0.3", SIZE="64", OUT=str(tmp_path / "cli"), PYTHON=sys.executable,
               FT=f"{sys.executable} -m flame_transit")
    res = subprocess.run(["bash", str(EXAMPLES / "cli.sh")], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = tmp_path / "cli"
    for name in ("clip.mp4", "sheet.png", "trajectory.png", "anim.npz", "anim.glb", "anim_obj/frame_0000.obj",
                 "anim_obj/sequence.json", "batch/sad_to_happy.gif", "batch/bundled_head.mp4"):
        assert (out / name).is_file(), name
    assert "keyframes ['anger', 'surprise']" in res.stdout and "vertices   (" in res.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """examples/flame_user.py --demo, run once: (output folder, stdout)."""
    out = tmp_path_factory.mktemp("flame_user")
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        code = _load("flame_user").main(["--demo", "--out", str(out), "--fps", "5", "--duration", "0.3"])
    assert code == 0
    return out, buf.getvalue()


def test_flame_user_demo(demo):
    out, text = demo
    assert "RANDOM values" in text and "5023 vertices" in text and "same mesh as FLAME's 15-pose: True" in text
    assert "AU -> FLAME map" in text and "happiness prototype" in text
    with np.load(out / "flame_anim.npz") as npz:
        assert npz["expression"].shape[1] == 100 and npz["vertices"].shape[1:] == (5023, 3)
        assert list(npz["anchor_labels"]) == ["neutral", "disgust", "happiness"]
        assert np.abs(npz["expression"][-1]).max() > 0  # the prototype became FLAME coefficients
    assert (out / "flame_anim.glb").stat().st_size > 10_000 and (out / "flame_obj" / "sequence.json").is_file()
    # the FLAME clip kept its AU codes: ARKit curves, and one .glb shape per AU
    from flame_transit.arkit import ARKIT_NAMES, AU_NAMES
    from flame_transit.export import load_arkit_curves

    curves = load_arkit_curves(out / "flame_curves.csv")
    assert curves.weights[-1, ARKIT_NAMES.index("mouthSmileLeft")] > 0.3 and curves.weights[0].max() == 0
    glb = (out / "flame_anim.glb").read_bytes()
    tree = json.loads(glb[20:20 + int.from_bytes(glb[12:16], "little")])
    assert tree["meshes"][0]["extras"]["targetNames"] == list(AU_NAMES)
    from flame_transit.data.flame_space import FlameAUBasis

    assert FlameAUBasis.load(out / "au_basis.npz").expression_matrix.shape == (100, 22)


def test_flame_user_without_model_and_bad_input(capsys, tmp_path, demo):
    mod = _load("flame_user")
    assert mod.main([]) == 0
    assert "flame.is.tue.mpg.de" in capsys.readouterr().out
    assert mod.main(["--demo", "--emotions", "happy,bogus", "--out", str(tmp_path)]) == 2
    assert "bogus" in capsys.readouterr().err
    model = demo[0] / "demo_random_model" / "random_flame_model.pkl"
    # a random blob has no face to find MediaPipe's landmarks on: one error naming the way out
    assert mod.main(["--flame", str(model), "--instruction", "from sad to happy", "--out", str(tmp_path)]) == 2
    assert "landmark_embedding=" in capsys.readouterr().err
    assert mod.main(["--flame", str(model), "--deca", str(tmp_path / "missing.tar"), "--out", str(tmp_path)]) == 2
    assert "missing.tar" in capsys.readouterr().err


def test_flame_user_with_deca_identity_and_instruction(monkeypatch, tmp_path, capsys, demo):
    """The DECA branch with a stand-in encoder (no torchvision/checkpoint here): DECA's 100 shape
    / 50 expression / pose identity drives the FLAME animation; the instruction goes through the
    bundled model and the AU map."""
    import flame_transit.encode as encode_pkg
    from flame_transit.params import FaceParams

    pose = torch.zeros(15)
    pose[:3] = torch.tensor([0.1, -0.05, 0.0])

    class FakeDeca:
        def __init__(self, path, head=None):
            self.head = head

        def __call__(self, image):
            return FaceParams(shape=torch.linspace(-1, 1, 100), expression=torch.full((50,), 0.1), pose=pose,
                              cam=torch.tensor([9.0, 0.0, 0.0]), head_name=self.head.name)

    monkeypatch.setattr(encode_pkg, "DecaEncoder", FakeDeca)
    model_dir = demo[0] / "demo_random_model"
    argv = ["--flame", str(model_dir / "random_flame_model.pkl"), "--landmark-embedding",
            str(model_dir / "random_mediapipe_embedding.npz"), "--deca", "deca_model.tar",
            "--instruction", "from slightly sad to very happy", "--out", str(tmp_path), "--fps", "5", "--duration", "0.3"]
    assert _load("flame_user").main(argv) == 0
    assert "DECA on" in capsys.readouterr().out
    with np.load(tmp_path / "flame_anim.npz") as npz:
        assert npz["shape"].shape[-1] == 100 and np.allclose(npz["shape"][0], np.linspace(-1, 1, 100), atol=1e-6)
        assert np.allclose(npz["global_orient"], pose[:3].numpy())  # DECA's head pose is kept
        assert list(npz["anchor_labels"]) == ["neutral", "sadness", "happiness"]


def test_export_to_blender(tmp_path, capsys):
    out = tmp_path / "blender"
    assert _load("export_to_blender").main(FAST + ["--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "File > Import > glTF 2.0" in text and "blender --python" in text
    assert (out / "anim.glb").stat().st_size > 10_000
    manifest = json.loads((out / "obj_sequence" / "sequence.json").read_text())
    assert manifest["fps"] == 6 and manifest["anchor_labels"] == ["anger", "surprise"]
    snippet = (out / "blender_import_glb.py").read_text()
    compile(snippet, "blender_import_glb.py", "exec")  # valid Python
    # run it against a stand-in for bpy: the frame rate and range must come from the .glb itself
    import sys
    import types

    imported = []
    scene = types.SimpleNamespace(render=types.SimpleNamespace(fps=24, fps_base=1.0), frame_set=lambda f: None)
    bpy = types.SimpleNamespace(context=types.SimpleNamespace(scene=scene), ops=types.SimpleNamespace(
        import_scene=types.SimpleNamespace(gltf=lambda filepath: imported.append(filepath))))
    sys.modules["bpy"] = bpy
    try:
        exec(compile(snippet, "blender_import_glb.py", "exec"), {})
    finally:
        del sys.modules["bpy"]
    assert (scene.render.fps, scene.render.fps_base) == (6, 1.0)  # FAST renders at 6 fps
    assert scene.frame_start == 0 and scene.frame_end >= 1 and len(imported) == 1

    # the Blender importer's file reading (plain Python; the bpy part needs Blender)
    blender = _load("blender_import_obj_sequence")
    seq = blender.read_obj_sequence(out / "obj_sequence")
    frames = np.asarray(seq["frames"])
    assert frames.shape == (manifest["frames"], manifest["vertices"], 3) and len(seq["faces"]) == manifest["faces"]
    assert seq["fps"] == 6 and seq["names"][0] == "frame_0000_anger" and seq["names"][-1].startswith("frame_")
    assert np.abs(frames[-1] - frames[0]).max() > 1e-4  # the face moves
    # (x, y, z) -> (x, -z, y): a proper rotation taking +Y up to Blender's +Z up
    R = np.array([blender.to_blender(e) for e in np.eye(3)]).T
    assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0) and np.allclose(R @ [0, 1, 0], [0, 0, 1])


def test_blender_import_obj_sequence_in_blender(tmp_path):
    bpy = pytest.importorskip("bpy")  # Blender as a Python module, where installed
    from flame_transit.export import save_obj_sequence

    rng = np.random.default_rng(0)
    verts = rng.normal(size=(4, 10, 3)).astype(np.float32)
    save_obj_sequence(tmp_path / "seq", verts, np.array([[0, 1, 2], [2, 3, 4]]), fps=12,
                      anchor_frames=[0, 3], anchor_labels=["a", "b"])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender = _load("blender_import_obj_sequence")
    obj = blender.import_obj_sequence(str(tmp_path / "seq"))
    scene = bpy.context.scene
    assert scene.render.fps == 12 and (scene.frame_start, scene.frame_end) == (1, 4)
    for i in range(4):
        scene.frame_set(1 + i)
        ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mesh = ev.to_mesh()
        co = np.array([v.co[:] for v in mesh.vertices])
        ev.to_mesh_clear()
        want = np.array([blender.to_blender(v) for v in verts[i]])
        assert np.abs(co - want).max() < 1e-5


def test_drive_arkit_avatar_reads_our_csv(tmp_path):
    from flame_transit import animate
    from flame_transit.arkit import ARKIT_NAMES

    anim = animate(None, "from neutral to surprise", fps=24, duration=1.2, hold=0.0)
    csv_path = anim.save(tmp_path / "curves.csv")
    names, rows, fps = _load("drive_arkit_avatar").read_curves(csv_path)
    assert fps == 24.0 and len(rows) == anim.num_frames and len(names) == 52
    order = [[n.lower() for n in ARKIT_NAMES].index(n.lower()) for n in names]
    np.testing.assert_allclose(np.asarray(rows), anim.arkit[:, order], atol=1e-6)


def test_drive_arkit_avatar_in_blender(tmp_path):
    """Blender (bpy, Python 3.11): here, or the Python in $FLAME_TRANSIT_BPY_PYTHON."""
    try:
        import bpy  # noqa: F401

        python = sys.executable
    except ImportError:
        python = os.environ.get("FLAME_TRANSIT_BPY_PYTHON")
        if not python or not Path(python).exists():
            pytest.skip("Blender as a module (pip install bpy) is not importable; set FLAME_TRANSIT_BPY_PYTHON")
    from flame_transit import animate

    anim = animate(None, "from anger to happiness", fps=12, duration=1.0, hold=0.0)  # > 1 s: fps from timecodes
    csv_path = anim.save(tmp_path / "curves.csv")
    res = subprocess.run([python, str(EXAMPLES / "drive_arkit_avatar.py"), "--curves", str(csv_path),
                          "--blend", str(tmp_path / "avatar.blend")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"keyed 52 shape keys of 'open_head_arkit' over {anim.num_frames} frames at 12 fps" in res.stdout
    assert (tmp_path / "avatar.blend").stat().st_size > 10_000
