"""Sigma rule files -> compiled rules, through pySigma and the project's backend.

Imported only when a rule set is not in the cache (``rules.cache``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter
from sigma.rule import SigmaRule

from ..backend import TABLE_STATE, SqlBackend
from ..backend.errors import INVALID, RULE_TYPE, UNSUPPORTED, RuleRejected
from ..backend.sql import columns_used
from ..pipeline import model_pipeline, route_for
from .compiled import INTERNAL, CompiledRule, Rejected, RuleSet
from .meta import meta_for

#: ``SigmaCollection.from_yaml`` parses with the pure-Python SafeLoader; libyaml's
#: CSafeLoader gives the same documents (checked on all 2,407 SigmaHQ rule files) about 9x
#: faster, which is most of the time to load a big rule folder (docs/benchmarks.md).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compile_files(files: Iterable[Path], *, source: str, backend: SqlBackend | None) -> RuleSet:
    backend = backend or SqlBackend(model_pipeline())
    result = RuleSet()
    parsed: list[tuple[str, SigmaRule]] = []
    filters: list[SigmaFilter] = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
            documents = list(yaml.load_all(text, Loader=_YAML_LOADER))
            correlations = [d for d in documents if isinstance(d, dict) and "correlation" in d]
            for doc in correlations:  # rejected before pySigma tries to resolve their references
                title = str(doc.get("title")) if doc.get("title") is not None else None
                result.rejected.append(
                    Rejected(str(f), title, RULE_TYPE, "correlation rules are not supported")
                )
            documents = [d for d in documents if not any(d is c for c in correlations)]
            if correlations and not documents:
                continue
            collection = SigmaCollection.from_dicts(
                documents, collect_errors=True, collect_filters=True
            )
        except (OSError, UnicodeDecodeError, yaml.YAMLError, SigmaError) as exc:
            result.rejected.append(Rejected(str(f), None, INVALID, _reason(exc)))
            continue
        if collection.errors and not collection.rules and not collection.filters:
            err = collection.errors[0]
            result.rejected.append(Rejected(str(f), None, INVALID, _first_line(err)))
            continue
        filters.extend(collection.filters)
        for rule in collection.rules:
            if isinstance(rule, SigmaCorrelationRule):
                result.rejected.append(
                    Rejected(str(f), rule.title, RULE_TYPE, "correlation rules are not supported")
                )
            elif rule.errors:
                result.rejected.append(
                    Rejected(str(f), rule.title, INVALID, _first_line(rule.errors[0]))
                )
            else:
                parsed.append((str(f), rule))
    result.filters = len(filters)
    for path, rule in parsed:
        for flt in filters:
            try:
                rule = flt.apply_on_rule(rule)
            except SigmaError as exc:
                result.rejected.append(Rejected(path, rule.title, INVALID, _first_line(exc)))
        outcome = compile_rule(rule, path=path, source=source, backend=backend)
        if isinstance(outcome, Rejected):
            result.rejected.append(outcome)
        else:
            result.compiled.append(outcome)
    return result


def compile_rule(
    rule: SigmaRule, *, path: str, source: str, backend: SqlBackend
) -> CompiledRule | Rejected:
    """One Sigma rule -> CompiledRule, or Rejected with the reason. Never raises."""
    title = rule.title
    try:
        queries = backend.convert_rule(rule, "where")
        table = str(backend.last_processing_pipeline.state.get(TABLE_STATE))
        route = route_for(rule)
        if not queries or route is None:
            raise RuleRejected(UNSUPPORTED, "the rule produced no query")
        where = queries[0] if len(queries) == 1 else " OR ".join(f"({q})" for q in queries)
        raw, lowered = columns_used(rule)
        meta = meta_for(rule, table)
    except RuleRejected as exc:
        return Rejected(path, title, exc.category, exc.detail)
    except NotImplementedError as exc:
        return Rejected(path, title, UNSUPPORTED, _first_line(exc))
    except SigmaError as exc:
        return Rejected(path, title, INVALID, _first_line(exc))
    except Exception as exc:  # a compiler bug must not hide the other rules
        return Rejected(path, title, INTERNAL, f"{type(exc).__name__}: {_first_line(exc)}")
    return CompiledRule(
        rule_id=str(rule.id) if rule.id is not None else f"{Path(path).stem}",
        title=title,
        table=table,
        where=where,
        meta=meta,
        source=source,
        path=path,
        logsource=route.name,
        level=rule.level.name.lower() if rule.level is not None else None,
        raw_columns=tuple(sorted(raw)),
        lowered_columns=tuple(sorted(lowered)),
    )


def _reason(exc: BaseException) -> str:
    """One line; a YAML syntax error says where it is (its first line alone does not)."""
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError) and mark is not None:
        what = exc.problem or exc.context or "invalid YAML"
        return f"invalid YAML: {what} (line {mark.line + 1}, column {mark.column + 1})"
    return _first_line(exc)


def _first_line(exc: Any) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["compile_files", "compile_rule"]
