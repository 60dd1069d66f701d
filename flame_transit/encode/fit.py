"""Fitting a FLAME-layout head to MediaPipe landmarks (the default encoder).

The bundled open head's vertex ``i`` *is* MediaPipe landmark ``i``, so the fit is well posed; a
user's FLAME model works too when it carries a barycentric MediaPipe landmark embedding
(``load_head(path, landmark_embedding=...)``).

Model (head frame, metres): landmarks ``X(c, θ) = Lop · LBS(T + B c, θ)`` with ``c`` = identity
and expression coefficients and ``θ`` the jaw (3) and eye (pitch, yaw) rotations. The detected
landmarks, as 3D points ``q = (u, -v, -z)`` in pixels (y up, z towards the viewer), are
explained by a similarity ``q ≈ σ R X + τ`` (R = global head rotation).

Algorithm (deterministic, no random init, ~10-30 ms for the open head):

1. Procrustes (weighted Umeyama) for ``σ, R, τ`` given the current model landmarks;
2. one Gauss-Newton step for ``(c, θ)`` with ``σ, R, τ`` fixed, solved as a *bounded* linear
   least-squares problem (:func:`scipy.optimize.lsq_linear`, BVLS): the model is linear in
   ``c`` for fixed ``θ`` and the rotations are linearised by a left perturbation;
   priors are extra rows: identity ``‖β‖²`` (1.0 = one standard deviation, bounded), AU
   intensities ``λ₁ Σ e + λ₂ ‖e‖²`` with ``0 ≤ e ≤ 1.5`` (L1 for sparsity, so bilateral AU12 wins
   over AU12L + AU12R and AUs do not fight; for FLAME expression heads a plain L2 prior and
   symmetric bounds), jaw side/roll and eye rotations pulled to zero;
3. repeat (a fixed number of iterations, or until the step is tiny);
4. weak-perspective camera ``(s, tx, ty)`` re-solved in closed form on the 2D points in the
   DECA-style crop (see :mod:`flame_transit.params`);
5. per-subject vertex offsets (heads whose landmarks are vertices: the open head): the remaining residual (x, y from the camera, z from MediaPipe's
   depth) taken back to the rest frame and spread over the mesh with a Laplacian-smoothed
   least-squares solve (factorised once per head), then corrected twice through the real
   forward so the mesh reprojects onto the landmarks.

Depth (MediaPipe ``z``) enters the rotation fit fully and the shape/expression solve with weight
``z_weight`` (it is a learned relative depth, less reliable than x, y).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .._threads import one_thread
from ..errors import InputError
from ..geometry import similarity_transform
from .fit_model import _JAW, HeadFitData

__all__ = ["FitOptions", "FitResult", "fit_landmarks", "HeadFitData", "head_fit_data"]

#: radians: a jaw / eye rotation that moved less than this since the last linear model keeps it
#: (a landmark 0.1 m from the joint moves < 0.1 µm; the fit's last two Gauss-Newton steps
#: typically move them by 1e-7 and 1e-8)
THETA_REUSE = 1e-6


@dataclass(frozen=True)
class FitOptions:
    """Settings of :func:`fit_landmarks` (defaults tuned on the open head).

    Attributes:
        iterations: maximum Gauss-Newton iterations.
        tolerance: stop when no coefficient / angle changes by more than this.
        noise_m: expected landmark noise in metres (data rows are divided by it).
        z_weight: weight of MediaPipe depth residuals relative to x, y in the coefficient solve.
        shape_prior: weight of ``‖β‖²`` (coefficients in standard deviations).
        shape_bound: ``|β_i| ≤ shape_bound``.
        au_l1, au_l2: sparsity prior ``au_l1 · Σ e + au_l2 · ‖e‖²`` for AU heads.
        au_max: upper bound of AU intensities (lower bound 0).
        expr_prior, expr_bound: L2 prior and symmetric bound for non-AU (FLAME) expressions.
        jaw_open_range: bounds of the jaw X rotation (radians; positive opens).
        jaw_side_prior: L2 weight on the jaw's Y/Z rotation (radians²).
        fit_eyes: fit eye pitch/yaw from the iris landmarks (heads whose landmarks move with
            the eye joints).
        eye_prior: L2 weight on eye rotations.
        damping: Levenberg damping of the rotation steps.
        offsets: fit per-subject vertex offsets.
        offset_smoothness: weight of the Laplacian term of the offset solve.
        offset_shrink: small L2 weight keeping offsets of unconstrained vertices near zero.
        offset_z_weight: share of MediaPipe's depth residual the offsets take up.
        max_shape, max_expression: how many of a FLAME file's coefficients to fit (DECA: 100, 50).
    """

    iterations: int = 12
    tolerance: float = 1e-4
    noise_m: float = 0.0015
    z_weight: float = 0.5
    shape_prior: float = 1.0
    shape_bound: float = 3.0
    au_l1: float = 2.0
    au_l2: float = 0.5
    au_max: float = 1.5
    expr_prior: float = 1.0
    expr_bound: float = 3.0
    jaw_open_range: Tuple[float, float] = (-0.05, 0.5)
    jaw_side_prior: float = 400.0
    fit_eyes: bool = True
    eye_prior: float = 20.0
    damping: float = 1.0
    offsets: bool = True
    offset_smoothness: float = 0.05
    offset_shrink: float = 1e-3
    offset_z_weight: float = 1.0
    max_shape: int = 100
    max_expression: int = 50


@dataclass
class FitResult:
    """Result of :func:`fit_landmarks` (numpy, float64).

    ``global_rotvec`` is the head rotation; ``similarity`` = (σ, R, τ) in detection pixels;
    ``cam`` is relative to the crop given to :func:`fit_landmarks`; ``rms_model`` /
    ``rms_final`` are 2D RMS errors / face width before and after offsets.
    """

    shape: np.ndarray
    expression: np.ndarray
    pose: np.ndarray  # (15,)
    cam: np.ndarray  # (3,)
    offsets: Optional[np.ndarray]  # (V, 3) rest-frame metres
    vertices: np.ndarray  # (V, 3) final posed vertices in the head frame
    vertices_2d: np.ndarray  # (V, 2) pixels
    landmarks_2d: np.ndarray  # (L, 2) model landmarks in pixels (final)
    rms_model: float
    rms_final: float
    similarity: Tuple[float, np.ndarray, np.ndarray]
    iterations: int = 0
    info: Dict[str, object] = field(default_factory=dict)


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def head_fit_data(head, options: Optional[FitOptions] = None) -> HeadFitData:
    """Cached :class:`HeadFitData` for ``head`` (one per head object and coefficient count)."""
    options = options or FitOptions()
    per_head = _CACHE.setdefault(head, {})
    key = (options.max_shape, options.max_expression)
    data = per_head.get(key)
    if data is None:
        data = HeadFitData(head, options.max_shape, options.max_expression)
        per_head[key] = data
    return data


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _skew(v: np.ndarray) -> np.ndarray:
    """Cross-product matrices ``(N, 3, 3)`` of vectors ``(N, 3)``: ``skew(v) @ x == v x x``."""
    out = np.zeros(v.shape[:-1] + (3, 3))
    out[..., 0, 1], out[..., 0, 2] = -v[..., 2], v[..., 1]
    out[..., 1, 0], out[..., 1, 2] = v[..., 2], -v[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -v[..., 1], v[..., 0]
    return out


def _prior_rows(fd: HeadFitData, opt: FitOptions):
    """Prior rows (P, K) / rhs (P,) / bounds on the coefficients."""
    k_s, k_e = fd.num_shape, fd.num_expression
    rows = np.zeros((fd.K, fd.K))
    rhs = np.zeros(fd.K)
    lo = np.empty(fd.K)
    hi = np.empty(fd.K)
    ws = np.sqrt(opt.shape_prior)
    rows[np.arange(k_s), np.arange(k_s)] = ws
    lo[:k_s], hi[:k_s] = -opt.shape_bound, opt.shape_bound
    ie = np.arange(k_s, k_s + k_e)
    if fd.is_au:
        # l1 * e + l2 * e^2 == l2 * (e + l1 / (2 l2))^2 + const  (e >= 0)
        we = np.sqrt(opt.au_l2)
        rows[ie, ie] = we
        rhs[ie] = -we * opt.au_l1 / (2.0 * opt.au_l2)
        lo[ie], hi[ie] = 0.0, opt.au_max
    else:
        rows[ie, ie] = np.sqrt(opt.expr_prior)
        lo[ie], hi[ie] = -opt.expr_bound, opt.expr_bound
    return rows, rhs, lo, hi


def _rot_params(fd: HeadFitData, opt: FitOptions) -> Sequence[Tuple[int, int]]:
    joints = [(_JAW, 0), (_JAW, 1), (_JAW, 2)]
    if opt.fit_eyes:
        for j in fd.eye_joints:
            joints += [(j, 0), (j, 1)]
    return joints


# ----------------------------------------------------------------------------------------------
# the fit
# ----------------------------------------------------------------------------------------------
def fit_landmarks(*args: Any, **kwargs: Any) -> "FitResult":
    # the fit's matrices are small (~1500 x 60): one torch and BLAS thread (see flame_transit._threads)
    with one_thread(blas=True):
        return _fit_landmarks(*args, **kwargs)


def _fit_landmarks(
    points: np.ndarray,
    head,
    crop_to_image: np.ndarray,
    *,
    options: Optional[FitOptions] = None,
    shape: Optional[np.ndarray] = None,
    weights: Optional[np.ndarray] = None,
    compute_offsets: Optional[bool] = None,
    offsets: Optional[np.ndarray] = None,
) -> FitResult:
    """Fit ``head`` to MediaPipe landmarks.

    Args:
        points: ``(478, 3)`` landmarks in pixels (x right, y down, z = MediaPipe z x image
            width, smaller = nearer), e.g. :attr:`FaceLandmarks.points`.
        head: a :class:`~flame_transit.head.Head` with MediaPipe landmarks (the open head, or a
            FLAME model with a MediaPipe embedding).
        crop_to_image: ``(2, 3)`` crop-NDC → pixel affine the camera is expressed in.
        options: :class:`FitOptions`.
        shape: fixed identity coefficients (video: identity fitted once); ``None`` fits them.
        weights: optional per-MediaPipe-landmark weights ``(478,)``.
        compute_offsets: override ``options.offsets``.
        offsets: fixed per-subject offsets ``(V, 3)`` to use instead of fitting them (video).

    Returns:
        :class:`FitResult`.
    """
    from scipy.optimize import lsq_linear
    from scipy.spatial.transform import Rotation

    opt = options or FitOptions()
    fd = head_fit_data(head, opt)
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (478, 3) or not np.isfinite(pts).all():
        raise InputError(f"landmarks must be a finite (478, 3) array, got {pts.shape}")
    C = np.asarray(crop_to_image, dtype=np.float64)
    pts_sel = pts[fd.mp_index]
    q = np.stack([pts_sel[:, 0], -pts_sel[:, 1], -pts_sel[:, 2]], axis=1)  # y up, z towards viewer
    L = len(q)
    w = np.ones(L) if weights is None else np.asarray(weights, dtype=np.float64)[fd.mp_index]
    sw = np.sqrt(w)
    zw = np.array([1.0, 1.0, np.sqrt(opt.z_weight)])
    fixed_offsets = None if offsets is None else np.asarray(offsets, dtype=np.float64)

    k_s = fd.num_shape
    c = np.zeros(fd.K)
    shape_fixed = shape is not None
    if shape_fixed:
        sh = np.zeros(k_s)
        s_in = np.asarray(shape, dtype=np.float64).reshape(-1)[:k_s]
        sh[: len(s_in)] = s_in
        c[:k_s] = sh
    P_rows, P_rhs, lo, hi = _prior_rows(fd, opt)
    if shape_fixed:
        lo[:k_s] = hi[:k_s] = c[:k_s]
        lo[:k_s] -= 1e-12
        hi[:k_s] += 1e-12
    rot_params = _rot_params(fd, opt)
    n_rot = len(rot_params)
    theta = {j: np.zeros(3) for j in {j for j, _ in rot_params}}
    # offsets given (video): they move the landmarks rigidly with the rest shape
    off_lmk = None
    if fixed_offsets is not None:
        off_lmk = fd.apply_lop(fixed_offsets[fd.support])

    noise = opt.noise_m
    it_done = 0
    cached: Dict[str, Any] = {}

    def linear_model(theta: Dict[int, np.ndarray]):
        # the model's forward (K + 1 head evaluations) is most of an iteration's time; once the
        # rotations have converged (moved < THETA_REUSE rad) the last one is as good
        now = np.concatenate([theta[j] for j in sorted(theta)]) if theta else np.zeros(0)
        if "theta" not in cached or np.abs(now - cached["theta"]).max(initial=0.0) > THETA_REUSE:
            cached["theta"], cached["model"] = now, fd.linear_model(theta)
        return cached["model"]

    # initial similarity: Procrustes on the starting model
    A, b, rots = linear_model(theta)
    if off_lmk is not None:
        b = b + _posed_offsets(fd, off_lmk, rots)
    sigma, R, tau = similarity_transform(np.einsum("lak,k->la", A, c) + b, q, w)
    n_c = fd.K
    n_var = n_c + n_rot + 7  # c, rotation steps, omega (3), log-scale step, translation step (3)
    row_scale = (zw[None, :] * sw[:, None]).reshape(-1) / noise  # (3L,)
    for it in range(int(opt.iterations)):
        if it > 0:
            A, b, rots = linear_model(theta)
            if off_lmk is not None:
                b = b + _posed_offsets(fd, off_lmk, rots)
        X0 = np.einsum("lak,k->la", A, c) + b
        RX0 = X0 @ R.T
        G = fd.rotation_jacobian(c, rots, rot_params)  # (L, 3, n_rot)
        # Joint Gauss-Newton step. With Y = σ(1+κ) exp([ω]x) R (A c + b + G dθ) + τ + σ δ,
        # (Y - q) / σ ≈ R (A c + G dθ) + κ R X0 - [R X0]x ω + δ + (R b + (τ - q) / σ).
        J = np.zeros((L, 3, n_var))
        J[:, :, :n_c] = np.matmul(R, A)
        J[:, :, n_c:n_c + n_rot] = np.matmul(R, G)
        o = n_c + n_rot
        J[:, :, o:o + 3] = -_skew(RX0)
        J[:, :, o + 3] = RX0
        J[:, :, o + 4:o + 7] = np.eye(3)[None]
        rhs = -(b @ R.T + (tau - q) / sigma)
        data_A = J.reshape(3 * L, n_var) * row_scale[:, None]
        data_b = rhs.reshape(-1) * row_scale
        # priors: coefficients (absolute), rotations (absolute prior + damping on the step),
        # a little damping on the similarity step
        prior = np.zeros((n_var, n_var))
        prior_rhs = np.zeros(n_var)
        prior[:n_c, :n_c] = P_rows
        prior_rhs[:n_c] = P_rhs
        rlo, rhi = np.empty(n_rot), np.empty(n_rot)
        for col, (j, k) in enumerate(rot_params):
            cur = theta[j][k]
            if j == _JAW and k == 0:
                lam = 1e-2
                rlo[col], rhi[col] = opt.jaw_open_range[0] - cur, opt.jaw_open_range[1] - cur
            elif j == _JAW:
                lam = opt.jaw_side_prior
                rlo[col], rhi[col] = -0.2, 0.2
            else:
                lam = opt.eye_prior
                rlo[col], rhi[col] = -0.3, 0.3
            # lam (cur + d)^2 + damping d^2  ==  (lam + damping) (d + lam cur / (lam + damping))^2 + const
            prior[n_c + col, n_c + col] = np.sqrt(lam + opt.damping)
            prior_rhs[n_c + col] = -lam * cur / np.sqrt(lam + opt.damping)
        prior[o:, o:] = np.eye(7) * 1e-3
        rlo = np.minimum(rlo, 0.0)
        rhi = np.maximum(rhi, 0.0)
        M = np.concatenate([data_A, prior], axis=0)
        y = np.concatenate([data_b, prior_rhs])
        # same minimiser on an n x n triangle (Cholesky of the normal matrix, well conditioned
        # thanks to the priors): BVLS on it is much cheaper than on the tall system
        Rm = np.linalg.cholesky(M.T @ M).T
        rhs_small = np.linalg.solve(Rm.T, M.T @ y)
        lower = np.concatenate([lo, rlo, np.full(7, -np.inf)])
        upper = np.concatenate([hi, rhi, np.full(7, np.inf)])
        sol = lsq_linear(Rm, rhs_small, bounds=(lower, upper), method="bvls").x
        step_c = sol[:n_c] - c
        c = sol[:n_c]
        d = sol[n_c:o]
        omega, kappa, delta = sol[o:o + 3], sol[o + 3], sol[o + 4:o + 7]
        for j in theta:
            dv = np.zeros(3)
            for col, (jj, k) in enumerate(rot_params):
                if jj == j:
                    dv[k] = d[col]
            theta[j] = (Rotation.from_rotvec(dv) * Rotation.from_rotvec(theta[j])).as_rotvec()
        R = Rotation.from_rotvec(omega).as_matrix() @ R
        tau = tau + sigma * delta
        sigma = sigma * float(np.exp(kappa))
        it_done = it + 1
        small = max(np.abs(step_c).max(initial=0.0), np.abs(d).max(initial=0.0), np.abs(omega).max(), abs(kappa))
        if small < opt.tolerance:
            break
    A, b, rots = linear_model(theta)
    if off_lmk is not None:
        b = b + _posed_offsets(fd, off_lmk, rots)
    X = np.einsum("lak,k->la", A, c) + b

    # assemble FLAME-layout parameters
    beta = c[:k_s].copy()
    expr = c[k_s:].copy()
    pose = np.zeros(15)
    pose[0:3] = Rotation.from_matrix(R).as_rotvec()
    for j, t in theta.items():
        pose[3 * j: 3 * j + 3] = t

    uv = pts_sel[:, :2]
    width_px = _face_width_px(pts)

    def forward(off: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        verts = fd.forward(c, pose, off)
        return verts, _landmarks(fd, verts)

    verts, lmk = forward(fixed_offsets)
    n_target = _pixels_to_ndc(uv, C)
    cam = _solve_cam(lmk[:, :2], n_target, w)
    lmk_px = _project(lmk, cam, C)
    rms_model = float(np.sqrt(np.mean(np.sum((lmk_px - uv) ** 2, axis=1)))) / width_px

    do_off = opt.offsets if compute_offsets is None else bool(compute_offsets)
    # per-vertex offsets need landmarks that are vertices (the open head); a barycentric
    # embedding on a denser mesh (FLAME) leaves them under-determined: folds, not detail
    do_off = do_off and fd.lmk_tri.shape[1] == 1
    off_total = fixed_offsets
    if do_off and fixed_offsets is None:
        lu, P = fd.offset_solver(opt.offset_smoothness, opt.offset_shrink)
        off_total = np.zeros((fd.num_vertices, 3))
        # targets in the (globally rotated) head frame: x, y where the camera puts the detected
        # points, z = model depth + MediaPipe's depth residual under the similarity
        s, t = cam[0], cam[1:]
        tgt = np.empty_like(lmk)
        tgt[:, :2] = n_target / s - t
        z_sim = (q[:, 2] - tau[2]) / sigma
        z_mod = (X @ R.T)[:, 2]
        tgt[:, 2] = lmk[:, 2] + opt.offset_z_weight * (z_sim - z_mod)
        for _ in range(3):  # the joints follow the offsets a little: correct through the forward
            r_loc = (tgt - lmk) @ R  # R^T r: global rotation undone
            r_rest = _to_rest(fd, r_loc, rots)
            off_total = off_total + lu.solve(np.ascontiguousarray(P.T @ r_rest))
            verts, lmk = forward(off_total)
        cam = _solve_cam(lmk[:, :2], n_target, w)
        lmk_px = _project(lmk, cam, C)
    rms_final = float(np.sqrt(np.mean(np.sum((lmk_px - uv) ** 2, axis=1)))) / width_px
    verts_2d = _project(verts, cam, C)
    return FitResult(
        shape=beta,
        expression=expr,
        pose=pose,
        cam=cam,
        offsets=off_total,
        vertices=verts,
        vertices_2d=verts_2d,
        landmarks_2d=lmk_px,
        rms_model=rms_model,
        rms_final=rms_final,
        similarity=(sigma, R, tau),
        iterations=it_done,
        info={"face_width_px": width_px},
    )


def _posed_offsets(fd: HeadFitData, off_lmk: np.ndarray, rots: Dict[int, np.ndarray]) -> np.ndarray:
    """Approximate posed displacement of landmark offsets (rotated with their main joint)."""
    out = off_lmk.copy()
    Wm = fd.W_U[np.searchsorted(fd.support, fd.lmk_main)]
    for j, Rj in rots.items():
        out += Wm[:, j][:, None] * (off_lmk @ (Rj - np.eye(3)).T)
    return out


def _to_rest(fd: HeadFitData, r_loc: np.ndarray, rots: Dict[int, np.ndarray]) -> np.ndarray:
    """Undo the jaw/eye skinning of residuals per landmark (3x3 blend per main vertex)."""
    Wm = fd.W_U[np.searchsorted(fd.support, fd.lmk_main)]
    M = np.broadcast_to(np.eye(3), (len(r_loc), 3, 3)).copy()
    for j, Rj in rots.items():
        M += Wm[:, j][:, None, None] * (Rj - np.eye(3))
    return np.linalg.solve(M, r_loc[..., None])[..., 0]


def _landmarks(fd: HeadFitData, verts: np.ndarray) -> np.ndarray:
    return np.einsum("lk,lkc->lc", fd.lmk_bary, verts[fd.lmk_tri])


def _face_width_px(points: np.ndarray) -> float:
    wpx = float(np.linalg.norm(points[454, :2] - points[234, :2]))
    if wpx <= 1e-6:
        wpx = float(np.ptp(points[:, 0])) or 1.0
    return wpx


def _pixels_to_ndc(uv: np.ndarray, C: np.ndarray) -> np.ndarray:
    return np.linalg.solve(C[:, :2], (uv - C[:, 2]).T).T


def _project(points: np.ndarray, cam: np.ndarray, C: np.ndarray) -> np.ndarray:
    n = cam[0] * (points[:, :2] + cam[1:3])
    return n @ C[:, :2].T + C[:, 2]


def _solve_cam(xy: np.ndarray, n: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted LS for n ≈ s (xy + t): unknowns (s, s tx, s ty)."""
    L = len(xy)
    A = np.zeros((2 * L, 3))
    A[0::2, 0] = xy[:, 0]
    A[1::2, 0] = xy[:, 1]
    A[0::2, 1] = 1.0
    A[1::2, 2] = 1.0
    sw = np.repeat(np.sqrt(w), 2)
    sol, *_ = np.linalg.lstsq(A * sw[:, None], n.reshape(-1) * sw, rcond=None)
    s = float(sol[0])
    return np.array([s, sol[1] / s, sol[2] / s])


fit_landmarks.__doc__ = _fit_landmarks.__doc__
fit_landmarks.__wrapped__ = _fit_landmarks  # type: ignore[attr-defined]  # inspect.signature follows it
