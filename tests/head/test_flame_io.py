import json
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from flame_transit.errors import AssetError
from flame_transit.head import load_head, read_flame_arrays
from tests.helpers import make_flame_arrays, write_flame_npz, write_flame_pickle


def test_pickle_loads_without_chumpy_in_fresh_process(flame_pkl):
    code = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        assert importlib.util.find_spec("chumpy") is None, "chumpy must not be installed"
        from flame_transit.head import load_head
        head = load_head({str(flame_pkl)!r})
        print(json.dumps([head.num_vertices, len(head.faces), head.num_shape,
                          head.num_expression, "chumpy" in sys.modules]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [5023, 9976, 300, 100, False]


def test_pickle_arrays_match_source(flame_pkl, flame_arrays):
    data = read_flame_arrays(flame_pkl)
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        np.testing.assert_array_equal(np.asarray(data[key]), flame_arrays[key])


def test_npz_and_pickle_give_same_model(tmp_path, flame_pkl, flame_arrays):
    npz = write_flame_npz(tmp_path / "flame.npz", flame_arrays)
    a, b = load_head(flame_pkl), load_head(npz)
    assert a.name == b.name  # id depends on the arrays, not the container
    torch.testing.assert_close(a.v_template, b.v_template)
    assert a.kind == "flame" and a.name.startswith("flame-")


def test_forward_equals_smplx_lbs(flame_pkl, flame_arrays):
    from smplx.lbs import lbs

    head = load_head(flame_pkl, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    b = 7
    shape = torch.randn(b, 300, generator=g, dtype=torch.float64)
    expr = torch.randn(b, 100, generator=g, dtype=torch.float64)
    pose = 0.3 * torch.randn(b, 15, generator=g, dtype=torch.float64)
    ours = head(shape=shape, expression=expr, pose=pose)

    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))
    posedirs = t(flame_arrays["posedirs"]).reshape(-1, 36).T
    parents = torch.tensor([-1, 0, 1, 1, 1])
    verts, joints = lbs(torch.cat([shape, expr], 1), pose, t(flame_arrays["v_template"]),
                        t(flame_arrays["shapedirs"]), posedirs, t(flame_arrays["J_regressor"]),
                        parents, t(flame_arrays["weights"]))
    assert (ours.vertices - verts).abs().max() <= 1e-5
    assert (ours.joints - joints).abs().max() <= 1e-5


def test_float32_matches_smplx_within_tolerance(flame_pkl, flame_arrays):
    from smplx.lbs import lbs

    head = load_head(flame_pkl)
    g = torch.Generator().manual_seed(1)
    shape, expr = torch.randn(3, 300, generator=g), torch.randn(3, 100, generator=g)
    pose = 0.2 * torch.randn(3, 15, generator=g)
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)
    verts, _ = lbs(torch.cat([shape, expr], 1), pose, t(flame_arrays["v_template"]),
                   t(flame_arrays["shapedirs"]), t(flame_arrays["posedirs"]).reshape(-1, 36).T,
                   t(flame_arrays["J_regressor"]), torch.tensor([-1, 0, 1, 1, 1]), t(flame_arrays["weights"]))
    assert (head(shape=shape, expression=expr, pose=pose).vertices - verts).abs().max() <= 1e-5


def test_deca_pose6_equals_pose15(flame_pkl):
    head = load_head(flame_pkl)
    g = torch.Generator().manual_seed(2)
    pose6 = 0.3 * torch.randn(4, 6, generator=g)
    pose15 = torch.zeros(4, 15)
    pose15[:, 0:3], pose15[:, 6:9] = pose6[:, :3], pose6[:, 3:]
    expr = torch.randn(4, 50, generator=g)  # DECA's 50 expression coefficients, zero-padded
    a = head(expression=expr, pose=pose6).vertices
    b = head(expression=expr, pose=pose15).vertices
    torch.testing.assert_close(a, b)


def test_shared_shape_equals_repeated_shape(flame_pkl):
    head = load_head(flame_pkl)
    g = torch.Generator().manual_seed(3)
    shape, expr = torch.randn(300, generator=g), torch.randn(5, 100, generator=g)
    a = head(shape=shape, expression=expr).vertices
    b = head(shape=shape.expand(5, 300), expression=expr).vertices
    torch.testing.assert_close(a, b)


def test_any_batch_shape_and_translation(flame_pkl):
    head = load_head(flame_pkl)
    out = head(expression=torch.zeros(2, 3, 100), pose=torch.zeros(2, 3, 15), translation=[0.0, 0.0, 1.0])
    assert out.vertices.shape == (2, 3, 5023, 3) and out.joints.shape == (2, 3, 5, 3)
    rest = head().vertices
    torch.testing.assert_close(out.vertices[1, 2, :, 2], rest[:, 2] + 1.0)


def test_landmark_embedding(tmp_path, flame_pkl):
    emb = tmp_path / "emb.npz"
    rng = np.random.default_rng(0)
    bary = rng.random((51, 3))
    bary /= bary.sum(1, keepdims=True)
    np.savez(emb, lmk_face_idx=rng.integers(0, 9976, 51), lmk_b_coords=bary)
    head = load_head(flame_pkl, landmark_embedding=emb)
    out = head(expression=torch.zeros(2, 100))
    assert out.landmarks.shape == (2, 51, 3)


@pytest.mark.parametrize(
    "writer, message",
    [
        (lambda p: p.write_bytes(b""), "not a FLAME model pickle"),
        (lambda p: p.write_bytes(b"\x80\x02garbage"), "not a FLAME model pickle"),
        (lambda p: p.write_bytes(pickle.dumps([1, 2, 3])), "expected a dict"),
        (lambda p: p.write_bytes(pickle.dumps({"v_template": np.zeros((3, 3))})), "missing FLAME arrays"),
        (lambda p: p.write_bytes(b"PK\x03\x04broken zip"), "not a readable .npz"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, writer, message):
    path = tmp_path / "model.pkl"
    writer(path)
    with pytest.raises(AssetError, match=message):
        load_head(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AssetError, match="not found"):
        load_head(tmp_path / "nope.pkl")
    with pytest.raises(AssetError, match="directory"):
        load_head(tmp_path)


def test_malicious_pickle_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": Evil()}))
    with pytest.raises(AssetError, match="refusing to load"):
        load_head(path)


def test_wrong_shapes_are_named(tmp_path, flame_arrays):
    bad = dict(flame_arrays)
    bad["weights"] = bad["weights"][:, :4]
    path = write_flame_npz(tmp_path / "bad.npz", bad)
    with pytest.raises(AssetError, match="weights|lbs_weights"):
        load_head(path)


@pytest.mark.parametrize("damage, message", [
    (lambda a: a.update(f=a["f"][:, :2]), r"f must be \(F, 3\) triangles"),  # was a numpy ValueError
    (lambda a: a.update(f=a["f"] + 10**6), r"f must be .* indices 0\.\."),  # was an IndexError
    (lambda a: a.update(v_template=a["v_template"] * np.nan), "v_template contains NaN"),  # loaded
])
def test_damaged_arrays_are_named(tmp_path, flame_arrays, damage, message):
    bad = dict(flame_arrays)
    damage(bad)
    path = write_flame_npz(tmp_path / "bad.npz", bad)
    with pytest.raises(AssetError, match=message):
        load_head(path)


def test_forward_input_errors(flame_pkl):
    from flame_transit.errors import InputError

    head = load_head(flame_pkl)
    with pytest.raises(InputError, match="pose"):
        head(pose=torch.zeros(2, 7))
    with pytest.raises(InputError, match="expression has 101"):
        head(expression=torch.zeros(101))
    with pytest.raises(InputError, match="NaN"):
        head(expression=torch.full((1, 100), float("nan")))
    with pytest.raises(InputError, match="incompatible batch"):
        head(expression=torch.zeros(2, 100), pose=torch.zeros(3, 15))
