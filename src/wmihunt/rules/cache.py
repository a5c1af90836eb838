"""Compiled rules kept between runs, keyed by the rule files' bytes and the compiler.

Parsing and compiling Sigma is most of the time to load a big rule folder (about 2 s for
SigmaHQ's 1,183 ``process_creation`` rules, docs/benchmarks.md); a scan that runs the same
rules again reads their compiled SQL from here in a few milliseconds.

The key covers everything the result depends on: each file's path and bytes, the rule
source (story/user), wmihunt's compiler sources (backend, pipeline, rules, models), and the
pySigma version. Any change gives another key, so an entry is never stale; a damaged or
unreadable entry is ignored and rewritten. Entries are JSON (no pickle), written
atomically. ``WMIHUNT_CACHE_DIR`` sets the folder (default ``$XDG_CACHE_HOME/wmihunt`` or
``~/.cache/wmihunt``); ``WMIHUNT_CACHE_DIR=off`` disables the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import tempfile
from collections.abc import Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .meta import GroupField, RuleMeta

if TYPE_CHECKING:
    from .loader import RuleSet

ENV = "WMIHUNT_CACHE_DIR"
_VERSION = 1
#: Modules whose code decides what a rule compiles to (relative to the package root).
_COMPILER = ("backend", "pipeline.py", "rules", "models.py")


def cache_dir() -> Path | None:
    """The cache folder, or None when disabled."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "no") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "wmihunt"


@cache
def compiler_fingerprint() -> str:
    """Hash of the compiler's own sources and versions (once per process)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"v{_VERSION}".encode())
    for name in ("pySigma", "wmihunt"):
        try:
            h.update(f"{name}={metadata.version(name)};".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{name}=?;".encode())
    for part in _COMPILER:
        path = root / part
        sources = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for src in sources:
            h.update(str(src.relative_to(root)).encode())
            h.update(src.read_bytes())
    return h.hexdigest()


def key(files: Sequence[Path], source: str) -> str | None:
    """The entry key for compiling ``files`` as ``source``; None if a file is unreadable
    (the loader then reports it, uncached), or when the cache is off."""
    if cache_dir() is None:
        return None
    h = hashlib.sha256(f"{compiler_fingerprint()}|{source}|".encode())
    try:
        for f in files:
            data = f.read_bytes()
            h.update(f"{f}\0{len(data)}\0".encode())
            h.update(data)
    except OSError:
        return None
    return h.hexdigest()


def load(entry: str) -> RuleSet | None:
    """The cached RuleSet for ``entry``, or None (absent, damaged, disabled)."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        doc = orjson.loads((folder / f"rules-{entry}.json").read_bytes())
        return _ruleset(doc)
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def store(entry: str, ruleset: RuleSet) -> None:
    """Keep ``ruleset`` under ``entry``; silently does nothing if it cannot."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        data = orjson.dumps(_document(ruleset))
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".rules-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, folder / f"rules-{entry}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, TypeError):  # read-only home, or metadata that JSON cannot hold
        return


# -- JSON shape: lossless for dataclasses, tuples and JSON values, else not cached ---------
_DATACLASS = "__dataclass__"
_TUPLE = "__tuple__"


def _classes() -> dict[str, type]:
    from .compiled import CompiledRule, Rejected, RuleSet

    return {c.__name__: c for c in (CompiledRule, Rejected, RuleSet, RuleMeta, GroupField)}


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError("non-finite float")
        return value
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value) or {_DATACLASS, _TUPLE} & value.keys():
            raise TypeError("dict that JSON cannot hold as is")
        return {k: _encode(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and type(value).__name__ in _classes():
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {_DATACLASS: type(value).__name__, **fields}
    raise TypeError(f"cannot cache a {type(value).__name__}")


def _decode(value: Any, classes: dict[str, type]) -> Any:
    if isinstance(value, list):
        return [_decode(v, classes) for v in value]
    if isinstance(value, dict):
        if _TUPLE in value:
            return tuple(_decode(v, classes) for v in value[_TUPLE])
        name = value.get(_DATACLASS)
        items = {k: _decode(v, classes) for k, v in value.items() if k != _DATACLASS}
        return classes[name](**items) if name is not None else items
    return value


def _document(ruleset: RuleSet) -> Any:
    return _encode(ruleset)


def _ruleset(doc: Any) -> RuleSet:
    from .loader import RuleSet

    result = _decode(doc, _classes())
    if not isinstance(result, RuleSet):
        raise TypeError("not a rule set")
    return result
