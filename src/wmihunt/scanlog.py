"""The scan log kept in the case database: what each scan read, and which inputs it holds.

Two tables:

- ``scan_files``: one row per file entry (file or archive member) with its accounting
  (read / normalized / skipped / rejected, and the full ``FileStats.to_dict()`` as JSON);
- ``scan_inputs``: one row per top-level input a scan saw: its path, the SHA-256 of its
  bytes, and ``status`` ``loaded`` (its rows are in the case) or ``duplicate`` (the same
  content was already there, nothing was added).

``ingest`` writes both for an input in the same transaction as that input's rows, so the
log never names a file whose rows are missing, or the reverse. ``record`` is for callers
that load rows some other way; on the ``IngestStats`` of an ingest that already logged
itself it does nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from .accounting import FileStats

TABLE = "scan_files"
INPUTS = "scan_inputs"
LOADED = "loaded"
DUPLICATE = "duplicate"

_FILES_DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    scanned_at TIMESTAMP, path VARCHAR, format VARCHAR, "read" BIGINT,
    normalized BIGINT, skipped BIGINT, rejected BIGINT, detail JSON,
    input VARCHAR, scan_id VARCHAR)"""
_INPUTS_DDL = f"""CREATE TABLE IF NOT EXISTS {INPUTS} (
    scan_id VARCHAR, scanned_at TIMESTAMP, path VARCHAR, sha256 VARCHAR, size BIGINT,
    status VARCHAR, rows_added BIGINT, rows_already BIGINT)"""


@dataclass(frozen=True, slots=True)
class InputRow:
    """One top-level input of a scan, as kept in ``scan_inputs``."""

    path: str
    sha256: str | None
    size: int | None
    status: str
    rows_added: int = 0
    rows_already: int = 0


def now() -> dt.datetime:
    """Naive UTC, as every time in the case."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def create(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_FILES_DDL)
    for column in ("input", "scan_id"):  # a case written before these columns existed
        con.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {column} VARCHAR")
    con.execute(_INPUTS_DDL)


def write_entries(
    con: duckdb.DuckDBPyConnection,
    entries: Iterable[FileStats],
    *,
    scan_id: str | None = None,
    input_path: str | None = None,
    when: dt.datetime | None = None,
) -> None:
    """Append ``scan_files`` rows (the caller owns the transaction)."""
    when = when or now()
    rows = [
        (when, f.path, f.format, f.read, f.normalized, f.skipped, f.rejected,
         orjson.dumps(f.to_dict()).decode(), input_path, scan_id)
        for f in entries
    ]  # fmt: skip
    sql = (
        f'INSERT INTO {TABLE} (scanned_at, path, format, "read", normalized, skipped, '
        "rejected, detail, input, scan_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    if len(rows) == 1:  # the usual case: execute is cheaper than executemany of one
        con.execute(sql, rows[0])
    elif rows:
        con.executemany(sql, rows)


def write_input(
    con: duckdb.DuckDBPyConnection, row: InputRow, *, scan_id: str, when: dt.datetime
) -> None:
    """Append one ``scan_inputs`` row (the caller owns the transaction)."""
    con.execute(
        f"INSERT INTO {INPUTS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [scan_id, when, row.path, row.sha256, row.size, row.status, row.rows_added,
         row.rows_already],
    )  # fmt: skip


def write_group(
    con: duckdb.DuckDBPyConnection,
    entries: list[tuple[str, list[FileStats]]],
    inputs: list[InputRow],
    *,
    scan_id: str,
    when: dt.datetime,
) -> None:
    """Both tables' rows for several inputs, as one Arrow insert each (``executemany``
    runs one statement per row: ~1 ms each). The caller owns the transaction."""
    files = [(path, f) for path, group in entries for f in group]
    if files:
        table = pa.table({
            "scanned_at": pa.array([when] * len(files), pa.timestamp("us")),
            "path": [f.path for _, f in files],
            "format": [f.format for _, f in files],
            "read": pa.array([f.read for _, f in files], pa.int64()),
            "normalized": pa.array([f.normalized for _, f in files], pa.int64()),
            "skipped": pa.array([f.skipped for _, f in files], pa.int64()),
            "rejected": pa.array([f.rejected for _, f in files], pa.int64()),
            "detail": [orjson.dumps(f.to_dict()).decode() for _, f in files],
            "input": [path for path, _ in files],
            "scan_id": [scan_id] * len(files),
        })  # fmt: skip
        _insert(con, TABLE, table)
    if inputs:
        table = pa.table({
            "scan_id": [scan_id] * len(inputs),
            "scanned_at": pa.array([when] * len(inputs), pa.timestamp("us")),
            "path": [r.path for r in inputs],
            "sha256": pa.array([r.sha256 for r in inputs], pa.string()),
            "size": pa.array([r.size for r in inputs], pa.int64()),
            "status": [r.status for r in inputs],
            "rows_added": pa.array([r.rows_added for r in inputs], pa.int64()),
            "rows_already": pa.array([r.rows_already for r in inputs], pa.int64()),
        })  # fmt: skip
        _insert(con, INPUTS, table)


def _insert(con: duckdb.DuckDBPyConnection, target: str, table: pa.Table) -> None:
    con.register("_wmihunt_log", table)
    try:
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        con.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM _wmihunt_log")
    finally:
        con.unregister("_wmihunt_log")


def loaded_inputs(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, str], set[str]]:
    """({sha256: first path loaded with it}, {paths loaded before}) of the case."""
    create(con)
    rows = con.execute(
        f"SELECT sha256, path FROM {INPUTS} WHERE status = ? ORDER BY scanned_at",
        [LOADED],
    ).fetchall()
    hashes: dict[str, str] = {}
    for sha, path in rows:
        if sha is not None:
            hashes.setdefault(sha, path)
    return hashes, {path for _, path in rows}


def load(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The accounting of every scan kept in ``con`` (ScanStats.to_dict() shape), or None."""
    try:
        details = con.execute(f"SELECT detail FROM {TABLE} ORDER BY scanned_at, path").fetchall()
    except duckdb.CatalogException:
        return None
    files = [orjson.loads(d) for (d,) in details]
    keys = ("read", "normalized", "skipped", "rejected")
    totals = {k: sum(f[k] for f in files) for k in keys}
    totals["files"] = len(files)
    totals["files_with_errors"] = sum(1 for f in files if f["errors"])
    return {"files": files, "totals": totals}


def inputs(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every ``scan_inputs`` row, oldest first (for tests and ``investigate``)."""
    try:
        cur = con.execute(f"SELECT * FROM {INPUTS} ORDER BY scanned_at, path")
    except duckdb.CatalogException:
        return []
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
