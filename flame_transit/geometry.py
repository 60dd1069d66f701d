"""Small geometry helpers shared by the stages (one implementation each).

* :func:`similarity_transform` -- weighted Procrustes / Umeyama ``dst ≈ s R src + t`` for any
  batch of point-set pairs; the rotation is scipy's (``Rotation.from_matrix`` of the
  cross-covariance, its orthogonal Procrustes solution, or ``align_vectors``, weighted Kabsch,
  where that would reflect), scale and translation the closed-form least-squares ones;
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

__all__ = ["compact_faces", "face_normals", "similarity_transform", "sparse_apply", "vertex_normals", "vertex_face_incidence"]


def similarity_transform(src: np.ndarray, dst: np.ndarray, weights: Optional[np.ndarray] = None, *,
                         scale: bool = True) -> Tuple[Any, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ≈ s * R @ src + t`` (proper rotation, weighted), for one
    pair of point sets or a batch of them.

    Args:
        src: ``(..., N, 3)`` points.
        dst: ``(..., N, 3)`` corresponding points (the same batch shape).
        weights: ``(N,)`` non-negative weights, shared by the batch (default all 1).
        scale: fit the scale (False: a rigid transform, ``s = 1``; Kabsch).

    Returns:
        ``(s, R (..., 3, 3), t (..., 3))``; ``s`` is a float for one pair, else ``(...)``.

    Example:
        >>> from scipy.spatial.transform import Rotation
        >>> p = np.random.default_rng(0).normal(size=(10, 3))
        >>> r = Rotation.from_rotvec([0.1, -0.2, 0.3]).as_matrix()
        >>> s, R, t = similarity_transform(p, 2.0 * p @ r.T + 1.0)
        >>> round(s, 6), np.allclose(R, r), np.allclose(t, 1.0)
        (2.0, True, True)
        >>> s, R, t = similarity_transform(np.stack([p, p]), np.stack([p, 2.0 * p @ r.T]))
        >>> s.round(6).tolist(), R.shape, np.allclose(R[1], r)
        ([1.0, 2.0], (2, 3, 3), True)
    """
    from scipy.spatial.transform import Rotation

    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim < 2 or src.shape[-1] != 3 or src.shape[-2] < 3:
        raise InputError(f"a similarity transform needs two (..., N>=3, 3) point sets of one shape, got "
                         f"{src.shape} and {dst.shape}")
    n = src.shape[-2]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InputError(f"weights must be {n} non-negative numbers with a positive sum")
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst  # (..., 3)
    s0, d0 = src - mu_s[..., None, :], dst - mu_d[..., None, :]
    var = np.einsum("n,...nc->...", w, s0**2)
    if (var <= 0).any():
        raise InputError("a similarity transform needs source points that are not all identical")
    # R maximising sum w <d0, R s0>: the rotation nearest the weighted cross-covariance, which
    # is how scipy's from_matrix orthogonalises (the orthogonal Procrustes problem). Where that
    # nearest orthogonal matrix is a reflection (det <= 0: degenerate or nearly so), scipy's
    # align_vectors (weighted Kabsch with the sign fix) decides.
    cov = np.einsum("n,...ni,...nj->...ij", w, d0, s0)
    flat, rot = cov.reshape(-1, 3, 3), np.empty((int(np.prod(cov.shape[:-2], dtype=np.int64)), 3, 3))
    proper = np.linalg.det(flat) > 1e-6 * np.maximum(np.abs(flat).max(axis=(1, 2)), 1e-300) ** 3
    if proper.any():
        rot[proper] = Rotation.from_matrix(flat[proper]).as_matrix()
    d0f, s0f = d0.reshape(-1, n, 3), s0.reshape(-1, n, 3)
    for i in np.flatnonzero(~proper):
        rot[i] = Rotation.align_vectors(d0f[i], s0f[i], weights=w)[0].as_matrix()
    rot = rot.reshape(cov.shape)
    if scale:
        s = np.einsum("n,...nc,...nc->...", w, d0, np.einsum("...ij,...nj->...ni", rot, s0)) / var
    else:
        s = np.ones(var.shape)
    t = mu_d - s[..., None] * np.einsum("...ij,...j->...i", rot, mu_s)
    return (float(s) if s.ndim == 0 else s), rot, t


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
    """Unnormalised face normals ``(..., F, 3)`` of meshes ``verts (..., V, 3)``: ``(b - a) x
    (c - a)`` per triangle, right-handed winding, length twice the triangle's area.

    Example:
        >>> face_normals(np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]])).tolist()
        [[0.0, 0.0, 1.0]]
    """
    v = np.asarray(verts)
    f = np.asarray(faces)
    a = v[..., f[:, 0], :]
    return np.cross(v[..., f[:, 1], :] - a, v[..., f[:, 2], :] - a)


def sparse_apply(matrix: Any, values: np.ndarray) -> np.ndarray:
    """``matrix (M, N) @ values`` over the second-last axis of ``values (..., N, C)``: one sparse
    product for the whole batch (the batch goes into the columns).

    Example:
        >>> from scipy.sparse import csr_matrix
        >>> sparse_apply(csr_matrix(np.eye(2)[::-1]), np.arange(8.0).reshape(2, 2, 2)).tolist()
        [[[2.0, 3.0], [0.0, 1.0]], [[6.0, 7.0], [4.0, 5.0]]]
    """
    x = np.asarray(values)
    if x.ndim == 2:
        return np.asarray(matrix @ x)
    cols = np.moveaxis(x, -2, 0).reshape(x.shape[-2], -1)
    out = np.asarray(matrix @ cols).reshape((matrix.shape[0],) + x.shape[:-2] + x.shape[-1:])
    return np.moveaxis(out, 0, -2)


def vertex_normals(verts: np.ndarray, faces: np.ndarray, incidence: Any = None) -> np.ndarray:
    """Area-weighted unit vertex normals ``(..., V, 3)`` float64 of meshes ``verts (..., V, 3)``
    (zero for unused vertices).

    Example:
        >>> v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        >>> vertex_normals(v, np.array([[0, 1, 2]])).tolist()
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    """
    v = np.asarray(verts, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if incidence is None:
        incidence = vertex_face_incidence(f, v.shape[-2])
    summed = sparse_apply(incidence, face_normals(v, f)).astype(np.float64, copy=False)  # area-weighted
    length = np.linalg.norm(summed, axis=-1, keepdims=True)
    return np.divide(summed, length, out=np.zeros_like(summed), where=length > 0)


def compact_faces(faces: np.ndarray, num_vertices: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(used, faces)``: the sorted ids of the vertices that ``faces (F, 3)`` use (of
    ``num_vertices``), and the faces renumbered into them: ``np.unique(faces,
    return_inverse=True)`` without its sort.

    Example:
        >>> compact_faces(np.array([[4, 2, 7], [2, 7, 9]]), 10)
        (array([2, 4, 7, 9]), array([[1, 0, 2],
               [0, 2, 3]]))
    """
    mask = np.zeros(num_vertices, dtype=bool)
    mask[faces] = True
    new_id = np.cumsum(mask) - 1
    return np.flatnonzero(mask), new_id[faces]
