"""A model-free hashed character-n-gram encoder for tests and smoke runs (spelling only, no
semantics; never use it for a real model).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from ...errors import InputError
from .base import TextBatch, TextEncoder, _as_text_list, _l2n, normalize_text

__all__ = [
    "HashTextEncoder",
]


class HashTextEncoder(TextEncoder):
    """Hashed character-trigram + word features, L2-normalised. Instant, deterministic,
    semantics-free; for tests and smoke runs only.

    Example:
        >>> e = HashTextEncoder(32).encode(["smile", "smile", "frown"])
        >>> bool(torch.equal(e[0], e[1])), bool(torch.equal(e[0], e[2]))
        (True, False)
    """

    def __init__(self, dim: int = 256) -> None:
        if int(dim) < 2:
            raise InputError(f"hash encoder dim must be >= 2, got {dim}")
        self.dim = int(dim)
        self.name = f"hash:{self.dim}"

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float64)
        t = " " + normalize_text(text).lower() + " "
        feats = [t[i:i + 3] for i in range(max(1, len(t) - 2))] + ["w:" + w for w in t.split()]
        for f in feats:
            h = hashlib.blake2b(f.encode("utf-8", "surrogatepass"), digest_size=8).digest()
            n = int.from_bytes(h, "little")
            v[n % self.dim] += 1.0 if (n >> 63) & 1 else -1.0
        if not v.any():
            v[0] = 1.0
        return v

    def encode(self, texts: TextBatch) -> torch.Tensor:
        items = _as_text_list(texts)
        if not items:
            return torch.zeros(0, self.dim)
        return _l2n(torch.from_numpy(np.stack([self._one(t) for t in items])))
