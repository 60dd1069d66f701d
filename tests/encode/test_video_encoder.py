"""encode_video: identity once, per-frame expression/pose/camera, smoothing, missing frames."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from flame_transit.encode import encode_video
from flame_transit.encode.video_encoder import one_euro_smooth, read_video, savgol_smooth
from flame_transit.errors import InputError, NoFaceError


@pytest.fixture(scope="module")
def clip(astronaut):
    """8 frames: the astronaut sliding right and down by 3 / 2 pixels per frame."""
    return np.stack([np.roll(astronaut, (2 * k, 3 * k), axis=(0, 1)) for k in range(8)])


@pytest.fixture(scope="module")
def clip_params(clip, open_head):
    return encode_video(clip, open_head)


def test_shapes_and_fields(clip_params, open_head):
    p = clip_params
    T = 8
    assert p.shape.shape == (open_head.num_shape,)
    assert p.expression.shape == (T, open_head.num_expression) and p.pose.shape == (T, 15) and p.cam.shape == (T, 3)
    assert p.offsets.shape == (open_head.num_vertices, 3) and p.vertices_2d.shape == (open_head.num_vertices, 2)
    assert p.num_frames == T and p.extras["landmarks"].shape == (T, 478, 3)
    assert p.extras["smoothing"].startswith("savgol") and not p.extras["missing_frames"].any()
    assert p.fit_rms < 0.015 and float(np.max(p.extras["fit_rms_frames"])) < 0.015


def test_translation_shows_in_the_camera_not_the_expression(clip_params):
    p = clip_params
    # the face moves +3 px/frame right and +2 px/frame down; crop half-size converts to NDC
    half = float(p.crop_to_image[0, 0])
    s = p.cam[:, 0]
    dx = (s * p.cam[:, 1]).numpy() * half
    dy = -(s * p.cam[:, 2]).numpy() * half
    np.testing.assert_allclose(np.diff(dx), 3.0, atol=0.6)
    np.testing.assert_allclose(np.diff(dy), 2.0, atol=0.6)
    # the same face in every frame: expression nearly constant
    assert float(p.expression.std(dim=0).max()) < 0.15  # MediaPipe jitter under pixel shifts


def test_still_clip_equals_single_image_encoding(astronaut, astro_params, open_head):
    p = encode_video([astronaut] * 3, open_head)
    np.testing.assert_allclose(p.shape.numpy(), astro_params.shape.numpy(), atol=1e-5)
    for t in range(3):
        np.testing.assert_allclose(p.expression[t].numpy(), astro_params.expression.numpy(), atol=0.02)
        np.testing.assert_allclose(p.pose[t].numpy(), astro_params.pose.numpy(), atol=0.01)
    np.testing.assert_allclose(p.vertices_2d.numpy(), astro_params.vertices_2d.numpy(), atol=1e-3)


def test_identity_is_the_median_of_frame_fits(clip, clip_params, open_head):
    from flame_transit.encode import encode

    singles = np.stack([encode(clip[i], open_head).shape.numpy() for i in clip_params.extras["identity_frames"]])
    lo, hi = singles.min(axis=0), singles.max(axis=0)
    s = clip_params.shape.numpy()
    assert np.all(s >= lo - 0.05) and np.all(s <= hi + 0.05)


def test_missing_frame_interpolated_with_warning(clip, open_head):
    frames = list(clip[:5])
    frames[2] = np.zeros_like(frames[2])
    with pytest.warns(UserWarning, match="no face in 1 of 5"):
        p = encode_video(frames, open_head, smoothing=None)
    assert p.extras["missing_frames"].tolist() == [False, False, True, False, False]
    lm = p.extras["landmarks"]
    np.testing.assert_allclose(lm[2], 0.5 * (lm[1] + lm[3]), atol=1e-3)
    with pytest.raises(NoFaceError, match="frame 2"):
        encode_video(frames, open_head, on_missing="raise")
    with pytest.raises(NoFaceError, match="any of the 2"):
        encode_video([np.zeros((64, 64, 3), np.uint8)] * 2, open_head)


def test_smoothing_options(clip, open_head):
    raw = encode_video(clip[:6], open_head, smoothing=None)
    euro = encode_video(clip[:6], open_head, smoothing="one_euro", fps=25.0)
    assert euro.extras["smoothing"].startswith("one_euro") and euro.extras["fps"] == 25.0
    assert raw.extras["smoothing"] is None
    assert float(euro.expression.min()) >= 0.0
    assert not torch.allclose(euro.cam, raw.cam)  # the filter did something
    assert torch.allclose(euro.cam[0], raw.cam[0])  # ... causally: the first frame is kept
    with pytest.raises(InputError, match="smoothing"):
        encode_video(clip[:2], open_head, smoothing="kalman")
    with pytest.raises(InputError, match="on_missing"):
        encode_video(clip[:2], open_head, on_missing="skip")


def test_savgol_reduces_noise_and_keeps_trends():
    t = np.linspace(0, 1, 60)[:, None]
    noisy = np.sin(3 * t) + np.random.default_rng(0).normal(scale=0.05, size=t.shape)
    sm = savgol_smooth(noisy, 15, 2)
    assert np.abs(sm - np.sin(3 * t)).mean() < 0.6 * np.abs(noisy - np.sin(3 * t)).mean()
    assert savgol_smooth(np.ones((2, 3)), 7, 2).shape == (2, 3)  # too short: unchanged


def test_one_euro_lags_less_when_fast():
    step = np.r_[np.zeros(10), np.ones(20)][:, None]
    slow = one_euro_smooth(step, fps=30, beta=0.0)
    fast = one_euro_smooth(step, fps=30, beta=5.0)
    assert fast[12, 0] > slow[12, 0]
    with pytest.raises(InputError, match="fps"):
        one_euro_smooth(step, fps=0)


def test_video_file_and_tensor_inputs(clip, tmp_path, open_head):
    import imageio.v3 as iio

    path = tmp_path / "clip.mp4"
    iio.imwrite(path, clip[:4], fps=10, codec="libx264", macro_block_size=1)
    frames, fps = read_video(path)
    assert len(frames) == 4 and fps == pytest.approx(10.0)
    p = encode_video(path, open_head, max_frames=3)
    assert p.expression.shape[0] == 3 and p.extras["fps"] == pytest.approx(10.0)
    t = torch.from_numpy(clip[:3]).permute(0, 3, 1, 2).float() / 255.0
    assert encode_video(t, open_head).pose.shape == (3, 15)


def test_bad_video_inputs(tmp_path, open_head):
    with pytest.raises(InputError, match="not found"):
        encode_video(tmp_path / "nope.mp4", open_head)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"no video here")
    with pytest.raises(InputError, match="bad.mp4"):
        encode_video(bad, open_head)
    with pytest.raises(InputError, match="no frames"):
        encode_video([], open_head)
    with pytest.raises(InputError, match="unsupported"):
        encode_video(42, open_head)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .png"):
        encode_video(tmp_path / "empty", open_head)
