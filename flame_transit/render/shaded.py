"""Shaded look: appearance cues a real face has and a flat-coloured skin mask lacks.

Eyes. A real eye seen at a distance is a dark almond, not a white disk with a dot: the upper
lid's lashes draw a dark line along it, the lid shades the top of the eyeball, the white
darkens towards the corners where the ball turns away, and the iris has a black pupil. The
open head's eye parts (a sclera socket and an iris disk per eye, :mod:`tools/build_open_head`)
are coloured accordingly, and a lash strip rides on each upper lid contour; all of it follows the
lids, so a raised lid (AU5) bares more white and a narrowed one (AU6, AU7) less.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from .types import Layer

__all__ = ["ShadedEyes", "PUPIL", "LASH", "SCLERA_EDGE", "merge_sides"]

#: pupil colour (the iris disk's centre; the iris colour fades into it)
PUPIL = np.array([0.05, 0.04, 0.04])
#: lash line colour at the upper lid's margin
LASH = np.array([0.10, 0.07, 0.06])
#: sclera brightness at its upper and lower edges relative to its centre (lid shadow, the
#: eyeball turning away)
SCLERA_EDGE = (0.55, 0.80)
#: lash strip: its width as a fraction of the eye's width (corner to corner), in the middle of
#: the lid and at its corners
LASH_WIDTH = (0.16, 0.05)


class ShadedEyes:
    """Per-vertex colours of the eye parts and the lash strips of one clip (MediaPipe topology)."""

    def __init__(self, num_vertices: int, rest: np.ndarray,
                 eye_parts: Sequence[Tuple[str, np.ndarray, np.ndarray]]) -> None:
        """``rest (V, 3)`` the neutral face; ``eye_parts``: ``(name, triangles (F, 3), colour (3,))``
        of the sclera sockets (``eye_*``) and iris disks (``iris_*``)."""
        from ..head.open_head import REGIONS

        self.colors: Dict[str, np.ndarray] = {}
        #: per eye (rows): the upper lid contour (corner to corner) and the lower one
        self._upper = np.array([REGIONS["eye_l_upper"], REGIONS["eye_r_upper"]])
        self._lower = np.array([REGIONS["eye_l_lower"], REGIONS["eye_r_lower"]])
        n = self._upper.shape[1]
        self._width_profile = LASH_WIDTH[1] + (LASH_WIDTH[0] - LASH_WIDTH[1]) * np.sin(np.linspace(0.0, np.pi, n))
        idx = (2 * n * np.arange(2)[:, None] + np.arange(n - 1)[None]).ravel()
        self._lash_faces = np.concatenate([np.stack([idx, idx + 1, idx + n], 1),
                                           np.stack([idx + 1, idx + n + 1, idx + n], 1)]).astype(np.int32)
        upper_ids = set(REGIONS["eye_l_upper"]) | set(REGIONS["eye_r_upper"])
        for name, tri, col in eye_parts:
            c = np.tile(np.asarray(col, dtype=np.float64), (num_vertices, 1))
            ids = np.unique(tri)
            counts = np.bincount(tri.ravel(), minlength=num_vertices)
            hub = ids[np.argmax(counts[ids])]
            if name.startswith("iris"):
                c[hub] = PUPIL
            else:  # sclera: the socket ring behind the lid contour is darker than the middle
                rim = ids[ids != hub]
                xy = rest[:, :2]
                cont = np.array(sorted(set(REGIONS["eye_l_upper"] + REGIONS["eye_l_lower"]
                                           + REGIONS["eye_r_upper"] + REGIONS["eye_r_lower"])))
                near = cont[np.argmin(np.linalg.norm(xy[rim][:, None] - xy[cont][None], axis=2), axis=1)]
                is_up = np.isin(near, list(upper_ids))
                c[rim] *= np.where(is_up, SCLERA_EDGE[0], SCLERA_EDGE[1])[:, None]
            self.colors[name] = c

    def lash_layer(self, p: np.ndarray, normals: np.ndarray, skin: np.ndarray, depth_bias: float,
                   cull_back: bool) -> Layer:
        """Both upper lids' lash strips in one layer: ``p (V, 3)`` projected points,
        ``normals (V, 3)``, ``skin (V, 3)`` the face's colour (each strip fades into it). Per lid,
        the first row of points is the lid contour, the second the strip's outer edge."""
        u, lower = self._upper, self._lower  # (2, n) per eye
        n = u.shape[1]
        xy0 = p[u, :2]  # (2, n, 2)
        centre = (xy0.sum(axis=1) + p[lower, :2].sum(axis=1)) / (n + lower.shape[1])
        tangent = np.empty_like(xy0)  # central differences, one-sided at the corners (np.gradient)
        tangent[:, 1:-1] = 0.5 * (xy0[:, 2:] - xy0[:, :-2])
        tangent[:, 0], tangent[:, -1] = xy0[:, 1] - xy0[:, 0], xy0[:, -1] - xy0[:, -2]
        normal = np.stack([tangent[..., 1], -tangent[..., 0]], axis=-1)
        normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)
        away = np.sign(np.einsum("ejk,ejk->ej", normal, xy0 - centre[:, None]))  # away from the eye
        width = self._width_profile[None] * np.linalg.norm(xy0[:, -1] - xy0[:, 0], axis=-1)[:, None]
        outer = xy0 + (away * width)[..., None] * normal
        xy = np.stack([xy0, outer], axis=1).reshape(-1, 2)  # per eye: contour row, then outer row
        z = np.repeat(p[u, 2][:, None] + depth_bias, 2, axis=1).reshape(-1)
        col = np.stack([np.broadcast_to(LASH, (2, n, 3)), skin[u]], axis=1).reshape(-1, 3)
        nn = np.repeat(normals[u][:, None], 2, axis=1).reshape(-1, 3)
        return Layer("lashes", "lit", xy, self._lash_faces, depth=z, normal=nn, color=col, specular=0.0,
                     cull_back=cull_back)


def merge_sides(parts: Sequence[Tuple[str, np.ndarray, np.ndarray]], colors: Dict[str, np.ndarray],
                 num_vertices: int) -> List[Tuple[str, np.ndarray, np.ndarray]]:
    """``(name, triangles, (V, 3) colours)`` parts with the left and right of one kind
    (``eye_left`` / ``eye_right``) drawn as one layer (``eye``): they share no vertex, and one
    draw call fewer a frame is worth it on a software rasteriser. ``colors``: per-part vertex
    colours (default: the part's constant colour)."""
    merged: Dict[str, Tuple[List[np.ndarray], np.ndarray]] = {}
    for name, tri, col in parts:
        kind = name.rsplit("_", 1)[0] if name.endswith(("_left", "_right")) else name
        own = colors.get(name)
        own = np.tile(np.asarray(col, dtype=np.float64), (num_vertices, 1)) if own is None else own
        if kind not in merged:
            merged[kind] = ([tri], own.copy())
        else:
            tris, cols = merged[kind]
            ids = np.unique(tri)
            cols[ids] = own[ids]
            tris.append(tri)
    return [(kind, np.concatenate(tris), cols) for kind, (tris, cols) in merged.items()]
