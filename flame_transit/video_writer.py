"""Writing frames to ``.mp4`` (H.264) and ``.gif``.

* ``.mp4``: H.264 (libx264) in yuv420p, the format every player and browser accepts, via the
  ffmpeg binary that ships inside the ``imageio-ffmpeg`` wheel. yuv420p needs even frame sizes:
  an odd width or height is padded by one replicated edge column/row (never rescaled).
  ``+faststart`` puts the index first so the file streams. Frames reach ffmpeg already in
  yuv420p (OpenCV's BT.601 video-range conversion, the one ffmpeg applies to RGB input, on the
  pipe's thread): half the bytes, and the conversion was a third of ffmpeg's CPU time.
  x264 runs with ``-preset veryfast``
  at a CRF two steps lower than imageio-ffmpeg's quality scale gives (quality 6 -> CRF 18): about
  the size and fidelity of CRF 20 at x264's default preset, in about half the encode time.
* ``.gif``: Pillow, one adaptive 256-colour palette per frame, looping. GIF delays are whole
  centiseconds: per-frame delays are rounded so that the *total* time matches ``T / fps``
  (alternating e.g. 30/40 ms at 30 fps), and more than 50 fps is refused (players clamp short
  delays). Pillow merges identical consecutive frames into one longer frame (timing is kept),
  so a GIF with held frames reads back with fewer frames.

Frames are ``(H, W, 3)`` uint8 RGB; ``(H, W)`` grey, ``(H, W, 4)`` RGBA (alpha dropped) and float
arrays in ``[0, 1]`` are converted. Files are written atomically: to a temporary file in the
target folder, renamed when complete; on any error nothing is left behind.

Example:
    >>> import tempfile, numpy as np
    >>> frames = np.zeros((5, 32, 48, 3), np.uint8)
    >>> out = write_video(frames, tempfile.mkdtemp() + "/clip.gif", fps=10)
    >>> out.suffix
    '.gif'
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Tuple

import numpy as np

from .checks import MAX_GIF_FPS, check_fps
from .errors import InputError
from .io_utils import PathLike, atomic_path, signals_deferred, user_path
from .outputs import suffixes

__all__ = ["write_video", "to_rgb8", "VIDEO_SUFFIXES", "MAX_GIF_FPS"]

#: what :func:`write_video` writes (the rendered formats of :mod:`flame_transit.outputs` but the sheet)
VIDEO_SUFFIXES = tuple(s for s in suffixes("render") if s != ".png")


def to_rgb8(frame: Any) -> np.ndarray:
    """One frame as ``(H, W, 3)`` uint8 RGB.

    Accepts uint8 or float (``[0, 1]``, clipped) arrays or torch tensors shaped ``(H, W)``,
    ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (alpha dropped).

    Example:
        >>> to_rgb8(np.full((2, 2), 0.5)).shape, int(to_rgb8(np.full((2, 2), 0.5))[0, 0, 0])
        ((2, 2, 3), 128)
    """
    if hasattr(frame, "detach"):  # torch tensor
        frame = frame.detach().cpu().numpy()
    a = np.asarray(frame)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"a frame must be (H, W, 3) RGB (or (H, W), (H, W, 4)), got shape {a.shape}")
    if a.shape[2] == 4:
        a = a[..., :3]
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise InputError("a frame contains NaN or infinite values")
        return np.ascontiguousarray(np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8))
    if a.dtype.kind in "iu" or a.dtype == bool:
        if a.dtype == bool or a.min() < 0 or a.max() > 255:
            raise InputError(f"integer frames must be uint8 values 0..255, got dtype {a.dtype} range {a.min()}..{a.max()}")
        return np.ascontiguousarray(a.astype(np.uint8))
    raise InputError(f"frames must be uint8 or float arrays, got dtype {a.dtype}")


def _gif_delays_ms(n: int, fps: float) -> list:
    """Per-frame delays in ms, whole centiseconds, summing to ``round(100 n / fps)`` cs."""
    edges = np.rint(np.arange(n + 1) * (100.0 / fps)).astype(np.int64)
    cs = np.maximum(np.diff(edges), 1)
    return [int(c) * 10 for c in cs]


def _frames_with_size(frames: Iterable[Any]) -> Tuple[np.ndarray, Iterator[np.ndarray]]:
    it = iter(frames)
    try:
        first = to_rgb8(next(it))
    except StopIteration:
        raise InputError("no frames to write") from None

    def rest() -> Iterator[np.ndarray]:
        yield first
        for i, f in enumerate(it, start=1):
            rgb = to_rgb8(f)
            if rgb.shape != first.shape:
                raise InputError(f"frame {i} has size {rgb.shape[:2]}, frame 0 has {first.shape[:2]}; all frames must match")
            yield rgb

    return first, rest()


def _pad_even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.ascontiguousarray(np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))


def write_video(
    frames: Iterable[Any],
    path: PathLike,
    fps: float = 30.0,
    *,
    quality: float = 6.0,
    progress: bool = False,
    total: Optional[int] = None,
    copy: bool = True,
) -> Path:
    """Write frames to ``path`` (``.mp4`` or ``.gif``), atomically.

    Args:
        frames: an iterable of frames (see :func:`to_rgb8`), e.g. a ``(T, H, W, 3)`` array or a
            generator (frames are streamed to ffmpeg, not collected, for ``.mp4``).
        path: target file; the suffix picks the format.
        fps: frames per second, in ``[MIN_FPS, MAX_FPS]`` of :mod:`flame_transit.checks` (``.gif``: at most 50).
        quality: ``.mp4`` quality 0..10 (imageio-ffmpeg's scale, see :func:`_crf`; 6 -> x264 CRF 18
            at preset veryfast).
        progress: show a tqdm progress bar.
        total: number of frames for the progress bar when ``frames`` has no ``len``.
        copy: ``.mp4``: copy each frame before it waits for ffmpeg (frames are encoded on
            another thread). ``False`` when the iterable yields a new array for each frame and
            never changes it afterwards: one copy a frame less.

    Returns:
        The absolute path written.

    Raises:
        InputError: unknown suffix, bad fps, no frames, frames of different sizes or types, or
            an unwritable location; no partial file is left.
    """
    from tqdm.auto import tqdm

    text = os.fspath(path)
    suffix = Path(text).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise InputError(f"cannot write video {text!r}: unknown suffix {suffix!r}; use one of {', '.join(VIDEO_SUFFIXES)}")
    fps = check_fps(fps)
    if suffix == ".gif" and fps > MAX_GIF_FPS:
        raise InputError(f"GIF cannot play faster than {MAX_GIF_FPS:g} fps (got {fps:g}); lower fps or write .mp4")
    if isinstance(quality, bool) or not isinstance(quality, (numbers.Real, np.floating, np.integer)) or not 0 <= float(quality) <= 10:
        raise InputError(f"quality must be a number in 0..10, got {quality!r}")
    if total is None and hasattr(frames, "__len__"):
        total = len(frames)  # type: ignore[arg-type]
    first, stream = _frames_with_size(frames)
    stream = tqdm(stream, total=total, desc=Path(text).name, unit="frame", disable=not progress)

    with atomic_path(path) as tmp:
        if suffix == ".mp4":
            _write_mp4(stream, tmp, first.shape, fps, float(quality), copy=bool(copy))
        else:
            _write_gif(stream, tmp, fps)
    return user_path(text).absolute()


#: x264 preset: ``veryfast`` encodes a clip about twice as fast as x264's default (``medium``);
#: :func:`_crf` lowers the CRF by :data:`_CRF_OFFSET` to keep about the same size and fidelity
_X264_PRESET = "veryfast"
_CRF_OFFSET = 2


def _crf(quality: float) -> int:
    """x264 CRF for ``quality`` 0..10: imageio-ffmpeg's scale (``int(51 (1 - q/10))``, 6 -> 20)
    less :data:`_CRF_OFFSET` for the faster preset.

    Example:
        >>> _crf(6.0), _crf(10.0), _crf(0.0)
        (18, 0, 49)
    """
    return max(0, int((1.0 - quality / 10.0) * 51) - _CRF_OFFSET)


def _write_mp4(stream: Iterable[np.ndarray], tmp: Path, shape: Tuple[int, ...], fps: float, quality: float,
               copy: bool = True) -> None:
    """Pipe frames to the ffmpeg binary of ``imageio-ffmpeg``.

    ffmpeg is run directly (not through ``imageio_ffmpeg.write_frames``, whose close polls for the
    process's exit in 10 ms sleeps) and waited on; on an error in ``stream`` it is killed.
    """
    import subprocess
    import tempfile
    from fractions import Fraction

    import imageio_ffmpeg

    h, w = shape[0] + shape[0] % 2, shape[1] + shape[1] % 2
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error",
        "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{w}x{h}", "-pix_fmt", "yuv420p",
        "-r", str(Fraction(fps).limit_denominator()), "-i", "-", "-an",
        "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-preset", _X264_PRESET, "-crf", str(_crf(quality)),
        "-movflags", "+faststart", str(tmp),
    ]
    with tempfile.TemporaryFile() as err:
        proc = writer = None
        broken = False
        try:
            # a signal while ffmpeg starts would leave it running unowned, writing the temporary
            # file after the clean-up: held until `proc` exists, then raised here
            with signals_deferred():
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                    start_new_session=os.name == "posix",  # Ctrl-C reaches Python, which kills ffmpeg
                )
            writer = _PipeWriter(proc.stdin, copy=copy)
            for frame in stream:
                if not writer.put(_pad_even(frame)):
                    break  # ffmpeg quit early; its message is in `err`
            broken = not writer.finish()
            try:
                proc.stdin.close()  # end of input: ffmpeg flushes the encoder and exits
            except OSError:
                broken = True
            proc.wait()
        except BaseException:  # an error in the frames (or Ctrl-C): stop ffmpeg, no file
            if proc is None:
                raise
            proc.kill()
            proc.wait()
            if writer is not None:
                writer.finish()
            try:
                proc.stdin.close()
            except OSError:
                pass
            raise
        if proc.returncode != 0 or broken:
            err.seek(0)
            msg = err.read().decode("utf-8", "replace").strip()[-2000:]
            raise InputError(f"ffmpeg could not write {tmp.name} (exit status {proc.returncode}): {msg or 'no message'}")


class _PipeWriter:
    """Converts frames to yuv420p and writes them to ffmpeg's stdin from a thread: a frame
    passes the pipe only as fast as ffmpeg reads it, and the thread converts and waits without
    the GIL while the caller renders the next frame. At most :attr:`DEPTH` frames wait."""

    DEPTH = 4

    def __init__(self, pipe: Any, copy: bool = True) -> None:
        import queue
        import threading

        self._pipe = pipe
        self._copy = copy
        _widen_pipe(pipe)
        self._queue: "queue.Queue[Optional[np.ndarray]]" = queue.Queue(self.DEPTH)
        self._failed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flame_transit-ffmpeg-pipe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import cv2

        while True:
            frame = self._queue.get()
            if frame is None:
                return
            if not self._failed.is_set():  # after a failure: drain, so put never blocks
                try:
                    self._pipe.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420))
                except BaseException:  # ffmpeg quit, the pipe was closed, or anything else:
                    self._failed.set()  # the caller sees a failed put / finish, not a hang

    def put(self, frame: np.ndarray) -> bool:
        """Queue ``frame`` (``(H, W, 3)`` uint8 RGB, H and W even), copied unless the writer
        was made with ``copy=False`` (then the caller must not change it); False once a write
        has failed."""
        if self._failed.is_set():
            return False
        self._queue.put(np.array(frame, dtype=np.uint8, order="C") if self._copy else np.ascontiguousarray(frame, dtype=np.uint8))
        return True

    def finish(self) -> bool:
        """Wait for every queued frame to be written; False when a write failed."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        return not self._failed.is_set()


#: bytes a pipe to ffmpeg may buffer (Linux's default unprivileged maximum): a 512² frame
#: passes in one write instead of seven 64 KiB ones, each a wake-up of both processes
PIPE_BYTES = 1 << 20


def _widen_pipe(pipe: Any) -> None:
    """Grow ``pipe``'s kernel buffer to :data:`PIPE_BYTES` where the OS allows (Linux
    ``F_SETPIPE_SZ``); elsewhere, or when refused, it keeps its size."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError, ValueError):  # not Linux, or refused
        pass


def _write_gif(stream: Iterable[np.ndarray], tmp: Path, fps: float) -> None:
    from PIL import Image

    images = [Image.fromarray(frame, "RGB").quantize(colors=256) for frame in stream]
    first, rest = images[0], images[1:]
    first.save(
        tmp,
        format="GIF",
        save_all=True,
        append_images=rest,
        duration=_gif_delays_ms(len(images), fps),
        loop=0,
        optimize=False,
        disposal=1,
    )

