"""Small geometry helpers shared by the stages (one implementation each).

* :func:`similarity_transform` -- weighted Procrustes / Umeyama ``dst ≈ s R src + t``; the
  rotation is scipy's ``Rotation.align_vectors`` (weighted Kabsch), scale and translation the
  closed-form least-squares ones;
* :func:`vertex_normals` -- area-weighted unit vertex normals (trimesh's definition: the sum of
  the adjacent faces' cross products, normalised), as one product with a scipy sparse
  vertex-face incidence built once per mesh (:func:`vertex_face_incidence`) for per-frame use.
  Not through trimesh: importing it costs ~0.3 s of every cold render for these two lines;
  ``tests/test_geometry.py`` checks the result against trimesh's ``mean_vertex_normals``.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .errors import InputError

__all__ = ["face_normals", "similarity_transform", "vertex_normals", "vertex_face_incidence"]


def similarity_transform(src: np.ndarray, dst: np.ndarray, weights: Optional[np.ndarray] = None, *,
                         scale: bool = True) -> Tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ≈ s * R @ src + t`` (proper rotation, weighted).

    Args:
        src: ``(N, 3)`` points.
        dst: ``(N, 3)`` corresponding points.
        weights: ``(N,)`` non-negative weights (default all 1).
        scale: fit the scale (False: a rigid transform, ``s = 1``; Kabsch).

    Returns:
        ``(s, R (3, 3), t (3,))``.

    Example:
        >>> from scipy.spatial.transform import Rotation
        >>> p = np.random.default_rng(0).normal(size=(10, 3))
        >>> r = Rotation.from_rotvec([0.1, -0.2, 0.3]).as_matrix()
        >>> s, R, t = similarity_transform(p, 2.0 * p @ r.T + 1.0)
        >>> round(s, 6), np.allclose(R, r), np.allclose(t, 1.0)
        (2.0, True, True)
    """
    from scipy.spatial.transform import Rotation

    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise InputError(f"a similarity transform needs two (N>=3, 3) point sets, got {src.shape} and {dst.shape}")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (len(src),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InputError(f"weights must be {len(src)} non-negative numbers with a positive sum")
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s0, d0 = src - mu_s, dst - mu_d
    var = float(w @ (s0**2).sum(axis=1))
    if var <= 0:
        raise InputError("a similarity transform needs source points that are not all identical")
    rot = Rotation.align_vectors(d0, s0, weights=w)[0].as_matrix()  # R minimising sum w |d0 - R s0|^2
    s = float(w @ np.einsum("nc,nc->n", d0, s0 @ rot.T)) / var if scale else 1.0
    return s, rot, mu_d - s * rot @ mu_s


def vertex_face_incidence(faces: np.ndarray, num_vertices: int) -> Any:
    """Sparse ``(V, F)`` vertex-face incidence (1 where vertex ``v`` is a corner of face ``f``,
    as trimesh's ``index_sparse``): build it once per mesh and pass it to
    :func:`vertex_normals` for every frame.

    Example:
        >>> vertex_face_incidence(np.array([[0, 1, 2], [0, 2, 3]]), 4).toarray().tolist()
        [[1.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    """
    from scipy.sparse import csr_matrix

    f = np.asarray(faces, dtype=np.int64)
    rows = f.reshape(-1)
    cols = np.repeat(np.arange(len(f)), f.shape[1])
    return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(int(num_vertices), len(f)))


def face_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unnormalised face normals ``(F, 3)``: ``(b - a) x (c - a)`` per triangle, right-handed
    winding, length twice the triangle's area.

    Example:
        >>> face_normals(np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]])).tolist()
        [[0.0, 0.0, 1.0]]
    """
    v = np.asarray(verts)
    f = np.asarray(faces)
    a = v[f[:, 0]]
    return np.cross(v[f[:, 1]] - a, v[f[:, 2]] - a)


def vertex_normals(verts: np.ndarray, faces: np.ndarray, incidence: Any = None) -> np.ndarray:
    """Area-weighted unit vertex normals ``(V, 3)`` float64 (zero for unused vertices).

    Example:
        >>> v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        >>> vertex_normals(v, np.array([[0, 1, 2]])).tolist()
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    """
    v = np.asarray(verts, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if incidence is None:
        incidence = vertex_face_incidence(f, len(v))
    summed = np.asarray(incidence @ face_normals(v, f), dtype=np.float64)  # cross products: area-weighted
    length = np.linalg.norm(summed, axis=1, keepdims=True)
    return np.divide(summed, length, out=np.zeros_like(summed), where=length > 0)
