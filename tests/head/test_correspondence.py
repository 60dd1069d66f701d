"""Automatic MediaPipe landmarks on a FLAME-format model (render + MediaPipe + back-projection)."""

from __future__ import annotations

import numpy as np
import pytest

from flame_transit.errors import AssetError
from flame_transit.head import load_head
from flame_transit.head import correspondence as corr


def _landmark_points(head) -> np.ndarray:
    a = head.assets
    return np.einsum("lk,lkc->lc", a.landmark_bary, a.v_template[a.embedding_faces[a.landmark_faces]])


@pytest.fixture(scope="module")
def flame_head(face_flame):
    path, _, _ = face_flame
    return corr.ensure_mediapipe_landmarks(load_head(path))


def test_recovers_the_known_correspondence(flame_head, face_flame):
    _, _, truth = face_flame
    true = flame_head.assets.v_template[truth["mediapipe_vertex"]]
    found = _landmark_points(flame_head)
    width = np.linalg.norm(true[454] - true[234])
    err = np.linalg.norm(found - true, axis=1)[:468] / width
    # MediaPipe on renders, refined by registering the open head: about 1 % of the face width
    assert np.median(err) < 0.015, np.median(err)
    assert np.percentile(err, 90) < 0.03, np.percentile(err, 90)
    assert flame_head.assets.meta["embedding_landmark_indices"].tolist() == list(range(478))
    q = flame_head.assets.meta["landmark_embedding_quality"]
    assert q["views"] == len(corr.CHECK_VIEWS) and 0 < q["median"] < 0.03 and q["p90"] < 0.06
    assert q["registered"] > 0.9 and q["registration_rms"] < 0.06
    assert abs(q["face_width_m"] - width) < 0.05 * width


def test_cached_by_content_hash(flame_head, face_flame, user_cache, monkeypatch):
    path, _, _ = face_flame
    files = list((user_cache / "heads").glob(f"{corr.model_digest(flame_head.assets)}_mediapipe_embedding.npz"))
    assert len(files) == 1

    def boom(*args, **kwargs):
        raise AssertionError("recomputed instead of read from the cache")

    monkeypatch.setattr(corr, "compute_mediapipe_embedding", boom)
    again = corr.ensure_mediapipe_landmarks(load_head(path))
    np.testing.assert_array_equal(again.assets.landmark_faces, flame_head.assets.landmark_faces)
    np.testing.assert_allclose(again.assets.landmark_bary, flame_head.assets.landmark_bary)


def test_user_embedding_wins(face_flame, tmp_path, monkeypatch):
    path, arrays, truth = face_flame
    faces = np.asarray(arrays["f"], dtype=np.int64)
    vert = truth["mediapipe_vertex"][:468]  # the iris points are not mesh vertices
    tri = np.array([np.nonzero((faces == v).any(axis=1))[0][0] for v in vert])
    bary = (faces[tri] == vert[:, None]).astype(np.float64)
    emb = tmp_path / "mediapipe_landmark_embedding.npz"
    np.savez(emb, lmk_face_idx=tri, lmk_b_coords=bary, landmark_indices=np.arange(468))
    monkeypatch.setattr(corr, "compute_mediapipe_embedding", lambda *a, **k: pytest.fail("computed"))
    head = corr.ensure_mediapipe_landmarks(load_head(path, landmark_embedding=emb))
    np.testing.assert_allclose(_landmark_points(head), head.assets.v_template[vert])


def test_flame_layout_kept_for_exports(flame_head, face_flame):
    _, arrays, _ = face_flame
    np.testing.assert_array_equal(flame_head.mesh_faces, arrays["f"])  # FLAME's f, in its order
    parts = flame_head.assets.face_parts
    assert {"eye_left", "eye_right", "iris_left", "iris_right"} <= set(parts)
    eyes = np.concatenate([parts[k] for k in ("eye_left", "eye_right", "iris_left", "iris_right")])
    assert len(flame_head.faces) + len(eyes) == len(arrays["f"])  # skin = f without the eyeballs
    w = flame_head.assets.lbs_weights
    assert (w[np.unique(parts["iris_left"]), 3] > 0.5).all() and (w[np.unique(parts["eye_right"]), 4] > 0.5).all()


def test_not_a_face_is_one_clear_error(flame_pkl):
    head = load_head(flame_pkl)  # random values: a blob, not a face
    with pytest.raises(AssetError, match="landmark embedding"):
        corr.compute_mediapipe_embedding(head, size=256)


def test_back_project_front_most_and_holes():
    # two stacked unit triangles (z = 0 and z = 1) and a point outside both
    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1]])
    f = np.array([[0, 1, 2], [3, 4, 5]])
    tri, bary, hit = corr.back_project(np.array([[0.2, 0.3], [2.0, 2.0]]), v, f)
    assert tri.tolist()[0] == 1 and hit.tolist() == [True, False]
    np.testing.assert_allclose(bary[0], [0.5, 0.2, 0.3])
    np.testing.assert_allclose(bary.sum(axis=1), 1.0)
    assert (bary >= 0).all()


def test_other_size_with_shoulders(tmp_path):
    """Another size and a large body below the face (FLAME has a neck; scans have shoulders)."""
    import trimesh

    from tests.helpers import make_face_flame_arrays

    arrays, truth = make_face_flame_arrays(seed=1, scale=1.4, offset=(0.0, 0.1, -0.05))
    v, f = arrays["v_template"], np.asarray(arrays["f"], dtype=np.int64)
    lo = v.min(axis=0)
    body = trimesh.creation.box(extents=[0.6, 0.35, 0.25])
    verts = np.concatenate([v, body.vertices + [0.0, lo[1] - 0.22, -0.12]])
    n = len(verts)
    np.savez(tmp_path / "bust.npz", v_template=verts, f=np.concatenate([f, body.faces + len(v)]),
             shapedirs=np.zeros((n, 3, 4)), J_regressor=np.full((5, n), 1.0 / n), weights=np.eye(5)[np.ones(n, int)])
    head = load_head(tmp_path / "bust.npz")
    emb = corr.compute_mediapipe_embedding(head)
    found = np.einsum("lk,lkc->lc", emb.lmk_b_coords, verts[head.assets.embedding_faces[emb.lmk_face_idx]])[:468]
    true = verts[truth["mediapipe_vertex"][:468]]
    err = np.linalg.norm(found - true, axis=1) / np.linalg.norm(true[454] - true[234])
    assert np.median(err) < 0.015 and np.percentile(err, 90) < 0.03, (np.median(err), np.percentile(err, 90))
