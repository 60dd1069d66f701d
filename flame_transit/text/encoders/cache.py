"""The embedding cache around an encoder: an in-memory dict, the shipped embeddings of the known
vocabulary (``flame_transit/text/data/<encoder-name>_vocab.npz``) and an optional user cache on
disk; the backend model is loaded only on the first miss.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ...errors import AssetError
from ...io_utils import CACHE_DIR_ENV_VAR, user_cache_dir  # noqa: F401 (re-exported)
from .base import TextBatch, TextEncoder, _as_text_list, normalize_text

__all__ = [
    "CachedTextEncoder",
    "vocab_cache_path",
    "user_cache_path",
    "write_cache_file",
    "CACHE_DIR_ENV_VAR",
    "DATA_DIR",
]

logger = logging.getLogger(__name__)


DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def vocab_cache_path(name: str) -> Path:
    """Path of the shipped vocabulary-embedding file of an encoder (may not exist).

    Example:
        >>> vocab_cache_path("clip:ViT-B-32/laion2b_s34b_b79k").name
        'clip_ViT-B-32_laion2b_s34b_b79k_vocab.npz'
    """
    return DATA_DIR / f"{_safe_name(name)}_vocab.npz"


def user_cache_path(name: str) -> Optional[Path]:
    """Per-user embedding cache file of an encoder: ``text/<name>_vocab.npz`` in the per-user
    cache folder (:func:`~flame_transit.io_utils.user_cache_dir`; None when it is turned off)."""
    folder = user_cache_dir("text")
    return None if folder is None else folder / f"{_safe_name(name)}_vocab.npz"


class CachedTextEncoder(TextEncoder):
    """Wraps an encoder with an in-memory dict and on-disk vocabulary embeddings.

    Lookups are keyed by :func:`normalize_text`. Hits never touch the wrapped encoder; misses are
    encoded in one batch, stored in the dict, and returned. ``name`` and ``dim`` are the wrapped
    encoder's, so checkpoints do not depend on whether the cache was used.

    Args:
        encoder: the backend.
        files: ``.npz`` files to preload (default: the shipped vocabulary file of
            ``encoder.name`` when it exists). Files written for another encoder are rejected.
        max_entries: bound of the in-memory dict for misses (preloaded entries always stay).
    """

    def __init__(self, encoder: TextEncoder, files: Optional[Iterable[Union[str, Path]]] = None,
                 max_entries: int = 200_000) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.dim = encoder.dim
        self.max_entries = int(max_entries)
        self._lock = threading.Lock()
        self._index: Dict[str, int] = {}
        self._table: np.ndarray = np.zeros((0, self.dim), dtype=np.float32)
        self._extra: Dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0
        self.user_cache: Optional[Path] = None
        if files is None:
            files = [p for p in (vocab_cache_path(encoder.name), user_cache_path(encoder.name))
                     if p is not None and p.is_file()]
            self.user_cache = user_cache_path(encoder.name)
        for f in files:
            try:
                self.load(f)
            except AssetError as e:
                if self.user_cache is not None and Path(f) == self.user_cache:
                    logger.warning("ignoring the user text-embedding cache: %s", e)
                else:
                    raise

    def persist(self, texts: Sequence[str]) -> Optional[Path]:
        """Store the embeddings of ``texts`` in the per-user cache file of this encoder (for
        encoders without a shipped vocabulary file, e.g. CLIP), so the next process needs no
        model for them. Returns the file, or None when caching is disabled or not needed."""
        if self.user_cache is None or self.name.startswith("hash:") or \
                self.name.endswith("/random-init"):
            return None
        keys = [normalize_text(t) for t in texts]
        if all(k in self._index for k in keys):
            return None
        old = []
        if self.user_cache.is_file():
            try:
                with np.load(self.user_cache, allow_pickle=False) as z:
                    if str(z["encoder"]) == self.name:
                        old = [str(t) for t in z["texts"]]
            except (OSError, KeyError, ValueError):
                old = []
        allk = list(dict.fromkeys(old + keys))
        try:
            path = write_cache_file(self.user_cache, self.name, allk, self.encode(allk).numpy())
        except OSError as e:
            logger.warning("could not write the text-embedding cache %s: %s", self.user_cache, e)
            return None
        return path

    # ---- persistence -------------------------------------------------------------------------
    def load(self, path: Union[str, Path]) -> int:
        """Add the entries of an ``.npz`` cache file; returns how many were added."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                name = str(z["encoder"])
                texts = [str(t) for t in z["texts"]]
                emb = np.asarray(z["embeddings"], dtype=np.float32)
        except (OSError, KeyError, ValueError) as e:
            raise AssetError(f"{path} is not a text-embedding cache file ({e}); delete it or "
                             "rebuild it with `python -m flame_transit.text.build_cache`.") from e
        if name != self.name:
            raise AssetError(f"{path} holds embeddings of encoder {name!r}, not {self.name!r}.")
        if emb.ndim != 2 or emb.shape != (len(texts), self.dim):
            raise AssetError(f"{path}: embeddings {emb.shape} do not match {len(texts)} texts x "
                             f"{self.dim} dims; rebuild it with `python -m flame_transit.text.build_cache`.")
        with self._lock:
            new = [(t, i) for i, t in enumerate(texts) if normalize_text(t) not in self._index]
            base = self._table.shape[0]
            if new:
                self._table = np.concatenate([self._table, emb[[i for _, i in new]]])
                for k, (t, _) in enumerate(new):
                    self._index[normalize_text(t)] = base + k
        return len(new)

    def save(self, path: Union[str, Path], texts: Optional[Sequence[str]] = None) -> Path:
        """Write the given texts (default: every cached entry) to an ``.npz`` file, atomically."""
        keys = [normalize_text(t) for t in texts] if texts is not None else self.cached_texts()
        emb = self.encode(keys).numpy() if keys else np.zeros((0, self.dim), np.float32)
        return write_cache_file(path, self.name, keys, emb)

    def cached_texts(self) -> List[str]:
        with self._lock:
            return list(self._index) + [k for k in self._extra if k not in self._index]

    def __contains__(self, text: str) -> bool:
        k = normalize_text(text)
        return k in self._index or k in self._extra

    def __len__(self) -> int:
        return len(self.cached_texts())

    @property
    def loaded(self) -> bool:
        return self.encoder.loaded

    # ---- encoding ----------------------------------------------------------------------------
    def lookup(self, texts: TextBatch) -> Tuple[torch.Tensor, List[int]]:
        """Cached rows only: ``(embeddings (N, dim) with zeros at misses, indices of misses)``."""
        items = [normalize_text(t) for t in _as_text_list(texts)]
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        missing = []
        for i, k in enumerate(items):
            j = self._index.get(k)
            if j is not None:
                out[i] = self._table[j]
            elif k in self._extra:
                out[i] = self._extra[k]
            else:
                missing.append(i)
        return torch.from_numpy(out), missing

    def encode(self, texts: TextBatch) -> torch.Tensor:
        items = [normalize_text(t) for t in _as_text_list(texts)]
        out, missing = self.lookup(items)
        self.hits += len(items) - len(missing)
        if missing:
            self.misses += len(missing)
            todo = list(dict.fromkeys(items[i] for i in missing))
            emb = self.encoder.encode(todo).detach().cpu().float().numpy()
            with self._lock:
                if len(self._extra) + len(todo) > self.max_entries:
                    self._extra.clear()
                for t, e in zip(todo, emb):
                    self._extra[t] = e
            got = dict(zip(todo, emb))
            for i in missing:
                out[i] = torch.from_numpy(got[items[i]])
        return out

    def __repr__(self) -> str:
        return (f"CachedTextEncoder({self.encoder!r}, preloaded={self._table.shape[0]}, "
                f"extra={len(self._extra)})")


def write_cache_file(path: Union[str, Path], name: str, texts: Sequence[str],
                     embeddings: np.ndarray) -> Path:
    """Write an embedding cache ``.npz`` atomically (temp file in the target folder + replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, encoder=np.array(name), texts=np.array(list(texts), dtype=str), embeddings=emb)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
