"""Load Sigma rules, compile them against the models, and say why the others cannot run.

Nothing is dropped silently: every rule file ends up either as a :class:`CompiledRule` or as
a :class:`Rejected` entry with its file and a reason category (for counting) and detail.
A rule set compiled before (same files, same bytes, same compiler) comes from the cache
(``rules.cache``) without importing pySigma; the compiler is in ``rules.compiler``.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import cache as rule_cache
from .compiled import INTERNAL, STORY, USER, CompiledRule, Rejected, RuleSet

if TYPE_CHECKING:
    from ..backend.sql import SqlBackend


def story_files() -> list[Path]:
    """The twelve story rule files shipped in the package, in detection order."""
    root = resources.files("wmihunt.rules") / "story"
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".yml"))


def load_story(backend: SqlBackend | None = None) -> list[CompiledRule]:
    """Compile the story rules; a story rule that does not compile is a bug, so this raises."""
    ruleset = load_files(story_files(), source=STORY, backend=backend)
    if ruleset.rejected:
        bad = "; ".join(f"{Path(r.path).name}: {r.category}: {r.detail}" for r in ruleset.rejected)
        raise RuntimeError(f"story rules failed to compile: {bad}")
    return sorted(ruleset.compiled, key=lambda r: (r.meta.number or 0, r.title))


def load_rules_dir(path: str | Path, *, backend: SqlBackend | None = None) -> RuleSet:
    """Compile every ``*.yml``/``*.yaml`` under ``path`` (a folder or one file) as user rules."""
    p = Path(path)
    files = (
        [p]
        if p.is_file()
        else sorted(f for f in p.rglob("*") if f.suffix in (".yml", ".yaml") and f.is_file())
    )
    return load_files(files, source=USER, backend=backend)


def load_files(files: Iterable[Path], *, source: str, backend: SqlBackend | None = None) -> RuleSet:
    """Compile ``files``; with the default backend, reuse the result of an identical earlier
    compile (``rules.cache``: same files, same bytes, same compiler)."""
    files = list(files)
    entry = rule_cache.key(files, source) if backend is None else None
    if entry is not None and (cached := rule_cache.load(entry)) is not None:
        return cached
    result = _compile_files(files, source=source, backend=backend)
    if entry is not None:
        rule_cache.store(entry, result)
    return result


def _compile_files(files: list[Path], *, source: str, backend: SqlBackend | None) -> RuleSet:
    from .compiler import compile_files

    return compile_files(files, source=source, backend=backend)


def __getattr__(name: str) -> Any:
    if name == "compile_rule":  # the compiler, on first use (it imports pySigma)
        from .compiler import compile_rule

        return compile_rule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "INTERNAL",
    "STORY",
    "USER",
    "CompiledRule",
    "Rejected",
    "RuleSet",
    "load_files",
    "load_rules_dir",
    "load_story",
    "story_files",
]
