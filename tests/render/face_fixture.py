"""A MediaPipe-topology face fitted to ``skimage.data.astronaut()`` for renderer tests.

The landmarks were computed once with ``mediapipe.solutions.face_mesh`` (refine_landmarks) and
are stored in ``data/astronaut_mediapipe.npz`` (run this file to regenerate). Faces come from
MediaPipe's published tessellation (edge triples in source order). Expressions are crude
landmark displacement fields (jaw rotation, lip-corner pull) -- enough to exercise the renderer
before/without the bundled open head.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

DATA = Path(__file__).with_name("data") / "astronaut_mediapipe.npz"
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
LOWER_INNER = (324, 318, 402, 317, 14, 87, 178, 88, 95)
UPPER_INNER = (191, 80, 81, 82, 13, 312, 311, 310, 415)


def tessellation() -> np.ndarray:
    import mediapipe.python.solutions.face_mesh_connections as m

    src = inspect.getsource(m)
    body = src[src.index("FACEMESH_TESSELATION"):]
    body = body[: body.index("])")]
    pairs = np.array([(int(a), int(b)) for a, b in re.findall(r"\((\d+),\s*(\d+)\)", body)])
    return pairs.reshape(-1, 3, 2)[:, :, 0].astype(np.int64)


def _generate() -> None:  # pragma: no cover - run by hand
    import mediapipe as mp
    import skimage.data

    img = skimage.data.astronaut()
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as fm:
        res = fm.process(img)
    lm = np.array([(p.x, p.y, p.z) for p in res.multi_face_landmarks[0].landmark], dtype=np.float64)
    np.savez_compressed(DATA, landmarks=lm, faces=tessellation(), image_size=np.array(img.shape[:2]))


def load() -> Dict[str, np.ndarray]:
    with np.load(DATA) as z:
        return {k: z[k] for k in z.files}


def astronaut_face(face_width_m: float = 0.14) -> Tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
    """``(vertices (478, 3) metres, faces (852, 3), params dict, photo)``; ``params`` has
    ``cam``, ``crop_to_image``, ``image_size`` and ``vertices_2d`` like the encoder's."""
    import skimage.data
    from flame_transit.params import crop_to_image_matrix

    d = load()
    img = skimage.data.astronaut()
    h, w = img.shape[:2]
    lm = d["landmarks"]
    px = np.stack([lm[:, 0] * w, lm[:, 1] * h, lm[:, 2] * w], axis=1)
    k = np.linalg.norm(px[454, :2] - px[234, :2]) / face_width_m  # pixels per metre
    centre = px[:, :2].mean(axis=0)
    verts = np.stack([(px[:, 0] - centre[0]) / k, -(px[:, 1] - centre[1]) / k, -px[:, 2] / k], axis=1)
    side = 2.0 * np.ptp(px[:, 1])
    a = crop_to_image_matrix(tuple(centre), side)
    s = 2.0 * k / side
    params = dict(cam=np.array([s, 0.0, 0.0]), crop_to_image=a, image_size=(h, w), vertices_2d=px[:, :2].copy())
    return verts, d["faces"], params, img


def expression(verts: np.ndarray, jaw: float = 0.0, smile: float = 0.0, lids: float = 0.0) -> np.ndarray:
    """Crude expression on the landmark mesh: ``jaw`` radians of jaw opening, ``smile`` 0..1
    lip-corner pull (lips part a little), ``lids`` 0..1 eye closing."""
    v = verts.copy()
    stom = 0.5 * (verts[13] + verts[14])
    if smile:
        for c, sx in ((61, -1.0), (291, 1.0)):
            d2 = np.sum((verts[:, :2] - verts[c, :2]) ** 2, axis=1)
            g = np.exp(-d2 / (2 * 0.016 ** 2))
            v += smile * g[:, None] * np.array([sx * 0.007, 0.006, -0.003])
        up = np.zeros(len(v))
        up[list(UPPER_INNER)] = 1.0
        lo = np.zeros(len(v))
        lo[list(LOWER_INNER)] = 1.0
        near = np.exp(-np.sum((verts[:, :2] - stom[:2]) ** 2, axis=1) / (2 * 0.02 ** 2))
        v[:, 1] += smile * (0.0035 * up - 0.0035 * lo)
        v[:, 1] += smile * 0.0015 * near * (verts[:, 1] > stom[1]) - smile * 0.001 * near * (verts[:, 1] < stom[1])
    if jaw:
        wgt = np.clip((stom[1] - verts[:, 1]) / 0.012 + 0.35, 0, 1) * np.clip(1.3 - np.abs(verts[:, 0]) / 0.06, 0, 1)
        wgt[list(UPPER_INNER)] = 0.0
        wgt[list(LOWER_INNER)] = 1.0
        wgt[[78, 308]] = 0.5
        pivot = np.array([0.0, stom[1] + 0.02, stom[2] - 0.09])
        c, s = np.cos(-jaw), np.sin(-jaw)
        rot = np.array([[1, 0, 0], [0, c, s], [0, -s, c]])  # opens downwards
        moved = (v - pivot) @ rot.T + pivot
        v = v + wgt[:, None] * (moved - v)
    if lids:
        eyes = (((246, 161, 160, 159, 158, 157, 173), (33, 7, 163, 144, 145, 153, 154, 155, 133)),
                ((466, 388, 387, 386, 385, 384, 398), (263, 249, 390, 373, 374, 380, 381, 382, 362)))
        for upper, lower in eyes:
            lo = verts[list(lower)]
            order = np.argsort(lo[:, 0])
            for i in upper:
                target = np.interp(verts[i, 0], lo[order, 0], lo[order, 1]) + 0.0004
                v[i, 1] += lids * (target - verts[i, 1])
    return v


if __name__ == "__main__":  # pragma: no cover
    _generate()
    print("wrote", DATA)
