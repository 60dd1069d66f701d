"""Words outside the vocabulary: a close spelling of a vocabulary word (no model), then the nearest
expression phrase by text-embedding cosine similarity above a per-encoder threshold
(:func:`nearest_expression`). :func:`~flame_transit.text.parse.parse_instruction` uses them.
"""

from __future__ import annotations

import difflib
import unicodedata
from typing import Any, Dict, List, Optional, Tuple

from .lexicon import _FILLER, _lex
from .vocabulary import expression_phrases

__all__ = [
    "EMBEDDING_THRESHOLDS",
    "TYPO_CUTOFF",
    "nearest_expression",
]


# Cosine similarity an unknown word needs to its nearest vocabulary phrase, per encoder family.
EMBEDDING_THRESHOLDS: Dict[str, float] = {"minilm": 0.6, "clip": 0.9, "hash": 0.6, "": 0.6}
TYPO_CUTOFF = 0.84


def _threshold_for(encoder_name: str) -> float:
    for prefix, thr in EMBEDDING_THRESHOLDS.items():
        if prefix and encoder_name.startswith(prefix):
            return thr
    return EMBEDDING_THRESHOLDS[""]

_PHRASE_EMB: Dict[str, Tuple[Any, List[str], List[str]]] = {}


def nearest_expression(text: str, encoder: Any) -> Tuple[str, float, str]:
    """Nearest vocabulary phrase of ``text`` by cosine similarity of ``encoder`` embeddings.

    The phrase embeddings come from the encoder (for the default encoder: the shipped cache, no
    model load); only ``text`` itself may need the model.

    Returns:
        ``(label, cosine, phrase)``.

    Example:
        >>> from flame_transit.text.encoders import get_text_encoder
        >>> nearest_expression("happy", get_text_encoder("hash:256"))[:2]
        ('happiness', 1.0)
    """
    import torch

    key = f"{encoder.name}@{id(encoder)}"
    if key not in _PHRASE_EMB:
        pairs = list(expression_phrases())
        phrases = [p for p, _ in pairs]
        _PHRASE_EMB[key] = (encoder.encode(phrases), phrases, [lab for _, lab in pairs])
        persist = getattr(encoder, "persist", None)
        if persist is not None:  # e.g. CLIP: the next process finds them on disk
            persist(phrases)
    emb, phrases, labels = _PHRASE_EMB[key]
    q = encoder.encode([text])[0]
    sims = emb @ q
    j = int(torch.argmax(sims))
    return labels[j], float(min(1.0, round(float(sims[j]), 6))), phrases[j]


def _resolve_encoder(encoder: Any):
    if isinstance(encoder, str):
        from .encoders import get_text_encoder

        return get_text_encoder(None if encoder == "default" else encoder)
    return encoder


def _typo_fix(words: List[str]) -> Tuple[List[str], Optional[float]]:
    lx = _lex()
    out, worst = [], None
    for w in words:
        if len(w) >= 4 and w.isalpha() and w not in lx.known_words and w not in _FILLER:
            base = _base_form(w, lx.known_words)
            if base is not None:  # "angrier", "scariest": the word they compare
                worst = min(worst if worst is not None else 1.0, difflib.SequenceMatcher(None, w, base).ratio())
                out.append(base)
                continue
            m = difflib.get_close_matches(w, lx.typo_targets, n=1, cutoff=TYPO_CUTOFF)
            if m:
                r = difflib.SequenceMatcher(None, w, m[0]).ratio()
                worst = r if worst is None else min(worst, r)
                out.append(m[0])
                continue
        out.append(w)
    return out, worst


def _base_form(word: str, known: Any) -> Optional[str]:
    """The known adjective that a comparative or superlative compares: ``angrier`` -> ``angry``,
    ``sadder`` -> ``sad``, ``calmest`` -> ``calm``; None if there is none."""
    for suffix, repl in (("iest", "y"), ("ier", "y"), ("est", ""), ("er", ""), ("est", "e"), ("er", "e")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)] + repl
            for cand in (stem, stem[:-1] if repl == "" and stem[-1] == stem[-2] else None):
                if cand and cand in known:
                    return cand
    return None


def _latin_script(word: str) -> bool:
    """True when every letter of ``word`` is a cased Latin letter (accents included): the
    alphabet the encoders read. Uncased Latin-named letters (``ƻ``, click letters) are not."""
    return all(not ch.isalpha() or ("LATIN" in unicodedata.name(ch, "") and unicodedata.category(ch) in ("Lu", "Ll", "Lt"))
               for ch in word)
