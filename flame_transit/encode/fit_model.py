"""The head as the landmark fit (:mod:`flame_transit.encode.fit`) sees it.

:class:`HeadFitData` holds, per head, the landmark operator (which MediaPipe point each model
landmark is, and its vertex or barycentric weights), the model on the landmarks' support
vertices through the head's own forward (:meth:`flame_transit.head.Head.subset`): affine in the
identity and expression coefficients for fixed jaw/eye rotations, its rotation Jacobian, and
the Laplacian offset solver.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError

__all__ = ["HeadFitData"]

_FLAME_PARENTS = (-1, 0, 1, 1, 1)
_JAW, _LEYE, _REYE = 2, 3, 4


class HeadFitData:
    """A head as the landmark fit sees it, restricted to the vertices the landmarks touch.

    Args:
        head: a :class:`~flame_transit.head.Head` with MediaPipe landmarks (found
            automatically for a FLAME model without an embedding).
        max_shape, max_expression: how many of a FLAME file's coefficients are fitted (DECA:
            100, 50); the open head fits all of its own.
    """

    def __init__(self, head: Any, max_shape: int = 100, max_expression: int = 50) -> None:
        if head.landmark_indices is None and head.landmark_tri is None and head.kind != "open":
            from ..head.correspondence import ensure_mediapipe_landmarks

            ensure_mediapipe_landmarks(head)  # found on the model itself once, then cached
        a = head.assets
        if tuple(int(p) for p in np.asarray(a.parents)) != _FLAME_PARENTS:
            raise InputError(
                f"head {head.name!r} has kinematic tree parents {list(np.asarray(a.parents))}; landmark "
                f"fitting needs FLAME's tree {list(_FLAME_PARENTS)}"
            )
        self.name = head.name
        self.kind = head.kind
        v = a.num_vertices
        self.num_vertices = v
        self.is_au = head.is_au_head
        self.expression_names = tuple(a.expression_names)
        self.num_shape = a.num_shape if head.kind == "open" else min(a.num_shape, int(max_shape))
        self.num_expression = a.num_expression if head.kind == "open" else min(a.num_expression, int(max_expression))
        k_s, k_e = self.num_shape, self.num_expression
        basis = np.concatenate([a.shapedirs[:, :, :k_s], a.exprdirs[:, :, :k_e]], axis=2)  # (V, 3, K)
        self.K = basis.shape[2]

        # landmark operator: which MediaPipe landmark each model landmark is, and its vertices
        if head.landmark_indices is not None or (head.kind == "open" and a.landmark_faces is None):
            lmk_vertices = (
                np.asarray(a.landmark_indices, dtype=np.int64)
                if a.landmark_indices is not None
                else np.arange(min(478, v), dtype=np.int64)
            )
            mp_index = np.arange(len(lmk_vertices), dtype=np.int64)
            tri = lmk_vertices[:, None]
            bary = np.ones((len(lmk_vertices), 1))
        elif a.landmark_faces is not None and a.landmark_bary is not None:
            tri = np.asarray(a.embedding_faces, dtype=np.int64)[np.asarray(a.landmark_faces, dtype=np.int64)]
            bary = np.asarray(a.landmark_bary, dtype=np.float64)
            mp_index = a.meta.get("embedding_landmark_indices")
            if mp_index is None:
                if len(tri) != 478:
                    raise InputError(
                        f"head {head.name!r} has a {len(tri)}-point landmark embedding without "
                        "'landmark_indices' (which MediaPipe landmark each point is); add that array "
                        "to the embedding file (FLAME's mediapipe_landmark_embedding.npz has it)"
                    )
                mp_index = np.arange(478)
            mp_index = np.asarray(mp_index, dtype=np.int64).reshape(-1)
            if len(mp_index) != len(tri) or mp_index.min() < 0 or mp_index.max() >= 478:
                raise InputError(f"head {head.name!r}: landmark_indices must be {len(tri)} MediaPipe indices in 0..477")
        else:
            raise InputError(
                f"head {head.name!r} has no MediaPipe landmarks: load your FLAME model with "
                "load_head(path, landmark_embedding='mediapipe_landmark_embedding.npz'), or use "
                "DecaEncoder, or the bundled open head (head=None)"
            )
        self.mp_index = mp_index
        support, inverse = np.unique(tri.reshape(-1), return_inverse=True)
        self.support = support
        L, U = len(mp_index), len(support)
        import scipy.sparse as sp

        self.lop = sp.csr_matrix(
            (bary.reshape(-1), (np.repeat(np.arange(L), tri.shape[1]), inverse)), shape=(L, U)
        )  # (L, U)
        self.lop_identity = bool(L == U and tri.shape[1] == 1 and np.array_equal(inverse, np.arange(L)))
        self.lmk_tri, self.lmk_bary = tri, bary
        # dominant vertex per landmark (for taking residuals to the rest frame)
        self.lmk_main = np.take_along_axis(tri, np.argmax(bary, axis=1)[:, None], axis=1)[:, 0]

        self.T = np.asarray(a.v_template, dtype=np.float64)
        self.T_U = self.T[support]
        self.B_U = basis[support]  # (U, 3, K)
        self.W_U = np.asarray(a.lbs_weights, dtype=np.float64)[support]  # (U, J)
        jreg = np.asarray(a.j_regressor, dtype=np.float64)
        self.J0 = jreg @ self.T  # (J, 3)
        self.JB = np.einsum("jv,vck->jck", jreg, basis)  # (J, 3, K)
        # the head's own forward (float64): on all vertices, and on the landmarks' support
        # vertices (exact: joints regressed from the full model, see Head.subset)
        import torch

        from ..head import Head

        self.head = Head(a, dtype=torch.float64)
        self.head_support = self.head.subset(support)
        self._unit_coefficients = torch.cat([torch.zeros(1, self.K), torch.eye(self.K)]).double()
        # which rotation joints matter: jaw always; eyes if some landmark follows them
        self.rot_joints = [_JAW]
        self.eye_joints = [j for j in (_LEYE, _REYE) if self.W_U[:, j].max(initial=0.0) > 1e-6]
        # face width of the template landmarks (234-454) for scale-free priors
        pos = {int(m): i for i, m in enumerate(mp_index)}
        tmpl = self.apply_lop(self.T_U)
        if 234 in pos and 454 in pos:
            self.width_m = float(np.linalg.norm(tmpl[pos[454]] - tmpl[pos[234]]))
        else:
            self.width_m = float(np.ptp(tmpl[:, 0]))
        self.mp_pos = pos
        self._offset_solver = None
        self._offset_key = None
        self._faces_all = np.concatenate(
            [np.asarray(a.faces, dtype=np.int64).reshape(-1, 3)]
            + [np.asarray(f, dtype=np.int64).reshape(-1, 3) for f in a.face_parts.values() if np.asarray(f).ndim == 2]
        )

    # -- model (through the head's forward) ------------------------------------------------
    def _pose15(self, theta: Dict[int, np.ndarray]) -> np.ndarray:
        pose = np.zeros(15)
        for j, t in theta.items():
            pose[3 * j: 3 * j + 3] = t
        return pose

    def forward(self, c: np.ndarray, pose: np.ndarray, offsets: Optional[np.ndarray] = None) -> np.ndarray:
        """Posed vertices ``(V, 3)`` for coefficients ``c`` (K,), pose (15,) and offsets."""
        import torch

        with torch.no_grad():
            out = self.head(shape=c[: self.num_shape], expression=c[self.num_shape:], pose=pose, offsets=offsets)
        return out.vertices.numpy()

    def rotations(self, theta: Dict[int, np.ndarray]) -> Dict[int, np.ndarray]:
        from scipy.spatial.transform import Rotation

        return {j: Rotation.from_rotvec(t).as_matrix() for j, t in theta.items()}

    def linear_model(self, theta: Dict[int, np.ndarray]):
        """For fixed jaw/eye rotations ``theta`` (global at rest) the landmarks are affine in the
        coefficients: ``X = A c + b`` with ``A (L, 3, K)``, ``b (L, 3)``, read off the head's
        forward on the support vertices at ``c = 0`` and the K unit vectors."""
        import torch

        c = self._unit_coefficients
        with torch.no_grad():
            v = self.head_support(shape=c[:, : self.num_shape], expression=c[:, self.num_shape:],
                                  pose=torch.as_tensor(self._pose15(theta))).vertices
        v = v[:, : len(self.support)].numpy()  # (K + 1, U, 3)
        b_U = v[0]
        A_U = (v[1:] - v[0]).transpose(1, 2, 0)  # (U, 3, K)
        return self.apply_lop(A_U), self.apply_lop(b_U), self.rotations(theta)

    def apply_lop(self, x: np.ndarray) -> np.ndarray:
        """Landmarks from support-vertex quantities ``(U, ...)`` → ``(L, ...)``."""
        if self.lop_identity:
            return x
        return (self.lop @ x.reshape(x.shape[0], -1)).reshape((self.lop.shape[0],) + x.shape[1:])

    def rotation_jacobian(self, c: np.ndarray, rots: Dict[int, np.ndarray], joints: Sequence[Tuple[int, int]]) -> np.ndarray:
        """d landmarks / d (left-perturbation of joint ``j`` about axis ``k``): (L, 3, n)."""
        rest = self.T_U + self.B_U @ c
        out = np.zeros((self.lop.shape[0], 3, len(joints)))
        wanted = [j for j in rots if any(jj == j for jj, _ in joints)]
        ys = {}
        for j in wanted:
            Jj = self.J0[j] + self.JB[j] @ c
            ys[j] = (rest - Jj) @ rots[j].T  # R (rest - J)
        for col, (j, k) in enumerate(joints):
            y = ys[j]
            e = np.zeros(3)
            e[k] = 1.0
            d = self.W_U[:, j][:, None] * np.cross(e, y)
            out[:, :, col] = self.apply_lop(d)
        return out

    # -- offsets ---------------------------------------------------------------------------
    def offset_solver(self, smoothness: float, shrink: float):
        key = (float(smoothness), float(shrink))
        if self._offset_solver is not None and self._offset_key == key:
            return self._offset_solver
        import scipy.sparse as sp
        from scipy.sparse.linalg import splu

        V = self.num_vertices
        f = self._faces_all
        rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
        cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
        adj = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(V, V)).tocsr()
        adj.data[:] = 1.0
        deg = np.asarray(adj.sum(axis=1)).reshape(-1)
        inv = np.where(deg > 0, 1.0 / np.maximum(deg, 1), 0.0)
        lap = sp.identity(V, format="csr") - sp.diags(inv) @ adj
        lap = sp.diags((deg > 0).astype(float)) @ lap
        L = len(self.mp_index)
        data_rows = np.repeat(np.arange(L), self.lmk_tri.shape[1])
        P = sp.coo_matrix((self.lmk_bary.reshape(-1), (data_rows, self.lmk_tri.reshape(-1))), shape=(L, V)).tocsr()
        system = (P.T @ P + smoothness * (lap.T @ lap) + shrink * sp.identity(V)).tocsc()
        lu = splu(system)
        self._offset_solver = (lu, P)
        self._offset_key = key
        return self._offset_solver
