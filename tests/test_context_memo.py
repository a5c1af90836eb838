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
    assert risk_calls[0] == len(pairs) < len(findings)
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
