"""Photo-textured look: the person in the photo makes the transition.

The face mesh is drawn with the encoder's camera, textured with the photo at the fitted mesh's
projection (``FaceParams.vertices_2d``), and composited back onto the photo:

* **texture warp** -- each vertex is drawn at its source pixel plus the model's 2D displacement
  ``proj(v_t) - proj(v_source)``, so the frame at the source expression is the photo itself,
  whatever the fit error;
* **skirt** -- a band of triangles from the face outline to a fixed ring outside it carries the
  warp to zero, so the jaw can drop or rise over the neck without a seam;
* **shading ratio** -- the photo is multiplied by ``shade(n_target) / shade(n_source)`` per
  surface point (clamped, faded to 1 at the outline), so cheek bulges and creases move with
  the geometry;
* **mouth** -- the source's own mouth opening is inpainted with lip colour in the face texture
  (no ghost teeth on closing lips); the hole between the lips shows a rendered mouth interior
  (cavity, tongue, teeth; coloured from the photo) cross-faded with the photo's own mouth while
  the lip ring is close to the source's;
* **eyes** -- the eye holes show the photo's eyes mapped rigidly with the skull, so lids slide
  over them; where a lid opens wider than in the photo, a sclera colour sampled from the photo
  fills in.

This module prepares the textures and colours once per clip (:class:`PhotoAssets`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._memo import ContentMemo, content_digest

__all__ = ["PhotoAssets", "bright_teeth", "inside_polygon", "polygon_mask", "resize_image", "inpaint"]

log = logging.getLogger(__name__)


def polygon_mask(poly: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Boolean ``(H, W)`` mask of pixels whose centre ``(x + 0.5, y + 0.5)`` lies inside the
    polygon ``(N, 2)`` (pixel coordinates, even-odd rule) -- the rasteriser's coverage rule.

    Example:
        >>> m = polygon_mask(np.array([[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0]]), (4, 4))
        >>> m.astype(int).tolist()
        [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    """
    h, w = shape
    poly = np.asarray(poly, dtype=np.float64)
    mask = np.zeros((h, w), dtype=bool)
    if len(poly) < 3 or not np.isfinite(poly).all():
        return mask
    x0 = int(np.clip(np.floor(poly[:, 0].min() - 1), 0, w))
    x1 = int(np.clip(np.ceil(poly[:, 0].max() + 1), 0, w))
    y0 = int(np.clip(np.floor(poly[:, 1].min() - 1), 0, h))
    y1 = int(np.clip(np.ceil(poly[:, 1].max() + 1), 0, h))
    if x1 <= x0 or y1 <= y0:
        return mask
    mask[y0:y1, x0:x1] = inside_polygon(np.arange(x0, x1)[None, :] + 0.5, np.arange(y0, y1)[:, None] + 0.5, poly)
    return mask


def inside_polygon(x: np.ndarray, y: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Whether the points ``(x, y)`` (arrays that broadcast together) lie inside the closed
    polygon ``poly (N, 2)``, by the even-odd rule, half-open like a rasteriser: a point on a
    left or top edge is inside, on a right or bottom edge outside.

    Example:
        >>> square = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
        >>> inside_polygon(np.array([1.0, 0.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0, 1.0]), square).tolist()
        [True, True, False, False]
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    inside = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=bool)
    for (ax, ay), (bx, by) in zip(poly, np.roll(poly, -1, axis=0)):
        if ay == by:  # a horizontal edge is never crossed
            continue
        crosses = (y >= min(ay, by)) & (y < max(ay, by))
        inside ^= crosses & (x < ax + (y - ay) * (bx - ax) / (by - ay))
    return inside


def resize_image(img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize ``(H, W, 3)`` uint8 to ``size = (H', W')`` (area filter when shrinking)."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    try:
        import cv2

        interp = cv2.INTER_AREA if (h < img.shape[0] or w < img.shape[1]) else cv2.INTER_LINEAR
        return np.ascontiguousarray(cv2.resize(img, (w, h), interpolation=interp))
    except ImportError:  # pragma: no cover - opencv comes with mediapipe
        from skimage.transform import resize

        out = resize(img, (h, w), order=1, anti_aliasing=h < img.shape[0], preserve_range=True)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _bbox(mask: np.ndarray, margin: int) -> Optional[Tuple[slice, slice]]:
    """Slices of ``mask``'s bounding box grown by ``margin`` pixels (clipped to the image), or
    ``None`` for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    h, w = mask.shape
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, h)),
            slice(max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, w)))


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of ``mask (H, W)`` by a disk of ``radius`` pixels (outside the image counts
    as empty): the pixels within ``radius`` of a mask pixel, by scipy's exact Euclidean distance
    transform, whose cost does not grow with the radius (a disk-shaped structuring element's
    does: 2.8 s a clip at 2048 px). Only the mask's bounding box grown by the radius is
    processed: the masks here are small (eyes, mouth).

    Example:
        >>> m = np.zeros((7, 7), bool); m[3, 3] = True
        >>> _dilate(m, 2).astype(int)[1:6, 1:6].tolist()
        [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]]
    """
    if radius <= 0:
        return mask
    box = _bbox(mask, radius)
    if box is None:
        return mask.copy()
    from scipy import ndimage

    out = np.zeros_like(mask, dtype=bool)
    out[box] = ndimage.distance_transform_edt(~mask[box]) <= radius
    return out


#: Telea's time grows with the masked area times the radius squared: a fill with a larger
#: radius (pixels) is made on a copy shrunk until the radius is this, and scaled back into the
#: masked pixels (the fill is smooth). 4.6 s -> 0.1 s for the mouth at 2048 px; 512-px clips
#: (radius about 14) are filled at full size.
INPAINT_MAX_RADIUS = 16.0


def inpaint(img: np.ndarray, mask: np.ndarray, radius: float = 5.0) -> np.ndarray:
    """Fill ``mask`` from its surroundings (OpenCV Telea; a diffusion fill without OpenCV)."""
    if not mask.any():
        return img
    try:
        import cv2

        # Telea fills each pixel from known pixels within ``radius``: work on the mask's box
        # grown by that neighbourhood (same result, a fraction of the full-image cost)
        box = _bbox(mask, int(np.ceil(radius)) + 2)
        patch, holes = np.ascontiguousarray(img[box]), mask[box]
        out = img.copy()
        scale = min(1.0, INPAINT_MAX_RADIUS / float(radius))
        if scale == 1.0:
            out[box] = cv2.inpaint(patch, holes.astype(np.uint8) * 255, float(radius), cv2.INPAINT_TELEA)
            return out
        h, w = holes.shape
        small = (max(1, round(w * scale)), max(1, round(h * scale)))
        # a shrunk pixel touched by the mask is filled too: no hole colour leaks into the fill
        small_holes = cv2.resize(holes.astype(np.float32), small, interpolation=cv2.INTER_AREA) > 0
        fill = cv2.inpaint(cv2.resize(patch, small, interpolation=cv2.INTER_AREA), small_holes.astype(np.uint8) * 255,
                           INPAINT_MAX_RADIUS, cv2.INPAINT_TELEA)
        filled = out[box]
        filled[holes] = cv2.resize(fill, (w, h), interpolation=cv2.INTER_LINEAR)[holes]
        return out
    except ImportError:  # pragma: no cover
        from scipy import ndimage

        out = img.astype(np.float32)
        known = ~mask
        for _ in range(200):
            blurred = ndimage.uniform_filter(out, size=(3, 3, 1))
            weight = ndimage.uniform_filter(known.astype(np.float32), size=3)[..., None]
            fill = blurred / np.maximum(weight, 1e-6)
            out = np.where(mask[..., None], fill, out)
            known = known | (weight[..., 0] > 0)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _robust_colour(pixels: np.ndarray, default: Sequence[float]) -> np.ndarray:
    if len(pixels) < 8:
        return np.asarray(default, dtype=np.float64)
    return np.median(pixels.astype(np.float64) / 255.0, axis=0)


def _iris_colour(img: np.ndarray, eye_mask: np.ndarray, centre: np.ndarray, radius: float,
                 white: np.ndarray) -> np.ndarray:
    """Median colour (0..1) of the photo's visible iris: pixels inside the eye opening within
    ``radius`` of ``centre``, darker than the sclera (no highlights, no lid skin)."""
    ys, xs = np.nonzero(eye_mask)
    inside = (xs + 0.5 - centre[0]) ** 2 + (ys + 0.5 - centre[1]) ** 2 <= (0.85 * radius) ** 2
    px = img[ys[inside], xs[inside]].astype(np.float64) / 255.0
    if len(px) < 4:
        return np.array([0.25, 0.18, 0.13])
    lum = px.mean(axis=1)
    dark = lum < min(float(np.percentile(lum, 70)), 0.8 * float(white.mean()))
    return np.median(px[dark] if dark.sum() >= 2 else px, axis=0)


def _paint_iris(colour: np.ndarray, xs: np.ndarray, ys: np.ndarray, centre: np.ndarray, radius: float,
                iris: np.ndarray) -> np.ndarray:
    """Sclera colours ``(N, 3)`` at pixel centres ``(xs, ys)`` with an iris disk painted over:
    a darker limbal ring and a soft, antialiased edge."""
    r = np.hypot(xs - centre[0], ys - centre[1]) / max(radius, 1e-6)
    disk = np.clip((1.0 - r) * radius + 0.5, 0.0, 1.0)[:, None]  # one-pixel antialiased edge
    limbus = 1.0 - 0.35 * np.clip((r - 0.75) / 0.25, 0.0, 1.0)[:, None]
    return colour * (1.0 - disk) + (iris[None] * limbus) * disk


@dataclass
class PhotoAssets:
    """Textures and colours derived from the photo for one clip.

    Attributes:
        photo: ``(H, W, 3)`` the photo at output size.
        face: the face texture: the photo with the source mouth opening inpainted.
        eye: the eye texture: the photo with the area around each source eye opening filled
            with the sclera colour.
        skin, white, teeth: RGB colours in 0..1 measured in the photo.
    """

    photo: np.ndarray
    face: np.ndarray
    eye: np.ndarray
    skin: np.ndarray
    white: np.ndarray
    teeth: np.ndarray
    textures: Dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        photo: np.ndarray,
        size: Tuple[int, int],
        src2d: np.ndarray,
        outer: Optional[np.ndarray],
        mouth_ring: Optional[np.ndarray],
        eye_rings: List[np.ndarray],
        face_width_px: float,
        irises: Optional[Sequence[np.ndarray]] = None,
    ) -> "PhotoAssets":
        """Prepare textures for a photo resized to ``size``; ``src2d (V, 2)`` are the source
        mesh's pixel positions at that size; rings are vertex ids; ``irises`` (optional) holds,
        per eye ring, the vertex ids of its iris (centre first, then points on the limbus).

        The latest results (64 MB of textures, :data:`_ASSETS`) are kept, keyed by the content
        of every argument: the same photo and fit in another clip (another instruction) reuse
        them. Their arrays are shared and read-only; each call gets its own object and
        ``textures`` dict."""
        args = (photo, size, src2d, outer, mouth_ring, eye_rings, face_width_px, irises)
        key = content_digest(*args)
        assets = _ASSETS.get(key)
        if assets is None:
            assets = cls._build(*args)
            assets._freeze(photo)
            _ASSETS.put(key, assets, nbytes=sum({id(t): t.nbytes for t in assets.textures.values()}.values()))
        return dataclasses.replace(assets, textures=dict(assets.textures))

    def _freeze(self, photo: np.ndarray) -> None:
        """Make the arrays read-only (they are shared between clips), copying, once, any that is
        the caller's ``photo`` itself (a photo already at output size)."""
        copies: Dict[int, np.ndarray] = {}
        for name in ("photo", "face", "eye", "skin", "white", "teeth"):
            arr = getattr(self, name)
            if np.shares_memory(arr, photo):
                arr = copies.setdefault(id(arr), arr.copy())
            arr.flags.writeable = False
            setattr(self, name, arr)
        self.textures = {"photo": self.photo, "face": self.face, "eye": self.eye}

    @classmethod
    def _build(cls, photo: np.ndarray, size: Tuple[int, int], src2d: np.ndarray, outer: Optional[np.ndarray],
               mouth_ring: Optional[np.ndarray], eye_rings: List[np.ndarray], face_width_px: float,
               irises: Optional[Sequence[np.ndarray]]) -> "PhotoAssets":
        """:meth:`build` without the memo."""
        img = resize_image(photo, size)
        h, w = size
        # skin colour: inside the face outline (or around the mesh), away from eyes and mouth
        if outer is not None and len(outer) >= 3:
            face_mask = polygon_mask(src2d[outer], (h, w))
        else:
            face_mask = np.zeros((h, w), bool)
            pts = np.round(src2d - 0.5).astype(int)
            ok = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
            face_mask[pts[ok, 1], pts[ok, 0]] = True
        holes = np.zeros((h, w), bool)
        rad = max(1, int(round(0.02 * face_width_px)))
        for ring in ([mouth_ring] if mouth_ring is not None else []) + list(eye_rings):
            holes |= _dilate(polygon_mask(src2d[ring], (h, w)), 2 * rad)
        skin_px = img[face_mask & ~holes]
        if len(skin_px) > 64:  # drop beard / shadows / highlights
            lum = skin_px.astype(np.float64).mean(axis=1)
            lo, hi = np.percentile(lum, [25, 90])
            skin_px = skin_px[(lum >= lo) & (lum <= hi)]
        skin = _robust_colour(skin_px, (0.78, 0.6, 0.5))

        # sclera: bright, unsaturated pixels inside the eye openings
        eye_tex = img.copy()
        whites = []
        for ring in eye_rings:
            m = polygon_mask(src2d[ring], (h, w))
            px = img[m].astype(np.float64) / 255.0
            if len(px) >= 6:
                lum = px.mean(axis=1)
                sat = px.max(axis=1) - px.min(axis=1)
                # the brightest unsaturated tenth: the lit sclera (not iris, lashes or lid shadow)
                sel = (sat <= np.percentile(sat, 60)) & (lum >= np.percentile(lum, 90))
                if sel.sum() >= 3:
                    whites.append(np.median(px[sel], axis=0))
        white = np.mean(whites, axis=0) if whites else np.clip(skin * 1.25 + 0.1, 0, 0.95)
        # the sclera in a photo is shaded by lids and lashes: keep it from glowing
        white = np.clip(np.maximum(white, skin * 0.9), 0, 1)
        for k, ring in enumerate(eye_rings):
            poly = src2d[ring]
            m = _dilate(polygon_mask(poly, (h, w)), 2)  # antialiased edges sample just outside
            c = poly.mean(axis=0)
            box = polygon_mask(c + (poly - c) * 2.2, (h, w))
            fill_region = box & ~m
            if fill_region.any():
                # darker towards the top (the upper lid's shadow)
                ys, xs = (a.astype(np.float64) + 0.5 for a in np.nonzero(fill_region))
                top, bot = poly[:, 1].min(), poly[:, 1].max()
                t = np.clip((ys - top) / max(bot - top, 1.0), -1.0, 1.0)
                colour = white[None] * (0.9 + 0.06 * t)[:, None]
                if irises is not None and k < len(irises) and irises[k] is not None and len(irises[k]) >= 3:
                    # the round iris goes on where a widened lid uncovers it (eye whites above
                    # and below it, as in a real AU5), in the photo's own iris colour
                    iris = src2d[np.asarray(irises[k])]
                    centre, radius = iris[0], float(np.linalg.norm(iris[1:] - iris[0], axis=1).mean())
                    colour = _paint_iris(colour, xs, ys, centre, radius, _iris_colour(img, m, centre, radius, white))
                eye_tex[fill_region] = np.clip(colour * 255 + 0.5, 0, 255).astype(np.uint8)

        # teeth colour: bright pixels inside an open source mouth, else from the sclera
        teeth = np.clip(white * np.array([1.0, 0.98, 0.92]), 0, 1)
        face_tex = img
        if mouth_ring is not None:
            m = polygon_mask(src2d[mouth_ring], (h, w))
            px = img[m].astype(np.float64) / 255.0
            if len(px) > 40:
                lum = px.mean(axis=1)
                sat = px.max(axis=1) - px.min(axis=1)
                bright = (lum > np.percentile(lum, 75)) & (sat < 0.25) & (lum > skin.mean())
                if bright.sum() > 10:
                    teeth = np.median(px[bright], axis=0)
            cover = _dilate(m, rad)
            face_tex = inpaint(img, cover, radius=max(3.0, 2.0 * rad))
        assets = cls(photo=img, face=face_tex, eye=eye_tex, skin=skin, white=white, teeth=teeth)
        assets.textures = {"photo": img, "face": face_tex, "eye": eye_tex}
        log.debug("photo colours: skin %s white %s teeth %s", skin.round(3), white.round(3), teeth.round(3))
        return assets

    def mouth_palette(self) -> np.ndarray:
        """``(5, 3)`` albedo per mouth material (teeth, gum, tongue, cavity front / back)."""
        skin = self.skin
        return np.stack([
            np.clip(self.teeth, 0, 1),
            np.clip(skin * np.array([0.92, 0.62, 0.62]), 0, 1),
            np.clip(skin * np.array([0.85, 0.45, 0.45]), 0, 1),
            np.clip(skin * np.array([0.40, 0.15, 0.13]), 0, 1),
            np.clip(skin * np.array([0.30, 0.10, 0.09]), 0, 1),
        ])


#: the latest :meth:`PhotoAssets.build` results, 64 MB of textures (a 512² photo's three are
#: 2.4 MB)
_ASSETS = ContentMemo(max_bytes=64 << 20)


#: teeth are lifted to this mean albedo, but no brighter than TEETH_OVER_WHITE x the photo's
#: eye whites (which lids and lashes shade): on an under-exposed photo (eye whites 0.23) 0.88
#: teeth glowed in a dark face. 2.0 leaves every photo of the perceptual test set as it was
#: (its darkened copy has eye whites 0.45-0.48)
TEETH_ALBEDO, TEETH_OVER_WHITE = 0.88, 2.0


def bright_teeth(teeth: np.ndarray, white: Optional[np.ndarray] = None) -> np.ndarray:
    """Teeth albedo from the photo's teeth colour: lifted to a bright, slightly desaturated
    off-white (a photo's teeth are in the lips' shade; the rendered ones get their shading
    from the mouth rig's occlusion), at most :data:`TEETH_OVER_WHITE` times as bright as the
    photo's eye whites ``white (3,)`` (an under-exposed photo gets grey teeth, not glowing ones).

    Example:
        >>> c = bright_teeth(np.array([0.55, 0.50, 0.45]))
        >>> bool(c.mean() > 0.8 and c[0] >= c[2])
        True
        >>> round(float(bright_teeth(np.array([0.2, 0.18, 0.15]), white=np.full(3, 0.25)).mean()), 2)
        0.5
    """
    t = np.clip(np.asarray(teeth, dtype=np.float64), 1e-3, 1.0)
    t = 0.7 * t + 0.3 * t.mean()
    target = TEETH_ALBEDO if white is None else min(TEETH_ALBEDO, TEETH_OVER_WHITE * float(np.mean(white)))
    t = t * max(1.0, target / float(t.mean()))
    return np.clip(t, 0.0, 0.97)
