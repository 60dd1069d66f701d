"""The instruction vocabulary: expression labels, their synonyms, intensity words and
facial-action phrases (FACS action units).

Everything here is plain data; :mod:`flame_transit.text.parse` turns it into a matcher.

* :data:`EXPRESSIONS`, :data:`SYNONYMS`, :data:`EMOJI`, :func:`label_of`: the labels and their
  words, derived from the one table of expression classes,
  :data:`flame_transit.expressions.EXPRESSION_CLASSES` (add words and classes there); the first
  noun and the first adjective are the canonical words.
* :data:`WORD_AUS`: extra action units that some expression words imply ("grin" shows teeth).
* :data:`COMPOUND_WORDS`: single words naming a blend ("bittersweet").
* :data:`INTENSITY_WORDS`: modifier -> intensity factor (1.0 = a clear, typical expression).
* :data:`AU_NAMES`: the action units an instruction can target (the open head's AUs plus
  ``"AU26"`` = jaw drop, which drives the jaw joint).
* :data:`FACE_PARTS`, :data:`ACTION_VERBS`, :data:`PART_ACTIONS`, :data:`SINGLE_WORD_ACTIONS`:
  facial-action phrases such as "raise the eyebrows" (AU1+AU2) or "smirk" (AU12L+AU14L).

Example:
    >>> canonical_word("happiness", "adj"), canonical_word("disgust", "noun")
    ('happy', 'disgust')
    >>> PART_ACTIONS[("raise", "brows")]
    {'AU1': 1.0, 'AU2': 1.0}
"""

from __future__ import annotations

from typing import Dict, Tuple

from ..expressions import EMOJI, EMOTIONS, SYNONYMS, canonical_word, expression_phrases, label_of
from ..expressions import LABELS as EXPRESSIONS

__all__ = [
    "EXPRESSIONS",
    "EMOTIONS",
    "CUSTOM",
    "AU_NAMES",
    "SIDED_AUS",
    "SYNONYMS",
    "EMOJI",
    "WORD_AUS",
    "COMPOUND_WORDS",
    "INTENSITY_WORDS",
    "FACE_PARTS",
    "ACTION_VERBS",
    "PART_ACTIONS",
    "SINGLE_WORD_ACTIONS",
    "SIDE_WORDS",
    "canonical_word",
    "expression_phrases",
    "label_of",
    "vocabulary_summary",
]

CUSTOM = "custom"

AU_NAMES: Tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU16",
    "AU17", "AU20", "AU23", "AU24", "AU25", "AU43", "AU12L", "AU12R", "AU14L", "AU14R", "AU26",
)
# AUs with a unilateral variant: "left"/"right" in an instruction selects AU12L / AU12R.
SIDED_AUS: Tuple[str, ...] = ("AU12", "AU14")

# Expression words that imply action units beyond the label's prototype (value = target).
WORD_AUS: Dict[str, Dict[str, float]] = {
    "grin": {"AU25": 1.0}, "grins": {"AU25": 1.0}, "grinning": {"AU25": 1.0},
    "a grin": {"AU25": 1.0},
    "laugh": {"AU25": 1.0, "AU26": 0.6}, "laughs": {"AU25": 1.0, "AU26": 0.6},
    "laughing": {"AU25": 1.0, "AU26": 0.6}, "laughter": {"AU25": 1.0, "AU26": 0.6},
    "beaming": {"AU25": 0.6}, "beam": {"AU25": 0.6},
    "gasp": {"AU26": 1.0, "AU25": 1.0}, "gasps": {"AU26": 1.0, "AU25": 1.0},
    "gasping": {"AU26": 1.0, "AU25": 1.0},
    "snarl": {"AU10": 1.0}, "snarls": {"AU10": 1.0}, "snarling": {"AU10": 1.0},
    "crying": {"AU17": 0.6}, "sobbing": {"AU17": 0.8, "AU25": 0.6},
    "sob": {"AU17": 0.8, "AU25": 0.6}, "sobs": {"AU17": 0.8, "AU25": 0.6},
    "sneer": {"AU10": 0.5}, "sneers": {"AU10": 0.5}, "sneering": {"AU10": 0.5},
    "a sneer": {"AU10": 0.5},
}

# Single words that name a blend of two expressions.
COMPOUND_WORDS: Dict[str, Dict[str, float]] = {
    "bittersweet": {"happiness": 0.5, "sadness": 0.5},
    "nostalgic": {"happiness": 0.5, "sadness": 0.5},
    "wistful": {"happiness": 0.3, "sadness": 0.7},
    "hatred": {"anger": 0.6, "disgust": 0.4},
    "hateful": {"anger": 0.6, "disgust": 0.4},
    "hate": {"anger": 0.6, "disgust": 0.4},
    "horror-struck": {"fear": 0.6, "surprise": 0.4},
    "awe-struck": {"surprise": 0.7, "happiness": 0.3},
    "schadenfreude": {"happiness": 0.5, "contempt": 0.5},
    "gloating": {"happiness": 0.5, "contempt": 0.5},
    "jealous": {"anger": 0.5, "sadness": 0.5},
    "envious": {"anger": 0.4, "sadness": 0.3, "contempt": 0.3},
}

# ------------------------------------------------------------------------------------------
# intensity
# ------------------------------------------------------------------------------------------

# 1.0 = the clear, typical expression of the training data. Several modifiers multiply;
# numbers ("50%", "0.5", "intensity 0.8") set the value directly. Results are clipped to [0, 2].
INTENSITY_WORDS: Dict[str, float] = {
    "barely": 0.2, "hardly": 0.2, "faintly": 0.25, "faint": 0.25, "a hint of": 0.3,
    "a trace of": 0.3, "subtly": 0.3, "subtle": 0.3, "slightly": 0.3, "slight": 0.3,
    "a tiny bit": 0.3, "a tad": 0.35, "a touch": 0.35, "a touch of": 0.35, "lightly": 0.35,
    "light": 0.4, "a little": 0.4, "a little bit": 0.4, "a bit": 0.4, "a bit of": 0.4,
    "little": 0.4, "mildly": 0.4, "mild": 0.4, "gently": 0.4, "gentle": 0.4, "soft": 0.4,
    "softly": 0.4, "kind of": 0.5, "kinda": 0.5, "sort of": 0.5, "somewhat": 0.5,
    "partly": 0.5, "partially": 0.5, "half": 0.5, "halfway": 0.5, "moderately": 0.6,
    "moderate": 0.6, "fairly": 0.7, "rather": 0.7, "reasonably": 0.7, "pretty": 0.8,
    "quite": 0.9, "clearly": 1.0, "fully": 1.2, "really": 1.25, "very": 1.25, "so": 1.2,
    "truly": 1.25, "big": 1.25, "broad": 1.25, "broadly": 1.25, "wide": 1.25, "widely": 1.25,
    "strong": 1.3, "strongly": 1.3, "deeply": 1.3, "deep": 1.3, "highly": 1.3, "a lot": 1.3,
    "heavily": 1.3, "super": 1.4, "totally": 1.4, "hugely": 1.4, "huge": 1.4,
    "tremendously": 1.5, "intensely": 1.5, "intense": 1.5, "extremely": 1.5, "extreme": 1.5,
    "incredibly": 1.5, "completely": 1.5, "utterly": 1.5, "absolutely": 1.5,
    "exaggerated": 1.5, "exaggeratedly": 1.5, "maximally": 1.5, "maximum": 1.5, "max": 1.5,
    "full": 1.0, "overly": 1.4, "insanely": 1.5, "wildly": 1.4, "immensely": 1.5,
    "enormously": 1.5, "profoundly": 1.4, "less": 0.5, "more": 1.25, "much more": 1.4,
    "a lot more": 1.4,
}
INTENSITY_RANGE = (0.0, 2.0)

# ------------------------------------------------------------------------------------------
# facial actions: "<verb> the <part>" in either order, and single words
# ------------------------------------------------------------------------------------------

# face part -> phrases naming it (longest match wins: "upper lip" before "lip").
FACE_PARTS: Dict[str, Tuple[str, ...]] = {
    "inner_brows": ("inner brows", "inner eyebrows", "inner brow", "inner eyebrow",
                    "inner corners of the brows", "inner corners of the eyebrows",
                    "inner parts of the brows", "inner parts of the eyebrows"),
    "outer_brows": ("outer brows", "outer eyebrows", "outer brow", "outer eyebrow",
                    "outer corners of the brows", "outer corners of the eyebrows",
                    "outer parts of the brows", "outer parts of the eyebrows"),
    "brows": ("brows", "brow", "eyebrows", "eyebrow", "eye brows", "eye brow"),
    "forehead": ("forehead",),
    "lids": ("upper lids", "upper eyelids", "upper eyelid", "upper lid", "eyelids", "eyelid",
             "lids", "lid"),
    "eyes": ("eyes", "eye"),
    "cheeks": ("cheeks", "cheek", "cheekbones"),
    "nose": ("nose", "nostrils", "nose bridge"),
    "upper_lip": ("upper lip", "top lip"),
    "lower_lip": ("lower lip", "bottom lip"),
    "corners": ("lip corners", "mouth corners", "corners of the mouth", "corners of the lips",
                "corners of his mouth", "corners of her mouth", "corners of their mouth",
                "corners of its mouth", "corner of the mouth", "corners of the lip",
                "corners of mouth", "corners", "corner of his mouth", "corner of her mouth",
                "lip corner", "mouth corner", "corner"),
    "lips": ("lips", "lip"),
    "mouth": ("mouth",),
    "jaw": ("jaw", "lower jaw"),
    "chin": ("chin",),
    "teeth": ("teeth", "tooth"),
    "face": ("face", "whole face", "features"),
}

# verb class -> words (base, inflections, participles and adjectives).
ACTION_VERBS: Dict[str, Tuple[str, ...]] = {
    "raise": ("raise", "raises", "raised", "raising", "lift", "lifts", "lifted", "lifting",
              "arch", "arches", "arched", "arching", "elevate", "elevated", "up", "upward",
              "upwards", "pull up", "pulls up", "pulled up", "pulling up", "push up",
              "pushed up", "pushing up", "turn up", "turned up", "upturned", "curl up",
              "curled up", "hike up", "hiked up", "perk up", "perked up", "high"),
    "lower": ("lower", "lowers", "lowered", "lowering", "drop", "drops", "dropped",
              "dropping", "droop", "droops", "drooped", "drooping", "droopy", "down",
              "downward", "downwards", "downturned", "turn down", "turned down", "pull down",
              "pulls down", "pulled down", "pulling down", "sag", "sagging", "sagged",
              "depress", "depressed", "let down", "hanging", "slack"),
    "furrow": ("furrow", "furrows", "furrowed", "furrowing", "knit", "knits", "knitted",
               "knitting", "draw together", "drawn together", "drew together",
               "pull together", "pulled together", "pulls together", "pinch", "pinched",
               "together", "bunch", "bunched", "crease", "creased"),
    "open": ("open", "opens", "opened", "opening", "agape", "gaping", "gape", "ajar"),
    "part": ("part", "parts", "parted", "parting", "apart", "separate", "separated"),
    "close": ("close", "closes", "closed", "closing", "shut", "shuts", "shutting",
              "squeeze shut", "squeezed shut", "clench", "clenched", "clenching"),
    "widen": ("widen", "widens", "widened", "widening", "wide", "wide open", "wide-open",
              "bulge", "bulging", "popping", "big", "enlarge", "enlarged"),
    "narrow": ("narrow", "narrows", "narrowed", "narrowing", "squint", "squints",
               "squinted", "squinting", "slit", "slitted", "tighten", "tightens",
               "tightened", "tightening", "tense", "tensed", "tight"),
    "wrinkle": ("wrinkle", "wrinkles", "wrinkled", "wrinkling", "scrunch", "scrunches",
                "scrunched", "scrunching", "crinkle", "crinkled", "crinkling", "screw up",
                "screwed up", "crumple", "crumpled"),
    "press": ("press", "presses", "pressed", "pressing", "press together",
              "pressed together", "compress", "compressed", "clamp", "clamped"),
    "purse": ("purse", "purses", "pursed", "pursing", "thin", "thinned", "thinning"),
    "stretch": ("stretch", "stretches", "stretched", "stretching", "pull back",
                "pulled back", "pulling back", "draw back", "drawn back", "spread",
                "pull sideways", "pulled sideways", "pulled wide"),
    "curl": ("curl", "curls", "curled", "curling"),
    "show": ("show", "shows", "showing", "shown", "bare", "bares", "bared", "baring",
             "reveal", "reveals", "revealing", "flash", "flashing", "visible", "exposed"),
    "relax": ("relax", "relaxes", "relaxed", "relaxing", "loosen", "loosened", "soften",
              "softened", "release", "released", "rest", "resting"),
    "dimple": ("dimple", "dimpled", "dimpling"),
}

_BROWS_OFF = {"AU1": 0.0, "AU2": 0.0, "AU4": 0.0}
_MOUTH_OFF = {"AU10": 0.0, "AU12": 0.0, "AU14": 0.0, "AU15": 0.0, "AU16": 0.0, "AU17": 0.0,
              "AU20": 0.0, "AU23": 0.0, "AU24": 0.0, "AU25": 0.0, "AU26": 0.0}

# (verb class, face part) -> AU targets. A 0.0 target means "make sure this AU is off".
PART_ACTIONS: Dict[Tuple[str, str], Dict[str, float]] = {
    ("raise", "brows"): {"AU1": 1.0, "AU2": 1.0},
    ("raise", "inner_brows"): {"AU1": 1.0},
    ("raise", "outer_brows"): {"AU2": 1.0},
    ("raise", "forehead"): {"AU1": 1.0, "AU2": 1.0},
    ("wrinkle", "forehead"): {"AU1": 1.0, "AU2": 1.0},
    ("furrow", "forehead"): {"AU4": 1.0},
    ("lower", "brows"): {"AU4": 1.0},
    ("lower", "inner_brows"): {"AU4": 1.0},
    ("furrow", "brows"): {"AU4": 1.0},
    ("furrow", "inner_brows"): {"AU4": 1.0},
    ("narrow", "brows"): {"AU4": 1.0},
    ("relax", "brows"): dict(_BROWS_OFF),
    ("relax", "forehead"): dict(_BROWS_OFF),
    ("raise", "lids"): {"AU5": 1.0},
    ("widen", "eyes"): {"AU5": 1.0},
    ("widen", "lids"): {"AU5": 1.0},
    ("open", "eyes"): {"AU43": 0.0},
    ("raise", "eyes"): {"AU5": 0.6},
    ("narrow", "eyes"): {"AU7": 1.0},
    ("narrow", "lids"): {"AU7": 1.0},
    ("close", "eyes"): {"AU43": 1.0},
    ("close", "lids"): {"AU43": 1.0},
    ("lower", "lids"): {"AU43": 0.6},
    ("lower", "eyes"): {"AU43": 0.4},
    ("relax", "eyes"): {"AU5": 0.0, "AU7": 0.0, "AU43": 0.0},
    ("raise", "cheeks"): {"AU6": 1.0},
    ("wrinkle", "nose"): {"AU9": 1.0},
    ("raise", "nose"): {"AU9": 1.0},
    ("raise", "upper_lip"): {"AU10": 1.0},
    ("curl", "upper_lip"): {"AU10": 1.0},
    ("curl", "lips"): {"AU10": 0.8},
    ("show", "teeth"): {"AU10": 0.6, "AU25": 1.0},
    ("lower", "lower_lip"): {"AU16": 1.0},
    ("raise", "lower_lip"): {"AU17": 1.0},
    ("raise", "corners"): {"AU12": 1.0},
    ("curl", "corners"): {"AU12": 1.0},
    ("lower", "corners"): {"AU15": 1.0},
    ("stretch", "corners"): {"AU20": 1.0},
    ("stretch", "lips"): {"AU20": 1.0},
    ("stretch", "mouth"): {"AU20": 1.0},
    ("dimple", "cheeks"): {"AU14": 1.0},
    ("dimple", "corners"): {"AU14": 1.0},
    ("narrow", "lips"): {"AU23": 1.0},
    ("purse", "lips"): {"AU23": 1.0},
    ("press", "lips"): {"AU24": 1.0},
    ("close", "lips"): {"AU24": 0.5, "AU25": 0.0, "AU26": 0.0},
    ("open", "lips"): {"AU25": 1.0},
    ("part", "lips"): {"AU25": 1.0},
    ("part", "mouth"): {"AU25": 1.0},
    ("open", "mouth"): {"AU25": 1.0, "AU26": 1.0},
    ("widen", "mouth"): {"AU25": 1.0, "AU26": 1.0},
    ("lower", "mouth"): {"AU15": 1.0},
    ("raise", "mouth"): {"AU12": 1.0},
    ("close", "mouth"): {"AU25": 0.0, "AU26": 0.0},
    ("relax", "mouth"): dict(_MOUTH_OFF),
    ("relax", "lips"): dict(_MOUTH_OFF),
    ("open", "jaw"): {"AU25": 1.0, "AU26": 1.0},
    ("lower", "jaw"): {"AU25": 1.0, "AU26": 1.0},
    ("close", "jaw"): {"AU25": 0.0, "AU26": 0.0},
    ("relax", "jaw"): {"AU26": 0.0},
    ("raise", "chin"): {"AU17": 1.0},
    ("wrinkle", "chin"): {"AU17": 1.0},
    ("press", "chin"): {"AU17": 1.0},
    ("relax", "face"): {},  # handled as "neutral" by the parser
}

# Single words / fixed phrases that are facial actions on their own.
SINGLE_WORD_ACTIONS: Dict[str, Dict[str, float]] = {
    "frown": {"AU4": 1.0}, "frowns": {"AU4": 1.0}, "frowned": {"AU4": 1.0},
    "frowning": {"AU4": 1.0}, "a frown": {"AU4": 1.0},
    "smirk": {"AU12L": 1.0, "AU14L": 1.0}, "smirks": {"AU12L": 1.0, "AU14L": 1.0},
    "smirked": {"AU12L": 1.0, "AU14L": 1.0}, "smirking": {"AU12L": 1.0, "AU14L": 1.0},
    "a smirk": {"AU12L": 1.0, "AU14L": 1.0},
    "half smile": {"AU12L": 1.0}, "half-smile": {"AU12L": 1.0},
    "lopsided smile": {"AU12L": 1.0}, "crooked smile": {"AU12L": 1.0},
    "one-sided smile": {"AU12L": 1.0}, "one sided smile": {"AU12L": 1.0},
    "side smile": {"AU12L": 1.0}, "half smiling": {"AU12L": 1.0},
    "squint": {"AU6": 0.5, "AU7": 1.0}, "squints": {"AU6": 0.5, "AU7": 1.0},
    "squinting": {"AU6": 0.5, "AU7": 1.0}, "squinted": {"AU6": 0.5, "AU7": 1.0},
    "pout": {"AU15": 0.5, "AU17": 1.0}, "pouts": {"AU15": 0.5, "AU17": 1.0},
    "pouting": {"AU15": 0.5, "AU17": 1.0}, "pouty": {"AU15": 0.5, "AU17": 1.0},
    "gape": {"AU25": 1.0, "AU26": 1.0}, "gaping": {"AU25": 1.0, "AU26": 1.0},
    "agape": {"AU25": 1.0, "AU26": 1.0}, "jaw drop": {"AU25": 1.0, "AU26": 1.0},
    "jaw-drop": {"AU25": 1.0, "AU26": 1.0}, "jaw dropped": {"AU25": 1.0, "AU26": 1.0},
    "open-mouthed": {"AU25": 1.0, "AU26": 1.0}, "open mouthed": {"AU25": 1.0, "AU26": 1.0},
    "yawn": {"AU25": 1.0, "AU26": 1.0, "AU43": 0.6}, "yawning": {"AU25": 1.0, "AU26": 1.0, "AU43": 0.6},
    "blink": {"AU43": 1.0}, "blinking": {"AU43": 1.0},
    "eyes closed": {"AU43": 1.0}, "eyes shut": {"AU43": 1.0},
    "dimple": {"AU14": 1.0}, "dimples": {"AU14": 1.0},
    "grimace": {"AU4": 0.6, "AU7": 0.6, "AU20": 1.0, "AU25": 0.6},
    "grimacing": {"AU4": 0.6, "AU7": 0.6, "AU20": 1.0, "AU25": 0.6},
    "wince": {"AU4": 0.6, "AU6": 0.6, "AU7": 1.0, "AU43": 0.4},
    "wincing": {"AU4": 0.6, "AU6": 0.6, "AU7": 1.0, "AU43": 0.4},
    "lip bite": {"AU24": 0.6}, "tight-lipped": {"AU23": 1.0, "AU24": 0.6},
    "tight lipped": {"AU23": 1.0, "AU24": 0.6}, "wide-eyed stare": {"AU5": 1.0},
    "stare": {"AU5": 0.5}, "staring": {"AU5": 0.5}, "😏": {"AU12L": 1.0, "AU14L": 1.0},
}

# Side words select unilateral AUs (subject's left / right, as AU12L / AU12R).
SIDE_WORDS: Dict[str, str] = {
    "left": "L", "right": "R", "left-sided": "L", "right-sided": "R", "leftward": "L",
    "rightward": "R", "to the left": "L", "to the right": "R", "on the left": "L",
    "on the right": "R", "on the left side": "L", "on the right side": "R",
    "to the left side": "L", "to the right side": "R", "left side": "L", "right side": "R",
}


def vocabulary_summary(max_per_label: int = 8) -> str:
    """A short human-readable list of the vocabulary, used in error messages."""
    parts = []
    for label in EXPRESSIONS:
        words = [w for w in SYNONYMS[label]["adj"][:max_per_label]]
        parts.append(f"{label} ({', '.join(words)}, ...)")
    acts = ", ".join(["raise the eyebrows", "frown", "open the mouth", "close the eyes",
                      "wrinkle the nose", "smirk", "press the lips"])
    return ("expressions: " + "; ".join(parts) + f". Facial actions: {acts}, ... "
            "See docs/INSTRUCTIONS.md.")


def _check() -> None:  # import-time sanity of the tables (cheap)
    for (verb, part), aus in PART_ACTIONS.items():
        assert verb in ACTION_VERBS and part in FACE_PARTS, (verb, part)
        for au in aus:
            assert au in AU_NAMES, au
    for table in (SINGLE_WORD_ACTIONS, WORD_AUS):
        for aus in table.values():
            for au in aus:
                assert au in AU_NAMES, au
    for mix in COMPOUND_WORDS.values():
        for lab in mix:
            assert lab in EXPRESSIONS, lab


_check()
