"""The action-unit space synthetic samples live in (the open head's expression coordinates;
AU26 = jaw drop) and its map into other AU-named expression spaces.

Shared by :mod:`.synthetic` (sampling) and :mod:`.flame_space` (the AU -> FLAME fit).

Example:
    >>> au_to_head_matrix(["AU12", "AU1"]).shape == (2, len(AU_NAMES))
    True
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

__all__ = ["AU_NAMES", "au_to_head_matrix", "open_head_constants"]


def open_head_constants() -> Tuple[Tuple[str, ...], float]:
    """The open head's expression names (the AUs) and jaw radians per unit of AU26."""
    from ..head import open_head as oh

    return tuple(oh.EXPRESSION_NAMES), float(oh.JAW_RAD_PER_AU26)


#: the AU space the samples live in: the open head's expression coordinates (AU26 = jaw)
AU_NAMES: Tuple[str, ...] = open_head_constants()[0]


def au_to_head_matrix(expression_names: Sequence[str]) -> np.ndarray:
    """``(E, len(AU_NAMES))`` map from the sample AU space to an AU-named expression space.

    AUs the head lacks are dropped, except one-sided AUs (``AU12L``) which fall back to half of
    the bilateral AU when only that exists.
    """
    names = [str(n).upper() for n in expression_names]
    M = np.zeros((len(names), len(AU_NAMES)), dtype=np.float64)
    pos = {n: i for i, n in enumerate(names)}
    for j, au in enumerate(AU_NAMES):
        if au in pos:
            M[pos[au], j] = 1.0
        elif au[-1] in "LR" and au[:-1] in pos:
            M[pos[au[:-1]], j] = 0.5
    return M
