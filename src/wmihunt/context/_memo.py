"""A report's memo: values computed once for all its findings (see ``for_finding``).

The memo is a plain dict a caller creates for one report over a case that does not change
meanwhile; None means "no memo" (compute every time). Keys are tuples that start with the
name of what they hold.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Memo = dict[Any, Any]


#: How many values per event and per time window a memo keeps (``memoized(recent=)``):
#: many distinct ones, each asked for by findings near each other (a report's findings
#: come in time order), so a report of any size holds a bounded number. A window holds
#: up to 300 rows and is shared by the findings of one host and time: few are needed.
RECENT_EVENTS = 64
RECENT_WINDOWS = 16


def memoized(
    memo: Memo | None, key: Any, compute: Callable[[], T], *, recent: int = 0
) -> T:
    """``compute()``, or a copy of its value from ``memo``: each caller may edit its own.

    ``recent``: keep the value among the last ``recent`` of its kind (``key[0]``) only."""
    if memo is None:
        return compute()
    store = memo.setdefault(("recent", key[0]), OrderedDict()) if recent else memo
    if key in store:
        if recent:
            store.move_to_end(key)
        return copied(store[key])
    value = store[key] = compute()
    if recent and len(store) > recent:
        store.popitem(last=False)
    return copied(value)


def has_recent(memo: Memo, key: Any) -> bool:
    """Is ``key``'s value among the ``recent`` ones ``memoized`` keeps?"""
    return key in memo.get(("recent", key[0]), ())


def cached(memo: Memo | None, key: Any, compute: Callable[[], T]) -> T:
    """``compute()``, once per ``memo``: the value itself, for callers that only read it
    (and copy what they hand out)."""
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


_SCALARS = frozenset({str, int, float, bool, type(None)})


def copied(value: T) -> T:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), several times faster than
    ``copy.deepcopy`` on large contexts; other containers go to ``deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {  # type: ignore[return-value]
            k: v if type(v) in _SCALARS else copied(v)
            for k, v in value.items()  # type: ignore[attr-defined]
        }
    if kind is list:
        return [v if type(v) in _SCALARS else copied(v) for v in value]  # type: ignore[attr-defined,return-value]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value)
