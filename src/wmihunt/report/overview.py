"""What the data covers, from the model tables: event time span, hosts, rows per model.

Used for the header of the terminal view and the HTML summary ("events from ... to ...,
N hosts"), which the findings alone cannot tell (most hosts have no finding).
"""

from __future__ import annotations

from typing import Any

import duckdb

from ..models import MODELS
from .fields import iso_z

#: Hosts listed at most (the count stays exact).
MAX_HOSTS = 10_000


def _existing(con: duckdb.DuckDBPyConnection) -> list[str]:
    names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    return [m for m in MODELS if m in names]


def data_overview(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """``first``/``last`` event time (ISO 'Z' or None), ``hosts`` (sorted), ``hosts_count``,
    and ``rows`` per model table."""
    tables = _existing(con)
    if not tables:
        return {"first": None, "last": None, "hosts": [], "hosts_count": 0, "rows": {}}
    union = " UNION ALL ".join(f'SELECT "time", dest FROM "{t}"' for t in tables)
    first, last = con.execute(f"SELECT min(time), max(time) FROM ({union})").fetchone()
    hosts_count = con.execute(
        f"SELECT count(DISTINCT dest) FROM ({union}) WHERE dest IS NOT NULL"
    ).fetchone()[0]
    hosts = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT dest FROM ({union}) WHERE dest IS NOT NULL ORDER BY 1 LIMIT ?",
            [MAX_HOSTS],
        ).fetchall()
    ]
    rows = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    return {
        "first": iso_z(first) if first is not None else None,
        "last": iso_z(last) if last is not None else None,
        "hosts": hosts,
        "hosts_count": hosts_count,
        "rows": rows,
    }
