"""The landmark fit on synthetic data with known answers (open head and a FLAME-format head
with a MediaPipe landmark embedding), and its numpy forward against the head's LBS."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flame_transit.encode import FitOptions, fit_landmarks
from flame_transit.encode.fit import head_fit_data
from flame_transit.errors import InputError
from flame_transit.params import crop_to_image_matrix

CROP = crop_to_image_matrix((256.0, 256.0), 400.0)


def _render_landmarks(head, shape, expr, pose, px_per_m=2000.0, z0=37.0, mp_index=None):
    """Landmarks in MediaPipe's pixel convention for a head posed with known parameters."""
    with torch.no_grad():
        out = head(shape=torch.as_tensor(shape, dtype=torch.float32), expression=torch.as_tensor(expr, dtype=torch.float32)[None],
                   pose=torch.as_tensor(pose, dtype=torch.float32)[None])
    X = out.landmarks[0].double().numpy()
    pts = np.zeros((478, 3))
    idx = np.arange(len(X)) if mp_index is None else mp_index
    pts[idx] = np.stack([256 + px_per_m * X[:, 0], 256 - px_per_m * X[:, 1], z0 - px_per_m * X[:, 2]], 1)
    return pts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_open_head_round_trip(open_head, seed):
    names = open_head.expression_names
    rng = np.random.default_rng(seed)
    beta = rng.normal(scale=0.6, size=open_head.num_shape)
    expr = np.zeros(open_head.num_expression)
    for n in rng.choice(["AU1", "AU4", "AU6", "AU9", "AU12", "AU15", "AU20", "AU25", "AU12L", "AU14R"], 3, replace=False):
        expr[names.index(n)] = rng.uniform(0.4, 1.2)
    pose = np.zeros(15)
    pose[0:3] = rng.normal(scale=0.15, size=3)
    pose[6] = rng.uniform(0.0, 0.2)
    pts = _render_landmarks(open_head, beta, expr, pose)
    r = fit_landmarks(pts, open_head, CROP)
    assert r.rms_model < 0.002  # only the priors keep it from zero
    assert r.rms_final < 1e-4
    np.testing.assert_allclose(r.pose[0:3], pose[0:3], atol=0.015)
    assert abs(r.pose[6] - pose[6]) < 0.03
    np.testing.assert_allclose(r.expression, expr, atol=0.2)
    active = expr > 0
    assert np.all(r.expression[active] > 0.2)
    assert np.abs(r.shape - beta).max() < 0.5
    # the camera reproduces the synthetic projection: s = 2000 px/m / 200 px per NDC unit
    assert r.cam[0] == pytest.approx(10.0, rel=0.02)


def test_fit_is_deterministic_and_bounded(open_head):
    pts = _render_landmarks(open_head, np.zeros(16), np.full(22, 0.0), np.zeros(15))
    pts[13, 1] += 60  # a wild outlier on the lip pulls AUs towards their bounds
    a = fit_landmarks(pts, open_head, CROP)
    b = fit_landmarks(pts.copy(), open_head, CROP)
    np.testing.assert_array_equal(a.expression, b.expression)
    np.testing.assert_array_equal(a.pose, b.pose)
    assert a.expression.min() >= 0.0 and a.expression.max() <= 1.5 + 1e-9
    assert np.abs(a.shape).max() <= 3.0 + 1e-9
    assert -0.05 - 1e-6 <= a.pose[6] <= 0.5 + 1e-6


def test_converged_rotations_reuse_the_linear_model(open_head, monkeypatch):
    """The model's forward is skipped once the jaw / eye rotations stop moving: fewer forwards,
    the same fit to well below a micrometre."""
    from flame_transit.encode import fit as fit_module
    from flame_transit.encode.fit_model import HeadFitData

    rng = np.random.default_rng(3)
    pose = np.zeros(15)
    pose[0:3] = rng.normal(scale=0.1, size=3)
    pose[6] = 0.15
    expr = np.zeros(open_head.num_expression)
    expr[open_head.expression_names.index("AU12")] = 0.8
    pts = _render_landmarks(open_head, rng.normal(scale=0.5, size=open_head.num_shape), expr, pose)
    calls = []
    forward = HeadFitData.linear_model
    monkeypatch.setattr(HeadFitData, "linear_model", lambda self, theta: calls.append(1) or forward(self, theta))
    reused = fit_landmarks(pts, open_head, CROP)
    n_reused = len(calls)
    calls.clear()
    monkeypatch.setattr(fit_module, "THETA_REUSE", -1.0)  # every call recomputes
    fresh = fit_landmarks(pts, open_head, CROP)
    assert n_reused < len(calls) == fresh.iterations + 1
    np.testing.assert_allclose(reused.vertices, fresh.vertices, atol=1e-7)  # metres
    np.testing.assert_allclose(reused.pose, fresh.pose, atol=1e-6)


def test_sparsity_prefers_bilateral_au(open_head):
    names = open_head.expression_names
    expr = np.zeros(22)
    expr[names.index("AU12L")] = 0.8
    expr[names.index("AU12R")] = 0.8  # == AU12 0.8 geometrically
    r = fit_landmarks(_render_landmarks(open_head, np.zeros(16), expr, np.zeros(15)), open_head, CROP)
    assert r.expression[names.index("AU12")] > 0.6
    assert r.expression[names.index("AU12L")] < 0.1 and r.expression[names.index("AU12R")] < 0.1


def test_fixed_shape_and_offsets(open_head):
    rng = np.random.default_rng(3)
    beta = rng.normal(scale=0.5, size=16)
    pts = _render_landmarks(open_head, beta, np.zeros(22), np.zeros(15))
    r = fit_landmarks(pts, open_head, CROP, shape=beta)
    np.testing.assert_allclose(r.shape, beta, atol=1e-9)
    off = np.zeros((open_head.num_vertices, 3))
    off[:, 2] = 0.001
    r2 = fit_landmarks(pts, open_head, CROP, shape=beta, offsets=off)
    np.testing.assert_array_equal(r2.offsets, off)
    no = fit_landmarks(pts, open_head, CROP, compute_offsets=False)
    assert no.offsets is None and no.rms_final == no.rms_model


def test_offsets_are_smooth_and_reproject(open_head, astro_params):
    off = astro_params.offsets.numpy()
    assert off.shape == (open_head.num_vertices, 3)
    width = 0.14
    assert np.abs(off).max() < 0.1 * width  # a residual, not a new face
    assert astro_params.fit_rms < 1e-3


def test_numpy_forward_matches_head(open_head):
    fd = head_fit_data(open_head)
    rng = np.random.default_rng(0)
    c = rng.normal(size=fd.K) * 0.5
    pose = rng.normal(size=15) * 0.2
    off = rng.normal(size=(fd.num_vertices, 3)) * 1e-3
    ours = fd.forward(c, pose, off)
    with torch.no_grad():
        ref = open_head(shape=torch.tensor(c[:fd.num_shape]), expression=torch.tensor(c[fd.num_shape:]),
                        pose=torch.tensor(pose)[None], offsets=torch.tensor(off)).vertices[0].double().numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-6)


# -- a FLAME-format head with a MediaPipe landmark embedding -------------------------------------
@pytest.fixture(scope="module")
def flame_mp_head(tmp_path_factory):
    from flame_transit.head import load_head
    from tests.helpers import make_flame_arrays, write_flame_npz

    d = tmp_path_factory.mktemp("flame_mp")
    arrays = make_flame_arrays(seed=5, num_vertices=1200, num_faces=2400)
    model = write_flame_npz(d / "flame.npz", arrays)
    rng = np.random.default_rng(0)
    idx = np.arange(0, 478, 3)  # a subset of MediaPipe's landmarks, as FLAME's embedding has
    bary = rng.random((len(idx), 3)) + 0.2
    bary /= bary.sum(axis=1, keepdims=True)
    np.savez(d / "mp_embedding.npz", lmk_face_idx=rng.integers(0, 2400, len(idx)), lmk_b_coords=bary,
             landmark_indices=idx)
    return load_head(model, landmark_embedding=d / "mp_embedding.npz"), idx


def _smplx_landmarks(head, beta, expr, pose, px_per_m, idx):
    """Reference render through smplx's own LBS (independent of flame_transit's forward)."""
    from smplx.lbs import lbs

    a = head.assets
    t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float64)  # noqa: E731
    dirs = np.concatenate([a.shapedirs, a.exprdirs], axis=2)
    verts, _ = lbs(t(np.concatenate([beta, expr]))[None], t(pose)[None], t(a.v_template), t(dirs),
                   t(a.posedirs.reshape(-1, 36).T), t(a.j_regressor), torch.as_tensor(a.parents), t(a.lbs_weights))
    v = verts[0].numpy()
    tri = np.asarray(a.faces)[a.landmark_faces]
    X = np.einsum("lk,lkc->lc", a.landmark_bary, v[tri])
    pts = np.zeros((478, 3))
    pts[idx] = np.stack([256 + px_per_m * X[:, 0], 256 - px_per_m * X[:, 1], 11.0 - px_per_m * X[:, 2]], 1)
    return pts


def test_flame_head_with_embedding_round_trip(flame_mp_head):
    head, idx = flame_mp_head
    rng = np.random.default_rng(1)
    beta = np.zeros(300)
    beta[:10] = rng.normal(scale=0.5, size=10)
    expr = np.zeros(100)
    expr[:8] = rng.normal(scale=0.5, size=8)
    pose = np.zeros(15)
    pose[0:3] = [0.05, -0.1, 0.02]
    pose[6] = 0.1
    pts = _smplx_landmarks(head, beta, expr, pose, 1000.0, idx)
    r = fit_landmarks(pts, head, CROP, options=FitOptions(max_shape=20, max_expression=10))
    assert r.shape.shape == (20,) and r.expression.shape == (10,)
    assert r.rms_model < 0.01
    # no per-vertex offsets on a barycentric embedding (under-determined on a denser mesh)
    assert r.offsets is None and r.rms_final == r.rms_model
    np.testing.assert_allclose(r.pose[0:3], pose[0:3], atol=0.03)
    assert r.vertices_2d.shape == (1200, 2)
    # FLAME expression coordinates are signed: bounds are symmetric
    assert (r.expression < 0).any() or (expr[:10] >= 0).all()


def test_flame_head_without_embedding_or_face_is_refused(flame_pkl):
    from flame_transit.errors import AssetError
    from flame_transit.head import load_head

    head = load_head(flame_pkl)  # random values: no face to find landmarks on automatically
    with pytest.raises(AssetError, match="landmark_embedding"):
        fit_landmarks(np.zeros((478, 3)), head, CROP)


@pytest.mark.parametrize("bad", [np.zeros((468, 3)), np.full((478, 3), np.nan), np.zeros((478, 2))])
def test_bad_landmark_arrays(open_head, bad):
    with pytest.raises(InputError, match="478, 3"):
        fit_landmarks(bad, open_head, CROP)


def test_numpy_forward_matches_smplx_on_flame(flame_mp_head):
    """Pose correctives and the 5-joint chain of a FLAME file, against smplx's lbs."""
    from smplx.lbs import lbs

    head, _ = flame_mp_head
    fd = head_fit_data(head, FitOptions(max_shape=20, max_expression=10))
    a = head.assets
    rng = np.random.default_rng(4)
    c = rng.normal(size=fd.K) * 0.5
    pose = rng.normal(size=15) * 0.3
    beta = np.zeros(a.num_shape + a.num_expression)
    beta[:20] = c[:20]
    beta[a.num_shape:a.num_shape + 10] = c[20:]
    t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float64)  # noqa: E731
    dirs = np.concatenate([a.shapedirs, a.exprdirs], axis=2)
    ref, _ = lbs(t(beta)[None], t(pose)[None], t(a.v_template), t(dirs), t(a.posedirs.reshape(-1, 36).T),
                 t(a.j_regressor), torch.as_tensor(a.parents), t(a.lbs_weights))
    np.testing.assert_allclose(fd.forward(c, pose), ref[0].numpy(), atol=1e-8)
