"""Build the shipped vocabulary-embedding cache of a text encoder.

``python -m flame_transit.text.build_cache [--encoder minilm-l6-v2] [--out PATH]`` writes
``flame_transit/text/data/<encoder-name>_vocab.npz`` with the embeddings of :func:`cache_texts`
(every expression word, and the paper's five templates over all ordered expression pairs with
canonical nouns and adjectives, plus the canonical single-target instructions).
"""

from __future__ import annotations

import argparse
import time
from typing import List, Optional, Sequence

from .templates import (HELDOUT_WORDS, PAPER_TEMPLATES, TRAIN_WORDS, canonical_instruction,
                        render_instruction)
from .vocabulary import COMPOUND_WORDS, EXPRESSIONS, expression_phrases

__all__ = ["cache_texts", "build_cache", "main"]


def cache_texts() -> List[str]:
    """The texts whose embeddings ship with the package, in a fixed order, without duplicates.

    Example:
        >>> t = cache_texts()
        >>> "Turn this face from disgust to happiness." in t and "happy" in t
        True
    """
    out: List[str] = list(EXPRESSIONS)
    out += [p for p, _ in expression_phrases()]
    out += list(COMPOUND_WORDS)
    for table in (TRAIN_WORDS, HELDOUT_WORDS):
        out += [w for forms in table.values() for ws in forms.values() for w in ws]
    for tpl in PAPER_TEMPLATES:
        for a in EXPRESSIONS:
            for b in EXPRESSIONS:
                if a == b:
                    continue
                out.append(render_instruction(tpl, a, b))
                out.append(render_instruction(tpl.replace("{a}", "{a_adj}").replace("{b}", "{b_adj}"), a, b))
    out += [canonical_instruction([x]) for x in EXPRESSIONS]
    return list(dict.fromkeys(" ".join(t.split()) for t in out))


def build_cache(encoder_name: Optional[str] = None, out: Optional[str] = None,
                texts: Optional[Sequence[str]] = None):
    """Encode :func:`cache_texts` with the (uncached) encoder and write the ``.npz`` file."""
    from .encoders import canonical_encoder_name, get_text_encoder, vocab_cache_path, write_cache_file

    name = canonical_encoder_name(encoder_name)
    enc = get_text_encoder(name, cache=False)
    texts = list(texts) if texts is not None else cache_texts()
    emb = enc.encode(texts).numpy()
    return write_cache_file(out or vocab_cache_path(enc.name), enc.name, texts, emb)


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default=None, help="encoder name (default minilm-l6-v2)")
    ap.add_argument("--out", default=None, help="output .npz (default: the package data folder)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    path = build_cache(args.encoder, args.out)
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":  # pragma: no cover
    main()
