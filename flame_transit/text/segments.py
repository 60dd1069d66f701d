"""What an instruction says: :class:`Segment` (one expression target: label or blend, intensity,
extra action units) and :class:`ParsedInstruction` (the segments in order, with what was guessed or
ignored). :func:`~flame_transit.text.parse.parse_instruction` makes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..errors import InstructionError
from .templates import canonical_instruction
from .vocabulary import AU_NAMES, CUSTOM, EXPRESSIONS, INTENSITY_RANGE

__all__ = [
    "Segment",
    "ParsedInstruction",
]

_LABELS = set(EXPRESSIONS) | {CUSTOM}


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
            >>> from flame_transit.text.parse import parse_instruction
            >>> parse_instruction("go from grossed out to joyful").canonical_text()
            'Turn this face from disgust to happiness.'
        """
        return canonical_instruction([s.dominant or "neutral" for s in self.segments])

    def to_dict(self) -> Dict[str, Any]:
        return {"text": self.text, "segments": [s.to_dict() for s in self.segments],
                "ignored": list(self.ignored)}
