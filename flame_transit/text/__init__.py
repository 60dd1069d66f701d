"""Text: encoders (MiniLM offline default, CLIP via open_clip, cached vocabulary embeddings),
the instruction vocabulary, instruction parsing and templates.

Names are imported lazily so ``import flame_transit.text`` does not import torch or any model.

Example:
    >>> from flame_transit.text import render_instruction, PAPER_TEMPLATES
    >>> render_instruction(PAPER_TEMPLATES[0], "disgust", "happy")
    'Turn this face from disgust to happiness.'
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    # encoders
    "TextEncoder": "encoders",
    "SentenceTransformerEncoder": "encoders",
    "ClipTextEncoder": "encoders",
    "HashTextEncoder": "encoders",
    "CachedTextEncoder": "encoders",
    "get_text_encoder": "encoders",
    "clear_encoder_cache": "encoders",
    "vocab_cache_path": "encoders",
    "DEFAULT_ENCODER": "encoders",
    "DEFAULT_CLIP": "encoders",
    # vocabulary
    "EXPRESSIONS": "vocabulary",
    "EMOTIONS": "vocabulary",
    "AU_NAMES": "vocabulary",
    "SYNONYMS": "vocabulary",
    "label_of": "vocabulary",
    # templates
    "PAPER_TEMPLATES": "templates",
    "TRAIN_TEMPLATES": "templates",
    "HELDOUT_TEMPLATES": "templates",
    "SINGLE_TEMPLATES": "templates",
    "render_instruction": "templates",
    "canonical_instruction": "templates",
    # parsing
    "parse_instruction": "parse",
    "ParsedInstruction": "parse",
    "Segment": "parse",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
