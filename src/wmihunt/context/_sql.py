"""Small helpers shared by the context joins: run SQL, return JSON-ready dicts."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import duckdb

#: Accounts that are the host itself or a Windows service identity, never a remote person.
SERVICE_SIDS = ("S-1-5-18", "S-1-5-19", "S-1-5-20", "S-1-0-0", "S-1-5-7")
#: Logon ids of SYSTEM, LOCAL SERVICE, NETWORK SERVICE (and 0): they belong to no network logon.
SERVICE_LOGON_IDS = (0x0, 0x3E4, 0x3E5, 0x3E7)


def iso(value: _dt.datetime | None) -> str | None:
    """UTC ISO 8601 with a ``Z``, always with microseconds: fixed width, so these strings
    sort (and compare) in time order. The model stores naive UTC timestamps."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(_dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def jsonable(value: Any) -> Any:
    """Convert DuckDB result values (timestamps, decimals, lists, structs) to JSON types."""
    if isinstance(value, _dt.datetime):
        return iso(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


Params = Sequence[Any] | Mapping[str, Any] | None


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Params = None) -> list[dict[str, Any]]:
    """Run ``sql`` (``?`` or ``$name`` parameters) and return JSON-ready dicts by column."""
    bound = dict(params) if isinstance(params, Mapping) else list(params or [])
    cur = con.execute(sql, bound)
    names = [d[0] for d in cur.description]
    return [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def one(con: duckdb.DuckDBPyConnection, sql: str, params: Params = None) -> dict[str, Any] | None:
    found = rows(con, sql, params)
    return found[0] if found else None


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Column names of ``table`` (empty when the table does not exist)."""
    try:
        cur = con.execute(f"SELECT * FROM {q(table)} LIMIT 0")
    except duckdb.CatalogException:
        return []
    return [d[0] for d in cur.description]


def has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(table_columns(con, table))


def capped(
    con: duckdb.DuckDBPyConnection, sql: str, params: Params, cap: int, lead: int = 0
) -> list[tuple[Any, ...]] | None:
    """The rows of ``sql`` (no LIMIT: this adds one), each as its first ``lead`` values as
    DuckDB gives them, then a JSON-ready dict of the other columns by name; None above
    ``cap`` rows. A report keeps such rows to search in memory; above the cap the caller
    queries per use instead, so memory stays bounded."""
    bound = dict(params) if isinstance(params, Mapping) else list(params or [])
    cur = con.execute(f"{sql} LIMIT {int(cap) + 1}", bound)
    found = cur.fetchall()
    if len(found) > cap:
        return None
    names = [d[0] for d in cur.description][lead:]
    return [(*r[:lead], {n: jsonable(v) for n, v in zip(names, r[lead:], strict=True)})
            for r in found]


def sql_lower(con: duckdb.DuckDBPyConnection, text: str) -> str:
    """DuckDB's ``lower(text)``, to compare in Python with values DuckDB lowered: Python's
    for ASCII, where the two agree (they differ on, e.g., 'İ' and final sigma)."""
    if text.isascii():
        return text.lower()
    got = con.execute("SELECT lower(?)", [text]).fetchone()
    assert got is not None
    return str(got[0])


def q(name: str) -> str:
    """Quote an identifier (``user`` and ``table`` are SQL keywords)."""
    return '"' + name.replace('"', '""') + '"'


#: SQL expression: a logon id text ('0x1d313d', '1913149') as an unsigned integer, or NULL.
def logon_id_sql(expr: str) -> str:
    return f"TRY_CAST(trim({expr}) AS UBIGINT)"


def short_host(name: str | None) -> str | None:
    """Lower-case host name without its domain (an IP address is kept whole)."""
    if not name:
        return None
    n = name.strip().strip("\\").lower()
    if not n:
        return None
    if n.replace(".", "").isdigit() or ":" in n:
        return n
    return n.split(".", 1)[0]


#: SQL expression twin of :func:`short_host`.
def short_host_sql(expr: str) -> str:
    return (
        f"CASE WHEN regexp_full_match(lower(trim({expr})), '[0-9.]+|.*:.*') "
        f"THEN lower(trim({expr})) ELSE split_part(lower(trim(trim({expr}), '\\')), '.', 1) END"
    )
