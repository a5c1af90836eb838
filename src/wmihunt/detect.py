"""Run compiled rules as SQL over the model tables; fill ``findings``; build summaries.

All rules of one table are matched in ONE query (``build_match_sql``), whose (row,
rule) hits go to a temp table; the findings are then written by a second statement built
for the rules that matched only (``build_output_sql``). Two matching shapes:

* ``scan`` (default): the columns the rules read are selected once per row (lower-cased
  copies materialised, so ``lower(x)`` is not recomputed per predicate), the WHERE is the
  OR of all rules, and for the few matching rows a list of matched rule indexes is built
  and unnested. From ``DEDUPE_RULES`` rules on, each distinct combination of the read
  values is tested once, by the list alone (no WHERE: it would plan every predicate
  twice); from ``PARALLEL_RULES`` on, the rules are split over two queries run at once
  (planning ~1,100 rules takes about half a second, single-threaded);
* ``union``: one ``SELECT ... WHERE rule`` per rule over the same rows, ``UNION ALL``.

Measured on 1,000,000 synthetic process starts (2 shared cores, busy machine): the 12
story rules took 335 ms with ``scan`` and 441 ms with ``union``; the story plus SigmaHQ's
1,088 compilable ``process_creation`` rules took 116 s with ``scan`` and 170 s with
``union`` (session 1; docs/benchmarks.md has today's figures). ``scan`` is the default;
``union`` is kept as the most portable SQL.
"""

from __future__ import annotations

import datetime as dt
import threading
import time as _time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from . import findings as F
from .backend.columns import LOWERED_PREFIX, relation_columns
from .backend.dialect import DUCKDB, Dialect
from .findings import finding_to_json  # noqa: F401  (the API is run_detections + this)
from .models import MODELS
from .reassembly import EXTRA_COLUMNS, REASSEMBLED_SQL
from .rules import CompiledRule
from .rules.meta import GroupField, split_template

STRATEGIES = ("scan", "union")
_RULES_VIEW = "_wmihunt_rules"
_MISSING_UPSTREAM = "null"  # Splunk's fillnull value
_MISSING_MESSAGE = "unknown"
_REASSEMBLED = "_wmihunt_script_reassembled"
_SPANNING = "_wmihunt_findings_spanning"
#: (row id, rule index) per match of one pass (``build_match_sql``)
_HITS = "_wmihunt_hits"
_REASSEMBLED_NOTE = " (matched in the script reassembled from its 4104 parts)"
#: rows materialised per pass of the scan strategy (bounds memory on big cases)
CHUNK_ROWS = 2_000_000
#: rules per matching query before the rules of a table are split over threads
PARALLEL_RULES = 200
#: from this many rules in one query, each distinct combination of the values the rules
#: read is tested once (logs repeat the same command lines, images and parents a lot)
DEDUPE_RULES = 50
MATCH_THREADS = 2


@dataclass
class Summary:
    """Upstream-style result of one detection: rows of grouping values + count, times."""

    detection: str
    columns: list[str]
    rows: list[dict[str, Any]]


@dataclass
class DetectionResult:
    rules: list[CompiledRule]
    counts: dict[str, int]  # detection name -> findings
    summaries: dict[str, Summary]
    errors: list[tuple[str, str]] = field(default_factory=list)  # (rule title, reason)
    match_seconds: float = 0.0
    strategy: str = "scan"

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def select_rules(
    rules: Sequence[CompiledRule],
    *,
    detections: Iterable[str] | None = None,
    types: Iterable[str] | None = None,
    min_risk: int | None = None,
) -> list[CompiledRule]:
    """Apply the user's filters. An unknown detection name is an error (ValueError)."""
    chosen = list(rules)
    if detections:
        wanted = [d.strip().casefold() for d in detections]

        def keys(r: CompiledRule) -> set[str]:
            k = {r.meta.detection, r.meta.detection_id, r.rule_id, r.title}
            if r.meta.number is not None:
                k |= {str(r.meta.number), f"#{r.meta.number}"}
            return {s.casefold() for s in k}

        unknown = [w for w in wanted if not any(w in keys(r) for r in chosen)]
        if unknown:
            names = ", ".join(sorted({r.meta.detection for r in chosen}))
            raise ValueError(f"unknown detection(s): {', '.join(unknown)}; known: {names}")
        chosen = [r for r in chosen if keys(r) & set(wanted)]
    if types:
        allowed = {t.casefold() for t in types}
        chosen = [r for r in chosen if r.meta.type.casefold() in allowed]
    if min_risk is not None:
        chosen = [r for r in chosen if r.meta.risk_score >= min_risk]
    return chosen


def run_detections(
    con: duckdb.DuckDBPyConnection,
    rules: Sequence[CompiledRule],
    *,
    detections: Iterable[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    types: Iterable[str] | None = None,
    min_risk: int | None = None,
    strategy: str = "scan",
    dialect: Dialect = DUCKDB,
    summaries: bool = True,
) -> DetectionResult:
    """Run ``rules`` over the model tables of ``con``; replace ``findings``; summarise
    (one query per rule that fired; ``summaries=False`` leaves ``result.summaries`` empty:
    ``scan`` summarises the story rules itself, from the case).

    ``since`` is inclusive, ``until`` exclusive; both are UTC (aware datetimes are converted).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}")
    chosen = select_rules(rules, detections=detections, types=types, min_risk=min_risk)
    F.create_table(con)
    result = DetectionResult(chosen, {r.meta.detection: 0 for r in chosen}, {}, strategy=strategy)
    if chosen:
        _register_rules(con, chosen)
        try:
            start = _time.perf_counter()
            for table in dict.fromkeys(r.table for r in chosen):
                indexed = [(i, r) for i, r in enumerate(chosen) if r.table == table]
                _run_table(con, table, indexed, since, until, strategy, dialect, result)
                if table == "script_block":
                    _run_reassembled(con, indexed, since, until, strategy, dialect, result)
            result.match_seconds = _time.perf_counter() - start
        finally:
            con.unregister(_RULES_VIEW)
            con.execute(f"DROP TABLE IF EXISTS {_HITS}")
    for name, n in con.execute(
        f'SELECT detection, count(*) FROM "{F.TABLE}" GROUP BY detection'
    ).fetchall():
        result.counts[name] = n
    if not summaries:
        return result
    fired = {(rid, src) for rid, src in con.execute(
        f'SELECT DISTINCT rule_id, rule_source FROM "{F.TABLE}"'
    ).fetchall()}  # fmt: skip
    for rule in chosen:
        result.summaries[rule.meta.detection] = (
            summarize(con, rule, dialect)
            if (rule.rule_id, rule.source) in fired
            else Summary(rule.meta.detection, _summary_columns(rule), [])
        )
    return result


def _register_rules(con: duckdb.DuckDBPyConnection, rules: Sequence[CompiledRule]) -> None:
    m = [r.meta for r in rules]
    table = pa.table(
        {
            "idx": pa.array(range(len(rules)), pa.int32()),
            "detection": [x.detection for x in m],
            "detection_id": [x.detection_id for x in m],
            "detection_number": pa.array([x.number for x in m], pa.int32()),
            "rule_id": [r.rule_id for r in rules],
            "rule_title": [r.title for r in rules],
            "rule_source": [r.source for r in rules],
            "type": [x.type for x in m],
            "risk_score": pa.array([x.risk_score for x in m], pa.int32()),
            "mitre": pa.array([list(x.mitre) for x in m], pa.list_(pa.string())),
            "risk_objects": pa.array([list(x.risk_objects) for x in m], pa.list_(pa.string())),
            "threat_objects": pa.array([list(x.threat_objects) for x in m], pa.list_(pa.string())),
        }
    )
    con.register(_RULES_VIEW, table)


def _time_filter(
    d: Dialect, since: dt.datetime | None, until: dt.datetime | None
) -> tuple[str, list[Any]]:
    parts, params = [], []
    col = d.ident("time")
    for value, op in ((since, ">="), (until, "<")):
        if value is not None:
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            parts.append(f"{col} {op} ?")
            params.append(value)
    return " AND ".join(parts), params


def _render(d: Dialect, template: str | None, alias: str, missing: str) -> str:
    """``$field$`` template -> SQL string expression over the matched row ``alias``."""
    if template is None:
        return "NULL"
    args = []
    for is_field, text in split_template(template):
        if is_field:
            args.append(f"coalesce({d.text(f'{alias}.{d.ident(text)}')}, {d.string(missing)})")
        else:
            args.append(d.string(text))
    return d.concat(args)


def _case(d: Dialect, per_rule: list[tuple[int, str]]) -> str:
    whens = " ".join(f"WHEN {i} THEN {expr}" for i, expr in per_rule)
    return f"CASE m._rule {whens} END"


def build_match_sql(
    table: str,
    indexed: list[tuple[int, CompiledRule]],
    *,
    row_filter: str = "",
    strategy: str = "scan",
    dialect: Dialect = DUCKDB,
    source: str | None = None,
) -> str:
    """The query giving (``_rid``, ``_rule``) per match of the rules in ``indexed`` (all
    on ``table``).

    ``l``: the rows (``row_filter``: time window, row-id chunk) with the columns the rules
    read, lower-cased ones computed once.
    """
    d = dialect
    raw: set[str] = set()
    lowered: set[str] = set()
    for _, r in indexed:
        raw.update(r.raw_columns)
        lowered.update(r.lowered_columns)
    rid = d.ident("_rid")
    items = [f"{d.row_id} AS {rid}", *relation_columns(table, raw, lowered, d)]
    where = f" WHERE {row_filter}" if row_filter else ""
    rows = f"SELECT {', '.join(items)} FROM {d.ident(source or table)}{where}"
    if strategy == "scan":
        hits = ", ".join(f"CASE WHEN ({r.where}) THEN {i} END" for i, r in indexed)
        matched = d.matched_list_expression.format(items=hits)
        l_cte = d.materialized_cte.format(name="l", query=rows)
        read = [d.ident(c) for c in sorted(raw)] + [
            d.ident(LOWERED_PREFIX + c) for c in sorted(lowered)
        ]
        if len(indexed) < DEDUPE_RULES or not read:
            any_rule = f" {d.or_token} ".join(f"({r.where})" for _, r in indexed)
            return (
                f"WITH {l_cte} "
                f"SELECT {rid}, {d.unnest_expression.format(expr=matched)} AS _rule "
                f"FROM l WHERE {any_rule}"
            )
        # Many rules: test each distinct combination of the values they read once (the
        # predicates see nothing else), then give its matches to every row that has it.
        # No WHERE with the OR of all rules here: it repeated every predicate, and a
        # combination that matches nothing unnests to no row anyway (measured, 1,100
        # SigmaHQ rules: 1.34 -> 0.65 s on 1,044 combinations, 9.8 -> 7.5 s on 196,598;
        # planning is most of the cost, about 1 ms per predicate).
        cols = ", ".join(read)
        rids = d.list_aggregate_expression.format(expr=rid)
        k_cte = d.materialized_cte.format(
            name="k", query=f"SELECT {rids} AS _rids, {cols} FROM l GROUP BY {cols}"
        )
        return (
            f"WITH {l_cte}, {k_cte}, "
            f"m AS (SELECT _rids, {d.unnest_expression.format(expr=matched)} AS _rule "
            f"FROM k) "
            f"SELECT {d.unnest_expression.format(expr='_rids')} AS {rid}, _rule FROM m"
        )
    union = " UNION ALL ".join(
        f"SELECT {rid}, {i} AS _rule FROM l WHERE ({r.where})" for i, r in indexed
    )
    return f"WITH l AS ({rows}) {union}"


def build_output_sql(
    table: str,
    indexed: list[tuple[int, CompiledRule]],
    hits: str,
    *,
    dialect: Dialect = DUCKDB,
    source: str | None = None,
    target: str = F.TABLE,
) -> str:
    """The INSERT that writes one findings row per match in the ``hits`` table (from
    ``build_match_sql``) of the rules in ``indexed``: only the rules that matched, so
    that the per-rule expressions (fields, messages) are planned for those alone."""
    d = dialect
    src = d.ident(source or table)
    m = (
        f"SELECT t.*, h._rule FROM {d.ident(hits)} h "
        f"JOIN {src} t ON t.{d.row_id} = h.{d.ident('_rid')}"
    )
    columns = set(MODELS[table].column_names)
    fields = _case(
        d,
        [
            (i, d.json_object([(g.name, _first(d, g, "m")) for g in r.meta.fields]))
            for i, r in indexed
        ],
    )
    message = _case(d, [(i, _render(d, r.meta.message, "m", _MISSING_MESSAGE)) for i, r in indexed])
    upstream = _case(
        d, [(i, _render(d, r.meta.message_upstream, "m", _MISSING_UPSTREAM)) for i, r in indexed]
    )
    inferred = (
        f"coalesce(m.{d.ident('parent_inferred')}, false)"
        if "parent_inferred" in columns
        else d.false_literal
    )
    evidence = ", ".join(
        f"m.{d.ident(c)}"
        for c in ("channel", "event_id", "ev_file", "ev_member", "ev_record_id", "ev_line")
    )
    uid = d.ident("uid")
    finding_id = d.hash_expression.format(
        expr=d.concat([f"r.{d.ident('detection_id')}", d.string("|"), f"m.{uid}"])
    )
    return (
        f"INSERT INTO {d.ident(target)} ({', '.join(d.ident(c) for c in F.COLUMN_NAMES)}) "
        f"WITH m AS ({m}) "
        f"SELECT {finding_id}, r.detection, r.detection_id, r.detection_number, r.rule_id, "
        f"r.rule_title, r.rule_source, r.type, r.risk_score, r.mitre, r.risk_objects, "
        f"r.threat_objects, {message}, {upstream}, m.{d.ident('time')}, m.{d.ident('dest')}, "
        f"m.{d.ident('user')}, m.{d.ident('data_source')}, {d.string(table)}, m.{uid}, "
        f"{fields}, {inferred}, {evidence} "
        f"FROM m JOIN {_RULES_VIEW} r ON r.idx = m._rule"
    )


def _chunks(con: duckdb.DuckDBPyConnection, table: str, dialect: Dialect) -> list[tuple[int, int]]:
    """Row-id ranges of at most CHUNK_ROWS rows: the materialised rows stay bounded."""
    ((lo, hi),) = con.execute(
        f"SELECT min({dialect.row_id}), max({dialect.row_id}) FROM {dialect.ident(table)}"
    ).fetchall()
    if lo is None:
        return []
    return [(a, min(a + CHUNK_ROWS, hi + 1)) for a in range(lo, hi + 1, CHUNK_ROWS)]


def _match(
    con: duckdb.DuckDBPyConnection,
    table: str,
    batch: list[tuple[int, CompiledRule]],
    row_filter: str,
    params: list[Any],
    strategy: str,
    dialect: Dialect,
    source: str | None,
) -> None:
    """Fill the ``_HITS`` table with the matches of ``batch``.

    With many rules (``PARALLEL_RULES``) the rules are split over ``MATCH_THREADS``
    queries run at once on their own cursors: planning ~1,100 rule expressions takes
    about a second, single-threaded in DuckDB, and a table of fewer than 122,880 rows
    (one row group) is also scanned by one thread. A temp ``source`` (only this
    connection sees it) is matched in one query."""

    def sql(rules: list[tuple[int, CompiledRule]]) -> str:
        return build_match_sql(table, rules, row_filter=row_filter, strategy=strategy,
                               dialect=dialect, source=source)  # fmt: skip

    n = min(MATCH_THREADS, len(batch) // PARALLEL_RULES)
    if n < 2 or source is not None:
        con.execute(dialect.temp_table.format(name=_HITS, query=sql(batch)), params)
        return
    groups = [batch[k::n] for k in range(n)]  # interleaved: costly rules spread out
    tables: list[pa.Table | None] = [None] * n
    errors: list[BaseException | None] = [None] * n

    def work(k: int) -> None:
        cursor = con.cursor()
        try:
            tables[k] = _arrow(cursor.sql(sql(groups[k]), params=params))
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors[k] = exc
        finally:
            cursor.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    con.register("_wmihunt_hits_arrow", pa.concat_tables([t for t in tables if t is not None]))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_HITS} AS FROM _wmihunt_hits_arrow")
    finally:
        con.unregister("_wmihunt_hits_arrow")


def _arrow(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    """A relation as an Arrow table (``to_arrow_table`` in DuckDB 2, ``arrow`` before)."""
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


def _run_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    indexed: list[tuple[int, CompiledRule]],
    since: dt.datetime | None,
    until: dt.datetime | None,
    strategy: str,
    dialect: Dialect,
    result: DetectionResult,
    *,
    source: str | None = None,
    target: str = F.TABLE,
) -> None:
    time_sql, time_params = _time_filter(dialect, since, until)
    rid = dialect.row_id
    for lo, hi in _chunks(con, source or table, dialect):
        row_filter = " AND ".join(p for p in (f"{rid} >= ? AND {rid} < ?", time_sql) if p)
        params = [lo, hi, *time_params]

        def run(batch: list[tuple[int, CompiledRule]], row_filter: str = row_filter,
                params: list[Any] = params) -> None:  # fmt: skip
            _match(con, table, batch, row_filter, params, strategy, dialect, source)
            found = f"SELECT DISTINCT _rule FROM {_HITS}"
            fired = {i for (i,) in con.execute(found).fetchall()}
            if fired:
                con.execute(build_output_sql(
                    table, [(i, r) for i, r in batch if i in fired], _HITS, dialect=dialect,
                    source=source, target=target,
                ))  # fmt: skip

        try:
            run(indexed)
            continue
        except duckdb.Error:
            if len(indexed) == 1:
                result.errors.append((indexed[0][1].title, "query failed"))
                continue
        # One rule broke the combined query: run them one by one so the others still report.
        for item in indexed:
            try:
                run([item])
            except duckdb.Error as exc:
                result.errors.append((item[1].title, str(exc).splitlines()[0]))


def _run_reassembled(
    con: duckdb.DuckDBPyConnection,
    indexed: list[tuple[int, CompiledRule]],
    since: dt.datetime | None,
    until: dt.datetime | None,
    strategy: str,
    dialect: Dialect,
    result: DetectionResult,
) -> None:
    """Run the script-block rules again over multi-part scripts joined from their parts.

    PowerShell cuts long script blocks at arbitrary characters, so ``invoke-wmiexec`` can
    span two 4104 events; upstream tests each part alone and misses it. A match on the
    whole script counts only when no part of that script matched the same rule alone, so
    no per-part finding is repeated. The finding points at the first part.
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_REASSEMBLED} AS SELECT * EXCLUDE "
        f"({', '.join(EXTRA_COLUMNS)}) FROM ({REASSEMBLED_SQL}) WHERE parts > 1"
    )
    con.execute(f"DROP TABLE IF EXISTS {_SPANNING}")
    con.execute(F.ddl(_SPANNING).replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
    try:
        _run_table(con, "script_block", indexed, since, until, strategy, dialect, result,
                   source=_REASSEMBLED, target=_SPANNING)  # fmt: skip
        con.execute(
            f"""INSERT INTO "{F.TABLE}"
            SELECT * REPLACE (message || {dialect.string(_REASSEMBLED_NOTE)} AS message)
            FROM {_SPANNING} s
            WHERE NOT EXISTS (
                SELECT 1 FROM "{F.TABLE}" f
                JOIN script_block p ON p.uid = f.uid
                JOIN script_block q ON q.uid = s.uid
                WHERE f.detection_id = s.detection_id AND f.rule_id = s.rule_id
                  AND lower(p.dest) IS NOT DISTINCT FROM lower(q.dest)
                  AND p.script_block_id = q.script_block_id)"""
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_SPANNING}")
        con.execute(f"DROP TABLE IF EXISTS {_REASSEMBLED}")


def _summary_columns(rule: CompiledRule) -> list[str]:
    groups = rule.meta.group_by or (GroupField("dest", ("dest",)),)
    return [g.name for g in groups] + ["count", "firstTime", "lastTime"]


def _first(d: Dialect, g: GroupField, alias: str) -> str:
    """The first of ``g``'s columns with a value, on the row ``alias``."""
    cols = [f"{alias}.{d.ident(c)}" for c in g.columns]
    return cols[0] if len(cols) == 1 else f"coalesce({', '.join(cols)})"


def _group_expr(d: Dialect, g: GroupField) -> str:
    return d.json_get(d.ident("fields"), g.name)


def summarize(
    con: duckdb.DuckDBPyConnection, rule: CompiledRule, dialect: Dialect = DUCKDB
) -> Summary:
    """Spec §3.3: one row per distinct grouping tuple with count, firstTime, lastTime.

    ``missing: null`` renders a missing value as ``null`` and keeps the row (process
    detections); ``drop`` drops the row; ``per_event`` is one row per finding.
    """
    d, meta = dialect, rule.meta
    groups = meta.group_by or (GroupField("dest", ("dest",)),)
    names = [g.name for g in groups]
    exprs = [_group_expr(d, g) for g in groups]
    where = [f"{d.ident('rule_id')} = ?", f"{d.ident('rule_source')} = ?"]
    t = d.ident("time")
    fmt_first = d.time_format_expression.format(expr=f"min({t})")
    fmt_last = d.time_format_expression.format(expr=f"max({t})")
    if meta.missing == "per_event":
        select = ", ".join(f"{e} AS {d.ident(n)}" for e, n in zip(exprs, names, strict=True))
        fmt = d.time_format_expression.format(expr=t)
        sql = (
            f"SELECT {select}, 1 AS count, {fmt} AS firstTime, {fmt} AS lastTime "
            f"FROM {d.ident(F.TABLE)} WHERE {' AND '.join(where)} ORDER BY {t}, uid"
        )
    else:
        if meta.missing == "drop":
            where += [f"{e} IS NOT NULL" for e in exprs]
            shown = exprs
        else:
            shown = [f"coalesce({e}, {d.string(_MISSING_UPSTREAM)})" for e in exprs]
        select = ", ".join(f"{e} AS {d.ident(n)}" for e, n in zip(shown, names, strict=True))
        positions = ", ".join(str(i + 1) for i in range(len(shown)))
        sql = (
            f"SELECT {select}, count(*) AS count, {fmt_first} AS firstTime, "
            f"{fmt_last} AS lastTime FROM {d.ident(F.TABLE)} WHERE {' AND '.join(where)} "
            f"GROUP BY {positions} ORDER BY {positions}"
        )
    cur = con.execute(sql, [rule.rule_id, rule.source])
    columns = [c[0] for c in cur.description]
    rows = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    return Summary(meta.detection, columns, rows)
