"""``encode_video``: a clip → one :class:`~flame_transit.params.FaceParams` with per-frame
expression, pose and camera and one identity.

Pipeline:

1. MediaPipe landmarks on every frame (the same face throughout: ``face_index`` picks it in the
   first frame with a face, later frames take the face nearest to the previous one); frames
   without a face get landmarks interpolated linearly from their neighbours (``on_missing``);
2. identity fitted once: the per-coefficient median of free fits on up to ``identity_frames``
   evenly spaced frames;
3. per-subject offsets from the first frame (whose photo is the texture: ``vertices_2d``), as
   in :func:`~flame_transit.encode.encode`: the residual the parametric model leaves there;
4. every frame fitted with the identity fixed (expression, jaw, eyes, head pose, camera), all
   in the first frame's crop; the mesh of frame ``t`` is ``head(shape, expression[t],
   pose[t], offsets)``;
5. temporal smoothing of expression, pose and camera:

   * ``"savgol"`` (default, offline, zero lag): Savitzky–Golay, ``window`` frames (odd),
     polynomial order ``polyorder`` (:func:`scipy.signal.savgol_filter`, ``mode="interp"``);
   * ``"one_euro"`` (causal, for streams): the 1€ filter (Casiez et al., CHI 2012) with
     ``min_cutoff`` Hz and speed coefficient ``beta``;
   * ``None``: no smoothing.

   AU intensities are clipped back to their bounds afterwards.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError, NoFaceError
from ..io_utils import user_path
from .fit import FitOptions, fit_landmarks
from .image_io import load_image
from .landmarks import DEFAULT_MAX_FACES, DEFAULT_MAX_SIDE, FaceLandmarks, detect_all_faces, face_box

__all__ = ["encode_video", "read_video", "savgol_smooth", "one_euro_smooth"]


def read_video(video: Any, max_frames: Optional[int] = None) -> Tuple[List[np.ndarray], Optional[float]]:
    """Frames (``uint8`` RGB) and fps (``None`` if unknown) of a video file, a sequence of
    images, or an array/tensor ``(T, H, W, C)`` / ``(T, C, H, W)``."""
    limit = None if max_frames is None else int(max_frames)
    if isinstance(video, (str, os.PathLike)):
        path = user_path(os.fspath(video))
        if not path.exists():
            raise InputError(f"video file not found: {path}")
        if path.is_dir():
            frames_paths = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp"))
            if not frames_paths:
                raise InputError(f"folder {path} holds no .png/.jpg frames")
            return [load_image(p) for p in frames_paths[:limit]], None
        import imageio.v3 as iio

        fps = None
        try:
            meta = iio.immeta(path)
            fps = float(meta["fps"]) if meta.get("fps") else None
        except Exception:
            pass
        frames: List[np.ndarray] = []
        try:
            for frame in iio.imiter(path):
                frames.append(load_image(np.asarray(frame)))
                if limit is not None and len(frames) >= limit:
                    break
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"cannot read video file {path}: {type(exc).__name__}: {exc}") from exc
        if not frames:
            raise InputError(f"video file {path} has no frames")
        return frames, fps
    if isinstance(video, (bytes, bytearray)):
        raise InputError("got raw bytes; pass a video file path or a sequence of frames")
    if not hasattr(video, "__len__") or not hasattr(video, "__getitem__"):
        if isinstance(video, Iterable):
            video = list(video)
        else:
            raise InputError(f"unsupported video type {type(video).__name__}; pass a path or a sequence of frames")
    n = len(video)
    if n == 0:
        raise InputError("the video has no frames")
    if limit is not None:
        n = min(n, limit)
    return [load_image(video[i]) for i in range(n)], None


# ----------------------------------------------------------------------------------------------
# smoothing
# ----------------------------------------------------------------------------------------------
def savgol_smooth(x: np.ndarray, window: int = 7, polyorder: int = 2) -> np.ndarray:
    """Savitzky–Golay along axis 0; the window shrinks to the clip length (odd), no-op when
    too short.

    Example:
        >>> t = np.linspace(0, 1, 20)[:, None]
        >>> bool(np.allclose(savgol_smooth(t ** 2, 7, 2), t ** 2))  # quadratics pass unchanged
        True
    """
    from scipy.signal import savgol_filter

    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    w = min(int(window), n if n % 2 == 1 else n - 1)
    if w < 3 or w <= polyorder:
        return x.copy()
    return savgol_filter(x, w, int(polyorder), axis=0, mode="interp")


def one_euro_smooth(x: np.ndarray, fps: float, min_cutoff: float = 1.0, beta: float = 0.05,
                    d_cutoff: float = 1.0) -> np.ndarray:
    """The 1€ filter (Casiez, Roussel & Vogel 2012) along axis 0, per channel.

    Example:
        >>> y = one_euro_smooth(np.r_[np.zeros(5), np.ones(5)][:, None], fps=30.0)
        >>> bool(0.0 < y[5, 0] < 1.0 and y[0, 0] == 0.0)
        True
    """
    x = np.asarray(x, dtype=np.float64)
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    te = 1.0 / float(fps)

    def alpha(cutoff: np.ndarray) -> np.ndarray:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / te)

    out = np.empty_like(x)
    out[0] = x[0]
    dx_prev = np.zeros_like(x[0])
    for i in range(1, x.shape[0]):
        dx = (x[i] - out[i - 1]) / te
        a_d = alpha(np.asarray(d_cutoff))
        dx_hat = a_d * dx + (1 - a_d) * dx_prev
        cutoff = min_cutoff + beta * np.abs(dx_hat)
        a = alpha(cutoff)
        out[i] = a * x[i] + (1 - a) * out[i - 1]
        dx_prev = dx_hat
    return out


# ----------------------------------------------------------------------------------------------
def _track_faces(frames: Sequence[np.ndarray], face_index: Optional[int], max_num_faces: int,
                 max_side: int, flip_average: bool, progress: bool) -> List[Optional[FaceLandmarks]]:
    out: List[Optional[FaceLandmarks]] = []
    prev_centre = None
    warned = False
    it = range(len(frames))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="landmarks", unit="frame")
    want = max(int(max_num_faces), (face_index or 0) + 1)
    for i in it:
        faces = detect_all_faces(frames[i], max_num_faces=want, max_side=max_side, flip_average=flip_average)
        if not faces:
            out.append(None)
            continue
        if prev_centre is None:
            idx = 0 if face_index is None else int(face_index)
            if idx >= len(faces):
                raise InputError(f"face_index={idx} but only {len(faces)} face(s) in frame {i} (0 = largest)")
            if len(faces) > 1 and face_index is None and not warned:
                warnings.warn(f"{len(faces)} faces in frame {i}; following the largest (face_index selects another)", stacklevel=3)
                warned = True
        else:
            idx = int(np.argmin([np.linalg.norm(f[:, :2].mean(axis=0) - prev_centre) for f in faces]))
        prev_centre = faces[idx][:, :2].mean(axis=0)
        h, w = frames[i].shape[:2]
        out.append(FaceLandmarks(points=faces[idx], image_size=(h, w), face_index=idx, num_faces=len(faces)))
    return out


def _fill_missing(lms: List[Optional[FaceLandmarks]]) -> Tuple[np.ndarray, np.ndarray]:
    have = np.array([lm is not None for lm in lms])
    if not have.any():
        raise NoFaceError(f"no face found in any of the {len(lms)} frames")
    idx = np.nonzero(have)[0]
    stack = np.stack([lms[i].points for i in idx])  # (n, 478, 3)
    t = np.arange(len(lms))
    flat = stack.reshape(len(idx), -1)
    filled = np.empty((len(lms), flat.shape[1]))
    for k in range(flat.shape[1]):  # np.interp holds the ends constant
        filled[:, k] = np.interp(t, idx, flat[:, k])
    return filled.reshape(len(lms), 478, 3), ~have


def encode_video(
    video: Any,
    head: Any = None,
    *,
    fps: Optional[float] = None,
    smoothing: Optional[str] = "savgol",
    window: int = 7,
    polyorder: int = 2,
    min_cutoff: float = 1.0,
    beta: float = 0.05,
    identity_frames: int = 8,
    face_index: Optional[int] = None,
    on_missing: str = "interpolate",
    max_frames: Optional[int] = None,
    max_num_faces: int = DEFAULT_MAX_FACES,
    max_side: int = DEFAULT_MAX_SIDE,
    flip_average: bool = True,
    offsets: bool = True,
    options: Optional[FitOptions] = None,
    progress: bool = False,
):
    """Encode a clip: identity once, per-frame expression/pose/camera, temporally smoothed.

    Args:
        video: a video file (anything imageio/ffmpeg reads), a folder of frames, a sequence of
            images, or an array/tensor ``(T, H, W, C)`` / ``(T, C, H, W)``.
        head: as in :func:`~flame_transit.encode.encode`.
        fps: frame rate (one-euro smoothing; taken from the file when known, else 30).
        smoothing: ``"savgol"`` (default), ``"one_euro"`` or ``None`` (see module docstring).
        window, polyorder: Savitzky–Golay settings (frames, odd window).
        min_cutoff, beta: one-euro settings.
        identity_frames: frames used to fit the identity (median of their free fits).
        face_index: which face to follow (0 = largest in the first frame with a face).
        on_missing: ``"interpolate"`` (default; warns) or ``"raise"`` for frames without a face.
        max_frames: read at most this many frames.
        max_num_faces, max_side, flip_average, offsets, options: as in ``encode``.
        progress: tqdm progress bars.

    Returns:
        :class:`~flame_transit.params.FaceParams` with ``shape (S,)``, ``expression (T, E)``,
        ``pose (T, 15)``, ``cam (T, 3)`` (all in the first frame's crop ``crop_to_image``),
        ``offsets (V, 3)``, ``vertices_2d (V, 2)`` of frame 0, ``fit_rms`` of frame 0 and
        ``extras``: ``fps``, ``smoothing``, ``missing_frames (T,)`` bool,
        ``fit_rms_frames (T,)`` (per frame, parametric model only), ``landmarks (T, 478, 3)``.

    Raises:
        NoFaceError: no face in any frame (or in some frame with ``on_missing="raise"``).
        InputError: unreadable video or bad arguments.
    """
    import torch

    from ..params import FaceParams, crop_to_image_matrix
    from .encoder import resolve_head

    if smoothing not in ("savgol", "one_euro", None):
        raise InputError(f"smoothing must be 'savgol', 'one_euro' or None, got {smoothing!r}")
    if on_missing not in ("interpolate", "raise"):
        raise InputError(f"on_missing must be 'interpolate' or 'raise', got {on_missing!r}")
    if int(window) < 1 or int(polyorder) < 0:
        raise InputError("window must be >= 1 and polyorder >= 0")
    head = resolve_head(head)
    opt = options or FitOptions()
    frames, file_fps = read_video(video, max_frames)
    rate = float(fps or file_fps or 30.0)
    T = len(frames)
    lms = _track_faces(frames, face_index, max_num_faces, max_side, flip_average, progress)
    missing_count = sum(lm is None for lm in lms)
    if missing_count and on_missing == "raise":
        first = next(i for i, lm in enumerate(lms) if lm is None)
        raise NoFaceError(f"no face in {missing_count} of {T} frames (first: frame {first})")
    points, missing = _fill_missing(lms)
    if missing_count:
        warnings.warn(f"no face in {missing_count} of {T} frames; their landmarks are interpolated", stacklevel=2)

    first = int(np.argmax(~missing))
    center, size = face_box(points[first])
    crop = crop_to_image_matrix(center, size)
    # 1. identity: median over evenly spaced frames with a face
    good = np.nonzero(~missing)[0]
    pick = good[np.unique(np.linspace(0, len(good) - 1, min(int(identity_frames), len(good))).round().astype(int))]
    shapes = [fit_landmarks(points[i], head, crop, options=opt, compute_offsets=False).shape for i in pick]
    shape = np.median(np.stack(shapes), axis=0)
    # 2. offsets and texture coordinates from frame 0 (the texture photo)
    fit0 = fit_landmarks(points[0], head, crop, options=opt, shape=shape, compute_offsets=offsets)
    off = fit0.offsets if offsets else None
    # 3. every frame with identity (and offsets) fixed
    it = range(T)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="fit", unit="frame")
    expr, pose, cam, rms = [], [], [], []
    for i in it:
        # like encode(): the parametric fit explains the frame, the offsets are the frame-0 residual
        r = fit0 if i == 0 else fit_landmarks(points[i], head, crop, options=opt, shape=shape, compute_offsets=False)
        expr.append(r.expression)
        pose.append(r.pose)
        cam.append(r.cam)
        rms.append(r.rms_model)
    expr, pose, cam = np.stack(expr), np.stack(pose), np.stack(cam)
    # 4. temporal smoothing
    if smoothing == "savgol":
        expr, pose, cam = (savgol_smooth(a, window, polyorder) for a in (expr, pose, cam))
    elif smoothing == "one_euro":
        expr, pose, cam = (one_euro_smooth(a, rate, min_cutoff, beta) for a in (expr, pose, cam))
    from .fit import head_fit_data

    fd = head_fit_data(head, opt)
    if fd.is_au:
        expr = np.clip(expr, 0.0, opt.au_max)
    f32 = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
    h, w = frames[0].shape[:2]
    extras = {
        "encoder": "mediapipe",
        "fps": rate,
        "smoothing": smoothing if smoothing is None else (
            f"savgol(window={window}, polyorder={polyorder})" if smoothing == "savgol"
            else f"one_euro(min_cutoff={min_cutoff}, beta={beta})"),
        "missing_frames": missing,
        "fit_rms_frames": np.asarray(rms, dtype=np.float32),
        "fit_rms_model": float(fit0.rms_model),
        "landmarks": points.astype(np.float32),
        "identity_frames": pick.tolist(),
    }
    return FaceParams(
        shape=f32(shape),
        expression=f32(expr),
        pose=f32(pose),
        cam=f32(cam),
        head_name=head.name,
        offsets=None if off is None else f32(off),
        image_size=(int(h), int(w)),
        crop_to_image=f32(crop),
        vertices_2d=f32(fit0.vertices_2d),
        fit_rms=float(fit0.rms_final),
        extras=extras,
    )
