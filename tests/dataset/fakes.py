"""Helpers of the data tests: a stub encoder and a tiny fake CK+ tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np


# -- builder helpers ----------------------------------------------------------------------------


def stub_encode(image: np.ndarray):
    """A deterministic stand-in for the encoder: codes from image statistics; a flat image has
    no face."""
    import torch

    from flame_transit.errors import NoFaceError
    from flame_transit.params import FaceParams

    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.float64:
        raise AssertionError("stub_encode expects (H, W, 3) images")
    if img.std() < 1.0:
        raise NoFaceError("no face found (flat image)")
    means = img.reshape(-1, 3).mean(0) / 255.0
    expression = np.zeros(22)
    expression[:3] = means
    pose = np.zeros(15)
    pose[6] = means[0] * 0.1
    pose[0:3] = means * 0.01
    return FaceParams(shape=torch.zeros(16), expression=torch.tensor(expression), pose=torch.tensor(pose),
                      head_name="open-head-v1")


def warning_encode(image: np.ndarray):
    """:func:`stub_encode` that warns the way the real encoder does on a photo of two people."""
    import warnings

    warnings.warn("2 faces found; using the largest", UserWarning)
    return stub_encode(image)


def astronaut(size: int = 160) -> np.ndarray:
    import skimage.data
    from PIL import Image

    return np.asarray(Image.fromarray(skimage.data.astronaut()).resize((size, size)))


def make_fake_ckplus(root: Path, size: int = 160) -> Path:
    """A tiny CK+ tree of astronaut copies.

    S005/001: 3 frames, label 5 (happy); S010/002: 2 frames, label 7 (surprise), last frame
    tinted; S011/001: 2 frames, label 1 (anger), last frame flat grey (no face);
    S011/002: unlabelled.
    """
    from PIL import Image

    base = astronaut(size)
    seqs = {("S005", "001"): (3, 5.0), ("S010", "002"): (2, 7.0), ("S011", "001"): (2, 1.0), ("S011", "002"): (2, None)}
    for (subj, seq), (n, label) in seqs.items():
        d = root / "cohn-kanade-images" / subj / seq
        d.mkdir(parents=True)
        for k in range(1, n + 1):
            img = base.copy()
            if (subj, seq) == ("S010", "002") and k == n:
                img = (img * np.array([1.0, 0.8, 0.6])).astype(np.uint8)
            if (subj, seq) == ("S011", "001") and k == n:
                img = np.full_like(img, 128)
            Image.fromarray(img).save(d / f"{subj}_{seq}_{k:08d}.png")
        if label is not None:
            e = root / "Emotion" / subj / seq
            e.mkdir(parents=True)
            (e / f"{subj}_{seq}_{n:08d}_emotion.txt").write_text(f"   {label:.7e}\n")
    return root
