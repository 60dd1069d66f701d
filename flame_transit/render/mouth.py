"""Mouth interior geometry: a dark cavity behind the lips, tongue, upper and lower teeth rows
with gums.

Face meshes (the open head, FLAME) have a hole between the lips. What shows through it is
built here, per frame, from the posed skin alone:

* the **upper** teeth and gums follow the skull: a rigid transform fitted (Kabsch) to
  vertices that expressions barely move (skull-weighted, smallest expression displacement);
* the **lower** teeth, gums and the tongue follow the jaw: a rigid transform fitted to
  jaw-weighted vertices (chin, jaw line);
* the **cavity** is a bag whose front rim *is* the inner lip ring of the frame (so it always
  fills the opening exactly) and whose back rim is attached half to the skull, half to the jaw.

Everything is placed in a *mouth frame* measured on a rest (neutral, closed-mouth) mesh: origin
at the stomion (where the lips meet), x from one mouth corner to the other, y up, z towards the
viewer; sizes scale with the mouth width (an adult mouth is ~50 mm wide). The tooth sizes are
typical adult crown widths / heights.

Example:
    >>> import numpy as np
    >>> from flame_transit.render.mouth import superellipsoid
    >>> v, n, f = superellipsoid((1.0, 1.0, 1.0), 0.5, nu=8, nv=6)
    >>> v.shape == n.shape, f.shape[1]
    (True, 3)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ..geometry import face_normals, similarity_transform

__all__ = [
    "MATERIALS",
    "MouthGeometry",
    "MouthRig",
    "SEGMENTS",
    "kabsch",
    "superellipsoid",
    "visible_through",
]

#: material ids of mouth geometry (index into a palette)
MATERIALS = ("teeth", "gum", "tongue", "cavity_front", "cavity_back")
TEETH, GUM, TONGUE, CAVITY_FRONT, CAVITY_BACK = range(5)

#: MediaPipe Face Mesh landmark ids (open head vertex ids) used when no head is given
MP_INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
MP_LOWER_INNER_LIP = (324, 318, 402, 317, 14, 87, 178, 88, 95)
MP_MOUTH_CORNERS = (61, 291)
MP_STABLE = (10, 109, 338, 67, 297, 151, 9, 8, 168, 6, 197, 195, 5, 234, 454, 127, 356, 162, 389, 21, 251, 54, 284)
MP_JAW = (152, 148, 176, 149, 150, 136, 172, 377, 400, 378, 379, 365, 397, 175, 199, 200, 171, 396, 140, 369)

# typical adult crowns, midline outwards: (width, visible crown height, labio-lingual depth), metres
_UPPER_TEETH = ((0.0085, 0.0105, 0.0070), (0.0066, 0.0090, 0.0062), (0.0076, 0.0100, 0.0078),
                (0.0070, 0.0085, 0.0088), (0.0066, 0.0078, 0.0088))
_LOWER_TEETH = ((0.0054, 0.0090, 0.0060), (0.0060, 0.0090, 0.0062), (0.0070, 0.0100, 0.0072),
                (0.0070, 0.0082, 0.0078), (0.0071, 0.0078, 0.0082))
_MOUTH_WIDTH = 0.050  # metres, corner to corner, at rest


#: (around, pole to pole) segments of a tooth, its gum and the tongue, at each level of detail;
#: "low" serves mouths under :data:`LOW_DETAIL_BELOW_PX` wide on screen, where a front tooth is
#: under ~30 px and the finer facets do not show (a software rasteriser pays per triangle)
SEGMENTS = {"full": ((12, 8), (10, 6), (16, 10)), "low": ((8, 6), (8, 4), (12, 8))}
LOW_DETAIL_BELOW_PX = 180.0


def kabsch(src: np.ndarray, dst: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Rigid transform ``(R (..., 3, 3), t (..., 3))`` minimising ``|R @ src_i + t - dst_i|``
    over ``(..., N, 3)`` points; ``src`` and ``dst`` broadcast (one rest set against a batch of
    frames fits them all in one go).

    Example:
        >>> p = np.random.default_rng(0).normal(size=(10, 3))
        >>> r, t = kabsch(p, p + 1.0)
        >>> np.allclose(r, np.eye(3)), np.allclose(t, 1.0)
        (True, True)
        >>> r, t = kabsch(p, np.stack([p, p + 2.0]))
        >>> r.shape, t[:, 0].round(6).tolist()
        ((2, 3, 3), [0.0, 2.0])
    """
    _, r, t = similarity_transform(*np.broadcast_arrays(src, dst), scale=False)
    return r, t


def _median(values: np.ndarray) -> float:
    """``np.median`` of a short, non-empty 1-D array of finite values, the same value without
    its per-call cost (~10 µs, twice per rendered frame).

    Example:
        >>> _median(np.array([3.0, 1.0, 2.0])), _median(np.array([4.0, 1.0, 3.0, 2.0]))
        (2.0, 2.5)
    """
    v = np.sort(values)
    n = len(v)
    return float(v[n // 2]) if n % 2 else float((v[n // 2 - 1] + v[n // 2]) / 2.0)


def _spow(x: np.ndarray, e: float) -> np.ndarray:
    return np.sign(x) * np.abs(x) ** e


def superellipsoid(
    half: Sequence[float], exponent: float, nu: int = 12, nv: int = 8, exponent_v: Optional[float] = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A closed superellipsoid (rounded box) centred at the origin.

    Args:
        half: half sizes ``(a, b, c)`` along x, y, z.
        exponent: around-the-equator roundness (1 = ellipsoid, -> 0 = box).
        nu, nv: segments around and from pole to pole.
        exponent_v: pole-to-pole roundness (default: ``exponent``).

    Returns:
        vertices ``(N, 3)``, unit normals ``(N, 3)``, faces ``(F, 3)`` (outward, CCW).
    """
    a, b, c = (float(x) for x in half)
    e1 = float(exponent if exponent_v is None else exponent_v)
    e2 = float(exponent)
    th = np.linspace(-np.pi / 2, np.pi / 2, nv + 1)
    ph = np.linspace(-np.pi, np.pi, nu + 1)
    tt, pp = np.meshgrid(th, ph, indexing="ij")  # (nv+1, nu+1)
    ct, st, cp, sp = np.cos(tt), np.sin(tt), np.cos(pp), np.sin(pp)
    ct = np.maximum(ct, 0.0)
    x = a * _spow(ct, e1) * _spow(cp, e2)
    y = b * _spow(st, e1)
    z = c * _spow(ct, e1) * _spow(sp, e2)
    nx = _spow(ct, 2 - e1) * _spow(cp, 2 - e2) / a
    ny = _spow(st, 2 - e1) / b
    nz = _spow(ct, 2 - e1) * _spow(sp, 2 - e2) / c
    verts = np.stack([x, y, z], -1).reshape(-1, 3)
    norms = np.stack([nx, ny, nz], -1).reshape(-1, 3)
    ln = np.linalg.norm(norms, axis=1, keepdims=True)
    poles = ln[:, 0] < 1e-9
    norms = norms / np.maximum(ln, 1e-12)
    norms[poles] = np.array([0.0, 1.0, 0.0]) * np.sign(verts[poles, 1:2] + 1e-30)
    i, j = np.meshgrid(np.arange(nv), np.arange(nu), indexing="ij")
    v00 = (i * (nu + 1) + j).ravel()
    v01 = v00 + 1
    v10 = v00 + (nu + 1)
    v11 = v10 + 1
    faces = np.concatenate([np.stack([v00, v01, v11], 1), np.stack([v00, v11, v10], 1)])
    # orient outwards
    tri = verts[faces]
    fn = face_normals(verts, faces)
    area = np.linalg.norm(fn, axis=1)
    keep = area > 1e-14
    faces = faces[keep]
    if np.einsum("ij,ij->", fn[keep], tri[keep].mean(axis=1)) < 0:
        faces = faces[:, ::-1]
    return verts, norms, np.ascontiguousarray(faces, dtype=np.int32)


@dataclass
class _Part:
    """Rest-frame geometry of parts that move together."""

    verts: np.ndarray
    normals: np.ndarray
    faces: np.ndarray
    material: np.ndarray
    ao: np.ndarray


def _merge(parts: List[_Part]) -> _Part:
    verts, norms, faces, mat, ao = [], [], [], [], []
    off = 0
    for p in parts:
        verts.append(p.verts)
        norms.append(p.normals)
        faces.append(p.faces + off)
        mat.append(p.material)
        ao.append(p.ao)
        off += len(p.verts)
    if not parts:
        z = np.zeros((0, 3))
        return _Part(z, z, np.zeros((0, 3), np.int32), np.zeros(0, np.int32), np.zeros(0))
    return _Part(np.concatenate(verts), np.concatenate(norms), np.concatenate(faces).astype(np.int32),
                 np.concatenate(mat).astype(np.int32), np.concatenate(ao))


@dataclass
class MouthGeometry:
    """One frame of mouth geometry in the head frame."""

    verts: np.ndarray  #: (N, 3)
    normals: np.ndarray  #: (N, 3) unit
    faces: np.ndarray  #: (F, 3)
    material: np.ndarray  #: (N,) index into :data:`MATERIALS`
    ao: np.ndarray  #: (N,) ambient occlusion factor in 0..1
    cavity_faces: np.ndarray  #: (Fc, 3) faces of the cavity (drawn two-sided), into ``verts``
    opening: float = 0.0  #: lip gap at the midline / mouth width
    facing: Optional[np.ndarray] = None  #: (F,) bool, ``faces`` that face the viewer (+z)


def _arch(bulge: float, lateral_scale: float = 1.0):
    """Points along a parabolic dental arch ``z = -k x^2`` (mouth frame, unit mouth scale);
    returns a function of arc length s -> (x, z, tangent, outward normal)."""
    k = 24.0  # 1/m: 7 mm back at the canines (17 mm out)
    xs = np.linspace(0, 0.045, 600) * lateral_scale
    zs = -k * xs ** 2 / lateral_scale ** 2
    seg = np.hypot(np.diff(xs), np.diff(zs))
    s_cum = np.concatenate([[0.0], np.cumsum(seg)])

    def at(s: float):
        x = float(np.interp(s, s_cum, xs))
        z = float(np.interp(s, s_cum, zs)) + bulge
        dzdx = -2 * k * x / lateral_scale ** 2
        tan = np.array([1.0, 0.0, dzdx]) / np.hypot(1.0, dzdx)
        nrm = np.array([-tan[2], 0.0, tan[0]])  # outward (towards +z at the front)
        return x, z, tan, nrm

    return at


def _teeth_row(upper: bool, seg) -> Tuple[_Part, float]:
    """One row of teeth and gums (mouth frame, unit mouth scale) and its incisal edge height."""
    table = _UPPER_TEETH if upper else _LOWER_TEETH
    # incisal edge heights and arch placement (mouth frame, metres at unit scale)
    if upper:
        edge0, front = -0.0030, -0.0035
    else:
        edge0, front = -0.0010, -0.0062  # 2 mm overbite, ~2.5 mm overjet behind the uppers
    arch = _arch(front, 1.0 if upper else 0.93)
    parts: List[_Part] = []
    for side in (1.0, -1.0):
        s = 0.0
        for i, (w, h, d) in enumerate(table):
            x, z, tan, nrm = arch(s + w / 2)
            s += w
            rise = 10.0 * x ** 2  # smile line: edges rise towards the back
            root = 0.004
            total = h + root
            if upper:
                yc = edge0 + rise + total / 2
            else:
                yc = edge0 - rise - total / 2
            v, nn, f = superellipsoid((w / 2 * 0.985, total / 2, d / 2), 0.35, nu=seg[0][0], nv=seg[0][1], exponent_v=0.45)
            # soften the crown's curvature: photos show teeth as a nearly even row
            nn = nn + np.array([0.0, 0.0, 1.6]) * (nn[:, 2:3] > -0.2)
            nn /= np.linalg.norm(nn, axis=1, keepdims=True)
            rot = np.stack([tan * np.array([side, 1, 1]), [0.0, 1.0, 0.0], nrm * np.array([side, 1, 1])])
            if side < 0:
                f = f[:, ::-1]
                rot = rot.copy()
            centre = np.array([side * x, yc, z]) - rot[2] * (d / 2)
            vv = v @ rot + centre
            nv_ = nn @ rot
            # occlusion: darker towards the back of the mouth and up under the gum
            depth_back = (front - (vv[:, 2])) / 0.03
            ao = np.clip(1.0 - 0.6 * depth_back, 0.3, 1.0) * (1.0 - 0.1 * i / len(table))
            # soft gradient: brightest at the incisal edge, a little darker towards the gum
            from_edge = np.abs(vv[:, 1] - (edge0 + (rise if upper else -rise))) / h
            ao = ao * (1.0 - 0.16 * np.clip(from_edge, 0.0, 1.0))
            parts.append(_Part(vv, nv_, f, np.full(len(vv), TEETH), ao))
            # gum over the root end of the crown
            gh = 0.0055
            gy = (edge0 + rise + h + gh / 2 - 0.0008) if upper else (edge0 - rise - h - gh / 2 + 0.0008)
            gv, gn, gf = superellipsoid((w / 2 * 1.12, gh / 2 + 0.002, d / 2 * 1.05), 0.6, nu=seg[1][0], nv=seg[1][1])
            if side < 0:
                gf = gf[:, ::-1]
            gcentre = np.array([side * x, gy, z + 0.0006]) - rot[2] * (d / 2)
            gvv = gv @ rot + gcentre
            gao = np.clip(1.0 - 0.9 * (front - gvv[:, 2]) / 0.03, 0.2, 1.0)
            parts.append(_Part(gvv, gn @ rot, gf, np.full(len(gvv), GUM), gao))
    return _merge(parts), edge0


@functools.lru_cache(maxsize=len(SEGMENTS))
def _unit_parts(detail: str) -> Tuple[_Part, _Part]:
    """``(upper, lower)`` parts at level of ``detail``, in the mouth frame at unit mouth scale
    (a 50 mm mouth): every size, and nothing else, scales with the mouth width, so each
    rig scales these instead of tessellating its own (about 30 ms a clip). Read-only."""
    seg = SEGMENTS[detail]
    upper, _ = _teeth_row(True, seg)
    lower, lower_edge = _teeth_row(False, seg)
    # tongue on the floor of the mouth, behind the lower incisors
    tv, tn, tf = superellipsoid((0.017, 0.0065, 0.018), 0.7, nu=seg[2][0], nv=seg[2][1])
    tv[:, 1] += 0.004 * np.clip(-tv[:, 2] / 0.018, 0, 1)  # the dorsum rises towards the back
    tv = tv + np.array([0.0, lower_edge - 0.006, -0.012 - 0.018])
    tao = np.clip(1.0 - 0.8 * (-0.013 - tv[:, 2]) / 0.04, 0.25, 1.0)
    lower = _merge([lower, _Part(tv, tn, tf, np.full(len(tv), TONGUE), tao)])
    for part in (upper, lower):
        for arr in vars(part).values():
            arr.flags.writeable = False
    return upper, lower



class MouthRig:
    """Teeth, gums, tongue and cavity attached to a face mesh.

    Args:
        rest: ``(V, 3)`` neutral closed-mouth mesh (head frame) that places the teeth.
        ring: ordered inner-lip-ring vertex ids (the mouth hole's boundary).
        stable: vertex ids that follow the skull (upper teeth).
        jaw: vertex ids that follow the jaw (lower teeth, tongue).
        corners: optional outer mouth corner ids (default: the ring's extreme points).
        detail: ``"full"`` or ``"low"`` tessellation (:data:`SEGMENTS`); see :meth:`set_detail`.
        lower_score: optional ``(R,)`` per ring vertex, larger on the lower lip (e.g. its jaw
            skinning weight); decides which half of a closed ring is the upper lip (default:
            the half that lies higher on ``rest``).
    """

    def __init__(
        self,
        rest: np.ndarray,
        ring: Sequence[int],
        stable: Sequence[int],
        jaw: Sequence[int],
        corners: Optional[Sequence[int]] = None,
        lower_score: Optional[Sequence[float]] = None,
        detail: str = "full",
    ) -> None:
        if detail not in SEGMENTS:
            raise ValueError(f"detail must be one of {sorted(SEGMENTS)}, got {detail!r}")
        self.detail = detail
        self.segments = SEGMENTS[detail]
        rest = np.asarray(rest, dtype=np.float64)
        self.ring = np.asarray(ring, dtype=np.int64)
        self.stable = np.asarray(stable, dtype=np.int64)
        self.jaw = np.asarray(jaw, dtype=np.int64)
        self.rest_stable = rest[self.stable]
        self.rest_jaw = rest[self.jaw]
        ring_p = rest[self.ring]
        # mouth frame
        ix = np.argsort(ring_p[:, 0])
        left, right = ring_p[ix[0]], ring_p[ix[-1]]
        if corners is not None:
            left, right = rest[int(corners[0])], rest[int(corners[1])]
            if left[0] > right[0]:
                left, right = right, left
            width = float(np.linalg.norm(right - left))
        else:
            width = float(np.linalg.norm(right - left)) * 1.1
        self.width = max(width, 1e-9)
        ex = right - left
        ex /= max(np.linalg.norm(ex), 1e-12)
        ey = np.array([0.0, 1.0, 0.0]) - ex[1] * ex
        ey /= max(np.linalg.norm(ey), 1e-12)
        ez = np.cross(ex, ey)
        self.axes = np.stack([ex, ey, ez])  # rows
        # upper / lower halves of the ring: split at the two corners (extreme x)
        n = len(self.ring)
        local = (ring_p - ring_p.mean(axis=0)) @ self.axes.T
        a, b = int(np.argmin(local[:, 0])), int(np.argmax(local[:, 0]))
        path1 = [(a + k) % n for k in range(((b - a) % n) + 1)]
        path2 = [(b + k) % n for k in range(((a - b) % n) + 1)]
        if lower_score is not None:
            ls = np.asarray(lower_score, dtype=np.float64)
            upper_path = path1 if ls[path1[1:-1]].mean() <= ls[path2[1:-1]].mean() else path2
        else:
            upper_path = path1 if local[path1, 1].mean() >= local[path2, 1].mean() else path2
        self.upper = np.zeros(n, dtype=bool)
        self.upper[upper_path] = True
        # stomion: middle of the upper and lower lip midpoints (nearest x = 0 on each half)
        mid_x = local[:, 0] - 0.5 * (local[a, 0] + local[b, 0])
        up_i = np.where(self.upper)[0][np.argmin(np.abs(mid_x[self.upper]))]
        lo_mask = ~self.upper
        lo_mask[[a, b]] = False
        lo_i = np.where(lo_mask)[0][np.argmin(np.abs(mid_x[lo_mask]))] if lo_mask.any() else up_i
        self.origin = 0.5 * (ring_p[up_i] + ring_p[lo_i])
        self.origin[0] = 0.5 * (left[0] + right[0])
        self.unit = self.width / _MOUTH_WIDTH
        self._ring_rest = ring_p
        self._built: Optional[str] = None  # the detail the parts were built at (built on first use)

    def set_detail(self, mouth_width_px: float) -> None:
        """Pick the tessellation for a mouth ``mouth_width_px`` pixels wide on screen."""
        self.detail = "low" if mouth_width_px < LOW_DETAIL_BELOW_PX else "full"
        self.segments = SEGMENTS[self.detail]

    def _parts(self) -> Tuple[_Part, _Part]:
        """``(upper, lower)`` rest-frame parts at the current detail, built when first needed."""
        if self._built != self.detail:
            self._build(self._ring_rest)
            self._built = self.detail
        return self._upper_part, self._lower_part

    @property
    def upper_part(self) -> _Part:
        """Upper teeth and gums (follow the skull), rest frame."""
        return self._parts()[0]

    @property
    def lower_part(self) -> _Part:
        """Lower teeth, gums and the tongue (follow the jaw), rest frame."""
        return self._parts()[1]

    # -- construction ------------------------------------------------------------------------
    def _to_head(self, local: np.ndarray) -> np.ndarray:
        return self.origin + local @ self.axes

    def _build(self, ring_p: np.ndarray) -> None:
        u = self.unit
        self._upper_part, self._lower_part = (
            _Part(self._to_head(u * part.verts), part.normals @ self.axes, part.faces, part.material, part.ao)
            for part in _unit_parts(self.detail))
        upper = self._upper_part
        self._upper_local = (upper.verts - self.origin) @ self.axes.T
        # rest-frame face normals: a rigid part's faces face the viewer when R @ n has z > 0
        self._face_normals = [face_normals(part.verts, part.faces) for part in (self._upper_part, self._lower_part)]
        # cavity back rim: an ellipse in the mouth frame, upper half on the skull, lower on the jaw
        local = (ring_p - self.origin) @ self.axes.T
        half_w = max(np.abs(local[:, 0]).max(), 1e-9)
        ang = np.arccos(np.clip(local[:, 0] / half_w, -1, 1))  # 0 at the right corner, pi at the left
        # kept inside the face's silhouette from the side (open face masks have no back)
        back_depth = -0.028 * u
        bw, bh_up, bh_lo = 0.50 * self.width, 0.012 * u, 0.020 * u
        back = np.stack([
            bw * np.cos(ang),
            np.where(self.upper, bh_up * np.sin(ang), -bh_lo * np.sin(ang)),
            np.full(len(ang), back_depth),
        ], axis=1)
        self._back_rest = self._to_head(back)
        # what frame() returns that no pose changes, built once: the cavity's faces (front rim =
        # lip ring, middle rim, back rim, back cap), materials and occlusion, the teeth's faces
        n = len(self.ring)
        idx = np.arange(n)
        nxt = (idx + 1) % n
        walls = []
        for r0 in (0, 1):
            a0, a1 = r0 * n + idx, r0 * n + nxt
            b0, b1 = (r0 + 1) * n + idx, (r0 + 1) * n + nxt
            walls += [np.stack([a0, b0, a1], 1), np.stack([a1, b0, b1], 1)]
        cap = np.stack([2 * n + idx, np.full(n, 3 * n), 2 * n + nxt], 1)
        off1 = len(self._upper_part.verts)
        off2 = off1 + len(self._lower_part.verts)
        self._cavity_faces = (np.concatenate(walls + [cap]) + off2).astype(np.int32)
        self._faces = np.concatenate([self._upper_part.faces, self._lower_part.faces + off1]).astype(np.int32)
        cav_m = np.concatenate([np.full(n, CAVITY_FRONT), np.full(n, CAVITY_FRONT), np.full(n + 1, CAVITY_BACK)])
        self._material = np.concatenate([self._upper_part.material, self._lower_part.material, cav_m]).astype(np.int32)
        self._cavity_ao = np.concatenate([np.full(n, 1.0), np.full(n, 0.75), np.full(n, 1.0), [0.35]])  # throat darkest
        self._teeth_ao = np.concatenate([self._upper_part.ao, self._lower_part.ao])
        for shared in (self._cavity_faces, self._faces, self._material, self._cavity_ao):
            shared.flags.writeable = False  # every frame's MouthGeometry holds these same arrays

    # -- per frame ------------------------------------------------------------------------------
    def transforms(self, verts: np.ndarray) -> Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]:
        """``((R_skull, t_skull), (R_jaw, t_jaw))`` from the rest mesh to ``verts (..., V, 3)``
        (rotations ``(..., 3, 3)``, translations ``(..., 3)``)."""
        verts = np.asarray(verts, dtype=np.float64)
        return kabsch(self.rest_stable, verts[..., self.stable, :]), kabsch(self.rest_jaw, verts[..., self.jaw, :])

    def frame(self, verts: np.ndarray, transforms: Optional[Tuple[Tuple[np.ndarray, np.ndarray], ...]] = None) -> MouthGeometry:
        """Mouth geometry for one posed mesh ``verts (V, 3)``; ``transforms``: its
        :meth:`transforms`, when already fitted (a scene fits a batch of frames at once)."""
        verts = np.asarray(verts, dtype=np.float64)
        (ru, tu), (rl, tl) = self.transforms(verts) if transforms is None else transforms
        up, lo = self._parts()
        p_up = up.verts @ ru.T + tu
        p_lo = lo.verts @ rl.T + tl
        n_up = up.normals @ ru.T
        n_lo = lo.normals @ rl.T
        # cavity (rims and faces: see _build): front rim = lip ring, middle, back rim, back cap
        front = verts[self.ring]
        back = np.where(self.upper[:, None], self._back_rest @ ru.T + tu, self._back_rest @ rl.T + tl)
        mid = 0.55 * front + 0.45 * back
        centre = back.mean(axis=0, keepdims=True)
        cav_v = np.concatenate([front, mid, back, centre])
        # the cavity is lit by what comes in through the lips, not by the key light: face it to
        # the viewer and let the palette / occlusion set its tone
        cav_n = np.broadcast_to(ru[:, 2], (len(cav_v), 3))
        # the upper lip shades what lies just below it (a slit shows dark teeth, a grin bright ones)
        lip = self._skull_local(front, ru, tu)
        # (the upper parts ride the skull: their skull-local points are their rest points)
        inner = np.concatenate([self._upper_local, self._skull_local(p_lo, ru, tu)])
        up_pts = lip[self.upper]
        order = np.argsort(up_pts[:, 0])
        lip_y = np.interp(inner[:, 0], up_pts[order, 0], up_pts[order, 1])
        below = (lip_y - inner[:, 1]) / (0.03 * self.width)
        shadow = np.clip(0.62 + 0.45 * below, 0.62, 1.0)
        opening = self._opening_local(lip)
        shadow *= float(np.clip(0.45 + 0.55 * opening / 0.05, 0.45, 1.0))
        verts_all = np.concatenate([p_up, p_lo, cav_v])
        normals_all = np.concatenate([n_up, n_lo, cav_n])
        return MouthGeometry(
            verts=verts_all,
            normals=normals_all,
            faces=self._faces,
            material=self._material,
            ao=np.concatenate([self._teeth_ao * shadow, self._cavity_ao]),
            cavity_faces=self._cavity_faces,
            opening=opening,
            facing=np.concatenate([self._face_normals[0] @ ru[2], self._face_normals[1] @ rl[2]]) > 0.0,
        )

    def _skull_local(self, pts: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Head-frame points of a posed frame -> the rest mouth frame (skull motion removed)."""
        return ((pts - t) @ r - self.origin) @ self.axes.T

    def opening(self, verts: np.ndarray, skull: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> float:
        """Lip gap at the midline as a fraction of the mouth width (0 = closed)."""
        verts = np.asarray(verts, dtype=np.float64)
        r, t = skull if skull is not None else kabsch(self.rest_stable, verts[self.stable])
        return self._opening_local(self._skull_local(verts[self.ring], r, t))

    def _opening_local(self, local: np.ndarray) -> float:
        """:meth:`opening` from the lip ring in the rest mouth frame ``(R, 3)``."""
        up = local[self.upper, 1]
        lo = local[~self.upper, 1]
        return float(max(0.0, _median(up) - _median(lo)) / self.width) if len(lo) else 0.0


def visible_through(g: Any, xy: np.ndarray, ring_xy: np.ndarray) -> np.ndarray:
    """The closed mouth parts' (teeth, gums, tongue) faces of ``g`` that can show: facing the
    viewer (they are convex; ``g.facing``) and near the pixel box of the lip opening
    ``ring_xy (R, 2)``, the only place the skin leaves them uncovered. Most of the ~6,000
    faces fail one test, and llvmpipe pays per face."""
    f = g.faces
    if not len(f):
        return f
    lo, hi = ring_xy.min(axis=0), ring_xy.max(axis=0)
    margin = 0.05 * float(np.max(hi - lo)) + 2.0  # px: wider than a tooth's facet
    # column by column and corner by corner: numpy's reductions over a short last axis cost
    # more than the comparisons (0.1 ms a frame)
    x, y = xy[:, 0], xy[:, 1]
    near = (x >= lo[0] - margin) & (x <= hi[0] + margin) & (y >= lo[1] - margin) & (y <= hi[1] + margin)
    keep = near[f[:, 0]] | near[f[:, 1]] | near[f[:, 2]]
    if g.facing is not None:
        keep &= g.facing
    return f[keep]
