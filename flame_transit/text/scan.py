"""Scanning tokens into mentions: expression words, facial actions (verb + face part in either
order), intensity modifiers and side words, claimed longest match first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..errors import InstructionError
from .lexicon import _AU_RE, _FILLER, _NUMBER_CUES, _NUMBER_RE, _lex
from .vocabulary import AU_NAMES, INTENSITY_RANGE, PART_ACTIONS, SIDED_AUS


@dataclass


class _Tok:
    text: str
    start: int
    end: int
    kind: str = ""          # "" (free), sep, part, verb, expr, compound, action, intensity,
    value: Any = None       # number, side, neg, covered (inside a phrase), paired
    span: int = 1           # tokens covered by the phrase starting here
    group: int = -1         # phrase id


def _match(toks: List[_Tok], i: int, table: Mapping[Tuple[str, ...], Any], maxlen: int) -> int:
    """Length of the longest phrase of ``table`` starting at ``i`` over free tokens, or 0."""
    # a phrase may only cover the run of free tokens from i: find it once, then try the
    # prefixes of its words from the longest (this runs for every token of every instruction)
    if toks[i].text not in _first_words(table):
        return 0
    limit = min(maxlen, len(toks) - i)
    free = 0
    while free < limit and toks[i + free].kind == "":
        free += 1
    words = tuple(t.text for t in toks[i:i + free])
    for n in range(free, 0, -1):
        if words[:n] in table:
            return n
    return 0


#: id(table) -> (table, the words its phrases start with): the lexicon builds its tables once
#: (lexicon._lex) and never changes them; most tokens start no phrase and stop at this check
_FIRST_WORDS: Dict[int, Tuple[Mapping[Tuple[str, ...], Any], frozenset]] = {}


def _first_words(table: Mapping[Tuple[str, ...], Any]) -> frozenset:
    entry = _FIRST_WORDS.get(id(table))
    if entry is None or entry[0] is not table:
        entry = (table, frozenset(p[0] for p in table if p))
        _FIRST_WORDS[id(table)] = entry
    return entry[1]


def _phrase(toks: List[_Tok], i: int, n: int) -> Tuple[str, ...]:
    return tuple(t.text for t in toks[i:i + n])


def _claim(toks: List[_Tok], i: int, n: int, kind: str, value: Any, gid: int) -> None:
    for k in range(i + 1, i + n):
        toks[k].kind, toks[k].value, toks[k].group, toks[k].span = "covered", None, gid, 0
    toks[i].kind, toks[i].value, toks[i].span, toks[i].group = kind, value, n, gid


def _release(toks: List[_Tok], i: int) -> None:
    for k in range(i, i + max(toks[i].span, 1)):
        toks[k].kind, toks[k].value, toks[k].span, toks[k].group = "", None, 1, -1


@dataclass


class _Mention:
    index: int                    # first token
    start: int                    # character span in the normalised text
    end: int
    mix: Dict[str, float]         # label weights (unnormalised); empty for actions
    aus: Dict[str, float]         # AU targets at intensity 1
    sided: bool = False
    intensity: float = 1.0
    number: Optional[float] = None
    side: Optional[str] = None
    guessed: bool = False
    similarity: Optional[float] = None


@dataclass


class _Mod:
    index: int
    start: int
    end: int
    how: str                      # "mul" or "set"
    value: float
    word: str

    @property
    def may_follow(self) -> bool:
        """Whether this modifier may refer back to the mention before it ("happy, slightly")."""
        return self.how == "set" or self.word.endswith("ly") or self.word.startswith("a ")

_CONJ = {"and", "&", "plus", ",", "the", "both", "his", "her", "their", "its", "my", "your"}


def _classify(toks: List[_Tok]) -> None:
    """Phase A: separators, then face parts, then action verbs (longest match)."""
    lx = _lex()
    gid = 0
    for kind, table in (("sep", lx.sep), ("part", lx.part), ("verb", lx.verb)):
        i = 0
        while i < len(toks):
            n = _match(toks, i, table, lx.maxlen)
            if n:
                rival = max(_match(toks, i, lx.expr, lx.maxlen), _match(toks, i, lx.action, lx.maxlen),
                            _match(toks, i, lx.compound, lx.maxlen))
                if kind == "sep":
                    rival = max(rival, _match(toks, i, lx.intensity, lx.maxlen),
                                _match(toks, i, lx.side, lx.maxlen))
                if n >= rival or kind == "verb":
                    value = table[_phrase(toks, i, n)]
                    _claim(toks, i, n, kind, list(value) if kind == "verb" else value, gid)
                    gid += 1
                    i += n
                    continue
            i += 1


def _pair_actions(toks: List[_Tok]) -> List[_Mention]:
    """Pair each face part with an action verb before it (preferred) or after it; "raise the
    brows and cheeks" reuses the verb. Unpaired verbs and parts are released."""
    n = len(toks)
    pairs: Dict[int, Tuple[str, Optional[int]]] = {}   # part index -> (verb class, verb index)
    used_verbs = set()

    def verb_at(j: int, part: str) -> Optional[str]:
        t = toks[j]
        if t.kind == "verb" and j not in used_verbs:
            return next((c for c in t.value if (c, part) in PART_ACTIONS), None)
        return None

    for i, t in enumerate(toks):
        if t.kind != "part":
            continue
        part, found = t.value, None
        j, steps = i - 1, 0
        while j >= 0 and steps < 5 and found is None:
            tj = toks[j]
            if tj.kind == "covered":
                j -= 1
                continue
            if tj.kind == "sep":
                break
            if tj.kind == "part":
                if j in pairs and all(toks[k].text in _CONJ or toks[k].kind == "covered"
                                      for k in range(j + max(tj.span, 1), i)):
                    cls = pairs[j][0]
                    if (cls, part) in PART_ACTIONS:
                        found = (cls, None)
                break
            cls = verb_at(j, part)
            if cls:
                found = (cls, j)
            steps += 1
            j -= 1
        j, steps = i + max(t.span, 1), 0
        while found is None and j < n and steps < 4:
            tj = toks[j]
            if tj.kind == "covered":
                j += 1
                continue
            if tj.kind in ("sep", "part"):
                break
            cls = verb_at(j, part)
            if cls:
                found = (cls, j)
            steps += 1
            j += 1
        if found is not None:
            pairs[i] = found
            if found[1] is not None:
                used_verbs.add(found[1])

    mentions = []
    for i, (cls, vj) in pairs.items():
        idx = [i] + ([vj] if vj is not None else [])
        lo, hi = min(idx), max(idx)
        side = None
        lx = _lex()
        for k in range(max(0, lo - 3), min(n, hi + max(toks[hi].span, 1) + 3)):
            w = _match(toks, k, lx.side, lx.maxlen)
            if w:
                side = lx.side[_phrase(toks, k, w)]
                _claim(toks, k, w, "side_used", side, -1)
                break
        end_tok = hi + max(toks[hi].span, 1) - 1
        mentions.append(_Mention(lo, toks[lo].start, toks[end_tok].end, {},
                                 dict(PART_ACTIONS[(cls, toks[i].value)]), sided=True, side=side))
        for k in idx:
            toks[k].kind = "paired"
    for i, t in enumerate(toks):
        if t.kind in ("verb", "part"):
            _release(toks, i)
    return mentions


def _scan(toks: List[_Tok], mentions: Dict[int, _Mention], mods: List[_Mod],
          sides: List[Tuple[int, str]], negs: List[int], removals: Optional[List[int]] = None) -> None:
    """Phase B: expressions, blends, single-word actions, intensity, numbers, sides, negations and
    removal words ("stop", "no more": their token indices go to ``removals``)."""
    lx = _lex()
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.kind != "":
            i += 1
            continue
        best = None
        for kind, table in (("action", lx.action), ("compound", lx.compound), ("expr", lx.expr),
                            ("intensity", lx.intensity), ("side", lx.side), ("neg", lx.neg),
                            ("removal", lx.removal), ("post_removal", lx.post_removal)):
            n = _match(toks, i, table, lx.maxlen)
            if n and (best is None or n > best[1]):
                best = (kind, n, table)
        au = _AU_RE.fullmatch(t.text)
        if best is None and au:
            name = f"AU{int(au.group(1))}{au.group(2).upper()}"
            if name not in AU_NAMES:
                raise InstructionError(f"{name} is not an action unit of the head; available: "
                                       f"{', '.join(AU_NAMES)} (AU26 = jaw drop).")
            mentions[i] = _Mention(i, t.start, t.end, {}, {name: 1.0}, sided=name[-1] not in "LR"
                                   and name in SIDED_AUS)
            _claim(toks, i, 1, "action", None, -1)
            i += 1
            continue
        if best is None:
            width = _number(toks, i) if _NUMBER_RE.fullmatch(t.text) else 0
            if width:
                val = float(t.text) / (100.0 if width > 1 else 1.0)
                mods.append(_Mod(i, t.start, toks[i + width - 1].end, "set", val, t.text))
                _claim(toks, i, width, "number", val, -1)
                i += width
                continue
            i += 1
            continue
        kind, n, table = best
        ph = _phrase(toks, i, n)
        start, end = toks[i].start, toks[i + n - 1].end
        if kind == "action":
            mentions[i] = _Mention(i, start, end, {}, dict(table[ph]), sided=True)
        elif kind == "compound":
            mentions[i] = _Mention(i, start, end, dict(table[ph]), {})
        elif kind == "expr":
            label, extra = table[ph]
            mentions[i] = _Mention(i, start, end, {label: 1.0}, dict(extra))
        elif kind == "intensity":
            mods.append(_Mod(i, start, end, "mul", float(table[ph]), " ".join(ph)))
        elif kind == "side":
            sides.append((i, table[ph]))
        elif kind == "neg":
            negs.append(i)
        elif kind in ("removal", "post_removal") and removals is not None:
            removals.append(i)
        _claim(toks, i, n, kind, None, -1)
        i += n


def _number(toks: List[_Tok], i: int) -> int:
    """Tokens of the intensity that the number token ``toks[i]`` starts (0: not an intensity).

    ``50%`` / ``50 percent`` / ``50 per cent`` (2-3 tokens), a decimal or ``1e9`` (1), a whole
    number after "at" / "intensity" ("happy at 2", 1). Values above the range are clipped later
    (with a warning); a minus sign, or a whole number above the range (its scale is unclear: 80
    may mean 80 %), raises :class:`InstructionError`.
    """
    t = toks[i]
    prev = toks[i - 1] if i else None
    if prev is not None and prev.text in ("-", "–") and prev.end == t.start and \
            (i == 1 or toks[i - 2].end < prev.start or not re.search(r"\w", toks[i - 2].text)):
        # " -0.5", "(-0.5)": a sign, not a step separator ("sad-0.5" stays one)
        raise InstructionError(
            f"negative intensity '-{t.text}': intensities run from "
            f"{INTENSITY_RANGE[0]:g} to {INTENSITY_RANGE[1]:g}; for the opposite, name the "
            "other expression (e.g. 'sad' rather than 'happy at -0.5').")
    nxt = [x.text for x in toks[i + 1:i + 3]]
    if nxt[:1] == [","] and len(nxt) == 2 and nxt[1].isdigit() and toks[i + 1].start == t.end \
            and toks[i + 2].start == toks[i + 1].end:  # "1,5" would read as 1, then a stray 5
        raise InstructionError(f"'{t.text},{nxt[1]}': write decimals with a point ('{t.text}.{nxt[1]}'); "
                               f"intensities run from {INTENSITY_RANGE[0]:g} to {INTENSITY_RANGE[1]:g}.")
    if nxt[:1] and nxt[0] in ("%", "percent", "pct"):
        return 2
    if nxt[:2] == ["per", "cent"]:
        return 3
    if not t.text.isdigit():  # "0.5", "1e9"
        return 1
    cue = prev is not None and (prev.text in _NUMBER_CUES or (
        prev.text in ("of", "=") and i >= 2 and toks[i - 2].text in _NUMBER_CUES))
    after = toks[i + 1] if i + 1 < len(toks) else None
    lx = _lex()
    if not cue or _clock(toks, i) or (after is not None and after.kind == "" and re.search(r"[^\W\d_]", after.text)
                                       and after.text not in lx.known_words and after.text not in _FILLER):
        return 0  # "at 12:00", "at 3 pm", "in 3 seconds": not an intensity
    if float(t.text) > INTENSITY_RANGE[1]:
        raise InstructionError(
            f"intensity {prev.text} {t.text!r} is outside {INTENSITY_RANGE[0]:g} to {INTENSITY_RANGE[1]:g}: "
            f"write a percentage ('{t.text}%') or a number from {INTENSITY_RANGE[0]:g} to "
            f"{INTENSITY_RANGE[1]:g} (1 = a clear expression, e.g. 'at 0.8').")
    return 1


def _clock(toks: List[_Tok], i: int) -> bool:
    """Whether the number ``toks[i]`` is part of a clock time ("12:00")."""
    t = toks[i]
    return (i + 1 < len(toks) and toks[i + 1].text == ":" and toks[i + 1].start == t.end) or \
        (i >= 1 and toks[i - 1].text == ":" and toks[i - 1].end == t.start)
