"""Lazy public names of a package: the module that defines a name is imported on first use, so
importing the package stays cheap (no torch, no models).

Example:
    >>> getattr_, dir_ = lazy_exports("flame_transit.text", {"label_of": "vocabulary"}, {})
    >>> getattr_("label_of")("joyful")
    'happiness'
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, Mapping, Tuple

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: Mapping[str, str],
                 namespace: Dict[str, Any]) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public ``names`` map to submodules.

    Args:
        package: the package's ``__name__``.
        names: public name -> submodule (relative to ``package``) that defines it.
        namespace: the package's ``globals()`` (listed by ``__dir__``).
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> List[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
