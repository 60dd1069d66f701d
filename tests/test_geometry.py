"""flame_transit.geometry against the libraries that define its conventions."""

import numpy as np
import pytest

from flame_transit.geometry import face_normals, vertex_face_incidence, vertex_normals


def _mesh(seed: int):
    rng = np.random.default_rng(seed)
    verts = rng.normal(size=(60, 3))
    faces = np.stack([rng.choice(50, 3, replace=False) for _ in range(90)])  # vertices 50..59 unused
    return verts, faces


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vertex_normals_match_trimesh(seed):
    pytest.importorskip("trimesh")
    verts, faces = _mesh(seed)
    ours = vertex_normals(verts, faces)
    from trimesh.geometry import index_sparse, mean_vertex_normals

    # trimesh's area-weighted mean: the sum of the adjacent faces' cross products, normalised
    theirs = mean_vertex_normals(len(verts), faces, face_normals(verts, faces), sparse=index_sparse(len(verts), faces))
    used = np.unique(faces)
    np.testing.assert_allclose(ours[used], theirs[used], atol=1e-12)
    # unused vertices get no direction (trimesh gives them zero as well)
    assert not ours[50:].any()
    np.testing.assert_allclose(np.linalg.norm(ours[used], axis=1), 1.0)


def test_incidence_reused_across_frames():
    verts, faces = _mesh(3)
    inc = vertex_face_incidence(faces, len(verts))
    assert inc.shape == (60, 90) and inc.sum() == faces.size
    moved = verts + np.array([0.1, -0.2, 0.3]) * verts[:, :1]
    np.testing.assert_allclose(vertex_normals(moved, faces, inc), vertex_normals(moved, faces))


def test_face_normals_are_twice_the_area():
    tri = np.array([[0.0, 0, 0], [2, 0, 0], [0, 3, 0]])
    n = face_normals(tri, np.array([[0, 1, 2], [0, 2, 1]]))
    np.testing.assert_allclose(n, [[0, 0, 6], [0, 0, -6]])


def _kabsch_reference(src, dst, w):
    """scipy's weighted Kabsch on one pair, with the closed-form scale and translation."""
    from scipy.spatial.transform import Rotation

    w = w / w.sum()
    ms, md = w @ src, w @ dst
    r = Rotation.align_vectors(dst - md, src - ms, weights=w)[0].as_matrix()
    s = float(w @ np.einsum("nc,nc->n", dst - md, (src - ms) @ r.T)) / float(w @ ((src - ms) ** 2).sum(axis=1))
    return s, r, md - s * r @ ms


@pytest.mark.parametrize("noise", [0.0, 0.05, 0.5, 3.0])
def test_similarity_transform_batch_matches_scipy_kabsch_per_pair(noise):
    from scipy.spatial.transform import Rotation

    from flame_transit.geometry import similarity_transform

    rng = np.random.default_rng(int(noise * 100))
    src = rng.normal(size=(4, 5, 12, 3))
    rot = Rotation.random(20, random_state=1).as_matrix().reshape(4, 5, 3, 3)
    dst = 1.7 * np.einsum("...ij,...nj->...ni", rot, src) + rng.normal(size=(4, 5, 1, 3)) + noise * rng.normal(size=src.shape)
    w = rng.uniform(0.1, 2.0, size=12)
    s, r, t = similarity_transform(src, dst, w)
    assert s.shape == (4, 5) and r.shape == (4, 5, 3, 3) and t.shape == (4, 5, 3)
    for i in range(4):
        for j in range(5):
            s1, r1, t1 = similarity_transform(src[i, j], dst[i, j], w)
            ref = _kabsch_reference(src[i, j], dst[i, j], w)
            for ours, single, theirs in zip((s[i, j], r[i, j], t[i, j]), (s1, r1, t1), ref):
                np.testing.assert_allclose(ours, theirs, atol=1e-9)
                np.testing.assert_allclose(single, theirs, atol=1e-9)
            np.testing.assert_allclose(np.linalg.det(r[i, j]), 1.0)
    if noise == 0.0:
        np.testing.assert_allclose(r, rot, atol=1e-9)
        np.testing.assert_allclose(s, 1.7)


def test_similarity_transform_degenerate_sets_stay_proper_rotations():
    from flame_transit.geometry import similarity_transform

    rng = np.random.default_rng(5)
    planar = np.concatenate([rng.normal(size=(10, 2)), np.zeros((10, 1))], axis=1)
    mirrored = planar * np.array([1.0, -1.0, 1.0])  # a reflection of a planar set is a rotation of it
    anti = rng.normal(size=(10, 3))
    for src, dst in ((planar, mirrored), (anti, -anti), (planar, planar + 1.0)):
        _, r, _ = similarity_transform(np.stack([src, src]), np.stack([dst, dst]), scale=False)
        ref = _kabsch_reference(src, dst, np.ones(len(src)))[1]
        np.testing.assert_allclose(np.linalg.det(r), 1.0)
        np.testing.assert_allclose(r[0], ref, atol=1e-9)


@pytest.mark.parametrize("src, dst, match", [
    (np.zeros((2, 3)), np.zeros((2, 3)), "N>=3"),
    (np.zeros((4, 3)), np.zeros((5, 3)), "one shape"),
    (np.zeros((4, 2)), np.zeros((4, 2)), "N>=3, 3"),
    (np.zeros((4, 3)), np.ones((4, 3)), "not all identical"),
])
def test_similarity_transform_refuses_bad_point_sets(src, dst, match):
    from flame_transit.errors import InputError
    from flame_transit.geometry import similarity_transform

    with pytest.raises(InputError, match=match):
        similarity_transform(src, dst)
