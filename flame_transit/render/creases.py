"""Expression creases: thin painted folds that deepen as the skin between two landmarks compresses.

The coarse face mesh cannot fold, so wrinkles that make an expression legible are painted as
thin strips on the surface (both looks). Each :class:`Crease` is a polyline authored once in the
bundled open head's neutral template (metres, subject's left side, mirrored to the right), bound
to the skin triangles under it by barycentric coordinates, so it rides on any mesh with the
MediaPipe Face Mesh topology (the open head, any identity, any photo fit). Its strength is read
from the geometry, not from action-unit values, so it works for every expression source:

    strength = clip((shrink - ONSET) / (full - ONSET), 0, 1),  shrink = 1 - d_t / d_ref

(``shrink = d_t / d_ref - 1`` for the one crease that forms as its pair moves apart),

where ``d`` is the distance between the crease's landmark pair and ``d_ref`` that distance in the
reference face (the neutral face in the shaded look, the photo's own face in the photo look, so
folds the photo already has are not painted twice).

==================  ==========================  =============================================
crease              driven by (FACS)            landmark pair that shrinks
==================  ==========================  =============================================
forehead lines      AU1, AU2 (brow raise)       brow top -- upper forehead
glabellar furrows   AU4 (brow lowerer)          the two inner brow heads
crow's feet         AU6 (cheek raiser)          outer eye corner -- upper cheek
infraorbital furrow AU6 (cheek raiser)          lower lid -- cheek
nasolabial fold     AU12 (lip corner puller)    lip corner -- nose wing
nose wrinkles       AU9 (nose wrinkler)         nasion -- nose dorsum
mentolabial sulcus  AU17 (chin raiser)          chin boss -- menton (moving apart)
==================  ==========================  =============================================

Example:
    >>> rig = CreaseRig.for_template()
    >>> rig is not None and len(rig.names) >= 6
    True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["Crease", "CREASES", "CreaseRig", "ONSET"]

#: relative shrink below which no crease shows (noise, identity differences)
ONSET = 0.02


@dataclass(frozen=True)
class Crease:
    """One fold, authored on the subject's left (+X) of the neutral template and mirrored.

    Attributes:
        name: what it is.
        path: polyline ``((x, y), ...)`` in template metres (front view).
        pairs: landmark pairs ``(i, j)`` (left side; mirrored too) whose relative shrink drives
            the crease; the largest shrink of the pairs counts.
        full: relative shrink at which the crease is at full strength.
        half_width: half the strip's width, metres.
        depth: darkening at the centre line at full strength (ratio ``1 - depth``).
        apart: the crease forms as the pair moves apart (the chin boss pushed up, away from
            the menton, bunches the skin under the lower lip), not together.
        photo: also painted (and lifted, see :meth:`CreaseRig.lift`) in the photo look; False
            where the photo's own skin already shows the fold as the lids move.
    """

    name: str
    path: Tuple[Tuple[float, float], ...]
    pairs: Tuple[Tuple[int, int], ...]
    full: float
    half_width: float = 0.0012
    depth: float = 0.45
    apart: bool = False
    photo: bool = True


#: The folds. Paths were placed on a plot of the neutral template's landmarks.
CREASES: Tuple[Crease, ...] = (
    Crease("forehead_line_low", ((0.0, 0.0295), (0.012, 0.0300), (0.025, 0.0305), (0.038, 0.0300), (0.048, 0.028)),
           pairs=((296, 299), (336, 337)), full=0.30, depth=0.35),
    Crease("forehead_line_mid", ((0.0, 0.0355), (0.013, 0.0360), (0.027, 0.0360), (0.040, 0.0350), (0.050, 0.0325)),
           pairs=((296, 299), (336, 337)), full=0.36, depth=0.35),
    Crease("forehead_line_high", ((0.0, 0.0415), (0.014, 0.0420), (0.028, 0.0415), (0.040, 0.0400)),
           pairs=((296, 299), (336, 337)), full=0.42, depth=0.3),
    Crease("glabellar_furrow", ((0.0045, 0.0235), (0.0050, 0.0180), (0.0048, 0.0120)),
           pairs=((285, 55),), full=0.30, half_width=0.0011, depth=0.5),
    Crease("crows_foot_up", ((0.0575, 0.0030), (0.0640, 0.0070)), pairs=((359, 449),), full=0.15, depth=0.35),
    Crease("crows_foot_mid", ((0.0585, -0.0020), (0.0660, -0.0025)), pairs=((359, 449),), full=0.15, depth=0.35),
    Crease("crows_foot_down", ((0.0575, -0.0070), (0.0635, -0.0120)), pairs=((359, 449),), full=0.15, depth=0.35),
    # the furrow under the lower lid: a raised cheek bunches the skin below the lid into a bulge
    # (the narrowed, "smiling" eye of a felt smile); a tightened lid (AU7) moves away from it
    Crease("infraorbital_furrow", ((0.0240, -0.0095), (0.0300, -0.0115), (0.0360, -0.0125), (0.0420, -0.0118),
                                   (0.0465, -0.0105)),
           pairs=((374, 330),), full=0.18, depth=0.35, photo=False),
    Crease("nasolabial_fold", ((0.0245, -0.0385), (0.0290, -0.0480), (0.0335, -0.0580), (0.0370, -0.0680),
                               (0.0385, -0.0780)),
           pairs=((291, 358),), full=0.16, half_width=0.0015, depth=0.5),
    Crease("nose_wrinkle_upper", ((0.0, 0.0030), (0.0045, 0.0028), (0.0085, 0.0020)),
           pairs=((195, 168),), full=0.09, half_width=0.0009, depth=0.4),
    Crease("nose_wrinkle_lower", ((0.0, -0.0020), (0.0050, -0.0024), (0.0095, -0.0034)),
           pairs=((195, 168),), full=0.09, half_width=0.0009, depth=0.4),
    Crease("mentolabial_sulcus", ((0.0, -0.0860), (0.0080, -0.0855), (0.0150, -0.0835)),
           pairs=((18, 152),), full=0.12, half_width=0.0015, depth=0.35, apart=True),
)


def _resample(path: np.ndarray, step: float) -> np.ndarray:
    """The polyline resampled at about ``step`` metres."""
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(np.ceil(s[-1] / step)) + 1)
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, path[:, k]) for k in range(2)], axis=1)


def _strip(path: np.ndarray, half_width: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three rows (edge, centre, edge) along ``path (N, 2)``: points ``(3N, 2)``, the centre
    weight ``(3N,)`` (1 on the centre line, tapered to 0 at the ends) and triangles."""
    d = np.gradient(path, axis=0)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1)
    n = len(path)
    taper = np.sin(np.linspace(0.0, np.pi, n)) ** 0.5
    pts = np.concatenate([path - half_width * normal, path, path + half_width * normal])
    centre = np.concatenate([np.zeros(n), taper, np.zeros(n)])
    tris = []
    for r in (0, 1):
        a = r * n + np.arange(n - 1)
        b = a + 1
        c = a + n
        e = c + 1
        tris += [np.stack([a, c, b], 1), np.stack([b, c, e], 1)]
    return pts, centre, np.concatenate(tris)


def _locate(points: np.ndarray, verts2d: np.ndarray, faces: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Triangle ``(P,)`` and barycentric weights ``(P, 3)`` of 2D points in a front-view mesh;
    points outside every triangle take the nearest triangle's clamped weights."""
    a, b, c = (verts2d[faces[:, k]] for k in range(3))
    v0, v1 = b - a, c - a
    den = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]
    den = np.where(np.abs(den) < 1e-15, 1e-15, den)
    tri = np.empty(len(points), dtype=np.int64)
    bary = np.empty((len(points), 3))
    for s in range(0, len(points), 128):  # (128, F) at a time
        w = points[s:s + 128, None, :] - a[None]
        l1 = (w[..., 0] * v1[:, 1] - w[..., 1] * v1[:, 0]) / den
        l2 = (v0[:, 0] * w[..., 1] - v0[:, 1] * w[..., 0]) / den
        lam = np.stack([1.0 - l1 - l2, l1, l2], axis=-1)  # (n, F, 3)
        outside = -np.minimum(lam, 0.0).sum(axis=-1)  # 0 inside
        best = np.argmin(outside, axis=1)
        lb = np.clip(lam[np.arange(len(best)), best], 0.0, None)
        tri[s:s + 128] = best
        bary[s:s + 128] = lb / lb.sum(axis=1, keepdims=True)
    return faces[tri], bary


@dataclass
class CreaseRig:
    """The creases bound to a MediaPipe-topology mesh: one strip per crease and side.

    Attributes:
        names: crease name per strip (``"<name>_l"`` / ``"<name>_r"``).
        corners: ``(P, 3)`` vertex ids and ``weights (P, 3)`` barycentric weights of every strip
            point (all strips concatenated).
        centre: ``(P,)`` 1 on a strip's centre line, 0 on its edges.
        faces: ``(F, 3)`` strip triangles (indices into the points).
        strip_of_point: ``(P,)`` strip index of each point; ``strip_of_face (F,)`` of each triangle.
        pairs: per strip, the landmark pairs that drive it; ``full``, ``depth`` and ``sign``
            (+1: forms as the pair shrinks, -1: as it moves apart) per strip.
    """

    names: List[str]
    corners: np.ndarray
    weights: np.ndarray
    centre: np.ndarray
    faces: np.ndarray
    strip_of_point: np.ndarray
    pairs: List[np.ndarray]
    full: np.ndarray
    depth: np.ndarray
    sign: np.ndarray
    strip_of_face: np.ndarray

    def __post_init__(self) -> None:
        from scipy import sparse

        # derived once: every strip's pairs in one array (strips in order) and the (P, L)
        # barycentric matrix over the landmarks the strips sit on (ids < L)
        counts = np.array([len(pr) for pr in self.pairs])
        self._pairs = np.concatenate(self.pairs)
        self._pair_strip = np.repeat(np.arange(len(counts)), counts)
        self._pair_starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rows = np.repeat(np.arange(len(self.corners)), 3)
        self._matrix = sparse.csr_matrix((self.weights.ravel(), (rows, self.corners.ravel())),
                                         shape=(len(self.corners), int(self.corners.max()) + 1))

    @classmethod
    @functools.lru_cache(maxsize=4)
    def for_template(cls, width_scale: float = 1.0, look: str = "shaded") -> Optional["CreaseRig"]:
        """The rig on the bundled open head's template (None if it cannot be read); strips
        ``width_scale`` times as wide as authored; the creases of ``look`` (the photo look
        leaves out those with ``photo=False``)."""
        try:
            from ..head.io import OPEN_HEAD_PATH

            with np.load(OPEN_HEAD_PATH) as z:
                v = np.asarray(z["v_template"], dtype=np.float64)[:468]
                faces = np.asarray(z["f"], dtype=np.int64)
                mirror = np.asarray(z["mirror_index"], dtype=np.int64)[:468]
        except (OSError, KeyError, ValueError):
            return None
        faces = faces[(faces < 468).all(axis=1)]
        creases = [c for c in CREASES if c.photo or look != "photo"]
        return cls.build(v, faces, mirror, creases, width_scale=width_scale)

    @classmethod
    def build(cls, template: np.ndarray, faces: np.ndarray, mirror: np.ndarray,
              creases: Sequence[Crease] = CREASES, width_scale: float = 1.0) -> "CreaseRig":
        """Bind ``creases`` to a symmetric template ``(468, 3)`` (front view = x, y)."""
        names, corners, weights, centres, tris, owner, pairs, full, depth, sign = [], [], [], [], [], [], [], [], [], []
        face_owner: List[np.ndarray] = []
        offset = 0
        for crease in creases:
            for side, sx in (("l", 1.0), ("r", -1.0)):
                path = np.asarray(crease.path, dtype=np.float64) * np.array([sx, 1.0])
                pts, centre, f = _strip(_resample(path, 0.002), crease.half_width * width_scale)
                ids, bary = _locate(pts, template[:, :2], faces)
                k = len(names)
                names.append(f"{crease.name}_{side}")
                corners.append(ids)
                weights.append(bary)
                centres.append(centre)
                tris.append(f + offset)
                owner.append(np.full(len(pts), k))
                face_owner.append(np.full(len(f), k))
                pr = np.asarray(crease.pairs, dtype=np.int64)
                pairs.append(pr if side == "l" else mirror[pr])
                full.append(crease.full)
                depth.append(crease.depth)
                sign.append(-1.0 if crease.apart else 1.0)
                offset += len(pts)
        return cls(names, np.concatenate(corners), np.concatenate(weights), np.concatenate(centres),
                   np.concatenate(tris).astype(np.int32), np.concatenate(owner), pairs,
                   np.asarray(full), np.asarray(depth), np.asarray(sign), np.concatenate(face_owner))

    def interpolate(self, values: np.ndarray) -> np.ndarray:
        """Per-vertex ``values (V,)`` or ``(V, C)`` at the strip points ``(P,)`` / ``(P, C)``."""
        return np.asarray(self._matrix @ np.asarray(values)[: self._matrix.shape[1]])

    def strength(self, verts: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Per-strip strength ``(S,)`` in [0, 1] of ``verts (V, 3)`` against ``reference (V, 3)``."""
        a, b = self._pairs[:, 0], self._pairs[:, 1]
        d = np.linalg.norm(verts[a] - verts[b], axis=1)
        d0 = np.linalg.norm(reference[a] - reference[b], axis=1)
        shrink = np.maximum.reduceat(self.sign[self._pair_strip] * (1.0 - d / np.maximum(d0, 1e-9)),
                                     self._pair_starts)
        return np.clip((shrink - ONSET) / (self.full - ONSET), 0.0, 1.0)

    def ratio(self, verts: np.ndarray, reference: np.ndarray, visibility: Optional[np.ndarray] = None
              ) -> Tuple[np.ndarray, np.ndarray]:
        """Per-point darkening ``(P,)`` (1 = none) and the triangles of the creases that show
        (``(F', 3)``, empty when none does); ``visibility (P,)`` in [0, 1] scales the darkening
        (e.g. 0 where the photo shows hair, not skin)."""
        s = self.strength(verts, reference)
        dark = (self.depth * s)[self.strip_of_point] * self.centre
        if visibility is not None:
            dark = dark * visibility
        return 1.0 - dark, self.faces[(s > 0)[self.strip_of_face]]

    def lift(self, verts: np.ndarray, source_folds: np.ndarray, rest: np.ndarray, gain: float,
             visibility: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Per-point brightening ``(P,)`` (1 = none) where the photo's own face has a fold
        (``source_folds``: its :meth:`strength` against ``rest``) that the frame ``verts`` no
        longer has, both measured against the neutral ``rest`` face (a source smile's
        nasolabial folds and crow's feet fade as the smile goes), and the triangles of those
        folds (``(F', 3)``)."""
        gone = np.clip(source_folds - self.strength(verts, rest), 0.0, 1.0)
        up = (gain * self.depth * gone)[self.strip_of_point] * self.centre
        if visibility is not None:
            up = up * visibility
        return 1.0 + up, self.faces[(gone > 0)[self.strip_of_face]]

