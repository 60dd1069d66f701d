"""What to draw for each look: camera, the mouth rig, creases, and per-frame
:class:`~flame_transit.render.types.Layer` lists shared by all backends (the mesh analysis they
start from, outline and eye and mouth holes, is :mod:`.topology`).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from .camera import camera_from_params, points_box
from .creases import CreaseRig
from .inputs import _get, _to_numpy, check_photo, check_size
from .lights import shade_lambert
from .photo import bright_teeth
from .shaded import merge_sides
from .mouth import MP_LOWER_INNER_LIP, MP_MOUTH_CORNERS, MP_STABLE, MouthRig, kabsch, visible_through
from ..geometry import vertex_face_incidence as _incidence
from ..geometry import compact_faces, face_normals, sparse_apply, vertex_normals
from .topology import _fan, _head_forward, _hops_from, _inside, _rigid_sets, analyse_mesh
from .types import Frame, Layer

__all__ = ["build_scene", "Scene"]

log = logging.getLogger(__name__)

#: photo look: bounds of the shading ratio (darkening moves creases; brightening lifts the
#: photo's own shadows, which the coarse mesh rarely explains, so it is kept small)
RATIO_CLAMP = (0.65, 1.12)
#: photo look: skin compression → crease darkening, ``ratio = (area_t / area_src) ** GAIN``
#: bounded below by CREASE_MIN (the coarse mesh cannot fold, so its shading cannot either)
CREASE_GAIN = 0.6
CREASE_MIN = 0.78
#: shaded look colours (linear-ish RGB in 0..1)
SKIN = np.array([0.80, 0.64, 0.55])
BACKGROUND = (0.94, 0.94, 0.95)
EYE_WHITE = np.array([0.86, 0.84, 0.80])
IRIS = np.array([0.22, 0.16, 0.12])
#: shaded look: painted features (the head's ``face_parts`` lips / brows), drawn over the skin
LIPS = np.array([0.70, 0.38, 0.38])
BROW = np.array([0.30, 0.21, 0.15])
#: shaded look: lash line (upper-lid contour) darkening and the skin crease darkening from
#: compression relative to the neutral face (``(area_t / area_rest) ** SHADED_CREASE_GAIN``,
#: bounded below by SHADED_CREASE_MIN): the mesh cannot fold, so folds are painted
LASH_DARKEN = 0.45
SHADED_CREASE_GAIN = 0.8
SHADED_CREASE_MIN = 0.7
#: photo look: a fold the photo has and the frame no longer makes (a source smile's nasolabial
#: folds, crow's feet) is lifted along strips FOLD_LIFT_WIDTH times the crease width, by up to
#: FOLD_LIFT x the crease's depth (a grey lift, see render.lights.relight)
FOLD_LIFT = 0.6
FOLD_LIFT_WIDTH = 2.5
SHADED_MOUTH = np.array([
    [0.93, 0.90, 0.84],  # teeth
    [0.78, 0.42, 0.44],  # gum
    [0.74, 0.36, 0.36],  # tongue
    [0.32, 0.10, 0.09],  # cavity front
    [0.22, 0.06, 0.05],  # cavity back
])
#: frames whose mesh-only inputs (rigid fits, normals, shading: Scene._fits) are worked out at
#: once: FIT_SMALL_FRAMES of a mesh up to FIT_SMALL_VERTICES (the open head's 585: numpy pays
#: per call, not per vertex, and a 2 s clip in one go is 3 % faster than 14 frames at a time),
#: else as many as FIT_VERTICES hold (one frame of FLAME's 5023: its fits then take turns with
#: the rasteriser; 7-frame batches left it idle and made a clip 30 % slower)
FIT_SMALL_VERTICES, FIT_SMALL_FRAMES, FIT_VERTICES = 2048, 64, 8192
#: photo look: lip gap (fraction of the mouth width) below which the lips are drawn sealed,
#: and above which the mouth interior shows unmixed
SEAL_OPENING = (0.03, 0.055)


# --- the scene --------------------------------------------------------------------------------


class _FrameFits(NamedTuple):
    """What a frame's draw list needs that depends on its mesh alone (see :meth:`Scene._fits`);
    for one frame, or with a leading frame axis for a chunk of them."""

    rig: Any  #: the mouth rig's ((R_skull, t_skull), (R_jaw, t_jaw)), None without a rig
    to_source: Any  #: (R, t) from the frame's skull to the source mesh's, None without skull ids
    normals: np.ndarray  #: (V, 3) unit vertex normals, pointing out of the face
    shade: Optional[np.ndarray]  #: (V,) the photo look's shading ratio, the shaded look's crease ratio


class Scene:
    """Per-clip state; :meth:`frame` builds the draw list of frame ``t``."""

    def __init__(
        self,
        verts: np.ndarray,
        faces: np.ndarray,
        params: Any,
        *,
        look: str,
        size: Any,
        photo: Any,
        source_vertices: Any,
        head: Any,
        rest_vertices: Any,
        background: Optional[Sequence[float]],
        color: Optional[Sequence[float]],
        mouth: bool,
        shading_gain: float,
    ) -> None:
        self.verts = verts
        self.faces = faces
        self.look = look
        v = verts.shape[1]
        self.num_vertices = v
        self.incidence = _incidence(faces, v)
        self.shading_gain = float(shading_gain)

        # source (photo expression) and rest (neutral, closed mouth) meshes
        src = None
        if source_vertices is not None:
            src = _to_numpy(source_vertices, "source_vertices").astype(np.float64).reshape(-1, v, 3)[0] \
                if np.size(source_vertices) == v * 3 else None
            if src is None:
                raise InputError(f"source_vertices must be ({v}, 3), got {tuple(np.shape(source_vertices))}")
            if not np.isfinite(src).all():
                raise InputError("source_vertices contain NaN or infinite values")
        elif head is not None and getattr(head, "num_vertices", None) == v and params is not None:
            src = _head_forward(head, params, zero_expression=False)
        if src is None:
            src = verts[0].astype(np.float64)
        self.src = src
        self._area_src: Optional[np.ndarray] = None
        rest = None
        if rest_vertices is not None:
            rest = _to_numpy(rest_vertices, "rest_vertices").astype(np.float64)
            if rest.shape != (v, 3) or not np.isfinite(rest).all():
                raise InputError(f"rest_vertices must be finite ({v}, 3), got {tuple(rest.shape)}")
        elif head is not None and getattr(head, "num_vertices", None) == v and params is not None:
            rest = _head_forward(head, params, zero_expression=True)
        if rest is None:
            rest = src
        self.rest = rest

        # orientation: normals point out of the face (towards the viewer on the front)
        tri = src[faces]
        self.flip = float(np.einsum("ij,ij->", face_normals(src, faces), tri.mean(axis=1) - src.mean(axis=0))) < 0

        self.topo = analyse_mesh(faces, src)
        self.rig: Optional[MouthRig] = None
        if mouth and self.topo.mouth is not None:
            skull, jaw = _rigid_sets(self.topo, rest, head)
            if len(skull) >= 4 and len(jaw) >= 4:
                corners = MP_MOUTH_CORNERS if self.topo.mediapipe else None
                ring = self.topo.mouth
                weights = getattr(getattr(head, "assets", None), "lbs_weights", None)
                if weights is not None and np.shape(weights) == (v, 5):
                    lower_score = np.asarray(weights)[ring, 2]  # jaw weight
                elif self.topo.mediapipe:
                    lower_score = np.isin(ring, MP_LOWER_INNER_LIP).astype(np.float64)
                else:
                    lower_score = None
                try:
                    self.rig = MouthRig(rest, ring, skull, jaw, corners=corners, lower_score=lower_score)
                except Exception as exc:  # degenerate meshes: draw without a mouth interior
                    log.warning("no mouth interior: %s", exc)
        # vertices that follow the skull alone (MediaPipe's stable landmarks, else the rig's)
        self.skull_ids = np.asarray(MP_STABLE) if self.topo.mediapipe else (self.rig.stable if self.rig else None)
        parts = getattr(getattr(head, "assets", None), "face_parts", {}) or {}
        if not isinstance(parts, dict):
            parts = {}

        def part(*names: str) -> Optional[np.ndarray]:
            """The named parts' triangles (int32), those that are valid for this mesh; None if none."""
            tris = [np.asarray(parts[n], dtype=np.int64) for n in names if parts.get(n) is not None]
            tris = [t for t in tris if t.ndim == 2 and t.shape[1] == 3 and t.size and t.max() < v and t.min() >= 0]
            return np.concatenate(tris).astype(np.int32) if tris else None

        self.eye_parts = [(name, tri, col) for name, col in (("eye_left", EYE_WHITE), ("eye_right", EYE_WHITE),
                                                             ("iris_left", IRIS), ("iris_right", IRIS))
                          if (tri := part(name)) is not None]
        self.painted_parts = [(names[0], tri, col) for names, col in ((("lips",), LIPS), (("brow_left", "brow_right"), BROW))
                              if (tri := part(*names)) is not None]
        self.mouth_interior = part("mouth_interior") if self.rig is None else None

        from scipy import sparse

        f = faces.astype(np.int64)
        e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        adj = sparse.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(v, v))
        adj = ((adj + adj.T) > 0).astype(np.float64)
        deg = np.asarray(adj.sum(axis=1)).ravel()
        self.neighbour_mean = sparse.diags(1.0 / np.maximum(deg, 1.0)) @ adj

        # painted folds (forehead lines, frown lines, crow's feet, ...): MediaPipe topology only;
        # in the photo look, wider soft strips also lift the photo's own folds as they go
        self.creases = CreaseRig.for_template(look=look) if self.topo.mediapipe else None
        self.fold_lift = CreaseRig.for_template(FOLD_LIFT_WIDTH, look) if self.topo.mediapipe and look == "photo" else None
        self.crease_visibility: Optional[np.ndarray] = None
        self.lift_visibility: Optional[np.ndarray] = None
        self._fitted: Tuple[int, Any] = (-1, None)  # (first frame of a chunk, its _FrameFits): see _fits

        if look == "shaded":
            self._init_shaded(params, size, background, color)
        else:
            self._init_photo(params, size, photo)

    # -- shaded --------------------------------------------------------------------------------
    def _init_shaded(self, params: Any, size: Any, background: Any, color: Any) -> None:
        img_size = _get(params, "image_size")
        hw = check_size(size, default=None)
        if size is None and img_size is not None and _get(params, "crop_to_image") is not None:
            hw = check_size(tuple(int(s) for s in img_size))
        self.size = hw
        self.camera = camera_from_params(params, self.verts, hw)
        if self.rig is not None:
            self.rig.set_detail(self.rig.width * self.camera.pixels_per_metre(0))
        self.textures: Dict[str, np.ndarray] = {}
        self.background = tuple(float(c) for c in (background if background is not None else BACKGROUND))
        self.skin = np.asarray(color if color is not None else SKIN, dtype=np.float64)
        for name, val in (("background", self.background), ("color", self.skin)):
            arr = np.asarray(val, dtype=np.float64)
            if arr.shape != (3,) or not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
                raise InputError(f"{name} must be an RGB triple in 0..1, got {val!r}")
        self.palette = SHADED_MOUTH
        self.eyes = None
        if self.topo.mediapipe and len(self.eye_parts) == 4:
            from .shaded import ShadedEyes

            self.eyes = ShadedEyes(self.num_vertices, self.rest, self.eye_parts)
        self.eye_layers = merge_sides(self.eye_parts, self.eyes.colors if self.eyes is not None else {},
                                       self.num_vertices)
        self.open_face = self.topo.outer is not None and self._outline_encloses()
        self.weight = np.ones(self.num_vertices)
        self.albedo = np.tile(self.skin, (self.num_vertices, 1))
        if self.topo.mediapipe:  # lash line: the upper-lid contours (MediaPipe indices)
            from ..head.open_head import REGIONS

            lash = np.array(REGIONS["eye_r_upper"] + REGIONS["eye_l_upper"])
            lash = lash[lash < self.num_vertices]
            self.albedo[lash] *= LASH_DARKEN

    def _outline_encloses(self) -> bool:
        p = self.camera.project(self.src, 0)[:, :2]
        inside = _inside(p, p[self.topo.outer])
        return float(inside.mean()) > 0.85

    def _front_ccw(self, t: int) -> bool:
        """Sign of front faces' signed area in pixel coordinates ``(u, v)``: outward triangles
        (positive area in the head frame's x, y) get a negative one, as ``crop_to_image`` flips
        y, unless the camera also mirrors x."""
        (s, _, _), a = self.camera.frame(t)
        mirrored = np.linalg.det(a[:, :2]) * s * s > 0  # crop_to_image normally flips y
        return bool(mirrored != self.flip)

    def _project(self, pts: np.ndarray, t: int) -> np.ndarray:
        return self.camera.project(pts, t)

    def _normals(self, verts: np.ndarray) -> np.ndarray:
        n = vertex_normals(verts, self.faces, self.incidence)
        return -n if self.flip else n

    def _mouth_layers(self, verts: np.ndarray, t: int, offset: np.ndarray,
                      palette: np.ndarray) -> Tuple[List[Layer], Optional[float]]:
        """The mouth interior's layers of frame ``t`` and the rig's lip gap (None without a rig)."""
        layers: List[Layer] = []
        opening = None
        if self.rig is not None:
            g = self.rig.frame(verts, self._fits(t).rig)
            opening = g.opening
            p = self._project(g.verts, t)
            p[:, :2] += offset
            faces = np.concatenate([visible_through(g, p[:, :2], self._project(verts[self.rig.ring], t)[:, :2] + offset),
                                    g.cavity_faces])
            # only the vertices of the faces drawn (about a third of the rig's): a rasteriser
            # transforms every vertex it is given
            used, faces = compact_faces(faces, len(p))
            layers.append(Layer("mouth", "lit", p[used, :2], faces, depth=p[used, 2],
                                normal=g.normals[used], color=palette[g.material[used]] * g.ao[used, None],
                                specular=0.25 if self.look == "shaded" else 0.0))
        elif self.mouth_interior is not None:
            p = self._project(verts, t)
            n = self._fits(t).normals
            col = np.broadcast_to(palette[3], (len(verts), 3))
            layers.append(Layer("mouth_interior", "lit", p[:, :2] + offset, self.mouth_interior,
                                depth=p[:, 2] - 1e-4 * abs(self.camera.frame(t)[0][0]), normal=n, color=col))
        return layers, opening

    def _shaded_frame(self, t: int) -> Frame:
        verts = self.verts[t].astype(np.float64)
        p = self._project(verts, t)
        fits = self._fits(t)
        n = fits.normals
        # closed heads (FLAME): back faces are hidden anyway, culling halves the raster work;
        # an open face mask shows its inside from steep angles, so it is drawn two-sided
        color = self.albedo * fits.shade[:, None]
        layers = [Layer("face", "lit", p[:, :2], self.faces, depth=p[:, 2], normal=n,
                        color=color, specular=1.0, cull_back=not self.open_face)]
        layers += self._crease_layers(verts, p, t, normals=n, color=color)
        # painted brows and lips: the skin's own triangles again, a hair nearer (no z-fight)
        bias = 2e-4 * abs(float(self.camera.frame(t)[0][0]))
        for name, tri, col in self.painted_parts:
            layers.append(Layer(name, "lit", p[:, :2], tri, depth=p[:, 2] + bias, normal=n,
                                color=col * color / self.skin, specular=0.5 if name == "lips" else 0.2,
                                cull_back=not self.open_face))
        layers += self._mouth_layers(verts, t, np.zeros(2), self.palette)[0]
        if self.eye_parts:
            for name, tri, cols in self.eye_layers:
                layers.append(Layer(name, "lit", p[:, :2], tri, depth=p[:, 2], normal=n,
                                    color=cols, specular=0.6))
            if self.eyes is not None:
                layers.append(self.eyes.lash_layer(p, n, color, bias, not self.open_face))
        elif self.open_face:
            for k, ring in enumerate(self.topo.eyes):
                rp = p[ring]
                c = rp.mean(axis=0, keepdims=True)
                c[:, 2] -= 0.15 * np.ptp(rp[:, 0])
                xy = np.concatenate([rp, c])
                cols = np.concatenate([np.tile(self.skin * 0.45, (len(ring), 1)), [self.skin * 0.2]])
                nn = np.concatenate([n[ring], [[0.0, 0.0, 1.0]]])
                layers.append(Layer(f"eye{k}", "lit", xy[:, :2], _fan(rp), depth=xy[:, 2], normal=nn, color=cols))
        return Frame(layers, background=self.background, front_ccw_pixels=self._front_ccw(t))

    # -- photo ---------------------------------------------------------------------------------
    def _init_photo(self, params: Any, size: Any, photo: Any) -> None:
        from .photo import PhotoAssets

        img = check_photo(photo)
        ph, pw = img.shape[:2]
        img_size = _get(params, "image_size")
        if img_size is not None and (int(img_size[0]), int(img_size[1])) != (ph, pw):
            raise InputError(
                f"the photo is {ph}x{pw} but params.image_size is {tuple(int(s) for s in img_size)}; "
                "pass the photo the parameters were encoded from"
            )
        hw = check_size(size, default=(ph, pw), aspect=pw / ph)
        self.size = hw
        self.camera = camera_from_params(params, self.verts, hw, image_size=(ph, pw))
        v = self.num_vertices
        scale = np.array([hw[1] / pw, hw[0] / ph])
        proj_src = self.camera.project(self.src, 0)
        v2d = _get(params, "vertices_2d")
        if v2d is not None:
            v2d = _to_numpy(v2d, "params.vertices_2d").astype(np.float64)
            if v2d.shape != (v, 2):
                raise InputError(f"params.vertices_2d must be ({v}, 2) for this mesh, got {tuple(v2d.shape)}")
            if not np.isfinite(v2d).all():
                raise InputError("params.vertices_2d contains NaN or infinite values")
            src2d = v2d * scale
        else:
            src2d = proj_src[:, :2]
        self.src2d = src2d
        self.proj_src = proj_src
        self.residual = src2d - proj_src[:, :2]
        ppm = self.camera.pixels_per_metre(0)
        face_w = float(np.ptp(src2d[:, 0])) if v else 1.0
        topo = self.topo
        self.open_face = topo.outer is not None and float(_inside(src2d, src2d[topo.outer]).mean()) > 0.85
        eyes = topo.eyes if self.open_face else []
        # the eyes' one layer: each ring fanned around its centre (appended after the ring)
        offsets = np.cumsum([0] + [len(ring) + 1 for ring in eyes])
        self._eye_faces = (np.concatenate([_fan(ring) + o for ring, o in zip(eyes, offsets)]).astype(np.int32)
                           if eyes else np.zeros((0, 3), np.int32))
        self.assets = PhotoAssets.build(img, hw, src2d, topo.outer if self.open_face else None,
                                        topo.mouth, eyes, face_w, irises=self._iris_ids(eyes))
        self.textures = self.assets.textures
        # the strips' texture coordinates and the photo's own folds, the same in every frame
        if self.creases is not None:
            self.crease_visibility = self._skin_likeness(img, self.creases.interpolate(src2d / scale))
            self._crease_uv = self.creases.interpolate(src2d)
        if self.fold_lift is not None:
            self.lift_visibility = self._skin_likeness(img, self.fold_lift.interpolate(src2d / scale))
            self._lift_uv = self.fold_lift.interpolate(src2d)
            self._source_folds = self.fold_lift.strength(self.src, self.rest)
        self.palette = self.assets.mouth_palette().copy()
        self.palette[0] = bright_teeth(self.palette[0], self.assets.white)
        self.n_src = self._normals(self.src)
        if self.open_face:
            hops = _hops_from(topo.outer, self.faces, v)
            self.weight = np.clip(hops / 3.0, 0.0, 1.0)
            # skirt: outline -> fixed ring outside it (warp fades to zero)
            ring = topo.outer
            c = src2d[ring].mean(axis=0)
            rel = src2d[ring] - c
            self.skirt_mid = c + rel * 1.18
            self.skirt_out = c + rel * 1.40
            n = len(ring)
            idx = np.arange(n)
            nxt = (idx + 1) % n
            quads = []
            for r0 in (0, 1):
                a0, a1, b0, b1 = r0 * n + idx, r0 * n + nxt, (r0 + 1) * n + idx, (r0 + 1) * n + nxt
                quads += [np.stack([a0, b0, a1], 1), np.stack([a1, b0, b1], 1)]
            self.skirt_faces = np.concatenate(quads).astype(np.int32)
            self.skirt_uv = np.concatenate([src2d[ring], self.skirt_mid, self.skirt_out])
            self.face_faces = self.faces
            self.disp_weight = np.ones(v)
        else:
            # closed heads (FLAME): only surfaces facing the camera in the photo; the warp fades
            # out towards the silhouette so the mesh edge meets the photo without a seam
            nz = self.n_src[:, 2]
            self.weight = np.clip((nz - 0.1) / 0.4, 0, 1)
            self.disp_weight = np.clip((nz - 0.05) / 0.35, 0, 1) ** 2
            fz = face_normals(self.src, self.faces)[:, 2] * (-1 if self.flip else 1)
            self.face_faces = self.faces[fz > 0]
        self.mouth_width_px = float(self.rig.width * ppm) if self.rig is not None else 0.0
        if self.rig is not None:
            self.rig.set_detail(self.mouth_width_px)
        self.ring_offset = self.residual[topo.mouth].mean(axis=0) if topo.mouth is not None else np.zeros(2)
        if topo.mediapipe and self.open_face:
            self.disp_weight = self.disp_weight * self._hair_damping(img, src2d / scale)

    def _iris_ids(self, eye_rings: Sequence[np.ndarray]) -> Optional[List[np.ndarray]]:
        """Per eye ring, MediaPipe's iris points (centre, then four on the limbus) of the
        nearest iris; None for meshes without them."""
        if not self.topo.mediapipe or self.num_vertices < 478 or not eye_rings:
            return None
        from ..head.open_head import REGIONS

        irises = [np.asarray(REGIONS["iris_r"]), np.asarray(REGIONS["iris_l"])]
        return [min(irises, key=lambda ids: float(np.linalg.norm(self.src[ids[0]] - self.src[ring].mean(axis=0))))
                for ring in eye_rings]

    def _hair_damping(self, img: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """``(V,)`` warp weights: 1 on skin; on the forehead above the brows and along the face
        outline, where hair, a hat or the background may cover the mesh, as much as the photo
        there looks like the face's skin, so a brow raise stretches the skin under a fringe
        instead of dragging the fringe along (MediaPipe topology)."""
        from ..head.open_head import REGIONS

        v = len(self.src)
        brow_top = self.src[list(REGIONS["brow_l_upper"] + REGIONS["brow_r_upper"]), 1].max()
        exposed = self.src[:, 1] > brow_top + 0.004  # 4 mm above the highest brow point
        exposed[np.asarray(REGIONS["face_oval"])] = True
        exposed[468:] = False  # iris and the head's extra vertices: not skin in the photo
        weight = np.ones(v)
        weight[exposed] = self._skin_likeness(img, xy[exposed])
        for _ in range(2):  # no single-vertex tears
            weight = np.minimum(weight, 0.5 * weight + 0.5 * (self.neighbour_mean @ weight))
        return weight

    def _skin_likeness(self, img: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """``(P,)`` in [0, 1]: how much the photo at pixels ``xy (P, 2)`` looks like the face's
        own skin (:attr:`PhotoAssets.skin`, measured once per clip), so folds are not painted
        on a fringe of hair, glasses or background."""
        h, w = img.shape[:2]
        ij = np.clip(np.round(xy - 0.5).astype(np.int64), 0, [w - 1, h - 1])
        c = img[ij[:, 1], ij[:, 0]].astype(np.float64) / 255.0
        skin = np.asarray(self.assets.skin, dtype=np.float64)
        # chroma and brightness apart: shadows on skin stay skin, hair and frames do not
        lum = lambda x: x.mean(axis=-1, keepdims=True) + 1e-3  # noqa: E731
        chroma = np.linalg.norm(c / lum(c) - skin / lum(skin), axis=1)
        bright = np.abs(np.log(lum(c)[:, 0] / lum(skin)[0]))
        return np.exp(-((chroma / 0.12) ** 2) - (bright / 0.5) ** 2)

    def _vertex_areas(self, verts: np.ndarray) -> np.ndarray:
        """``(..., V)`` per-vertex area (a third of each adjacent triangle's) of ``verts (..., V,
        3)``, metres²."""
        a = 0.5 * np.linalg.norm(face_normals(verts, self.faces), axis=-1)
        return sparse_apply(self.incidence, a[..., None] / 3.0)[..., 0]

    def _smoothed(self, values: np.ndarray) -> np.ndarray:
        """``(..., V)`` per-vertex values half averaged with their mesh neighbours'."""
        return 0.5 * values + 0.5 * sparse_apply(self.neighbour_mean, values[..., None])[..., 0]

    def crease_ratio(self, verts: np.ndarray) -> np.ndarray:
        """Darkening where the skin is compressed relative to the reference face -- the photo's
        in the photo look, the neutral face in the shaded one (area shrinks): skin folds there
        (frown lines between lowered brows, nose wrinkles, crow's feet). ``(..., V)`` per vertex
        of ``verts (..., V, 3)``, in (CREASE_MIN, 1] (photo) or (SHADED_CREASE_MIN, 1] (shaded)."""
        shaded = self.look == "shaded"
        gain, floor = (SHADED_CREASE_GAIN, SHADED_CREASE_MIN) if shaded else (CREASE_GAIN, CREASE_MIN)
        if self._area_src is None:
            self._area_src = self._vertex_areas(self.rest if shaded else self.src)
            # Upper face only (above the nose tip, MediaPipe landmark 1): around the mouth a
            # source smile has stretched the skin, and relaxing it is not a fold. Heads without
            # MediaPipe topology get no creases.
            # (the shaded look's reference is the neutral face, so folds show everywhere).
            self._crease_mask = np.zeros(len(self.src), bool)
            if self.topo.mediapipe:
                self._crease_mask = np.ones(len(self.src), bool) if shaded else self.src[:, 1] > self.src[1, 1]
        used = (self._area_src > 1e-12) & self._crease_mask  # unused vertices (mouth, eyes) keep 1
        c = np.ones(np.shape(verts)[:-1])
        c[..., used] = np.clip(self._vertex_areas(verts)[..., used] / self._area_src[used], 0.0, 1.0)
        lr = self._smoothed(gain * np.log(np.maximum(c, 1e-3)) * self.weight)
        return np.clip(np.exp(lr), floor, 1.0)

    def shading_ratio(self, normals: np.ndarray) -> Optional[np.ndarray]:
        """``(..., V)`` per vertex of ``normals (..., V, 3)``: ``shade(target) / shade(source)``,
        raised to ``shading_gain * weight`` (faded out at the outline), smoothed over the mesh in
        log space (the open head's coarse normals around small features -- nostrils, lip corners
        -- would otherwise flicker) and clamped to :data:`RATIO_CLAMP`. None when the gain is 0."""
        if self.shading_gain == 0:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = np.log(shade_lambert(normals) / shade_lambert(self.n_src))
        lr = np.nan_to_num(lr) * (self.shading_gain * self.weight)
        for _ in range(2):
            lr = self._smoothed(lr)
        return np.clip(np.exp(lr * self.weight), *RATIO_CLAMP)

    def _face_ratio(self, verts: np.ndarray, normals: np.ndarray) -> Optional[np.ndarray]:
        ratio = self.shading_ratio(normals)
        if ratio is None:
            return None
        return np.clip(ratio * self.crease_ratio(verts), RATIO_CLAMP[0], RATIO_CLAMP[1])

    def _photo_positions(self, verts: np.ndarray, t: int) -> np.ndarray:
        p = self._project(verts, t)
        xy = self.src2d + self.disp_weight[:, None] * (p[:, :2] - self.proj_src[:, :2])
        return np.concatenate([xy, p[:, 2:3]], axis=1)

    def _to_source(self, verts: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """Rigid ``(R, t)`` from frame ``verts`` to the source mesh, fitted on the skull's
        stable vertices; None without them."""
        ids = self.skull_ids
        return None if ids is None else kabsch(verts[ids], self.src[ids])

    def _fits(self, t: int) -> "_FrameFits":
        """What frame ``t``'s draw list needs from its mesh alone (:class:`_FrameFits`), worked
        out for a chunk of frames (:func:`_fit_chunk`) at once. Frame 0 is a chunk of its own:
        it is drawn, and the rasteriser kept busy, while the next chunk is worked out."""
        size = _fit_chunk(self.num_vertices)
        start, stop = (0, 1) if t == 0 else (1 + (t - 1) // size * size, 1 + ((t - 1) // size + 1) * size)
        first, fits = self._fitted
        if first != start:
            verts = np.asarray(self.verts[start:stop], dtype=np.float64)
            normals = self._normals(verts)
            ids = self.skull_ids
            fits = _FrameFits(
                rig=self.rig.transforms(verts) if self.rig is not None else None,
                to_source=kabsch(verts[:, ids], self.src[ids]) if ids is not None else None,
                normals=normals,
                shade=self.crease_ratio(verts) if self.look == "shaded" else self._face_ratio(verts, normals),
            )
            self._fitted = (start, fits)
        i = t - start

        def at(pair: Any) -> Any:
            return None if pair is None else (pair[0][i], pair[1][i])

        return _FrameFits(rig=None if fits.rig is None else (at(fits.rig[0]), at(fits.rig[1])),
                          to_source=at(fits.to_source), normals=fits.normals[i],
                          shade=None if fits.shade is None else fits.shade[i])

    def mouth_similarity(self, verts: np.ndarray, to_source: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> float:
        """1 when the lip ring (skull motion removed) matches the photo's, falling to 0."""
        if self.topo.mouth is None or self.rig is None:
            return 0.0
        r, tr = to_source if to_source is not None else self._to_source(verts)
        ring = verts[self.topo.mouth] @ r.T + tr
        d = np.sqrt(np.mean(np.sum((ring - self.src[self.topo.mouth]) ** 2, axis=1))) / self.rig.width
        return float(np.exp(-((d / 0.035) ** 2)))

    def _lip_seal(self, verts: np.ndarray, p: np.ndarray, opening: Optional[float] = None) -> Optional[Layer]:
        """Lips that (nearly) meet: the sliver left between them is filled with the lips' own
        colour (the face texture's inpainted source mouth, a little darker along the contact
        line) instead of showing the dark cavity through a one-pixel gap; faded out as the
        mouth opens (:data:`SEAL_OPENING`)."""
        if self.rig is None or self.topo.mouth is None:
            return None
        lo, hi = SEAL_OPENING
        opening = self.rig.opening(verts) if opening is None else opening
        a = float(np.clip((hi - opening) / (hi - lo), 0.0, 1.0))
        if a <= 0.0:
            return None
        ring = self.topo.mouth
        xy = p[ring, :2]
        pos = np.concatenate([xy, xy.mean(axis=0, keepdims=True)])
        uv = np.concatenate([self.src2d[ring], self.src2d[ring].mean(axis=0, keepdims=True)])
        ratio = np.full(len(pos), 0.84)
        return Layer("lip_seal", "photo", pos, _fan(xy), uv=uv, texture="face", ratio=ratio,
                     alpha=a, depth_test=False)

    def _photo_frame(self, t: int) -> Frame:
        verts = self.verts[t].astype(np.float64)
        p = self._photo_positions(verts, t)
        fits = self._fits(t)
        layers: List[Layer] = []
        behind = 0.002 * abs(float(self.camera.frame(t)[0][0]))  # 2 mm: patches sit behind lids / lips
        if self.open_face:
            ring = self.topo.outer
            inner = p[ring, :2]
            xy = np.concatenate([inner, self.skirt_mid + 0.25 * (inner - self.src2d[ring]), self.skirt_out])
            layers.append(Layer("skirt", "photo", xy, self.skirt_faces, uv=self.skirt_uv, texture="face",
                                depth_test=False))
        # lips that meet: the opaque seal hides the mouth interior, which is neither built nor drawn
        opening = self.rig.opening(verts, fits.rig[0]) if self.rig is not None else None
        if opening is not None and self.topo.mouth is not None and opening <= SEAL_OPENING[0]:
            mouth: List[Layer] = []
        else:
            mouth, opening = self._mouth_layers(verts, t, self.ring_offset, self.palette)
        layers += mouth
        seal = self._lip_seal(verts, p, opening)
        if seal is not None:
            layers.append(seal)
        to_source = fits.to_source
        if self.open_face and self.skull_ids is not None and self.topo.eyes:
            # both eyes in one draw: each ring and its centre, the photo's eye seen from where
            # the frame's skull has moved it
            r, tr = to_source
            rings = self.topo.eyes
            ids = np.concatenate(rings)
            uv = self.camera.project(verts[ids] @ r.T + tr, 0)[:, :2] + self.residual[ids]
            pos, uvs, start = [], [], 0
            for ring in rings:
                for out, ring_values in ((pos, p[ring]), (uvs, uv[start:start + len(ring)])):
                    out += [ring_values, ring_values.mean(axis=0, keepdims=True)]
                start += len(ring)
            pos = np.concatenate(pos)
            pos[:, 2] -= behind
            layers.append(Layer("eyes", "photo", pos[:, :2], self._eye_faces, depth=pos[:, 2],
                                uv=np.concatenate(uvs), texture="eye"))
        w = 0.0
        if self.topo.mouth is not None:
            w = self.mouth_similarity(verts, to_source) if self.rig is not None else 1.0
        if w > 0.004:
            # the photo's own mouth, cross-faded over the rendered one while the lips are close
            # to the photo's; painted under the skin (no depth test) so lips always cover it
            ring = self.topo.mouth
            xy = p[ring, :2]
            pos = np.concatenate([xy, xy.mean(axis=0, keepdims=True)])
            uv = np.concatenate([self.src2d[ring], self.src2d[ring].mean(axis=0, keepdims=True)])
            layers.append(Layer("mouth_photo", "photo", pos, _fan(xy), uv=uv, texture="photo",
                                alpha=float(min(1.0, w)), depth_test=False))
        ratio = fits.shade
        layers.append(Layer("face", "photo", p[:, :2], self.face_faces, depth=p[:, 2],
                            ratio=ratio, uv=self.src2d, texture="face", texture2="photo", mix=w))
        layers += self._crease_layers(verts, p, t, ratio=ratio, mix=w)
        # the rendered mouth (or the seal over it) shows through the lips' opening unless the
        # photo's own mouth covers it: the lip ring's box is where its edges are
        shows = self.topo.mouth is not None and self.rig is not None and w < 0.999
        edge_box = _pixel_box(p[self.topo.mouth, :2], self.size, margin=3) if shows else None
        return Frame(layers, background_texture="photo", edge_box=edge_box)

    def _crease_layers(self, verts: np.ndarray, p: np.ndarray, t: int, *, normals: Optional[np.ndarray] = None,
                       color: Optional[np.ndarray] = None, ratio: Optional[np.ndarray] = None,
                       mix: float = 0.0) -> List[Layer]:
        """The painted folds of frame ``t`` (:mod:`.creases`) as one layer over the face: the
        face's own colour (shaded) or texture and shading ratio (photo), darkened along each
        crease's centre line by its strength; none when no crease shows."""
        rig = self.creases
        if rig is None:
            return []
        shaded = self.look == "shaded"
        dark, shown = rig.ratio(verts, self.rest if shaded else self.src, self.crease_visibility)
        if not len(shown) and self.fold_lift is None:
            return []
        xy = rig.interpolate(p)
        depth_bias = 3e-4 * abs(float(self.camera.frame(t)[0][0]))  # a hair over the skin
        depth = xy[:, 2] + 2 * depth_bias  # (and over the fold lift's wider strips)
        if shaded:
            nn = rig.interpolate(normals)
            nn /= np.maximum(np.linalg.norm(nn, axis=1, keepdims=True), 1e-12)
            return [Layer("creases", "lit", xy[:, :2], shown, depth=depth, normal=nn,
                          color=rig.interpolate(color) * dark[:, None], specular=1.0)]
        layers = []
        if self.fold_lift is not None:  # the photo's folds that the frame no longer makes fade
            up, lifted = self.fold_lift.lift(verts, self._source_folds, self.rest, FOLD_LIFT, self.lift_visibility)
            if len(lifted):
                lx = self.fold_lift.interpolate(p)
                base = self.fold_lift.interpolate(ratio) if ratio is not None else 1.0
                layers.append(Layer("fold_lift", "photo", lx[:, :2], lifted, depth=lx[:, 2] + depth_bias,
                                    uv=self._lift_uv, texture="face", texture2="photo", mix=mix, ratio=base * up))
        if len(shown):
            base = rig.interpolate(ratio) if ratio is not None else 1.0
            layers.append(Layer("creases", "photo", xy[:, :2], shown, depth=depth, uv=self._crease_uv,
                                texture="face", texture2="photo", mix=mix, ratio=base * dark))
        return layers

    def frame(self, t: int) -> Frame:
        return self._shaded_frame(t) if self.look == "shaded" else self._photo_frame(t)

    def repeats(self, t: int) -> bool:
        """True when frame ``t`` draws exactly what frame ``t - 1`` draws: the same mesh under
        the same camera (a clip's holds); a frame depends on nothing else."""
        if t <= 0:
            return False
        (c0, a0), (c1, a1) = self.camera.frame(t - 1), self.camera.frame(t)
        return (np.array_equal(self.verts[t], self.verts[t - 1]) and np.array_equal(c0, c1)
                and np.array_equal(a0, a1))


def _fit_chunk(num_vertices: int) -> int:
    """Frames a chunk of :meth:`Scene._fits` holds for a mesh of ``num_vertices`` (see
    :data:`FIT_SMALL_VERTICES`)."""
    return FIT_SMALL_FRAMES if num_vertices <= FIT_SMALL_VERTICES else max(1, FIT_VERTICES // num_vertices)


def _pixel_box(xy: np.ndarray, size: Tuple[int, int], margin: int) -> Optional[Tuple[int, int, int, int]]:
    """Pixel box ``(x0, y0, x1, y1)`` around points ``xy (N, 2)`` with ``margin`` pixels, clipped
    to a frame of ``size (H, W)``; None when it is empty, degenerate or over a quarter of the
    frame (a close-up's mouth: supersampling it would cost more than the rest of the frame)."""
    box = points_box(xy, size, margin)
    if box is None or box[2] - box[0] < 2 or box[3] - box[1] < 2:
        return None
    return None if (box[2] - box[0]) * (box[3] - box[1]) > 0.25 * size[0] * size[1] else box


def build_scene(verts: np.ndarray, faces: np.ndarray, params: Any, **options: Any) -> Scene:
    """A :class:`Scene` for checked ``verts (T, V, 3)`` and ``faces (F, 3)``."""
    return Scene(verts, faces, params, **options)
