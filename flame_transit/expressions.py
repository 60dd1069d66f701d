"""The expression classes: one table, :data:`EXPRESSION_CLASSES`, that every stage derives from.

Each class (neutral first, then the seven basic emotions) carries everything the library knows
about it:

* its **words**: nouns, adjectives and other phrases (the first noun is the label, the first
  adjective the canonical adjective), emoji; the instruction parser
  (:mod:`flame_transit.text.vocabulary`), dataset labels
  (:func:`flame_transit.data.dataset.normalize_label`) and :func:`label_of` read them;
* the **template words** that fill training and held-out instructions
  (:mod:`flame_transit.text.templates`);
* its **prototype**: EMFACS action-unit intensities (Ekman & Friesen), 1.0 = a strong activation,
  ``"AU26"`` = jaw drop (applied through the jaw joint); the open head's
  :func:`~flame_transit.head.open_head.prototype_params`, the gallery pictures and the synthetic
  data read it;
* its **variation**: how posed faces of different people vary around the prototype
  (:mod:`flame_transit.data.synthetic` samples them).

The label order is the integer label of every dataset and checkpoint. **Adding a class** means
adding one entry at the end of :data:`EXPRESSION_CLASSES` (then rebuilding the bundled
artefacts with ``tools/``: the text cache and the I2FET checkpoint); ``tests/test_expressions.py``
shows every consumer picking a new entry up.

This module is plain data and imports nothing from the package, so every stage (head, text,
data, render) may import it.

Example:
    >>> LABELS[:3], EMOTIONS[-1]
    (('neutral', 'happiness', 'sadness'), 'contempt')
    >>> label_of("Joyful"), EXPRESSION_CLASSES["anger"].adj[0]
    ('happiness', 'angry')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterator, Mapping, Optional, Sequence, Tuple

__all__ = [
    "ExpressionClass",
    "Variation",
    "EXPRESSION_CLASSES",
    "LABELS",
    "EMOTIONS",
    "SYNONYMS",
    "EMOJI",
    "PROTOTYPES",
    "canonical_word",
    "expression_phrases",
    "label_of",
    "is_action_unit_space",
]


@dataclass(frozen=True)
class Variation:
    """How synthetic samples of one emotion vary around its prototype
    (:func:`flame_transit.data.synthetic.sample_au_codes`).

    The prototype's AUs (except AU26) are *core* AUs, present in every sample, unless listed in
    ``optional``.

    Attributes:
        core: AU -> base intensity of a core AU where it differs from the prototype (or a core
            AU the prototype lacks).
        optional: AU -> ``(probability, base)``, each present independently; for an AU of the
            prototype the base is ``max(prototype value, base)``. Drawn in this order.
        jaw: ``(probability, low, high)`` of an AU26 jaw drop ``U(low, high)``.
        unilateral: the prototype's one-sided AUs (``AU12L``) land on a random side.
    """

    core: Mapping[str, float] = field(default_factory=dict)
    optional: Mapping[str, Tuple[float, float]] = field(default_factory=dict)
    jaw: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    unilateral: bool = False


@dataclass(frozen=True)
class ExpressionClass:
    """One expression class (see the module docstring).

    Attributes:
        noun: nouns; ``noun[0]`` is the label.
        adj: adjectives; ``adj[0]`` is the canonical adjective.
        other: other phrases read as this class (verbs, adverbs, idioms).
        emoji: space-separated emoji read as this class.
        train_words: ``{"noun": (...), "adj": (...)}`` filling training instructions
            (default: the canonical noun and adjective).
        heldout_words: the same for held-out instructions, never used in training
            (default: none).
        prototype: AU -> intensity (1.0 = strong; ``"AU26"`` = jaw drop).
        variation: how posed samples vary (``None``: no emotion, noise only).
    """

    noun: Tuple[str, ...]
    adj: Tuple[str, ...]
    other: Tuple[str, ...] = ()
    emoji: str = ""
    train_words: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    heldout_words: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    prototype: Mapping[str, float] = field(default_factory=dict)
    variation: Optional[Variation] = None

    def words(self, form: str, pool: str = "all") -> Tuple[str, ...]:
        """Words of one ``form`` (``"noun"``, ``"adj"``, ``"other"``) from ``pool`` (``"all"``:
        the synonyms, ``"train"`` / ``"heldout"``: the template words)."""
        if pool == "train":
            return tuple(self.train_words.get(form, ())) or getattr(self, form)[:1]
        if pool == "heldout":
            return tuple(self.heldout_words.get(form, ()))
        return tuple(getattr(self, form))


#: THE table of expression classes (order = integer label; neutral first).
#: Prototypes: beyond the minimal EMFACS sets, anger carries a raised chin and pressed,
#: down-turned lips (17+15+23) and disgust narrowed eyes and lowered brows (4+7), and sadness a
#: raised chin and drooping lids (17+43) with a milder inner-brow raise: without them the
#: independent judge read anger as sadness or joy, disgust and sadness as fear
#: (docs/eval/perceptual). Surprise raises the brows about 10 mm at the default gain, not 18 mm
#: (a brow pushed under the fringe read as fear); fear draws the raised brows together (4) over
#: a wide, barely opened mouth (20 > 26: with the jaw dropped it read as surprise).
EXPRESSION_CLASSES: Dict[str, ExpressionClass] = {
    "neutral": ExpressionClass(
        noun=("neutral", "a neutral expression", "neutrality", "calm", "calmness", "no expression",
              "a blank expression", "composure", "a poker face", "a straight face",
              "a resting face", "rest"),
        adj=("neutral", "calm", "expressionless", "blank", "relaxed", "emotionless", "impassive",
             "composed", "serene", "straight-faced", "deadpan", "stoic", "unemotional", "placid",
             "poker-faced", "at rest", "resting", "peaceful", "indifferent", "unexpressive",
             "normal", "chill", "zen", "unbothered", "unfazed", "nonchalant", "even-tempered",
             "collected", "tranquil"),
        other=("calmly", "neutrally", "without expression", "without emotion", "no emotion",
               "poker face", "straight face", "resting face", "neutral face", "rest pose",
               "neutral pose"),
        emoji="😐 😑 😶",
        train_words={
            "noun": ("neutral", "a neutral expression", "calm", "no expression"),
            "adj": ("neutral", "calm", "expressionless", "relaxed", "blank"),
        },
        heldout_words={
            "noun": ("composure", "a straight face"),
            "adj": ("impassive", "emotionless"),
        },
        prototype={},
    ),
    "happiness": ExpressionClass(
        noun=("happiness", "joy", "delight", "glee", "cheerfulness", "cheer", "elation",
              "amusement", "contentment", "pleasure", "bliss", "a smile", "a grin", "laughter",
              "joyfulness", "gladness", "euphoria"),
        adj=("happy", "joyful", "smiling", "glad", "cheerful", "delighted", "pleased", "content",
             "gleeful", "joyous", "amused", "merry", "jolly", "ecstatic", "elated", "overjoyed",
             "thrilled", "grinning", "beaming", "laughing", "cheery", "upbeat", "jovial",
             "blissful", "euphoric", "radiant", "chuffed", "satisfied", "jubilant", "mirthful",
             "exhilarated", "over the moon", "on cloud nine", "tickled", "lighthearted", "sunny"),
        other=("smile", "smiles", "smiled", "grin", "grins", "laugh", "laughs", "beam", "happily",
               "joyfully", "gleefully", "cheerfully", "smilingly"),
        emoji="😀 😃 😄 😁 😊 🙂 ☺ 😆 😂 🤣 😍 🥰 😇",
        train_words={
            "noun": ("happiness", "joy", "delight", "a smile"),
            "adj": ("happy", "joyful", "smiling", "glad", "cheerful"),
        },
        heldout_words={
            "noun": ("glee", "cheerfulness"),
            "adj": ("delighted", "elated"),
        },
        # EMFACS 6+12 (Duchenne smile). Samples: a broad smile parts the lips (AU25) far more
        # often than not (with the lips apart the renderer shows teeth, which is what makes a
        # smile read in a photo); 10 and 7 sometimes; a laughing jaw often.
        prototype={"AU6": 1.0, "AU12": 1.0, "AU25": 0.5},
        variation=Variation(core={"AU25": 0.9}, optional={"AU10": (0.4, 0.4), "AU7": (0.15, 0.3)}, jaw=(0.7, 0.2, 0.5)),
    ),
    "sadness": ExpressionClass(
        noun=("sadness", "sorrow", "grief", "unhappiness", "melancholy", "misery", "gloom",
              "despair", "depression", "heartbreak", "dejection", "woe", "tears",
              "disappointment"),
        adj=("sad", "unhappy", "sorrowful", "gloomy", "melancholic", "miserable", "depressed",
             "downcast", "dejected", "heartbroken", "crying", "weeping", "tearful", "upset",
             "grieving", "mournful", "despondent", "glum", "forlorn", "disappointed", "sulky",
             "sulking", "down-hearted", "downhearted", "morose", "woeful", "sobbing",
             "crestfallen", "distressed", "hurt", "heartsick", "distraught", "down in the dumps",
             "grief-stricken", "desolate", "somber", "sombre"),
        other=("cry", "cries", "weep", "weeps", "sob", "sobs", "sadly", "sorrowfully", "unhappily",
               "in tears", "on the verge of tears"),
        emoji="😢 😭 ☹ 🙁 😞 😔 😿 😥",
        train_words={
            "noun": ("sadness", "sorrow", "grief", "unhappiness"),
            "adj": ("sad", "unhappy", "sorrowful", "gloomy", "miserable"),
        },
        heldout_words={
            "noun": ("melancholy", "despair"),
            "adj": ("downcast", "heartbroken"),
        },
        # 1+4+15+17 with drooping lids (43) and a milder inner-brow raise.
        prototype={"AU1": 0.65, "AU4": 0.65, "AU15": 1.1, "AU17": 0.65, "AU43": 0.35},
        variation=Variation(),
    ),
    "surprise": ExpressionClass(
        noun=("surprise", "astonishment", "amazement", "shock", "awe", "wonder", "disbelief",
              "bewilderment"),
        adj=("surprised", "shocked", "astonished", "amazed", "astounded", "stunned", "startled",
             "dumbfounded", "flabbergasted", "awestruck", "awed", "taken aback",
             "caught off guard", "in awe", "wide-eyed", "gobsmacked", "speechless", "bewildered",
             "incredulous", "agog", "aghast", "thunderstruck", "surprising", "gobsmacked",
             "floored", "staggered"),
        other=("gasp", "gasps", "gasping", "surprisedly", "in surprise", "in shock",
               "in disbelief"),
        emoji="😮 😯 😲 😳 🤯",
        train_words={
            "noun": ("surprise", "astonishment", "amazement", "shock"),
            "adj": ("surprised", "shocked", "astonished", "amazed", "startled"),
        },
        heldout_words={
            "noun": ("awe", "disbelief"),
            "adj": ("stunned", "astounded"),
        },
        # 1+2+5+26 (+25). The dropped jaw is what makes surprise read (a raised brow alone
        # reads as interest).
        prototype={"AU1": 0.55, "AU2": 0.55, "AU5": 0.9, "AU25": 0.5, "AU26": 0.9},
        # with the dropped jaw the lips always part (25)
        variation=Variation(jaw=(1.0, 0.8, 1.2)),
    ),
    "fear": ExpressionClass(
        noun=("fear", "fright", "terror", "horror", "panic", "dread", "anxiety", "alarm",
              "fearfulness", "nervousness", "worry", "apprehension"),
        adj=("scared", "afraid", "frightened", "fearful", "terrified", "horrified", "panicked",
             "panicky", "anxious", "nervous", "worried", "alarmed", "petrified", "spooked",
             "freaked out", "scared stiff", "apprehensive", "uneasy", "timid", "intimidated",
             "threatened", "panic-stricken", "terror-stricken", "terrorized", "shaken", "jittery",
             "jumpy", "fearstruck", "paranoid", "horror-stricken", "fear-stricken"),
        other=("fearfully", "nervously", "anxiously", "in fear", "in terror", "in horror",
               "in panic", "cower", "cowering", "tremble", "trembling"),
        emoji="😨 😱 😰 😧 😦",
        train_words={
            "noun": ("fear", "fright", "terror", "panic"),
            "adj": ("scared", "afraid", "frightened", "fearful", "terrified"),
        },
        heldout_words={
            "noun": ("dread", "horror"),
            "adj": ("petrified", "panicked"),
        },
        # 1+2+4+5+7+20+26 (+25).
        prototype={"AU1": 1.0, "AU2": 0.4, "AU4": 1.0, "AU5": 1.0, "AU7": 0.3, "AU20": 1.3, "AU25": 0.6, "AU26": 0.2},
        # the stretched lips part (25); a barely opened mouth (a dropped jaw reads as surprise)
        variation=Variation(optional={"AU7": (0.5, 0.3)}, jaw=(0.8, 0.15, 0.35)),
    ),
    "anger": ExpressionClass(
        noun=("anger", "rage", "fury", "wrath", "irritation", "annoyance", "frustration",
              "outrage", "hostility", "ire", "aggression", "resentment"),
        adj=("angry", "mad", "furious", "enraged", "irate", "irritated", "annoyed", "livid",
             "cross", "fuming", "outraged", "hostile", "raging", "frustrated", "aggressive",
             "grumpy", "pissed off", "pissed", "ticked off", "seething", "incensed", "infuriated",
             "indignant", "vexed", "irked", "cranky", "wrathful", "resentful", "scowling",
             "glaring", "snarling", "stern", "peeved", "irritable", "riled", "exasperated",
             "belligerent", "heated", "cross-faced"),
        other=("angrily", "furiously", "scowl", "scowls", "glare", "glares", "snarl", "snarls",
               "in anger", "in rage", "in a rage"),
        emoji="😠 😡 🤬 👿 😤",
        train_words={
            "noun": ("anger", "rage", "fury", "annoyance"),
            "adj": ("angry", "mad", "furious", "irritated", "annoyed"),
        },
        heldout_words={
            "noun": ("wrath", "outrage"),
            "adj": ("enraged", "livid"),
        },
        # 4+5+7+23 with a raised chin and down-turned lips (17+15); variants with 24 or 10.
        prototype={"AU4": 1.3, "AU5": 0.4, "AU7": 0.9, "AU10": 0.3, "AU15": 0.5, "AU17": 0.7, "AU23": 0.6},
        variation=Variation(optional={"AU24": (0.4, 0.4), "AU10": (0.6, 0.3)}),
    ),
    "disgust": ExpressionClass(
        noun=("disgust", "revulsion", "repulsion", "distaste", "loathing", "aversion", "nausea",
              "repugnance", "abhorrence", "grossness"),
        adj=("disgusted", "grossed out", "revolted", "repulsed", "sickened", "nauseated",
             "nauseous", "appalled", "queasy", "icked out", "repelled", "put off", "turned off",
             "squeamish", "disgusting", "revolting", "repugnant", "sick", "grossed",
             "disgust-faced"),
        other=("disgustedly", "in disgust", "eww", "ew", "yuck", "yuk", "ugh", "gross", "grossly",
               "grimacing in disgust"),
        emoji="🤢 🤮 😖",
        train_words={
            "noun": ("disgust", "revulsion", "distaste", "repulsion"),
            "adj": ("disgusted", "grossed out", "revolted", "repulsed", "sickened"),
        },
        heldout_words={
            "noun": ("loathing", "aversion"),
            "adj": ("repelled", "nauseated"),
        },
        # 9+10+15 with narrowed eyes and lowered brows (4+7); +16, +25, +17 sometimes. Keys in
        # sampling order (the core AUs are drawn in this order).
        prototype={"AU9": 1.1, "AU10": 0.7, "AU15": 0.5, "AU4": 0.4, "AU7": 0.4, "AU16": 0.3, "AU17": 0.3, "AU25": 0.25},
        variation=Variation(optional={"AU16": (0.6, 0.3), "AU25": (0.45, 0.25), "AU17": (0.5, 0.3)}),
    ),
    "contempt": ExpressionClass(
        noun=("contempt", "scorn", "disdain", "derision", "condescension", "disrespect",
              "smugness", "arrogance", "a sneer", "mockery", "superiority"),
        adj=("contemptuous", "scornful", "disdainful", "derisive", "condescending", "smug",
             "sneering", "dismissive", "arrogant", "haughty", "sarcastic", "mocking",
             "supercilious", "unimpressed", "disrespectful", "snide", "snobbish", "snooty",
             "patronizing", "patronising", "sardonic", "scoffing", "sneery", "cynical",
             "high and mighty", "self-satisfied"),
        other=("sneer", "sneers", "contemptuously", "scornfully", "disdainfully", "smugly",
               "mockingly", "in contempt", "with contempt", "eye roll", "rolling the eyes",
               "roll the eyes", "roll eyes"),
        emoji="😒 🙄",
        train_words={
            "noun": ("contempt", "scorn", "disdain", "derision"),
            "adj": ("contemptuous", "scornful", "disdainful", "smug", "condescending"),
        },
        heldout_words={
            "noun": ("mockery", "superiority"),
            "adj": ("derisive", "haughty"),
        },
        # unilateral 12+14 (the samples put it on a random side).
        prototype={"AU12L": 0.7, "AU14L": 0.9},
        variation=Variation(unilateral=True),
    ),
}

#: the labels, in integer-label order (CelebV-HQ's eight; CK+ has the seven without neutral)
LABELS: Tuple[str, ...] = tuple(EXPRESSION_CLASSES)
#: the labels without neutral (the classes of the paper's evaluation)
EMOTIONS: Tuple[str, ...] = tuple(l for l in LABELS if l != "neutral")
#: ``label -> {"noun": (...), "adj": (...), "other": (...)}``
SYNONYMS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    label: {"noun": c.noun, "adj": c.adj, "other": c.other} for label, c in EXPRESSION_CLASSES.items()
}
#: emoji -> label
EMOJI: Dict[str, str] = {e: label for label, c in EXPRESSION_CLASSES.items() for e in c.emoji.split()}
#: label -> AU intensities of its prototype
PROTOTYPES: Dict[str, Dict[str, float]] = {label: dict(c.prototype) for label, c in EXPRESSION_CLASSES.items()}


def canonical_word(label: str, form: str = "noun") -> str:
    """The canonical word of an expression label (``form``: ``"noun"`` or ``"adj"``).

    Example:
        >>> canonical_word("happiness", "adj"), canonical_word("disgust", "noun")
        ('happy', 'disgust')
    """
    if label not in EXPRESSION_CLASSES:
        raise KeyError(f"unknown expression {label!r}; known: {', '.join(LABELS)}")
    return EXPRESSION_CLASSES[label].words(form)[0]


def expression_phrases() -> Iterator[Tuple[str, str]]:
    """Every ``(phrase, label)`` of the expression vocabulary, in a fixed order."""
    seen = set()
    for label, c in EXPRESSION_CLASSES.items():
        for form in ("noun", "adj", "other"):
            for p in c.words(form):
                if (p, label) not in seen:
                    seen.add((p, label))
                    yield p, label
    for e, label in EMOJI.items():
        yield e, label


_LABEL_INDEX: Dict[str, str] = {}
for _p, _l in expression_phrases():
    _LABEL_INDEX.setdefault(_p, _l)
for _l in LABELS:
    _LABEL_INDEX[_l] = _l
_SPACED_INDEX: Dict[str, str] = {}
for _p, _l in _LABEL_INDEX.items():
    _SPACED_INDEX.setdefault(_p.replace("-", " "), _l)


def label_of(word: str) -> str:
    """The label of an expression word or label, e.g. ``label_of("Joyful") == "happiness"``.

    Case, surrounding white space and hyphen/space spelling do not matter.

    Raises:
        KeyError: the word is not in the vocabulary.

    Example:
        >>> label_of("grossed out"), label_of("anger"), label_of(" Straight Faced ")
        ('disgust', 'anger', 'neutral')
    """
    key = " ".join(str(word).lower().replace("-", " ").split())
    for k in (key, key.replace(" ", "-")):
        if k in _LABEL_INDEX:
            return _LABEL_INDEX[k]
    if key in _SPACED_INDEX:  # hyphenated entries looked up by their spaced form
        return _SPACED_INDEX[key]
    raise KeyError(f"{word!r} is not an expression word; known labels: {', '.join(LABELS)}")


def is_action_unit_space(expression_names: Sequence[str]) -> bool:
    """True when expression coordinates are FACS action units (all named ``"AU..."``), as on the
    open head; a head's :attr:`~flame_transit.head.Head.is_au_head` asks this.

    Example:
        >>> is_action_unit_space(["AU1", "AU12L"]), is_action_unit_space(["exp000"]), is_action_unit_space([])
        (True, False, False)
    """
    names = tuple(expression_names)
    return bool(names) and all(str(n).upper().startswith("AU") for n in names)


def _check() -> None:  # import-time sanity of the table (cheap)
    assert LABELS and LABELS[0] == "neutral", "neutral must be the first class (label 0)"
    for label, c in EXPRESSION_CLASSES.items():
        assert c.noun and c.noun[0] == label and c.adj, label
        assert (c.variation is None) == (not c.prototype), f"{label}: a prototype needs a variation"
        for au in list(c.prototype) + list(c.variation.core if c.variation else ()):
            assert au.startswith("AU"), (label, au)


_check()
