"""What the scene needs to know about a mesh, once per clip: its boundary loops (outline, eyes,
mouth), vertex normals, which vertices follow the skull and the jaw, and the head's forward pass
for reference meshes.

Example:
    >>> faces = np.array([[0, 1, 2], [0, 2, 3]])
    >>> [sorted(l.tolist()) for l in boundary_loops(faces)]
    [[0, 1, 2, 3]]
"""

from __future__ import annotations

import functools

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .inputs import _get, _to_numpy
from .mouth import MP_INNER_LIPS, MP_JAW, MP_STABLE
from .photo import inside_polygon

__all__ = [
    "MeshTopology",
    "analyse_mesh",
    "boundary_loops",
]

log = logging.getLogger(__name__)


# --- mesh analysis ----------------------------------------------------------------------------


def boundary_loops(faces: np.ndarray) -> List[np.ndarray]:
    """Ordered vertex loops along the mesh's boundary edges (edges used by one triangle)."""
    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    key = np.sort(e, axis=1)
    uniq, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    boundary = e[counts[inv.ravel()] == 1]
    nxt: Dict[int, List[int]] = {}
    for a, b in boundary:
        nxt.setdefault(int(a), []).append(int(b))
    loops: List[np.ndarray] = []
    used = set()
    for a0, b0 in boundary:
        a0, b0 = int(a0), int(b0)
        if (a0, b0) in used:
            continue
        loop = [a0]
        a, b = a0, b0
        used.add((a, b))
        while b != a0 and len(loop) <= len(boundary):
            loop.append(b)
            cands = [c for c in nxt.get(b, []) if (b, c) not in used]
            if not cands:
                break
            a, b = b, cands[0]
            used.add((a, b))
        if len(loop) >= 3:
            loops.append(np.asarray(loop, dtype=np.int64))
    return loops


def _hops_from(loop: np.ndarray, faces: np.ndarray, num_vertices: int, limit: int = 6) -> np.ndarray:
    from scipy import sparse

    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    adj = sparse.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(num_vertices, num_vertices))
    adj = ((adj + adj.T) > 0).astype(np.float64)
    hops = np.full(num_vertices, limit, dtype=np.int64)
    frontier = np.zeros(num_vertices, bool)
    frontier[loop] = True
    seen = frontier.copy()
    hops[loop] = 0
    for k in range(1, limit):
        frontier = (adj @ frontier.astype(np.float64) > 0) & ~seen
        if not frontier.any():
            break
        hops[frontier] = k
        seen |= frontier
    return hops


def _inside(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """``(P,)`` whether ``points (P, 2)`` lie inside the polygon ``poly (N, 2)`` (even-odd)."""
    return inside_polygon(points[:, 0], points[:, 1], poly)


@dataclass
class MeshTopology:
    """Boundary structure of a face mesh.

    Attributes:
        outer: the outline loop (longest boundary), or None for a closed mesh.
        mouth: the inner lip ring (the mouth hole's boundary), ordered, or None.
        eyes: eye-hole loops (0-2).
        mediapipe: vertices are MediaPipe Face Mesh landmarks (the open head).
    """

    outer: Optional[np.ndarray]
    mouth: Optional[np.ndarray]
    eyes: List[np.ndarray]
    mediapipe: bool
    loops: List[np.ndarray] = field(default_factory=list)


def analyse_mesh(faces: np.ndarray, ref: np.ndarray) -> MeshTopology:
    """Find the outline, the mouth hole and the eye holes of ``faces`` on the mesh ``ref (V, 3)``."""
    v = len(ref)
    loops = boundary_loops(faces)
    want = set(MP_INNER_LIPS)
    mediapipe = v >= 468 and any(set(l.tolist()) == want for l in loops)
    if not loops:
        return MeshTopology(None, None, [], mediapipe, loops)

    def perimeter(loop: np.ndarray) -> float:
        p = ref[loop]
        return float(np.linalg.norm(p - np.roll(p, -1, axis=0), axis=1).sum())

    per = [perimeter(l) for l in loops]
    order = np.argsort(per)[::-1]
    outer = loops[order[0]]
    holes = [loops[i] for i in order[1:]]
    mouth = None
    if mediapipe:
        for h in holes:
            if set(h.tolist()) == want:
                mouth = h
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    x_mid, width = 0.5 * (lo[0] + hi[0]), max(hi[0] - lo[0], 1e-12)
    cents = [ref[h].mean(axis=0) for h in holes]
    if mouth is None:
        cand = [i for i, c in enumerate(cents) if abs(c[0] - x_mid) < 0.12 * width and len(holes[i]) >= 6]
        if cand:
            mouth = holes[min(cand, key=lambda i: cents[i][1])]
    eyes = []
    if mediapipe:
        eyes = [h for h in holes if 33 in h or 263 in h][:2]
        return MeshTopology(outer, mouth, eyes, mediapipe, loops)
    my = ref[mouth].mean(axis=0)[1] if mouth is not None else -np.inf
    for i in np.argsort([-perimeter(h) for h in holes]):
        h, c = holes[i], cents[i]
        if mouth is not None and h is mouth:
            continue
        if abs(c[0] - x_mid) >= 0.12 * width and c[1] > my and len(h) >= 6 and len(eyes) < 2:
            eyes.append(h)
    return MeshTopology(outer, mouth, eyes, mediapipe, loops)


def _rigid_sets(topo: MeshTopology, ref: np.ndarray, head: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Vertex ids that follow the skull and the jaw."""
    v = len(ref)
    assets = getattr(head, "assets", None)
    if assets is not None and getattr(assets, "num_vertices", -1) == v:
        w = np.asarray(assets.lbs_weights)
        # the vertices that expressions and pose correctives move least make the rigid sets
        disp = np.zeros(v)
        for dirs in (np.asarray(assets.exprdirs), np.asarray(getattr(assets, "posedirs", np.zeros((v, 3, 0))))):
            if dirs.ndim == 3 and dirs.shape[:2] == (v, 3) and dirs.shape[2]:
                disp += np.linalg.norm(dirs, axis=1).max(axis=1)
        if w.shape[1] >= 3:
            skull_joint = 1 if (w[:, 1] > 0.95).sum() >= 8 else 0
            skull = np.where((w[:, skull_joint] > 0.95) & (w[:, 2] < 0.02))[0]
            jaw = np.where(w[:, 2] > 0.9)[0]
            if len(skull) >= 8 and len(jaw) >= 8:
                skull = skull[np.argsort(disp[skull], kind="stable")[:40]]
                jaw = jaw[np.argsort(disp[jaw], kind="stable")[:40]]
                if np.linalg.matrix_rank(ref[skull] - ref[skull].mean(0), tol=1e-6) == 3 and \
                        np.linalg.matrix_rank(ref[jaw] - ref[jaw].mean(0), tol=1e-6) == 3:
                    return skull, jaw
    if topo.mediapipe:
        return np.asarray(MP_STABLE), np.asarray(MP_JAW)
    # geometric fallback: above the eyes / below and around the mouth
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    mouth_p = ref[topo.mouth] if topo.mouth is not None else None
    eye_y = np.mean([ref[e][:, 1].mean() for e in topo.eyes]) if topo.eyes else lo[1] + 0.65 * (hi[1] - lo[1])
    skull = np.where(ref[:, 1] > eye_y + 0.05 * (hi[1] - lo[1]))[0]
    if mouth_p is not None:
        mw = np.ptp(mouth_p[:, 0])
        jaw = np.where((ref[:, 1] < mouth_p[:, 1].min() - 0.3 * mw) & (np.abs(ref[:, 0] - mouth_p[:, 0].mean()) < 1.2 * mw))[0]
    else:
        jaw = np.where(ref[:, 1] < lo[1] + 0.15 * (hi[1] - lo[1]))[0]
    rng = np.random.default_rng(0)
    skull = np.sort(rng.choice(skull, size=min(len(skull), 60), replace=False)) if len(skull) else skull
    jaw = np.sort(rng.choice(jaw, size=min(len(jaw), 60), replace=False)) if len(jaw) else jaw
    return skull, jaw


def _fan(ring_xy: np.ndarray, extra: Optional[np.ndarray] = None) -> np.ndarray:
    """``(N, 3)`` int32 triangles fanning a closed ring of ``N`` points around a centre point
    appended after them (index ``N``). The same read-only array for every ring of ``N``
    points: a backend that sees the same faces again keeps its uploaded indices.

    Example:
        >>> _fan(np.zeros((4, 2))).tolist()
        [[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]]
    """
    return _fan_of(len(ring_xy))


@functools.lru_cache(maxsize=64)
def _fan_of(n: int) -> np.ndarray:
    idx = np.arange(n)
    faces = np.stack([idx, (idx + 1) % n, np.full(n, n)], 1).astype(np.int32)
    faces.flags.writeable = False
    return faces


def _head_forward(head: Any, params: Any, zero_expression: bool) -> Optional[np.ndarray]:
    """The head's mesh for ``params`` (first frame): expression and jaw zeroed for the rest
    mesh; None when the parameters are not available."""
    try:
        import torch

        shape = _get(params, "shape")
        pose = _get(params, "pose")
        expr = _get(params, "expression")
        if shape is None or pose is None or expr is None:
            return None
        shape = torch.as_tensor(np.asarray(_to_numpy(shape, "shape"), dtype=np.float32))
        pose = torch.as_tensor(np.asarray(_to_numpy(pose, "pose"), dtype=np.float32)).reshape(-1, pose.shape[-1])[:1]
        expr = torch.as_tensor(np.asarray(_to_numpy(expr, "expression"), dtype=np.float32)).reshape(-1, expr.shape[-1])[:1]
        shape = shape.reshape(-1, shape.shape[-1])[:1]
        if zero_expression:
            expr = torch.zeros_like(expr)
            pose = pose.clone()
            if pose.shape[-1] == 15:
                pose[:, 6:] = 0
            else:
                pose[:, 3:] = 0
        offsets = _get(params, "offsets")
        with torch.no_grad():
            out = head(shape=shape, expression=expr, pose=pose, offsets=offsets)
        return out.vertices[0].detach().cpu().numpy().astype(np.float64)
    except Exception as exc:  # a head that does not match the params: fall back, say why
        log.warning("could not pose the head for the %s mesh (%s); using frame 0",
                    "rest" if zero_expression else "source", exc)
        return None
