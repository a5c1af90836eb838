"""Gather what the reports show from a case database: findings with context, the
upstream-style summary, risk per entity, and the data overview.

The report renderers take plain data; this is the one place that knows which modules
produce it (``wmihunt.findings``, ``wmihunt.context``, ``wmihunt.risk``, ``wmihunt.detect``).
A part that is missing or fails is left out and named in ``notes``: a report with less
context is better than no report.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from .overview import data_overview

#: Function names tried, in order, for the entity ranking (all entities, ranked).
ENTITY_FUNCTIONS = ("risk_by_entity",)


@dataclass
class CaseData:
    findings: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)
    accounting: dict[str, Any] | None = None
    overview: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _module(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _first_function(module: Any, names: tuple[str, ...]) -> Callable[..., Any] | None:
    for name in names:
        fn = getattr(module, name, None)
        if callable(fn):
            return fn
    return None


def _rows(value: Any) -> list[dict[str, Any]]:
    """A list of dicts from whatever a producer returns (list of mappings, or a relation)."""
    if value is None:
        return []
    if hasattr(value, "fetchall") and hasattr(value, "description"):
        names = [d[0] for d in value.description]
        return [dict(zip(names, row, strict=True)) for row in value.fetchall()]
    return [dict(r) if isinstance(r, Mapping) else {"value": r} for r in value]


def load_findings(
    con: duckdb.DuckDBPyConnection, notes: list[str], *, context: bool = True
) -> list[dict[str, Any]]:
    """Findings in JSONL shape (``wmihunt.findings``), with ``context`` when available
    (and asked for: computing it costs a few joins per finding)."""
    findings_mod = _module("wmihunt.findings")
    if findings_mod is None:
        notes.append("no findings module (wmihunt.findings): report has no findings")
        return []
    try:
        rows = findings_mod.fetch_findings(con)
    except duckdb.Error as exc:
        notes.append(f"no findings table in this database ({type(exc).__name__})")
        return []
    findings = [findings_mod.finding_to_json(row) for row in rows]
    if not context:
        return findings
    context_mod = _module("wmihunt.context")
    for_finding = getattr(context_mod, "for_finding", None)
    if for_finding is None:
        notes.append("no context (wmihunt.context.for_finding not available)")
        return findings
    failed = 0
    for finding in findings:
        try:
            context = for_finding(con, finding.get("finding_id"))
        except Exception as exc:  # one finding's context must not sink the report
            failed += 1
            if failed == 1:
                notes.append(f"context failed: {type(exc).__name__}: {exc}")
            continue
        if context:
            finding["context"] = context
    if failed > 1:
        notes.append(f"context failed for {failed} findings")
    return findings


def _call(
    module_name: str, names: tuple[str, ...], con: duckdb.DuckDBPyConnection, notes: list[str]
) -> list[dict[str, Any]]:
    module = _module(module_name)
    fn = _first_function(module, names) if module is not None else None
    if fn is None:
        notes.append(f"{module_name}: none of {', '.join(names)} available")
        return []
    try:
        return _rows(fn(con))
    except Exception as exc:
        notes.append(f"{module_name}.{fn.__name__} failed: {type(exc).__name__}: {exc}")
        return []


def summary_rows(summaries: Any) -> list[dict[str, Any]]:
    """Flat summary rows (``detection`` first) from ``detect`` ``Summary`` objects.

    ``summaries`` is ``DetectionResult.summaries`` (detection -> Summary) or any iterable
    of objects with ``detection`` and ``rows``.
    """
    items = summaries.values() if isinstance(summaries, Mapping) else summaries
    out = []
    for summary in items or ():
        name = getattr(summary, "detection", None)
        for row in getattr(summary, "rows", None) or ():
            out.append({"detection": name, **dict(row)})
    return out


def load_summary(
    con: duckdb.DuckDBPyConnection, findings: list[dict[str, Any]], notes: list[str]
) -> list[dict[str, Any]]:
    """The upstream-style summary of the story rules that have findings in ``con``.

    The summary is recomputed from the findings table (``detect.summarize``); findings of
    user rules (``--rules DIR``) are not summarized here: their rule files are not kept.
    """
    detect = _module("wmihunt.detect")
    loader = _module("wmihunt.rules.loader")
    if detect is None or loader is None or not hasattr(detect, "summarize"):
        notes.append("no upstream-style summary (wmihunt.detect.summarize not available)")
        return []
    fired = {f.get("detection") for f in findings}
    try:
        rules = [r for r in loader.load_story() if r.meta.detection in fired]
        return summary_rows([detect.summarize(con, rule) for rule in rules])
    except Exception as exc:
        notes.append(f"upstream-style summary failed: {type(exc).__name__}: {exc}")
        return []


def load_case(con: duckdb.DuckDBPyConnection, *, context: bool = True) -> CaseData:
    """Everything a report shows, from an open case database (``context=False``: findings
    without their per-finding context, e.g. for ``scan --no-context``)."""
    case = CaseData()
    case.findings = load_findings(con, case.notes, context=context)
    case.summary = load_summary(con, case.findings, case.notes) if case.findings else []
    case.entities = _call("wmihunt.risk", ENTITY_FUNCTIONS, con, case.notes)
    try:
        case.overview = data_overview(con)
    except duckdb.Error as exc:
        case.notes.append(f"no data overview: {type(exc).__name__}: {exc}")
    return case
