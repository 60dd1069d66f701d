"""The parametric head: arrays in FLAME layout (:class:`HeadAssets`) and the batched forward
(:class:`Head`).

Both head sources, a user's FLAME file and the bundled open head, become a :class:`HeadAssets`
and go through the same :class:`Head` forward.

Conventions (both heads):
    * units: metres; axes: +X to the subject's left (viewer's right), +Y up, +Z out of the face
      towards the viewer (FLAME's frame);
    * pose: axis-angle in radians, 15 values = 5 joints x 3 in the order
      ``global, neck, jaw, left_eye, right_eye``; DECA's 6 values = ``global, jaw``;
    * rotations act about each joint's rest location (FLAME/SMPL convention).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Dict, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .._threads import SMALL_WORK, one_thread
from ..errors import InputError
from ..expressions import is_action_unit_space
from .lbs import LBSBases, lbs_forward, prepare_lbs_bases

__all__ = [
    "JOINT_NAMES",
    "HeadAssets",
    "HeadOutput",
    "Head",
    "pose6_to_pose15",
]

#: FLAME's kinematic tree, in pose order.
JOINT_NAMES: Tuple[str, ...] = ("global", "neck", "jaw", "left_eye", "right_eye")
FLAME_PARENTS = np.array([-1, 0, 1, 1, 1], dtype=np.int64)


@dataclass
class HeadAssets:
    """Arrays of a FLAME-layout head model (numpy, float64 as stored).

    Shapes: ``v_template (V, 3)``, ``faces (F, 3)``, ``shapedirs (V, 3, S)``,
    ``exprdirs (V, 3, E)``, ``posedirs (V, 3, P)`` (FLAME file layout, may be empty),
    ``j_regressor (J, V)``, ``lbs_weights (V, J)``, ``parents (J,)``.
    """

    name: str
    kind: str  # "flame" or "open"
    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    exprdirs: np.ndarray
    posedirs: np.ndarray
    j_regressor: np.ndarray
    lbs_weights: np.ndarray
    parents: np.ndarray = field(default_factory=lambda: FLAME_PARENTS.copy())
    expression_names: Tuple[str, ...] = ()
    shape_names: Tuple[str, ...] = ()
    #: landmark vertex indices (open head: MediaPipe index i -> vertex i) ...
    landmark_indices: Optional[np.ndarray] = None
    #: ... or a barycentric embedding (FLAME): triangle index (L,) and weights (L, 3)
    landmark_faces: Optional[np.ndarray] = None
    landmark_bary: Optional[np.ndarray] = None
    #: extra named triangle sets used by renderers (e.g. "mouth_interior")
    face_parts: Dict[str, np.ndarray] = field(default_factory=dict)
    #: the model file's own triangles in file order (FLAME's ``f``, eyeballs included), when
    #: ``faces`` holds only the skin: exports write these, landmark embeddings index them
    file_faces: Optional[np.ndarray] = None
    #: free-form metadata (source file, licence, builder version, regions, ...)
    meta: Dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = self.v_template.shape[0]
        checks = {
            "v_template": (self.v_template, (v, 3)),
            "shapedirs": (self.shapedirs, (v, 3, None)),
            "exprdirs": (self.exprdirs, (v, 3, None)),
            "posedirs": (self.posedirs, (v, 3, None)),
            "j_regressor": (self.j_regressor, (len(self.parents), v)),
            "lbs_weights": (self.lbs_weights, (v, len(self.parents))),
            "faces": (self.faces, (None, 3)),
        }
        for key, (arr, want) in checks.items():
            ok = arr.ndim == len(want) and all(w is None or w == s for w, s in zip(want, arr.shape))
            if not ok:
                raise InputError(
                    f"head model {self.name!r}: array {key!r} has shape {tuple(arr.shape)}, "
                    f"expected {tuple('*' if w is None else w for w in want)}"
                )
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= v):
            raise InputError(f"head model {self.name!r}: faces index outside 0..{v - 1}")
        if not self.expression_names:
            self.expression_names = tuple(f"exp{i:03d}" for i in range(self.exprdirs.shape[2]))
        if len(self.expression_names) != self.exprdirs.shape[2]:
            raise InputError(
                f"head model {self.name!r}: {len(self.expression_names)} expression names for "
                f"{self.exprdirs.shape[2]} expression coordinates"
            )
        if not self.shape_names:
            self.shape_names = tuple(f"shape{i:03d}" for i in range(self.shapedirs.shape[2]))

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def embedding_faces(self) -> np.ndarray:
        """``(F, 3)`` the triangles a barycentric landmark embedding indexes (FLAME's ``f``)."""
        return self.faces if self.file_faces is None else self.file_faces

    @property
    def num_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def num_expression(self) -> int:
        return int(self.exprdirs.shape[2])


class HeadOutput(NamedTuple):
    """Result of :meth:`Head.forward`; every tensor has the caller's batch shape ``(...)``."""

    vertices: torch.Tensor  #: (..., V, 3) metres
    joints: torch.Tensor  #: (..., 5, 3) metres
    landmarks: Optional[torch.Tensor]  #: (..., L, 3) metres, or None if the model defines none


def pose6_to_pose15(pose6: torch.Tensor) -> torch.Tensor:
    """DECA's pose ``(..., 6)`` = (global, jaw) to FLAME's ``(..., 15)`` with zero neck/eyes.

    Example:
        >>> pose6_to_pose15(torch.zeros(2, 6)).shape
        torch.Size([2, 15])
    """
    if pose6.shape[-1] != 6:
        raise InputError(f"expected DECA pose (..., 6), got {tuple(pose6.shape)}")
    zeros = pose6.new_zeros(pose6.shape[:-1] + (3,))
    return torch.cat([pose6[..., :3], zeros, pose6[..., 3:], zeros, zeros], dim=-1)


_TensorLike = Union[torch.Tensor, np.ndarray, Sequence[float], None]


class Head(torch.nn.Module):
    """A FLAME-layout head model with a batched forward.

    Build one with :func:`flame_transit.head.load_head`. Attributes a user expects:
    ``faces (F, 3)``, ``num_vertices``, ``num_shape``, ``num_expression``, ``expression_names``,
    ``name`` (the id stored in checkpoints), ``kind`` (``"flame"`` or ``"open"``) and
    ``is_au_head`` (expression coordinates are FACS action units).

    Example:
        >>> from flame_transit.head import load_head
        >>> head = load_head()
        >>> out = head(expression=torch.zeros(4, head.num_expression))
        >>> out.vertices.shape == (4, head.num_vertices, 3)
        True
    """

    def __init__(self, assets: HeadAssets, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.assets = assets
        self.name = assets.name
        self.kind = assets.kind
        self.expression_names = tuple(assets.expression_names)
        self.shape_names = tuple(assets.shape_names)
        self.faces = np.ascontiguousarray(assets.faces, dtype=np.int64)
        v = assets.num_vertices

        def buf(name: str, arr: np.ndarray) -> None:
            self.register_buffer(name, torch.as_tensor(np.asarray(arr), dtype=dtype), persistent=False)

        buf("v_template", assets.v_template)
        buf("shapedirs", assets.shapedirs)
        buf("exprdirs", assets.exprdirs)
        # smplx layout (P, V*3): P correctives, rows of pose features
        posedirs = np.asarray(assets.posedirs).reshape(v * 3, -1).T
        buf("posedirs", posedirs)
        buf("j_regressor", assets.j_regressor)
        buf("lbs_weights", assets.lbs_weights)
        self.register_buffer("parents", torch.as_tensor(assets.parents, dtype=torch.long), persistent=False)
        # the same arrays re-laid out once for the batched forward (planar bases, jaw-first
        # pose blocks, regressor applied to the expression basis): see lbs.prepare_lbs_bases
        bases = prepare_lbs_bases(self.exprdirs, self.posedirs, self.j_regressor, self.lbs_weights, self.parents)
        self._lbs_static = (bases.num_expression, bases.pose_joints)
        self._lbs_static_tail = (bases.parents, bases.unit_weights)
        for key in ("blenddirs", "joint_exprdirs", "weights_t"):
            self.register_buffer(f"_lbs_{key}", getattr(bases, key), persistent=False)
        self.register_buffer("faces_tensor", torch.as_tensor(self.faces), persistent=False)
        if assets.landmark_indices is not None:
            self.register_buffer("landmark_indices", torch.as_tensor(assets.landmark_indices, dtype=torch.long), persistent=False)
        else:
            self.landmark_indices = None
        self.landmark_tri: Optional[torch.Tensor] = None
        if assets.landmark_faces is not None and assets.landmark_bary is not None:
            self.attach_landmark_embedding(assets.landmark_faces, assets.landmark_bary)

    def attach_landmark_embedding(self, face_index: np.ndarray, bary: np.ndarray,
                                  mediapipe_index: Optional[np.ndarray] = None) -> None:
        """Use a barycentric landmark embedding: triangle ``face_index (L,)`` of
        :attr:`HeadAssets.embedding_faces` with weights ``bary (L, 3)``; ``mediapipe_index
        (L,)`` says which MediaPipe Face Mesh point each landmark is (default: 0..L-1)."""
        faces = np.asarray(self.assets.embedding_faces, dtype=np.int64)
        face_index = np.asarray(face_index, dtype=np.int64).reshape(-1)
        bary = np.asarray(bary, dtype=np.float64).reshape(-1, 3)
        if len(face_index) != len(bary) or face_index.min(initial=0) < 0 or face_index.max(initial=0) >= len(faces):
            raise InputError(f"head {self.name!r}: a landmark embedding needs (L,) triangle indices in "
                             f"0..{len(faces) - 1} and (L, 3) barycentric weights")
        self.assets.landmark_faces, self.assets.landmark_bary = face_index, bary
        if mediapipe_index is not None:
            self.assets.meta["embedding_landmark_indices"] = np.asarray(mediapipe_index, dtype=np.int64)
        tri = torch.as_tensor(faces[face_index], device=self.v_template.device)
        if "landmark_tri" in self._buffers:
            self._buffers["landmark_tri"] = tri
            self._buffers["landmark_bary"] = torch.as_tensor(bary, dtype=self.dtype, device=self.device)
        else:
            if hasattr(self, "landmark_tri"):
                del self.landmark_tri
            self.register_buffer("landmark_tri", tri, persistent=False)
            self.register_buffer("landmark_bary", torch.as_tensor(bary, dtype=self.dtype, device=self.device),
                                 persistent=False)

    def subset(self, vertex_index: Sequence[int]) -> "Head":
        """The same model restricted to some vertices (vertex losses, landmark fits).

        The returned head has ``U + J`` vertices: the ``U`` selected ones, in the given order,
        then ``J`` virtual vertices that hold the joint regressor applied to the full model
        (rest joints, identity and expression directions). Its joint regressor picks those, so
        its joints -- and every posed vertex ``[:U]`` -- equal the full forward's exactly (FLAME
        regresses joints from the shaped and expressed mesh, linearly). No faces or landmarks;
        per-vertex ``offsets`` are not supported on a subset.

        Example:
            >>> from flame_transit.head import load_head
            >>> head = load_head()
            >>> sub = head.subset([1, 4, 152])
            >>> out = sub(expression=torch.ones(2, head.num_expression))
            >>> torch.allclose(out.vertices[:, :3], head(expression=torch.ones(2, head.num_expression)).vertices[:, [1, 4, 152]])
            True
        """
        a = self.assets
        idx = np.asarray(vertex_index, dtype=np.int64).reshape(-1)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= a.num_vertices:
            raise InputError(f"vertex_index must hold vertex numbers in 0..{a.num_vertices - 1}")
        jreg = np.asarray(a.j_regressor, dtype=np.float64)
        j = jreg.shape[0]
        posedirs = np.asarray(a.posedirs)

        def stacked(arr: np.ndarray) -> np.ndarray:
            return np.concatenate([arr[idx], np.einsum("jv,v...->j...", jreg, arr)], axis=0)

        assets = HeadAssets(
            name=a.name,
            kind=a.kind,
            v_template=stacked(a.v_template),
            faces=np.zeros((0, 3), dtype=np.int64),
            shapedirs=stacked(a.shapedirs),
            exprdirs=stacked(a.exprdirs),
            posedirs=np.concatenate([posedirs[idx], np.zeros((j, 3, posedirs.shape[2]))], axis=0),
            j_regressor=np.concatenate([np.zeros((j, len(idx))), np.eye(j)], axis=1),
            lbs_weights=np.concatenate([a.lbs_weights[idx], np.eye(j)], axis=0),
            parents=a.parents,
            expression_names=a.expression_names,
            shape_names=a.shape_names,
            meta={"subset_of": a.name, "subset_size": int(len(idx))},
        )
        return Head(assets, dtype=self.dtype).to(self.device)

    # -- attributes -------------------------------------------------------------------------
    @property
    def num_vertices(self) -> int:
        return self.assets.num_vertices

    @property
    def num_shape(self) -> int:
        return self.assets.num_shape

    @property
    def num_expression(self) -> int:
        return self.assets.num_expression

    @property
    def is_au_head(self) -> bool:
        """True when the expression coordinates are FACS action units (the open head), False for
        FLAME's PCA coefficients."""
        return is_action_unit_space(self.expression_names)

    @property
    def num_joints(self) -> int:
        return int(self.parents.shape[0])

    @property
    def mesh_faces(self) -> np.ndarray:
        """``(F', 3)`` the whole head for export: the skin (:attr:`faces`) and the extra
        geometry in ``assets.face_parts`` (eyes, irises, mouth interior); parts that only
        re-label skin triangles (lips, brows) add nothing. Without it eyes and mouth show
        through in Blender."""
        if self.assets.file_faces is not None:  # a FLAME file: its own triangles, in its order
            return np.asarray(self.assets.file_faces, dtype=np.int64)
        skin = np.asarray(self.faces, dtype=np.int64)
        seen = {tuple(sorted(t)) for t in skin.tolist()}
        extra = []
        for tri in (getattr(self.assets, "face_parts", None) or {}).values():
            tri = np.asarray(tri, dtype=np.int64)
            if tri.ndim != 2 or tri.shape[1] != 3 or not tri.size or tri.min() < 0 or tri.max() >= self.num_vertices:
                continue
            for t in tri.tolist():
                key = tuple(sorted(t))
                if key not in seen:
                    seen.add(key)
                    extra.append(t)
        return np.concatenate([skin, np.asarray(extra, dtype=np.int64).reshape(-1, 3)]).astype(skin.dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.v_template.dtype

    @property
    def device(self) -> torch.device:
        return self.v_template.device

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, kind={self.kind!r}, vertices={self.num_vertices}, "
            f"faces={len(self.faces)}, shape={self.num_shape}, expression={self.num_expression}"
        )

    # -- forward ----------------------------------------------------------------------------
    def _as_tensor(self, name: str, value: _TensorLike, width: int) -> Optional[torch.Tensor]:
        if value is None:
            return None
        t = torch.as_tensor(value, dtype=self.dtype, device=self.device)
        if t.ndim == 0 or t.shape[-1] != width:
            raise InputError(
                f"{name} must have shape (..., {width}) for head {self.name!r}, got {tuple(t.shape)}"
            )
        if not torch.isfinite(t).all():
            raise InputError(f"{name} contains NaN or infinite values")
        return t

    def forward(
        self,
        shape: _TensorLike = None,
        expression: _TensorLike = None,
        pose: _TensorLike = None,
        translation: _TensorLike = None,
        offsets: _TensorLike = None,
    ) -> HeadOutput:
        """Pose the head.

        Args:
            shape: identity coefficients ``(..., S)``; a single ``(S,)`` vector is shared by the
                whole batch and its blend shape is computed once. Fewer than ``S`` values are
                zero-padded (DECA uses FLAME's first 100).
            expression: ``(..., E)``, fewer values zero-padded (DECA uses FLAME's first 50).
            pose: axis-angle radians, ``(..., 15)`` FLAME order or ``(..., 6)`` DECA order.
            translation: ``(..., 3)`` metres, added after posing.
            offsets: per-vertex rest offsets ``(V, 3)`` or ``(..., V, 3)`` (per-subject detail).

        Returns:
            :class:`HeadOutput` with the broadcast batch shape of the inputs.
        """
        # not zero-padded: the blend GEMMs use only the leading basis columns that are given
        shape_t = self._leading_coefficients("shape", shape, self.num_shape)
        expr_t = self._leading_coefficients("expression", expression, self.num_expression)
        pose_t = None
        if pose is not None:
            pose_t = torch.as_tensor(pose, dtype=self.dtype, device=self.device)
            if pose_t.ndim == 0 or pose_t.shape[-1] not in (6, 15):
                raise InputError(
                    f"pose must have shape (..., 15) (FLAME: global, neck, jaw, left eye, right eye) "
                    f"or (..., 6) (DECA: global, jaw), got {tuple(pose_t.shape)}"
                )
            if not torch.isfinite(pose_t).all():
                raise InputError("pose contains NaN or infinite values")
            if pose_t.shape[-1] == 6:
                pose_t = pose6_to_pose15(pose_t)
        trans_t = self._as_tensor("translation", translation, 3)

        batch_shapes = [t.shape[:-1] for t in (expr_t, pose_t, trans_t) if t is not None]
        if shape_t is not None and shape_t.ndim > 1:
            batch_shapes.append(shape_t.shape[:-1])
        try:
            # numpy's rule is the same; torch.broadcast_shapes first imports sympy (~0.4 s cold)
            batch_shape = torch.Size(np.broadcast_shapes(*(tuple(s) for s in batch_shapes)))
        except ValueError as exc:
            raise InputError(f"inputs have incompatible batch shapes {[tuple(s) for s in batch_shapes]}") from exc
        n = int(np.prod(batch_shape)) if len(batch_shape) else 1

        def flat(t: Optional[torch.Tensor], width: int) -> torch.Tensor:
            if t is None:
                return torch.zeros(n, width, dtype=self.dtype, device=self.device)
            return t.expand(batch_shape + (width,)).reshape(n, width)

        if shape_t is None:
            shape_flat = torch.zeros(1, 0, dtype=self.dtype, device=self.device)
        elif shape_t.ndim == 1 or shape_t.reshape(-1, shape_t.shape[-1]).shape[0] == 1:
            shape_flat = shape_t.reshape(1, shape_t.shape[-1])  # shared identity: blend once
        else:
            shape_flat = flat(shape_t, shape_t.shape[-1])

        offsets_flat = None
        if offsets is not None:
            off = torch.as_tensor(offsets, dtype=self.dtype, device=self.device)
            if off.shape[-2:] != (self.num_vertices, 3):
                raise InputError(f"offsets must have shape (..., {self.num_vertices}, 3), got {tuple(off.shape)}")
            off = off.reshape(-1, self.num_vertices, 3)
            if off.shape[0] != 1 and off.shape[0] != n:
                raise InputError("offsets must be shared (V, 3) or one per batch element")
            if off.shape[0] == n and shape_flat.shape[0] == 1 and n != 1:
                shape_flat = shape_flat.expand(n, -1)
            offsets_flat = off

        bases = LBSBases(self._lbs_blenddirs, *self._lbs_static, self._lbs_joint_exprdirs,
                         self._lbs_weights_t, *self._lbs_static_tail)
        # a few frames (a clip of the open head, one FLAME frame) is small work: one thread
        small = n * self.num_vertices < SMALL_WORK
        with one_thread() if small else contextlib.nullcontext():
            out = lbs_forward(
                shape_flat,
                flat(expr_t, 0) if expr_t is None else flat(expr_t, expr_t.shape[-1]),
                flat(pose_t, 15),
                self.v_template,
                self.shapedirs,
                self.exprdirs,
                self.posedirs,
                self.j_regressor,
                self.parents,
                self.lbs_weights,
                offsets=offsets_flat,
                bases=bases,
            )
        vertices, joints = out.vertices, out.joints
        if trans_t is not None:
            t = flat(trans_t, 3)[:, None, :]
            vertices = vertices + t
            joints = joints + t
        landmarks = self.landmarks_from_vertices(vertices)
        unflat = lambda x: None if x is None else x.reshape(batch_shape + x.shape[1:])
        return HeadOutput(unflat(vertices), unflat(joints), unflat(landmarks))

    def _leading_coefficients(self, name: str, value: _TensorLike, width: int) -> Optional[torch.Tensor]:
        """``(..., W')`` with ``W' <= width``: the first coefficients of a basis (not padded)."""
        if value is None:
            return None
        t = torch.as_tensor(value, dtype=self.dtype, device=self.device)
        if t.ndim == 0:
            raise InputError(f"{name} must have shape (..., {width}), got a scalar")
        if t.shape[-1] > width:
            raise InputError(
                f"{name} has {t.shape[-1]} coefficients but head {self.name!r} has {width}"
            )
        if not torch.isfinite(t).all():
            raise InputError(f"{name} contains NaN or infinite values")
        return t

    def landmarks_from_vertices(self, vertices: torch.Tensor) -> Optional[torch.Tensor]:
        """Landmarks ``(B, L, 3)`` from vertices ``(B, V, 3)``, or None if the head has none."""
        if self.landmark_indices is not None:
            return vertices[:, self.landmark_indices]
        if self.landmark_tri is not None:
            # (B, L*3, 3) corners via index_select (cheaper than advanced indexing), weighted sum
            tri = vertices.index_select(1, self.landmark_tri.reshape(-1))
            tri = tri.view(vertices.shape[0], -1, 3, 3)
            return (tri * self.landmark_bary.unsqueeze(-1)).sum(dim=2)
        return None
