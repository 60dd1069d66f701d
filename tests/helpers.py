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
