"""DuckDB storage: one connection, the model tables, columnar batch loading."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from . import scratch
from .models import MODELS


def connect(
    db_path: str | Path | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open the case database (in memory when ``db_path`` is None) with the model tables.

    An in-memory case that outgrows DuckDB's memory limit is offloaded to a private
    temporary folder (DuckDB's default, ``.tmp`` in the working directory, would litter
    the analyst's folder); a file case uses ``<file>.tmp`` beside it, DuckDB's default."""
    con = duckdb.connect(str(db_path) if db_path else ":memory:", read_only=read_only)
    if not db_path:
        con.execute("SET temp_directory = ?", [scratch.new_name("duckdb")])
    if not read_only:
        create_tables(con)
    return con


@contextlib.contextmanager
def memory_limit(con: duckdb.DuckDBPyConnection, nbytes: int) -> Iterator[None]:
    """DuckDB's memory limit at ``nbytes`` for a while, then back to its default.

    Lowering the limit makes DuckDB give back what it holds beyond it (committed rows of
    an in-memory case go to the temporary folder); without it, DuckDB keeps every buffer
    it ever used. What runs meanwhile must fit: an insert needs room for its batch. The
    default comes back with ``RESET`` (the setting reads back rounded; nothing else
    changes it). A limit at or above the current one changes nothing: it is never
    raised here (a huge input's room must not let DuckDB use more than it would anyway).
    """
    ((current,),) = con.execute("SELECT current_setting('memory_limit')").fetchall()
    if nbytes >= _setting_bytes(current):
        yield
        return
    con.execute(f"SET memory_limit = '{max(1, nbytes >> 20)}MiB'")
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):  # never hide the error that got us here
            con.execute("RESET memory_limit")


_UNITS = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
          "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}  # fmt: skip


def _setting_bytes(text: str) -> float:
    """A DuckDB size setting as it reads back (``18.7 GiB``) in bytes; infinite when it
    cannot be read (then a limit is always set)."""
    number, _, unit = text.strip().partition(" ")
    try:
        return float(number) * _UNITS[unit]
    except (KeyError, ValueError):
        return float("inf")


@contextlib.contextmanager
def one_thread(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB on one thread for a while: for many small queries (per-finding context:
    measured 55 -> 37 ms per finding on the EVTX bench set) and while worker processes
    hold the cores (loading), its thread handoffs cost more than they save."""
    ((threads,),) = con.execute("SELECT current_setting('threads')").fetchall()
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {int(threads)}")


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for model in MODELS.values():
        con.execute(model.ddl())


def load_batch(
    con: duckdb.DuckDBPyConnection,
    table: str,
    batch: pa.Table,
    *,
    target: str | None = None,
    where: str = "",
    params: list[Any] | None = None,
) -> int:
    """Append an Arrow table (already in ``table``'s model schema) to ``target`` (default:
    the table itself), keeping the rows ``where`` selects (a SQL ``WHERE ...`` clause over
    the batch, with ``params``); return the rows inserted."""
    if batch.num_rows == 0:
        return 0
    model = MODELS[table]
    cols = ", ".join(f'"{c}"' for c in model.column_names)
    con.register("_wmihunt_batch", batch.select(model.column_names))
    try:
        got = con.execute(
            f"INSERT INTO {target or table} ({cols}) SELECT {cols} FROM _wmihunt_batch{where}",
            params or [],
        ).fetchone()
    finally:
        con.unregister("_wmihunt_batch")
    return int(got[0]) if got else 0
