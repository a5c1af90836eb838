"""One input -> normalized rows in Arrow batches, with its accounting (the worker side).

Nothing here touches the case database: worker processes run this, and so does the
parent for inputs it reads itself (stdin, a single file, ``--workers 1``).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from .. import readers
from ..accounting import FileStats
from ..events import RawEvent
from ..models import MODELS
from ..normalize import NormalizeError, is_relevant, normalize

#: Rows per model buffered before a batch is handed on.
BATCH_ROWS = 50_000

#: Receives each Arrow batch: (model table name, batch).
Emit = Callable[[str, pa.Table], None]


def _position(event: RawEvent) -> str:
    if event.line is not None:
        return f"line {event.line}"
    if event.record_id is not None:
        return f"record {event.record_id}"
    return "unknown position"


def _row_position(row: dict[str, Any]) -> str:
    if row.get("ev_line") is not None:
        return f"line {row['ev_line']}"
    if row.get("ev_record_id") is not None:
        return f"record {row['ev_record_id']}"
    return "unknown position"


class Batcher:
    """Collects normalized rows per model and emits Arrow tables of bounded size.

    One batcher may collect the rows of several inputs (a worker's task): a batch then
    holds rows of several files, each row naming its file in ``ev_file``.

    Safety net: a row that does not fit its model's Arrow schema (a normalizer bug) is
    taken back from its file entry's ``normalized`` count and rejected with its position,
    instead of losing the whole batch.
    """

    def __init__(self, emit: Emit) -> None:
        self._rows: dict[str, list[dict]] = {name: [] for name in MODELS}
        self._owners: dict[str, list[FileStats]] = {name: [] for name in MODELS}
        self._emit = emit

    def add(self, table: str, row: dict, owner: FileStats) -> None:
        rows = self._rows[table]
        rows.append(row)
        self._owners[table].append(owner)
        if len(rows) >= BATCH_ROWS:
            self._flush_one(table)

    def _flush_one(self, table: str) -> None:
        rows, owners = self._rows[table], self._owners[table]
        if not rows:
            return
        self._rows[table], self._owners[table] = [], []
        try:
            batch = pa.Table.from_pylist(rows, schema=MODELS[table].arrow_schema)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            batch = self._salvage(table, rows, owners, exc)
        if batch.num_rows:
            self._emit(table, batch)

    @staticmethod
    def _salvage(
        table: str, rows: list[dict], owners: list[FileStats], first: Exception
    ) -> pa.Table:
        schema = MODELS[table].arrow_schema
        good: list[dict] = []
        for row, owner in zip(rows, owners, strict=True):
            try:
                pa.Table.from_pylist([row], schema=schema)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                owner.normalized -= 1
                owner.rejected += 1
                owner.error(
                    _row_position(row),
                    f"internal error: normalized row does not fit the {table} model "
                    f"({type(exc).__name__}: {str(exc)[:200]})",
                )
            else:
                good.append(row)
        return pa.Table.from_pylist(good, schema=schema)

    def flush(self) -> None:
        for table in self._rows:
            self._flush_one(table)


def normalize_path(
    path: str,
    emit: Emit | None = None,
    *,
    limits: readers.Limits | None = None,
    batcher: Batcher | None = None,
) -> list[FileStats]:
    """Read and normalize one top-level input; return its accounting (file entries).

    Rows go to ``emit`` in batches (flushed at the end), or into ``batcher``, which the
    caller flushes (rows of several inputs in one batch). ``limits``: the
    decompression-bomb limits (default: ``readers.Limits.default()``)."""
    entries: list[FileStats] = []
    current: list[FileStats] = []  # the file entry the reader is in now

    def on_file(stats: FileStats) -> None:
        entries.append(stats)
        current[:] = [stats]

    own = batcher is None
    if batcher is None:
        if emit is None:
            raise TypeError("normalize_path needs emit or batcher")
        batcher = Batcher(emit)
    for event in readers.read_path(path, is_relevant, on_file, limits=limits):
        stats = current[0]
        try:
            result = normalize(event)
        except NormalizeError as exc:
            stats.reject(_position(event), str(exc))
            continue
        except Exception as exc:  # a normalizer bug must not lose the other records
            stats.reject(_position(event), f"internal error: {type(exc).__name__}: {exc}")
            continue
        if result is None:
            stats.skip(event.channel, event.event_id)
            continue
        table, row = result
        stats.accepted()
        batcher.add(table, row, stats)
    if own:
        batcher.flush()
    return entries


def file_sha256(path: str) -> tuple[str | None, int | None]:
    """(SHA-256 hex, size) of a regular file; (None, None) for anything else (a pipe,
    a device, a file that cannot be opened: the reader then reports why)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before open(): a FIFO would block
            return None, None
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            digest = hashlib.file_digest(f, "sha256")  # type: ignore[arg-type]
    except OSError:
        return None, None
    return digest.hexdigest(), size


__all__ = ["BATCH_ROWS", "Batcher", "Emit", "file_sha256", "normalize_path"]
