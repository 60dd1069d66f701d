"""Loading and normalising input images.

Everything the encoders accept becomes one thing: a C-contiguous ``uint8`` RGB array
``(H, W, 3)``. Accepted inputs:

* a path (``str`` / :class:`os.PathLike`) to any file Pillow or imageio can read; the EXIF
  orientation tag is honoured (phone photos come out upright);
* a :class:`PIL.Image.Image` (any mode; EXIF orientation honoured);
* a numpy array ``(H, W)`` (grayscale), ``(H, W, 1|3|4)`` or channels-first ``(1|3|4, H, W)``,
  ``uint8`` / other integer types (``uint16`` scaled by 1/257) / ``bool`` / float in ``[0, 1]``;
  RGBA is composited over white;
* a :class:`torch.Tensor` in the same layouts (``(C, H, W)``, ``(H, W, C)``, with an optional
  leading batch dimension of 1), float in ``[0, 1]`` or ``uint8``.

Anything else raises :class:`~flame_transit.errors.InputError` with a message naming the problem
(and the file, for paths).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..errors import InputError
from ..io_utils import user_path

__all__ = ["load_image", "ImageLike", "MIN_IMAGE_SIDE"]

#: smallest accepted image side in pixels (MediaPipe finds nothing useful below this)
MIN_IMAGE_SIDE = 16

ImageLike = Union[str, "os.PathLike[str]", np.ndarray, Any]  # + PIL.Image.Image, torch.Tensor


def load_image(image: ImageLike) -> np.ndarray:
    """Any supported image input as a ``uint8`` RGB array ``(H, W, 3)``.

    Args:
        image: a file path, PIL image, numpy array or torch tensor (see the module docstring).

    Returns:
        ``(H, W, 3)`` ``uint8`` C-contiguous array.

    Raises:
        InputError: unreadable / missing file, unsupported type, shape, dtype or value range.

    Example:
        >>> load_image(np.zeros((20, 30), dtype=np.float32)).shape
        (20, 30, 3)
        >>> load_image(np.full((3, 20, 20), 1.0)).max()
        255
    """
    if isinstance(image, (str, os.PathLike)):
        arr = _read_file(user_path(os.fspath(image)))
        source = f"image file {os.fspath(image)!s}"
    elif isinstance(image, (bytes, bytearray)):
        raise InputError("got raw bytes; pass a file path, a PIL image or a decoded numpy array")
    elif _is_pil(image):
        arr = _from_pil(image)
        source = "PIL image"
    elif _is_torch(image):
        arr = image.detach().to("cpu")
        if arr.dtype.is_complex:
            raise InputError("image tensor is complex; expected real pixel values")
        if arr.dtype == _torch().bfloat16 or arr.dtype == _torch().float16:
            arr = arr.float()
        arr = arr.numpy()
        source = "image tensor"
    elif isinstance(image, np.ndarray):
        arr = image
        source = "image array"
    else:
        raise InputError(
            f"unsupported image type {type(image).__name__}; pass a file path, a PIL image, a numpy "
            "array (H, W[, C]) or a torch tensor (C, H, W)"
        )
    return _normalise(arr, source)


# ----------------------------------------------------------------------------------------------
def _torch():
    import torch

    return torch


def _is_torch(obj: Any) -> bool:
    mod = type(obj).__module__
    return mod.startswith("torch") and hasattr(obj, "detach") and hasattr(obj, "numpy")


def _is_pil(obj: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a core dependency
        return False
    return isinstance(obj, Image.Image)


def _from_pil(img: Any) -> np.ndarray:
    from PIL import ImageOps

    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # corrupt EXIF must not make a readable image unusable
        pass
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        arr = np.asarray(img)
        return _composite_white(arr)
    if img.mode == "I;16" or img.mode.startswith("I;16"):
        return np.asarray(img, dtype=np.uint16)
    if img.mode == "I":  # 16-bit PNGs often open as 32-bit integer images
        arr = np.asarray(img)
        return arr.astype(np.uint16) if arr.size and 0 <= arr.min() and arr.max() <= 65535 else arr
    if img.mode == "F":
        return np.asarray(img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


#: files of this project (models, exports, data) that are never photos
_NOT_PHOTOS = {".npz", ".npy", ".pt", ".pth", ".pkl", ".tar", ".glb", ".gltf", ".obj", ".csv", ".json", ".txt"}


def _read_file(path: Path) -> np.ndarray:
    if not path.exists():
        raise InputError(f"image file not found: {path}")
    if path.is_dir():
        raise InputError(f"expected an image file, got a folder: {path}")
    if path.suffix.lower() in _NOT_PHOTOS:  # imageio would read an .npz as a 2-row "image"
        raise InputError(f"{path} is a {path.suffix.lower()} file, not a photo; pass a PNG or JPEG of a face")
    try:
        from PIL import Image, UnidentifiedImageError

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                arr = _from_pil(img)
        for w in caught:  # Pillow's bomb warning, said in our words; others pass through
            if issubclass(w.category, Image.DecompressionBombWarning):
                h, wd = arr.shape[:2]
                warnings.warn(f"{path} is {wd}x{h} ({wd * h / 1e6:.0f} megapixels): it is read whole "
                              f"(about {arr.nbytes / 2**20:.0f} MiB) and downscaled for detection; "
                              "a photo of a few megapixels gives the same result faster", stacklevel=3)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return arr
    except Image.DecompressionBombError as exc:
        import re

        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f" ({int(found.group(1)) / 1e6:.1f} megapixels)" if found else ""
        raise InputError(f"{path} is too large to read safely{size}: Pillow's limit is "
                         f"{2 * Image.MAX_IMAGE_PIXELS / 1e6:.1f} megapixels; downscale it first "
                         "(a few megapixels is plenty for a face)") from None
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError) as pil_exc:
        if "truncated" in str(pil_exc):  # a JPEG/PNG cut short: its format is fine, its bytes are not
            raise InputError(f"image file {path} is truncated (an incomplete download or copy?); "
                             "save or copy it again") from None
        pil_error = pil_exc
    try:  # formats Pillow does not read (e.g. some TIFF/EXR variants) through imageio
        import imageio.v3 as iio

        arr = np.asarray(iio.imread(path))
    except Exception as exc:
        raise InputError(
            f"cannot read image file {path}: not an image format Pillow or imageio can decode "
            f"({type(pil_error).__name__}: {pil_error}); use a PNG or JPEG"
        ) from exc
    if arr.ndim == 4:  # animated formats: first frame
        arr = arr[0]
    return arr


def _composite_white(rgba: np.ndarray) -> np.ndarray:
    rgb = rgba[..., :3].astype(np.float32)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    out = rgb * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _normalise(arr: Any, source: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InputError(f"{source} has dtype {arr.dtype}; expected uint8, an integer type or float in [0, 1]")
    # layouts: drop a leading batch of one, move channels last
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4) and arr.shape[0] in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise InputError(
            f"{source} has shape {tuple(arr.shape)}; expected (H, W) grayscale, (H, W, 3|4) or "
            "(3|4, H, W) (one image, not a batch; use encode_batch for several)"
        )
    h, w = arr.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise InputError(f"{source} is {w}x{h} pixels; a face needs at least {MIN_IMAGE_SIDE} pixels a side")
    # values -> uint8
    kind = arr.dtype.kind
    if kind == "b":
        arr = arr.astype(np.uint8) * 255
    elif kind == "f":
        if not np.isfinite(arr).all():
            raise InputError(f"{source} contains NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            raise InputError(
                f"{source} is float with values in [{lo:.3g}, {hi:.3g}]; float images must be in "
                "[0, 1] (divide 0..255 data by 255, or pass uint8)"
            )
        arr = np.clip(np.rint(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0:
            raise InputError(f"{source} has negative pixel values ({lo}); expected uint8 0..255 or uint16")
        if arr.dtype == np.uint16:  # 16-bit images (PNG/TIFF): full range 0..65535
            if arr.size and hi <= 255:
                raise InputError(
                    f"{source} is uint16 but its values only reach {hi}: 8-bit data in a 16-bit array "
                    "would be read as nearly black; pass arr.astype(np.uint8), or scale to 0..65535"
                )
            arr = np.rint(arr.astype(np.float64) / 257.0).astype(np.uint8)
        elif hi <= 255:  # 8-bit data in a wider integer type
            arr = arr.astype(np.uint8)
        else:
            raise InputError(
                f"{source} is {arr.dtype} with values up to {hi}; expected 0..255 (or a uint16 image)"
            )
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    elif arr.shape[-1] == 4:
        arr = _composite_white(arr)
    return np.ascontiguousarray(arr)
