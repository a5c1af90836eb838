"""The ingest driver: input paths -> readers -> normalizers -> DuckDB tables.

Modules: ``normalizing`` (one input -> Arrow batches and accounting; what workers run),
``parallel`` (inputs packed into tasks for worker processes), ``case`` (loading and
committing into the case database, the scan log).

Parallelism (ARCHITECTURE decision 1): ``evtx`` parses on the calling thread, so the
second core comes from worker *processes* over tasks of whole files (``parallel``). Memory
in a worker is bounded by ``BATCH_ROWS`` rows per model, whatever the input size. The
workers start before the parent loads the rules (``start``), so reading overlaps the
parent's own start-up.

Interruption and re-runs (``docs/robustness.md``):

- **Whole files.** Each top-level input is loaded in ONE transaction together with its
  scan-log rows (``scanlog``): a scan stopped by Ctrl-C or killed leaves a case that holds
  every input it committed, complete, and nothing of the others. Inputs read by worker
  processes share a transaction (``Case.flush_group``: up to ``GROUP_INPUTS`` inputs,
  ``BATCH_ROWS`` rows or ``GROUP_SECONDS``), still whole inputs only.
- **Files by content.** Each input is identified by the SHA-256 of its bytes, computed
  in the worker that reads it (regular files; stdin is hashed as it is read). An input
  whose content is already in the case is not read again (``duplicate``), so running the
  same scan twice adds nothing; a copy met in the same scan is read but not loaded.
- **Records by position.** When a path already in the case comes back with other content
  (a log that grew), its rows are first staged, and only those whose ``uid`` (file,
  member, record id or line) is not in the case yet are added.

Test hook: with ``WMIHUNT_TEST_PAUSE_BEFORE_COMMIT=N`` in the environment, the driver
writes ``wmihunt-test-hook: paused before commit N`` to stderr and sleeps just before the
commit that holds the N-th input it loads (its rows written, not committed; with worker
processes that commit may hold a group of inputs), so a test can kill the scan at that
exact point. Nothing else reads this variable, and it changes nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import readers
from ..textpath import text_path
from .parallel import WorkerPool, file_size, plan_tasks

if TYPE_CHECKING:
    import duckdb

    from .case import IngestStats, OnDone

# DuckDB is imported only when the case is touched (``finish``), not by ``start``: for a
# new case the workers fork before the parent imports DuckDB (~0.3 s of a 1 s read).
_LAZY = {
    "PAUSE_ENV": "case",
    "IngestStats": "case",
    "BATCH_ROWS": "normalizing",
    "file_sha256": "normalizing",
    "normalize_path": "normalizing",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Reading:
    """One scan's reading, started by ``start`` and completed by ``finish``.

    Worker processes (when there are several files and workers) begin at ``start``; the
    parent may do other work (load rules) before ``finish`` loads their results into the
    case. ``close`` stops the workers of a reading that is abandoned."""

    def __init__(
        self,
        paths: Iterable[str],
        con: duckdb.DuckDBPyConnection | None = None,
        *,
        workers: int | None = None,
        limits: readers.Limits | None = None,
    ) -> None:
        inputs, self._not_logs = readers.plan_inputs(list(paths))
        self.con = con
        self.limits = limits
        #: top-level inputs (for a progress bar)
        self.n_inputs = len(inputs)
        self._stdin = [p for p in inputs if p == "-"]
        self._files = sorted((p for p in inputs if p != "-"), key=file_size, reverse=True)
        self._n_workers = workers if workers is not None else _default_workers(self._files)
        self._pool: WorkerPool | None = None
        if self._n_workers > 1 and len(self._files) > 1:
            hashes: dict[str, str] = {}
            loaded: set[str] = set()
            if con is not None:
                from .. import scanlog

                hashes, loaded = scanlog.loaded_inputs(con)  # stored names (``textpath``)
            solo = {p for p in self._files if text_path(p) in loaded}
            tasks = plan_tasks(self._files, solo, self._n_workers)
            self._pool = WorkerPool(tasks, self._n_workers, hashes, limits)

    def finish(
        self, on_done: OnDone | None = None, con: duckdb.DuckDBPyConnection | None = None
    ) -> IngestStats:
        """Load every input into the case ``con`` (default: the one given to ``start``;
        see the package docstring); an exception (Ctrl-C included) rolls back the input or
        group being loaded and propagates; inputs committed before it stay."""
        from .. import store
        from .case import Case

        if con is not None:
            self.con = con
        if self.con is None:
            raise TypeError("Reading.finish needs the case connection")
        case = Case(self.con, on_done, self.limits)
        for stats in self._not_logs:
            case.scan.add(stats)
        finished = False
        # One DuckDB thread while loading: the worker processes have the cores, and each
        # DuckDB thread keeps its own insert buffers (measured: 4x input, peak 255 -> 222 MB).
        try:
            with store.one_thread(self.con):
                if self._pool is None:
                    for path in self._files:
                        case.load_serial(path)
                else:
                    for task in self._pool.results():
                        case.add_task(task)
                    case.flush_group()
            finished = True
        finally:
            self.close(finished=finished)
        for path in self._stdin:
            case.load_stdin(path)
        return case.scan

    def close(self, *, finished: bool = False) -> None:
        if self._pool is not None:
            self._pool.close(finished=finished)


def start(
    paths: Iterable[str],
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    workers: int | None = None,
    limits: readers.Limits | None = None,
) -> Reading:
    """Plan the inputs under ``paths`` (folders walked, ``-`` is stdin) and start reading
    them in worker processes: with more than one file and more than one worker, tasks of
    files go to the workers, largest first. ``limits``: the decompression-bomb limits.

    ``con`` is the case, whose content already loaded is not read again; ``None`` for a
    new (empty) case, which lets a scan start the workers before it imports DuckDB; the
    connection is then given to ``Reading.finish``."""
    return Reading(paths, con, workers=workers, limits=limits)


def ingest_paths(
    paths: Iterable[str],
    con: duckdb.DuckDBPyConnection,
    *,
    workers: int | None = None,
    on_done: OnDone | None = None,
    limits: readers.Limits | None = None,
) -> IngestStats:
    """Read every input under ``paths`` into the model tables of ``con``: ``start`` and
    ``Reading.finish`` in one call."""
    return start(paths, con, workers=workers, limits=limits).finish(on_done)


def _default_workers(files: list[str]) -> int:
    return max(1, min(len(files), os.cpu_count() or 1))


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per model table (for the scan header and tests)."""
    from ..models import MODELS

    return {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in MODELS}


__all__ = [
    "BATCH_ROWS",
    "PAUSE_ENV",
    "IngestStats",
    "Reading",
    "file_sha256",
    "ingest_paths",
    "normalize_path",
    "start",
    "table_counts",
]
