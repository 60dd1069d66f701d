"""MediaPipe Face Mesh landmarks on any face mesh, found automatically.

A FLAME model (or any face mesh read by :func:`~flame_transit.head.load_head`) needs a
*landmark embedding* -- for each MediaPipe Face Mesh point a triangle and barycentric weights on
the mesh -- for the photo fit and for the AU -> FLAME map. Users rarely have one. This module
computes it from the model itself, the way one would by hand:

1. the neutral template is rendered frontally with the project's renderer (shaded look, the
   eyes drawn from the head's eye parts) and MediaPipe Face Mesh runs on the picture; a second,
   closer render framed on the face found by the first gives the landmarks used;
2. each detected point is back-projected into the mesh: the orthographic viewing ray through its
   pixel hits the front-most triangle under it (a triangle-id lookup), which gives the triangle
   and the barycentric weights. A point that falls into a hole (mouth slit, eye opening) takes
   the nearest front triangle;
3. quality: the mesh is rendered again turned left, right, up and down; MediaPipe's points in
   those views are compared with the projections of the embedded points (the reprojection
   residual, in fractions of the face width, landmarks 234-454).

The result is cached in the per-user cache folder (:func:`~flame_transit.io_utils.user_cache_dir`,
``heads/<content hash>_mediapipe_embedding.npz``) under a hash of the template and triangles, so
it is computed once per model. A user's own embedding (``load_head(path,
landmark_embedding=...)``) always wins.

Example (the open head's vertices are MediaPipe's landmarks, so it needs none of this):
    >>> from flame_transit.head import load_head
    >>> ensure_mediapipe_landmarks(load_head()).kind
    'open'
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..errors import AssetError
from ..io_utils import atomic_write_bytes, read_npz, user_cache_dir

__all__ = [
    "LandmarkEmbedding",
    "compute_mediapipe_embedding",
    "mediapipe_embedding",
    "ensure_mediapipe_landmarks",
    "model_digest",
    "back_project",
]

log = logging.getLogger(__name__)

_FORMAT = "flame_transit.mediapipe_embedding"
_VERSION = 1
#: MediaPipe Face Mesh points (468 mesh + 10 iris)
NUM_MEDIAPIPE = 478
#: cheek-to-cheek landmarks that define the face width
_WIDTH_PAIR = (234, 454)
#: views (yaw, pitch in degrees) whose back-projected landmarks are averaged with the frontal one
FIT_VIEWS: Tuple[Tuple[float, float], ...] = ((12.0, 0.0), (-12.0, 0.0), (0.0, 8.0), (0.0, -8.0))
#: views that measure the result (reprojection residuals), turned further than the fit views
CHECK_VIEWS: Tuple[Tuple[float, float], ...] = ((25.0, 0.0), (-25.0, 0.0), (0.0, 15.0), (0.0, -15.0))


@dataclass
class LandmarkEmbedding:
    """MediaPipe landmarks on a mesh, in FLAME's embedding layout.

    Attributes:
        lmk_face_idx: ``(L,)`` triangle of each landmark (in the model file's triangle list).
        lmk_b_coords: ``(L, 3)`` barycentric weights.
        landmark_indices: ``(L,)`` which MediaPipe Face Mesh point each landmark is.
        quality: reprojection residuals as fractions of the face width (``median``, ``p90``,
            ``max`` over the check views), ``misses`` (points that fell into a hole), seconds.
        digest: content hash of the model geometry it was computed for.
    """

    lmk_face_idx: np.ndarray
    lmk_b_coords: np.ndarray
    landmark_indices: np.ndarray
    quality: Dict[str, Any] = field(default_factory=dict)
    digest: str = ""

    def describe(self) -> str:
        q = self.quality
        if "median" not in q:
            return f"{len(self.lmk_face_idx)} landmarks"
        return (f"{len(self.lmk_face_idx)} MediaPipe landmarks, reprojection residual median "
                f"{q['median']:.1%} / 90th percentile {q['p90']:.1%} of the face width over "
                f"{q.get('views', 0)} check views, {q.get('misses', 0)} points in holes")

    def save(self, path: Any) -> Path:
        """Write an ``.npz`` with FLAME's keys (``lmk_face_idx``, ``lmk_b_coords``,
        ``landmark_indices``), loadable by ``load_head(path, landmark_embedding=...)``."""
        buf = io.BytesIO()
        header = {"format": _FORMAT, "version": _VERSION, "digest": self.digest, "quality": self.quality}
        np.savez(buf, lmk_face_idx=self.lmk_face_idx.astype(np.int64), lmk_b_coords=self.lmk_b_coords,
                 landmark_indices=self.landmark_indices.astype(np.int64), header_json=np.array(json.dumps(header)))
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: Any) -> "LandmarkEmbedding":
        data = read_npz(path, "landmark embedding", AssetError)
        header = json.loads(str(data.get("header_json", "{}")))
        if header.get("format") != _FORMAT or header.get("version") != _VERSION:
            raise AssetError(f"{path} is not a landmark embedding written by this version of flame_transit")
        return cls(np.asarray(data["lmk_face_idx"]), np.asarray(data["lmk_b_coords"]),
                   np.asarray(data["landmark_indices"]), dict(header.get("quality", {})), str(header.get("digest", "")))


def model_digest(assets: Any, *arrays: str) -> str:
    """Content hash (sha256, 16 hex digits) of a model's template, file triangles and the named
    extra arrays of its :class:`~flame_transit.head.HeadAssets`."""
    h = hashlib.sha256()
    for arr in (assets.v_template, assets.embedding_faces) + tuple(getattr(assets, a) for a in arrays):
        arr = np.ascontiguousarray(arr, dtype=np.float64 if np.asarray(arr).dtype.kind == "f" else np.int64)
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()[:16]


# -- geometry --------------------------------------------------------------------------------------
def back_project(xy: np.ndarray, vertices: np.ndarray, faces: np.ndarray, chunk: int = 64) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Front-most triangle under each point seen along -Z (an orthographic triangle-id lookup).

    Args:
        xy: ``(N, 2)`` points in the mesh's x, y.
        vertices: ``(V, 3)``; the viewer looks down -Z (larger z = nearer).
        faces: ``(F, 3)``.

    Returns:
        triangle ``(N,)``, barycentric weights ``(N, 3)``, and ``hit (N,)``: False where the ray
        missed every triangle (then the nearest triangle in x, y with clamped weights).

    Example:
        >>> v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1]])
        >>> tri, bary, hit = back_project(np.array([[0.25, 0.25]]), v, np.array([[0, 1, 2], [3, 4, 5]]))
        >>> int(tri[0]), bary[0].round(2).tolist(), bool(hit[0])
        (1, [0.5, 0.25, 0.25], True)
    """
    from scipy.spatial import cKDTree

    tri_v = vertices[faces]  # (F, 3, 3)
    a, b, c = tri_v[:, 0, :2], tri_v[:, 1, :2], tri_v[:, 2, :2]
    e1, e2 = b - a, c - a
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-18
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    n = len(xy)
    out_tri = np.zeros(n, dtype=np.int64)
    out_bary = np.zeros((n, 3))
    hit = np.zeros(n, dtype=bool)
    for s in range(0, n, chunk):
        p = xy[s:s + chunk, None, :] - a[None]  # (n, F, 2)
        u = (p[..., 0] * e2[:, 1] - p[..., 1] * e2[:, 0]) * inv
        v = (e1[:, 0] * p[..., 1] - e1[:, 1] * p[..., 0]) * inv
        w = 1.0 - u - v
        inside = ok & (u >= -1e-9) & (v >= -1e-9) & (w >= -1e-9)
        z = w * tri_v[None, :, 0, 2] + u * tri_v[None, :, 1, 2] + v * tri_v[None, :, 2, 2]
        z = np.where(inside, z, -np.inf)
        best = np.argmax(z, axis=1)
        rows = np.arange(len(best))
        hit[s:s + chunk] = np.isfinite(z[rows, best])
        out_tri[s:s + chunk] = best
        out_bary[s:s + chunk] = np.stack([w[rows, best], u[rows, best], v[rows, best]], axis=1)
    if not hit.all():
        # holes: the front-most of the triangles nearest in x, y, weights clamped onto it
        centroids = tri_v.mean(axis=1)
        tree = cKDTree(centroids[:, :2])
        k = min(8, len(faces))
        _, near = tree.query(xy[~hit], k=k)
        near = np.asarray(near).reshape(-1, k)
        pick = near[np.arange(len(near)), np.argmax(centroids[near, 2], axis=1)]
        tv = tri_v[pick]
        q = xy[~hit] - tv[:, 0, :2]
        d1, d2 = tv[:, 1, :2] - tv[:, 0, :2], tv[:, 2, :2] - tv[:, 0, :2]
        dd = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
        dd = np.where(np.abs(dd) > 1e-18, dd, 1.0)
        uu = (q[:, 0] * d2[:, 1] - q[:, 1] * d2[:, 0]) / dd
        vv = (d1[:, 0] * q[:, 1] - d1[:, 1] * q[:, 0]) / dd
        bary = np.clip(np.stack([1.0 - uu - vv, uu, vv], axis=1), 0.0, None)
        bary /= np.maximum(bary.sum(axis=1, keepdims=True), 1e-12)
        out_tri[~hit], out_bary[~hit] = pick, bary
    return out_tri, out_bary, hit


def _rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("yx", [yaw_deg, pitch_deg], degrees=True).as_matrix()


class _View:
    """An orthographic square view of ``verts`` framing the box ``(lo, hi)`` in x, y."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, size: int, fill: float) -> None:
        from ..params import crop_to_image_matrix

        centre = (lo + hi) / 2.0
        extent = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-9))
        self.cam = np.array([[2.0 * fill / extent, -centre[0], -centre[1]]])
        self.a = crop_to_image_matrix((size / 2.0, size / 2.0), float(size))
        self.size = size

    def params(self) -> Dict[str, Any]:
        return {"cam": self.cam, "crop_to_image": self.a[None]}

    def project(self, pts: np.ndarray) -> np.ndarray:
        s, tx, ty = self.cam[0]
        n = s * (pts[:, :2] + [tx, ty])
        return n @ self.a[:, :2].T + self.a[:, 2]

    def unproject(self, uv: np.ndarray) -> np.ndarray:
        s, tx, ty = self.cam[0]
        n = np.linalg.solve(self.a[:, :2], (uv - self.a[:, 2]).T).T
        return n / s - [tx, ty]


def _detect(renderer: Any, verts: np.ndarray, faces: np.ndarray, head: Any, view: _View) -> Optional[np.ndarray]:
    from ..encode.landmarks import detect_all_faces

    img = renderer.render(verts, faces, view.params(), look="shaded", size=(view.size, view.size), head=head,
                          mouth=False)
    found = detect_all_faces(img, max_num_faces=1)
    return None if not found else np.asarray(found[0], dtype=np.float64)


def _search_boxes(verts: np.ndarray) -> list:
    """Point sets to frame for the first detection: the whole mesh; its upper 60 % (a head with
    neck and shoulders); a box around the front-most point (the nose tip) half the mesh wide."""
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    upper = verts[verts[:, 1] >= hi[1] - 0.6 * (hi[1] - lo[1])]
    tip = verts[np.argmax(verts[:, 2])]
    half = 0.25 * max(hi[0] - lo[0], 1e-9)
    around_tip = np.array([tip - [half, 1.2 * half, 0.0], tip + [half, 1.0 * half, 0.0]])
    return [verts, upper, around_tip]


def _framed(points: np.ndarray, size: int) -> _View:
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    pad = 0.25 * (hi - lo)
    return _View(lo - pad, hi + pad, size, 0.9)


def compute_mediapipe_embedding(head: Any, *, size: int = 768, progress: bool = False) -> LandmarkEmbedding:
    """Find MediaPipe Face Mesh's 478 points on a head's neutral template (see module doc).

    The points are back-projected in a frontal view and in :data:`FIT_VIEWS` (the face turned
    a little), averaged per landmark in 3D and put back onto the nearest of the triangles the
    views hit; :data:`CHECK_VIEWS` (turned further) measure the reprojection residual.

    Args:
        head: a :class:`~flame_transit.head.Head` whose template faces +Z with +Y up (FLAME's
            frame).
        size: render size in pixels.
        progress: a progress bar over the renders.

    Raises:
        AssetError: MediaPipe found no face on the render (not a face mesh, or not facing +Z);
            the message says to pass an embedding file instead.
    """
    from trimesh.triangles import closest_point, points_to_barycentric

    from ..render import get_renderer

    t0 = time.perf_counter()
    a = head.assets
    verts = np.asarray(a.v_template, dtype=np.float64)
    faces = np.asarray(a.embedding_faces, dtype=np.int64)
    skin = np.asarray(a.faces, dtype=np.int64)
    lookup = {tuple(t): i for i, t in enumerate(faces.tolist())}
    to_file = np.array([lookup[tuple(t)] for t in skin.tolist()], dtype=np.int64)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 + len(FIT_VIEWS) + len(CHECK_VIEWS), desc="MediaPipe landmarks on the head", unit="view")
    with get_renderer("gl") as renderer:
        pts, whole = None, None
        for box in _search_boxes(verts):  # the whole mesh first, then where a face would be
            whole = _framed(box, size)
            pts = _detect(renderer, verts, skin, head, whole)
            if pts is not None:
                break
        if pts is None:
            raise AssetError(
                f"MediaPipe found no face on a frontal render of head {head.name!r}, so its MediaPipe "
                "landmarks cannot be found automatically; the mesh must be a face looking along +Z with "
                "+Y up (FLAME's frame). Or pass a landmark embedding: "
                "load_head(path, landmark_embedding='mediapipe_landmark_embedding.npz')"
            )
        face = np.concatenate([whole.unproject(pts[:, :2]), np.zeros((len(pts), 1))], axis=1)
        centre = verts.mean(axis=0)
        estimates, hits, candidates = [], [], []
        for yaw, pitch in ((0.0, 0.0),) + FIT_VIEWS:
            rot = _rotation(yaw, pitch)
            guess = np.median(np.stack(estimates), axis=0) if estimates else face
            view = _framed((guess - centre) @ rot.T + centre, size)
            rv = (verts - centre) @ rot.T + centre
            found = _detect(renderer, rv, skin, head, view)
            if bar is not None:
                bar.update(2 if not estimates else 1)
            if found is None:
                continue
            tri, bary, hit = back_project(view.unproject(found[:, :2]), rv, skin)
            estimates.append(np.einsum("lk,lkc->lc", bary, verts[skin[tri]]))
            candidates.append(tri)
            hits.append(hit)
        if not estimates:
            raise AssetError(f"MediaPipe lost the face of head {head.name!r} when framed closer; pass a landmark "
                             "embedding: load_head(path, landmark_embedding=...)")
        points, tri_skin = _snap(np.median(np.stack(estimates), axis=0), np.stack(candidates, axis=1), verts, skin,
                                 closest_point)
        points, tri_skin, registration = _register_open_head(points, tri_skin, verts, skin, closest_point,
                                                             np.asarray(a.lbs_weights, dtype=np.float64))
        width = float(np.linalg.norm(points[_WIDTH_PAIR[1]] - points[_WIDTH_PAIR[0]])) or float(np.ptp(points[:, 0]))
        resid = []
        for yaw, pitch in CHECK_VIEWS:
            rot = _rotation(yaw, pitch)
            rp = (points - centre) @ rot.T + centre
            view = _framed(rp, size)
            found = _detect(renderer, (verts - centre) @ rot.T + centre, skin, head, view)
            if bar is not None:
                bar.update(1)
            if found is None:
                continue
            px_per_m = float(view.cam[0, 0] * abs(view.a[0, 0]))
            err = np.linalg.norm(view.project(rp) - found[:, :2], axis=1) / (px_per_m * width)
            resid.append(err[:468])
    if bar is not None:
        bar.close()
    bary = np.clip(points_to_barycentric(verts[skin[tri_skin]], points), 0.0, None)
    bary /= np.maximum(bary.sum(axis=1, keepdims=True), 1e-12)
    quality: Dict[str, Any] = {"views": len(resid), "fit_views": len(estimates), **registration,
                               "misses": int((~hits[0]).sum()),
                               "face_width_m": width, "seconds": round(time.perf_counter() - t0, 2)}
    if resid:
        allr = np.concatenate(resid)
        quality.update(median=float(np.median(allr)), p90=float(np.percentile(allr, 90)), max=float(allr.max()))
    emb = LandmarkEmbedding(to_file[tri_skin], bary, np.arange(NUM_MEDIAPIPE, dtype=np.int64), quality, model_digest(a))
    log.info("MediaPipe landmarks of head %s: %s (%.1f s)", head.name, emb.describe(), time.perf_counter() - t0)
    return emb


def _register_open_head(points: np.ndarray, tri: np.ndarray, verts: np.ndarray, faces: np.ndarray,
                        closest_point: Any, weights: Optional[np.ndarray] = None, iterations: int = 4) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
    """Refine MediaPipe's points by registering the open head's neutral onto the mesh.

    The open head's vertices 0-467 are MediaPipe's points. A similarity (Umeyama) and its 16
    identity coefficients (ridge) are fitted to the detected points ``(478, 3)`` (robustly, the
    face outline left out: on a render it sits on the silhouette, biased inwards); each
    registered point then moves to the closest point of the mesh, unless that is further than
    three RMS registration residuals from the detection (there the detection stays). The result
    is a smooth, consistent correspondence instead of per-point detection noise.

    Returns:
        points ``(478, 3)``, their triangles ``(478,)`` and quality numbers (fractions of the
        face width): ``registration_rms`` (open head vs detections), ``registered`` (share of
        points taken from the registration).
    """
    from scipy.spatial import cKDTree

    from .io import load_head_assets
    from ..geometry import similarity_transform

    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    open_head = load_head_assets()
    n = 468
    base = open_head.v_template[:n]
    dirs = open_head.shapedirs[:n]  # (n, 3, S) identity directions, 1.0 = one standard deviation
    target = points[:n]
    width = float(np.linalg.norm(points[_WIDTH_PAIR[1]] - points[_WIDTH_PAIR[0]]))
    # the face outline is detected on the render's silhouette, biased inwards: it does not vote;
    # the others are down-weighted beyond 1.5 median residuals (Huber-like)
    oval = np.unique(np.asarray(list(FACEMESH_FACE_OVAL), dtype=np.int64))
    w = np.ones(n)
    w[oval] = 0.0
    beta = np.zeros(dirs.shape[2])
    a = dirs.reshape(n, 3, -1)
    prior = (0.01 * np.linalg.norm(base[454] - base[234])) ** 2  # identity prior, ~1 % of the face width
    for _ in range(iterations):
        shaped = base + dirs @ beta
        s, rot, t = similarity_transform(shaped, target, w)
        local = ((target - t) @ rot) / s - base  # detections in the open head's frame, minus its template
        aw = (a * np.sqrt(w)[:, None, None]).reshape(3 * n, -1)
        bw = (local * np.sqrt(w)[:, None]).reshape(-1)
        beta = np.clip(np.linalg.solve(aw.T @ aw + prior * np.eye(aw.shape[1]), aw.T @ bw), -3.0, 3.0)
        shaped = base + dirs @ beta
        s, rot, t = similarity_transform(shaped, target, w)
        r = np.linalg.norm(s * shaped @ rot.T + t - target, axis=1)
        w = np.minimum(1.0, 1.5 * np.median(r[w > 0]) / np.maximum(r, 1e-12))
        w[oval] = 0.0
    shaped = base + dirs @ beta
    s, rot, t = similarity_transform(shaped, target, w)
    registered = s * shaped @ rot.T + t
    resid = np.linalg.norm(registered - target, axis=1)
    rms = float(np.sqrt(np.mean(resid**2)))
    centroids = verts[faces].mean(axis=1)
    k = min(24, len(faces))
    _, near = cKDTree(centroids).query(registered, k=k)
    near = np.asarray(near).reshape(n, k)
    # between touching lips the closest point may lie on the wrong lip: prefer triangles whose
    # jaw skinning agrees with the open head's at that landmark (lips: 0 above, ~1 below)
    penalty = None
    if weights is not None and weights.shape[1] > 2 and open_head.lbs_weights.shape[1] > 2:
        jaw_tri = weights[faces[near], 2].mean(axis=-1)  # (n, k)
        penalty = 0.02 * width * np.abs(jaw_tri - open_head.lbs_weights[:n, 2][:, None])
    snapped, snapped_tri = _snap(registered, near, verts, faces, closest_point, penalty)
    take = np.linalg.norm(snapped - target, axis=1) <= 3.0 * rms
    out, out_tri = points.copy(), tri.copy()
    out[:n][take], out_tri[:n][take] = snapped[take], snapped_tri[take]
    return out, out_tri, {"registration_rms": rms / max(width, 1e-12), "registered": float(take.mean())}


def _snap(points: np.ndarray, candidates: np.ndarray, verts: np.ndarray, faces: np.ndarray,
          closest_point: Any, penalty: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Each point onto the nearest of its candidate triangles ``(L, C)`` (distance plus an
    optional ``penalty (L, C)``): (points, triangles)."""
    L, C = candidates.shape
    tris = verts[faces[candidates.reshape(-1)]]
    near = closest_point(tris, np.repeat(points, C, axis=0)).reshape(L, C, 3)
    cost = np.linalg.norm(near - points[:, None], axis=2)
    best = np.argmin(cost if penalty is None else cost + penalty, axis=1)
    rows = np.arange(L)
    return near[rows, best], candidates[rows, best]


def _cache_file(digest: str) -> Optional[Path]:
    folder = user_cache_dir("heads")
    return None if folder is None else folder / f"{digest}_mediapipe_embedding.npz"


def mediapipe_embedding(head: Any, *, cache: bool = True, progress: bool = False) -> LandmarkEmbedding:
    """:func:`compute_mediapipe_embedding`, read from / written to the per-user cache."""
    digest = model_digest(head.assets)
    path = _cache_file(digest) if cache else None
    if path is not None and path.is_file():
        try:
            emb = LandmarkEmbedding.load(path)
            if emb.digest == digest:
                return emb
        except (AssetError, KeyError, ValueError) as exc:
            log.warning("ignoring the unreadable cache file %s (%s)", path, exc)
    emb = compute_mediapipe_embedding(head, progress=progress)
    if path is not None:
        try:
            emb.save(path)
        except OSError as exc:  # a read-only cache is not an error: recompute next time
            log.warning("could not cache the landmark embedding in %s (%s)", path, exc)
    return emb


def ensure_mediapipe_landmarks(head: Any, *, progress: bool = False) -> Any:
    """Give ``head`` MediaPipe landmarks when it has none (in place; returns it).

    The open head's vertices are MediaPipe's points and a user's embedding is kept; any other
    head gets :func:`mediapipe_embedding` (computed once per model, then cached).
    """
    if getattr(head, "landmark_indices", None) is not None or getattr(head, "landmark_tri", None) is not None:
        return head
    emb = mediapipe_embedding(head, progress=progress)
    head.attach_landmark_embedding(emb.lmk_face_idx, emb.lmk_b_coords, emb.landmark_indices)
    head.assets.meta["landmark_embedding"] = "automatic: " + emb.describe()
    head.assets.meta["landmark_embedding_quality"] = dict(emb.quality)
    return head
