"""Loading head models: a user's FLAME file or the bundled open head.

FLAME's official pickles (2020 ``generic_model.pkl``, 2023, 2023 Open) were written by Python 2
with chumpy arrays and a scipy sparse joint regressor. We read them **without chumpy**: a
restricted unpickler maps chumpy's classes to a small stand-in whose state is converted to
numpy, admits numpy/scipy reconstruction helpers and refuses everything else (a pickle is code;
we load only what a model file needs).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

from ..errors import AssetError
from ..io_utils import user_path
from .model import FLAME_PARENTS, Head, HeadAssets

__all__ = ["load_head", "load_head_assets", "read_flame_arrays", "OPEN_HEAD_PATH", "FLAME_ENV_VAR"]

PathLike = Union[str, os.PathLike]

#: the bundled open head, built by ``tools/build_open_head.py``
OPEN_HEAD_PATH = Path(__file__).with_name("data") / "open_head.npz"
#: environment variable naming a default FLAME model file
FLAME_ENV_VAR = "FLAME_TRANSIT_FLAME_MODEL"
#: FLAME files keep shape and expression in one basis: 300 shape then 100 expression columns
FLAME_NUM_SHAPE = 300

_REQUIRED = ("v_template", "f", "shapedirs", "J_regressor", "weights")


class _ChumpyStandIn:
    """Receives the pickled state of a chumpy object; only its array survives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def to_numpy(self) -> np.ndarray:
        state = self.state
        if isinstance(state, dict):
            for key in ("x", "_x", "a"):
                if key in state and not isinstance(state[key], _ChumpyStandIn):
                    return np.asarray(state[key])
                if key in state and isinstance(state[key], _ChumpyStandIn):
                    return state[key].to_numpy()
        if isinstance(state, tuple) and state and isinstance(state[-1], dict):
            self.state = state[-1]
            return self.to_numpy()
        raise AssetError(
            "this FLAME pickle holds a chumpy expression that is not a plain array "
            f"(state keys: {sorted(state) if isinstance(state, dict) else type(state).__name__}); "
            "re-save it as .npz with numpy arrays"
        )


_ALLOWED_MODULE_PREFIXES = ("numpy", "scipy.sparse", "copy_reg", "copyreg", "collections", "_codecs")
_ALLOWED_BUILTINS = {"object", "set", "frozenset", "slice", "complex", "tuple", "list", "dict"}


class _FlameUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if module in ("__builtin__", "builtins"):
            if name in _ALLOWED_BUILTINS:
                return super().find_class("builtins", name)
        elif module.startswith(_ALLOWED_MODULE_PREFIXES):
            return super().find_class(module, name)
        raise AssetError(
            f"refusing to load {module}.{name} from a model pickle: FLAME files contain only "
            "numpy, scipy.sparse and chumpy objects"
        )


def _to_numpy(value: Any) -> Any:
    if isinstance(value, _ChumpyStandIn):
        return value.to_numpy()
    if hasattr(value, "toarray") and hasattr(value, "tocsr"):  # scipy sparse
        return np.asarray(value.toarray())
    return value


def read_flame_arrays(path: PathLike) -> Dict[str, Any]:
    """Read a FLAME model file (``.pkl`` or ``.npz``) into a dict of numpy arrays.

    Works without chumpy installed. Raises :class:`AssetError` naming the file and the problem.
    """
    path = user_path(path)
    if not path.exists():
        raise AssetError(f"FLAME model file not found: {path}")
    if path.is_dir():
        raise AssetError(f"expected a FLAME model file, got a directory: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"PK":  # npz is a zip archive
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise AssetError(f"{path} is not a readable .npz model file: {exc}") from exc
    else:
        try:
            data = _FlameUnpickler(io.BytesIO(raw), encoding="latin1").load()
        except AssetError as exc:
            raise AssetError(f"{path}: {exc}") from exc
        except Exception as exc:  # truncated or foreign pickles raise many types
            raise AssetError(
                f"{path} is not a FLAME model pickle (could not unpickle: {type(exc).__name__}: {exc}); "
                "download generic_model.pkl / flame2023*.pkl from the FLAME website"
            ) from exc
        if not isinstance(data, dict):
            raise AssetError(f"{path} holds a {type(data).__name__}, expected a dict of FLAME arrays")
        data = {k: _to_numpy(v) for k, v in data.items()}
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise AssetError(
            f"{path} is missing FLAME arrays {missing} (has {sorted(data)}); a FLAME model needs "
            f"{list(_REQUIRED)}"
        )
    return data


def _model_id(prefix: str, v_template: np.ndarray, faces: np.ndarray, shapedirs: np.ndarray) -> str:
    digest = hashlib.sha1()
    for arr in (v_template, faces, shapedirs):
        digest.update(np.ascontiguousarray(arr, dtype=np.float64 if arr.dtype.kind == "f" else np.int64).tobytes())
    return f"{prefix}-{digest.hexdigest()[:12]}"


def _flame_assets(data: Dict[str, Any], path: Path, num_shape: Optional[int]) -> HeadAssets:
    try:
        v_template = np.asarray(data["v_template"], dtype=np.float64)
        faces = np.asarray(data["f"], dtype=np.int64)
        dirs = np.asarray(data["shapedirs"], dtype=np.float64)
        j_reg = np.asarray(_to_numpy(data["J_regressor"]), dtype=np.float64)
        weights = np.asarray(data["weights"], dtype=np.float64)
        posedirs = np.asarray(data.get("posedirs", np.zeros(v_template.shape + (0,))), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AssetError(f"{path}: FLAME arrays have unexpected types: {exc}") from exc
    if v_template.ndim != 2 or v_template.shape[1:] != (3,):
        raise AssetError(f"{path}: v_template has shape {v_template.shape}, expected (V, 3)")
    if faces.ndim != 2 or faces.shape[1:] != (3,) or (faces.size and not 0 <= faces.min() <= faces.max() < len(v_template)):
        raise AssetError(f"{path}: f must be (F, 3) triangles of vertex indices 0..{len(v_template) - 1}, got "
                         f"shape {faces.shape}" + (f", indices {faces.min()}..{faces.max()}" if faces.size else ""))
    if dirs.ndim != 3 or dirs.shape[:2] != v_template.shape:
        raise AssetError(f"{path}: shapedirs has shape {dirs.shape}, expected ({len(v_template)}, 3, N)")
    for key, arr in (("v_template", v_template), ("shapedirs", dirs), ("J_regressor", j_reg),
                     ("weights", weights), ("posedirs", posedirs)):
        if not np.isfinite(arr).all():
            raise AssetError(f"{path}: {key} contains NaN or infinite values; the file is damaged")
    if "exprdirs" in data:  # our own npz layout keeps the two bases apart
        shapedirs, exprdirs = dirs, np.asarray(data["exprdirs"], dtype=np.float64)
    else:
        ns = num_shape if num_shape is not None else (FLAME_NUM_SHAPE if dirs.shape[2] > FLAME_NUM_SHAPE else dirs.shape[2])
        if not 0 < ns <= dirs.shape[2]:
            raise AssetError(f"{path}: num_shape={ns} but shapedirs has {dirs.shape[2]} columns")
        shapedirs, exprdirs = dirs[:, :, :ns], dirs[:, :, ns:]
    parents = FLAME_PARENTS.copy()
    if "kintree_table" in data:
        kt = np.asarray(data["kintree_table"]).astype(np.int64)
        parents = kt[0].copy()
        parents[0] = -1
    names = tuple(str(n) for n in data["expression_names"]) if "expression_names" in data else ()
    meta: Dict[str, object] = {"source": str(path)}
    if "meta_json" in data:
        meta.update(json.loads(str(data["meta_json"])))
    landmark_indices = np.asarray(data["landmark_indices"], dtype=np.int64) if "landmark_indices" in data else None
    parts = {k[len("face_part_"):]: np.asarray(v, dtype=np.int64) for k, v in data.items() if k.startswith("face_part_")}
    kind = str(meta.get("kind", "flame"))
    name = str(meta["name"]) if "name" in meta else _model_id("flame", v_template, faces, dirs)
    file_faces = None
    if not parts and weights.shape == (len(v_template), 5) and len(faces):
        eye_parts = eyeball_parts(v_template, faces, weights, j_reg)
        if eye_parts:  # FLAME's f holds the eyeballs: skin = the rest, exports keep f as it is
            file_faces, parts = faces, eye_parts
            eye = np.concatenate(list(eye_parts.values()))
            faces = faces[~_rows_in(faces, eye)]
    try:
        return HeadAssets(
            name=name,
            kind=kind,
            v_template=v_template,
            faces=faces,
            shapedirs=shapedirs,
            exprdirs=exprdirs,
            posedirs=posedirs,
            j_regressor=j_reg,
            lbs_weights=weights,
            parents=parents,
            expression_names=names,
            shape_names=tuple(str(n) for n in data["shape_names"]) if "shape_names" in data else (),
            landmark_indices=landmark_indices,
            face_parts=parts,
            file_faces=file_faces,
            meta=meta,
        )
    except Exception as exc:
        raise AssetError(f"{path}: {exc}") from exc


#: FLAME's irises: eyeball triangles within this angle of the eye's forward axis (+Z) as seen
#: from the eye joint (FLAME: eyeball radius ~12 mm, iris radius ~6 mm)
IRIS_HALF_ANGLE_DEG = 28.0


def _rows_in(rows: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Which rows of ``rows (N, 3)`` appear in ``subset (M, 3)``."""
    view = lambda a: np.ascontiguousarray(a, dtype=np.int64).view([("", np.int64)] * 3).reshape(-1)
    return np.isin(view(rows), view(subset))


def eyeball_parts(v_template: np.ndarray, faces: np.ndarray, weights: np.ndarray,
                  j_regressor: np.ndarray) -> Dict[str, np.ndarray]:
    """Eye triangles of a FLAME-layout mesh: those whose three vertices are skinned (> 0.5) to
    one eye joint (3 = left, 4 = right), split into ``eye_*`` (sclera) and ``iris_*`` (within
    :data:`IRIS_HALF_ANGLE_DEG` of +Z seen from the eye joint). Empty when there are none.

    Example:
        >>> eyeball_parts(np.zeros((3, 3)), np.array([[0, 1, 2]]), np.eye(5)[[1, 1, 1]], np.full((5, 3), 1 / 3))
        {}
    """
    out: Dict[str, np.ndarray] = {}
    joints = j_regressor @ v_template
    cos_iris = np.cos(np.radians(IRIS_HALF_ANGLE_DEG))
    for j, side in ((3, "left"), (4, "right")):
        on = weights[:, j] > 0.5
        tri = faces[on[faces].all(axis=1)]
        if len(tri) < 8:
            continue
        d = v_template[tri].mean(axis=1) - joints[j]
        front = d[:, 2] / np.maximum(np.linalg.norm(d, axis=1), 1e-12) > cos_iris
        out[f"eye_{side}"], out[f"iris_{side}"] = tri[~front], tri[front]
    return out if all(len(t) for t in out.values()) else {}


def _attach_embedding(assets: HeadAssets, embedding: PathLike) -> None:
    """Attach a barycentric landmark embedding (``lmk_face_idx``, ``lmk_b_coords``)."""
    epath = user_path(embedding)
    if not epath.exists():
        raise AssetError(f"landmark embedding file not found: {epath}")
    if epath.suffix == ".npz":
        with np.load(epath, allow_pickle=False) as npz:
            emb = {k: npz[k] for k in npz.files}
    else:
        try:
            emb = _FlameUnpickler(io.BytesIO(epath.read_bytes()), encoding="latin1").load()
        except Exception as exc:
            raise AssetError(f"{epath} is not a landmark embedding pickle: {exc}") from exc
    if not isinstance(emb, dict) or "lmk_face_idx" not in emb or "lmk_b_coords" not in emb:
        raise AssetError(f"{epath} must hold 'lmk_face_idx' (L,) and 'lmk_b_coords' (L, 3)")
    faces_idx = np.asarray(_to_numpy(emb["lmk_face_idx"]), dtype=np.int64).reshape(-1)
    bary = np.asarray(_to_numpy(emb["lmk_b_coords"]), dtype=np.float64).reshape(-1, 3)
    n_faces = len(assets.embedding_faces)
    if len(faces_idx) != len(bary) or faces_idx.max(initial=0) >= n_faces or faces_idx.min(initial=0) < 0:
        raise AssetError(f"{epath}: landmark embedding does not fit this model ({n_faces} faces)")
    assets.landmark_faces, assets.landmark_bary = faces_idx, bary
    if "landmark_indices" in emb:  # which MediaPipe landmark each embedded point is
        assets.meta["embedding_landmark_indices"] = np.asarray(emb["landmark_indices"], dtype=np.int64)
    assets.meta["landmark_embedding"] = str(epath)


def load_head_assets(
    path: Optional[PathLike] = None,
    *,
    num_shape: Optional[int] = None,
    landmark_embedding: Optional[PathLike] = None,
) -> HeadAssets:
    """Arrays of the bundled open head (``path=None``) or of a FLAME model file."""
    if path is None:
        if not OPEN_HEAD_PATH.exists():
            raise AssetError(
                f"the bundled open head is missing ({OPEN_HEAD_PATH}); rebuild it with "
                "`python tools/build_open_head.py` or reinstall flame_transit"
            )
        path = OPEN_HEAD_PATH
    path = user_path(path)
    assets = _flame_assets(read_flame_arrays(path), path, num_shape)
    if landmark_embedding is not None:
        _attach_embedding(assets, landmark_embedding)
    return assets


def load_head(
    path: Optional[PathLike] = None,
    *,
    num_shape: Optional[int] = None,
    landmark_embedding: Optional[PathLike] = None,
    dtype: Any = None,
    device: Any = None,
) -> Head:
    """Load a head model.

    Args:
        path: ``None`` for the bundled open head; ``"flame"`` for the FLAME file named by the
            ``FLAME_TRANSIT_FLAME_MODEL`` environment variable; otherwise a FLAME model file
            (2020 ``generic_model.pkl``, 2023 / 2023 Open ``.pkl``) or an ``.npz`` with the
            same keys. An existing :class:`Head` is returned unchanged.
        num_shape: how many of the file's ``shapedirs`` columns are identity (FLAME: 300).
        landmark_embedding: optional barycentric embedding file (``lmk_face_idx``,
            ``lmk_b_coords``), e.g. FLAME's static 68/51-point or MediaPipe embedding.
        dtype: ``torch.float32`` (default) or ``torch.float64``.
        device: torch device for the buffers.

    Example:
        >>> head = load_head()
        >>> head.kind, head.num_vertices >= 468
        ('open', True)
    """
    import torch

    if isinstance(path, Head):
        return path
    if isinstance(path, str) and path.lower() == "flame":
        env = os.environ.get(FLAME_ENV_VAR)
        if not env:
            raise AssetError(
                f"head='flame' needs the environment variable {FLAME_ENV_VAR} to name your FLAME "
                "model file (see assets/README.md for where to get it)"
            )
        path = env
    assets = load_head_assets(path, num_shape=num_shape, landmark_embedding=landmark_embedding)
    head = Head(assets, dtype=dtype or torch.float32)
    return head.to(device) if device is not None else head
