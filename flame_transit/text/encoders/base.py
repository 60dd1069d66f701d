"""The text-encoder interface: :class:`TextEncoder` (strings -> L2-normalised float32 ``(N, dim)``,
with a ``name`` that checkpoints store) and the text normalisation every backend shares.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, List, Sequence, Tuple, Union

import torch

from ...errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ENCODER",
    "LazyTextEncoder",
    "TextEncoder",
    "normalize_text",
]


DEFAULT_ENCODER = "minilm-l6-v2"
TextBatch = Union[str, Sequence[str]]


def normalize_text(text: str) -> str:
    """Key under which a text is cached: surrounding whitespace stripped, inner runs collapsed.

    Both tokenizers used here (BERT word-piece, CLIP BPE) split on whitespace, so this does not
    change the embedding.

    Example:
        >>> normalize_text("  Turn this face\\n from  A to B. ")
        'Turn this face from A to B.'
    """
    return " ".join(text.split())


def _as_text_list(texts: TextBatch) -> List[str]:
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)):
        raise InputError("encode() got bytes; decode them to str first (e.g. data.decode('utf-8')).")
    try:
        out = list(texts)
    except TypeError:
        raise InputError(f"encode() expects a list of str, got {type(texts).__name__}.") from None
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InputError(f"encode() expects a list of str; item {i} is {type(t).__name__}.")
    return out


def _l2n(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1, eps=1e-12).contiguous()


class TextEncoder:
    """Interface of all text encoders.

    Attributes:
        name: identifier stored in checkpoints, e.g. ``"minilm-l6-v2"`` or
            ``"clip:ViT-B-32/laion2b_s34b_b79k"``.
        dim: embedding size.

    :meth:`encode` returns a ``(N, dim)`` float32 CPU tensor with unit rows; same input, same
    output. A single ``str`` is accepted as a batch of one.
    """

    name: str = "abstract"
    dim: int = 0

    def encode(self, texts: TextBatch) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, texts: TextBatch) -> torch.Tensor:
        return self.encode(texts)

    @property
    def loaded(self) -> bool:
        """Whether the underlying model is in memory (model-free encoders: always True)."""
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class LazyTextEncoder(TextEncoder):
    """A :class:`TextEncoder` whose model is built on first use (:meth:`_load`), once, even
    when several threads encode at the same time; subclasses implement :meth:`_build`."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> Any:
        """The model, built by :meth:`_build` on the first call (logged with its time)."""
        with self._lock:
            if self._model is None:
                t0 = time.perf_counter()
                model, source = self._build()
                self._model = model
                logger.info("loaded %s%s in %.2f s", self.name, source, time.perf_counter() - t0)
        return self._model

    def _build(self) -> Tuple[Any, str]:  # pragma: no cover - interface
        """``(model, where it came from, for the log: "" or " from <path>")``."""
        raise NotImplementedError
