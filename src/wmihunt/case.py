"""Gather what the outputs show from a case database: findings with their context, the
upstream-style summary, risk per entity, the data overview and the scan accounting.

This is the glue between the analysis modules (``findings``, ``context``, ``risk``,
``detect``) and the renderers in ``report/``, which only take the plain data built here.
A part that fails is left out and named in ``notes``: a report with less context is
better than no report.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from . import context, risk, scanlog
from .detect import summarize
from .findings import finding_to_json, iter_findings
from .report.overview import data_overview
from .rules.loader import load_story
from .store import one_thread


@dataclass
class CaseData:
    findings: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)
    accounting: dict[str, Any] | None = None
    overview: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


#: Findings whose contexts are prepared together (``context.prepare``): their process
#: trees come from a few set queries per page. 64 is as fast as 256 on the benchmark sets
#: and holds at most 64 trees of up to 201 processes each.
CONTEXT_PAGE = 64


def iter_findings_json(
    con: duckdb.DuckDBPyConnection,
    notes: list[str],
    *,
    with_context: bool = True,
    context_rows: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Findings in JSONL shape, in output order, each with its ``context`` when asked for,
    one at a time: a writer that takes them as they come holds a page of rows and one
    finding, not all of them (a scan of many findings). Contexts share one memo (see
    ``context.for_finding``) and each page's process trees are built together
    (``context.prepare``). Problems go to ``notes`` by the end of the iteration."""
    reader = con.cursor()  # read here while the context queries use ``con``
    try:
        rows = iter_findings(reader)
        try:
            page = list(itertools.islice(rows, CONTEXT_PAGE))
        except duckdb.CatalogException:
            notes.append("no findings table in this database (was it made by `wmihunt scan --db`?)")
            return
        failed = 0
        memo: dict[Any, Any] = {}  # what findings share, computed once (``for_finding``)
        limit = context_rows or context.DEFAULT_LIMIT
        # many small queries: one DuckDB thread (``one_thread``)
        with one_thread(con) if with_context else contextlib.nullcontext():
            while page:
                if with_context:
                    context.prepare(con, page, memo)
                for row in page:
                    finding = finding_to_json(row)
                    if with_context and (problem := _add_context(con, finding, row, memo, limit)):
                        failed += 1  # one finding's context must not sink the report
                        if failed == 1:
                            notes.append(problem)
                    yield finding
                page = list(itertools.islice(rows, CONTEXT_PAGE))
        if failed > 1:
            notes.append(f"context failed for {failed} findings")
    finally:
        reader.close()


def _add_context(
    con: duckdb.DuckDBPyConnection,
    finding: dict[str, Any],
    row: dict[str, Any],
    memo: dict[Any, Any],
    limit: int,
) -> str | None:
    """Put the finding's ``context`` in it; what went wrong when it could not."""
    try:
        ctx = context.for_finding(con, finding["finding_id"], memo=memo, row=row, limit=limit)
    except (duckdb.Error, ValueError, KeyError, TypeError) as exc:
        return f"context failed: {type(exc).__name__}: {exc}"
    if ctx:
        finding["context"] = ctx
    return None


def summary_rows(summaries: Any) -> list[dict[str, Any]]:
    """Flat summary rows (``detection`` first) from ``detect`` ``Summary`` objects.

    ``summaries`` is ``DetectionResult.summaries`` (detection -> Summary) or an iterable
    of ``Summary``.
    """
    items = summaries.values() if isinstance(summaries, Mapping) else summaries
    return [{"detection": s.detection, **dict(row)} for s in items or () for row in s.rows]


def load_summary(
    con: duckdb.DuckDBPyConnection, findings: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The upstream-style summary of the story rules that have findings in ``con``.

    Recomputed from the findings table; findings of user rules (``--rules DIR``) are not
    summarized here, since their rule files are not kept in the case.
    """
    fired = {f.get("detection") for f in findings}
    rules = [r for r in load_story() if r.meta.detection in fired]
    return summary_rows([summarize(con, rule) for rule in rules])


def load_case(
    con: duckdb.DuckDBPyConnection,
    *,
    with_context: bool = True,
    with_accounting: bool = True,
    with_summary: bool = True,
    with_overview: bool = True,
    with_findings: bool = True,
    context_rows: int | None = None,
) -> CaseData:
    """Everything a report shows, from an open case database. ``scan`` leaves out what
    its outputs do not show: the accounting (it has its own) and, unless a summary CSV or
    the HTML report is written, the summary (its GROUP BY over every grouping field costs
    DuckDB tens of MB of working memory on a few thousand findings), and, when nothing is
    displayed (``with_overview=False``: a quiet scan without HTML), the risk per entity
    and the data overview; ``with_findings=False``: the findings are streamed instead
    (``iter_findings_json``), and the summary and risk, which come from them, are left
    out."""
    case = CaseData()
    if with_findings:
        case.findings = list(iter_findings_json(
            con, case.notes, with_context=with_context, context_rows=context_rows))
    if case.findings:
        if with_summary:
            case.summary = load_summary(con, case.findings)
        if with_overview:
            case.entities = risk.risk_by_entity(con)
    if with_overview:
        case.overview = data_overview(con)
    if with_accounting:
        case.accounting = scanlog.load(con)
    return case
