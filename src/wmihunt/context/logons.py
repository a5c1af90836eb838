"""The logon searches of the origin joins (``context/origin.py``), each twice: as one
query per search, and over a host's rows read once for a report (``memo``). The second
gives the first's answers: DuckDB computes every value the queries compare (logon ids as
numbers, account names, "a person"), Python only compares them and keeps the queries'
order, ties included (tests compare the two on generated logons).

- ``network_search``: the newest type-3 4624 before a process, by logon id, by account
  within a lookback, or of a person within a lookback (the target side's logon);
- ``type3_between``: a host's type-3 4624s in a time window, oldest first (a wmic's
  target host, seen from the source side);
- ``wmic_credentials``: the 4648s WMIC.exe logged on a host in a time window, those of
  the wmic's own pid first.

A host's rows are kept up to ``HOST_ROWS_CAP`` per kind; above, the queries run.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from ._memo import Memo, cached
from ._sql import SERVICE_SIDS, capped, one, rows

LOGON_COLUMNS = (
    "uid", "time", "dest", "event_id", "logon_type", "target_user", "target_user_sid",
    "target_logon_id", "subject_user", "src_ip", "src_port", "src_workstation",
    "logon_process", "auth_package", "target_server", "target_info", "process_name",
    "process_id", "ev_file", "ev_record_id",
)
LOGON_SELECT = ", ".join(f'l."{c}"' for c in LOGON_COLUMNS)
#: The account name of a logon without its domain, lower-cased.
ACCOUNT_SQL = "lower(regexp_replace(coalesce(l.target_user, ''), '^.*\\\\', ''))"
_PERSON_SQL = (f"NOT ({ACCOUNT_SQL} LIKE '%$' OR {ACCOUNT_SQL} = 'anonymous logon' "
               f"OR coalesce(l.target_user_sid, '') IN {SERVICE_SIDS!r})")
_TYPE3_SQL = "l.event_id = '4624' AND l.logon_type = 3 AND lower(l.dest) = lower($dest)"
_NEWEST_FIRST = "ORDER BY l.time DESC, l.ev_record_id DESC, l.uid DESC"
#: ``_NEWEST_FIRST`` reversed (DuckDB puts NULLs last both ways).
_OLDEST_FIRST = ("ORDER BY l.time, l.ev_record_id NULLS FIRST, l.uid NULLS FIRST")
_LOGON_ID_SQL = "TRY_CAST(trim(l.target_logon_id) AS UBIGINT)"
_WMIC_4648_SQL = (
    "l.event_id = '4648' AND lower(l.dest) = lower($dest) AND "
    "lower(regexp_replace(coalesce(l.process_name, ''), '^.*\\\\', '')) = 'wmic.exe'"
)

#: The most rows of one kind of one host a report keeps to search in.
HOST_ROWS_CAP = 20_000


@dataclass(frozen=True, slots=True)
class Earlier:
    """When a logon counts as earlier than the process: an earlier time, or the same time
    (coarse clocks) unless the same file logged the logon after the process (a later
    record)."""

    time: datetime
    file: str | None
    pos: int | None


#: ``search(earlier, logon_ids=..., since=..., account=..., person=...)``: the newest
#: type-3 logon of the host (time, then record id, then uid, descending) that is
#: ``earlier`` and has one of ``logon_ids``, or is not older than ``since`` and of
#: ``account``, or of a ``person``; None when there is none.
Search = Callable[..., "dict[str, Any] | None"]


def network_search(con: duckdb.DuckDBPyConnection, dest: str, memo: Memo | None) -> Search:
    held = None if memo is None else cached(
        memo, ("logons", dest), lambda: _HostLogons.read(con, dest))
    return held.search if held is not None else _LogonQuery(con, dest).search


def type3_between(
    con: duckdb.DuckDBPyConnection, dest: str, lo: datetime, hi: datetime, limit: int,
    memo: Memo | None,
) -> list[dict[str, Any]]:
    """The host's type-3 4624s with ``lo <= time <= hi``, oldest first (``limit``)."""
    held = None if memo is None else cached(
        memo, ("logons", dest), lambda: _HostLogons.read(con, dest))
    if held is None:
        return rows(con, f"SELECT {LOGON_SELECT} FROM logon AS l WHERE {_TYPE3_SQL} "
                         f"AND l.time BETWEEN $lo AND $hi {_OLDEST_FIRST} LIMIT {int(limit)}",
                    {"dest": dest, "lo": lo, "hi": hi})
    return held.between(lo, hi, limit)


def wmic_credentials(
    con: duckdb.DuckDBPyConnection, dest: str, since: datetime, until: datetime,
    pid: int | None, limit: int, memo: Memo | None,
) -> list[dict[str, Any]]:
    """The 4648s WMIC.exe logged on ``dest`` with ``since <= time <= until``: those of
    ``pid`` first, then by time (``limit``)."""
    held = None if memo is None else cached(
        memo, ("wmic 4648", dest), lambda: _read_wmic_4648(con, dest))
    if held is None:
        return rows(con, f"SELECT {LOGON_SELECT} FROM logon AS l WHERE {_WMIC_4648_SQL} "
                         "AND l.time >= $since AND l.time <= $until "
                         "ORDER BY (l.process_id IS NOT DISTINCT FROM $pid) DESC, l.time, l.uid "
                         f"LIMIT {int(limit)}",
                    {"dest": dest, "since": since, "until": until, "pid": pid})
    times, found = held
    window = found[bisect_left(times, since) : bisect_right(times, until)]
    window.sort(key=lambda row: row.get("process_id") != pid)  # stable: then by time, uid
    return [dict(row) for row in window[:limit]]


def _read_wmic_4648(
    con: duckdb.DuckDBPyConnection, dest: str
) -> tuple[list[datetime], list[dict[str, Any]]] | None:
    found = capped(con, f"SELECT l.time, {LOGON_SELECT} FROM logon AS l WHERE {_WMIC_4648_SQL} "
                        "AND l.time IS NOT NULL ORDER BY l.time, l.uid",
                   {"dest": dest}, HOST_ROWS_CAP, lead=1)
    return None if found is None else ([r[0] for r in found], [r[1] for r in found])


@dataclass(frozen=True, slots=True)
class _LogonQuery:
    """Each network-logon search as its own query."""

    con: duckdb.DuckDBPyConnection
    dest: str

    def search(
        self, earlier: Earlier, *, logon_ids: list[int] | None = None,
        since: datetime | None = None, account: str | None = None, person: bool = False,
    ) -> dict[str, Any] | None:
        cond = [_TYPE3_SQL, """(l.time < $time OR (l.time = $time AND NOT coalesce(
                l.ev_file = $file AND coalesce(l.ev_line, l.ev_record_id) > $pos, false)))"""]
        params: dict[str, Any] = {"dest": self.dest, "time": earlier.time,
                                  "file": earlier.file, "pos": earlier.pos}
        if logon_ids:
            cond.append(f"{_LOGON_ID_SQL} IN ({', '.join(str(int(i)) for i in logon_ids)})")
        if since is not None:
            cond.append("l.time >= $since")
            params["since"] = since
        if account is not None:
            cond.append(f"{ACCOUNT_SQL} = $account")
            params["account"] = account
        if person:
            cond.append(_PERSON_SQL)
        return one(self.con, f"SELECT {LOGON_SELECT} FROM logon AS l "
                             f"WHERE {' AND '.join(cond)} {_NEWEST_FIRST} LIMIT 1", params)


@dataclass(frozen=True, slots=True)
class _HostLogons:
    """A host's type-3 logons, newest first, with what the searches compare computed by
    DuckDB; indexed by logon id and by account."""

    rows: list[tuple[Any, ...]]  # (time, file, pos, logon id, account, person, JSON row)
    ascending: list[datetime]  # the times, oldest first (for bisect)
    by_id: dict[int, list[int]]
    by_account: dict[str, list[int]]

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, dest: str) -> _HostLogons | None:
        found = capped(
            con,
            f"""SELECT l.time, l.ev_file, coalesce(l.ev_line, l.ev_record_id),
                       {_LOGON_ID_SQL}, {ACCOUNT_SQL}, {_PERSON_SQL}, {LOGON_SELECT}
                FROM logon AS l WHERE {_TYPE3_SQL} AND l.time IS NOT NULL {_NEWEST_FIRST}""",
            {"dest": dest}, HOST_ROWS_CAP, lead=6,
        )
        if found is None:
            return None
        by_id: dict[int, list[int]] = {}
        by_account: dict[str, list[int]] = {}
        for i, r in enumerate(found):
            if r[3] is not None:
                by_id.setdefault(r[3], []).append(i)
            if r[4] is not None:
                by_account.setdefault(r[4], []).append(i)
        return cls(found, [r[0] for r in reversed(found)], by_id, by_account)

    def search(
        self, earlier: Earlier, *, logon_ids: list[int] | None = None,
        since: datetime | None = None, account: str | None = None, person: bool = False,
    ) -> dict[str, Any] | None:
        if logon_ids:
            picks = sorted({i for lid in logon_ids for i in self.by_id.get(lid, ())})
        elif account is not None:
            picks = self.by_account.get(account, [])
        else:  # newest first from the last row at or before the time
            start = len(self.rows) - bisect_right(self.ascending, earlier.time)
            picks = range(start, len(self.rows))  # type: ignore[assignment]
        for i in picks:
            time, file, pos, _lid, name, is_person, row = self.rows[i]
            if time > earlier.time:
                continue
            if since is not None and time < since:
                break  # newest first: every later row is older still
            if account is not None and name != account:
                continue
            if person and not is_person:
                continue
            if time == earlier.time and _after(file, pos, earlier):
                continue
            return dict(row)
        return None

    def between(self, lo: datetime, hi: datetime, limit: int) -> list[dict[str, Any]]:
        """Copies of the rows with ``lo <= time <= hi``, oldest first."""
        last = len(self.rows) - 1
        first, end = bisect_left(self.ascending, lo), bisect_right(self.ascending, hi)
        return [dict(self.rows[last - k][6]) for k in range(first, min(end, first + limit))]


def _after(file: str | None, pos: int | None, earlier: Earlier) -> bool:
    """SQL's ``coalesce(l.ev_file = $file AND l.pos > $pos, false)``: true only when both
    comparisons are known and true."""
    return (file is not None and earlier.file is not None and file == earlier.file
            and pos is not None and earlier.pos is not None and pos > earlier.pos)
