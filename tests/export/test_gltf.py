import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from flame_transit import animate
from flame_transit.arkit import ARKIT_AVATAR_PATH, ARKIT_NAMES, AU_NAMES, arkit_shapes
from flame_transit.errors import InputError
from flame_transit.export import MAX_MORPH_TARGETS, export, save_glb
from flame_transit.export.common import compute_vertices
from flame_transit.params import FaceParams
from flame_transit.trajectory import Anchors, build_trajectory

ROOT = Path(__file__).resolve().parents[2]
_COMPONENTS = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}


def read_glb(path):
    """(json tree, binary chunk) of a GLB, checking its container layout."""
    raw = Path(path).read_bytes()
    magic, version, length = struct.unpack("<4sII", raw[:12])
    assert magic == b"glTF" and version == 2 and length == len(raw)
    json_len, json_type = struct.unpack("<I4s", raw[12:20])
    assert json_type == b"JSON" and json_len % 4 == 0
    tree = json.loads(raw[20:20 + json_len])
    bin_len, bin_type = struct.unpack("<I4s", raw[20 + json_len:28 + json_len])
    assert bin_type == b"BIN\x00"
    return tree, raw[28 + json_len:28 + json_len + bin_len]


def _view(tree, blob, view_index, dtype, n):
    view = tree["bufferViews"][view_index]
    assert view["byteOffset"] % 4 == 0 and view["byteOffset"] + n * 4 <= view["byteOffset"] + view["byteLength"] <= len(blob)
    return np.frombuffer(blob, dtype=dtype, count=n, offset=view["byteOffset"])


def accessor(tree, blob, index):
    acc = tree["accessors"][index]
    width = _COMPONENTS[acc["type"]]
    if "bufferView" not in acc:  # zeros, then the sparse entries
        data = np.zeros((acc["count"], width), np.float32)
        sp = acc.get("sparse")
        if sp:
            idx = _view(tree, blob, sp["indices"]["bufferView"], np.uint32, sp["count"])
            assert sp["indices"]["componentType"] == 5125 and (np.diff(idx.astype(np.int64)) > 0).all()
            data[idx] = _view(tree, blob, sp["values"]["bufferView"], np.float32, sp["count"] * width).reshape(-1, width)
        return data if width > 1 else data[:, 0]
    view = tree["bufferViews"][acc["bufferView"]]
    dtype = {5126: np.float32, 5125: np.uint32}[acc["componentType"]]
    start = view["byteOffset"] + acc.get("byteOffset", 0)
    n = acc["count"] * width
    assert start % 4 == 0 and start + n * 4 <= view["byteOffset"] + view["byteLength"] <= len(blob)
    data = np.frombuffer(blob, dtype=dtype, count=n, offset=start)
    return data.reshape(acc["count"], width) if width > 1 else data


def morphed(tree, blob):
    """(T, V, 3) meshes the file shows at its animation keys: base + weights @ targets."""
    prim = tree["meshes"][0]["primitives"][0]
    base = accessor(tree, blob, prim["attributes"]["POSITION"])
    deltas = np.stack([accessor(tree, blob, t["POSITION"]) for t in prim["targets"]])
    sampler = tree["animations"][0]["samplers"][0]
    w = accessor(tree, blob, sampler["output"]).reshape(-1, len(deltas))
    return base[None] + np.einsum("tn,nvc->tvc", w, deltas), w


@pytest.fixture(scope="module")
def surprise():
    """An open-head clip through the real pipeline: its jaw opens."""
    return animate(None, "from anger to surprise", fps=10, duration=0.6, hold=0.1, seed=0)


def test_open_head_clip_has_named_au_targets_and_one_weights_channel(tmp_path, surprise):
    anim = surprise
    path = anim.save(tmp_path / "clip.glb")
    tree, blob = read_glb(path)
    (gmesh,) = tree["meshes"]
    (prim,) = gmesh["primitives"]
    names = gmesh["extras"]["targetNames"]
    assert names == [n for n in AU_NAMES if n != "AU26"] + ["AU26"] and len(names) <= MAX_MORPH_TARGETS
    assert len(prim["targets"]) == len(names) and gmesh["weights"] == [0.0] * len(names)
    for target in prim["targets"]:
        assert set(target) == {"POSITION", "NORMAL"} and "min" in tree["accessors"][target["POSITION"]]
    (animation,) = tree["animations"]
    (channel,) = animation["channels"]
    assert channel["target"]["path"] == "weights" and tree["nodes"][channel["target"]["node"]]["mesh"] == 0
    sampler = animation["samplers"][channel["sampler"]]
    assert sampler["interpolation"] == "LINEAR"
    np.testing.assert_allclose(accessor(tree, blob, sampler["input"]), np.arange(anim.num_frames) / anim.fps, rtol=1e-6)
    shown, w = morphed(tree, blob)
    extras = tree["scenes"][0]["extras"]
    units = extras["target_units"]
    assert units[:-1] == [3.0] * 22 and units[-1] == pytest.approx(anim.au[:, -1].max())
    assert (w >= 0).all() and (w <= 1 + 1e-6).all()
    np.testing.assert_allclose(w, anim.au[:, [AU_NAMES.index(n) for n in names]] / units, atol=1e-6)
    # the file's mesh follows the head's own meshes; the jaw is a shape (a chord of its rotation)
    err = np.linalg.norm(shown - anim.vertices, axis=2)
    assert err.max() == pytest.approx(extras["max_vertex_error_m"], abs=1e-6) and err.max() < 0.004
    assert err.mean() < 0.0005
    assert w[-1, names.index("AU26")] == pytest.approx(1.0)  # the jaw opens to its widest at the end
    assert extras["fps"] == anim.fps and extras["frames"] == anim.num_frames and extras["targets"] == "au"
    assert extras["anchor_labels"] == anim.trajectory.labels and extras["instruction"] == "from anger to surprise"
    (mesh,) = trimesh.load(path, process=False, maintain_order=True).geometry.values()
    assert len(mesh.vertices) == anim.head.num_vertices and len(mesh.faces) == len(anim.mesh_faces)


def test_arkit_targets_carry_the_clips_curves(tmp_path, surprise):
    tree, blob = read_glb(surprise.save(tmp_path / "arkit.glb", targets="arkit"))
    assert tree["meshes"][0]["extras"]["targetNames"] == list(ARKIT_NAMES)
    shown, w = morphed(tree, blob)
    np.testing.assert_allclose(w, surprise.arkit, atol=1e-6)
    err = np.linalg.norm(shown - surprise.vertices, axis=2)  # the curves say the AUs approximately
    assert err.max() == pytest.approx(tree["scenes"][0]["extras"]["max_vertex_error_m"], abs=1e-6)
    assert err.max() < 0.006 and err.mean() < 0.0008


def test_clip_without_aus_gets_keyframe_targets(tmp_path, clip, small_head):
    traj, verts = clip
    path = export(tmp_path / "clip.glb", traj, head=small_head, include_normals=False, fps=24)
    tree, blob = read_glb(path)
    prim = tree["meshes"][0]["primitives"][0]
    assert tree["meshes"][0]["extras"]["targetNames"] == ["disgust", "neutral", "happiness"]
    assert "NORMAL" not in prim["attributes"] and set(prim["targets"][0]) == {"POSITION"}
    shown, w = morphed(tree, blob)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    kf = traj.anchor_frames
    np.testing.assert_allclose(shown[kf], verts[kf], atol=2e-6)  # keyframes exactly
    assert np.abs(shown - verts).max() < 0.01  # between them the jaw's rotation becomes a blend
    times = accessor(tree, blob, tree["animations"][0]["samplers"][0]["input"])
    assert times[-1] == pytest.approx((len(verts) - 1) / 24) and tree["scenes"][0]["extras"]["targets"] == "keyframes"


def test_flame_like_clip_with_aus_gets_au_targets(tmp_path, small_head):
    """A clip whose expression is a linear map of AU codes (as FLAME clips made through the AU
    space): the targets are the AUs, fitted from the clip, and reproduce it."""
    g = torch.Generator().manual_seed(1)
    e = small_head.num_expression
    basis = 0.5 * torch.randn(len(AU_NAMES), e, generator=g)  # AU26 moves FLAME's expression too
    au = torch.zeros(3, len(AU_NAMES))
    au[0, :5], au[1, 5:10], au[2, 10:16], au[2, -1] = 1.0, 2.0, 1.5, 0.5
    anchors = Anchors(expression=au @ basis, jaw_pose=torch.zeros(3, 3), labels=["a", "b", "c"],
                      au=au, au_names=AU_NAMES)
    subject = FaceParams(shape=torch.zeros(8), expression=torch.zeros(e), pose=torch.zeros(15))
    traj = build_trajectory(subject, anchors, fps=10, duration=0.4)
    tree, blob = read_glb(save_glb(tmp_path / "f.glb", params=traj, head=small_head))
    assert tree["meshes"][0]["extras"]["targetNames"][-1] == "AU26" and tree["scenes"][0]["extras"]["targets"] == "au"
    shown, _ = morphed(tree, blob)
    np.testing.assert_allclose(shown, compute_vertices(small_head, traj.params), atol=2e-6)


def _too_many_keyframes(small_head):
    e = small_head.num_expression
    anchors = Anchors(expression=torch.rand(MAX_MORPH_TARGETS + 1, e), jaw_pose=torch.zeros(MAX_MORPH_TARGETS + 1, 3))
    subject = FaceParams(shape=torch.zeros(8), expression=torch.zeros(e), pose=torch.zeros(15))
    return build_trajectory(subject, anchors, fps=5, duration=0.2)


@pytest.mark.parametrize(
    "path, kwargs, match",
    [
        ("clip.gltf", {}, r"\.glb"),
        ("clip.glb", dict(fps=-1), "fps"),
        ("clip.glb", dict(fps=241), "fps"),
        ("clip.glb", dict(metadata={"fps": 3}), "reserved"),
        ("clip.glb", dict(metadata={"x": {1, 2}}), "JSON"),
        ("clip.glb", dict(head=None), "head"),
        ("clip.glb", dict(targets="arkit-ish"), "targets"),
        ("clip.glb", dict(targets="au"), "no action-unit trajectory"),
        ("clip.glb", dict(targets="arkit"), "AU expression coordinates"),
        ("clip.glb", dict(params="many"), "at most 64"),
    ],
)
def test_bad_inputs_leave_nothing(tmp_path, clip, small_head, path, kwargs, match):
    traj, _ = clip
    args = dict(params=traj, head=small_head)
    args.update(kwargs)
    if args["params"] == "many":
        args["params"] = _too_many_keyframes(small_head)
    with pytest.raises(InputError, match=match):
        save_glb(tmp_path / path, **args)
    assert list(tmp_path.iterdir()) == []


# -- third-party checks: the Khronos validator and Blender, where installed -------------------------

def _validator_env():
    node = shutil.which("node")
    if node is None:
        return None
    env = dict(os.environ)
    paths = [str(ROOT / ".node" / "node_modules")] + [p for p in env.get("NODE_PATH", "").split(os.pathsep) if p]
    env["NODE_PATH"] = os.pathsep.join(paths)
    ok = subprocess.run([node, "-e", "require('gltf-validator')"], env=env, capture_output=True).returncode == 0
    return (node, env) if ok else None


def test_khronos_validator_reports_nothing(tmp_path, surprise, clip, small_head):
    found = _validator_env()
    if found is None:
        pytest.skip("node + npm gltf-validator not installed (tools/test.sh installs them into .node/)")
    node, env = found
    files = [surprise.save(tmp_path / "au.glb"), ARKIT_AVATAR_PATH, export(tmp_path / "kf.glb", clip[0], head=small_head)]
    res = subprocess.run([node, str(ROOT / "tools" / "validate_gltf.js"), *map(str, files)], env=env,
                         capture_output=True, text=True, timeout=120)
    reports = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(reports) == 3 and res.returncode == 0, res.stdout + res.stderr
    *ours, kf = reports
    for r in ours:
        assert (r["errors"], r["warnings"], r["infos"], r["hints"]) == (0, 0, 0, 0), r
    # the random test head has degenerate triangles (an info), nothing else
    assert (kf["errors"], kf["warnings"]) == (0, 0), kf
    assert {m["code"] for m in kf["messages"]} <= {"ACCESSOR_INDEX_TRIANGLE_DEGENERATE"}, kf


def _bpy_python():
    """A Python that imports bpy: this one, or $FLAME_TRANSIT_BPY_PYTHON (bpy needs Python 3.11)."""
    try:
        import bpy  # noqa: F401

        return sys.executable
    except ImportError:
        other = os.environ.get("FLAME_TRANSIT_BPY_PYTHON")
        return other if other and Path(other).exists() else None


def test_blender_imports_named_shape_keys_and_an_action_at_the_files_fps(tmp_path, surprise):
    python = _bpy_python()
    if python is None:
        pytest.skip("Blender as a module (pip install bpy) is not importable; set FLAME_TRANSIT_BPY_PYTHON")
    path = surprise.save(tmp_path / "au.glb")
    res = subprocess.run([python, str(ROOT / "tools" / "check_glb_in_blender.py"), str(path), str(ARKIT_AVATAR_PATH)],
                         capture_output=True, text=True, timeout=300)
    clip_report, avatar_report = [json.loads(x) for x in res.stdout.splitlines() if x.startswith('{"file"')]
    assert res.returncode == 0 and clip_report["ok"] and avatar_report["ok"], (clip_report, avatar_report)
    assert clip_report["shape_keys"] == 23 and clip_report["fcurves"] == 23 and clip_report["fps_scene"] == surprise.fps
    assert clip_report["last_key"] - clip_report["first_key"] == surprise.num_frames - 1
    assert avatar_report["shape_keys"] == 52


def test_bundled_arkit_avatar_is_what_the_tool_builds():
    from flame_transit.head import load_head

    tree, blob = read_glb(ARKIT_AVATAR_PATH)
    (gmesh,) = tree["meshes"]
    assert gmesh["extras"]["targetNames"] == list(ARKIT_NAMES) and "animations" not in tree
    prim = gmesh["primitives"][0]
    head = load_head()
    base, deltas = arkit_shapes(head)
    np.testing.assert_allclose(accessor(tree, blob, prim["attributes"]["POSITION"]), base, atol=1e-6)
    got = np.stack([accessor(tree, blob, t["POSITION"]) for t in prim["targets"]])
    np.testing.assert_allclose(got, deltas, atol=2e-7)  # sparse: moves under 0.1 um are left out
    assert ARKIT_AVATAR_PATH.stat().st_size < 200_000
