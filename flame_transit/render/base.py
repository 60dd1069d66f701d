"""The renderer interface (:class:`Renderer`) and :func:`render_frames` for an animation.

A renderer turns meshes into frames::

    renderer = get_renderer()                       # "auto": "gl"
    frames = renderer.render(vertices, faces, params, look="shaded", size=(512, 512))
    for frame in renderer.iter_frames(vertices, faces, params, look="photo", photo=image):
        ...                                         # (H, W, 3) uint8, one at a time

Projection follows :mod:`flame_transit.params` exactly (:mod:`.camera`): a head-frame point
``X`` goes to crop NDC ``s * (X[:2] + (tx, ty))`` (y up), then through the ``(2, 3)``
``crop_to_image`` affine to pixels (u right, v down, pixel centres at integers + 0.5); depth is
``s * X[2]`` (larger = nearer). The camera looks down the head frame's -Z axis, so head-frame
normals are camera-frame normals and the lights (:mod:`.lights`) are fixed in that frame.

Backends (:mod:`.backends`, chosen by :func:`~flame_transit.render.backends.get_renderer`) only
rasterise draw lists (:mod:`.types`: a :class:`~.types.Frame` of :class:`~.types.Layer`); what
to draw for each look is decided once, in :mod:`.scene` and :mod:`.photo`, and shared by all.
"""

from __future__ import annotations

import abc
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from .camera import framing_cam
from .inputs import _get, check_faces, check_vertices
from .types import LOOKS, Frame

__all__ = ["Renderer", "render_frames"]


class Renderer(abc.ABC):
    """Renders FLAME-layout meshes to ``uint8`` RGB frames.

    Backends implement :meth:`_begin`, :meth:`_draw` (one :class:`Frame` -> a new
    ``(H, W, 3)`` uint8 array), optionally split into :meth:`_submit` / :meth:`_collect`, and
    :meth:`_end`; the looks are built here from :mod:`.scene` / :mod:`.photo`.
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
            # frame t's geometry is computed while the backend still rasterises frame t - 1
            # (submitted, not yet read back); a backend without that split draws eagerly. A
            # frame that repeats the one before (a hold) is not drawn again: `owed` copies.
            pending, owed = None, 0
            for t in iterator:
                if pending is not None and scene.repeats(t):
                    owed += 1
                    continue
                frame = scene.frame(t)
                done, copies = (self._collect(pending), owed) if pending is not None else (None, 0)
                pending, owed = self._submit(frame), 0
                if done is not None:
                    yield from _with_copies(done, copies)
            if pending is not None:
                yield from _with_copies(self._collect(pending), owed)
        finally:
            self._end()

    # -- backend hooks -------------------------------------------------------------------------
    @abc.abstractmethod
    def _begin(self, size: Tuple[int, int], textures: Dict[str, np.ndarray]) -> None:
        """Prepare to draw frames of ``size`` with the named ``(H, W, 3)`` uint8 textures."""

    @abc.abstractmethod
    def _draw(self, frame: Frame) -> np.ndarray:
        """Rasterise one frame to a new ``(H, W, 3)`` uint8 array (the caller keeps it)."""

    def _submit(self, frame: Frame) -> Any:
        """Start drawing ``frame``; :meth:`_collect` of the result gives its pixels. A backend
        that draws asynchronously (GL) returns before the pixels are ready, so the caller can
        build the next frame meanwhile; by default nothing is drawn until :meth:`_collect`."""
        return frame

    def _collect(self, pending: Any) -> np.ndarray:
        """``(H, W, 3)`` uint8 of a frame :meth:`_submit` started (called before the next
        submit)."""
        return self._draw(pending)

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


def _with_copies(image: np.ndarray, copies: int) -> Iterator[np.ndarray]:
    """``copies + 1`` frames of ``image``: its copies first (taken while no caller holds it),
    then ``image`` itself, so a caller that edits a frame in place edits only that one."""
    for _ in range(copies):
        yield image.copy()
    yield image


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
    if renderer is None:
        from .backends import get_renderer

        renderer = get_renderer(opts.get("renderer", "auto"))
    r = renderer
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
    """``(V, 3)`` the clip's neutral, closed-mouth face (:func:`.topology._head_forward` on its
    parameters); None when the animation has no head or parameters."""
    from .topology import _head_forward

    head = getattr(animation, "head", None)
    params = getattr(animation, "params", None)
    if head is None or params is None:
        return None
    rest = _head_forward(head, params, zero_expression=True)
    return rest if rest is not None and rest.shape == np.shape(animation.vertices)[-2:] else None


def _shaded_params(animation: Any) -> Any:
    """Camera for the shaded look of an animation: the subject's camera when it has no photo
    crop (the default neutral head), else a default framing."""
    subject = getattr(animation, "subject", None)
    if subject is not None and _get(subject, "crop_to_image") is None and _get(subject, "cam") is not None:
        return {"cam": _get(subject, "cam")}
    return None
