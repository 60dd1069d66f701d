"""The parser's lexicon: tokenisation and normalisation, step separators, negations, filler words,
and the phrase tables of :mod:`flame_transit.text.vocabulary` compiled once into lookups
(:func:`_lex`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Dict, List, Optional, Tuple

from .vocabulary import (
    ACTION_VERBS,
    COMPOUND_WORDS,
    EXPRESSIONS,
    FACE_PARTS,
    INTENSITY_WORDS,
    SIDE_WORDS,
    SINGLE_WORD_ACTIONS,
    WORD_AUS,
    expression_phrases,
)

_ARROWS = ("->", "-->", "=>", "==>", "~>", "→", "⟶", "➔", "➜", "➝", "➞", "⇒", "⟹", "↦", ">", ">>")
#: a number token: "2", "0.5", "1e9" (scientific notation is one token, not "1", "e", "9")
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?")
_TOKEN_RE = re.compile(
    r"-->|==>|->|=>|~>|>>|\bau ?\d+[lr]?\b|" + _NUMBER_RE.pattern + r"|[^\W\d_]+(?:'[^\W\d_]+)*|[^\w\s]",
    re.UNICODE)
_AU_RE = re.compile(r"au ?(\d+)([lr]?)")
_HYPHEN_RE = re.compile(r"(?<=[^\W\d_])[-‐‑‒](?=[^\W\d_])", re.UNICODE)


def _tokens(text: str) -> List[Tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


@functools.lru_cache(maxsize=None)
def _right_arrow(ch: str) -> bool:
    """Any rightwards arrow character (➡ the emoji, ⇨, ⮕, ...), not a two-way one."""
    name = unicodedata.name(ch, "")
    return "ARROW" in name and "RIGHTWARDS" in name and "LEFT" not in name


#: ASCII emoticons (after lower-casing) read as the emoji of their expression
_EMOTICONS = {
    ">:-(": "😠", ">:(": "😠", ":'-(": "😢", ":'(": "😢", ":-)": "🙂", ":)": "🙂", "(:": "🙂", "=)": "🙂",
    ":-d": "😀", ":d": "😀", ":-(": "🙁", ":(": "🙁", "):": "🙁", "=(": "🙁", ":-o": "😮", ":o": "😮",
    ":-|": "😐", ":|": "😐",
}
_EMOTICON_RE = re.compile(
    r"(?<![\w:;=>)(])(?:" + "|".join(re.escape(e) for e in sorted(_EMOTICONS, key=len, reverse=True)) + r")(?![\w)(])")


def _norm(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).lower()
    # every rightwards arrow separates steps like "→" (one character for one)
    t = "".join("→" if ord(c) > 0x2000 and _right_arrow(c) else c for c in t)
    # ":)" -> "🙂 ": an emoticon becomes its emoji, padded so that offsets stay put
    t = _EMOTICON_RE.sub(lambda m: _EMOTICONS[m.group(0)] + " " * (len(m.group(0)) - 1), t)
    t = t.replace("’", "'").replace("‘", "'").replace("`", "'")
    t = t.replace("\u2212", "-")  # the minus sign: "happy at −0.5" is a negative number too
    # a line break ends a step, like ";" (one character for one, so offsets stay put)
    t = t.replace("\r", ";").replace("\n", ";")
    return _HYPHEN_RE.sub(" ", t)


def _key(phrase: str) -> Tuple[str, ...]:
    return tuple(t for t, _, _ in _tokens(_norm(phrase)))

NEXT, VIA, PREV = "next", "via", "prev"
_SEPARATORS: Dict[str, str] = {
    **{a: NEXT for a in _ARROWS},
    ",": NEXT, ";": NEXT, ".": NEXT, "!": NEXT, "?": NEXT, ":": NEXT, "–": NEXT, "—": NEXT,
    "-": NEXT, "|": NEXT,
    "then": NEXT, "and then": NEXT, "and later": NEXT, "after that": NEXT, "afterwards": NEXT,
    "afterward": NEXT, "after which": NEXT, "followed by": NEXT, "next": NEXT,
    "finally": NEXT, "lastly": NEXT, "later": NEXT, "eventually": NEXT, "subsequently": NEXT,
    "from": NEXT, "to": NEXT, "into": NEXT, "towards": NEXT, "toward": NEXT, "until": NEXT,
    "till": NEXT, "onto": NEXT,
    "start": NEXT, "starts": NEXT, "starting": NEXT, "started": NEXT, "begin": NEXT,
    "begins": NEXT, "beginning": NEXT, "began": NEXT, "initially": NEXT, "at first": NEXT,
    "first": NEXT, "at the start": NEXT, "at the beginning": NEXT, "in the beginning": NEXT,
    "end": NEXT, "ends": NEXT, "ending": NEXT, "ended": NEXT, "finish": NEXT,
    "finishes": NEXT, "finishing": NEXT, "at the end": NEXT, "in the end": NEXT,
    "become": NEXT, "becomes": NEXT, "becoming": NEXT, "became": NEXT, "before": NEXT,
    "via": VIA, "through": VIA, "passing through": VIA, "by way of": VIA, "going through": VIA,
    "after": PREV,
}
# separators after which an unknown word must be an expression ("from sad to <unknown>")
_SLOT_SEPS = {k for k, v in _SEPARATORS.items() if k not in {",", ";", ".", "!", "?", ":", "-", "|"}}
_NEGATIONS = {"not", "no", "never", "isn't", "aren't", "don't", "doesn't", "didn't", "won't",
              "nor", "neither", "non", "anti", "shouldn't", "mustn't", "cannot",
              "can't", "isnt", "dont", "doesnt"}
# words that take an expression away ("stop smiling", "wipe that smile off", "no more tears"): the
# expression they name is where the step starts, and it ends neutral (or in the step's other words)
_REMOVALS = {"stop", "stops", "stopping", "stopped", "quit", "quits", "quitting", "cease", "ceases",
             "ceasing", "ceased", "no longer", "no more", "without", "lose", "loses", "losing",
             "drop", "drops", "dropping", "wipe", "wipes", "wiping", "wiped", "rid", "remove",
             "removes", "removing", "erase", "erases", "erasing", "ditch", "ditches", "ditching",
             "shake off", "shakes off", "shaking off", "banish", "banishes", "banishing"}
# the same after the expression ("the smile fades away", "her anger melts away"): the expression
# before them (in their step) is where the step starts
_POST_REMOVALS = {f"{verb} {tail}".strip() for verb in (
    "fade", "fades", "fading", "faded", "melt", "melts", "melting", "melted", "go", "goes", "going",
    "gone", "went", "disappear", "disappears", "disappearing", "disappeared", "vanish", "vanishes",
    "vanishing", "vanished", "wear off", "wears off", "wearing off", "wore off", "worn off")
    for tail in ("", "away", "out")} - {"go", "goes", "going", "gone", "went"}  # bare "go" is filler
# idioms rewritten to plain instructions before parsing: (regex, replacement)
_IDIOMS = ((r"\b(?:frown|frowns) upside[ -]down\b", "from a frown to a smile"),)
# words that join a blend ("sad and happy"): an unknown word beside one stands where an expression would
_JOINS = {"and", "or", "&", "plus"}
# words after which a whole number is an intensity ("happy at 2", "intensity 1"); elsewhere a bare
# integer ("in 3 seconds") is not read
_NUMBER_CUES = {"at", "intensity", "level", "strength", "degree"}
_FILLER = set("""
a an the this that these those it its it's he him his she her hers they them their theirs i me
my mine we us our you your yours one ones someone somebody person people guy man woman girl boy
lady gentleman kid child baby subject character avatar model mesh head face faces facial
expression expressions emotion emotions mood feeling feelings look looks looking looked appearance
state sentiment reaction portrait photo picture image video animation clip sequence frame frames
target source version kind type sort way state something thing
be is are was were been being am 's turn turns turned turning change changes changed changing
transform transforms transformed transforming modify modifies modified modifying replace
replaces replaced replacing make makes made making go goes went going gone get gets got getting
let lets have has had having show shows showing showed shown see sees display displays
displaying give gives giving gave put set morph morphs morphing morphed shift shifts shifting
shifted switch switches switching switched move moves moving moved transition transitions
transitioning transitioned animate animates animating animated convert converts converting
converted alter alters altering altered adjust adjusts adjusting adjusted edit edits editing
edited evolve evolves evolving evolved take takes taking took render renders rendering rendered
want wants wanted like likes would could can should will shall may might must do does did
please kindly try need needs appear appears appearing appeared seem seems seeming seemed feel
feels express expresses expressing keep keeps stay stays remain remains gradually slowly
quickly smoothly suddenly softly now again back return returns returning returned come comes
coming came out over around get go and or but with of in on at by for as than such while when
if because just only also too even still more much most least almost nearly about
approximately roughly thanks thank thx ok okay hey hi hello yes sure percent per cent
intensity level degree strength amount there here what which who whose whom how why where
gradual smooth slow fast quick transition generate create produce animate apply give wearing
wear wears wore exhibit exhibits exhibiting exhibited portray portrays portraying depict
depicts depicting illustrate showcase expressing expressed making gently into mode
""".split())


class _Lexicon:
    """Phrase tables for longest-match scanning (built once)."""

    def __init__(self) -> None:
        self.expr: Dict[Tuple[str, ...], Tuple[str, Dict[str, float]]] = {}
        for phrase, label in expression_phrases():
            k = _key(phrase)
            if k and k not in self.expr:
                self.expr[k] = (label, dict(WORD_AUS.get(phrase, {})))
            # "a smile" -> also "smile"; article-less forms are matched anyway
        for label in EXPRESSIONS:
            self.expr.setdefault(_key(label), (label, {}))
        self.compound = {_key(w): dict(m) for w, m in COMPOUND_WORDS.items()}
        self.action = {_key(w): dict(a) for w, a in SINGLE_WORD_ACTIONS.items()}
        self.intensity = {_key(w): v for w, v in INTENSITY_WORDS.items()}
        self.side = {_key(w): s for w, s in SIDE_WORDS.items()}
        self.sep = {_key(w): s for w, s in _SEPARATORS.items()}
        self.neg = {_key(w): True for w in _NEGATIONS}
        self.removal = {_key(w): True for w in _REMOVALS}
        self.post_removal = {_key(w): True for w in _POST_REMOVALS}
        self.part = {}
        for part, phrases in FACE_PARTS.items():
            for p in phrases:
                self.part.setdefault(_key(p), part)
        self.verb: Dict[Tuple[str, ...], List[str]] = {}
        for cls, words in ACTION_VERBS.items():
            for w in words:
                self.verb.setdefault(_key(w), []).append(cls)
        self.percent = {_key("%"), _key("percent"), _key("per cent"), _key("pct")}
        tables = [self.expr, self.compound, self.action, self.intensity, self.side, self.sep,
                  self.part, self.verb]
        self.maxlen = max(len(k) for t in tables for k in t)
        self.known_words = {w for t in tables + [self.neg, self.removal, self.post_removal] for k in t for w in k}
        # single words that typos may be corrected to (content words only)
        self.typo_targets = sorted({k[0] for t in (self.expr, self.compound, self.action)
                                    for k in t if len(k) == 1 and len(k[0]) >= 4})

_LEX: Optional[_Lexicon] = None


def _lex() -> _Lexicon:
    global _LEX
    if _LEX is None:
        _LEX = _Lexicon()
    return _LEX
