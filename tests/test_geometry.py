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
