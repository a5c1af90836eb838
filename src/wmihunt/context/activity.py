"""Host and user activity around a finding: the story's investigation searches, answered.

Upstream ties four searches to the story; each is a query here:

- all WMI activity of the host (Sysmon 19-21, WMI-Activity 5857-5861) in a window around
  the finding, plus the host's WmiPrvSE.exe children and wmic runs in that window;
- "process info": for the finding's process name on that host, count, first/last seen
  and command lines, by user and parent (whole case, not windowed, as upstream);
- "parent process info": the same for what the finding's parent name started;
- earlier findings (alerts) for the host.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from . import findings as fnd
from ._memo import RECENT_WINDOWS, Memo, cached, memoized
from ._sql import capped, has_table, iso, q, rows

DEFAULT_WINDOW = timedelta(hours=1)
#: Rows of each list of a finding's activity (WMI events, WmiPrvSE children, wmic runs).
DEFAULT_LIMIT = 100
#: Earlier findings listed at most (fewer when the lists' limit is lower).
EARLIER_LIMIT = 50
_CMD_SAMPLES = 10

_WMI_COLUMNS = (
    "uid", "time", "event_id", "kind", "operation", "user", "name", "namespace", "query",
    "consumer_type", "destination", "consumer", "filter", "client_process_id", "provider_name",
)
_PROC_COLUMNS = (
    "uid", "time", "user", "process_name", "process", "parent_process_name", "process_id",
    "parent_inferred",
)


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).rstrip("Z"))


def _cols(names: tuple[str, ...], alias: str = "t") -> str:
    return ", ".join(f"{alias}.{q(c)}" for c in names)


def wmi_events(
    con: duckdb.DuckDBPyConnection, dest: str, lo: datetime, hi: datetime, limit: int,
    memo: Memo | None = None,
) -> dict[str, Any]:
    """The host's WMI-activity rows in [lo, hi]: counts per EventID and the rows (capped)."""
    line = _timeline(con, memo, "wmi_activity", _WMI_COLUMNS, dest, "TRUE")
    if line is not None:
        found = line.window(lo, hi)
        counts = Counter(r["event_id"] for r in found)
        order = sorted(counts, key=lambda k: (k is None, k or ""))  # SQL: NULLS LAST
        return {"counts": {k: counts[k] for k in order},
                "events": [dict(r) for r in found[:limit]]}
    params = {"dest": dest, "lo": lo, "hi": hi}
    where = "lower(t.dest) = lower($dest) AND t.time BETWEEN $lo AND $hi"
    counts = rows(
        con,
        f"SELECT t.event_id, count(*) AS n FROM wmi_activity t WHERE {where} "
        "GROUP BY t.event_id ORDER BY t.event_id",
        params,
    )
    events = rows(
        con,
        f"SELECT {_cols(_WMI_COLUMNS)} FROM wmi_activity t WHERE {where} "
        f"ORDER BY t.time, t.uid LIMIT {int(limit)}",
        params,
    )
    return {"counts": {c["event_id"]: c["n"] for c in counts}, "events": events}


def _processes(
    con: duckdb.DuckDBPyConnection, dest: str, lo: datetime, hi: datetime, cond: str, limit: int,
    memo: Memo | None, columns: tuple[str, ...] = _PROC_COLUMNS,
) -> list[dict[str, Any]]:
    line = _timeline(con, memo, "process_start", columns, dest, cond)
    if line is not None:
        return [dict(r) for r in line.window(lo, hi)[:limit]]
    return rows(
        con,
        f"""SELECT {_cols(columns)} FROM process_start t
            WHERE lower(t.dest) = lower($dest) AND t.time BETWEEN $lo AND $hi AND ({cond})
            ORDER BY t.time, t.uid LIMIT {int(limit)}""",
        {"dest": dest, "lo": lo, "hi": hi},
    )


_WMIPRVSE_CHILD = "lower(t.parent_process_name) = 'wmiprvse.exe'"
_WMIC = "lower(t.process_name) = 'wmic.exe' OR lower(t.original_file_name) = 'wmic.exe'"


def wmiprvse_children(
    con: duckdb.DuckDBPyConnection, dest: str, lo: datetime, hi: datetime, limit: int,
    memo: Memo | None = None, *, columns: tuple[str, ...] = _PROC_COLUMNS,
) -> list[dict[str, Any]]:
    """The host's processes whose parent is WmiPrvSE.exe started in [lo, hi], by time."""
    return _processes(con, dest, lo, hi, _WMIPRVSE_CHILD, limit, memo, columns)


def wmic_runs(
    con: duckdb.DuckDBPyConnection, dest: str, lo: datetime, hi: datetime, limit: int,
    memo: Memo | None = None,
) -> list[dict[str, Any]]:
    return _processes(con, dest, lo, hi, _WMIC, limit, memo)


#: How many rows of one kind (WMI events, WmiPrvSE children, wmic runs) of one host a
#: report keeps to cut its findings' windows from; a host with more gets one query per
#: window instead, so memory stays bounded on a noisy host.
HOST_ROWS_CAP = 20_000


@dataclass(frozen=True, slots=True)
class _Timeline:
    """One host's rows of one kind in (time, uid) order, the rows JSON-ready."""

    times: list[datetime]
    rows: list[dict[str, Any]]

    def window(self, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
        """The rows with ``lo <= time <= hi`` (SQL's BETWEEN), in order; not copies."""
        return self.rows[bisect_left(self.times, lo) : bisect_right(self.times, hi)]


def _timeline(
    con: duckdb.DuckDBPyConnection, memo: Memo | None, table: str,
    columns: tuple[str, ...], dest: str, cond: str,
) -> _Timeline | None:
    """The host's rows for window slices, read once for a report (``memo``); None without
    a memo or above ``HOST_ROWS_CAP`` rows."""
    if memo is None:
        return None

    def read() -> _Timeline | None:
        found = capped(
            con,
            f"""SELECT t.time, {_cols(columns)} FROM {table} t
                WHERE lower(t.dest) = lower($dest) AND t.time IS NOT NULL AND ({cond})
                ORDER BY t.time, t.uid""",
            {"dest": dest}, HOST_ROWS_CAP, lead=1,
        )
        return None if found is None else _Timeline([r[0] for r in found],
                                                     [r[1] for r in found])

    return cached(memo, ("timeline", table, cond, columns, dest), read)


def process_info(
    con: duckdb.DuckDBPyConnection, dest: str, *, process_name: str | None = None,
    parent_process_name: str | None = None, limit: int = 20,
) -> dict[str, Any] | None:
    """Upstream's "process info" (by ``process_name``) or "parent process info" (by
    ``parent_process_name``) on one host: totals, and rows by user and the other name."""
    if process_name:
        col, other, value = "process_name", "parent_process_name", process_name
    elif parent_process_name:
        col, other, value = "parent_process_name", "process_name", parent_process_name
    else:
        return None
    groups = rows(
        con,
        f"""SELECT "user", {other}, count(*) AS count, min(time) AS first_seen,
                   max(time) AS last_seen,
                   list_slice(list_sort(list(DISTINCT process)), 1, {_CMD_SAMPLES}) AS command_lines
            FROM process_start
            WHERE lower(dest) = lower($dest) AND lower({col}) = lower($value)
            GROUP BY "user", {other} ORDER BY count DESC, first_seen, "user", {other}""",
        {"dest": dest, "value": value},
    )
    firsts = [g["first_seen"] for g in groups if g["first_seen"]]
    lasts = [g["last_seen"] for g in groups if g["last_seen"]]
    return {
        col: value, "dest": dest, "count": sum(g["count"] for g in groups),
        "first_seen": min(firsts, default=None), "last_seen": max(lasts, default=None),
        "users": len({g["user"] for g in groups if g["user"] is not None}),
        "by_user": groups[:limit],
    }


def earlier_findings(
    con: duckdb.DuckDBPyConnection, dest: str, before: datetime | None, *,
    exclude: object = None, limit: int = 50, memo: Memo | None = None,
) -> list[dict[str, Any]]:
    """Findings on ``dest`` before ``before`` (all findings when it is None), newest first.

    With ``memo`` the host's findings are read once for a report and filtered here."""
    cols = cached(memo, ("columns",), lambda: fnd.resolve(con))
    if cols is None:
        return []
    sel = ", ".join(
        f"{q(c)} AS {q(k)}" for k, c in (
            ("finding_id", cols.finding_id), ("time", cols.time), ("detection", cols.detection),
            ("risk_score", cols.risk_score), ("user", cols.user), ("message", cols.message))
    )
    host = f"lower({q(cols.dest)}) = lower($dest)"
    order = f"ORDER BY {q(cols.time)} DESC, {q(cols.finding_id)}"
    # (time, id as text, JSON-ready row) of the host's findings, newest first
    found = None if memo is None or before is None else cached(
        memo, ("findings_of_host", dest), lambda: capped(
            con, f"SELECT {q(cols.time)}, CAST({q(cols.finding_id)} AS VARCHAR), {sel} "
                 f"FROM {fnd.FINDINGS_TABLE} WHERE {host} {order}",
            {"dest": dest}, HOST_ROWS_CAP, lead=2))
    if found is not None:
        assert before is not None
        skip = None if exclude is None else str(exclude)
        out = []
        for when, fid, row in found:
            if when is not None and when < before and fid != skip:
                out.append(dict(row))
                if len(out) >= limit:
                    break
        return out
    cond = [host]
    params: dict[str, Any] = {"dest": dest}
    if before is not None:
        cond.append(f"{q(cols.time)} < $before")
        params["before"] = before
    if exclude is not None:
        cond.append(f"CAST({q(cols.finding_id)} AS VARCHAR) <> $exclude")
        params["exclude"] = str(exclude)
    return rows(
        con,
        f"SELECT {sel} FROM {fnd.FINDINGS_TABLE} WHERE {' AND '.join(cond)} "
        f"{order} LIMIT {int(limit)}",
        params,
    )


def host_activity(
    con: duckdb.DuckDBPyConnection,
    dest: str,
    time: Any,
    *,
    window: timedelta = DEFAULT_WINDOW,
    limit: int = DEFAULT_LIMIT,
    process_name: str | None = None,
    parent_process_name: str | None = None,
    finding_id: object = None,
    memo: dict[Any, Any] | None = None,
) -> dict[str, Any]:
    """Everything WMI on ``dest`` within ``window`` of ``time``, and the upstream searches.

    ``memo``: see ``context.for_finding`` (the window depends on host and time, process
    info on host and name, earlier findings on the host's findings)."""
    when = _when(time)
    out: dict[str, Any] = {"dest": dest}
    if when is not None:
        lo, hi = when - window, when + window
        out["window"] = {"from": iso(lo), "to": iso(hi)}
        out.update(memoized(memo, ("window", dest, lo, hi, limit), lambda: {
            "wmi": wmi_events(con, dest, lo, hi, limit, memo),
            "wmiprvse_children": wmiprvse_children(con, dest, lo, hi, limit, memo),
            "wmic_runs": wmic_runs(con, dest, lo, hi, limit, memo),
        }, recent=RECENT_WINDOWS))
    if process_name:
        out["process_info"] = memoized(
            memo, ("process_info", dest, process_name),
            lambda: process_info(con, dest, process_name=process_name))
    if parent_process_name:
        out["parent_process_info"] = memoized(
            memo, ("parent_process_info", dest, parent_process_name),
            lambda: process_info(con, dest, parent_process_name=parent_process_name))
    if cached(memo, ("has_findings",), lambda: has_table(con, fnd.FINDINGS_TABLE)):
        out["earlier_findings"] = earlier_findings(
            con, dest, when, exclude=finding_id, limit=min(limit, EARLIER_LIMIT), memo=memo)
    return out


def host_span(con: duckdb.DuckDBPyConnection, dest: str) -> dict[str, Any]:
    """Rows and time span per model table for one host."""
    out: dict[str, Any] = {}
    for table in ("process_start", "wmi_activity", "script_block", "logon"):
        out[table] = rows(
            con,
            f"SELECT count(*) AS rows, min(time) AS first_seen, max(time) AS last_seen "
            f"FROM {table} WHERE lower(dest) = lower(?)",
            [dest],
        )[0]
    return out


def user_activity(
    con: duckdb.DuckDBPyConnection, user: str, *, limit: int = DEFAULT_LIMIT
) -> dict[str, Any]:
    """A user's network logons (where from), hosts they started processes on, findings."""
    account = user.split("\\")[-1].lower()
    acc = "lower(regexp_replace(coalesce({col}, ''), '^.*\\\\', '')) = $account"
    logons = rows(
        con,
        f"""SELECT dest, src_ip, src_workstation, logon_type, count(*) AS count,
                   min(time) AS first_seen, max(time) AS last_seen
            FROM logon WHERE event_id = '4624' AND {acc.format(col='target_user')}
            GROUP BY ALL
            ORDER BY count DESC, dest, src_ip, src_workstation, logon_type LIMIT {int(limit)}""",
        {"account": account},
    )
    hosts = rows(
        con,
        f"""SELECT dest, count(*) AS processes, min(time) AS first_seen, max(time) AS last_seen,
                   count(*) FILTER (WHERE lower(parent_process_name) = 'wmiprvse.exe')
                       AS wmi_children
            FROM process_start
            WHERE {acc.format(col='"user"')} OR {acc.format(col='target_user')}
            GROUP BY dest ORDER BY processes DESC, dest LIMIT {int(limit)}""",
        {"account": account},
    )
    explicit = rows(
        con,
        f"""SELECT dest, subject_user, target_server, target_info, process_name,
                   count(*) AS count, min(time) AS first_seen, max(time) AS last_seen
            FROM logon WHERE event_id = '4648'
              AND ({acc.format(col='target_user')} OR {acc.format(col='subject_user')})
            GROUP BY ALL ORDER BY count DESC, dest, subject_user, target_server, target_info,
                                  process_name LIMIT {int(limit)}""",
        {"account": account},
    )
    out: dict[str, Any] = {"user": user, "logons": logons, "hosts": hosts,
                           "explicit_credentials": explicit}
    cols = fnd.resolve(con)
    if cols is not None:
        out["findings"] = rows(
            con,
            f"""SELECT {q(cols.finding_id)} AS finding_id, {q(cols.time)} AS time,
                       {q(cols.dest)} AS dest, {q(cols.detection)} AS detection,
                       {q(cols.risk_score)} AS risk_score
                FROM {fnd.FINDINGS_TABLE}
                WHERE {acc.format(col=q(cols.user))}
                ORDER BY {q(cols.time)}, {q(cols.finding_id)} LIMIT {int(limit)}""",
            {"account": account},
        )
    return out
