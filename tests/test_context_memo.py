"""``for_finding(..., memo=)``: the same context as without it, with fewer queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from wmihunt import context, detect, ingest, risk, store
from wmihunt.context import activity
from wmihunt.rules.loader import load_story

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "logs"
# (a subset of the sample findings keeps the test fast: each context is ~20 queries)


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = store.connect()
    ingest.ingest_paths([str(SAMPLES)], c, workers=1)
    context.infer_parents(c)
    detect.run_detections(c, load_story())
    yield c
    c.close()


def _findings(con: duckdb.DuckDBPyConnection) -> list[tuple[str, Any, Any]]:
    """(finding_id, dest, user) of every finding, in a fixed order."""
    return con.execute(
        'SELECT finding_id, dest, "user" FROM findings ORDER BY finding_id'
    ).fetchall()


def _count(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls = [0]
    real = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_memo_gives_the_same_context(con: duckdb.DuckDBPyConnection) -> None:
    ids = [fid for fid, _, _ in _findings(con)][::6]
    assert len(ids) > 5
    memo: dict[Any, Any] = {}
    with_memo = [context.for_finding(con, i, memo=memo) for i in ids]
    without = [context.for_finding(con, i) for i in ids]
    assert with_memo == without
    assert any(c["risk"] and c["risk"]["dest"] for c in without)


def _rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cur = con.execute("SELECT * FROM findings ORDER BY finding_id")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_a_report_memo_and_rows_give_every_finding_the_same_context(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Every sample finding (all kinds: trees, origins, subscriptions, scripts, windows),
    as a report computes them (one memo, the findings' own rows) and one by one."""
    rows = _rows(con)
    memo: dict[Any, Any] = {}
    reported = []
    for page in (rows[:5], rows[5:]):  # as ``case.iter_findings_json`` pages them
        context.prepare(con, page, memo)
        assert memo[("trees",)]
        reported += [context.for_finding(con, r["finding_id"], memo=memo, row=r) for r in page]
    alone = [context.for_finding(con, r["finding_id"]) for r in rows]
    assert reported == alone
    kinds = {k for c in alone for k in ("tree", "origin", "subscription", "script") if c[k]}
    assert kinds == {"tree", "origin", "subscription", "script"}
    assert any(c["activity"]["wmi"]["events"] for c in alone)
    assert any(c["activity"]["wmiprvse_children"] for c in alone)
    assert any(c["activity"]["earlier_findings"] for c in alone)


def test_a_host_over_the_row_cap_gets_its_windows_by_query(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above ``HOST_ROWS_CAP`` a host's windows are queried one by one: same answers."""
    rows = _rows(con)
    memo: dict[Any, Any] = {}
    kept = [context.for_finding(con, r["finding_id"], memo=memo, row=r) for r in rows]
    monkeypatch.setattr(activity, "HOST_ROWS_CAP", 1)
    windows = _count(monkeypatch, activity, "rows")
    capped: dict[Any, Any] = {}
    queried = [context.for_finding(con, r["finding_id"], memo=capped, row=r) for r in rows]
    assert queried == kept
    assert windows[0] > 0  # the per-window queries ran
    lines = [v for k, v in capped.items() if k[0] == "timeline"]
    assert None in lines and all(v is None or len(v.rows) <= 1 for v in lines)


def test_findings_on_one_event_share_its_tree(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [r for r in _rows(con) if r["table_name"] == "process_start"]
    events = {r["uid"] for r in rows}
    assert len(events) < len(rows)  # several detections fire on one process
    trees = _count(monkeypatch, context, "process_tree")
    memo: dict[Any, Any] = {}
    for r in rows:
        context.for_finding(con, r["finding_id"], memo=memo, row=r)
    assert trees[0] == len(events)


def test_memo_computes_host_parts_once_per_value(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    findings = _findings(con)[:12]
    pairs = {(dest, user) for _, dest, user in findings}
    risk_calls = _count(monkeypatch, risk, "risk_by_entity")
    info_calls = _count(monkeypatch, activity, "process_info")
    memo: dict[Any, Any] = {}
    for fid, _, _ in findings:
        context.for_finding(con, fid, memo=memo)
    assert risk_calls[0] == 1 < len(pairs)  # every entity's risk in one query
    memoized_info = info_calls[0]
    info_calls[0] = 0
    for fid, _, _ in findings:
        context.for_finding(con, fid)
    assert memoized_info < info_calls[0]


def test_memo_hands_out_copies(con: duckdb.DuckDBPyConnection) -> None:
    fid = _findings(con)[0][0]
    memo: dict[Any, Any] = {}
    first = context.for_finding(con, fid, memo=memo)
    first["risk"]["threshold"] = -1  # a caller editing its context
    assert context.for_finding(con, fid, memo=memo)["risk"]["threshold"] != -1


def test_risk_from_the_memo_matches_a_non_ascii_host_as_duckdb_lowers_it() -> None:
    """Python's and DuckDB's ``lower`` disagree on 'İ': the memo's risk lookup must use
    DuckDB's, as the per-entity query does."""
    c = store.connect()
    try:
        c.execute(context.findings.MINIMAL_FINDINGS_DDL)
        for i, host in enumerate(("İSTANBUL-DC", "İstanbul-dc", "ΣΊΣΥΦΟΣ")):
            c.execute(
                "INSERT INTO findings (finding_id, detection, risk_score, mitre, time, dest, "
                "\"user\", table_name, uid) VALUES (?, 'd', 60, ['T1047'], "
                "TIMESTAMP '2024-01-01 00:00:00', ?, 'u', 'process_start', ?)",
                [f"F{i}", host, f"U{i}"],
            )
        for i in range(3):
            alone = context.for_finding(c, f"F{i}")["risk"]
            reported = context.for_finding(c, f"F{i}", memo={})["risk"]
            assert reported == alone
        assert context.for_finding(c, "F0")["risk"]["dest"]["total_risk"] == 120
    finally:
        c.close()


@pytest.mark.parametrize("missing", ["logon", "wmi_activity", "process_start"])
def test_a_damaged_case_still_reports_every_finding(missing: str) -> None:
    """A case without one model table (damaged, or from an old version): the report goes
    on, each finding keeps the context parts that work, the others say what failed."""
    from wmihunt import case

    c = store.connect()
    try:
        ingest.ingest_paths([str(SAMPLES)], c, workers=1)
        context.infer_parents(c)
        detect.run_detections(c, load_story())
        total = c.execute("SELECT count(*) FROM findings").fetchone()[0]
        c.execute(f"DROP TABLE {missing}")
        notes: list[str] = []
        reported = list(case.iter_findings_json(c, notes))
        assert len(reported) == total > 0
        errors = [part for f in reported for part in (f.get("context") or {}).values()
                  if isinstance(part, dict) and "error" in part]
        assert errors or notes  # the failure is said, per part or per finding
        assert any(f.get("context") for f in reported)
    finally:
        c.close()


def test_recent_values_are_bounded_and_the_used_ones_stay() -> None:
    from wmihunt.context._memo import memoized

    memo: dict[Any, Any] = {}
    calls: list[int] = []

    def value(i: int) -> Any:
        return lambda: calls.append(i) or {"i": [i]}

    for i in range(5):
        assert memoized(memo, ("window", i), value(i), recent=3) == {"i": [i]}
    assert memoized(memo, ("window", 2), value(2), recent=3) == {"i": [2]}  # kept: no call
    memoized(memo, ("window", 5), value(5), recent=3)  # evicts the least recently used: 3
    memoized(memo, ("window", 2), value(2), recent=3)
    memoized(memo, ("window", 3), value(3), recent=3)
    assert calls == [0, 1, 2, 3, 4, 5, 3]
    assert len(memo[("recent", "window")]) == 3
    got = memoized(memo, ("window", 3), value(3), recent=3)
    got["i"].append(99)  # a copy: the memo's value is untouched
    assert memoized(memo, ("window", 3), value(3), recent=3) == {"i": [3]}
