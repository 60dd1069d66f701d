"""Small fixtures for the transit tests: a tiny AU-coordinate head and random data."""

from __future__ import annotations

import numpy as np

AU_NAMES = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU12", "AU15", "AU25", "AU12L", "AU12R")


def tiny_head(num_vertices: int = 60, seed: int = 0, name: str = "tiny-au-head", posedirs: bool = True):
    """A FLAME-layout head with AU-named expression coordinates (random smooth-ish geometry)."""
    from flame_transit.head import Head, HeadAssets

    rng = np.random.default_rng(seed)
    v = num_vertices
    template = rng.normal(scale=0.05, size=(v, 3))
    faces = rng.integers(0, v, size=(2 * v, 3))
    shapedirs = rng.normal(scale=1e-3, size=(v, 3, 4))
    exprdirs = rng.normal(scale=3e-3, size=(v, 3, len(AU_NAMES)))
    pd = rng.normal(scale=1e-3, size=(v, 3, 36)) if posedirs else np.zeros((v, 3, 0))
    j_reg = np.abs(rng.normal(size=(5, v)))
    j_reg /= j_reg.sum(axis=1, keepdims=True)
    weights = rng.random((v, 5)) ** 3
    weights /= weights.sum(axis=1, keepdims=True)
    assets = HeadAssets(
        name=name, kind="open", v_template=template, faces=faces, shapedirs=shapedirs,
        exprdirs=exprdirs, posedirs=pd, j_regressor=j_reg, lbs_weights=weights,
        expression_names=AU_NAMES,
    )
    return Head(assets)
