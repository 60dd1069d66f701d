"""AU -> FLAME expression fit through a MediaPipe landmark embedding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import qr
from scipy.spatial.transform import Rotation

from flame_transit.data import make_synthetic_dataset
from flame_transit.data.flame_space import FlameAUBasis, fit_au_basis, umeyama
from flame_transit.data.synthetic import AU_NAMES
from flame_transit.errors import AssetError, CheckpointMismatchError
from flame_transit.head import load_head

S_TRUE = 1.3
R_TRUE = Rotation.from_euler("xyz", [8.0, -12.0, 4.0], degrees=True).as_matrix()
T_TRUE = np.array([0.01, -0.02, 0.03])


def _open_landmark_data(open_head, mp_idx):
    """Neutral landmarks (L, 3) and AU displacements (A, L, 3) of the open head."""
    from flame_transit.head import Head

    head64 = Head(open_head.assets, dtype=torch.float64)
    with torch.no_grad():
        e = torch.cat([torch.zeros(1, open_head.num_expression), torch.eye(open_head.num_expression)])
        v = head64(expression=e.double()).vertices.numpy()
    lm = v[:, mp_idx]
    return lm[0], lm[1:] - lm[0]


def _write_flame(tmp_path, open_head, *, num_landmarks=80, num_expression=30, num_shape=10, seed=0):
    """A FLAME-format model whose expression basis contains a known AU map M_true.

    Landmark l sits on triangle l (vertices 3l..3l+2, disjoint) with random barycentric weights;
    all three vertices of triangle l carry landmark l's wanted displacement, so the embedded
    landmarks move exactly as wanted. Wanted: B @ M_true == s R D_open (D_open: open-head AU
    landmark displacements).
    """
    rng = np.random.default_rng(seed)
    L, E, S = num_landmarks, num_expression, num_shape
    mp_idx = np.sort(rng.choice(468, size=L, replace=False))
    neutral_open, d_open = _open_landmark_data(open_head, mp_idx)
    A = len(AU_NAMES)
    target_neutral = S_TRUE * neutral_open @ R_TRUE.T + T_TRUE
    T = (S_TRUE * np.einsum("ij,alj->ali", R_TRUE, d_open)).reshape(A, 3 * L).T  # (3L, A)
    # T's columns are dependent (AU12 = AU12L + AU12R, AU14 likewise): build B = [T_sel, Z] Q from
    # independent columns T_sel of T and random columns Z, mixed by a random invertible Q; then
    # B @ M_true = T has the unique solution M_true = Q^-1 [K; 0] with T = T_sel K.
    _, _, piv = qr(T, pivoting=True)
    sv = np.linalg.svd(T, compute_uv=False)
    r = int((sv > 1e-6 * sv[0]).sum())  # the L/R splits hold to ~1e-8, not to machine precision
    T_sel = T[:, np.sort(piv[:r])]
    K = np.linalg.lstsq(T_sel, T, rcond=None)[0]  # (r, A)
    Z = rng.normal(0.0, np.abs(T_sel).mean(), size=(3 * L, E - r))
    Q = rng.normal(size=(E, E)) + 3 * np.eye(E)
    B = np.concatenate([T_sel, Z], axis=1) @ Q
    M_true = np.linalg.solve(Q, np.concatenate([K, np.zeros((E - r, A))]))
    assert np.abs(B @ M_true - T).max() < 1e-6 * np.abs(T).max() and np.linalg.matrix_rank(B) == E

    extra = 40
    V = 3 * L + extra
    bary = rng.dirichlet(np.ones(3), size=L)
    v_template = rng.normal(0.0, 0.05, size=(V, 3))
    exprdirs = rng.normal(0.0, 1e-4, size=(V, 3, E))
    for l in range(L):
        tri = np.arange(3 * l, 3 * l + 3)
        delta = rng.normal(0.0, 0.003, size=(3, 3))
        delta -= bary[l] @ delta  # barycentric mean of the offsets = 0
        v_template[tri] = target_neutral[l] + delta
        exprdirs[tri] = B.reshape(L, 3, E)[l][None]
    faces = np.concatenate([np.arange(3 * L).reshape(L, 3), rng.integers(0, V, size=(20, 3))])
    weights = np.zeros((V, 5))
    weights[:, 1] = 1.0
    jaw_vertices = v_template[:, 1] < np.median(v_template[:, 1])
    weights[jaw_vertices, 1], weights[jaw_vertices, 2] = 0.3, 0.7
    jreg = np.abs(rng.normal(size=(5, V)))
    jreg /= jreg.sum(1, keepdims=True)
    model = tmp_path / "flame_like.npz"
    np.savez(model, v_template=v_template, f=faces, shapedirs=np.concatenate(
        [rng.normal(0, 1e-3, size=(V, 3, S)), exprdirs], axis=2), posedirs=np.zeros((V, 3, 36)),
        J_regressor=jreg, weights=weights, kintree_table=np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]]))
    emb = tmp_path / "mediapipe_embedding.npz"
    np.savez(emb, lmk_face_idx=np.arange(L), lmk_b_coords=bary, landmark_indices=mp_idx)
    return model, emb, M_true, S


@pytest.fixture(scope="module")
def open_head():
    return load_head()


@pytest.fixture(scope="module")
def flame_setup(tmp_path_factory, open_head):
    tmp = tmp_path_factory.mktemp("flame_space")
    model, emb, M_true, S = _write_flame(tmp, open_head)
    head = load_head(model, num_shape=S, landmark_embedding=emb)
    return head, M_true, tmp


def test_fit_recovers_known_map(flame_setup, open_head):
    head, M_true, _ = flame_setup
    basis = fit_au_basis(head, open_head, ridge=1e-9)
    assert basis.expression_matrix.shape == (head.num_expression, len(AU_NAMES))
    assert basis.scale == pytest.approx(S_TRUE, rel=1e-6)
    assert np.allclose(basis.rotation, R_TRUE, atol=1e-6)
    err = np.abs(basis.expression_matrix - M_true).max() / np.abs(M_true).max()
    assert err < 1e-3, err
    assert np.abs(basis.jaw_matrix).max() < 1e-3
    assert basis.residual.max() < 1e-3
    # AU26 keeps its angle
    from flame_transit.head.open_head import JAW_RAD_PER_AU26

    assert basis.jaw_per_au26[0] == pytest.approx(JAW_RAD_PER_AU26)


def test_fit_without_jaw_and_save_load(flame_setup, open_head):
    head, M_true, tmp = flame_setup
    basis = fit_au_basis(head, open_head, ridge=1e-9, fit_jaw=False)
    assert np.abs(basis.expression_matrix - M_true).max() / np.abs(M_true).max() < 1e-3
    assert not basis.jaw_matrix.any()
    back = FlameAUBasis.load(basis.save(tmp / "basis.npz"))
    np.testing.assert_allclose(back.expression_matrix, basis.expression_matrix)
    assert back.head_name == head.name and back.au_names == basis.au_names
    with pytest.raises(CheckpointMismatchError, match="refit"):
        back.check(open_head)
    (tmp / "junk.npz").write_bytes(b"junk")
    with pytest.raises(AssetError, match="AU basis"):
        FlameAUBasis.load(tmp / "junk.npz")


def test_synthetic_data_in_flame_space(flame_setup, open_head):
    head, M_true, _ = flame_setup
    basis = fit_au_basis(head, open_head)
    ds = make_synthetic_dataset(head, samples_per_emotion=40, seed=0, au_basis=basis)
    ref = make_synthetic_dataset(open_head, samples_per_emotion=40, seed=0)
    assert ds.expression.shape == (len(ref), head.num_expression) and ds.head_name == head.name
    # the same AU samples, mapped linearly (the FLAME identity space differs in size)
    np.testing.assert_allclose(ds.expression, ref.expression @ basis.expression_matrix.T
                               + (ref.jaw_pose[:, 0] / basis.jaw_per_au26[0])[:, None] * basis.au26_expression[None],
                               rtol=1e-4, atol=1e-4)
    from flame_transit.evaluation import train_classifier

    clf = train_classifier(ds)
    test = make_synthetic_dataset(head, samples_per_emotion=40, seed=1, au_basis=basis)
    assert clf.accuracy(test) > 0.95


def test_fit_needs_embedding(tmp_path, open_head):
    from tests.helpers import make_flame_arrays

    arrays = make_flame_arrays(seed=1, num_vertices=300, num_faces=400)
    np.savez(tmp_path / "m.npz", **arrays)
    head = load_head(tmp_path / "m.npz")
    with pytest.raises(AssetError, match="landmark embedding"):
        fit_au_basis(head, open_head)
    with pytest.raises(AssetError, match="landmark embedding"):
        make_synthetic_dataset(head, samples_per_emotion=2)
    # an embedding that does not say which MediaPipe points it holds
    np.savez(tmp_path / "emb.npz", lmk_face_idx=np.arange(30), lmk_b_coords=np.full((30, 3), 1 / 3))
    head = load_head(tmp_path / "m.npz", landmark_embedding=tmp_path / "emb.npz")
    with pytest.raises(AssetError, match="landmark_indices"):
        fit_au_basis(head, open_head)


def test_umeyama_recovers_similarity():
    p = np.random.default_rng(2).normal(size=(50, 3))
    s, R, t = umeyama(p, S_TRUE * p @ R_TRUE.T + T_TRUE)
    assert s == pytest.approx(S_TRUE) and np.allclose(R, R_TRUE) and np.allclose(t, T_TRUE)
