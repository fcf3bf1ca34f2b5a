"""Checks of plain YAML values shared by experiment files, specs and model options.

YAML hands Python a bool for ``true``, and bool is a subclass of int; a count or a rate is never
``true``, so every check of a whole number or a number refuses bools.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def is_whole(value: Any) -> bool:
    """An int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def closest(word: Any, choices: Iterable[str]) -> str | None:
    """The choice a typo most likely meant, or None when none is close."""
    matches = close_matches(word, choices, 1)
    return matches[0] if matches else None


def close_matches(word: Any, choices: Iterable[str], count: int = 3) -> list[str]:
    """Up to ``count`` choices close to ``word``, the closest first."""
    return difflib.get_close_matches(str(word), list(choices), n=count)
