"""Pictures of a clip: a contact sheet of frames and a plot of the parameter trajectory.

* :func:`contact_sheet` -- n evenly spaced (or chosen) frames in a grid, each labelled with its
  frame index, time and an optional label (e.g. the keyframe name), as a PNG;
* :func:`plot_trajectory` -- expression coordinates over time (only those that move), jaw opening
  angle, keyframes marked with vertical lines and their labels, as a PNG (matplotlib, Agg
  canvas, no pyplot state).

Both write atomically and return what they drew.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from .errors import InputError
from .io_utils import PathLike, atomic_path
from .video_writer import to_rgb8

__all__ = ["contact_sheet", "plot_trajectory", "pick_frames"]


def pick_frames(num_frames: int, n: int) -> list:
    """``n`` evenly spaced frame indices from 0 to ``num_frames - 1`` (both ends included).

    Example:
        >>> pick_frames(61, 5)
        [0, 15, 30, 45, 60]
    """
    if num_frames < 1:
        raise InputError("no frames")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    n = min(int(n), num_frames)
    if n == 1:
        return [0]
    return sorted(set(int(round(x)) for x in np.linspace(0, num_frames - 1, n)))


def _png_path(path: PathLike) -> None:
    if Path(os.fspath(path)).suffix.lower() != ".png":
        raise InputError(f"write the picture as .png, got {os.fspath(path)!r}")


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def contact_sheet(
    frames: Sequence[Any],
    path: Optional[PathLike] = None,
    *,
    n: int = 8,
    indices: Optional[Sequence[int]] = None,
    labels: Optional[Union[Mapping[int, str], Sequence[str]]] = None,
    fps: Optional[float] = None,
    columns: Optional[int] = None,
    thumb_width: Optional[int] = 256,
) -> np.ndarray:
    """A grid of frames with captions ``#index  t=1.23 s  label``.

    Args:
        frames: ``(T, H, W, 3)`` array or a sequence of frames (random access).
        path: where to write the PNG (atomically); ``None`` only returns the image.
        n: how many evenly spaced frames (first and last included) when ``indices`` is None.
        indices: exactly which frames to show, e.g. a trajectory's ``anchor_frames``.
        labels: extra caption per frame: a mapping ``{frame index: text}`` (e.g.
            ``dict(zip(traj.anchor_frames, traj.labels))``) or a sequence with one entry per
            frame of the clip.
        fps: adds the time in seconds to the captions.
        columns: grid width (default ``min(count, 4)``).
        thumb_width: scale each frame to this width (keeps aspect); ``None`` keeps the size.

    Returns:
        The sheet, ``(H', W', 3)`` uint8.

    Example:
        >>> sheet = contact_sheet(np.zeros((10, 40, 60, 3), np.uint8), n=4, thumb_width=None)
        >>> sheet.shape[1] == 4 * 60 + 5 * 4
        True
    """
    from PIL import Image, ImageDraw

    try:
        t = len(frames)
    except TypeError as exc:
        raise InputError("contact_sheet needs a sequence of frames (a list or (T, H, W, 3) array)") from exc
    if t == 0:
        raise InputError("no frames for the contact sheet")
    if path is not None:
        _png_path(path)
    if indices is None:
        chosen = pick_frames(t, n)
    else:
        chosen = [int(i) for i in indices]
        if not chosen or any(not 0 <= i < t for i in chosen):
            raise InputError(f"indices must be frame numbers in 0..{t - 1}, got {list(indices)}")
    if labels is None:
        label_of = {}
    elif isinstance(labels, Mapping):
        label_of = {int(k): str(v) for k, v in labels.items()}
    else:
        if len(labels) != t:
            raise InputError(f"labels must be a mapping {{frame: text}} or one text per frame ({t}), got {len(labels)}")
        label_of = {i: str(x) for i, x in enumerate(labels)}
    if fps is not None and (not np.isfinite(float(fps)) or float(fps) <= 0):
        raise InputError(f"fps must be > 0, got {fps!r}")
    if thumb_width is not None and (isinstance(thumb_width, bool) or int(thumb_width) < 8):
        raise InputError(f"thumb_width must be at least 8 pixels or None, got {thumb_width!r}")

    thumbs = []
    for i in chosen:
        im = Image.fromarray(to_rgb8(frames[i]), "RGB")
        if thumb_width is not None and im.width != int(thumb_width):
            h = max(1, round(im.height * int(thumb_width) / im.width))
            im = im.resize((int(thumb_width), h), Image.Resampling.LANCZOS)
        thumbs.append(im)
    tw, th = thumbs[0].size
    if any(im.size != (tw, th) for im in thumbs):
        raise InputError("all frames of a contact sheet must have the same size")
    cols = min(len(thumbs), columns or 4)
    if cols < 1:
        raise InputError(f"columns must be >= 1, got {columns!r}")
    rows = -(-len(thumbs) // cols)
    pad = 4
    font_size = max(10, min(18, tw // 14))
    font = _font(font_size)
    caption_h = font_size + 3 * pad
    sheet = Image.new("RGB", (cols * tw + (cols + 1) * pad, rows * (th + caption_h) + (rows + 1) * pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, (i, im) in enumerate(zip(chosen, thumbs)):
        r, c = divmod(k, cols)
        x = pad + c * (tw + pad)
        y = pad + r * (th + caption_h + pad)
        sheet.paste(im, (x, y))
        parts = [f"#{i}"]
        if fps is not None:
            parts.append(f"t={i / float(fps):.2f}s")
        if i in label_of:
            parts.append(label_of[i])
        draw.text((x + 2, y + th + pad // 2), "  ".join(parts), fill=(0, 0, 0), font=font)
    out = np.asarray(sheet)
    if path is not None:
        with atomic_path(path) as tmp:
            sheet.save(tmp, format="PNG")
    return out


def plot_trajectory(
    traj: Any,
    expression_names: Optional[Sequence[str]] = None,
    path: Optional[PathLike] = None,
    *,
    fps: Optional[float] = None,
    anchor_frames: Optional[Sequence[int]] = None,
    labels: Optional[Sequence[str]] = None,
    threshold: float = 1e-3,
    max_curves: int = 12,
    title: Optional[str] = None,
    dpi: int = 100,
) -> Any:
    """Plot a clip's expression coordinates and jaw angle over time.

    Args:
        traj: a :class:`~flame_transit.trajectory.Trajectory` (keyframes are marked) or a
            :class:`~flame_transit.params.FaceParams` clip.
        expression_names: a name per expression coordinate (e.g. ``head.expression_names``);
            default ``exp000``...
        path: PNG to write (atomically); ``None`` only returns the figure.
        fps: frames per second when ``traj`` is a bare FaceParams (x axis in seconds); default
            the trajectory's, else frames.
        anchor_frames: keyframe frames to mark (default the trajectory's).
        labels: keyframe names, one per anchor frame (default the trajectory's).
        threshold: a coordinate is drawn only if its range over the clip exceeds this.
        max_curves: draw at most this many coordinates (those that move most); the legend says
            how many more moved.
        title: figure title.
        dpi: resolution of the PNG.

    Returns:
        The matplotlib :class:`~matplotlib.figure.Figure`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .params import FaceParams
    from .trajectory import Trajectory

    if path is not None:
        _png_path(path)
    anchors: Sequence[int] = ()
    anchor_labels: Sequence[str] = ()
    if isinstance(traj, Trajectory):
        params, fps = traj.params, traj.fps if fps is None else fps
        anchors, anchor_labels = traj.anchor_frames, traj.labels
    elif isinstance(traj, FaceParams):
        params = traj
    else:
        raise InputError(f"plot_trajectory needs a Trajectory or FaceParams, got {type(traj).__name__}")
    if anchor_frames is not None:
        anchors = [int(a) for a in anchor_frames]
        anchor_labels = list(labels) if labels is not None else [""] * len(anchors)
    elif labels is not None:
        anchor_labels = list(labels)
    if len(anchor_labels) != len(anchors):
        raise InputError(f"{len(anchors)} anchor frames but {len(anchor_labels)} labels")
    expr = params.expression.detach().cpu().double().numpy().reshape(-1, params.expression.shape[-1])
    pose = params.pose.detach().cpu().double().numpy().reshape(-1, 15)
    t, e = expr.shape
    names = list(expression_names) if expression_names is not None else [f"exp{i:03d}" for i in range(e)]
    if len(names) != e:
        raise InputError(f"{len(names)} expression names for {e} expression coordinates")
    if fps is not None and (not np.isfinite(float(fps)) or float(fps) <= 0):
        raise InputError(f"fps must be > 0, got {fps!r}")
    if any(not 0 <= a < t for a in anchors):
        raise InputError(f"anchor frames {list(anchors)} fall outside the clip's {t} frames")
    x = np.arange(t) / float(fps) if fps else np.arange(t, dtype=np.float64)
    xlabel = "time (s)" if fps else "frame"

    ranges = expr.max(0) - expr.min(0) if t else np.zeros(e)
    moving = [int(i) for i in np.argsort(-ranges, kind="stable") if ranges[i] > threshold]
    shown = sorted(moving[: max(0, int(max_curves))])
    jaw_deg = np.degrees(np.linalg.norm(pose[:, 6:9], axis=1))

    fig = Figure(figsize=(10, 6), dpi=dpi)
    FigureCanvasAgg(fig)
    ax_e, ax_j = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    for i in shown:
        ax_e.plot(x, expr[:, i], label=names[i], linewidth=1.6)
    if not shown:
        ax_e.text(0.5, 0.5, "no expression coordinate moves", ha="center", va="center", transform=ax_e.transAxes)
    ax_e.set_ylabel("expression coordinate")
    if shown:
        extra = len(moving) - len(shown)
        handles, labels_ = ax_e.get_legend_handles_labels()
        if extra > 0:
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], linestyle="none"))
            labels_.append(f"(+{extra} more moving)")
        ax_e.legend(handles, labels_, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    ax_j.plot(x, jaw_deg, color="black", linewidth=1.6)
    ax_j.set_ylabel("jaw angle (deg)")
    ax_j.set_xlabel(xlabel)
    for ax in (ax_e, ax_j):
        ax.grid(alpha=0.3)
        for a in anchors:
            ax.axvline(x[a], color="grey", linestyle="--", linewidth=1)
    for a, label in zip(anchors, anchor_labels):
        ax_e.annotate(label, (x[a], 1.0), xycoords=("data", "axes fraction"), xytext=(2, 2),
                      textcoords="offset points", fontsize=9, rotation=0, va="bottom")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    return fig
