"""Worker processes over files (ARCHITECTURE decision 1: ``evtx`` parses on the calling
thread, so the second core comes from processes).

Inputs are packed into *tasks* of several files (largest first; about ``TASK_BYTES`` of
input or ``TASK_FILES`` files each), so that the per-result costs (pickling, the parent's
insert and commit) are paid per task, not per file: on 770 EVTX files of 0.4 MB they were
a third of the scan. A worker normalizes a task's files into one set of Arrow batches
(rows of several files, each naming its file in ``ev_file``); a full batch
(``BATCH_ROWS``) is spilled as uncompressed Parquet in a scratch folder, the last partial
one per model goes back through the pipe. The parent loads them and deletes the files.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import pyarrow as pa

from .. import readers
from ..accounting import FileStats
from ..scratch import new_folder, sweep_stale
from ..textpath import text_path
from .normalizing import BATCH_ROWS, Batcher, file_sha256, normalize_path

#: A task holds about this much input (fewer bytes when the scan is small, so that every
#: worker gets several tasks), and at most TASK_FILES files; a larger file is a task alone.
TASK_BYTES = 16 << 20
TASK_FILES = 64


@dataclass
class FileResult:
    """One input of a task, as its worker saw it."""

    path: str
    entries: list[FileStats] = field(default_factory=list)
    sha256: str | None = None
    size: int | None = None
    #: rows of this input in the task's batches
    rows: int = 0
    #: the content is already in the case (or earlier in this task) at this path: not read
    duplicate_of: str | None = None
    #: a bug stopped the reading: ``entries`` holds the error; its rows must not be loaded
    failed: bool = False

    @property
    def name(self) -> str:
        """The path as stored (``ev_file``, scan log): valid text (``textpath``)."""
        return text_path(self.path)


@dataclass
class TaskResult:
    files: list[FileResult]
    #: the task's last, partial batch per model, sent back through the pipe (no spill)
    tables: list[tuple[str, pa.Table]] = field(default_factory=list)
    #: full batches spilled as Parquet: (table, file)
    batches: list[tuple[str, str]] = field(default_factory=list)
    #: Arrow bytes of ``tables`` (measured in the worker: the parent has less CPU to spare)
    nbytes: int = 0

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def plan_tasks(paths: list[str], solo: set[str], n_workers: int) -> list[list[str]]:
    """Pack ``paths`` (largest first) into tasks. A path in ``solo`` (already in the case:
    it may have grown, and is loaded on its own) or a big file is a task of its own. A
    path given twice stays in one task, whose worker reads it once (the parent picks rows
    by path, so two tasks must never hold the same path)."""
    count: dict[str, int] = {}
    for path in paths:
        count[path] = count.get(path, 0) + 1
    sizes = {p: file_size(p) for p in count}
    budget = max(1 << 20, min(TASK_BYTES, sum(sizes.values()) // (4 * max(1, n_workers))))
    tasks: list[list[str]] = []
    current: list[str] = []
    current_bytes = 0
    for path in sorted(count, key=sizes.__getitem__, reverse=True):
        if path in solo or sizes[path] >= budget:
            tasks.append([path] * count[path])
            continue
        current.extend([path] * count[path])
        current_bytes += sizes[path]
        if current_bytes >= budget or len(current) >= TASK_FILES:
            tasks.append(current)
            current, current_bytes = [], 0
    if current:
        tasks.append(current)
    return tasks


def file_size(path: str) -> int:
    """Size in bytes; 0 when it cannot be known (the reader then says why)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


# -- in the worker process ------------------------------------------------------------
#: sha256 -> path of the content already in the case when the scan started
_KNOWN: dict[str, str] = {}


def _init_worker(known: dict[str, str]) -> None:
    # Ctrl-C is the parent's to handle: it rolls back and stops the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _KNOWN.clear()
    _KNOWN.update(known)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A killed scan (SIGKILL) cannot stop its pool: workers notice and exit on their own
    instead of lingering forever (they would wait for tasks that never come)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def run_task(paths: list[str], scratch: str, limits: readers.Limits | None) -> TaskResult:
    """Read and normalize a task's files into one set of batches."""
    result = TaskResult([])

    def emit(table: str, batch: pa.Table) -> None:
        if batch.num_rows < BATCH_ROWS:  # the task's last batch: small, goes back in memory
            result.tables.append((table, batch))
            return
        import pyarrow.parquet as pq  # only for a full batch (rare): 35 ms of imports

        # a unique name: worker processes are reused across tasks
        fd, out = tempfile.mkstemp(prefix=f"{table}-", suffix=".parquet", dir=scratch)
        os.close(fd)
        pq.write_table(batch, out, compression="none")
        result.batches.append((table, out))

    batcher = Batcher(emit)
    seen: dict[str, str] = {}
    for path in paths:
        sha, size = file_sha256(path)
        file = FileResult(path, sha256=sha, size=size)
        result.files.append(file)
        if sha is not None:
            first = _KNOWN.get(sha) or seen.get(sha)
            if first is not None:
                file.duplicate_of = text_path(first)
                continue
        try:
            file.entries = normalize_path(path, limits=limits, batcher=batcher)
        except Exception as exc:  # a bug: this input is lost (and said so), not the task
            file.failed = True
            file.entries = [_failed(path, exc)]
            continue
        if sha is not None:
            seen[sha] = path
    batcher.flush()  # may reject rows (safety net): count rows after it
    result.nbytes = sum(batch.nbytes for _, batch in result.tables)
    for file in result.files:
        if not file.failed:
            file.rows = sum(entry.normalized for entry in file.entries)
    return result


def _failed(path: str, exc: BaseException) -> FileStats:
    stats = FileStats(path)
    stats.error("file", f"worker failed: {type(exc).__name__}: {exc}")
    return stats


# -- in the parent --------------------------------------------------------------------
class WorkerPool:
    """The tasks of one scan, submitted to worker processes as soon as it is created, so
    that reading starts while the parent still prepares (imports, rules)."""

    def __init__(
        self,
        tasks: list[list[str]],
        n_workers: int,
        known: dict[str, str],
        limits: readers.Limits | None,
    ) -> None:
        sweep_stale()
        self._scratch = new_folder("workers")
        self._pool = ProcessPoolExecutor(max_workers=n_workers, initializer=_init_worker,
                                         initargs=(known,))  # fmt: skip
        self._futures: dict[Future[TaskResult], list[str]] = {
            self._pool.submit(run_task, task, self._scratch, limits): task for task in tasks
        }
        self._closed = False

    def results(self) -> Iterator[TaskResult]:
        """Task results as they complete; a crashed worker loses its task's files (each
        reported), never the scan."""
        for future in as_completed(self._futures):
            # forget the future once consumed: it holds the result (Arrow batches), and
            # as_completed releases only its own references
            task = self._futures.pop(future)
            try:
                result = future.result()
            except Exception as exc:
                result = TaskResult([FileResult(p, [_failed(p, exc)], failed=True) for p in task])
            yield result

    def close(self, *, finished: bool) -> None:
        """Stop the pool (``finished``: every result was consumed) and remove the spill."""
        if self._closed:
            return
        self._closed = True
        if finished:
            self._pool.shutdown(wait=True)
        else:  # interrupted: do not wait for files nobody will load
            # taken before shutdown(), which forgets them (``_processes = None``)
            processes = list((getattr(self._pool, "_processes", None) or {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
        shutil.rmtree(self._scratch, ignore_errors=True)


__all__ = ["FileResult", "TaskResult", "WorkerPool", "file_size", "plan_tasks", "run_task"]
