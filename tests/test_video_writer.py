import os
import sys
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from flame_transit.errors import InputError
from flame_transit.video_writer import MAX_GIF_FPS, to_rgb8, write_video


def ramp_frames(t=12, h=48, w=64):
    """Frames that differ from each other (a moving bar over a grey ramp)."""
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, None, :]
    for i in range(t):
        frames[i, :, (i * 5) % w: (i * 5) % w + 6, 1] = 255
    return frames


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_mp4_frame_count_size_and_content(tmp_path):
    frames = ramp_frames(t=17)
    out = write_video(frames, tmp_path / "clip.mp4", fps=24)
    n, secs = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert n == 17 and secs == pytest.approx(17 / 24, abs=0.05)
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["size"] == (64, 48) and meta["fps"] == pytest.approx(24)
    assert "h264" in meta["codec"] and "yuv420p" in meta["pix_fmt"]
    back = np.stack([np.frombuffer(b, np.uint8).reshape(48, 64, 3) for b in reader])
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 8  # lossy but faithful
    assert names(tmp_path) == ["clip.mp4"]


def test_mp4_keeps_colours(tmp_path):
    """The RGB -> yuv420p conversion on the way to ffmpeg keeps channel order and range: flat
    patches read back (by ffmpeg's own decoder, at x264's lossless setting) within 3 levels."""
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [224, 172, 140], [16, 16, 16], [250, 250, 250],
                        [120, 60, 200], [0, 128, 128]], np.uint8)
    frame = np.repeat(np.repeat(colours[None], 16, axis=0), 16, axis=1)  # 8 patches of 16 x 16
    out = write_video(np.stack([frame] * 3), tmp_path / "c.mp4", fps=10, quality=10)
    reader = imageio_ffmpeg.read_frames(str(out))
    next(reader)
    back = np.frombuffer(next(reader), np.uint8).reshape(frame.shape).astype(int)
    inner = back[4:12].reshape(8, 8, 16, 3)[:, :, 4:12].mean(axis=(0, 2))  # patch centres
    assert np.abs(inner - colours).max() <= 3, inner.round()


def test_mp4_odd_size_is_padded_not_scaled_and_readable_by_imageio(tmp_path):
    frames = np.full((5, 31, 45, 3), 200, np.uint8)
    out = write_video(iter(frames), tmp_path / "odd.mp4", fps=10)  # a generator works too
    back = iio.imread(out, plugin="FFMPEG", index=None)  # imageio reads it back
    assert back.shape == (5, 32, 46, 3)
    n, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert n == 5
    reader = imageio_ffmpeg.read_frames(str(out))
    assert next(reader)["size"] == (46, 32)
    first = np.frombuffer(next(reader), np.uint8).reshape(32, 46, 3)
    assert abs(int(first[:31, :45].mean()) - 200) <= 3 and abs(int(first[31, 45].mean()) - 200) <= 3


def test_gif_frame_count_and_timing(tmp_path):
    frames = ramp_frames(t=9)
    out = write_video(frames, tmp_path / "clip.gif", fps=30, progress=True)
    back = iio.imread(out, index=None)
    assert back.shape == (9, 48, 64, 3)
    with Image.open(out) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
        assert im.info.get("loop") == 0
    assert sum(durations) == pytest.approx(9 / 30 * 1000, abs=10)
    assert set(durations) <= {30, 40}


def test_float_grey_and_rgba_frames(tmp_path):
    grey = np.linspace(0, 1, 20 * 30).reshape(20, 30)
    rgba = np.zeros((20, 30, 4), np.uint8)
    assert to_rgb8(grey).shape == (20, 30, 3) and to_rgb8(rgba).shape == (20, 30, 3)
    out = write_video([grey, 1 - grey], tmp_path / "g.gif", fps=5)
    assert iio.imread(out, index=None).shape[0] == 2


@pytest.mark.parametrize(
    "name, fps, match",
    [
        ("clip.avi", 24, "unknown suffix"),
        ("clip", 24, "unknown suffix"),
        ("clip.mp4", 0, "fps"),
        ("clip.mp4", -5, "fps"),
        ("clip.mp4", float("nan"), "fps"),
        ("clip.gif", 60, "GIF"),
    ],
)
def test_bad_options_leave_nothing(tmp_path, name, fps, match):
    with pytest.raises(InputError, match=match):
        write_video(ramp_frames(3), tmp_path / name, fps=fps)
    assert names(tmp_path) == []


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_bad_frames_leave_nothing(tmp_path, suffix):
    with pytest.raises(InputError, match="no frames"):
        write_video([], tmp_path / f"a{suffix}", fps=10)

    def mixed():
        yield np.zeros((16, 16, 3), np.uint8)
        yield np.zeros((16, 16, 3), np.uint8)
        yield np.zeros((8, 16, 3), np.uint8)

    with pytest.raises(InputError, match="frame 2"):
        write_video(mixed(), tmp_path / f"b{suffix}", fps=10)
    with pytest.raises(InputError, match="uint8"):
        write_video([np.full((8, 8, 3), 300, np.int32)], tmp_path / f"c{suffix}", fps=10)
    with pytest.raises(InputError, match="NaN"):
        write_video([np.full((8, 8, 3), np.nan)], tmp_path / f"d{suffix}", fps=10)
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        write_video([np.zeros((8, 8, 2))], tmp_path / f"e{suffix}", fps=10)
    assert names(tmp_path) == []


def test_unwritable_location_and_existing_file_kept(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        write_video(ramp_frames(2), tmp_path / "afile" / "clip.mp4", fps=10)
    old = write_video(ramp_frames(3), tmp_path / "keep.mp4", fps=10)
    before = old.read_bytes()
    with pytest.raises(InputError):
        write_video([np.zeros((8, 8, 3), np.uint8), np.zeros((4, 4, 3), np.uint8)], old, fps=10)
    assert old.read_bytes() == before and names(tmp_path) == ["afile", "keep.mp4"]


@settings(max_examples=30, deadline=None)
@given(st.one_of(st.floats().filter(lambda x: not (0 < x <= 1000)), st.text(max_size=2), st.none(), st.booleans()))
def test_any_invalid_fps_is_rejected_before_writing(tmp_path_factory, fps):
    folder = tmp_path_factory.mktemp("v")
    with pytest.raises(InputError, match="fps"):
        write_video(ramp_frames(2), folder / "x.mp4", fps=fps)
    assert names(folder) == []


@settings(max_examples=10, deadline=None)
@given(st.floats(1, MAX_GIF_FPS), st.integers(1, 6))
def test_gif_total_time_matches_any_fps(tmp_path_factory, fps, t):
    out = write_video(ramp_frames(t, 8, 40), tmp_path_factory.mktemp("g") / "x.gif", fps=fps)
    with Image.open(out) as im:
        total = 0
        for i in range(im.n_frames):
            im.seek(i)
            total += im.info["duration"]
    assert abs(total - 1000 * t / fps) <= 10


@pytest.mark.skipif(sys.platform != "linux", reason="pipe sizes are a Linux feature")
def test_pipe_to_ffmpeg_is_widened_where_allowed(tmp_path):
    import fcntl

    from flame_transit.video_writer import PIPE_BYTES, _widen_pipe

    r, w = os.pipe()
    with os.fdopen(r, "rb") as rf, os.fdopen(w, "wb") as wf:
        before = fcntl.fcntl(wf.fileno(), fcntl.F_GETPIPE_SZ)
        _widen_pipe(wf)
        after = fcntl.fcntl(wf.fileno(), fcntl.F_GETPIPE_SZ)
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        assert after == (PIPE_BYTES if limit >= PIPE_BYTES else before)
    with open(tmp_path / "plain.bin", "wb") as fh:  # not a pipe: left alone, no error
        _widen_pipe(fh)


def test_mp4_copies_frames_unless_told_they_are_new(tmp_path):
    """Frames wait for ffmpeg on another thread: a generator that refills one buffer still
    writes each frame as it was (the default copies); copy=False writes the same video from
    frames that are new arrays."""
    def refilled():
        buf = np.zeros((32, 48, 3), np.uint8)
        for i in range(8):
            buf[:] = 20 + 25 * i
            yield buf

    def levels(path):
        reader = imageio_ffmpeg.read_frames(str(path))
        next(reader)
        return [int(round(np.frombuffer(b, np.uint8).mean())) for b in reader]

    expected = [20 + 25 * i for i in range(8)]
    shared = write_video(refilled(), tmp_path / "shared.mp4", fps=10, quality=10)
    assert all(abs(a - b) <= 2 for a, b in zip(levels(shared), expected)), levels(shared)
    fresh = write_video((f.copy() for f in refilled()), tmp_path / "fresh.mp4", fps=10, quality=10, copy=False)
    assert levels(fresh) == levels(shared)
