"""Input handling: every accepted image form becomes uint8 RGB (H, W, 3); bad input raises
InputError naming the problem (and the file)."""

from __future__ import annotations

import io

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from flame_transit.encode import load_image
from flame_transit.errors import InputError


def _rgb(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_uint8_rgb_passes_through_unchanged():
    a = _rgb()
    out = load_image(a)
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, a)


def test_non_contiguous_view_is_copied_contiguous():
    a = _rgb(40, 40)[:, ::-1]
    out = load_image(a)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 1)])
def test_grayscale_becomes_three_equal_channels(shape):
    g = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    out = load_image(g)
    assert out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out[..., 0], g.reshape(20, 30))
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_rgba_composited_over_white():
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :15, 3] = 255  # opaque red on the left, transparent on the right
    out = load_image(rgba)
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[0, 29].tolist() == [255, 255, 255]


def test_float_in_unit_range_scaled_to_uint8():
    f = np.linspace(0, 1, 20 * 30 * 3).reshape(20, 30, 3)
    out = load_image(f)
    assert out.min() == 0 and out.max() == 255
    np.testing.assert_allclose(out, np.rint(f * 255), atol=0)


def test_uint16_scaled_and_bool_expanded():
    assert load_image(np.full((20, 20), 65535, np.uint16)).max() == 255
    assert load_image(np.full((20, 20), 257 * 100, np.uint16))[0, 0, 0] == 100
    b = np.zeros((20, 20), bool)
    b[0, 0] = True
    out = load_image(b)
    assert out[0, 0, 0] == 255 and out[1, 1, 0] == 0


def test_wide_integer_type_with_8bit_values():
    out = load_image(_rgb().astype(np.int64))
    assert out.dtype == np.uint8


@pytest.mark.parametrize("layout", ["chw", "hwc", "bchw"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8, torch.float16])
def test_torch_tensors(layout, dtype):
    a = _rgb(24, 32)
    t = torch.from_numpy(a)
    if dtype != torch.uint8:
        t = (t.float() / 255).to(dtype)
    if layout in ("chw", "bchw"):
        t = t.permute(2, 0, 1)
    if layout == "bchw":
        t = t[None]
    out = load_image(t)
    assert out.shape == (24, 32, 3)
    tol = 1 if dtype == torch.float16 else 0
    assert np.abs(out.astype(int) - a).max() <= tol


def test_pil_image_and_mode_conversion():
    a = _rgb()
    assert np.array_equal(load_image(Image.fromarray(a)), a)
    out = load_image(Image.fromarray(a).convert("L"))
    assert out.shape == (20, 30, 3)
    p = Image.fromarray(a).convert("P")
    assert load_image(p).shape == (20, 30, 3)
    cmyk = Image.fromarray(a).convert("CMYK")
    assert load_image(cmyk).shape == (20, 30, 3)


def test_path_png_and_exif_orientation(tmp_path):
    a = _rgb(20, 30)
    Image.fromarray(a).save(tmp_path / "x.png")
    np.testing.assert_array_equal(load_image(tmp_path / "x.png"), a)
    np.testing.assert_array_equal(load_image(str(tmp_path / "x.png")), a)
    # a JPEG stored sideways with EXIF orientation 6 ("rotate 90 CW to display"); smooth
    # content with a bright top-left block so JPEG noise stays small
    a = np.zeros((20, 30, 3), np.uint8)
    a[..., 2] = np.linspace(0, 200, 30).astype(np.uint8)[None]
    a[:8, :8] = 255
    img = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    out = load_image(tmp_path / "rot.jpg")
    assert out.shape == (30, 20, 3)  # displayed upright: width and height swap
    expected = np.rot90(a, k=-1)  # 90 degrees clockwise
    assert np.abs(out.astype(int) - expected).mean() < 6  # JPEG noise only
    assert out[:6, -6:].mean() > 200  # the bright corner is now top-right


def test_16bit_png_file(tmp_path):
    a = (np.random.default_rng(2).integers(0, 65536, (20, 20))).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    out = load_image(tmp_path / "g16.png")
    assert out.shape == (20, 20, 3)
    np.testing.assert_allclose(out[..., 0], np.rint(a / 257.0), atol=1)


# -- bad inputs --------------------------------------------------------------------------------
def test_missing_file_names_it(tmp_path):
    with pytest.raises(InputError, match="not found.*nope.png"):
        load_image(tmp_path / "nope.png")


def test_directory_rejected(tmp_path):
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path)


def test_project_files_given_as_the_photo_are_named(tmp_path):
    # imageio read a clip's .npz as a 2x585 "image", so the error was about its size
    params = tmp_path / "clip.npz"
    np.savez(params, expression=np.zeros((585, 22)), pose=np.zeros((585, 15)))
    with pytest.raises(InputError, match=r"clip.npz is a \.npz file, not a photo"):
        load_image(params)


def test_truncated_photo_says_so(tmp_path):
    from PIL import Image

    whole = tmp_path / "whole.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(whole, quality=95)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InputError, match="cut.jpg is truncated .*copy it again"):  # was "use a PNG or JPEG"
        load_image(cut)


def test_corrupt_file_names_it(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(InputError, match="broken.png"):
        load_image(bad)
    txt = tmp_path / "notes.jpg"
    txt.write_text("hello")
    with pytest.raises(InputError, match="notes.jpg"):
        load_image(txt)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((20, 30, 2), np.uint8), "shape"),
        (np.zeros((2, 20, 30, 3), np.uint8), "shape"),
        (np.zeros((20,), np.uint8), "shape"),
        (np.zeros((8, 8, 3), np.uint8), "at least"),
        (np.full((20, 20, 3), 2.0), r"\[0, 1\]"),
        (np.full((20, 20, 3), -0.5), r"\[0, 1\]"),
        (np.full((20, 20, 3), np.nan), "NaN"),
        (np.full((20, 20, 3), 300, np.int32), "255"),
        (np.full((20, 20, 3), -1, np.int16), "negative"),
        (np.zeros((20, 20, 3), complex), "dtype"),
        (np.array([["a"] * 20] * 20), "dtype"),
        (b"\x89PNG", "bytes"),
        (12345, "unsupported"),
        (None, "unsupported"),
        ([[0, 1], [2, 3]], "unsupported"),
    ],
)
def test_bad_inputs_raise_input_error(bad, match):
    with pytest.raises(InputError, match=match):
        load_image(bad)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arr=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, np.bool_]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=40),
        elements=None,
    )
)
def test_fuzz_arrays_either_normalise_or_raise_input_error(arr):
    try:
        out = load_image(arr)
    except InputError as exc:
        assert str(exc)  # a message
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert min(out.shape[:2]) >= 16


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(16, 48), w=st.integers(16, 48),
    channels=st.sampled_from([None, 1, 3, 4]), chw=st.booleans(),
    kind=st.sampled_from(["u8", "f32", "torch"]),
)
def test_fuzz_valid_layouts_keep_size(h, w, channels, chw, kind):
    rng = np.random.default_rng(h * 100 + w)
    shape = (h, w) if channels is None else (h, w, channels)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    if chw and channels is not None:
        a = np.moveaxis(a, -1, 0)
    x = a.astype(np.float32) / 255.0 if kind == "f32" else a
    if kind == "torch":
        x = torch.from_numpy(np.ascontiguousarray(a))
    if chw and channels is not None and h in (1, 3, 4):
        return  # ambiguous layouts are not part of this property
    out = load_image(x)
    assert out.shape == (h, w, 3)


def test_image_from_bytes_buffer_via_pil():
    buf = io.BytesIO()
    Image.fromarray(_rgb()).save(buf, format="PNG")
    buf.seek(0)
    assert load_image(Image.open(buf)).shape == (20, 30, 3)


def test_uint16_holding_8bit_values_gets_a_hint():
    arr = np.full((64, 64, 3), 200, np.uint16)
    with pytest.raises(InputError, match="uint16 but its values only reach 200.*astype"):
        load_image(arr)
    assert load_image(arr * 257).max() == 200  # a real 16-bit image still reads


def test_huge_photos_in_our_own_words(tmp_path, monkeypatch):
    from PIL import Image

    Image.fromarray(np.full((180, 180, 3), 90, np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.full((300, 300, 3), 90, np.uint8)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20000)  # warning above 20000 px, error above 40000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_image(tmp_path / "big.png").shape == (180, 180, 3)
    messages = [str(w.message) for w in caught]
    assert any("megapixels" in m and "downscaled" in m for m in messages), messages
    assert not any(issubclass(w.category, Image.DecompressionBombWarning) for w in caught)
    with pytest.raises(InputError, match="huge.png is too large.*0.1 megapixels.*downscale it first"):
        load_image(tmp_path / "huge.png")
