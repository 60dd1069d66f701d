"""Parse a free-text instruction into a sequence of expression targets.

The language (documented with examples in ``docs/INSTRUCTIONS.md``):

* steps are separated by ``from ... to ...``, ``then``, arrows (``->``, ``→``), commas,
  ``start ... end ...``, ``via`` / ``through`` (inserted before the last step), ``after``
  (the step before it comes second), ...;
* a step names one expression ("disgusted", "happiness", "grossed out"), a blend ("happy and
  surprised", "bittersweet"), facial actions ("raise the eyebrows", "smirk", "open the mouth"),
  or an expression with actions ("happy with raised eyebrows");
* intensity words ("slightly", "very", "50%") scale the mention they precede (or follow);
* removal words ("stop smiling", "wipe that smile off", "no more tears", "lose the frown") make
  the step go from the expression they name to neutral; so do the words after it ("the smile
  fades away", "her anger melts away", "disappears", "goes away", "vanishes"); "turn that frown
  upside down" reads as from a frown to a smile;
* unknown words fall back to a close spelling of a vocabulary word (no model needed) and then to
  the nearest expression by text embedding (cosine threshold); otherwise
  :class:`~flame_transit.errors.InstructionError` lists the vocabulary. Unknown words beside known
  ones are ignored with an :class:`~flame_transit.errors.InstructionWarning`, unless they stand
  where an expression would ("sad and <?>") or outnumber the known words of their step: then
  :class:`~flame_transit.errors.InstructionError` names them.

Example:
    >>> p = parse_instruction("Turn this face from disgust to happiness.")
    >>> [(s.label, s.intensity) for s in p.segments]
    [('disgust', 1.0), ('happiness', 1.0)]
    >>> s = parse_instruction("slightly happy and very surprised").segments[0]
    >>> s.label, sorted(s.mix), s.intensity
    ('custom', ['happiness', 'surprise'], 1.25)
    >>> parse_instruction("raise the eyebrows, then smirk").segments[1].aus
    {'AU12L': 1.0, 'AU14L': 1.0}
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from typing import Any, Dict, List, Optional, Tuple

from ..errors import InstructionError, InstructionWarning
from .guess import (
    EMBEDDING_THRESHOLDS,
    _latin_script,
    _resolve_encoder,
    _threshold_for,
    _typo_fix,
    nearest_expression,
)
from .lexicon import _IDIOMS, NEXT, PREV, VIA, _FILLER, _JOINS, _NUMBER_RE, _SLOT_SEPS, _lex, _norm, _tokens
from .scan import _Mention, _Mod, _Tok, _classify, _clock, _pair_actions, _phrase, _scan
from .segments import ParsedInstruction, Segment
from .vocabulary import CUSTOM, INTENSITY_RANGE, SIDED_AUS, vocabulary_summary

__all__ = [
    "Segment",
    "ParsedInstruction",
    "parse_instruction",
    "MAX_CHARS",
    "MAX_SEGMENTS",
    "EMBEDDING_THRESHOLDS",
    "nearest_expression",
]

logger = logging.getLogger(__name__)
MAX_CHARS = 2000
MAX_SEGMENTS = 32


def _validate(text: Any) -> str:
    if isinstance(text, (bytes, bytearray, memoryview)):
        raise InstructionError("the instruction is bytes; decode it to text first "
                               "(e.g. data.decode('utf-8')).")
    if not isinstance(text, str):
        raise InstructionError(f"the instruction must be a str, got {type(text).__name__}.")
    if not text.strip():
        raise InstructionError("the instruction is empty; write e.g. "
                               "'Turn this face from disgust to happiness.'")
    if len(text) > MAX_CHARS:
        raise InstructionError(f"the instruction is {len(text)} characters long; the limit is "
                               f"{MAX_CHARS}. Describe the expressions in a sentence or two.")
    bad = [c for c in text if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn")
           and c not in "\t\n\r"]
    if bad:
        raise InstructionError(f"the instruction contains {len(bad)} control or invalid "
                               f"character(s) (e.g. {bad[0]!r}); is it binary data? Pass plain text.")
    return text


def parse_instruction(text: str, encoder: Any = "default", threshold: Optional[float] = None,
                      allow_guess: bool = True) -> ParsedInstruction:
    """Parse an instruction into expression segments.

    Args:
        text: the instruction, e.g. ``"Turn this face from disgust to happiness."``.
        encoder: text encoder for unknown words: ``"default"`` (:func:`get_text_encoder`,
            loaded only when an unknown word needs it), an encoder name, a
            :class:`~flame_transit.text.encoders.TextEncoder`, or None (no embedding fallback).
        threshold: cosine similarity an unknown word needs to its nearest vocabulary phrase
            (default per encoder: :data:`EMBEDDING_THRESHOLDS`).
        allow_guess: resolve unknown words by spelling and embedding; False raises instead.

    Returns:
        :class:`ParsedInstruction` with at least one segment.

    Raises:
        InstructionError: empty, too long, binary, negated, with no recognisable expression, or
            with unknown words where an expression should stand.

    Warns:
        InstructionWarning: unknown words were ignored, or an intensity was clipped to its range.

    Example:
        >>> parse_instruction("sad -> neutral -> angry").labels
        ['sadness', 'neutral', 'anger']
        >>> parse_instruction("make this face happy").labels
        ['happiness']
    """
    notes: List[str] = []
    parsed = _parse(text, encoder, threshold, allow_guess, notes)
    for note in notes:
        warnings.warn(note, InstructionWarning, stacklevel=2)
    return parsed


def _parse(text: Any, encoder: Any, threshold: Optional[float], allow_guess: bool,
           notes: List[str]) -> ParsedInstruction:
    """:func:`parse_instruction` with its warnings appended to ``notes`` (a nested parse, as in
    the spelling guess, drops them)."""
    text = _validate(text)
    norm = _norm(text)
    for pattern, plain in _IDIOMS:  # "turn that frown upside down" = from a frown to a smile
        norm = re.sub(pattern, plain, norm)
    if len(norm) > 4 * MAX_CHARS:
        raise InstructionError("the instruction expands to too much text after Unicode "
                               "normalisation; pass plain text.")
    toks = [_Tok(t, s, e) for t, s, e in _tokens(norm)]
    _classify(toks)
    mentions: Dict[int, _Mention] = {m.index: m for m in _pair_actions(toks)}
    mods: List[_Mod] = []
    sides: List[Tuple[int, str]] = []
    negs: List[int] = []
    removals: List[int] = []
    _scan(toks, mentions, mods, sides, negs, removals)

    for ni in negs:  # "not happy": refuse rather than produce the opposite
        for k in range(ni + max(toks[ni].span, 1), min(len(toks), ni + 4)):
            if toks[k].kind == "sep":
                break
            if k in mentions:
                raise InstructionError(
                    f"negations are not supported ({norm[toks[ni].start:mentions[k].end]!r}); "
                    "name the expression you want instead, e.g. 'neutral' or 'sad'.")

    removed = _removal_targets(toks, mentions, removals)
    for mod in mods:
        if mod.how == "set" and mod.value > INTENSITY_RANGE[1]:
            notes.append(f"intensity {norm[mod.start:mod.end]!r} is outside the range {INTENSITY_RANGE[0]:g} to "
                         f"{INTENSITY_RANGE[1]:g} (0% to {100 * INTENSITY_RANGE[1]:g}%); read as {INTENSITY_RANGE[1]:g}.")

    # chunks between separators: (separator type, separator words, token indices)
    chunks: List[Tuple[str, Optional[str], List[int]]] = []
    cur: List[int] = []
    cur_sep: Tuple[str, Optional[str]] = (NEXT, None)
    for k, t in enumerate(toks):
        if t.kind == "sep":
            chunks.append((cur_sep[0], cur_sep[1], cur))
            cur, cur_sep = [], (t.value, " ".join(_phrase(toks, k, max(t.span, 1))))
        elif t.kind != "covered":
            cur.append(k)
    chunks.append((cur_sep[0], cur_sep[1], cur))

    lx = _lex()
    ignored: List[str] = []
    encoder_obj, encoder_failed = None, None
    steps: List[Tuple[str, Segment]] = []
    for sep_type, sep_word, idx in chunks:
        ms = [mentions[k] for k in idx if k in mentions]
        cmods = [m for m in mods if m.index in idx]
        csides = [s for s in sides if s[0] in idx]
        residual_idx = [k for k in idx if toks[k].kind == "" and toks[k].text not in _FILLER
                        and toks[k].text not in lx.known_words and re.search(r"[^\W\d_]", toks[k].text)]
        residual = [toks[k].text for k in residual_idx]
        if not ms and residual:
            foreign = [w for w in residual if not _latin_script(w)]
            if foreign:  # the encoders read English: a guess from these would be noise
                raise InstructionError(
                    f"{' '.join(foreign)!r} in {text.strip()[:200]!r} is in a script the text encoder "
                    "cannot read (it understands English); write the instruction in English, e.g. "
                    "'Turn this face from sadness to happiness.'")
            seg = None
            if allow_guess:
                seg, enc_new, failed = _guess_chunk(toks, idx, norm, encoder, encoder_obj,
                                                    threshold, residual, cmods)
                encoder_obj = enc_new or encoder_obj
                encoder_failed = failed or encoder_failed
            if seg is not None:
                # "stop smilling": a removal word before the guessed expression
                gone = any(k in idx and toks[k].kind in ("removal", "post_removal") for k in removals)
                _add_step(steps, sep_type, seg if gone else None, None if gone else seg)
                continue
            slot = sep_word is not None and sep_word in _SLOT_SEPS
            has_filler = any(toks[k].text in _FILLER for k in idx)
            if slot or not has_filler:
                hint = f" (no embedding fallback: {encoder_failed})" if encoder_failed else ""
                raise InstructionError(
                    f"could not recognise the expression {' '.join(residual)!r} in "
                    f"{text.strip()[:200]!r}{hint}.{_english_hint(residual)} Known vocabulary: {vocabulary_summary()}")
            ignored.extend(residual)
            continue
        if ms and residual:
            _check_unknown_beside_known(toks, idx, residual_idx, ms, text, norm)
        # the unknown words, and numbers that are no intensity ("happy 5"), in the order written
        ignored.extend(toks[k].text for k in idx if k in residual_idx or (
            toks[k].kind == "" and _NUMBER_RE.fullmatch(toks[k].text) and not _clock(toks, k)))
        if not ms:
            back = [m for m in cmods if m.may_follow]
            if back and steps:  # "from sad to happy, slightly": modifies the previous step
                place, prev = steps[-1]
                steps[-1] = (place, _scale_segment(prev, back, norm))
            continue
        gone = [m for m in ms if m.index in removed]
        if gone:
            _attach(ms, cmods, csides)  # modifiers and sides first, then the two parts
            kept = [m for m in ms if m.index not in removed]
            lo = min(removed[m.index] for m in gone)
            after = _segment(kept, [], [], norm) if kept else Segment(
                label="neutral", words=" ".join(norm[toks[lo].start:max(m.end for m in gone)].split()))
            _add_step(steps, sep_type, _segment(gone, [], [], norm), after)
        else:
            steps.append((sep_type, _segment(ms, cmods, csides, norm)))
        if len(steps) > MAX_SEGMENTS:
            raise InstructionError(f"the instruction has more than {MAX_SEGMENTS} steps; split it "
                                   "into several instructions.")

    segments = _order(steps)
    if len(segments) >= 2 and _ends_going_back(toks, mentions):
        segments.append(segments[0])  # "from happy to sad and back (again)"
    if not segments:
        unknown = f" (could not recognise {' '.join(ignored)!r})" if ignored else ""
        raise InstructionError(
            f"no expression found in {text.strip()[:200]!r}{unknown}.{_english_hint(ignored)} Name one or two "
            "expressions, e.g. "
            f"'Turn this face from disgust to happiness.' Known vocabulary: {vocabulary_summary()}")
    ignored = list(dict.fromkeys(ignored))
    if ignored:
        notes.append(_ignored_note(ignored, segments, text))
    return ParsedInstruction(text=text, segments=segments, ignored=tuple(ignored))


def _removal_targets(toks: List[_Tok], mentions: Dict[int, _Mention], removals: List[int]) -> Dict[int, int]:
    """``mention index -> removal word index``: the mention a removal word takes away ("stop
    smiling", "wipe that smile off": the next within 4 tokens of its step), and the mentions
    joined to it by "and" / "or" ("stop smiling and frowning")."""
    out: Dict[int, int] = {}
    for ri in removals:
        if toks[ri].kind == "post_removal":  # "the smile fades away": the mention before it
            nxt = ri + max(toks[ri].span, 1)
            if nxt < len(toks) and toks[nxt].text in ("into", "to", "toward", "towards", "until", "till", "onto"):
                continue  # "sad fades into happy": a transition to the next step, no neutral between
            for k in range(ri - 1, max(-1, ri - 5), -1):
                if toks[k].kind == "sep":
                    break
                if k in mentions:
                    out[k] = ri
                    break
            continue
        k = ri + max(toks[ri].span, 1)
        limit = k + 4
        while k < min(len(toks), limit) and toks[k].kind != "sep":
            if k not in mentions:
                k += 1
                continue
            out[k] = ri
            k += max(toks[k].span, 1)
            if not (k + 1 < len(toks) and toks[k].text in _JOINS and k + 1 in mentions):
                break  # another mention right after "and" is removed too; anything else ends the run
            k, limit = k + 1, k + 2
    return out


def _add_step(steps: List[Tuple[str, Segment]], place: str, gone: Optional[Segment],
              after: Optional[Segment]) -> None:
    """Append a step; with ``gone`` (what a removal word takes away), first that expression
    (unless the clip is already there: "from sad to happy, then lose the smile"), then
    ``after`` (the step's other words; default neutral)."""
    if gone is None:
        steps.append((place, after))
        return
    after = after if after is not None else Segment(label="neutral", words=gone.words)
    if _same(gone, after):  # "happy without smiling", "stop being calm"
        raise InstructionError(f"{after.words!r} both names and removes {gone.dominant or 'the same action'}; "
                               "name the expression the clip should end in (e.g. 'from happy to neutral').")
    if not (steps and _same(steps[-1][1], gone)):
        steps.append((place, gone))
    steps.append((NEXT, after))


def _same(a: Segment, b: Segment) -> bool:
    return a.label == b.label and a.mix == b.mix and set(a.aus) == set(b.aus)


def _check_unknown_beside_known(toks: List[_Tok], idx: List[int], residual_idx: List[int],
                                ms: List[_Mention], text: str, norm: str) -> None:
    """Refuse unknown words of a step with known expressions where they stand for an expression:
    joined to one by "and" / "or" ("from sad and triste to happy"), or more of them than known
    words in the step ("de triste a feliz 😀" would be read as the emoji alone)."""
    in_mention = {k for k in idx if any(m.start <= toks[k].start < m.end for m in ms)}
    pos = {k: p for p, k in enumerate(idx)}
    joined = []
    for k in residual_idx:
        p = pos[k]
        for step in (-1, 1):
            if 0 <= p + 2 * step < len(idx) and toks[idx[p + step]].text in _JOINS \
                    and idx[p + 2 * step] in in_mention:
                joined.append(toks[k].text)
                break
    known = [k for k in idx if k not in residual_idx and (k in in_mention or re.search(r"[^\W\d_]", toks[k].text))]
    unknown = [toks[k].text for k in residual_idx]
    if not joined and (len(unknown) < 2 or len(unknown) <= len(known)):
        return
    words = ", ".join(repr(w) for w in dict.fromkeys(joined or unknown))
    read = ", ".join(repr(norm[m.start:m.end]) for m in ms)
    why = ("it stands where an expression would (joined by 'and' / 'or')" if joined else
           f"most of the words were not understood (only {read} was); is it in another language? "
           "Instructions are read in English")
    raise InstructionError(
        f"could not understand {words} in {text.strip()[:200]!r}: {why}.{_typo_hint(joined or unknown)} "
        f"Name each expression with a known word, e.g. 'from sad to happy'. Known vocabulary: {vocabulary_summary(3)}")


def _typo_hint(words: List[str]) -> str:
    """" Did you mean 'happy'?" for misspelt vocabulary words (no model), else ""."""
    fixes = [f"{w!r} -> {f!r}" for w in dict.fromkeys(words) for f in [_typo_fix([w])[0][0]] if f != w]
    return f" Did you mean {'; '.join(fixes)}?" if fixes else ""


def _ignored_note(ignored: List[str], segments: List[Segment], text: str) -> str:
    """The warning for unknown words that a parse left out, with what it read instead."""
    read = " -> ".join(s.label if s.label != CUSTOM else "+".join(s.labels) or "facial actions" for s in segments)
    fixes = [f"did you mean {_typo_fix([w])[0][0]!r} for {w!r}" for w in ignored if _typo_fix([w])[0][0] != w]
    return (f"ignored {', '.join(repr(w) for w in ignored)} in {text.strip()[:200]!r} (not understood"
            f"{'; ' + '; '.join(fixes) if fixes else ''}); read as {read}. Reword the instruction if that is "
            "not what you meant (docs/INSTRUCTIONS.md).")


def _english_hint(words: List[str]) -> str:
    """A sentence for unknown words with accented letters ("alegría", "glücklich"): the
    vocabulary is English."""
    if any(not w.isascii() for w in words):
        return " Instructions are read in English (e.g. 'from sadness to happiness')."
    return ""


def _ends_going_back(toks: List[_Tok], mentions: Dict[int, _Mention]) -> bool:
    """True when "back" comes after the last expression named ("from happy to sad and back",
    "... then back again"): the clip returns to its first step. "then back to sad" names the
    step itself, so it does not count."""
    backs = [k for k, t in enumerate(toks) if t.text == "back"]
    return bool(backs and mentions) and backs[-1] > max(mentions)


def _guess_chunk(toks: List[_Tok], idx: List[int], norm: str, encoder: Any, encoder_obj: Any,
                 threshold: Optional[float], residual: List[str], cmods: List[_Mod]):
    """Resolve a chunk without known expressions: spelling first, then embeddings.

    Returns ``(segment or None, encoder object or None, failure message or None)``.
    """
    # a removal word ("stop smilling") is applied by the caller, not part of the expression
    words = [toks[k].text for k in idx if toks[k].kind not in ("covered", "removal", "post_removal")]
    fixed, ratio = _typo_fix(words) if len(words) <= 12 else (words, None)
    if ratio is not None:
        try:
            sub = parse_instruction(" ".join(fixed), encoder=None, allow_guess=False)
        except InstructionError:
            sub = None
        if sub is not None and len(sub.segments) == 1:
            s = sub.segments[0]
            return (Segment(label=s.label, intensity=s.intensity, aus=s.aus,
                            words=" ".join(norm[toks[idx[0]].start:toks[idx[-1]].end].split()),
                            mix=s.mix, guessed=True, similarity=round(ratio, 4)), None, None)
    if encoder is None or len(residual) > 6:
        return (None, None, None if encoder is not None else "encoder=None")
    try:
        enc = encoder_obj or _resolve_encoder(encoder)
        phrase = " ".join(residual)
        label, sim, near = nearest_expression(phrase, enc)
    except Exception as e:  # AssetError, broken model...: no embedding fallback
        return (None, None, f"{type(e).__name__}: {e}")
    thr = threshold if threshold is not None else _threshold_for(enc.name)
    if sim < thr:
        return (None, enc, None)
    logger.info("instruction words %r read as %r (%s, cosine %.2f)", phrase, near, label, sim)
    k0 = next(k for k in idx if toks[k].text in residual)
    m = _Mention(k0, toks[idx[0]].start, toks[idx[-1]].end, {label: 1.0}, {}, guessed=True,
                 similarity=round(sim, 4))
    return (_segment([m], cmods, [], norm), enc, None)


def _clip(x: float) -> float:
    return float(min(INTENSITY_RANGE[1], max(INTENSITY_RANGE[0], x)))


def _attach(ms: List[_Mention], cmods: List[_Mod], csides: List[Tuple[int, str]]) -> None:
    """Give each modifier to the next mention within 4 tokens, else (if it may follow) to the
    previous mention; side words likewise, to actions with a left/right variant."""
    order = sorted(ms, key=lambda m: m.index)

    def target(pos: int, may_follow: bool) -> Optional[_Mention]:
        after = [m for m in order if m.index > pos]
        if after and after[0].index - pos <= 4:
            return after[0]
        before = [m for m in order if m.index < pos]
        if before and may_follow:
            return before[-1]
        return after[0] if after else None

    for mod in cmods:
        m = target(mod.index, mod.may_follow)
        if m is None:
            continue
        if mod.how == "set":
            m.number = mod.value
        else:
            m.intensity *= mod.value
    for pos, side in csides:
        m = target(pos, True)
        if m is not None and m.sided and m.side is None:
            m.side = side


def _apply_side(aus: Dict[str, float], side: Optional[str]) -> Dict[str, float]:
    if side is None:
        return aus
    out: Dict[str, float] = {}
    for au, v in aus.items():
        base = au[:-1] if au[-1] in "LR" else au
        out[base + side if base in SIDED_AUS else au] = v
    return out


def _segment(ms: List[_Mention], cmods: List[_Mod], csides, norm: str) -> Segment:
    _attach(ms, cmods, csides)
    mix: Dict[str, float] = {}
    aus: Dict[str, float] = {}
    strengths = []
    for m in sorted(ms, key=lambda m: m.index):
        s = _clip(m.number if m.number is not None else m.intensity)
        if m.mix:
            strengths.append(s)
            tot = sum(m.mix.values())
            for lab, w in m.mix.items():
                mix[lab] = mix.get(lab, 0.0) + s * w / tot
        for au, v in _apply_side(m.aus, m.side).items():
            val = round(_clip(v * s), 6) if v > 0 else 0.0
            aus[au] = max(aus[au], val) if (aus.get(au, 0.0) > 0 and val > 0) else val
    intensity = max(strengths) if strengths else 1.0
    total = sum(mix.values())
    if "neutral" in mix and len(mix) > 1 and total > 0:
        # "happy and calm": neutral in a blend only weakens the others
        intensity *= 1.0 - mix.pop("neutral") / total
        total = sum(mix.values())
    if strengths and total <= 0:  # every expression at 0%: a neutral face
        mix, intensity = {"neutral": 1.0}, 1.0
    elif total > 0:
        mix = {k: round(v / total, 6) for k, v in mix.items()}
    if not mix and not aus:  # "relax the face"
        mix = {"neutral": 1.0}
    label = next(iter(mix)) if len(mix) == 1 else CUSTOM
    lo = min([m.start for m in ms] + [d.start for d in cmods])
    hi = max([m.end for m in ms] + [d.end for d in cmods])
    sims = [m.similarity for m in ms if m.similarity is not None]
    return Segment(label=label, intensity=round(_clip(intensity), 6), aus=aus,
                   words=" ".join(norm[lo:hi].split()), mix=mix,
                   guessed=any(m.guessed for m in ms), similarity=min(sims) if sims else None)


def _scale_segment(seg: Segment, cmods: List[_Mod], norm: str) -> Segment:
    val = seg.intensity
    for mod in cmods:
        val = mod.value if mod.how == "set" else val * mod.value
    words = seg.words + ", " + ", ".join(mod.word for mod in cmods)
    return Segment(label=seg.label, intensity=round(_clip(val), 6), aus=seg.aus, words=words,
                   mix=seg.mix, guessed=seg.guessed, similarity=seg.similarity)


def _order(steps: List[Tuple[str, Segment]]) -> List[Segment]:
    """Apply "via" (goes before the step preceding it) and "after" (swaps with the previous)."""
    out: List[Segment] = []
    pending_via: List[Segment] = []
    for place, seg in steps:
        if place == VIA and len(out) >= 2:
            out.insert(len(out) - 1, seg)
        elif place == VIA:
            pending_via.append(seg)
        elif place == PREV and out:
            out.insert(len(out) - 1, seg)
        else:
            out.append(seg)
            if pending_via and len(out) >= 2:  # "via neutral from A to B"
                for v in pending_via:
                    out.insert(len(out) - 1, v)
                pending_via = []
    return out + pending_via
