"""Content-keyed memos: results of deterministic work on a photo (MediaPipe's landmarks, the
head fit, the photo look's textures) kept for the next clip of the same photo, the common case
of a stimulus set or a batch (one face, many instructions) and of a notebook cell run again.

Keys are digests of the inputs' content (:func:`content_digest`), so an equal copy of a photo
hits and a changed pixel misses; a :class:`ContentMemo` is bounded by item count and bytes and
safe to share between threads.

Example:
    >>> import numpy as np
    >>> memo = ContentMemo(max_items=2)
    >>> key = content_digest(np.zeros((2, 2)), "settings", 3)
    >>> memo.get(key) is None
    True
    >>> memo.put(key, "result"); memo.get(content_digest(np.zeros((2, 2)), "settings", 3))
    'result'
    >>> memo.get(content_digest(np.ones((2, 2)), "settings", 3)) is None
    True
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Optional, Tuple

import numpy as np

__all__ = ["ContentMemo", "content_digest"]


def content_digest(*parts: Any) -> str:
    """A digest of nested sequences of arrays (anything ``np.asarray`` takes: tensors too),
    numbers, strings and None; arrays count with their dtype and shape.

    Raises:
        TypeError: a part that is none of these (it has no content to digest)."""
    digest = hashlib.blake2b(digest_size=20)

    def feed(x: Any) -> None:
        if x is None or isinstance(x, (bool, int, float, str, bytes)):
            digest.update(f"{type(x).__name__}:{x!r};".encode())
        elif isinstance(x, (list, tuple)):
            digest.update(b"[%d;" % len(x))
            for item in x:
                feed(item)
        else:
            if hasattr(x, "detach") and hasattr(x, "cpu"):  # a tensor, on any device, with grad or not
                x = x.detach().cpu().numpy()
            a = np.ascontiguousarray(x)
            if a.dtype.hasobject:  # its bytes would be addresses, not content
                raise TypeError(f"cannot digest the content of {type(x).__name__}")
            digest.update(f"{a.dtype.str}{a.shape};".encode())
            digest.update(memoryview(a.reshape(-1)).cast("B"))  # no copy of a large photo

    for part in parts:
        feed(part)
    return digest.hexdigest()


class ContentMemo:
    """Least recently used entries, at most ``max_items`` of them and ``max_bytes`` in all (an
    entry over ``max_bytes`` alone is not kept)."""

    def __init__(self, max_items: Optional[int] = None, max_bytes: Optional[int] = None) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._entries: "OrderedDict[Any, Tuple[Any, int]]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Any) -> Any:
        """The value stored under ``key`` (now the most recent), or None."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            self._entries.move_to_end(key)
            return hit[0]

    def put(self, key: Any, value: Any, nbytes: int = 0) -> None:
        """Store ``value`` (of ``nbytes``) under ``key``, dropping the least recently used."""
        if self.max_bytes is not None and nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, int(nbytes))
            self._bytes += int(nbytes)
            while self._entries and ((self.max_items is not None and len(self._entries) > self.max_items)
                                     or (self.max_bytes is not None and self._bytes > self.max_bytes)):
                _, (_, n) = self._entries.popitem(last=False)
                self._bytes -= n

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
