"""Small geometry helpers shared by the stages (one implementation each).

* :func:`similarity_transform` -- weighted Procrustes / Umeyama ``dst ≈ s R src + t``; the
  rotation is scipy's ``Rotation.align_vectors`` (weighted Kabsch), scale and translation the
  closed-form least-squares ones.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .errors import InputError

__all__ = ["similarity_transform"]


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
