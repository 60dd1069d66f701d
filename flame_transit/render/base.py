"""The renderer interface, input checking, the camera and the backend registry.

A renderer turns meshes into frames::

    renderer = get_renderer()                       # "auto": pytorch3d on CUDA, else "gl"
    frames = renderer.render(vertices, faces, params, look="shaded", size=(512, 512))
    for frame in renderer.iter_frames(vertices, faces, params, look="photo", photo=image):
        ...                                         # (H, W, 3) uint8, one at a time

Projection follows :mod:`flame_transit.params` exactly: a head-frame point ``X`` goes to crop
NDC ``s * (X[:2] + (tx, ty))`` (y up), then through the ``(2, 3)`` ``crop_to_image`` affine to
pixels (u right, v down, pixel centres at integers + 0.5); depth is ``s * X[2]`` (larger =
nearer). The camera looks down the head frame's -Z axis, so head-frame normals are camera-frame
normals and the lights below are fixed in that frame.

Backends only rasterise *layers* (:class:`Layer`: triangles in pixel space with per-vertex
attributes and one of two shading kinds); what to draw for each look is decided once, in
:mod:`flame_transit.render.scene` and :mod:`flame_transit.render.photo`, and shared by all
backends.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..checks import MAX_SIZE
from ..errors import InputError, RendererUnavailableError

__all__ = [
    "LOOKS",
    "Layer",
    "Renderer",
    "RenderCamera",
    "default_camera",
    "get_renderer",
    "available_renderers",
    "render_frames",
    "shade_lambert",
    "check_vertices",
    "check_faces",
    "check_size",
]

log = logging.getLogger(__name__)

LOOKS = ("shaded", "photo")

# --- lighting (camera frame = head frame: +Z towards the viewer, +Y up) ---------------------
#: ``shade(n) = AMBIENT + HEADLIGHT * max(n.z, 0) + KEY * max(n . KEY_DIR, 0)``; a surface
#: facing the viewer gets exactly 1.0, so albedos are "the colour when seen face-on".
AMBIENT = 0.36
HEADLIGHT = 0.40
KEY_DIR = np.array([-0.45, 0.55, 0.70]) / np.linalg.norm([-0.45, 0.55, 0.70])
KEY = (1.0 - AMBIENT - HEADLIGHT) / float(KEY_DIR[2])
#: Blinn specular of the shaded look (half vector of headlight and view = +Z)
SPECULAR = 0.10
SHININESS = 24.0


def shade_lambert(normals: np.ndarray) -> np.ndarray:
    """Diffuse light factor of unit normals ``(..., 3)`` (two-sided: normals facing away from
    the viewer are flipped), 1.0 for a surface facing the viewer.

    Example:
        >>> float(shade_lambert(np.array([0.0, 0.0, 1.0])))
        1.0
    """
    n = np.asarray(normals, dtype=np.float64)
    n = np.where(n[..., 2:3] < 0, -n, n)
    return AMBIENT + HEADLIGHT * np.maximum(n[..., 2], 0) + KEY * np.maximum(n @ KEY_DIR, 0)


LUMA = np.array([0.299, 0.587, 0.114])


def relight(color: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Apply a shading ratio to photo colours ``(..., 3)`` in 0..1 (see :class:`Layer`).

    Example:
        >>> relight(np.array([0.5, 0.2, 0.1]), np.array(0.5)).tolist()
        [0.25, 0.1, 0.05]
    """
    c = np.asarray(color, dtype=np.float64)
    r = np.asarray(ratio, dtype=np.float64)[..., None]
    lum = c @ LUMA
    out = np.where(r <= 1.0, c * r, c + (r - 1.0) * lum[..., None])
    return np.clip(out, 0.0, 1.0)


# --- input checking ---------------------------------------------------------------------------
def _to_numpy(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists etc.
        raise InputError(f"{name} must be an array, got {type(value).__name__}: {exc}") from exc
    if arr.dtype == object:
        raise InputError(f"{name} must be a numeric array, got an object array (ragged input?)")
    return arr


def check_vertices(vertices: Any) -> Tuple[np.ndarray, bool]:
    """``(T, V, 3)`` float32 vertices and whether the input was a single ``(V, 3)`` mesh."""
    arr = _to_numpy(vertices, "vertices")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"vertices must be numbers, got dtype {arr.dtype}")
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.shape[1] < 3 or arr.shape[0] < 1:
        raise InputError(
            f"vertices must have shape (T, V, 3) or (V, 3) with V >= 3, got {tuple(np.shape(vertices))}"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr).all(axis=2))[0]
        raise InputError(
            f"vertices contain NaN or infinite values (first at frame {bad[0]}, vertex {bad[1]}); "
            "check the parameters that produced them"
        )
    return arr, single


def check_faces(faces: Any, num_vertices: int) -> np.ndarray:
    """``(F, 3)`` int32 triangle indices, each in ``0 .. num_vertices - 1``."""
    arr = _to_numpy(faces, "faces")
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
        raise InputError(f"faces must have shape (F, 3) with F >= 1, got {tuple(arr.shape)}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError("faces must hold integer vertex indices")
    elif arr.dtype.kind not in "iu":
        raise InputError(f"faces must hold integer vertex indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.min() < 0 or arr.max() >= num_vertices:
        raise InputError(
            f"faces index vertices {arr.min()}..{arr.max()} but there are only {num_vertices} vertices"
        )
    return np.ascontiguousarray(arr, dtype=np.int32)


def check_size(size: Any, default: Optional[Tuple[int, int]] = None, aspect: Optional[float] = None) -> Tuple[int, int]:
    """``(H, W)`` from an int, a pair or None.

    An int is a square frame, or, when ``aspect = W / H`` is given (a photo), the longer side
    with the aspect kept (rounded to even numbers for video encoders).

    Example:
        >>> check_size(256), check_size((120, 160)), check_size(200, aspect=2.0)
        ((256, 256), (120, 160), (100, 200))
    """
    if size is None:
        if default is None:
            return (512, 512)
        size = tuple(int(s) for s in default)
    if isinstance(size, (bool, np.bool_)):
        raise InputError(f"size must be an int or (height, width), got {size!r}")
    if isinstance(size, (int, np.integer)):
        n = int(size)
        if aspect is not None and n >= 1:
            if aspect >= 1:
                hw = (max(2, int(round(n / aspect / 2)) * 2), n)
            else:
                hw = (n, max(2, int(round(n * aspect / 2)) * 2))
        else:
            hw = (n, n)
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(
        isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) for s in size
    ):
        hw = (int(size[0]), int(size[1]))
    else:
        raise InputError(f"size must be an int or a (height, width) pair of ints, got {size!r}")
    if not all(1 <= s <= MAX_SIZE for s in hw):
        raise InputError(f"size {hw} out of range: each side must be between 1 and {MAX_SIZE} pixels")
    return hw


def check_photo(photo: Any) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from an array / tensor / PIL image / path."""
    if isinstance(photo, (str, bytes)) or hasattr(photo, "__fspath__"):
        import imageio.v3 as iio

        try:
            photo = iio.imread(photo)
        except Exception as exc:
            raise InputError(f"could not read the photo {photo!r}: {exc}") from exc
    arr = _to_numpy(photo, "photo")
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):  # CHW tensor
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or min(arr.shape[:2]) < 2:
        raise InputError(f"photo must be an (H, W, 3) RGB image, got shape {tuple(arr.shape)}")
    arr = arr[..., :3]
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InputError("photo contains NaN or infinite values")
        scale = 255.0 if arr.max() <= 1.0 + 1e-6 else 1.0
        arr = np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


# --- camera -------------------------------------------------------------------------------------
@dataclass
class RenderCamera:
    """Weak-perspective camera in output pixels.

    Attributes:
        cam: ``(T, 3)`` or ``(1, 3)`` (scale, tx, ty) per frame.
        crop_to_image: ``(T, 2, 3)`` or ``(1, 2, 3)`` crop NDC -> output pixels.
        size: ``(H, W)`` of the output frames.
    """

    cam: np.ndarray
    crop_to_image: np.ndarray
    size: Tuple[int, int]

    def frame(self, t: int) -> Tuple[np.ndarray, np.ndarray]:
        c = self.cam[t if self.cam.shape[0] > 1 else 0]
        a = self.crop_to_image[t if self.crop_to_image.shape[0] > 1 else 0]
        return c, a

    def project(self, points: np.ndarray, t: int = 0) -> np.ndarray:
        """``(N, 3)`` head-frame points of frame ``t`` -> ``(N, 3)`` = pixel u, v and depth
        ``s * z`` (larger = nearer); the same maths as :func:`flame_transit.params.project_points`.
        """
        (s, tx, ty), a = self.frame(t)
        pts = np.asarray(points, dtype=np.float64)
        nx = s * (pts[:, 0] + tx)
        ny = s * (pts[:, 1] + ty)
        out = np.empty((len(pts), 3), dtype=np.float64)
        out[:, 0] = a[0, 0] * nx + a[0, 1] * ny + a[0, 2]
        out[:, 1] = a[1, 0] * nx + a[1, 1] * ny + a[1, 2]
        out[:, 2] = s * pts[:, 2]
        return out

    def pixels_per_metre(self, t: int = 0) -> float:
        (s, _, _), a = self.frame(t)
        return float(abs(s) * np.sqrt(abs(np.linalg.det(a[:, :2]))))


def _get(params: Any, name: str) -> Any:
    if params is None:
        return None
    if isinstance(params, dict):
        return params.get(name)
    return getattr(params, name, None)


def default_camera(vertices: np.ndarray, size: Tuple[int, int], fill: float = 0.8) -> RenderCamera:
    """A camera that frames every frame of ``vertices (T, V, 3)`` in a centred square crop,
    the mesh filling ``fill`` of it.

    Example:
        >>> cam = default_camera(np.array([[[-1.0, -1, 0], [1, 1, 0], [0, 0, 1]]]), (100, 100))
        >>> cam.project(np.array([[1.0, 1.0, 0.0]])).round(1).tolist()
        [[90.0, 10.0, 0.0]]
    """
    h, w = size
    from ..params import crop_to_image_matrix

    a = crop_to_image_matrix((w / 2.0, h / 2.0), float(min(h, w)))
    return RenderCamera(framing_cam(vertices, fill), a[None], (h, w))


def framing_cam(vertices: np.ndarray, fill: float = 0.8) -> np.ndarray:
    """``(1, 3)`` orthographic ``(scale, tx, ty)`` that centres every frame of ``vertices
    (..., V, 3)`` in the unit crop, filling ``fill`` of it (independent of the frame size)."""
    v = np.asarray(vertices).reshape(-1, 3)
    lo, hi = v.min(axis=0), v.max(axis=0)
    centre = (lo + hi) / 2.0
    extent = float(max((hi - lo)[0], (hi - lo)[1], 1e-9))
    return np.array([[2.0 * fill / extent, -centre[0], -centre[1]]])


def camera_from_params(
    params: Any,
    vertices: np.ndarray,
    size: Tuple[int, int],
    image_size: Optional[Tuple[int, int]] = None,
) -> RenderCamera:
    """The renderer's camera for ``params`` (a FaceParams, a dict with ``cam`` /
    ``crop_to_image`` / ``image_size``, or None for :func:`default_camera`), in pixels of a
    frame of ``size``.

    ``crop_to_image`` maps to pixels of the source photo (``image_size``); it is scaled to the
    output size. Without ``crop_to_image`` the crop is the centred square of the frame.
    """
    cam = _get(params, "cam")
    if cam is None:
        return default_camera(vertices, size)
    cam = _to_numpy(cam, "params.cam").astype(np.float64)
    if cam.shape[-1] != 3:
        raise InputError(f"params.cam must be (..., 3) = (scale, tx, ty), got {tuple(cam.shape)}")
    cam = cam.reshape(-1, 3)
    if not np.isfinite(cam).all() or np.any(cam[:, 0] == 0):
        raise InputError(f"params.cam must be finite with a non-zero scale, got {cam[:2].tolist()}")
    if cam.shape[0] not in (1, vertices.shape[0]):
        raise InputError(f"params.cam has {cam.shape[0]} frames but vertices have {vertices.shape[0]}")
    h, w = size
    a = _get(params, "crop_to_image")
    if a is None:
        from ..params import crop_to_image_matrix

        a = crop_to_image_matrix((w / 2.0, h / 2.0), float(min(h, w)))[None]
    else:
        a = _to_numpy(a, "params.crop_to_image").astype(np.float64)
        if a.shape[-2:] != (2, 3):
            raise InputError(f"params.crop_to_image must be (2, 3), got {tuple(a.shape)}")
        a = a.reshape(-1, 2, 3)
        if a.shape[0] not in (1, vertices.shape[0]):
            raise InputError(f"params.crop_to_image has {a.shape[0]} frames but vertices have {vertices.shape[0]}")
        src = image_size or _get(params, "image_size")
        if src is not None:
            sh, sw = int(src[0]), int(src[1])
            a = a * np.array([w / sw, h / sh])[None, :, None]
    if not np.isfinite(a).all():
        raise InputError("params.crop_to_image contains NaN or infinite values")
    return RenderCamera(cam, a, (h, w))


# --- layers: what backends draw -----------------------------------------------------------------
@dataclass
class Layer:
    """Triangles in output-pixel space with per-vertex attributes.

    ``kind == "lit"``: colour = ``color`` x diffuse light of ``normal`` (+ ``specular``).
    ``kind == "photo"``: colour ``c`` = ``texture`` sampled at ``uv`` (output pixels; mixed with
    ``texture2`` by ``mix`` when given), relit by the per-vertex shading ratio ``ratio``
    (interpolated; None = 1): ``c * r`` where ``r <= 1``, ``c + (r - 1) * luma(c)`` where
    ``r > 1`` (a grey lift: lifting a photo's shadow by multiplication over-saturates it). See
    :func:`relight`.

    ``depth`` (N,) is ``s * z`` (larger = nearer); with ``depth_test=False`` the layer is
    painted in list order without touching the depth buffer. ``alpha`` blends the layer over
    what is already drawn.
    """

    name: str
    kind: str
    xy: np.ndarray
    faces: np.ndarray
    depth: Optional[np.ndarray] = None
    normal: Optional[np.ndarray] = None
    color: Optional[np.ndarray] = None
    ratio: Optional[np.ndarray] = None
    uv: Optional[np.ndarray] = None
    texture: str = ""
    texture2: str = ""
    mix: float = 0.0
    alpha: float = 1.0
    depth_test: bool = True
    cull_back: bool = False
    specular: float = 0.0


@dataclass
class Frame:
    """One frame's draw list: a clear colour (or a texture painted as background) and layers."""

    layers: List[Layer]
    background: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    background_texture: str = ""
    #: True: front faces have a positive signed area ``(b-a) x (c-a)`` in pixel coordinates
    #: ``(u, v)``; False: negative (layers with ``cull_back`` drop the others)
    front_ccw_pixels: bool = False


# --- the interface --------------------------------------------------------------------------------
class Renderer(abc.ABC):
    """Renders FLAME-layout meshes to ``uint8`` RGB frames.

    Backends implement :meth:`_draw` (one :class:`Frame` -> ``(H, W, 3)`` uint8) and
    :meth:`_set_textures`; the looks are built here from :mod:`.scene` / :mod:`.photo`.
    """

    name = "base"

    def render(self, vertices: Any, faces: Any, params: Any = None, **options: Any) -> np.ndarray:
        """Render every frame at once.

        Args:
            vertices: ``(T, V, 3)`` or ``(V, 3)`` metres in the head frame.
            faces: ``(F, 3)`` triangle indices.
            params: camera information: a :class:`~flame_transit.params.FaceParams` (``cam``,
                ``crop_to_image``, ``image_size``, ``vertices_2d``) or a dict with those keys;
                ``None`` frames the mesh with :func:`default_camera` (shaded look only).
            **options: see :meth:`iter_frames`.

        Returns:
            ``(T, H, W, 3)`` uint8 (``(H, W, 3)`` for a single ``(V, 3)`` mesh).
        """
        verts, single = check_vertices(vertices)
        frames = list(self.iter_frames(verts, faces, params, **options))
        out = np.stack(frames)
        return out[0] if single else out

    def iter_frames(
        self,
        vertices: Any,
        faces: Any,
        params: Any = None,
        *,
        look: str = "shaded",
        size: Any = None,
        photo: Any = None,
        source_vertices: Any = None,
        head: Any = None,
        rest_vertices: Any = None,
        background: Optional[Sequence[float]] = None,
        color: Optional[Sequence[float]] = None,
        mouth: bool = True,
        shading_gain: float = 1.0,
        progress: bool = False,
    ) -> Iterator[np.ndarray]:
        """Yield ``(H, W, 3)`` uint8 frames one at a time (no clip-sized buffer).

        Args:
            vertices: ``(T, V, 3)`` or ``(V, 3)`` metres in the head frame.
            faces: ``(F, 3)`` triangle indices of the skin.
            params: camera info (see :meth:`render`); the photo look needs the encoder's
                ``FaceParams`` of the photo (``cam``, ``crop_to_image``, ``image_size`` and
                ideally ``vertices_2d``).
            look: ``"shaded"`` (lit skin-tone mesh on a plain background) or ``"photo"`` (the
                person in ``photo`` makes the transition).
            size: ``(H, W)`` or an int; default 512 (shaded) or the photo's size (photo; an int
                is the longer side, aspect kept).
            photo: ``(H, W, 3)`` image (array, tensor, PIL image or path) for the photo look;
                defaults to ``params.extras["image"]`` when present.
            source_vertices: ``(V, 3)`` the mesh fitted to the photo (the photo's expression);
                default: computed with ``head`` from ``params``, else frame 0.
            head: the :class:`~flame_transit.head.Head` (skinning weights pick the vertices
                that follow the skull and the jaw; ``face_parts["mouth_interior"]``).
            rest_vertices: ``(V, 3)`` neutral closed-mouth mesh used to place the teeth;
                default: from ``head`` and ``params.shape``, else the source mesh.
            background: RGB in 0..1 for the shaded look.
            color: skin albedo RGB in 0..1 for the shaded look.
            mouth: draw the mouth interior (teeth, tongue, cavity).
            shading_gain: strength of the expression shading in the photo look (0 = pure
                texture warp, 1 = physical ratio).
            progress: tqdm progress bar.

        Yields:
            ``(H, W, 3)`` uint8 frames.
        """
        from .scene import build_scene

        verts, _ = check_vertices(vertices)
        tri = check_faces(faces, verts.shape[1])
        if look not in LOOKS:
            raise InputError(f"look must be one of {LOOKS}, got {look!r}")
        if not np.isfinite(shading_gain) or shading_gain < 0:
            raise InputError(f"shading_gain must be a non-negative number, got {shading_gain!r}")
        if photo is None and look == "photo":
            extras = _get(params, "extras") or {}
            photo = extras.get("image") if isinstance(extras, dict) else None
        if look == "photo" and photo is None:
            raise InputError(
                "look='photo' needs the source photo: pass photo=<(H, W, 3) image> together with "
                "the encoder's FaceParams, or use look='shaded'"
            )
        if look == "photo" and _get(params, "cam") is None:
            raise InputError("look='photo' needs params with the encoder's camera (cam, crop_to_image)")
        scene = build_scene(
            verts, tri, params, look=look, size=size, photo=photo,
            source_vertices=source_vertices, head=head, rest_vertices=rest_vertices,
            background=background, color=color, mouth=mouth, shading_gain=shading_gain,
        )
        self._begin(scene.size, scene.textures)
        iterator = range(verts.shape[0])
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc=f"render {look}", unit="frame")
        try:
            for t in iterator:
                yield self._draw(scene.frame(t))
        finally:
            self._end()

    # -- backend hooks -------------------------------------------------------------------------
    @abc.abstractmethod
    def _begin(self, size: Tuple[int, int], textures: Dict[str, np.ndarray]) -> None:
        """Prepare to draw frames of ``size`` with the named ``(H, W, 3)`` uint8 textures."""

    @abc.abstractmethod
    def _draw(self, frame: Frame) -> np.ndarray:
        """Rasterise one frame to ``(H, W, 3)`` uint8."""

    def _end(self) -> None:
        """Release per-clip resources (textures)."""

    def close(self) -> None:
        """Release the backend (GL context, GPU memory)."""

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def device_info(self) -> str:
        """Which device / GL implementation draws (after the first frame)."""
        return self.name


# --- registry ---------------------------------------------------------------------------------
def _pytorch3d_usable() -> bool:
    try:
        import importlib.util

        if importlib.util.find_spec("pytorch3d") is None:
            return False
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def available_renderers() -> List[str]:
    """Names :func:`get_renderer` accepts on this machine (without starting them)."""
    names = ["gl"]
    import importlib.util

    if importlib.util.find_spec("pytorch3d") is not None:
        names.append("pytorch3d")
    return names


#: names :func:`get_renderer` accepts (case-insensitive)
RENDERER_NAMES = ("auto", "gl", "moderngl", "opengl", "egl", "pytorch3d", "torch3d")


def check_renderer_name(name: Any) -> str:
    """``name`` normalised (stripped, lower case); :class:`InputError` unless it is one of
    :data:`RENDERER_NAMES`. Starts nothing, so it can run before any work.

    Example:
        >>> check_renderer_name(" GL ")
        'gl'
    """
    if not isinstance(name, str):
        raise InputError(f"renderer name must be a string, got {name!r}")
    key = name.strip().lower()
    if key not in RENDERER_NAMES:
        raise InputError(f"unknown renderer {name!r}; choose 'auto', 'gl' or 'pytorch3d'")
    return key


def get_renderer(name: str = "auto", **kwargs: Any) -> Renderer:
    """A renderer backend by name.

    Args:
        name: ``"gl"`` (moderngl, EGL: Mesa llvmpipe on CPU, NVIDIA EGL on GPUs),
            ``"pytorch3d"`` (needs PyTorch3D) or ``"auto"`` (PyTorch3D when importable and
            CUDA is available, else ``"gl"``).
        **kwargs: backend options (``gl``: ``samples``, ``egl_backend``; ``pytorch3d``:
            ``device``).

    Raises:
        RendererUnavailableError: the backend cannot start here (message says what to install).
        InputError: unknown name.

    Example:
        >>> get_renderer("gl").name
        'gl'
    """
    key = check_renderer_name(name)
    if key == "auto":
        key = "pytorch3d" if _pytorch3d_usable() else "gl"
        log.debug("renderer 'auto' -> %s", key)
    if key in ("gl", "moderngl", "opengl", "egl"):
        from .gl import GLRenderer

        return GLRenderer(**kwargs)
    if key in ("pytorch3d", "torch3d"):
        from .torch3d import PyTorch3DRenderer

        return PyTorch3DRenderer(**kwargs)
    raise InputError(f"unknown renderer {name!r}; choose 'auto', 'gl' or 'pytorch3d'")


def render_frames(animation: Any, progress: bool = False, renderer: Optional[Renderer] = None,
                  frame_indices: Optional[Sequence[int]] = None) -> Iterator[np.ndarray]:
    """Frames of an :class:`~flame_transit.api.Animation` with its render options
    (``renderer``, ``look``, ``size``), one at a time; only ``frame_indices`` when given
    (e.g. ``[0, -1]`` for the end frames), framed as the whole clip is. Keep frame 0 in the
    subset for pixel-identical frames: without a head it is the reference mesh."""
    opts = dict(getattr(animation, "render_options", {}) or {})
    look = opts.get("look", "shaded")
    image = getattr(animation, "image", None)
    subject = getattr(animation, "subject", None)
    head = getattr(animation, "head", None)
    if look == "photo" and image is None:
        look = "shaded"
    params = subject if look == "photo" else _shaded_params(animation)
    own = renderer is None
    r = renderer or get_renderer(opts.get("renderer", "auto"))
    vertices = animation.vertices
    if frame_indices is not None:
        if _get(params, "cam") is None:  # frame the subset as the whole clip is framed
            params = {"cam": framing_cam(vertices)}
        vertices = vertices[list(frame_indices)]
    # the shaded look's camera params carry no face: give it the clip's neutral face (the
    # reference of its folds and of the teeth), else it would measure from the first frame
    rest = _neutral_rest(animation) if look == "shaded" else None
    try:
        yield from r.iter_frames(
            vertices, animation.faces, params, look=look, size=opts.get("size"),
            photo=image, head=head, rest_vertices=rest, progress=progress,
        )
    finally:
        if own:
            r.close()


def _neutral_rest(animation: Any) -> Optional[np.ndarray]:
    """``(V, 3)`` the clip's neutral, closed-mouth face (its shape and offsets, its first
    frame's head and neck pose); None when the animation has no head or parameters."""
    head = getattr(animation, "head", None)
    params = getattr(animation, "params", None)
    if head is None or params is None or _get(params, "pose") is None:
        return None
    import torch

    pose = torch.as_tensor(_get(params, "pose")).reshape(-1, 15)[:1].clone().float()
    pose[:, 6:9] = 0.0  # jaw closed
    expression = torch.zeros(1, int(head.num_expression))
    with torch.no_grad():
        out = head(shape=_get(params, "shape"), expression=expression, pose=pose, offsets=_get(params, "offsets"))
    rest = out.vertices.reshape(-1, out.vertices.shape[-2], 3)[0].detach().cpu().numpy().astype(np.float64)
    return rest if rest.shape[0] == np.shape(animation.vertices)[-2] else None


def _shaded_params(animation: Any) -> Any:
    """Camera for the shaded look of an animation: the subject's camera when it has no photo
    crop (the default neutral head), else a default framing."""
    subject = getattr(animation, "subject", None)
    if subject is not None and _get(subject, "crop_to_image") is None and _get(subject, "cam") is not None:
        return {"cam": _get(subject, "cam")}
    return None
