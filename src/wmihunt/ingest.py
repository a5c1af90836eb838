"""The ingest driver: input paths -> readers -> normalizers -> DuckDB tables.

Parallelism (ARCHITECTURE decision 1): ``evtx`` parses on the calling thread, so the
second core comes from worker *processes*, one top-level input file per task. A worker
normalizes its file into Arrow batches and spills each batch as an uncompressed Parquet
file in a scratch folder; the parent loads those with DuckDB and deletes them. Memory in
a worker is bounded by ``BATCH_ROWS`` rows, whatever the input size.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from . import readers
from .accounting import FileStats, ScanStats
from .events import RawEvent
from .models import MODELS
from .normalize import NormalizeError, is_relevant, normalize
from .store import load_batch

#: Rows per model buffered before a batch is handed on.
BATCH_ROWS = 50_000

#: Called after each top-level input is done: (path, its file entries).
OnDone = Callable[[str, list[FileStats]], None]


def _position(event: RawEvent) -> str:
    if event.line is not None:
        return f"line {event.line}"
    if event.record_id is not None:
        return f"record {event.record_id}"
    return "unknown position"


class _Batcher:
    """Collects normalized rows per model and emits Arrow tables of bounded size."""

    def __init__(self, emit: Callable[[str, pa.Table], None]) -> None:
        self._rows: dict[str, list[dict]] = {name: [] for name in MODELS}
        self._emit = emit

    def add(self, table: str, row: dict) -> None:
        rows = self._rows[table]
        rows.append(row)
        if len(rows) >= BATCH_ROWS:
            self._flush_one(table)

    def _flush_one(self, table: str) -> None:
        rows = self._rows[table]
        if rows:
            self._emit(table, pa.Table.from_pylist(rows, schema=MODELS[table].arrow_schema))
            self._rows[table] = []

    def flush(self) -> None:
        for table in self._rows:
            self._flush_one(table)


def normalize_path(path: str, emit: Callable[[str, pa.Table], None]) -> list[FileStats]:
    """Read and normalize one top-level input; hand batches to ``emit``; return accounting."""
    entries: list[FileStats] = []
    current: list[FileStats] = []  # the file entry the reader is in now

    def on_file(stats: FileStats) -> None:
        entries.append(stats)
        current[:] = [stats]

    batcher = _Batcher(emit)
    for event in readers.read_path(path, is_relevant, on_file):
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
        batcher.add(table, row)
        stats.accepted()
    batcher.flush()
    return entries


@dataclass
class _WorkerResult:
    path: str
    entries: list[FileStats]
    batches: list[tuple[str, str]] = field(default_factory=list)  # (table, parquet file)


def _worker(path: str, scratch: str) -> _WorkerResult:
    result = _WorkerResult(path, [])

    def emit(table: str, batch: pa.Table) -> None:
        # a unique name: worker processes are reused across files
        fd, out = tempfile.mkstemp(prefix=f"{table}-", suffix=".parquet", dir=scratch)
        os.close(fd)
        pq.write_table(batch, out, compression="none")
        result.batches.append((table, out))

    result.entries = normalize_path(path, emit)
    return result


def _default_workers(n_inputs: int) -> int:
    return max(1, min(n_inputs, os.cpu_count() or 1))


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def ingest_paths(
    paths: Iterable[str],
    con: duckdb.DuckDBPyConnection,
    *,
    workers: int | None = None,
    on_done: OnDone | None = None,
) -> ScanStats:
    """Read every input under ``paths`` into the model tables of ``con``.

    Folders are walked; ``-`` is stdin (read in this process). With more than one input and
    more than one worker, files are spread over worker processes, largest first.
    """
    inputs = list(readers.iter_inputs(list(paths)))
    scan = ScanStats()
    stdin_inputs = [p for p in inputs if p == "-"]
    file_inputs = sorted((p for p in inputs if p != "-"), key=_size, reverse=True)
    n_workers = workers if workers is not None else _default_workers(len(file_inputs))

    def finish(path: str, entries: list[FileStats]) -> None:
        for entry in entries:
            scan.add(entry)
        if on_done:
            on_done(path, entries)

    def emit_direct(table: str, batch: pa.Table) -> None:
        load_batch(con, table, batch)

    if n_workers <= 1 or len(file_inputs) <= 1:
        for path in file_inputs:
            finish(path, normalize_path(path, emit_direct))
    else:
        for result in _parallel(file_inputs, n_workers):
            for table, parquet in result.batches:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet(?)", [parquet])
                os.unlink(parquet)
            finish(result.path, result.entries)
    for path in stdin_inputs:
        finish(path, normalize_path(path, emit_direct))
    return scan


def _parallel(paths: list[str], n_workers: int) -> Iterator[_WorkerResult]:
    scratch = tempfile.mkdtemp(prefix="wmihunt-")
    try:
        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            futures = {pool.submit(_worker, p, scratch): p for p in paths}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # a crashed worker loses one file, never the scan
                    path = futures[future]
                    stats = FileStats(path)
                    stats.error("file", f"worker failed: {type(exc).__name__}: {exc}")
                    yield _WorkerResult(path, [stats])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per model table (for the scan header and tests)."""
    return {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in MODELS}


__all__ = ["BATCH_ROWS", "ingest_paths", "normalize_path", "table_counts"]
