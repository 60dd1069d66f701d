#!/usr/bin/env python
"""Build the bundled open head ``flame_transit/head/data/open_head.npz``.

Inputs anyone can reproduce: MediaPipe Face Mesh (PyPI ``mediapipe`` 0.10.21: its model and its
published tessellation) run on ``skimage.data.astronaut()`` (public domain) and on its mirror
image. Everything else (action-unit fields, identity directions, joints, skinning, mouth
cavity) is authored here in code. See :mod:`flame_transit.head.open_head` for the design.

Usage::

    python tools/build_open_head.py [--out PATH] [--check]
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment, nnls
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flame_transit.head import open_head as oh  # noqa: E402

BUILDER_VERSION = 1
W = oh.FACE_WIDTH_M
NL = oh.NUM_LANDMARKS
R = oh.REGIONS


# ----------------------------------------------------------------------------------------------
# topology
# ----------------------------------------------------------------------------------------------
def read_tessellation() -> np.ndarray:
    """Triangles (852, 3) from FACEMESH_TESSELATION's edges in their source order."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    tree = ast.parse(inspect.getsource(fmc))
    edges = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "FACEMESH_TESSELATION" for t in node.targets
        ):
            call = node.value  # frozenset([...])
            edges = [tuple(ast.literal_eval(e)) for e in call.args[0].elts]
    if edges is None or len(edges) % 3:
        raise RuntimeError("could not read FACEMESH_TESSELATION from mediapipe's source")
    assert set(edges) == set(fmc.FACEMESH_TESSELATION)
    tris = []
    for k in range(0, len(edges), 3):
        (a, b), (b2, c), (c2, a2) = edges[k : k + 3]
        if not (b == b2 and c == c2 and a == a2):
            raise RuntimeError(f"edges {k}..{k + 2} do not form a triangle")
        tris.append((a, b, c))
    return np.asarray(tris, dtype=np.int64)


def edge_graph(faces: np.ndarray, verts: np.ndarray, n: int):
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    length = np.linalg.norm(verts[e[:, 0]] - verts[e[:, 1]], axis=1)
    g = coo_matrix((length, (e[:, 0], e[:, 1])), shape=(n, n))
    return (g + g.T).tocsr(), e


def face_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


# ----------------------------------------------------------------------------------------------
# landmarks -> symmetric template in the head frame
# ----------------------------------------------------------------------------------------------
def detect(image: np.ndarray) -> np.ndarray:
    """MediaPipe Face Mesh (478, 3) in pixels (x right, y down, z on the x scale, towards -z)."""
    import mediapipe as mp

    h, w = image.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, refine_landmarks=True, max_num_faces=1, min_detection_confidence=0.5
    ) as fm:
        res = fm.process(np.ascontiguousarray(image))
    if res.multi_face_landmarks is None:
        raise RuntimeError("MediaPipe found no face in the input image")
    lm = res.multi_face_landmarks[0].landmark
    return np.array([[p.x * w, p.y * h, p.z * w] for p in lm], dtype=np.float64)


def to_head_frame(px: np.ndarray) -> np.ndarray:
    return px * np.array([1.0, -1.0, -1.0])


def procrustes(src: np.ndarray, dst: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Rotation R and translation t with R @ src + t ~ dst (no scale)."""
    ms, md = src.mean(0), dst.mean(0)
    u, _, vt = np.linalg.svd((src - ms).T @ (dst - md))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1, 1, d]) @ u.T
    return rot, md - rot @ ms


def mirror_pairing(p: np.ndarray) -> np.ndarray:
    """Involution m with reflect(p)[m] ~ p, found by reflecting in x and matching."""
    q = p - p.mean(0)
    m = np.arange(len(p))
    for _ in range(5):
        refl = q * np.array([-1.0, 1.0, 1.0])
        # best reflection plane: rigidly align the reflected set (paired) onto the original
        rot, t = procrustes(refl[m], q) if _ else (np.eye(3), np.zeros(3))
        cand = refl @ rot.T + t
        cost = np.linalg.norm(q[:, None, :2] - cand[None, :, :2], axis=2)
        _, m = linear_sum_assignment(cost)
    # make it an involution: keep pairs that agree both ways, fix the rest to nearest agreeing
    bad = np.nonzero(m[m] != np.arange(len(m)))[0]
    if len(bad):
        raise RuntimeError(f"mirror pairing is not an involution at {bad[:10]}")
    return m


def symmetrise(p: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Average a landmark set with its aligned mirror copy; return it with x=0 the symmetry plane."""
    q = p - p.mean(0)
    refl = (q * np.array([-1.0, 1.0, 1.0]))[mirror]
    rot, t = procrustes(refl, q)
    avg = 0.5 * (q + refl @ rot.T + t)
    # the average is symmetric about some plane; find it and move it to x = 0
    for _ in range(3):
        refl = (avg * np.array([-1.0, 1.0, 1.0]))[mirror]
        rot, t = procrustes(refl, avg)
        # plane normal = axis that the reflection+rotation flips; use half-rotation trick:
        avg = 0.5 * (avg + refl @ rot.T + t)
    # now orient: x axis along the vector between mirrored pairs
    lat = avg - avg[mirror]
    xs = lat[np.linalg.norm(lat, axis=1) > 1e-9]
    xaxis = np.linalg.svd(xs, full_matrices=False)[2][0]
    if xaxis[0] < 0:
        xaxis = -xaxis
    up = avg[10] - avg[152]
    yaxis = up - xaxis * (up @ xaxis)
    yaxis /= np.linalg.norm(yaxis)
    zaxis = np.cross(xaxis, yaxis)
    rot = np.stack([xaxis, yaxis, zaxis])
    out = avg @ rot.T
    out[:, 0] -= out[:, 0].mean()
    # exact symmetry
    out = 0.5 * (out + (out * np.array([-1.0, 1.0, 1.0]))[mirror])
    return out


def build_landmark_template() -> Tuple[np.ndarray, np.ndarray, dict]:
    import skimage.data

    img = skimage.data.astronaut()
    a = to_head_frame(detect(img))
    b = to_head_frame(detect(np.ascontiguousarray(img[:, ::-1])))
    mirror = mirror_pairing(a)
    # landmark i of the mirror image lies where landmark mirror[i] lies in the original
    b_back = (b * np.array([-1.0, 1.0, 1.0]))[mirror]
    rot, t = procrustes(b_back, a)
    avg = 0.5 * (a + b_back @ rot.T + t)
    sym = symmetrise(avg, mirror)
    scale = W / np.linalg.norm(sym[234] - sym[454])  # metres: face width W
    sym *= scale
    refl = (avg * np.array([-1.0, 1.0, 1.0]))[mirror]
    r2, t2 = procrustes(refl, avg)
    rms = lambda d: float(np.sqrt((d**2).sum(1).mean()) * scale / W)  # noqa: E731
    info = {
        "detector_disagreement_rms_W": rms(a - (b_back @ rot.T + t)),
        "asymmetry_removed_rms_W": 0.5 * rms(avg - (refl @ r2.T + t2)),
    }
    return sym, mirror, info


def place_origin(v: np.ndarray) -> np.ndarray:
    v = v.copy()
    v[:, 0] -= 0.5 * (v[33, 0] + v[263, 0])
    v[:, 1] -= 0.5 * (v[33, 1] + v[263, 1])
    v[:, 2] -= v[1, 2] - 0.10
    return v


# ----------------------------------------------------------------------------------------------
# smooth displacement fields on the mesh
# ----------------------------------------------------------------------------------------------
class Fields:
    """Geodesic-distance based field authoring on a landmark template."""

    def __init__(self, v: np.ndarray, faces: np.ndarray, mirror: np.ndarray):
        self.v = v
        self.mirror = mirror
        graph, self.edges = edge_graph(faces, v[:NL], NL)
        self.geo = shortest_path(graph, directed=False)  # (478, 478), inf for the iris points

    def sym(self, handles: Dict[int, Sequence[float]]) -> Dict[int, np.ndarray]:
        """Handles given on the subject's left (+X, x = lateral outward) -> both sides."""
        out: Dict[int, np.ndarray] = {}
        for i, d in handles.items():
            d = np.asarray(d, dtype=np.float64)
            j = int(self.mirror[i])
            if j == i:
                out[i] = d * np.array([0.0, 1.0, 1.0])
            else:
                side = 1.0 if self.v[i, 0] > 0 else -1.0
                out[i] = d * np.array([side, 1.0, 1.0])
                out[j] = d * np.array([-side, 1.0, 1.0])
        return out

    def field(self, handles: Dict[int, np.ndarray], radius: float, power: float = 2.0) -> np.ndarray:
        """Displacement (478, 3): handle values exactly at handles (inverse-distance blend),
        faded to zero at geodesic distance ``radius`` from the nearest handle."""
        idx = np.array(list(handles), dtype=np.int64)
        val = np.stack([handles[i] for i in idx])
        g = self.geo[idx]  # (H, V)
        dmin = g.min(0)
        t = np.clip(dmin / radius, 0.0, 1.0)
        fade = (1.0 - t * t) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            k = 1.0 / np.maximum(g, 1e-9) ** power
        k[~np.isfinite(k)] = 0.0
        value = (k.T @ val) / np.maximum(k.sum(0), 1e-30)[:, None]
        out = fade[:, None] * value
        out[~np.isfinite(dmin)] = 0.0
        out[idx] = val
        return out

    def au(self, spec: Sequence[Tuple[Dict[int, Sequence[float]], float]]) -> np.ndarray:
        """Sum of symmetric fields; handle values in units of W."""
        total = np.zeros((NL, 3))
        for handles, radius in spec:
            handles = dict(handles)
            corner_cluster(handles)
            total += self.field(self.sym(handles), radius * W)
        return self.symmetrise(total * W)

    def symmetrise(self, d: np.ndarray) -> np.ndarray:
        return 0.5 * (d + (d * np.array([-1.0, 1.0, 1.0]))[self.mirror])


def up(a: float, lat: float = 0.0, fwd: float = 0.0) -> Tuple[float, float, float]:
    """A handle value (lateral-outward, up, forward) given as (up, lateral, forward)."""
    return (lat, a, fwd)


def la(lat: float, a: float = 0.0, fwd: float = 0.0) -> Tuple[float, float, float]:
    """A handle value given as (lateral-outward, up, forward)."""
    return (lat, a, fwd)


#: small vertices around the left commissure: which handle each follows (mirrored by sym())
CORNER_FOLLOW = {292: 291, 306: 291, 307: 375, 325: 324, 407: 409, 408: 409}


def corner_cluster(h: Dict[int, Tuple[float, ...]]) -> None:
    """Let the tiny triangles at the mouth corners move with the corner (no folding)."""
    for i, src in CORNER_FOLLOW.items():
        if src in h and i not in h:
            h[i] = h[src]


def seal_lips(fs: "Fields", d: np.ndarray) -> np.ndarray:
    """Closed lips stay in contact: where a field would push the inner upper lip below the
    inner lower lip, move both to their mean (smoothly), so no AU makes the lips cross."""
    h: Dict[int, np.ndarray] = {}
    for u, l in LIP_PAIRS:
        if d[u, 1] < d[l, 1]:
            m = 0.5 * (d[u] + d[l])
            h[u] = m - d[u]
            h[l] = m - d[l]
    if not h:
        return d
    for i in set(R["lip_upper_outer"]) | set(R["lip_lower_outer"]):
        h.setdefault(i, np.zeros(3))
    for i in LIP_PAIRS:
        for j in i:
            h.setdefault(j, np.zeros(3))
    corr = fs.field(h, 0.04 * W)
    return fs.symmetrise(d + np.where(np.isfinite(corr), corr, 0.0))


def au_fields(fs: Fields) -> Dict[str, np.ndarray]:
    """The action-unit displacement fields (478, 3) in metres, authored on named regions."""
    v = fs.v
    Z = (0.0, 0.0, 0.0)
    lip_anchor = {i: Z for i in (13, 14, 0, 17)}
    brow_anchor = {i: Z for i in (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)}
    lid_upper = R["eye_l_upper"]  # 362 (inner) ... 263 (outer)
    lid_lower = R["eye_l_lower"]
    nose_anchor = {i: Z for i in (1, 4, 2, 5, 195)}
    chin_anchor = {i: Z for i in (152, 175, 199)}
    A: Dict[str, np.ndarray] = {}

    # --- brows ------------------------------------------------------------------------------
    A["AU1"] = fs.au([
        ({285: up(.065, -.004), 336: up(.066, -.004), 295: up(.055), 296: up(.056), 282: up(.035),
          334: up(.036), 283: up(.016), 293: up(.017), 276: up(.005), 300: up(.006),
          9: up(.045), 151: up(.03), 337: up(.035), 299: up(.022), 10: up(.012), 8: up(.025),
          441: up(.035), 442: up(.03), 443: up(.018), 444: up(.008), 414: up(.012), 286: up(.016),
          258: up(.014), 257: up(.01), 259: up(.005), 168: up(.008),
          398: up(.004), 384: up(.004), 385: up(.004), 386: up(.003), 387: up(.002), 388: Z, 466: Z,
          362: Z, 263: Z, 382: Z, 374: Z, 6: Z, 197: Z}, 0.22),
    ])
    A["AU2"] = fs.au([
        ({276: up(.065, .003), 300: up(.066, .003), 283: up(.056), 293: up(.057), 282: up(.036),
          334: up(.037), 295: up(.016), 296: up(.017), 285: up(.005), 336: up(.006),
          301: up(.05), 298: up(.045), 333: up(.035), 299: up(.02), 337: up(.01), 284: up(.03),
          251: up(.03), 389: up(.012), 9: Z, 151: up(.004),
          445: up(.035), 444: up(.03), 443: up(.018), 442: up(.008), 260: up(.018), 259: up(.014),
          467: up(.016), 342: up(.012), 257: up(.008),
          263: Z, 466: up(.004), 388: up(.005), 387: up(.004), 386: up(.002), 385: Z, 362: Z,
          359: Z, 446: up(.002), 353: up(.01), 383: up(.014), 372: up(.005)}, 0.22),
    ])
    A["AU4"] = fs.au([
        ({285: up(-.03, -.026, .008), 336: up(-.028, -.026, .008), 295: up(-.03, -.018, .005),
          296: up(-.028, -.018, .005), 282: up(-.026, -.01, .002), 334: up(-.025, -.01, .002),
          283: up(-.016, -.004), 293: up(-.016, -.004), 276: up(-.01), 300: up(-.01),
          9: up(-.016, 0, .004), 8: up(-.012, 0, .003), 168: up(-.006), 151: up(-.008),
          337: up(-.012, -.01), 299: up(-.008, -.006), 333: up(-.006), 298: up(-.005),
          441: up(-.022, -.012), 442: up(-.022, -.008), 443: up(-.016, -.004), 444: up(-.01),
          445: up(-.006), 414: up(-.008, -.004), 286: up(-.012, -.004), 258: up(-.012),
          257: up(-.01), 259: up(-.007), 260: up(-.004),
          398: up(-.004), 384: up(-.005), 385: up(-.005), 386: up(-.004), 387: up(-.003),
          388: up(-.002), 466: Z, 362: Z, 263: Z, 6: Z, 197: Z, 10: Z}, 0.2),
    ])
    # --- lids -------------------------------------------------------------------------------
    A["AU5"] = fs.au([
        ({362: Z, 398: up(.01), 384: up(.018), 385: up(.022, 0, .002), 386: up(.023, 0, .002),
          387: up(.021, 0, .002), 388: up(.016), 466: up(.008), 263: Z,
          414: up(.004), 286: up(.01), 258: up(.013), 257: up(.014), 259: up(.012), 260: up(.008),
          467: up(.003), 441: up(.002), 442: up(.004), 443: up(.005), 444: up(.004), 445: up(.002),
          **brow_anchor, **{i: Z for i in lid_lower}}, 0.1),
    ])
    A["AU6"] = fs.au([
        ({382: up(.006), 381: up(.01), 380: up(.014, 0, .002), 374: up(.016, 0, .003),
          373: up(.018, 0, .003), 390: up(.018, -.002, .002), 249: up(.014, -.004), 263: up(.006, -.006),
          341: up(.01), 256: up(.014), 252: up(.018, 0, .004), 253: up(.022, 0, .005),
          254: up(.024, 0, .006), 339: up(.024, -.002, .005), 255: up(.02, -.004, .004),
          453: up(.012), 452: up(.016, 0, .004), 451: up(.022, 0, .006), 450: up(.026, 0, .008),
          449: up(.028, 0, .009), 448: up(.026, -.002, .008), 261: up(.02, -.004, .006),
          350: up(.018, 0, .006), 349: up(.026, 0, .01), 348: up(.03, 0, .012),
          347: up(.03, 0, .012), 346: up(.025, 0, .009), 340: up(.016, -.002, .005),
          329: up(.028, 0, .012), 330: up(.03, 0, .014), 280: up(.028, 0, .013),
          266: up(.022, 0, .012), 425: up(.02, 0, .012), 352: up(.018, 0, .008),
          411: up(.014, 0, .007), 426: up(.012, 0, .008), 376: up(.008, 0, .004),
          359: up(.008, -.006), 446: up(.01, -.006), 342: up(.006, -.004), 467: up(.002, -.002),
          276: up(-.008), 300: up(-.005), 283: up(-.004), 466: up(-.004, -.002), 388: up(-.003),
          387: up(-.002), 386: Z, 385: Z, 384: Z, 398: Z, 362: Z,
          351: Z, 412: Z, 399: up(.006), 437: up(.006), 355: up(.004), 277: up(.014, 0, .004),
          343: up(.01, 0, .002), **nose_anchor, 291: up(.004), 409: up(.004), 375: Z,
          436: up(.008, 0, .004), 410: up(.004), 287: up(.004)}, 0.16),
    ])
    A["AU7"] = fs.au([
        ({362: Z, 382: up(.012), 381: up(.018), 380: up(.021, 0, .002), 374: up(.021, 0, .002),
          373: up(.018, 0, .002), 390: up(.014), 249: up(.008), 263: up(.0, -.004),
          341: up(.008), 256: up(.012), 252: up(.014), 253: up(.014), 254: up(.012),
          339: up(.01), 255: up(.006), 453: up(.004), 452: up(.006), 451: up(.007), 450: up(.006),
          449: up(.004), 448: up(.002),
          398: up(-.004), 384: up(-.007), 385: up(-.008), 386: up(-.008), 387: up(-.007),
          388: up(-.005), 466: up(-.003), 286: up(-.003), 258: up(-.004), 257: up(-.004),
          259: up(-.003), **brow_anchor}, 0.09),
    ])
    # AU43: upper lid onto the lower lid, meeting at the lower third, bulging over the cornea
    h43: Dict[int, Tuple[float, ...]] = {}
    mid = np.array([0, .45, .8, .95, 1., .95, .8, .45, 0])
    for k, (u, l) in enumerate(zip(lid_upper, lid_lower)):
        meet = v[l] + 0.22 * (v[u] - v[l])
        bulge = np.array([0, 0, 0.006 * W]) * mid[k] if k not in (0, len(lid_upper) - 1) else 0
        h43[u] = tuple((meet + bulge - v[u]) / W)  # left eye: +x is outward
        if u != l:
            h43[l] = tuple((meet + bulge - v[l]) / W)
    fold = {286: 384, 258: 385, 257: 386, 259: 387, 260: 388, 414: 398, 467: 466}
    for f_, u in fold.items():
        h43[f_] = tuple(0.45 * np.asarray(h43[u]))
    below = {341: 382, 256: 381, 252: 380, 253: 374, 254: 373, 339: 390, 255: 249}
    for b_, l in below.items():
        h43[b_] = tuple(0.25 * np.asarray(h43[l]))
    for i in (441, 442, 443, 444, 445, 342, 446, 359, 453, 452, 451, 450, 449, 448):
        h43[i] = Z
    h43.update(brow_anchor)
    A["AU43"] = fs.au([(h43, 0.08)])

    # --- nose -------------------------------------------------------------------------------
    A["AU9"] = fs.au([
        ({327: up(.022, .002), 294: up(.026, .002), 278: up(.03, 0, .002), 344: up(.03),
          440: up(.028), 326: up(.016), 279: up(.032, 0, .004), 331: up(.032, 0, .004),
          358: up(.03, 0, .004), 429: up(.03, 0, .004), 360: up(.028, 0, .004), 363: up(.022),
          420: up(.026, 0, .004), 437: up(.024, 0, .004), 355: up(.028, 0, .004),
          456: up(.016), 399: up(.02, 0, .004), 351: up(.008), 412: up(.012), 465: up(.006),
          343: up(.016, 0, .004), 277: up(.016, 0, .004), 350: up(.014, 0, .004),
          357: up(.01), 453: up(.008), 452: up(.008), 349: up(.012, 0, .004),
          1: up(.008), 4: up(.01), 5: up(.008), 195: up(.004), 197: Z, 6: up(-.006),
          168: up(-.012, 0, -.002), 8: up(-.014), 9: up(-.012),
          285: up(-.018, -.004), 336: up(-.016, -.004), 295: up(-.014), 296: up(-.012),
          441: up(-.012), 417: up(-.004), 464: up(-.004), 413: up(-.006),
          382: up(.006), 381: up(.01), 380: up(.01), 374: up(.008),
          2: up(.01), 164: up(.016, 0, .003), 0: up(.018, 0, .004), 267: up(.02, 0, .004),
          269: up(.02, 0, .003), 270: up(.014), 409: up(.01), 291: up(.008), 393: up(.018),
          391: up(.02, 0, .004), 322: up(.018), 410: up(.012), 436: up(.014, 0, .004),
          426: up(.016, 0, .006), 423: up(.02, 0, .006), 425: up(.012, 0, .004),
          13: up(.012), 312: up(.012), 311: up(.012), 310: up(.008), 415: up(.006), 308: up(.004),
          14: Z, 17: Z, 317: Z, 402: Z, 318: Z, 324: Z, 151: Z, 10: Z, 337: up(-.004)}, 0.18),
    ])
    # --- upper lip ----------------------------------------------------------------------------
    A["AU10"] = fs.au([
        ({0: up(.028, 0, .006), 267: up(.033, .002, .006), 269: up(.035, .002, .004),
          270: up(.028, .002, .002), 409: up(.016), 291: up(.008), 13: up(.026, 0, .004),
          312: up(.03, .002, .004), 311: up(.032, .002, .004), 310: up(.025, .002, .002),
          415: up(.014), 308: up(.006), 11: up(.027, 0, .005), 12: up(.026, 0, .005),
          302: up(.032, 0, .005), 268: up(.03, 0, .005), 303: up(.032), 271: up(.03),
          304: up(.026), 272: up(.026), 408: up(.018), 407: up(.016),
          164: up(.016, 0, .004), 393: up(.02, 0, .004), 391: up(.024, 0, .005),
          322: up(.022, 0, .005), 410: up(.018, 0, .004), 287: up(.01), 436: up(.016, 0, .006),
          426: up(.016, 0, .006), 423: up(.014, 0, .005), 327: up(.01, .002), 294: up(.01),
          326: up(.008), 2: up(.006), 97: up(.007), 98: up(.008), 425: up(.01, 0, .004),
          14: Z, 17: Z, 317: Z, 402: Z, 318: Z, 324: Z, 314: Z, 405: Z, 321: Z, 375: Z,
          273: Z, 335: Z, 1: Z, 4: Z, 266: up(.004), 330: up(.002)}, 0.14),
    ])
    # --- lip corners -----------------------------------------------------------------------
    au12 = {291: up(.042, .027, -.006), 308: up(.04, .026, -.006), 409: up(.033, .021, -.004),
            375: up(.032, .021, -.004), 415: up(.04, .026, -.006), 324: up(.04, .026, -.006),
            270: up(.02, .014, -.002), 321: up(.017, .014, -.002), 310: up(.018, .013, -.002),
            318: up(.016, .013, -.002), 269: up(.011, .009), 405: up(.009, .009),
            311: up(.01, .008), 402: up(.008, .008), 267: up(.007, .004), 314: up(.006, .004),
            312: up(.003, .004), 317: up(-.001, .004), 0: up(.003), 17: up(-.003), 13: up(.002),
            14: up(-.003), 37: up(.003), 84: up(-.002),
            287: up(.03, .022, -.008), 410: up(.022, .016, -.002), 432: up(.028, .016, .008),
            436: up(.028, .01, .02), 426: up(.022, .006, .02), 425: up(.02, .004, .02),
            411: up(.016, .004, .014), 427: up(.022, .006, .02), 434: up(.016, .008, .01),
            266: up(.01, 0, .012), 330: up(.006, 0, .008), 280: up(.01, .002, .012),
            423: up(.016, .002, .014), 322: up(.012, .006, -.002), 391: up(.006, .002, 0),
            329: Z, 347: Z, 352: Z,
            273: up(.02, .022, -.002), 422: up(.014, .016), 430: up(.01, .012),
            335: up(.01, .012), 424: up(.006, .008), 406: up(.006, .004), 313: up(.004),
            393: up(.004), 164: up(.002),
            2: Z, 1: Z, 4: Z, 98: Z, 327: up(.004, .002), 294: up(.004), 152: Z, 175: Z, 199: Z,
            200: Z, 18: up(.002), 364: up(.006, .004), 394: up(.004),
            # lower lids and upper cheek belong to AU6 (cheek raiser): keeping them out of AU12
            # lets a fit tell a Duchenne smile (6+12) from a social one (12 alone)
            374: Z, 373: Z, 380: Z, 381: Z, 390: Z, 249: Z}
    A["AU12"] = fs.au([(au12, 0.2)])
    au14 = {291: up(.01, -.012, -.02), 308: up(.01, -.012, -.018), 409: up(.007, -.008, -.013),
            375: up(.007, -.008, -.013), 415: up(.007, -.008, -.012), 324: up(.007, -.008, -.012),
            270: up(.004, -.004, -.007), 321: up(.004, -.004, -.007), 310: up(.004, -.004, -.006),
            318: up(.004, -.004, -.006), 269: up(.001, -.001, -.003), 405: up(.001, -.001, -.003),
            287: up(.004, -.004, -.014), 273: up(.003, -.004, -.012), 432: up(.001, -.002, -.008),
            410: up(.002, -.002, -.006), 422: up(0, -.002, -.006), 436: up(0, 0, -.003),
            0: Z, 17: Z, 13: Z, 14: Z, 267: Z, 314: Z, 312: Z, 317: Z}
    A["AU14"] = fs.au([(au14, 0.12)])
    A["AU15"] = fs.au([
        ({291: la(.008, -.04, -.003), 308: la(.008, -.04, -.003), 409: la(.006, -.031),
          375: la(.006, -.032), 415: la(.006, -.032), 324: la(.006, -.033), 270: la(.004, -.018),
          321: la(.004, -.022), 310: la(.004, -.018), 318: la(.004, -.022), 269: la(.002, -.008),
          405: la(.002, -.012), 311: la(.002, -.008), 402: la(.002, -.012), 267: la(0, -.002),
          314: la(0, -.004), 0: Z, 17: Z, 13: Z, 14: Z, 37: Z, 84: Z,
          287: la(.004, -.028), 273: la(.004, -.032, .002), 335: la(.003, -.02, .002),
          422: la(.004, -.024), 432: la(.003, -.018), 410: la(.002, -.012), 424: la(.002, -.012),
          406: la(.001, -.01), 430: la(.002, -.01), 436: la(0, -.005), 313: la(0, -.004),
          18: Z, **chin_anchor, 200: Z, **nose_anchor, 426: Z}, 0.18),
    ])
    A["AU16"] = fs.au([
        ({17: up(-.036, 0, .008), 314: up(-.038, .003, .008), 405: up(-.034, .005, .006),
          321: up(-.022, .005, .004), 375: up(-.01, .003), 14: up(-.036, 0, .006),
          317: up(-.037, .003, .006), 402: up(-.034, .004, .006), 318: up(-.022, .004, .004),
          324: up(-.01, .003), 84: up(-.038, .003, .008), 291: up(-.003), 308: up(-.003),
          15: up(-.036, 0, .007), 16: up(-.036, 0, .007), 316: up(-.037, .002, .007),
          315: up(-.037, .002, .007), 403: up(-.033, .004), 404: up(-.03, .004),
          18: up(-.022, 0, .006), 313: up(-.023, .003, .006), 406: up(-.018, .004, .004),
          335: up(-.01, .003), 273: up(-.005), 200: up(-.008, 0, .002), 421: up(-.008),
          418: up(-.006), 424: up(-.004), **chin_anchor, 13: Z, 0: Z, 312: Z, 311: Z, 310: Z,
          415: Z, 267: Z, 269: Z, 270: Z, 409: Z}, 0.17),
    ])
    A["AU17"] = fs.au([
        ({199: up(.018, 0, .01), 200: up(.022, 0, .01), 175: up(.012, 0, .008), 428: up(.018, 0, .007),
          421: up(.02, 0, .008), 396: up(.012, 0, .006), 418: up(.014, 0, .005), 262: up(.012, 0, .004),
          18: up(.022, 0, .012), 313: up(.022, 0, .012), 406: up(.016, 0, .008), 335: up(.008, 0, .004),
          17: up(.02, 0, .015), 314: up(.02, 0, .014), 405: up(.015, 0, .01), 321: up(.008, 0, .006),
          84: up(.02, 0, .014), 15: up(.019, 0, .013), 16: up(.02, 0, .014), 316: up(.019, 0, .013),
          315: up(.019, 0, .013), 14: up(.014, 0, .008), 317: up(.014, 0, .008), 402: up(.011, 0, .006),
          318: up(.004, 0, .003), 375: up(-.003, 0, .002), 324: up(-.003), 291: up(-.008),
          308: up(-.008), 409: up(-.004), 415: up(-.004), 13: up(.006, 0, .002), 312: up(.005),
          311: up(.003), 0: up(.004), 267: up(.003), 273: up(-.004), 287: up(-.004),
          152: up(.006, 0, .004), 377: up(.004), 400: up(.004), 369: up(.006), 424: up(.004),
          422: Z, 432: Z, 430: Z, 394: Z, 164: Z, 2: Z}, 0.2),
    ])
    A["AU20"] = fs.au([
        ({291: up(-.008, .045, -.01), 308: up(-.008, .043, -.01), 409: up(-.006, .036, -.008),
          375: up(-.006, .034, -.008), 415: up(-.006, .034, -.008), 324: up(-.006, .033, -.008),
          270: up(-.004, .025, -.005), 321: up(-.004, .023, -.005), 310: up(-.004, .023, -.004),
          318: up(-.003, .022, -.004), 269: up(-.003, .013, -.002), 405: up(-.001, .012, -.002),
          311: up(-.002, .012), 402: up(-.001, .011), 267: up(-.004, .005), 314: up(.002, .005),
          312: up(-.001, .005), 317: up(.001, .005), 0: up(-.005), 17: up(.004), 13: up(-.001),
          14: up(.001), 37: up(-.004, .002), 84: up(.003, .002),
          287: up(-.01, .036, -.006), 273: up(-.014, .03, -.004), 432: up(-.01, .028),
          422: up(-.012, .022), 410: up(-.004, .016), 436: up(0, .01), 434: up(-.008, .014),
          430: up(-.01, .014), 335: up(-.008, .016), 424: up(-.006, .008), 406: up(-.004, .008),
          364: up(-.008, .008), 394: up(-.01, .006), 367: up(-.006, .006), 426: Z, 425: Z,
          2: Z, 164: Z, 393: up(0, .002), 322: up(0, .006), 391: up(0, .003),
          **chin_anchor, 200: Z, 18: up(.001)}, 0.2),
    ])
    A["AU23"] = fs.au([
        ({291: up(0, -.016, .004), 308: up(0, -.016, .003), 409: up(0, -.013, .004),
          375: up(0, -.013, .004), 415: up(0, -.012, .003), 324: up(0, -.012, .003),
          270: up(-.006, -.009, .004), 321: up(.006, -.009, .004), 310: up(-.001, -.008),
          318: up(.001, -.008), 269: up(-.01, -.005, .003), 405: up(.01, -.005, .003),
          267: up(-.012, -.002, .002), 314: up(.012, -.002, .002), 0: up(-.012, 0, .002),
          17: up(.012, 0, .002), 37: up(-.012, -.001, .002), 84: up(.012, -.001, .002),
          13: up(-.001), 14: up(.001), 312: up(-.001), 317: up(.001), 311: Z, 402: Z,
          164: Z, 393: Z, 18: Z, 313: Z, 287: up(0, -.006), 273: up(0, -.006), 410: Z,
          422: Z, 2: Z, 200: Z}, 0.1),
    ])
    A["AU24"] = fs.au([
        ({0: up(-.015, 0, -.004), 267: up(-.014, 0, -.004), 37: up(-.014, 0, -.004),
          269: up(-.012, -.002, -.003), 270: up(-.008, -.003, -.002), 409: up(-.004, -.004),
          17: up(.015, 0, -.004), 314: up(.014, 0, -.004), 84: up(.014, 0, -.004),
          405: up(.012, -.002, -.003), 321: up(.008, -.003, -.002), 375: up(.004, -.004),
          13: up(-.004, 0, -.003), 312: up(-.004, 0, -.003), 311: up(-.003, 0, -.002),
          14: up(.004, 0, -.003), 317: up(.004, 0, -.003), 402: up(.003, 0, -.002),
          291: up(0, -.005), 308: up(0, -.005), 164: up(-.006, 0, .003), 393: up(-.005, 0, .003),
          18: up(.006, 0, .003), 313: up(.005, 0, .003), 2: Z, 200: Z, 287: Z, 273: Z,
          391: Z, 406: Z}, 0.12),
    ])
    A["AU25"] = fs.au([
        ({13: up(.014, 0, .002), 312: up(.013, 0, .002), 311: up(.012), 310: up(.008), 415: up(.004),
          14: up(-.03, 0, .002), 317: up(-.03, 0, .002), 402: up(-.026), 318: up(-.017),
          324: up(-.008), 308: Z, 291: Z, 0: up(.01, 0, .002), 267: up(.01, 0, .002),
          37: up(.01, 0, .002), 269: up(.008), 270: up(.004), 409: Z, 17: up(-.026, 0, .004),
          84: up(-.026, 0, .004), 314: up(-.026, 0, .004), 405: up(-.021), 321: up(-.013),
          375: up(-.005), 18: up(-.012, 0, .002), 313: up(-.012), 406: up(-.009), 335: up(-.004),
          200: up(-.004), 164: up(.003), 2: Z, **chin_anchor, 287: Z, 273: Z}, 0.14),
    ])
    for k in A:
        A[k] = seal_lips(fs, np.where(np.isfinite(A[k]), A[k], 0.0))
    # unilateral splits: smooth side mask, AU12L + AU12R == AU12
    side = 0.5 * (1.0 + np.tanh(v[:, 0] / (0.05 * W)))
    for base in ("AU12", "AU14"):
        A[base + "L"] = A[base] * side[:, None]
        A[base + "R"] = A[base] * (1.0 - side)[:, None]
    A = {k: np.where(np.isfinite(a), a, 0.0) for k, a in A.items()}
    for k in A:  # iris points follow the eyes, not the lids
        A[k][468:NL] = 0.0
    return {k: A[k] for k in oh.EXPRESSION_NAMES}


# ----------------------------------------------------------------------------------------------
# neutralising the photo's smile
# ----------------------------------------------------------------------------------------------
LIP_PAIRS = [(u, l) for u, l in zip(R["lip_upper_inner"][1:-1], R["lip_lower_inner"][1:-1])]
NEUTRAL_LIP_FULLNESS = 0.8  # lip_thickness added to the neutral template
NEUTRAL_FIT_AUS = ("AU25", "AU10", "AU12", "AU6", "AU5")


def neutral_features(v: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Features of a neutral face and their targets (metres)."""
    iris_r = np.mean(np.linalg.norm(v[474:478] - v[473], axis=1))
    sto = 0.5 * (v[13, 1] + v[14, 1])
    feats, targets = [], []
    for u, l in LIP_PAIRS:  # lips closed: inner contours meet
        feats.append(v[u, 1] - v[l, 1])
        targets.append(0.0)
    feats.append(sto)  # stomion at a third of subnasale-menton
    targets.append(v[2, 1] - 0.33 * (v[2, 1] - v[152, 1]))
    feats.append(v[291, 1] - sto)  # corners slightly below the lip line
    targets.append(-0.01 * W)
    feats.append(v[291, 0] - v[61, 0])  # mouth width
    targets.append(0.38 * W)
    feats.append(v[374, 1] - v[473, 1])  # lower lid at the lower limbus
    targets.append(-iris_r)
    feats.append(v[386, 1] - v[473, 1])  # upper lid covers ~1.5 mm of the iris
    targets.append(iris_r - 0.0015)
    w = np.ones(len(feats))
    w[: len(LIP_PAIRS)] = 0.6
    w[len(LIP_PAIRS) + 1 :] = 2.0
    return np.asarray(feats) * w, np.asarray(targets) * w


def neutralise(v: np.ndarray, fields: Dict[str, np.ndarray]) -> Tuple[np.ndarray, Dict[str, float]]:
    """Coefficients c >= 0 with features(v - sum c_k AU_k) ~ targets; returns v without them."""
    names = NEUTRAL_FIT_AUS
    coef = np.zeros(len(names))
    for _ in range(6):
        cur = v - np.einsum("k,kvc->vc", coef, np.stack([fields[n] for n in names]))
        f0, t = neutral_features(cur)
        jac = np.stack([(neutral_features(cur - 1e-3 * fields[n])[0] - f0) / 1e-3 for n in names], 1)
        ridge = 0.004 * W * np.eye(len(names))
        a = np.concatenate([jac, ridge])
        b = np.concatenate([t - f0 + jac @ coef, np.zeros(len(names))])
        coef, _ = nnls(a, b)
    out = v - np.einsum("k,kvc->vc", coef, np.stack([fields[n] for n in names]))
    return out, dict(zip(names, map(float, coef)))


# ----------------------------------------------------------------------------------------------
# identity directions
# ----------------------------------------------------------------------------------------------
def smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def shape_fields(fs: Fields) -> Dict[str, np.ndarray]:
    """Identity directions (478, 3) in metres; coefficient 1 ~ one standard deviation."""
    v = fs.v
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    Z = (0.0, 0.0, 0.0)
    mm = 1e-3 / W  # handle values are in units of W
    S: Dict[str, np.ndarray] = {}
    S["face_width"] = np.stack([0.035 * x, 0 * x, 0 * x], 1)  # 234-454 +4.9 mm
    S["face_length"] = np.stack([0 * x, 0.04 * (y - v[168, 1]), 0 * x], 1)  # chin -4.9 mm
    low = smoothstep(-y, -v[2, 1], -v[61, 1] + 0.02)  # 0 above the nose, 1 below the mouth
    S["jaw_width"] = np.stack([0.045 * x * low, 0 * x, 0 * x], 1)
    chin = smoothstep(-y, -v[17, 1] + 0.004, -v[152, 1] + 0.01)
    S["chin_height"] = np.stack([0 * x, -0.004 * chin, 0.0008 * chin], 1)
    S["chin_projection"] = np.stack([0 * x, 0 * x, 0.004 * chin * np.exp(-0.5 * (x / 0.028) ** 2)], 1)
    S["nose_length"] = fs.au([({1: up(-3 * mm, 0, 1.5 * mm), 4: up(-2.5 * mm, 0, 1.2 * mm),
                                2: up(-3 * mm, 0, .5 * mm), 19: up(-3 * mm, 0, 1 * mm),
                                94: up(-3 * mm, 0, .8 * mm), 98: up(-2.5 * mm), 327: up(-2.5 * mm),
                                294: up(-2.3 * mm), 278: up(-2 * mm), 5: up(-1.8 * mm, 0, .8 * mm),
                                195: up(-1.2 * mm, 0, .4 * mm), 197: up(-.6 * mm), 6: Z, 168: Z,
                                0: up(-1 * mm), 164: up(-2 * mm), 13: up(-.5 * mm)}, 0.16)])
    S["nose_width"] = fs.au([({98: la(2 * mm), 327: la(2 * mm), 294: la(2.2 * mm), 278: la(2 * mm),
                               344: la(1.8 * mm), 440: la(1.2 * mm), 279: la(1.8 * mm), 331: la(1.6 * mm),
                               358: la(1.8 * mm), 2: Z, 1: Z, 4: Z, 19: Z, 94: Z, 5: Z, 6: Z, 195: Z,
                               197: Z}, 0.1)])
    S["nose_projection"] = fs.au([({1: la(0, 0, 3 * mm), 4: la(0, 0, 3 * mm), 19: la(0, 0, 2.5 * mm),
                                    5: la(0, 0, 2.5 * mm), 195: la(0, 0, 1.8 * mm), 197: la(0, 0, 1.2 * mm),
                                    6: la(0, 0, .6 * mm), 168: Z, 2: la(0, 0, 1 * mm), 94: la(0, 0, 1.8 * mm),
                                    98: la(0, 0, .8 * mm), 327: la(0, 0, .8 * mm)}, 0.12)])
    eye = {i: la(1.6 * mm) for i in R["eye_l_upper"] + R["eye_l_lower"]}
    eye.update({i: la(1.2 * mm) for i in (441, 442, 443, 444, 445, 286, 258, 257, 259, 260, 467,
                                          414, 341, 256, 252, 253, 254, 339, 255, 359)})
    eye.update({i: Z for i in (168, 6, 197, 8)})
    S["eye_spacing"] = fs.au([(eye, 0.16)])
    c = 0.5 * (v[362] + v[263])
    size = {i: tuple(np.array([1, 1.5, 0]) * (v[i] - c) * 0.09 / W) for i in R["eye_l_upper"] + R["eye_l_lower"]}
    size.update({i: Z for i in (441, 442, 443, 444, 445, 342, 446, 453, 452, 451, 450, 449, 448)})
    S["eye_size"] = fs.au([(size, 0.05)])
    lips = {i: up(1.0 * mm) for i in (0, 37, 267, 269)}
    lips.update({270: up(.7 * mm), 409: up(.3 * mm), 291: Z, 61: Z})
    lips.update({i: up(-1.4 * mm, 0, .8 * mm) for i in (17, 84, 314, 405)})
    lips.update({321: up(-1 * mm, 0, .5 * mm), 375: up(-.4 * mm)})
    lips.update({i: Z for i in R["lip_upper_inner"] + R["lip_lower_inner"]})
    lips.update({164: Z, 18: up(-.5 * mm), 200: Z, 2: Z})
    S["lip_thickness"] = fs.au([(lips, 0.08)])
    S["mouth_width"] = fs.au([({291: la(2.4 * mm), 308: la(2.4 * mm), 409: la(1.8 * mm), 375: la(1.8 * mm),
                                415: la(1.8 * mm), 324: la(1.8 * mm), 270: la(1.2 * mm), 321: la(1.2 * mm),
                                310: la(1.2 * mm), 318: la(1.2 * mm), 287: la(1.6 * mm), 273: la(1.4 * mm),
                                0: Z, 17: Z, 13: Z, 14: Z, 164: Z, 18: Z}, 0.12)])
    brow = {i: up(3 * mm) for i in R["brow_l_lower"] + R["brow_l_upper"]}
    brow.update({i: up(1.5 * mm) for i in (441, 442, 443, 444, 445)})
    brow.update({i: Z for i in R["eye_l_upper"]})
    brow.update({9: up(2 * mm), 8: up(1 * mm), 168: Z, 151: up(1.5 * mm), 10: up(.5 * mm)})
    S["brow_height"] = fs.au([(brow, 0.2)])
    fh = smoothstep(y, v[336, 1], v[10, 1])
    S["forehead_height"] = np.stack([0 * x, 0.004 * fh, -0.003 * fh * fh], 1)
    S["cheek_fullness"] = fs.au([({i: la(1 * mm, 0, 2.5 * mm) for i in R["cheek_l"]} |
                                  {i: Z for i in (1, 2, 4, 61, 291, 0, 17, 13, 14, 152, 168)}, 0.2)])
    zc = z - v[1, 2] + 0.06
    S["face_depth"] = np.stack([0 * x, 0 * x, 0.05 * zc * smoothstep(zc, -0.05, 0.0)], 1)
    # iris points move with their eye
    for k, d in S.items():
        d = np.where(np.isfinite(d), d, 0.0)
        for ctr, ring in ((468, R["eye_r_upper"] + R["eye_r_lower"]), (473, R["eye_l_upper"] + R["eye_l_lower"])):
            if k in ("face_width", "face_length", "forehead_height", "face_depth", "jaw_width"):
                continue  # analytic fields already cover the iris points
            d[ctr : ctr + 5] = d[list(ring)].mean(0)
        S[k] = fs.symmetrise(d)
    return {k: S[k] for k in oh.SHAPE_NAMES}


# ----------------------------------------------------------------------------------------------
# mouth cavity and eye fills (extra vertices after the landmarks)
# ----------------------------------------------------------------------------------------------
MOUTH_RING = tuple(R["lip_upper_inner"]) + tuple(reversed(R["lip_lower_inner"][1:-1]))


def orient(tris: np.ndarray, verts: np.ndarray, want: np.ndarray) -> np.ndarray:
    n = face_normals(verts, tris)
    wdir = want if want.ndim == 2 else np.broadcast_to(want, n.shape)
    flip = (n * wdir).sum(1) < 0
    tris = tris.copy()
    tris[flip] = tris[flip][:, [0, 2, 1]]
    return tris


def mouth_cavity(v: np.ndarray):
    """Extra vertices (n, 3), their source rows (n, k) and weights for copying fields, triangles.

    Ring 1 is a short tube 6 mm behind the inner lip contour, ring 2 a back wall 22 mm behind,
    closed by a fan around a centre vertex skinned half to the jaw, half to the head.
    """
    ring = np.array(MOUTH_RING)
    n = len(ring)
    centre = v[ring].mean(0)
    base = NL
    r1 = v[ring] + np.array([0, 0, -0.006])
    r1[:, :2] = centre[:2] + 0.85 * (r1[:, :2] - centre[:2])
    r2 = v[ring] + np.array([0, 0, -0.022])
    r2[:, :2] = centre[:2] + 0.6 * (r2[:, :2] - centre[:2])
    c = centre + np.array([0, 0, -0.028])
    extra = np.concatenate([r1, r2, c[None]])
    # rows: extra vertex -> (landmark sources, weights) for displacement/skinning transfer
    src = [([i], [1.0]) for i in ring] + [([i], [0.8]) for i in ring] + [(list(ring), [0.5 / n] * n)]
    i0 = ring
    i1 = base + np.arange(n)
    i2 = base + n + np.arange(n)
    ic = base + 2 * n
    tris = []
    for k in range(n):
        k2 = (k + 1) % n
        tris += [(i0[k], i0[k2], i1[k2]), (i0[k], i1[k2], i1[k])]
        tris += [(i1[k], i1[k2], i2[k2]), (i1[k], i2[k2], i2[k])]
        tris += [(i2[k], i2[k2], ic)]
    tris = np.asarray(tris, dtype=np.int64)
    allv = np.concatenate([v, extra])
    # inner surfaces face the viewer / the mouth axis
    cen = allv[tris].mean(1)
    want = np.concatenate([centre[None, :2] - cen[:, :2], np.full((len(tris), 1), 0.02)], 1)
    tris = orient(tris, allv, want)
    return extra, src, tris


IRIS_SEGMENTS = 16
SCLERA_DEPTH = 0.003


def eye_parts(v: np.ndarray, base: int):
    """Eye sockets and round iris disks on extra vertices.

    Per eye: a short sclera tube from the lid contour to a ring 3 mm behind it, closed by a fan
    (these follow the lids: they collapse when the lids close), and an iris disk in the plane
    of MediaPipe's iris points, in front of the sclera, skinned to the eye joint.
    Returns extra vertices, their transfer sources and the parts.
    """
    parts, extra, src = {}, [], []
    for side, up_, lo, iris in (("left", R["eye_l_upper"], R["eye_l_lower"], 473),
                                ("right", R["eye_r_upper"], R["eye_r_lower"], 468)):
        loop = np.array(list(up_) + list(reversed(lo[1:-1])))
        n = len(loop)
        start = base + len(extra)
        for i in loop:
            extra.append(v[i] + np.array([0, 0, -SCLERA_DEPTH]))
            src.append(([int(i)], [1.0]))
        extra.append(v[loop].mean(0) + np.array([0, 0, -SCLERA_DEPTH - 0.001]))
        src.append((list(map(int, loop)), [1.0 / n] * n))
        ring = start + np.arange(n)
        hub = start + n
        t = []
        for k in range(n):
            k2 = (k + 1) % n
            t += [(loop[k], loop[k2], ring[k2]), (loop[k], ring[k2], ring[k]), (ring[k], ring[k2], hub)]
        allv = np.concatenate([v, np.asarray(extra)])
        cen = allv[np.array(t)].mean(1)
        want = np.concatenate([v[iris][None, :2] - cen[:, :2], np.full((len(t), 1), 0.002)], 1)
        parts[f"eye_{side}"] = orient(np.array(t), allv, want)
        # iris disk
        ringp = v[iris + 1 : iris + 5]
        c = v[iris]
        radius = np.linalg.norm(ringp - c, axis=1).mean()
        normal = np.cross(ringp[0] - ringp[2], ringp[1] - ringp[3])
        normal /= np.linalg.norm(normal)
        if normal[2] < 0:
            normal = -normal
        e1 = np.array([1.0, 0, 0]) - normal * normal[0]
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(normal, e1)
        start = base + len(extra)
        for a_ in np.linspace(0, 2 * np.pi, IRIS_SEGMENTS, endpoint=False):
            extra.append(c + radius * (np.cos(a_) * e1 + np.sin(a_) * e2))
            src.append(([iris], [1.0]))
        idx = start + np.arange(IRIS_SEGMENTS)
        t = np.array([(iris, idx[k], idx[(k + 1) % IRIS_SEGMENTS]) for k in range(IRIS_SEGMENTS)])
        allv = np.concatenate([v, np.asarray(extra)])
        parts[f"iris_{side}"] = orient(t, allv, np.array([0, 0, 1.0]))
    return np.asarray(extra), src, parts


def skin_subsets(faces: np.ndarray) -> Dict[str, np.ndarray]:
    """Named subsets of the skin triangles (for colouring): lips and brows."""
    outer = set(R["lip_upper_outer"]) | set(R["lip_lower_outer"])
    inner = set(R["lip_upper_inner"]) | set(R["lip_lower_inner"])
    # flood fill from the inner lip contour, stopping at the outer contour
    nbr: Dict[int, set] = {}
    for a, b, c in faces:
        for x, y in ((a, b), (b, c), (c, a)):
            nbr.setdefault(x, set()).add(y)
            nbr.setdefault(y, set()).add(x)
    lips, todo = set(inner), list(inner)
    while todo:
        i = todo.pop()
        for j in nbr[i]:
            if j not in lips:
                lips.add(j)
                if j not in outer:
                    todo.append(j)
    sub = {"lips": np.array([t for t in faces if set(t) <= lips and not set(t) <= outer])}
    for side in ("left", "right"):
        k = side[0]
        brow = set(R[f"brow_{k}_lower"]) | set(R[f"brow_{k}_upper"])
        sub[f"brow_{side}"] = np.array([t for t in faces if set(t) <= brow])
    return sub


def tidy_commissure(v: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Neutral mouth corners: the commissure line 308-292-306-291 straight, the upper-lip row
    (407, 408) above it and the lower-lip row (325, 307) below it, so that the tiny corner
    triangles are not folded (they would flip when the jaw opens)."""
    v = v.copy()
    a, b = v[308], v[291]
    for i, t in ((292, 1 / 3), (306, 2 / 3)):
        v[i, 1] = (1 - t) * a[1] + t * b[1]
    line_y = lambda x: a[1] + (b[1] - a[1]) * np.clip((x - a[0]) / (b[0] - a[0]), 0, 1)  # noqa: E731
    for i in (407, 408):
        v[i, 1] = max(v[i, 1], line_y(v[i, 0]) + 0.0007)
    for i in (325, 307):
        v[i, 1] = min(v[i, 1], line_y(v[i, 0]) - 0.0007)
    for i in (292, 306, 407, 408, 325, 307):
        j = mirror[i]
        v[j] = v[i] * np.array([-1.0, 1.0, 1.0])
    return v


def close_lips(fs: "Fields", v: np.ndarray) -> np.ndarray:
    """Neutral mouth: the inner lip contours meet on a smooth lip line (a parabola from the
    stomion to the inner corners 78/308), moved there with a smooth field."""
    sto = 0.5 * (v[13] + v[14])
    corner = v[308]
    h: Dict[int, np.ndarray] = {}
    for u, l in LIP_PAIRS:
        t = (abs(0.5 * (v[u, 0] + v[l, 0])) / corner[0]) ** 2
        y = sto[1] + (corner[1] - sto[1]) * t
        z = 0.5 * (v[u, 2] + v[l, 2])
        h[u] = np.array([0.0, y - v[u, 1], z - v[u, 2]])
        h[l] = np.array([0.0, y - v[l, 1], z - v[l, 2]])
    for i in set(R["lip_upper_outer"]) | set(R["lip_lower_outer"]) | {78, 308}:
        h.setdefault(i, np.zeros(3))
    d = fs.field(h, 0.05 * W)
    return v + fs.symmetrise(np.where(np.isfinite(d), d, 0.0))


# ----------------------------------------------------------------------------------------------
# skinning and joints
# ----------------------------------------------------------------------------------------------
#: jaw weights at the left mouth corner (mirrored to the right): upper lip side -> 0, lower -> 1
JAW_CORNER_WEIGHTS = {407: 0.1, 408: 0.1, 292: 0.5, 306: 0.5, 291: 0.5, 308: 0.5, 307: 0.85,
                      325: 0.85}


def jaw_weights(fs: Fields, v: np.ndarray) -> np.ndarray:
    """Harmonic jaw weight on the landmark mesh: 1 on the lower lip and below, 0 above."""
    n = NL
    lower = set(R["lip_lower_outer"][1:-1]) | set(R["lip_lower_inner"][1:-1])
    upper = set(R["lip_upper_outer"][1:-1]) | set(R["lip_upper_inner"][1:-1])
    y = v[:, 1]
    fixed = {}
    for i in range(468):
        if i in lower or y[i] < v[61, 1] - 0.022:
            fixed[i] = 1.0
        elif i in upper or y[i] > v[2, 1] + 0.002:
            fixed[i] = 0.0
    # the jaw line up to the ramus rides with the jaw
    for i in (58, 288, 172, 397, 136, 365):
        fixed[i] = 1.0
    # the commissure: graded so the tiny corner triangles stretch instead of folding
    for i, val in JAW_CORNER_WEIGHTS.items():
        fixed[i] = fixed[int(fs.mirror[i])] = val
    e = fs.edges
    wgt = 1.0 / np.maximum(np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1), 1e-6)
    lap = coo_matrix((np.r_[wgt, wgt], (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n)).tocsr()
    lap = np.diag(np.asarray(lap.sum(1)).ravel()) - lap.toarray()
    free = np.array([i for i in range(468) if i not in fixed])
    fidx = np.array(sorted(fixed))
    fval = np.array([fixed[i] for i in fidx])
    w = np.zeros(n)
    w[fidx] = fval
    # smoother than harmonic: minimise |L w|^2 (biharmonic) with the constraints
    L = lap[:468, :468]
    Q = L.T @ L
    w[free] = np.linalg.solve(Q[np.ix_(free, free)] + 1e-9 * np.eye(len(free)), -Q[np.ix_(free, fidx)] @ fval)
    w = np.clip(w, 0.0, 1.0)
    w = 0.5 * (w + w[fs.mirror])
    w[468:] = 0.0
    return w


def jaw_correctives(lip_stretch: np.ndarray) -> np.ndarray:
    """Pose correctives ``(V, 3, 36)`` (FLAME layout): as the jaw drops, the relaxed lip corners
    move towards the midline, so an open mouth is an oval rather than a wide slot (the judge and
    viewers read a wide open slot as fear, not surprise).

    Only the jaw's ``R[2, 1] = sin(angle)`` feature carries a field: ``-JAW_LIP_NARROWING`` times
    the lip stretcher (AU20) per unit of AU26.
    """
    out = np.zeros(lip_stretch.shape + (36,))
    column = (2 - 1) * 9 + 2 * 3 + 1  # joint 2 (jaw) of joints 1..4, rotation entry (2, 1)
    out[..., column] = -oh.JAW_LIP_NARROWING * lip_stretch / np.sin(oh.JAW_RAD_PER_AU26)
    return out


def affine_regressor(v: np.ndarray, idx: Sequence[int], target: np.ndarray) -> np.ndarray:
    """Least-norm weights on ``idx`` (summing to 1) that reproduce ``target`` exactly."""
    idx = np.asarray(idx)
    a = np.concatenate([v[idx].T, np.ones((1, len(idx)))])  # (4, k)
    b = np.concatenate([target, [1.0]])
    w0 = np.full(len(idx), 1.0 / len(idx))
    w = w0 + np.linalg.pinv(a) @ (b - a @ w0)
    out = np.zeros(len(v))
    np.add.at(out, idx, w)
    return out


JOINT_TARGETS_DOC = {
    "global": "head centre: x=0, halfway between nasion and subnasale, 0.10 m behind the nose tip",
    "neck": "3 cm above the menton, 2 cm behind the cheek contour (234/454)",
    "jaw": "below the ears near the back of the jaw: 10 mm below subnasale, 20 mm behind 234/454",
    "eyes": "12 mm behind the iris centres 473 / 468",
}


def joints_and_regressor(v: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    oval = list(R["face_oval"])
    centre = [1, 168, 152, 10, 2, 9, 6]
    g = np.array([0.0, 0.5 * (v[168, 1] + v[2, 1]), v[1, 2] - 0.10])
    neck = np.array([0.0, v[152, 1] + 0.03, v[234, 2] - 0.02])
    jaw = np.array([0.0, v[2, 1] - 0.01, v[234, 2] - 0.02])
    jreg = np.zeros((5, len(v)))
    jreg[0] = affine_regressor(v, oval + centre, g)
    jreg[1] = affine_regressor(v, oval + centre, neck)
    jreg[2] = affine_regressor(v, oval + centre, jaw)
    for j, (ctr, up_, lo, orbit) in enumerate(
        ((473, R["eye_l_upper"], R["eye_l_lower"], (446, 342, 353, 265, 372, 383, 168, 6)),
         (468, R["eye_r_upper"], R["eye_r_lower"], (226, 113, 124, 35, 143, 156, 168, 6)))
    ):
        idx = list(range(ctr, ctr + 5)) + list(up_) + list(lo) + list(orbit)
        jreg[3 + j] = affine_regressor(v, idx, v[ctr] - np.array([0, 0, 0.012]))
    return jreg, jreg @ v


def build(out: Path) -> Dict[str, object]:
    faces = read_tessellation()
    v_raw, mirror, info = build_landmark_template()
    v_raw = place_origin(v_raw)
    # author the AUs on the photo's face, remove its smile, re-author on the neutral face
    # fields are re-authored on the current neutral estimate, coefficients fitted on the photo
    v = v_raw
    fits = []
    for it in range(3):
        fs = Fields(v, faces, mirror)
        v_new, coef = neutralise(v_raw, au_fields(fs))
        fits.append(coef)
        v_new = 0.5 * (v_new + (v_new * np.array([-1.0, 1.0, 1.0]))[mirror])
        fs_new = Fields(v_new, faces, mirror)
        v_new = tidy_commissure(close_lips(fs_new, v_new), mirror)
        # the photo's smile stretched the lips thin: author fuller neutral lips
        v_new = v_new + NEUTRAL_LIP_FULLNESS * shape_fields(fs_new)["lip_thickness"]
        v_new *= W / np.linalg.norm(v_new[234] - v_new[454])
        v = place_origin(v_new)
    fs = Fields(v, faces, mirror)
    expr = au_fields(fs)
    shapes = shape_fields(fs)

    jaw = jaw_weights(fs, v)
    extra, src, cavity = mouth_cavity(v)
    eyes_extra, eyes_src, parts = eye_parts(np.concatenate([v, extra]), NL + len(extra))
    extra = np.concatenate([extra, eyes_extra])
    src = src + eyes_src
    V = NL + len(extra)
    v_all = np.concatenate([v, extra])

    def transfer(d: np.ndarray, skin: bool = False) -> np.ndarray:
        rows = []
        for ids, ws in src:
            ws = np.asarray(ws)
            if skin:
                ws = ws / ws.sum()
            rows.append((d[ids] * ws.reshape((-1,) + (1,) * (d.ndim - 1))).sum(0))
        return np.concatenate([d, np.stack(rows)])

    exprdirs = np.stack([transfer(expr[n]) for n in oh.EXPRESSION_NAMES], -1)
    shapedirs = np.stack([transfer(shapes[n]) for n in oh.SHAPE_NAMES], -1)
    weights = np.zeros((NL, 5))
    weights[:, 1] = 1.0 - jaw
    weights[:, 2] = jaw
    weights[468:473] = [0, 0, 0, 0, 1]  # subject's right iris -> right_eye
    weights[473:478] = [0, 0, 0, 1, 0]
    weights = transfer(weights, skin=True)
    weights /= weights.sum(1, keepdims=True)
    jreg, joints = joints_and_regressor(v_all)
    parts["mouth_interior"] = cavity
    parts.update(skin_subsets(faces))

    meta = {
        "name": "open-head-v1",
        "kind": "open",
        "units": "metres; +X subject's left, +Y up, +Z towards the viewer",
        "licence": "Apache-2.0 (MediaPipe Face Mesh topology and landmark-model output); authored "
                   "fields by flame_transit under the same terms",
        "builder": f"tools/build_open_head.py v{BUILDER_VERSION}",
        "inputs": {
            "landmarks": "mediapipe.solutions.face_mesh (static_image_mode, refine_landmarks) on "
                         "skimage.data.astronaut() and its mirror (public domain, NASA)",
            "topology": "mediapipe.solutions.face_mesh_connections.FACEMESH_TESSELATION, edges "
                        "read in source order as triangles",
            "mediapipe_version": _mp_version(),
        },
        "face_width_m": W,
        "jaw_rad_per_au26": oh.JAW_RAD_PER_AU26,
        "jaw_lip_narrowing": oh.JAW_LIP_NARROWING,
        "neutralised_aus": fits[-1],
        "neutral_lip_fullness": NEUTRAL_LIP_FULLNESS,
        "joints": JOINT_TARGETS_DOC,
        "num_landmarks": NL,
        "extra_vertices": {"mouth_cavity": [NL, NL + len(src) - len(eyes_src)],
                           "eye_sockets_and_iris_disks": [NL + len(src) - len(eyes_src), V]},
        "face_parts": {"mouth_interior": "dark cavity behind the lips (extra vertices)",
                       "eye_left/right": "sclera: tube behind the lid contour + back fan",
                       "iris_left/right": "iris disks (extra vertices, skinned to the eye joints)",
                       "lips, brow_left/right": "subsets of the skin triangles f, for colouring"},
        "symmetrise": info,
    }
    arrays = {
        "v_template": v_all.astype(np.float64),
        "f": faces.astype(np.int32),
        "shapedirs": shapedirs.astype(np.float32),
        "exprdirs": exprdirs.astype(np.float32),
        "posedirs": jaw_correctives(transfer(expr["AU20"])).astype(np.float32),
        "J_regressor": jreg.astype(np.float64),
        "weights": weights.astype(np.float32),
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "expression_names": np.array(oh.EXPRESSION_NAMES),
        "shape_names": np.array(oh.SHAPE_NAMES),
        "landmark_indices": np.arange(NL, dtype=np.int32),
        "mirror_index": mirror.astype(np.int32),
        "meta_json": np.array(json.dumps(meta, indent=1, sort_keys=True)),
    }
    for k, t in parts.items():
        arrays[f"face_part_{k}"] = t.astype(np.int32)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=out.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return meta


def _mp_version() -> str:
    try:
        import mediapipe

        return str(mediapipe.__version__)
    except Exception:  # pragma: no cover
        return "unknown"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "flame_transit" / "head" / "data" / "open_head.npz")
    args = ap.parse_args(argv)
    meta = build(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    print("neutralised (AU coefficients removed from the photo):",
          {k: round(c, 2) for k, c in meta["neutralised_aus"].items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
