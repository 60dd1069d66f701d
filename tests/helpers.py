"""Shared test helpers: FLAME-format model files with FLAME's keys and shapes (random values)."""

from __future__ import annotations

import pickle
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator

import numpy as np
import scipy.sparse

FLAME_V, FLAME_F = 5023, 9976


def make_flame_arrays(seed: int = 0, num_vertices: int = FLAME_V, num_faces: int = FLAME_F,
                      num_shape: int = 300, num_expression: int = 100) -> Dict[str, np.ndarray]:
    """Random arrays in FLAME 2020's layout (a plausible head-sized blob, not a face)."""
    rng = np.random.default_rng(seed)
    v = num_vertices
    v_template = rng.normal(scale=0.05, size=(v, 3))
    faces = rng.integers(0, v, size=(num_faces, 3))
    shapedirs = rng.normal(scale=1e-3, size=(v, 3, num_shape + num_expression))
    posedirs = rng.normal(scale=1e-3, size=(v, 3, 36))
    j_reg = np.abs(rng.normal(size=(5, v))) * (rng.random((5, v)) < 0.01)
    j_reg[:, 0] += 1e-3
    j_reg /= j_reg.sum(axis=1, keepdims=True)
    weights = rng.random((v, 5)) ** 4
    weights /= weights.sum(axis=1, keepdims=True)
    kintree = np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)
    return {
        "v_template": v_template,
        "f": faces.astype(np.uint32),
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": j_reg,
        "weights": weights,
        "kintree_table": kintree,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


@contextmanager
def fake_chumpy() -> Iterator[type]:
    """A stand-in ``chumpy`` package present only inside the block, so objects pickle as
    ``chumpy.ch.Ch`` like the real FLAME files do."""
    pkg = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:  # chumpy keeps the array in the instance dict under 'x'
        def __init__(self, x: np.ndarray) -> None:
            self.x = x
            self._dirty_vars = set()

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    ch.Ch = Ch
    pkg.ch = ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = pkg, ch
    try:
        yield Ch
    finally:
        for k, mod in saved.items():
            if mod is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = mod


def write_flame_pickle(path: Path, arrays: Dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` like FLAME's generic_model.pkl: chumpy arrays for the dense model
    parts, a scipy CSC matrix for the joint regressor, protocol 2."""
    with fake_chumpy() as Ch:
        data = dict(arrays)
        for key in ("v_template", "shapedirs", "posedirs"):
            data[key] = Ch(arrays[key])
        data["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
        data["J"] = Ch(arrays["J_regressor"] @ arrays["v_template"])
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    return Path(path)


def write_flame_npz(path: Path, arrays: Dict[str, np.ndarray]) -> Path:
    np.savez(path, **{k: v for k, v in arrays.items() if isinstance(v, np.ndarray)})
    return Path(path)


# -- a face-shaped FLAME-format model built from the bundled open head ---------------------------
#: open-head triangle sets that become part of the FLAME-format mesh (FLAME's ``f`` holds the
#: eyeballs too); lips/brows only re-label skin triangles
_FACE_FLAME_PARTS = ("eye_left", "eye_right", "iris_left", "iris_right")


def make_face_flame_arrays(seed: int = 0, *, scale: float = 1.12, offset=(0.004, -0.03, 0.012),
                           num_shape: int = 300, num_expression: int = 100, subdivisions: int = 1):
    """A FLAME-format model (FLAME 2020's keys, dimensions and dtypes) whose face is the bundled
    open head, so that the true MediaPipe correspondence and AU motion are known.

    The open head's mesh (skin and eyes; no mouth interior, like FLAME) is subdivided
    ``subdivisions`` times (4x the triangles each), scaled and moved (another size and origin than the open head), and its
    vertex order shuffled. Eye vertices are skinned to the eye joints like FLAME's eyeballs. The
    expression basis mixes the open head's AU fields with smooth random fields through a random
    rotation of the first 50 columns (DECA's), so no column is an AU; columns 50-99 are other
    smooth motion. The pose correctives are the open head's (its jaw corrective).

    Returns:
        ``(arrays, truth)``: the model dict, and ``truth["mediapipe_vertex"] (478,)`` = the
        vertex of MediaPipe landmark ``i`` (-1 for the iris points, not vertices here), ``truth["au_fields"] (V, 3, A)`` the open head's AU
        displacement per unit AU in this model's frame and order, ``truth["au_names"]``.
    """
    import trimesh

    from flame_transit.head import load_head_assets

    rng = np.random.default_rng(seed)
    a = load_head_assets()
    v0 = a.num_vertices
    tris = np.concatenate([a.faces] + [a.face_parts[k] for k in _FACE_FLAME_PARTS if k in a.face_parts])
    attrs = {
        "exprdirs": a.exprdirs.reshape(v0, -1),
        "shapedirs": a.shapedirs.reshape(v0, -1),
        "weights": a.lbs_weights,
        "posedirs": a.posedirs.reshape(v0, -1) if a.posedirs.size else np.zeros((v0, 3 * 36)),
    }
    verts, faces = a.v_template, tris
    eye_first = len(a.faces)  # triangles from here on are the eyes
    for _ in range(subdivisions):
        verts, faces, attrs = trimesh.remesh.subdivide(verts, faces, vertex_attributes=attrs)
        eye_first *= 4
    new = attrs
    v = len(verts)
    weights = new["weights"] / new["weights"].sum(axis=1, keepdims=True)
    # eyeballs: vertices used only by eye triangles follow the eye joints (left = +X = joint 3)
    skin_like = np.zeros(v, dtype=bool)
    eye_tri = np.zeros(len(faces), dtype=bool)
    eye_tri[eye_first:] = True
    skin_like[np.unique(faces[~eye_tri])] = True
    eye_only = np.zeros(v, dtype=bool)
    eye_only[np.unique(faces[eye_tri])] = True
    eye_only &= ~skin_like
    weights[eye_only] = 0.0
    weights[eye_only, np.where(verts[eye_only, 0] > 0, 3, 4)] = 1.0

    au_fields = new["exprdirs"].reshape(v, 3, -1) * scale
    e_au = au_fields.shape[2]

    def smooth_fields(k: int, amplitude: float) -> np.ndarray:
        freq = rng.normal(0.0, 12.0, size=(k, 3, 3))
        phase = rng.uniform(0, 2 * np.pi, size=(k, 3))
        arg = np.einsum("vc,kdc->vdk", verts, freq) + phase.T[None]
        return amplitude * np.cos(arg)  # (V, 3, k)

    # like FLAME, the leading components (DECA's 50) carry the expressions: the AU fields are
    # mixed with smooth random fields among the first 50 columns, the rest are other motion
    lead = min(50, num_expression)
    q1, _ = np.linalg.qr(rng.normal(size=(lead, lead)))
    q2, _ = np.linalg.qr(rng.normal(size=(num_expression - lead,) * 2))
    head_cols = np.concatenate([au_fields, smooth_fields(lead - e_au, 0.002)], axis=2) @ q1
    exprdirs = np.concatenate([head_cols, smooth_fields(num_expression - lead, 0.001) @ q2], axis=2)
    ident = new["shapedirs"].reshape(v, 3, -1) * scale
    shapedirs = np.concatenate([ident, smooth_fields(num_shape - ident.shape[2], 0.0005)], axis=2)

    v_template = verts * scale + np.asarray(offset)
    j_reg = np.zeros((5, v))
    j_reg[:, :v0] = a.j_regressor
    # like FLAME, every vertex is on a triangle: drop the others (the open head's iris points and
    # mouth cavity), moving their joint-regressor weight onto the nearest kept vertex
    from scipy.spatial import cKDTree

    keep = np.zeros(v, dtype=bool)
    keep[faces.reshape(-1)] = True
    kept = np.nonzero(keep)[0]
    _, nearest = cKDTree(verts[kept]).query(verts[~keep])
    np.add.at(j_reg.T, kept[nearest], j_reg[:, ~keep].T)
    v_template, j_reg, weights = v_template[kept], j_reg[:, kept], weights[kept]
    au_fields, exprdirs, shapedirs = au_fields[kept], exprdirs[kept], shapedirs[kept]
    posedirs = new["posedirs"].reshape(-1, 3, 36)[kept] * scale  # the open head's pose correctives (jaw)
    old_to_new = np.full(v, -1)
    old_to_new[kept] = np.arange(len(kept))
    faces = old_to_new[faces]
    v = len(kept)
    perm = rng.permutation(v)  # new vertex k = kept vertex perm[k]
    inv = np.argsort(perm)
    arrays = {
        "v_template": v_template[perm],
        "f": inv[faces].astype(np.uint32),
        "shapedirs": np.concatenate([shapedirs, exprdirs], axis=2)[perm],
        "posedirs": posedirs[perm],
        "J_regressor": j_reg[:, perm],
        "weights": weights[perm],
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    mp = old_to_new[:478]
    truth = {
        "mediapipe_vertex": np.where(mp >= 0, inv[np.maximum(mp, 0)], -1),  # -1: not a vertex (irises)
        "au_fields": au_fields[perm],
        "au_names": tuple(a.expression_names),
        "scale": scale,
    }
    return arrays, truth
