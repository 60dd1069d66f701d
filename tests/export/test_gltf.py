import json
import struct

import numpy as np
import pytest
import trimesh

from flame_transit.errors import InputError
from flame_transit.export import MAX_GLB_FRAMES, export, save_glb

_COMPONENTS = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}


def read_glb(path):
    """(json tree, binary chunk) of a GLB, checking its container layout."""
    raw = path.read_bytes()
    magic, version, length = struct.unpack("<4sII", raw[:12])
    assert magic == b"glTF" and version == 2 and length == len(raw)
    json_len, json_type = struct.unpack("<I4s", raw[12:20])
    assert json_type == b"JSON" and json_len % 4 == 0
    tree = json.loads(raw[20:20 + json_len])
    bin_len, bin_type = struct.unpack("<I4s", raw[20 + json_len:28 + json_len])
    assert bin_type == b"BIN\x00"
    return tree, raw[28 + json_len:28 + json_len + bin_len]


def accessor(tree, blob, index):
    acc = tree["accessors"][index]
    view = tree["bufferViews"][acc["bufferView"]]
    assert acc["componentType"] == 5126 or acc["type"] == "SCALAR"
    dtype = {5126: np.float32, 5125: np.uint32}[acc["componentType"]]
    width = _COMPONENTS[acc["type"]]
    start = view["byteOffset"] + acc.get("byteOffset", 0)
    n = acc["count"] * width
    assert start % 4 == 0 and start + n * 4 <= view["byteOffset"] + view["byteLength"] <= len(blob)
    data = np.frombuffer(blob, dtype=dtype, count=n, offset=start)
    return data.reshape(acc["count"], width) if width > 1 else data


def test_glb_loads_in_trimesh_with_right_counts(tmp_path, clip, small_head):
    traj, verts = clip
    path = save_glb(tmp_path / "clip.glb", verts, small_head.faces, params=traj)
    scene = trimesh.load(path, process=False, maintain_order=True)
    (mesh,) = scene.geometry.values()
    assert len(mesh.faces) == len(small_head.faces)
    assert len(mesh.vertices) == small_head.num_vertices
    np.testing.assert_allclose(mesh.vertices, verts[0], atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.glb"]


def test_morph_targets_and_animation_reproduce_every_frame(tmp_path, clip, small_head):
    traj, verts = clip
    t, v = verts.shape[:2]
    path = save_glb(tmp_path / "clip.glb", verts, small_head.faces, params=traj)
    tree, blob = read_glb(path)

    (gmesh,) = tree["meshes"]
    (prim,) = gmesh["primitives"]
    assert len(prim["targets"]) == t and gmesh["weights"] == [0.0] * t
    names = gmesh["extras"]["targetNames"]
    assert len(names) == t and names[0] == "frame_0000_disgust" and names[-1].endswith("_happiness")
    base = accessor(tree, blob, prim["attributes"]["POSITION"])
    assert base.shape == (v, 3)
    for i in range(t):
        target = prim["targets"][i]
        acc = tree["accessors"][target["POSITION"]]
        assert "min" in acc and "max" in acc  # required for morph-target positions
        delta = accessor(tree, blob, target["POSITION"])
        np.testing.assert_allclose(base + delta, verts[i], atol=2e-6)
        assert set(target) == {"POSITION", "NORMAL"}
    normal0 = accessor(tree, blob, prim["attributes"]["NORMAL"])
    np.testing.assert_allclose(np.linalg.norm(normal0, axis=1), 1, atol=1e-5)  # glTF needs unit normals
    for i in (1, t - 1):  # base + delta is frame i's (unit) normal
        n_i = normal0 + accessor(tree, blob, prim["targets"][i]["NORMAL"])
        np.testing.assert_allclose(np.linalg.norm(n_i, axis=1), 1, atol=1e-5)
    views = tree["bufferViews"]
    assert views[tree["accessors"][prim["attributes"]["POSITION"]]["bufferView"]]["target"] == 34962
    assert views[tree["accessors"][prim["indices"]]["bufferView"]]["target"] == 34963

    (anim,) = tree["animations"]
    (channel,) = anim["channels"]
    assert channel["target"]["path"] == "weights"
    assert tree["nodes"][channel["target"]["node"]]["mesh"] == 0
    sampler = anim["samplers"][channel["sampler"]]
    assert sampler["interpolation"] == "LINEAR"
    times = accessor(tree, blob, sampler["input"])
    np.testing.assert_allclose(times, np.arange(t) / traj.fps, rtol=1e-6)
    assert tree["accessors"][sampler["input"]]["min"] == [0.0]
    assert "target" not in tree["bufferViews"][tree["accessors"][sampler["output"]]["bufferView"]]
    weights = accessor(tree, blob, sampler["output"]).reshape(t, t)
    np.testing.assert_array_equal(weights, np.eye(t))  # keyframe i shows exactly frame i

    extras = tree["scenes"][0]["extras"]
    assert extras["fps"] == traj.fps and extras["frames"] == t
    assert extras["anchor_frames"] == traj.anchor_frames and extras["anchor_labels"] == traj.labels


def test_without_normals_and_via_head_and_export(tmp_path, clip, small_head):
    traj, verts = clip
    path = export(tmp_path / "clip.glb", traj, head=small_head, include_normals=False, fps=24)
    tree, blob = read_glb(path)
    prim = tree["meshes"][0]["primitives"][0]
    assert "NORMAL" not in prim["attributes"] and set(prim["targets"][0]) == {"POSITION"}
    times = accessor(tree, blob, tree["animations"][0]["samplers"][0]["input"])
    assert times[-1] == pytest.approx((len(verts) - 1) / 24)
    last = accessor(tree, blob, prim["attributes"]["POSITION"]) + accessor(tree, blob, prim["targets"][-1]["POSITION"])
    np.testing.assert_allclose(last, verts[-1], atol=2e-6)


def test_single_frame(tmp_path, small_head):
    verts = small_head().vertices.detach().numpy()  # one (V, 3) mesh
    tree, _ = read_glb(save_glb(tmp_path / "one.glb", verts, small_head.faces))
    assert len(tree["meshes"][0]["primitives"][0]["targets"]) == 1


@pytest.mark.parametrize(
    "path, kwargs, match",
    [
        ("clip.gltf", {}, r"\.glb"),
        ("clip.glb", dict(vertices=np.zeros((MAX_GLB_FRAMES + 1, 3, 3)), faces=[[0, 1, 2]]), "every n-th frame"),
        ("clip.glb", dict(fps=-1), "fps"),
        ("clip.glb", dict(metadata={"fps": 3}), "reserved"),
        ("clip.glb", dict(metadata={"x": {1, 2}}), "JSON"),
        ("clip.glb", dict(faces=None), "faces"),
    ],
)
def test_bad_inputs_leave_nothing(tmp_path, clip, small_head, path, kwargs, match):
    traj, verts = clip
    args = dict(vertices=verts, faces=small_head.faces)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        save_glb(tmp_path / path, **args)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not __import__("flame_transit.head", fromlist=["OPEN_HEAD_PATH"]).OPEN_HEAD_PATH.exists(),
                    reason="bundled open head not built")
def test_bundled_open_head_clip(tmp_path):
    import torch

    from flame_transit.export import load_npz, save_npz
    from flame_transit.head import load_head
    from flame_transit.params import FaceParams
    from flame_transit.trajectory import Anchors, build_trajectory

    head = load_head()
    e = head.num_expression
    subject = FaceParams(shape=torch.zeros(head.num_shape), expression=torch.zeros(e), pose=torch.zeros(15),
                         head_name=head.name)
    expr = torch.zeros(2, e)
    expr[0, 0], expr[1, e - 1] = 1.0, 1.0
    anchors = Anchors(expression=expr, jaw_pose=[[0.0, 0, 0], [0.2, 0, 0]], labels=["a", "b"], head_name=head.name)
    traj = build_trajectory(subject, anchors, fps=10, duration=0.5, timing="ease")
    glb = save_glb(tmp_path / "open.glb", params=traj, head=head)
    (mesh,) = trimesh.load(glb, process=False, maintain_order=True).geometry.values()
    assert len(mesh.vertices) == head.num_vertices and len(mesh.faces) == len(head.faces)
    tree, _ = read_glb(glb)
    assert len(tree["meshes"][0]["primitives"][0]["targets"]) == traj.num_frames
    anim = load_npz(save_npz(tmp_path / "open.npz", traj, head=head))
    assert anim.expression_names == head.expression_names and anim.head_name == head.name
    assert anim.vertices.shape == (traj.num_frames, head.num_vertices, 3)
