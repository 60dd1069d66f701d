"""One call from a photo and an instruction to an animation: :func:`animate`.

``animate`` runs the stages in order — encode → text → transit → trajectory → head — and returns
an :class:`Animation`. Frames are rendered lazily, on the first ``save`` to a video/image format
or the first access to :attr:`Animation.frames`.

Example:
    >>> from flame_transit import animate
    >>> anim = animate(None, "from sadness to surprise", fps=10, duration=0.5, hold=0.0)
    >>> anim.num_frames, anim.vertices.shape[1:] == (anim.head.num_vertices, 3)
    (6, True)
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch

from .errors import InputError
from .outputs import check_output_path, output_format
from .params import FaceParams

__all__ = ["animate", "Animation", "check_output_path"]

log = logging.getLogger(__name__)

_LOOKS = ("photo", "shaded")
_STARTS = ("auto", "first", "photo")
#: photo encoders by name (see :func:`animate`)
ENCODERS = ("mediapipe", "deca")


@dataclass
class Animation:
    """A rendered-on-demand expression transition.

    Attributes:
        trajectory: the per-frame :class:`~flame_transit.trajectory.Trajectory`; ``params``,
            ``fps`` and ``anchor_frames`` are read from it.
        head: the :class:`~flame_transit.head.Head` the parameters belong to.
        instruction: the parsed instruction (ordered segments).
        anchors: the generated anchor expressions (one per segment).
        subject: the encoded photo (or the neutral default head).
        image: the source photo ``(H, W, 3)`` uint8, or None.
        seed: as requested.
    """

    trajectory: Any
    head: Any
    instruction: Any
    anchors: Any
    subject: FaceParams
    image: Optional[np.ndarray]
    seed: int
    text: str
    render_options: Dict[str, Any] = field(default_factory=dict)
    timings: Dict[str, float] = field(default_factory=dict)
    _vertices: Optional[np.ndarray] = field(default=None, repr=False)
    _frames: Optional[np.ndarray] = field(default=None, repr=False)

    # -- parameters ---------------------------------------------------------------------------
    @property
    def params(self) -> FaceParams:
        """Per-frame parameters: ``expression (T, E)``, ``pose (T, 15)``, shared ``shape``."""
        return self.trajectory.params

    @property
    def fps(self) -> float:
        return float(self.trajectory.fps)

    @property
    def anchor_frames(self) -> List[int]:
        """Frame index of each keyframe (anchors, and the photo/neutral frames when used)."""
        return [int(i) for i in self.trajectory.anchor_frames]

    # -- geometry -----------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return int(self.params.expression.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def faces(self) -> np.ndarray:
        """``(F, 3)`` triangle indices of the head's skin."""
        return self.head.faces

    @property
    def mesh_faces(self) -> np.ndarray:
        """``(F', 3)`` the whole head (skin, eyes, mouth interior): what the exports write."""
        return self.head.mesh_faces

    @property
    def vertices(self) -> np.ndarray:
        """``(T, V, 3)`` float32 metres, in the head frame (before the camera)."""
        if self._vertices is None:
            t0 = time.perf_counter()
            with torch.no_grad():
                out = self.head(
                    shape=self.params.shape,
                    expression=self.params.expression,
                    pose=self.params.pose,
                    offsets=self.params.offsets,
                )
            self._vertices = out.vertices.detach().cpu().numpy().astype(np.float32)
            self.timings["head"] = time.perf_counter() - t0
        return self._vertices

    # -- frames -------------------------------------------------------------------------------
    def _renderer(self):
        from .render import get_renderer

        return get_renderer(self.render_options.get("renderer", "auto"))

    def iter_frames(self, progress: bool = False) -> Iterator[np.ndarray]:
        """Yield ``(H, W, 3)`` uint8 frames one by one (no clip-sized buffer)."""
        if self._frames is not None:
            yield from self._frames
            return
        from .render import render_frames

        yield from render_frames(self, progress=progress)

    def _caching_frames(self, progress: bool) -> Iterator[np.ndarray]:
        """Stream frames and keep a copy of each in one ``(T, H, W, 3)`` array, :attr:`frames`
        (so a contact sheet or :attr:`frames` after a video renders nothing), unless the clip
        is over ~1 GiB of pixels. One array, not one per frame: the kernel backs a large
        allocation with huge pages where it can (numpy asks for them), while 60 separate 512²
        frames cost ~12,000 page faults (~25 ms) a clip here."""
        if self._frames is not None:
            yield from self._frames
            return
        count, budget = self.num_frames, 1 << 30
        kept: Optional[np.ndarray] = None
        n = 0
        for n, frame in enumerate(self.iter_frames(progress=progress), start=1):
            if n == 1 and count * frame.nbytes <= budget:
                kept = np.empty((count,) + frame.shape, dtype=frame.dtype)
            if kept is not None and n <= count:
                kept[n - 1] = frame
            yield frame
        if kept is not None and n == count:
            self._frames = kept

    @property
    def frames(self) -> np.ndarray:
        """``(T, H, W, 3)`` uint8, rendered on first access and cached."""
        if self._frames is None:
            t0 = time.perf_counter()
            self._frames = _into_one_array(self.iter_frames(progress=self.render_options.get("progress", False)),
                                           self.num_frames)
            self.timings["render"] = time.perf_counter() - t0
        return self._frames

    # -- output -------------------------------------------------------------------------------
    def describe(self) -> str:
        """One line: the keyframes in order (``photo`` when the clip starts from the photo's own
        face, ``neutral`` when it passes through it), duration, fps and head."""
        labels = list(getattr(self.trajectory, "labels", None) or getattr(self.anchors, "labels", None) or [])
        return f"{' -> '.join(labels) or 'clip'}, {self.duration:.2f} s at {self.fps:g} fps, head {self.head.name}"

    def save(self, path: Union[str, os.PathLike], **options: Any) -> Path:
        """Write the animation; the format follows the suffix (:mod:`flame_transit.outputs`).

        ``.mp4`` / ``.gif`` video, ``.png`` contact sheet; the exports go through
        :func:`flame_transit.export.export`: ``.npz`` parameters + vertices, ``.glb`` the head
        with named expression shapes and their animation, ``.csv`` / ``.json`` ARKit curves, a
        folder name (no suffix or trailing ``/``) → one ``.obj`` per frame. Keyword arguments
        go to the writer; ``layout="deca"`` with ``.npz`` writes DECA's arrays instead
        (:meth:`deca_params`). Nothing half-written is left behind on error.
        """
        p = check_output_path(path, kind="any")
        fmt = output_format(path)
        layout = options.pop("layout", "full")
        if layout not in ("full", "deca") or (layout == "deca" and fmt.name != "npz"):
            raise InputError(f"layout must be 'full' or 'deca' (DECA's arrays, .npz only), got {layout!r} for {p.name}")
        if layout == "deca":
            import io

            from .io_utils import atomic_write_bytes

            buf = io.BytesIO()
            np.savez(buf, **self.deca_params())
            return atomic_write_bytes(p, buf.getvalue())
        if fmt.kind == "export":
            from .export import export

            if fmt.name in ("npz", "obj"):  # the meshes this object already holds
                options.setdefault("vertices", self.vertices)
                options.setdefault("faces", self.mesh_faces)
            for key, value in (("head", self.head), ("fps", self.fps), ("instruction", self.text), ("seed", self.seed)):
                options.setdefault(key, value)
            return export(p, self.trajectory, **options)
        if fmt.name in ("mp4", "gif"):
            from .video_writer import write_video

            t0 = time.perf_counter()
            progress = options.pop("progress", self.render_options.get("progress", False))
            # a renderer yields a new array for each frame (Renderer._draw) and _caching_frames
            # keeps its own copy: the writer need not copy them again
            options.setdefault("copy", False)
            write_video(self._caching_frames(progress), p, fps=self.fps, **options)
            self.timings["video"] = time.perf_counter() - t0
            return p
        from .viz import contact_sheet

        if "labels" not in options:
            options["labels"] = dict(zip(self.anchor_frames, self.trajectory.labels))
        if "indices" not in options:
            options["indices"] = self.sheet_indices(options.pop("n", 8))
        contact_sheet(self.frames, p, fps=self.fps, **options)
        return p

    def deca_params(self) -> Dict[str, np.ndarray]:
        """The clip in DECA's layout (FLAME heads): ``shape (100,)``, ``exp (T, 50)`` (FLAME's
        first 50 expression coefficients), ``pose (T, 6)`` (global, jaw axis-angle),
        ``cam (T, 3)`` (scale, tx, ty). ``save("x.npz", layout="deca")`` writes these arrays.

        Raises:
            InputError: the head is not a FLAME model.
        """
        if self.head.kind != "flame":
            raise InputError(f"DECA's layout holds FLAME coefficients; this clip is on a {self.head.kind!r} head "
                             "(animate with head='generic_model.pkl')")
        p = self.params
        f = lambda x: x.detach().cpu().numpy().astype(np.float32)
        t = self.num_frames
        shape = np.zeros(100, dtype=np.float32)
        s = f(p.shape).reshape(-1)[:100]
        shape[: len(s)] = s
        exp = np.zeros((t, 50), dtype=np.float32)
        e = f(p.expression).reshape(t, -1)[:, :50]
        exp[:, : e.shape[1]] = e
        pose = f(p.pose).reshape(t, 15)
        return {"shape": shape, "exp": exp, "pose": np.concatenate([pose[:, 0:3], pose[:, 6:9]], axis=1),
                "cam": np.broadcast_to(f(p.cam).reshape(-1, 3), (t, 3)).copy()}

    # -- action units and ARKit -----------------------------------------------------------------
    @property
    def au(self) -> np.ndarray:
        """``(T, A)`` action-unit coordinates per frame (names: :attr:`au_names`); AU26 is the
        jaw drop. From the head's own AU coordinates (open head) or the trajectory's ``au``
        (FLAME clips made through the AU space).

        Raises:
            InputError: the clip has no AU trajectory.
        """
        from .arkit import au_trajectory

        return au_trajectory(self.trajectory, self.head)[0]

    @property
    def au_names(self) -> Tuple[str, ...]:
        """Names of the :attr:`au` columns (``"AU1"``, ..., ``"AU26"``)."""
        from .arkit import au_trajectory

        return au_trajectory(self.trajectory, self.head)[1]

    @property
    def arkit(self) -> np.ndarray:
        """``(T, 52)`` float32 ARKit blendshape curves in ``[0, 1]``, columns
        :data:`flame_transit.arkit.ARKIT_NAMES` (Apple's names and order), from :attr:`au`
        through the table :data:`flame_transit.arkit.AU_TO_ARKIT`.

        Raises:
            InputError: the clip has no AU trajectory.
        """
        from .arkit import au_to_arkit, au_trajectory

        return au_to_arkit(*au_trajectory(self.trajectory, self.head))

    def sheet_indices(self, n: int = 8) -> List[int]:
        """``n`` frame indices for a contact sheet: every anchor frame, then evenly spaced fill."""
        t = self.num_frames
        keep = set(int(i) for i in self.anchor_frames if 0 <= int(i) < t)
        keep.update({0, t - 1})
        for i in np.linspace(0, t - 1, num=max(n, 2)).round().astype(int):
            if len(keep) >= n:
                break
            keep.add(int(i))
        return sorted(keep)[: max(n, len(self.anchor_frames))]

    def save_plot(self, path: Union[str, os.PathLike]) -> Path:
        """Write the expression-trajectory plot (PNG): moving AUs/coefficients over time."""
        from .viz import plot_trajectory

        p = check_output_path(path, kind="render")
        plot_trajectory(self.trajectory, list(self.head.expression_names), p, fps=self.fps)
        return p


def _check_options(fps: float, duration: Optional[float], hold: float, look: str, size: Any,
                   temperature: float = 1.0, renderer: Any = "auto", timing: Any = "ease",
                   text_encoder: Any = None) -> None:
    """Fail before any encoding work; the numbers go through the trajectory's own checks."""
    from .checks import MAX_TEMPERATURE, check_fps, check_frame_size, positive_number
    from .render.backends import check_renderer_name
    from .text.encoders import check_encoder_name
    from .trajectory import check_timing

    if isinstance(text_encoder, str):
        check_encoder_name(text_encoder)
    elif text_encoder is not None and not callable(getattr(text_encoder, "encode", None)):
        raise InputError(f"text_encoder must be None, a name ('minilm', 'clip') or a TextEncoder, "
                         f"got {type(text_encoder).__name__}")

    check_fps(fps)
    positive_number("temperature", temperature, allow_zero=True, maximum=MAX_TEMPERATURE)
    check_timing(timing)
    check_renderer_name(renderer)
    if duration is not None:
        positive_number("duration", duration)
    positive_number("hold", hold, allow_zero=True)
    if look not in _LOOKS:
        raise InputError(f"look must be one of {_LOOKS}, got {look!r}")
    check_frame_size(size)


def _into_one_array(frames: Iterator[np.ndarray], count: int) -> np.ndarray:
    """``(T, H, W, 3)`` of streamed frames, each copied into one array allocated at the first
    (not a list of frames stacked at the end: half the peak memory, and each frame's buffer is
    free again for the next)."""
    out: Optional[np.ndarray] = None
    n = 0
    for n, frame in enumerate(frames, start=1):
        if out is None:
            out = np.empty((count,) + frame.shape, dtype=frame.dtype)
        if n > count:
            break
        out[n - 1] = frame
    if out is None or n != count:
        made = f"more than {count}" if n > count else str(n)
        raise RuntimeError(f"the renderer produced {made} frames for a {count}-frame clip")
    return out


def animate(
    image: Any,
    instruction: str,
    *,
    fps: float = 30.0,
    duration: Optional[float] = None,
    seed: int = 0,
    head: Any = None,
    text_encoder: Any = None,
    model: Any = None,
    renderer: str = "auto",
    look: str = "photo",
    size: Union[int, Tuple[int, int]] = 512,
    timing: str = "ease",
    hold: float = 0.25,
    through_neutral: bool = False,
    start: str = "auto",
    temperature: float = 1.0,
    framing: str = "face",
    face: Optional[int] = None,
    encoder: Any = "mediapipe",
    deca_model: Any = None,
    progress: bool = False,
) -> Animation:
    """Turn a face photo and an instruction into an expression transition.

    Args:
        image: path, PIL image, ``(H, W, 3)`` array or tensor; ``None`` animates the bundled
            neutral head (shaded look).
        instruction: e.g. ``"turn this face from disgust to happiness"``; see
            ``docs/INSTRUCTIONS.md`` for the language (intensities, compounds, sequences, AUs).
        fps: frames per second.
        duration: seconds per transition (default 2.0).
        seed: seed of the CVAE sampling: same seed, same clip.
        head: ``None`` (bundled open head), a FLAME model path, or a loaded ``Head``.
        text_encoder: ``None`` (offline MiniLM, or CLIP when its weights are cached), a name
            (``"minilm"``, ``"clip"``) or a ``TextEncoder``.
        model: I2FET checkpoint path or loaded model (default: the bundled one for the head).
        renderer: ``"auto"``, ``"gl"`` or ``"pytorch3d"``.
        look: ``"photo"`` (the person in the photo makes the transition) or ``"shaded"``.
        size: output frame size, int or ``(H, W)``; the photo look keeps the photo's aspect.
        timing: ``"linear"`` (the paper's eq. 16) or ``"ease"`` (smooth start and stop).
        hold: seconds held at each anchor expression.
        through_neutral: insert the subject's neutral face (NED) between expressions.
        start: ``"auto"`` (default: ``"photo"`` when the instruction names a single target,
            so "make her smile" goes from the photo's own face to a smile, else ``"first"``),
            ``"first"`` (first frame = first named expression) or ``"photo"`` (first frame =
            the photo's expression). On a FLAME head the photo's action units (for the clip's
            ARKit curves) are read by fitting the open head to the same landmarks.
        temperature: scale of the CVAE latent sample (0 = the mean expression).
        framing: photo look only: ``"face"`` (default) crops a square around the face and
            scales it to ``size``; ``"full"`` keeps the whole photo (longer side = ``size``).
        face: which face when the photo shows several (0 = the largest; ``None``: the largest,
            with a warning naming how many were found).
        encoder: ``"mediapipe"`` (default: a fit of the head to MediaPipe's landmarks; on a
            FLAME head through its automatic landmark correspondence), ``"deca"`` (DECA's
            encoder from ``deca_model`` or ``$FLAME_TRANSIT_DECA_MODEL``; a FLAME head and
            torchvision needed) or an encoder object with ``encode(image, face_index=...)``
            (e.g. a :class:`~flame_transit.encode.DecaEncoder`).
        deca_model: path of DECA's ``deca_model.tar`` for ``encoder="deca"``.
        progress: show progress bars.

    Returns:
        :class:`Animation`.
    """
    if not isinstance(instruction, str):
        raise InputError(f"instruction must be a string, got {type(instruction).__name__}")
    _check_options(fps, duration, hold, look, size, temperature, renderer, timing, text_encoder)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be an integer, got {seed!r}")
    if not -(2**63) <= int(seed) < 2**63:  # it is stored as int64 in the .npz export
        raise InputError(f"seed must fit in 64 bits (-2**63 <= seed < 2**63), got {seed}")
    if start not in _STARTS:
        raise InputError(f"start must be one of {_STARTS}, got {start!r}")
    if framing not in ("face", "full"):
        raise InputError(f"framing must be 'face' or 'full', got {framing!r}")
    if face is not None and (isinstance(face, bool) or not isinstance(face, (int, np.integer)) or face < 0):
        raise InputError(f"face must be None or a face number 0, 1, ... (0 = largest), got {face!r}")
    if isinstance(encoder, str) and encoder not in ENCODERS:
        raise InputError(f"encoder must be one of {ENCODERS} or an encoder object, got {encoder!r}")
    if not isinstance(encoder, str) and not callable(getattr(encoder, "encode", None)):
        raise InputError(f"encoder must be one of {ENCODERS} or an object with encode(image), got {type(encoder).__name__}")
    if deca_model is not None and encoder != "deca":
        raise InputError("deca_model is used with encoder='deca' only")
    timings: Dict[str, float] = {}

    @contextlib.contextmanager
    def timed(name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0

    from .head import load_head
    from .text import parse_instruction
    from .trajectory import build_trajectory
    from .transit import generate_anchors, neutral_anchor

    with timed("load_head"):
        head_model = _bundled_head() if head is None else load_head(head)
    if head_model.num_expression == 0:
        raise InputError(f"head {head_model.name!r} has no expression coordinates (its shapedirs holds shape "
                         "columns only), so it cannot make expressions; use a FLAME model with its expression "
                         "basis (300 shape + 100 expression columns)")
    if encoder == "deca" and image is not None:
        if head_model.kind != "flame":
            raise InputError("encoder='deca' predicts FLAME parameters: pass your FLAME model as head= "
                             "(e.g. head='generic_model.pkl'), or use encoder='mediapipe'")
        from .encode import DecaEncoder

        encoder = DecaEncoder(deca_model, head=head_model)
    with timed("text_parse"):
        parsed = parse_instruction(instruction)
    image_array = None
    with timed("encode"):
        if image is not None:
            from .encode import encode, load_image

            image_array = load_image(image)
            face_index = None if face is None else int(face)
            if isinstance(encoder, str):
                subject = encode(image_array, head_model, face_index=face_index)
                turns = subject.extras.get("quarter_turns")
                if turns:  # a sideways or upside-down photo: animate it upright
                    how = {1: "a quarter turn clockwise", 2: "upside down", 3: "a quarter turn counter-clockwise"}[turns]
                    warnings.warn(f"the face in the photo is {how}; the clip shows the photo turned upright",
                                  stacklevel=2)
                    image_array = np.ascontiguousarray(np.rot90(image_array, turns))
                    subject = encode(image_array, head_model, face_index=face_index)
            else:
                subject = encoder.encode(image_array, face_index=face_index)
            if look == "photo" and framing == "face":
                image_array, subject = frame_face(image_array, subject, size)
        else:
            subject = _default_subject(head_model)
            if look == "photo":
                look = "shaded"
    with timed("transit"):
        anchors = generate_anchors(parsed, subject=subject, model=model, head=head_model,
                                   text_encoder=text_encoder, seed=int(seed), temperature=temperature)
    single = len(parsed.segments) == 1
    if (start == "photo" or (start == "auto" and single)) and not head_model.is_au_head \
            and anchors.au is not None and "au" not in subject.extras:
        # a FLAME fit has no AU coordinates: read the photo's with the open head on the same
        # landmarks, so a clip that starts from the photo keeps its AU trajectory (ARKit, .glb)
        photo_au = _photo_action_units(subject, anchors.au_names)
        if photo_au is not None:
            subject.extras["au"] = photo_au
    if start == "auto":
        can_start_from_photo = head_model.is_au_head or anchors.au is None or "au" in subject.extras
        start = "photo" if single and can_start_from_photo else "first"
    with timed("trajectory"):
        neutral = neutral_anchor(subject, model=model, head=head_model) if through_neutral else None
        traj = build_trajectory(subject, anchors, fps=fps, duration=duration, timing=timing, hold=hold,
                                start=start, through_neutral=through_neutral, neutral=neutral)
        if image is None and start == "photo":  # no photo: the clip starts from the bundled neutral face
            traj.labels[0] = "neutral"
    anim = Animation(
        trajectory=traj,
        head=head_model,
        instruction=parsed,
        anchors=anchors,
        subject=subject,
        image=image_array,
        seed=int(seed),
        text=instruction,
        render_options=dict(renderer=renderer, look=look, size=size, progress=progress),
        timings=timings,
    )
    log.info("animate: %s; timings %s", anim.describe(), {k: round(v, 4) for k, v in timings.items()})
    return anim


def _photo_action_units(subject: FaceParams, au_names: Any) -> Optional[np.ndarray]:
    """``(A,)`` the photo's action units in ``au_names`` order (AU26 from the jaw), from the open
    head fitted to the landmarks the subject was fitted to; None without landmarks."""
    landmarks = subject.extras.get("landmarks")
    if landmarks is None or subject.image_size is None:
        return None
    from .encode import encode_landmarks
    from .encode.landmarks import FaceLandmarks
    from .head.open_head import JAW_RAD_PER_AU26

    fit = encode_landmarks(FaceLandmarks(points=np.asarray(landmarks, dtype=np.float64),
                                         image_size=tuple(int(v) for v in subject.image_size)), None, offsets=False)
    values = dict(fit.extras["aus"])
    values["AU26"] = max(float(fit.pose[6]) / JAW_RAD_PER_AU26, 0.0)
    if not all(str(n) in values for n in au_names):
        return None
    return np.array([values[str(n)] for n in au_names], dtype=np.float64)


def frame_face(image: np.ndarray, subject: FaceParams, size: Union[int, Tuple[int, int]],
               margin: float = 1.9) -> Tuple[np.ndarray, FaceParams]:
    """Crop a square around the encoded face and scale it to ``size``.

    The square is ``margin`` × the face's larger extent, centred on the face and shifted inside
    the photo; the subject's pixel-space fields (``crop_to_image``, ``vertices_2d``,
    ``image_size``) are mapped into the crop so the render still lines up.

    Returns:
        ``(crop (S, S, 3) uint8, subject)``.
    """
    from PIL import Image

    out = int(size if not isinstance(size, (tuple, list)) else max(size))
    if subject.vertices_2d is None:
        return image, subject
    pts = np.asarray(subject.vertices_2d, dtype=np.float64)[:468]
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    h, w = image.shape[:2]
    side = min(margin * max(x1 - x0, y1 - y0), float(min(h, w)))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.05 * side  # a little headroom for the hair
    left = float(np.clip(cx - side / 2, 0, w - side))
    top = float(np.clip(cy - side / 2, 0, h - side))
    k = out / side
    crop = Image.fromarray(image).resize((out, out), Image.LANCZOS, box=(left, top, left + side, top + side))
    shift = torch.tensor([left, top], dtype=torch.float32)
    a = subject.crop_to_image.clone().float()
    a[:, :2] *= k
    a[:, 2] = (a[:, 2] - shift) * k
    v2d = (torch.as_tensor(subject.vertices_2d, dtype=torch.float32) - shift) * k
    return np.asarray(crop), subject.replace(crop_to_image=a, vertices_2d=v2d, image_size=(out, out))


_BUNDLED_HEAD: Any = None


def _bundled_head() -> Any:
    """The bundled open head, loaded once per process (animate() is often called in a loop)."""
    global _BUNDLED_HEAD
    if _BUNDLED_HEAD is None:
        from .head import load_head

        _BUNDLED_HEAD = load_head()
    return _BUNDLED_HEAD


def _default_subject(head: Any) -> FaceParams:
    """The head's own neutral face, framed for a square render (no photo)."""
    with torch.no_grad():
        verts = head().vertices.reshape(-1, 3)
    lo, hi = verts.min(0).values, verts.max(0).values
    centre = (lo + hi) / 2
    extent = float((hi - lo)[:2].max())
    scale = 1.6 / max(extent, 1e-6)  # head fills ~80 % of the crop
    cam = torch.tensor([scale, -float(centre[0]), -float(centre[1])])
    return FaceParams(
        shape=torch.zeros(head.num_shape),
        expression=torch.zeros(head.num_expression),
        pose=torch.zeros(15),
        cam=cam,
        head_name=head.name,
    )
