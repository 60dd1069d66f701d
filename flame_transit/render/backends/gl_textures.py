"""Textures for the GL backend (:mod:`.gl`): the photo-look texture layout llvmpipe reads fastest
(:func:`rgba`), and each context's textures shared by content across renderers
(:class:`SharedTextures`)."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

__all__ = ["SharedTextures", "rgba"]


def rgba(img: np.ndarray) -> bytes:
    """``(H, W, 3)`` uint8 as opaque RGBA bytes: llvmpipe fetches 4-byte texels faster than
    3-byte ones (about 1 ms of a 12 ms photo-look frame at 512²)."""
    out = np.empty(img.shape[:2] + (4,), dtype=np.uint8)
    out[..., :3] = img
    out[..., 3] = 255
    return out.tobytes()


class SharedTextures:
    """One context's textures by content (:func:`~flame_transit._memo.content_digest` of the
    pixels, and the filter), kept across renderers: the clips of one photo draw the same
    photo-look textures, and a 512² upload costs ~4 ms here (four a clip), its digest under
    1 ms. The least recently used idle ones go beyond :attr:`MAX_BYTES`; one that a renderer
    holds is never released (unlike :class:`~flame_transit._memo.ContentMemo`, whose entries
    need no release and are never in use)."""

    MAX_BYTES = 64 << 20

    @staticmethod
    def of(ctx: Any) -> "SharedTextures":
        """The shared textures of GL context ``ctx``."""
        return _BY_CONTEXT.setdefault(id(ctx), SharedTextures())

    def __init__(self) -> None:
        from collections import OrderedDict

        self._entries: "OrderedDict[Tuple[str, bool], List[Any]]" = OrderedDict()  # -> [texture, bytes, users]

    def acquire(self, key: Tuple[str, bool]) -> Any:
        """The texture under ``key`` (now in use), or None when there is none yet."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        entry[2] += 1
        return entry[0]

    def add(self, key: Tuple[str, bool], tex: Any) -> None:
        """Keep ``tex`` under ``key``, in use by its maker; release idle ones over the budget."""
        self._entries[key] = [tex, tex.width * tex.height * 4, 1]
        total = sum(e[1] for e in self._entries.values())
        for old in [k for k, e in self._entries.items() if e[2] == 0]:  # oldest first
            if total <= self.MAX_BYTES:
                break
            tex_, nbytes, _ = self._entries.pop(old)
            tex_.release()
            total -= nbytes

    def release(self, key: Tuple[str, bool]) -> None:
        """A renderer is done with the texture under ``key``."""
        entry = self._entries.get(key)
        if entry is not None:
            entry[2] = max(0, entry[2] - 1)


#: the shared textures of each context (by id: contexts live as long as the process, gl._CONTEXTS)
_BY_CONTEXT: Dict[int, SharedTextures] = {}
