"""A report's memo: values computed once for all its findings (see ``for_finding``).

The memo is a plain dict a caller creates for one report over a case that does not change
meanwhile; None means "no memo" (compute every time). Keys are tuples that start with the
name of what they hold.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Memo = dict[Any, Any]


def memoized(memo: Memo | None, key: Any, compute: Callable[[], T]) -> T:
    """``compute()``, or a copy of its value from ``memo``: each caller may edit its own."""
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return copied(memo[key])


def cached(memo: Memo | None, key: Any, compute: Callable[[], T]) -> T:
    """``compute()``, once per ``memo``: the value itself, for callers that only read it
    (and copy what they hand out)."""
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def copied(value: T) -> T:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), several times faster than
    ``copy.deepcopy`` on large contexts; other containers go to ``deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {k: copied(v) for k, v in value.items()}  # type: ignore[attr-defined,return-value]
    if kind is list:
        return [copied(v) for v in value]  # type: ignore[attr-defined,return-value]
    if kind in (str, int, float, bool) or value is None:
        return value
    return copy.deepcopy(value)
