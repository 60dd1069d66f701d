"""FACS action units in FLAME space: an approximate AU -> FLAME-expression map.

The synthetic emotion data (:mod:`flame_transit.data.synthetic`) is sampled in action-unit
space. The open head's expression coordinates *are* AUs; a FLAME model's are PCA components with
no FACS meaning. To train and evaluate on a user's FLAME model we transfer each AU through
**landmarks**:

1. the user supplies a landmark embedding of MediaPipe Face Mesh points on their FLAME mesh
   (``load_head(flame_path, landmark_embedding=emb)``; the embedding's ``landmark_indices`` say
   which MediaPipe points, and land in ``head.assets.meta["embedding_landmark_indices"]``);
2. the open head's neutral landmarks are aligned to FLAME's by a similarity transform
   (Umeyama: scale, rotation, translation), which absorbs the size difference;
3. each AU's landmark displacement on the open head (rotated and scaled into FLAME's frame) is
   fitted by FLAME expression coefficients, and optionally a jaw rotation, by ridge-regularised
   least squares on the embedded landmarks;
4. AU26 (jaw drop, a jaw rotation on both heads) keeps its angle; the remaining landmark
   difference of the open head's jaw drop is fitted by expression coefficients.

The result, :class:`FlameAUBasis`, holds the ``(E_flame, A)`` matrix of FLAME-space AU
directions (A = 22 open-head AUs) and the per-AU fit residuals.

Limitations (it is an approximation): only the embedded landmarks constrain the fit (nothing
between or behind them); the FLAME expression space cannot reproduce every AU field exactly
(see ``residual``); AUs are transferred at the neutral identity and zero pose, and their
combination is assumed linear; the open head's AU fields are authored, not measured.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import AssetError, CheckpointMismatchError, InputError
from ..geometry import similarity_transform
from ..io_utils import read_npz_with_header, user_path

__all__ = ["FlameAUBasis", "fit_au_basis", "au_basis_for", "umeyama", "embedding_mediapipe_indices"]

_FORMAT = "flame_transit.flame_au_basis"


#: the similarity fit (:func:`flame_transit.geometry.similarity_transform`) under its usual name
umeyama = similarity_transform


@dataclass
class FlameAUBasis:
    """FLAME-space directions of the open head's action units.

    A sample with AU intensities ``aus (A,)`` and jaw drop ``au26`` becomes
    ``expression = expression_matrix @ aus + au26 * au26_expression`` and
    ``jaw_pose = jaw_matrix @ aus + au26 * jaw_per_au26``.

    Attributes:
        head_name: the FLAME head the map was fitted for.
        au_names: the ``A`` AU names (columns).
        expression_matrix: ``(E, A)`` FLAME expression coefficients per unit AU.
        jaw_matrix: ``(3, A)`` jaw axis-angle per unit AU (zeros without ``fit_jaw``).
        jaw_per_au26: ``(3,)`` jaw rotation for AU26 = 1 (the open head's angle).
        au26_expression: ``(E,)`` expression correction for AU26 = 1.
        residual: ``(A,)`` relative landmark residual ``|fit - target| / |target|`` per AU.
        scale: open-head -> FLAME size ratio of the similarity alignment.
        rotation: ``(3, 3)`` rotation of the alignment.
        num_landmarks: landmarks used.
        meta: settings of the fit.
    """

    head_name: str
    au_names: Tuple[str, ...]
    expression_matrix: np.ndarray
    jaw_matrix: np.ndarray
    jaw_per_au26: np.ndarray
    au26_expression: np.ndarray
    residual: np.ndarray
    scale: float = 1.0
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    num_landmarks: int = 0
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.au_names = tuple(str(a) for a in self.au_names)
        A = len(self.au_names)
        self.expression_matrix = np.asarray(self.expression_matrix, dtype=np.float64)
        E = self.expression_matrix.shape[0]
        shapes = {
            "expression_matrix": (self.expression_matrix, (E, A)),
            "jaw_matrix": (np.asarray(self.jaw_matrix, dtype=np.float64), (3, A)),
            "jaw_per_au26": (np.asarray(self.jaw_per_au26, dtype=np.float64), (3,)),
            "au26_expression": (np.asarray(self.au26_expression, dtype=np.float64), (E,)),
            "residual": (np.asarray(self.residual, dtype=np.float64), (A,)),
            "rotation": (np.asarray(self.rotation, dtype=np.float64), (3, 3)),
        }
        for name, (arr, want) in shapes.items():
            if arr.shape != want:
                raise InputError(f"FlameAUBasis.{name} must have shape {want}, got {arr.shape}")
            setattr(self, name, arr)

    @property
    def num_expression(self) -> int:
        return int(self.expression_matrix.shape[0])

    def describe(self) -> str:
        worst = int(np.argmax(self.residual))
        return (
            f"{self.num_landmarks} landmarks, scale {self.scale:.3g}, median residual "
            f"{np.median(self.residual):.1%}, worst {self.au_names[worst]} {self.residual[worst]:.1%}"
        )

    def check(self, head: Any) -> None:
        """Raise :class:`CheckpointMismatchError` unless ``head`` is the model this was fitted for."""
        if getattr(head, "name", None) != self.head_name or int(head.num_expression) != self.num_expression:
            raise CheckpointMismatchError(
                f"this AU basis was fitted for head {self.head_name!r} ({self.num_expression} expression "
                f"coefficients), not {getattr(head, 'name', head)!r} ({getattr(head, 'num_expression', '?')}); "
                "refit it with fit_au_basis(head)"
            )

    def apply(self, aus: np.ndarray, au26: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """FLAME expression ``(N, E)`` and jaw pose ``(N, 3)`` for AU intensities ``(N, A)``."""
        aus = np.atleast_2d(np.asarray(aus, dtype=np.float64))
        if aus.shape[-1] != len(self.au_names):
            raise InputError(f"aus must be (N, {len(self.au_names)}), got {aus.shape}")
        a26 = np.zeros(len(aus)) if au26 is None else np.asarray(au26, dtype=np.float64).reshape(-1)
        expr = aus @ self.expression_matrix.T + a26[:, None] * self.au26_expression[None]
        jaw = aus @ self.jaw_matrix.T + a26[:, None] * self.jaw_per_au26[None]
        return expr, jaw

    # -- files -------------------------------------------------------------------------------
    def save(self, path: Union[str, Path]) -> Path:
        """Write to ``.npz`` atomically."""
        from ..io_utils import atomic_write_bytes

        header = {"format": _FORMAT, "head_name": self.head_name, "au_names": list(self.au_names),
                  "scale": self.scale, "num_landmarks": self.num_landmarks, "meta": self.meta}
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            header_json=np.array(json.dumps(header)),
            expression_matrix=self.expression_matrix,
            jaw_matrix=self.jaw_matrix,
            jaw_per_au26=self.jaw_per_au26,
            au26_expression=self.au26_expression,
            residual=self.residual,
            rotation=self.rotation,
        )
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: Union[str, Path]) -> "FlameAUBasis":
        path = user_path(path)
        header, data = read_npz_with_header(path, "AU basis", "FlameAUBasis.save", _FORMAT, AssetError)
        try:
            return cls(head_name=header["head_name"], au_names=tuple(header["au_names"]),
                       scale=float(header["scale"]), num_landmarks=int(header["num_landmarks"]),
                       meta=header.get("meta", {}), **data)
        except (KeyError, TypeError, InputError) as exc:
            raise AssetError(f"{path}: inconsistent AU basis file ({exc})") from exc


def embedding_mediapipe_indices(head: Any, landmark_indices: Optional[Sequence[int]] = None) -> np.ndarray:
    """Which MediaPipe Face Mesh point each of the FLAME head's embedded landmarks is.

    Order of precedence: the explicit ``landmark_indices``; the embedding file's
    ``landmark_indices`` (``head.assets.meta["embedding_landmark_indices"]``); all MediaPipe
    points in order when the embedding has exactly 468 or 478 points.
    """
    tri = getattr(head, "landmark_tri", None)
    if tri is None:
        raise AssetError(
            f"head {getattr(head, 'name', '?')!r} has no landmark embedding; load it with "
            "load_head(flame_path, landmark_embedding='mediapipe_embedding.npz') (an embedding of "
            "MediaPipe Face Mesh points: lmk_face_idx, lmk_b_coords, landmark_indices)"
        )
    L = int(tri.shape[0])
    if landmark_indices is None:
        landmark_indices = getattr(head, "assets", None) and head.assets.meta.get("embedding_landmark_indices")
    if landmark_indices is None:
        if L in (468, 478):
            return np.arange(L, dtype=np.int64)
        raise AssetError(
            f"the landmark embedding of head {head.name!r} has {L} points but does not say which "
            "MediaPipe points they are; add a 'landmark_indices' array to the embedding file"
        )
    idx = np.asarray(landmark_indices, dtype=np.int64).reshape(-1)
    if len(idx) != L:
        raise AssetError(f"landmark_indices has {len(idx)} entries for {L} embedded landmarks")
    if idx.min() < 0 or idx.max() >= 478:
        raise AssetError("landmark_indices must be MediaPipe Face Mesh indices in 0..477")
    return idx


def _landmarks(head: Any, vertices: Any, mp_idx: np.ndarray) -> np.ndarray:
    lm = head.landmarks_from_vertices(vertices)
    if lm is None:
        if head.num_vertices < 468:
            raise AssetError(f"head {head.name!r} has neither landmarks nor MediaPipe vertices")
        return vertices[:, mp_idx].detach().cpu().double().numpy()
    lm = lm.detach().cpu().double().numpy()
    return lm if lm.shape[1] == len(mp_idx) and getattr(head, "landmark_tri", None) is not None else lm[:, mp_idx]


def fit_au_basis(
    flame_head: Any,
    au_head: Any = None,
    *,
    landmark_indices: Optional[Sequence[int]] = None,
    ridge: float = 1e-4,
    fit_jaw: bool = True,
) -> FlameAUBasis:
    """Fit FLAME-space directions of the open head's AUs through a MediaPipe landmark embedding.

    Args:
        flame_head: a FLAME :class:`~flame_transit.head.Head` loaded with a MediaPipe landmark
            embedding.
        au_head: the AU head to transfer from (default: the bundled open head).
        landmark_indices: MediaPipe index of each embedded point (default: from the embedding).
        ridge: Tikhonov weight, relative to the mean squared column norm of the basis.
        fit_jaw: also let a jaw (X) rotation explain part of each AU.

    Returns:
        :class:`FlameAUBasis`; ``residual`` says how well each AU was reproduced.

    Raises:
        AssetError: the FLAME head has no usable embedding.
    """
    import torch

    from ..head import load_head
    from ..head.open_head import JAW_RAD_PER_AU26
    from .au_space import AU_NAMES, au_to_head_matrix

    if au_head is None:
        au_head = load_head()
    if getattr(flame_head, "landmark_tri", None) is None and landmark_indices is None:
        from ..head.correspondence import ensure_mediapipe_landmarks

        ensure_mediapipe_landmarks(flame_head)  # automatic, cached per model
    if not au_head.is_au_head:
        raise InputError(f"au_head {au_head.name!r} has no action-unit expression coordinates")
    mp_idx = embedding_mediapipe_indices(flame_head, landmark_indices)
    if len(mp_idx) < 10:
        raise AssetError(f"only {len(mp_idx)} embedded landmarks; the AU fit needs at least 10")
    if ridge < 0:
        raise InputError(f"ridge must be >= 0, got {ridge}")
    L = len(mp_idx)
    # work in float64: AU displacements are millimetres on a head of decimetres
    from ..head import Head

    flame_name = flame_head.name
    flame_head = Head(flame_head.assets, dtype=torch.float64)
    au_head = Head(au_head.assets, dtype=torch.float64)

    with torch.no_grad():
        # open head: neutral, one AU at a time, jaw drop
        Ea = au_head.num_expression
        ea = torch.cat([torch.zeros(1, Ea), torch.eye(Ea)], dim=0).double()
        pose = torch.zeros(Ea + 2, 15, dtype=torch.float64)
        pose[-1, 6] = JAW_RAD_PER_AU26
        ea = torch.cat([ea, torch.zeros(1, Ea, dtype=torch.float64)], dim=0)
        va = au_head(expression=ea, pose=pose).vertices
        lm_a = _landmarks(au_head, va, mp_idx)  # (Ea + 2, L, 3)
        neutral_a = lm_a[0]
        d_au_head = lm_a[1:-1] - neutral_a  # (Ea, L, 3)
        d_jaw_a = lm_a[-1] - neutral_a

        Ef = flame_head.num_expression
        ef = torch.cat([torch.zeros(1, Ef), torch.eye(Ef)], dim=0).double()
        vf = flame_head(expression=ef).vertices
        lm_f = _landmarks(flame_head, vf, mp_idx)
        neutral_f = lm_f[0]
        B = (lm_f[1:] - neutral_f).reshape(Ef, L * 3).T  # (3L, Ef)
        eps = 1e-4
        pj = torch.zeros(2, 15, dtype=torch.float64)
        pj[1, 6] = eps
        lm_j = _landmarks(flame_head, flame_head(pose=pj).vertices, mp_idx)
        jac_jaw = ((lm_j[1] - lm_j[0]) / eps).reshape(L * 3, 1)
        pj26 = torch.zeros(1, 15, dtype=torch.float64)
        pj26[0, 6] = JAW_RAD_PER_AU26
        lm_j26 = _landmarks(flame_head, flame_head(pose=pj26).vertices, mp_idx)[0]

    s, R, _ = umeyama(neutral_a, neutral_f)
    # AU displacements in the sample AU space (AU_NAMES), mapped into FLAME's frame
    to_head = au_to_head_matrix(au_head.expression_names)  # (Ea, A)
    d_au = np.einsum("ea,elc->alc", to_head, d_au_head)  # (A, L, 3)
    T = (s * np.einsum("ij,alj->ali", R, d_au)).reshape(len(AU_NAMES), L * 3).T  # (3L, A)
    T26 = (s * d_jaw_a @ R.T).reshape(L * 3) - (lm_j26 - neutral_f).reshape(L * 3)

    X = np.concatenate([B, jac_jaw], axis=1) if fit_jaw else B
    lam = ridge * float((X**2).sum() / max(X.shape[1], 1))
    gram = X.T @ X + lam * np.eye(X.shape[1])
    coef = np.linalg.solve(gram, X.T @ T)  # (Ef [+1], A)
    fit = X @ coef
    norm = np.linalg.norm(T, axis=0)
    residual = np.linalg.norm(fit - T, axis=0) / np.maximum(norm, 1e-12)
    residual[norm < 1e-12] = 0.0
    jaw_matrix = np.zeros((3, len(AU_NAMES)))
    if fit_jaw:
        jaw_matrix[0] = coef[-1]
        coef = coef[:-1]
    lam_b = ridge * float((B**2).sum() / max(B.shape[1], 1))
    c26 = np.linalg.solve(B.T @ B + lam_b * np.eye(Ef), B.T @ T26)

    return FlameAUBasis(
        head_name=flame_name,
        au_names=AU_NAMES,
        expression_matrix=coef,
        jaw_matrix=jaw_matrix,
        jaw_per_au26=np.array([JAW_RAD_PER_AU26, 0.0, 0.0]),
        au26_expression=c26,
        residual=residual,
        scale=s,
        rotation=R,
        num_landmarks=L,
        meta={"ridge": ridge, "fit_jaw": fit_jaw, "au_head": au_head.name},
    )


_BASES: Dict[str, FlameAUBasis] = {}


def au_basis_for(head: Any, *, cache: bool = True) -> FlameAUBasis:
    """The AU -> FLAME map of ``head``, fitted once per model and kept in the per-user cache.

    The head gets its MediaPipe landmarks first when it has none
    (:func:`~flame_transit.head.correspondence.ensure_mediapipe_landmarks`). The cache key is a
    content hash of the model (template, triangles, expression basis, joints, skinning), of the
    landmark embedding and of the bundled open head (its AU fields may change between versions).
    """
    import hashlib

    from ..head import load_head
    from ..head.correspondence import ensure_mediapipe_landmarks, model_digest
    from ..io_utils import user_cache_dir

    ensure_mediapipe_landmarks(head)
    au_head = load_head()
    h = hashlib.sha256()
    h.update(model_digest(head.assets, "exprdirs", "j_regressor", "lbs_weights", "posedirs").encode())
    h.update(model_digest(au_head.assets, "exprdirs", "j_regressor", "lbs_weights").encode())
    for arr in (head.landmark_tri, head.landmark_bary):
        h.update(np.ascontiguousarray(arr.detach().cpu().double().numpy()).tobytes())
    key = h.hexdigest()[:16]
    if key in _BASES:
        return _BASES[key]
    folder = user_cache_dir("heads") if cache else None
    path = None if folder is None else folder / f"{key}_au_basis.npz"
    basis = None
    if path is not None and path.is_file():
        try:
            basis = FlameAUBasis.load(path)
            basis.check(head)
        except (AssetError, CheckpointMismatchError):
            basis = None
    if basis is None:
        basis = fit_au_basis(head, au_head)
        if path is not None:
            try:
                basis.save(path)
            except OSError:  # a read-only cache: refit next time
                pass
    _BASES[key] = basis
    return basis
