"""Parse a free-text instruction into a sequence of expression targets.

The language (documented with examples in ``docs/INSTRUCTIONS.md``):

* steps are separated by ``from ... to ...``, ``then``, arrows (``->``, ``→``), commas,
  ``start ... end ...``, ``via`` / ``through`` (inserted before the last step), ``after``
  (the step before it comes second), ...;
* a step names one expression ("disgusted", "happiness", "grossed out"), a blend ("happy and
  surprised", "bittersweet"), facial actions ("raise the eyebrows", "smirk", "open the mouth"),
  or an expression with actions ("happy with raised eyebrows");
* intensity words ("slightly", "very", "50%") scale the mention they precede (or follow);
* unknown words fall back to a close spelling of a vocabulary word (no model needed) and then to
  the nearest expression by text embedding (cosine threshold); otherwise
  :class:`~flame_transit.errors.InstructionError` lists the vocabulary.

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

import difflib
import logging
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..errors import InstructionError
from .templates import canonical_instruction
from .vocabulary import (
    ACTION_VERBS,
    AU_NAMES,
    COMPOUND_WORDS,
    CUSTOM,
    EXPRESSIONS,
    FACE_PARTS,
    INTENSITY_RANGE,
    INTENSITY_WORDS,
    PART_ACTIONS,
    SIDE_WORDS,
    SIDED_AUS,
    SINGLE_WORD_ACTIONS,
    WORD_AUS,
    expression_phrases,
    vocabulary_summary,
)

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
# Cosine similarity an unknown word needs to its nearest vocabulary phrase, per encoder family.
EMBEDDING_THRESHOLDS: Dict[str, float] = {"minilm": 0.6, "clip": 0.9, "hash": 0.6, "": 0.6}
TYPO_CUTOFF = 0.84

_LABELS = set(EXPRESSIONS) | {CUSTOM}


# ------------------------------------------------------------------------------------------
# result types
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One expression target of an instruction.

    Attributes:
        label: one of :data:`~flame_transit.text.vocabulary.EXPRESSIONS`, or ``"custom"`` for a
            blend of several expressions or facial actions only.
        intensity: strength of the expression part (``mix``); 1.0 = a clear, typical
            expression, range [0, 2]. Pure facial-action segments have 1.0.
        aus: extra action-unit targets (names from
            :data:`~flame_transit.text.vocabulary.AU_NAMES`; ``"AU26"`` = jaw drop), values
            already scaled by their own intensity words; 0.0 means "make sure it is off".
        words: the words of the instruction this segment came from.
        mix: ``label -> weight`` (weights sum to 1) of the expression part; ``{label: 1.0}``
            for a single expression, several entries for a blend, ``{}`` for actions only.
        guessed: some word was resolved approximately (spelling or embedding).
        similarity: the similarity of that guess (difflib ratio or cosine), else None.
    """

    label: str
    intensity: float = 1.0
    aus: Dict[str, float] = field(default_factory=dict)
    words: str = ""
    mix: Dict[str, float] = field(default_factory=dict)
    guessed: bool = False
    similarity: Optional[float] = None

    def __post_init__(self) -> None:
        if self.label not in _LABELS:
            raise InstructionError(f"unknown label {self.label!r}; use one of {sorted(_LABELS)}")
        if not (isinstance(self.intensity, (int, float)) and math.isfinite(self.intensity)
                and INTENSITY_RANGE[0] <= self.intensity <= INTENSITY_RANGE[1]):
            raise InstructionError(f"intensity {self.intensity!r} outside {INTENSITY_RANGE}")
        for au in self.aus:
            if au not in AU_NAMES:
                raise InstructionError(f"unknown action unit {au!r}; known: {', '.join(AU_NAMES)}")
        for lab in self.mix:
            if lab not in EXPRESSIONS:
                raise InstructionError(f"unknown expression {lab!r} in mix")
        if not self.mix and self.label != CUSTOM:
            object.__setattr__(self, "mix", {self.label: 1.0})
        if self.mix and abs(sum(self.mix.values()) - 1.0) > 1e-6:
            total = sum(self.mix.values())
            object.__setattr__(self, "mix", {k: v / total for k, v in self.mix.items()})
        if self.label == CUSTOM and not self.mix and not self.aus:
            raise InstructionError("a custom segment needs a mix or action units")

    @property
    def labels(self) -> Tuple[str, ...]:
        """The expressions of the blend, strongest first."""
        return tuple(sorted(self.mix, key=lambda k: -self.mix[k]))

    @property
    def dominant(self) -> Optional[str]:
        """The strongest expression of the mix (None for actions only)."""
        return self.labels[0] if self.mix else None

    def to_dict(self) -> Dict[str, Any]:
        return {"label": self.label, "intensity": self.intensity, "aus": dict(self.aus),
                "words": self.words, "mix": dict(self.mix), "guessed": self.guessed,
                "similarity": self.similarity}


@dataclass(frozen=True)
class ParsedInstruction:
    """The result of :func:`parse_instruction`.

    Attributes:
        text: the instruction as given.
        segments: expression targets in temporal order (one for a single target such as
            "make this face happy": the caller decides the start).
        ignored: words that were neither vocabulary nor filler and were not needed.
    """

    text: str
    segments: List[Segment]
    ignored: Tuple[str, ...] = ()

    @property
    def labels(self) -> List[str]:
        return [s.label for s in self.segments]

    @property
    def is_transition(self) -> bool:
        return len(self.segments) >= 2

    def __len__(self) -> int:
        return len(self.segments)

    def __iter__(self):
        return iter(self.segments)

    def canonical_text(self) -> str:
        """The instruction rewritten with the paper's first template and canonical words, using
        each segment's strongest expression ("neutral" for actions only). Texts of two
        expressions hit the shipped embedding cache.

        Example:
            >>> parse_instruction("go from grossed out to joyful").canonical_text()
            'Turn this face from disgust to happiness.'
        """
        return canonical_instruction([s.dominant or "neutral" for s in self.segments])

    def to_dict(self) -> Dict[str, Any]:
        return {"text": self.text, "segments": [s.to_dict() for s in self.segments],
                "ignored": list(self.ignored)}


# ------------------------------------------------------------------------------------------
# lexicon
# ------------------------------------------------------------------------------------------

_ARROWS = ("->", "-->", "=>", "==>", "~>", "→", "⟶", "➔", "➜", "➝", "➞", "⇒", "⟹", "↦", ">", ">>")
_TOKEN_RE = re.compile(
    r"-->|==>|->|=>|~>|>>|\bau ?\d+[lr]?\b|\d+(?:\.\d+)?|[^\W\d_]+(?:'[^\W\d_]+)*|[^\w\s]",
    re.UNICODE)
_AU_RE = re.compile(r"au ?(\d+)([lr]?)")
_HYPHEN_RE = re.compile(r"(?<=[^\W\d_])[-‐‑‒](?=[^\W\d_])", re.UNICODE)


def _tokens(text: str) -> List[Tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def _norm(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).lower()
    t = t.replace("’", "'").replace("‘", "'").replace("`", "'")
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
              "without", "stop", "stops", "stopping", "quit", "no longer", "nor", "neither",
              "cease", "non", "anti", "shouldn't", "mustn't", "cannot",
              "can't", "isnt", "dont", "doesnt"}

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
        self.known_words = {w for t in tables + [self.neg] for k in t for w in k}
        # single words that typos may be corrected to (content words only)
        self.typo_targets = sorted({k[0] for t in (self.expr, self.compound, self.action)
                                    for k in t if len(k) == 1 and len(k[0]) >= 4})


_LEX: Optional[_Lexicon] = None


def _lex() -> _Lexicon:
    global _LEX
    if _LEX is None:
        _LEX = _Lexicon()
    return _LEX


# ------------------------------------------------------------------------------------------
# scanning
# ------------------------------------------------------------------------------------------


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
    for n in range(min(maxlen, len(toks) - i), 0, -1):
        if all(t.kind == "" for t in toks[i:i + n]):
            if tuple(t.text for t in toks[i:i + n]) in table:
                return n
    return 0


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
          sides: List[Tuple[int, str]], negs: List[int]) -> None:
    """Phase B: expressions, blends, single-word actions, intensity, numbers, sides, negations."""
    lx = _lex()
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.kind != "":
            i += 1
            continue
        best = None
        for kind, table in (("action", lx.action), ("compound", lx.compound), ("expr", lx.expr),
                            ("intensity", lx.intensity), ("side", lx.side), ("neg", lx.neg)):
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
            if re.fullmatch(r"\d+(?:\.\d+)?", t.text):
                val = float(t.text)
                prev = toks[i - 1] if i else None
                if prev is not None and prev.text == "-" and prev.end == t.start and \
                        (i == 1 or toks[i - 2].end < prev.start):  # " -0.5": a sign, not a separator
                    raise InstructionError(
                        f"negative intensity '-{t.text}': intensities run from "
                        f"{INTENSITY_RANGE[0]:g} to {INTENSITY_RANGE[1]:g}; for the opposite, name the "
                        "other expression (e.g. 'sad' rather than 'happy at -0.5').")
                nxt = [x.text for x in toks[i + 1:i + 3]]
                width = 0
                if nxt[:1] and nxt[0] in ("%", "percent", "pct"):
                    width, val = 2, val / 100.0
                elif nxt[:2] == ["per", "cent"]:
                    width, val = 3, val / 100.0
                elif "." in t.text:
                    width = 1
                if width:  # any size: values beyond INTENSITY_RANGE are clipped later
                    end = toks[i + width - 1].end
                    mods.append(_Mod(i, t.start, end, "set", val, t.text))
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
        _claim(toks, i, n, kind, None, -1)
        i += n


# ------------------------------------------------------------------------------------------
# the parser
# ------------------------------------------------------------------------------------------


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
            m = difflib.get_close_matches(w, lx.typo_targets, n=1, cutoff=TYPO_CUTOFF)
            if m:
                r = difflib.SequenceMatcher(None, w, m[0]).ratio()
                worst = r if worst is None else min(worst, r)
                out.append(m[0])
                continue
        out.append(w)
    return out, worst


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
        InstructionError: empty, too long, binary, negated, or with no recognisable expression.

    Example:
        >>> parse_instruction("sad -> neutral -> angry").labels
        ['sadness', 'neutral', 'anger']
        >>> parse_instruction("make this face happy").labels
        ['happiness']
    """
    text = _validate(text)
    norm = _norm(text)
    if len(norm) > 4 * MAX_CHARS:
        raise InstructionError("the instruction expands to too much text after Unicode "
                               "normalisation; pass plain text.")
    toks = [_Tok(t, s, e) for t, s, e in _tokens(norm)]
    _classify(toks)
    mentions: Dict[int, _Mention] = {m.index: m for m in _pair_actions(toks)}
    mods: List[_Mod] = []
    sides: List[Tuple[int, str]] = []
    negs: List[int] = []
    _scan(toks, mentions, mods, sides, negs)

    for ni in negs:  # "not happy": refuse rather than produce the opposite
        for k in range(ni + max(toks[ni].span, 1), min(len(toks), ni + 4)):
            if toks[k].kind == "sep":
                break
            if k in mentions:
                raise InstructionError(
                    f"negations are not supported ({norm[toks[ni].start:mentions[k].end]!r}); "
                    "name the expression you want instead, e.g. 'neutral' or 'sad'.")

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
        residual = [toks[k].text for k in idx if toks[k].kind == "" and
                    toks[k].text not in _FILLER and toks[k].text not in lx.known_words
                    and re.search(r"[^\W\d_]", toks[k].text)]
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
                steps.append((sep_type, seg))
                continue
            slot = sep_word is not None and sep_word in _SLOT_SEPS
            has_filler = any(toks[k].text in _FILLER for k in idx)
            if slot or not has_filler:
                hint = f" (no embedding fallback: {encoder_failed})" if encoder_failed else ""
                raise InstructionError(
                    f"could not recognise the expression {' '.join(residual)!r} in "
                    f"{text.strip()[:200]!r}{hint}. Known vocabulary: {vocabulary_summary()}")
            ignored.extend(residual)
            continue
        ignored.extend(residual)
        if not ms:
            back = [m for m in cmods if m.may_follow]
            if back and steps:  # "from sad to happy, slightly": modifies the previous step
                place, prev = steps[-1]
                steps[-1] = (place, _scale_segment(prev, back, norm))
            continue
        steps.append((sep_type, _segment(ms, cmods, csides, norm)))
        if len(steps) > MAX_SEGMENTS:
            raise InstructionError(f"the instruction has more than {MAX_SEGMENTS} steps; split it "
                                   "into several instructions.")

    segments = _order(steps)
    if not segments:
        unknown = f" (could not recognise {' '.join(ignored)!r})" if ignored else ""
        raise InstructionError(
            f"no expression found in {text.strip()[:200]!r}{unknown}. Name one or two "
            "expressions, e.g. "
            f"'Turn this face from disgust to happiness.' Known vocabulary: {vocabulary_summary()}")
    return ParsedInstruction(text=text, segments=segments, ignored=tuple(dict.fromkeys(ignored)))


def _latin_script(word: str) -> bool:
    """True when every letter of ``word`` is a cased Latin letter (accents included): the
    alphabet the encoders read. Uncased Latin-named letters (``ƻ``, click letters) are not."""
    import unicodedata

    return all(not ch.isalpha() or ("LATIN" in unicodedata.name(ch, "") and unicodedata.category(ch) in ("Lu", "Ll", "Lt"))
               for ch in word)


def _guess_chunk(toks: List[_Tok], idx: List[int], norm: str, encoder: Any, encoder_obj: Any,
                 threshold: Optional[float], residual: List[str], cmods: List[_Mod]):
    """Resolve a chunk without known expressions: spelling first, then embeddings.

    Returns ``(segment or None, encoder object or None, failure message or None)``.
    """
    words = [toks[k].text for k in idx if toks[k].kind != "covered"]
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
