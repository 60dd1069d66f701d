"""flame_transit.render.photo: the photo look's masks, dilation and inpainting."""

import numpy as np
import pytest
from scipy import ndimage

from flame_transit.render import photo as P


@pytest.mark.parametrize("seed", range(6))
def test_dilate_is_a_disk_dilation(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((90, 110), bool)
    for _ in range(int(rng.integers(1, 5))):
        y, x = rng.integers(0, 90), rng.integers(0, 110)
        mask[y:y + rng.integers(1, 15), x:x + rng.integers(1, 15)] = True
    for radius in (1, 3, int(rng.integers(4, 40))):
        yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
        disk = ndimage.binary_dilation(mask, structure=xx ** 2 + yy ** 2 <= radius ** 2)
        np.testing.assert_array_equal(P._dilate(mask, radius), disk)


def _lips(size: int):
    """A skin-toned gradient with a dark lens-shaped hole (a mouth) and its mask."""
    yy, xx = np.mgrid[:size, :size] / size
    img = np.stack([180 + 40 * xx, 130 + 30 * yy, 110 + 20 * xx * yy], axis=-1).astype(np.uint8)
    hole = ((xx - 0.5) / 0.3) ** 2 + ((yy - 0.5) / 0.08) ** 2 < 1.0
    img[hole] = (40, 10, 10)
    return img, hole


def test_inpaint_with_a_small_radius_is_opencv_telea_on_the_masks_box():
    cv2 = pytest.importorskip("cv2")
    img, hole = _lips(96)
    radius = 5.0
    assert radius <= P.INPAINT_MAX_RADIUS
    np.testing.assert_array_equal(P.inpaint(img, hole, radius),
                                  cv2.inpaint(img, hole.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA))


def test_inpaint_with_a_large_radius_fills_a_shrunk_copy_close_to_the_full_fill():
    cv2 = pytest.importorskip("cv2")
    img, hole = _lips(400)
    radius = 3 * P.INPAINT_MAX_RADIUS
    out = P.inpaint(img, hole, radius)
    np.testing.assert_array_equal(out[~hole], img[~hole])  # known pixels kept
    full = cv2.inpaint(img, hole.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)
    err = np.abs(out[hole].astype(int) - full[hole].astype(int))
    assert err.mean() < 3.0 and err.max() < 25
    # the dark hole is gone: the fill takes the skin's colour around it
    assert out[hole].mean(axis=0)[0] > 150


def _asset_args(photo, shift=0.0):
    h, w = photo.shape[:2]
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ring = lambda cx, cy, r: np.stack([cx + r * np.cos(t), cy + 0.6 * r * np.sin(t)], 1)  # noqa: E731
    src2d = np.concatenate([ring(w / 2, h / 2, 0.35 * w), ring(w / 2, 0.68 * h, 0.1 * w),
                            ring(0.38 * w, 0.42 * h, 0.05 * w), ring(0.62 * w, 0.42 * h, 0.05 * w)]) + shift
    ids = [np.arange(24) + 24 * k for k in range(4)]
    return (photo, (h, w), src2d, ids[0], ids[1], [ids[2], ids[3]], 0.7 * w)


def test_photo_assets_are_built_once_per_content_and_shared_read_only(monkeypatch):
    from flame_transit._memo import ContentMemo

    monkeypatch.setattr(P, "_ASSETS", ContentMemo(max_bytes=1 << 24))
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    builds = []
    real = P.PhotoAssets._build.__func__
    monkeypatch.setattr(P.PhotoAssets, "_build", classmethod(lambda cls, *a: builds.append(1) or real(cls, *a)))
    first = P.PhotoAssets.build(*_asset_args(photo))
    again = P.PhotoAssets.build(*_asset_args(photo.copy()))  # equal content, another array
    assert len(builds) == 1 and again.face is first.face  # the arrays are shared...
    again.textures["face"] = np.zeros_like(photo)  # ...each caller's textures dict is its own
    assert P.PhotoAssets.build(*_asset_args(photo)).textures["face"] is first.face
    assert photo.flags.writeable  # the caller's photo (already at output size) is not frozen
    for arr in (first.face, first.eye, first.photo, first.skin, *first.textures.values()):
        assert not arr.flags.writeable
        assert not np.shares_memory(arr, photo)
    moved = P.PhotoAssets.build(*_asset_args(photo, shift=1.0))  # another fit: built again
    assert moved.face is not first.face and len(builds) == 2
    changed = photo.copy()
    changed[0, 0] ^= 1
    assert P.PhotoAssets.build(*_asset_args(changed)).face is not first.face and len(builds) == 3
