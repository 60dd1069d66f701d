"""Checking what callers pass to a renderer: vertices, faces, frame size, the photo, and
the fields of a camera/params object.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from ..checks import MAX_SIZE
from ..errors import InputError

__all__ = ["MAX_SIZE", "check_vertices", "check_faces", "check_size", "check_photo"]

def _to_numpy(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists etc.
        raise InputError(f"{name} must be an array, got {type(value).__name__}: {exc}") from exc
    if arr.dtype == object:
        raise InputError(f"{name} must be a numeric array, got an object array (ragged input?)")
    return arr


def check_vertices(vertices: Any) -> Tuple[np.ndarray, bool]:
    """``(T, V, 3)`` float32 vertices and whether the input was a single ``(V, 3)`` mesh."""
    arr = _to_numpy(vertices, "vertices")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"vertices must be numbers, got dtype {arr.dtype}")
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.shape[1] < 3 or arr.shape[0] < 1:
        raise InputError(
            f"vertices must have shape (T, V, 3) or (V, 3) with V >= 3, got {tuple(np.shape(vertices))}"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr).all(axis=2))[0]
        raise InputError(
            f"vertices contain NaN or infinite values (first at frame {bad[0]}, vertex {bad[1]}); "
            "check the parameters that produced them"
        )
    return arr, single


def check_faces(faces: Any, num_vertices: int) -> np.ndarray:
    """``(F, 3)`` int32 triangle indices, each in ``0 .. num_vertices - 1``."""
    arr = _to_numpy(faces, "faces")
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
        raise InputError(f"faces must have shape (F, 3) with F >= 1, got {tuple(arr.shape)}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError("faces must hold integer vertex indices")
    elif arr.dtype.kind not in "iu":
        raise InputError(f"faces must hold integer vertex indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.min() < 0 or arr.max() >= num_vertices:
        raise InputError(
            f"faces index vertices {arr.min()}..{arr.max()} but there are only {num_vertices} vertices"
        )
    return np.ascontiguousarray(arr, dtype=np.int32)


def check_size(size: Any, default: Optional[Tuple[int, int]] = None, aspect: Optional[float] = None) -> Tuple[int, int]:
    """``(H, W)`` from an int, a pair or None.

    An int is a square frame, or, when ``aspect = W / H`` is given (a photo), the longer side
    with the aspect kept (rounded to even numbers for video encoders).

    Example:
        >>> check_size(256), check_size((120, 160)), check_size(200, aspect=2.0)
        ((256, 256), (120, 160), (100, 200))
    """
    if size is None:
        if default is None:
            return (512, 512)
        size = tuple(int(s) for s in default)
    if isinstance(size, (bool, np.bool_)):
        raise InputError(f"size must be an int or (height, width), got {size!r}")
    if isinstance(size, (int, np.integer)):
        n = int(size)
        if aspect is not None and n >= 1:
            if aspect >= 1:
                hw = (max(2, int(round(n / aspect / 2)) * 2), n)
            else:
                hw = (n, max(2, int(round(n * aspect / 2)) * 2))
        else:
            hw = (n, n)
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(
        isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) for s in size
    ):
        hw = (int(size[0]), int(size[1]))
    else:
        raise InputError(f"size must be an int or a (height, width) pair of ints, got {size!r}")
    if not all(1 <= s <= MAX_SIZE for s in hw):
        raise InputError(f"size {hw} out of range: each side must be between 1 and {MAX_SIZE} pixels")
    return hw


def check_photo(photo: Any) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from an array / tensor / PIL image / path."""
    if isinstance(photo, (str, bytes)) or hasattr(photo, "__fspath__"):
        import imageio.v3 as iio

        try:
            photo = iio.imread(photo)
        except Exception as exc:
            raise InputError(f"could not read the photo {photo!r}: {exc}") from exc
    arr = _to_numpy(photo, "photo")
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):  # CHW tensor
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or min(arr.shape[:2]) < 2:
        raise InputError(f"photo must be an (H, W, 3) RGB image, got shape {tuple(arr.shape)}")
    arr = arr[..., :3]
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InputError("photo contains NaN or infinite values")
        scale = 255.0 if arr.max() <= 1.0 + 1e-6 else 1.0
        arr = np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def _get(params: Any, name: str) -> Any:
    """Field ``name`` of a FaceParams-like object or a dict (None when absent)."""
    if params is None:
        return None
    if isinstance(params, dict):
        return params.get(name)
    return getattr(params, name, None)
