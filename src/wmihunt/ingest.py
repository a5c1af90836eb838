"""The ingest driver: input paths -> readers -> normalizers -> DuckDB tables.

Parallelism (ARCHITECTURE decision 1): ``evtx`` parses on the calling thread, so the
second core comes from worker *processes*, one top-level input file per task. A worker
normalizes its file into Arrow batches and spills each batch as an uncompressed Parquet
file in a scratch folder; the parent loads those with DuckDB and deletes them. Memory in
a worker is bounded by ``BATCH_ROWS`` rows, whatever the input size.

Interruption and re-runs (``docs/robustness.md``):

- **Whole files.** Each top-level input is loaded in ONE transaction together with its
  scan-log rows (``scanlog``): a scan stopped by Ctrl-C or killed leaves a case that holds
  every input it committed, complete, and nothing of the others. Small inputs read by
  worker processes share a transaction (``flush_group``: up to ``GROUP_INPUTS`` inputs,
  ``BATCH_ROWS`` rows or ``GROUP_SECONDS``), still whole inputs only.
- **Files by content.** Each input is identified by the SHA-256 of its bytes, computed
  in the worker that reads it (regular files; stdin is hashed as it is read). An input
  whose content is already in the case is not read again (``duplicate``), so running the
  same scan twice adds nothing.
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

import contextlib
import hashlib
import io
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from . import readers, scanlog
from .accounting import FileStats, ScanStats
from .events import RawEvent
from .models import MODELS
from .normalize import NormalizeError, is_relevant, normalize

#: Rows per model buffered before a batch is handed on.
BATCH_ROWS = 50_000

#: Called after each top-level input is done: (path, its file entries).
OnDone = Callable[[str, list[FileStats]], None]

#: See the module docstring: a test hook, never set in normal use.
PAUSE_ENV = "WMIHUNT_TEST_PAUSE_BEFORE_COMMIT"

_HASH_CHUNK = 1 << 20

#: A group of inputs is committed when it holds BATCH_ROWS rows, this many inputs, or
#: was started this many seconds ago (what an interrupted scan may have to read again).
GROUP_INPUTS = 256
GROUP_SECONDS = 2.0


@dataclass(slots=True)
class IngestStats(ScanStats):
    """``ScanStats`` plus what the case gained. ``logged``: the scan log is written."""

    logged: bool = False
    #: rows added to the model tables by this ingest
    rows_added: int = 0
    #: rows read again from a grown file and not added (already in the case)
    rows_already: int = 0
    #: inputs not read because their content was already in the case
    duplicates: int = 0


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


class _Batcher:
    """Collects normalized rows per model and emits Arrow tables of bounded size.

    Safety net: a row that does not fit its model's Arrow schema (a normalizer bug) is
    taken back from its file entry's ``normalized`` count and rejected with its position,
    instead of losing the whole batch.
    """

    def __init__(self, emit: Callable[[str, pa.Table], None]) -> None:
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
        schema = MODELS[table].arrow_schema
        try:
            batch = pa.Table.from_pylist(rows, schema=schema)
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
    path: str, emit: Callable[[str, pa.Table], None], *, limits: readers.Limits | None = None
) -> list[FileStats]:
    """Read and normalize one top-level input; hand batches to ``emit``; return accounting.

    ``limits``: the decompression-bomb limits (default: ``readers.Limits.default()``)."""
    entries: list[FileStats] = []
    current: list[FileStats] = []  # the file entry the reader is in now

    def on_file(stats: FileStats) -> None:
        entries.append(stats)
        current[:] = [stats]

    batcher = _Batcher(emit)
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


# -- worker processes -----------------------------------------------------------------
@dataclass
class _WorkerResult:
    path: str
    entries: list[FileStats]
    batches: list[tuple[str, str]] = field(default_factory=list)  # (table, parquet file)
    #: the file's last, partial batch per model, sent back through the pipe (no spill)
    tables: list[tuple[str, pa.Table]] = field(default_factory=list)
    rows: int = 0  # rows in batches + tables
    sha256: str | None = None
    size: int | None = None
    #: set when the content was already in the case: the file was not read
    duplicate_of: str | None = None
    failed: bool = False


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


def _worker(path: str, scratch: str, limits: readers.Limits | None) -> _WorkerResult:
    sha, size = file_sha256(path)
    result = _WorkerResult(path, [], sha256=sha, size=size)
    if sha is not None and sha in _KNOWN:
        result.duplicate_of = _KNOWN[sha]
        return result

    def emit(table: str, batch: pa.Table) -> None:
        result.rows += batch.num_rows
        if batch.num_rows < BATCH_ROWS:  # the file's last batch: small, goes back in memory
            result.tables.append((table, batch))
            return
        # a unique name: worker processes are reused across files
        fd, out = tempfile.mkstemp(prefix=f"{table}-", suffix=".parquet", dir=scratch)
        os.close(fd)
        pq.write_table(batch, out, compression="none")
        result.batches.append((table, out))

    result.entries = normalize_path(path, emit, limits=limits)
    return result


def _default_workers(n_inputs: int) -> int:
    return max(1, min(n_inputs, os.cpu_count() or 1))


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


# -- loading into the case ------------------------------------------------------------
class _InputLoad:
    """The rows of one input, inside its transaction; staged when positions may repeat."""

    def __init__(self, con: duckdb.DuckDBPyConnection, dedupe_path: str | None) -> None:
        self.con = con
        self.dedupe_path = dedupe_path
        self.rows = 0
        self._staged: dict[str, str] = {}

    def _target(self, table: str) -> str:
        if self.dedupe_path is None:
            return table
        stage = self._staged.get(table)
        if stage is None:
            stage = self._staged[table] = f"_wmihunt_stage_{table}"
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS FROM {table} LIMIT 0")
        return stage

    def add_arrow(self, table: str, batch: pa.Table) -> None:
        if batch.num_rows == 0:
            return
        target = self._target(table)
        cols = ", ".join(f'"{c}"' for c in MODELS[table].column_names)
        self.con.register("_wmihunt_batch", batch.select(MODELS[table].column_names))
        try:
            self.con.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM _wmihunt_batch")
        finally:
            self.con.unregister("_wmihunt_batch")
        self.rows += batch.num_rows

    def add_parquet(self, table: str, parquet: str) -> None:
        target = self._target(table)
        got = self.con.execute(
            f"INSERT INTO {target} BY NAME SELECT * FROM read_parquet(?)", [parquet]
        ).fetchone()
        self.rows += int(got[0]) if got else 0

    def add_parquets(self, table: str, parquets: list[str]) -> None:
        target = self._target(table)
        got = self.con.execute(
            f"INSERT INTO {target} BY NAME SELECT * FROM read_parquet(?)", [parquets]
        ).fetchone()
        self.rows += int(got[0]) if got else 0

    def finish(self) -> tuple[int, int]:
        """Move staged rows whose position is new into the case: (added, already there)."""
        if self.dedupe_path is None:
            return self.rows, 0
        added = 0
        for table, stage in self._staged.items():
            got = self.con.execute(
                f"INSERT INTO {table} SELECT * FROM {stage} s WHERE NOT EXISTS "
                f"(SELECT 1 FROM {table} o WHERE o.ev_file = ? AND o.uid = s.uid)",
                [self.dedupe_path],
            ).fetchone()
            added += int(got[0]) if got else 0
            self.con.execute(f"DROP TABLE {stage}")
        return added, self.rows - added


class _HashingReader(io.RawIOBase):
    """Standard input as read, hashed on the way (the readers call ``read`` only)."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        data = self._raw.read(-1 if n is None else n)
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Hash what the readers left unread (they may stop early on bad data)."""
        while self.read(_HASH_CHUNK):
            pass


class _StdinShim:
    def __init__(self, real: Any, buffer: _HashingReader) -> None:
        self._real = real
        self.buffer = buffer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Case:
    """Commits inputs one transaction each and keeps the scan's accounting."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        on_done: OnDone | None,
        limits: readers.Limits | None = None,
    ) -> None:
        self.con = con
        self.on_done = on_done
        self.limits = limits
        self.scan = IngestStats(logged=True)
        self.scan_id = uuid.uuid4().hex
        self.hashes, self.paths = scanlog.loaded_inputs(con)
        self.loads = 0
        #: inputs read but not committed yet: committed together (whole inputs only)
        self._group: list[_WorkerResult] = []
        self._group_rows = 0
        self._group_started = 0.0
        pause = os.environ.get(PAUSE_ENV, "")
        self.pause_at = int(pause) if pause.isdigit() else 0

    # -- transactions -----------------------------------------------------------------
    def _begin(self) -> None:
        self.con.begin()

    def _rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):  # no transaction open: nothing to undo
            self.con.rollback()

    def _commit(self, path: str, entries: list[FileStats], row: scanlog.InputRow) -> None:
        when = scanlog.now()
        scanlog.write_entries(self.con, entries, scan_id=self.scan_id, input_path=path,
                              when=when)  # fmt: skip
        scanlog.write_input(self.con, row, scan_id=self.scan_id, when=when)
        if row.status == scanlog.LOADED:
            self.loads += 1
            if self.loads == self.pause_at:
                self._pause()
        self.con.commit()
        if row.status == scanlog.LOADED:
            if row.sha256 is not None:
                self.hashes.setdefault(row.sha256, path)
            self.paths.add(path)
            self.scan.rows_added += row.rows_added
            self.scan.rows_already += row.rows_already
        self._finish(path, entries)

    def _pause(self) -> None:
        print(f"wmihunt-test-hook: paused before commit {self.loads}", file=sys.stderr,
              flush=True)  # fmt: skip
        time.sleep(3600)

    def _finish(self, path: str, entries: list[FileStats]) -> None:
        for entry in entries:
            self.scan.add(entry)
        if self.on_done:
            self.on_done(path, entries)

    # -- outcomes ---------------------------------------------------------------------
    def duplicate(self, path: str, sha: str, size: int | None) -> None:
        """Content already in the case: log it, read nothing."""
        first = self.hashes[sha]
        stats = FileStats(path, format="duplicate")
        same = "the same file" if first == path else f"{first}"
        stats.warn("file", f"already in the case (same content, sha256 {sha[:16]}..., as "
                   f"{same}): not read again")  # fmt: skip
        self.scan.duplicates += 1
        self._begin()
        try:
            self._commit(path, [stats], scanlog.InputRow(path, sha, size, scanlog.DUPLICATE))
        except BaseException:
            self._rollback()
            raise

    def failed(self, path: str, exc: BaseException, sha: str | None, size: int | None) -> None:
        """A bug stopped this input: nothing of it is kept; say so, go on with the others."""
        stats = FileStats(path)
        stats.error("file", f"internal error, nothing of this input was loaded: "
                    f"{type(exc).__name__}: {exc}")  # fmt: skip
        self._finish(path, [stats])

    def _dedupe_path(self, path: str) -> str | None:
        return path if path != "-" and path in self.paths else None

    def _note_already(self, entries: list[FileStats], path: str, already: int) -> None:
        if already and entries:
            entries[0].warn(
                "file",
                f"{already:,} records already in the case from an earlier scan of {path} "
                "(same file, member and record id or line): not added again",
            )

    def load_serial(self, path: str) -> None:
        sha, size = file_sha256(path)
        if sha is not None and sha in self.hashes:
            self.duplicate(path, sha, size)
            return
        self._begin()
        try:
            load = _InputLoad(self.con, self._dedupe_path(path))
            try:
                entries = normalize_path(path, load.add_arrow, limits=self.limits)
            except Exception as exc:  # a bug: this input is not loaded, the others are
                self._rollback()
                self.failed(path, exc, sha, size)
                return
            added, already = load.finish()
            self._note_already(entries, path, already)
            self._commit(path, entries, scanlog.InputRow(path, sha, size, scanlog.LOADED,
                                                         added, already))  # fmt: skip
        except BaseException:
            self._rollback()
            raise

    def add_result(self, result: _WorkerResult) -> None:
        """A worker's input. New content at a new path joins the pending group (committed
        by ``flush_group``); a duplicate, a failed worker or a grown file first commits the
        group, then goes through ``load_result`` on its own, as before."""
        sha = result.sha256
        plain = (
            not result.failed
            and result.duplicate_of is None
            and (sha is None or sha not in self.hashes)
            and self._dedupe_path(result.path) is None
        )
        if not plain:
            self.flush_group()
            self.load_result(result)
            return
        if sha is not None:
            self.hashes[sha] = result.path  # a later copy in this scan is a duplicate
        if not self._group:
            self._group_started = time.monotonic()
        self._group.append(result)
        self._group_rows += result.rows
        if (
            self._group_rows >= BATCH_ROWS
            or len(self._group) >= GROUP_INPUTS
            or time.monotonic() - self._group_started >= GROUP_SECONDS
        ):
            self.flush_group()

    def flush_group(self) -> None:
        """Commit the pending inputs in ONE transaction: one Arrow INSERT per model (the
        small batches concatenated; spilled Parquet read in one ``read_parquet`` list), one
        Arrow INSERT per scan-log table. Whole inputs only, so an interrupted scan still
        leaves only complete inputs; the test hook pauses before the commit of the group
        that holds the N-th input."""
        group, self._group, self._group_rows = self._group, [], 0
        if not group:
            return
        self._begin()
        try:
            by_table: dict[str, list[pa.Table]] = {}
            for result in group:
                for table, batch in result.tables:
                    by_table.setdefault(table, []).append(batch)
            load = _InputLoad(self.con, None)
            for table, batches in by_table.items():
                load.add_arrow(table, pa.concat_tables(batches).combine_chunks())
            spills: dict[str, list[str]] = {}
            for result in group:
                for table, parquet in result.batches:
                    spills.setdefault(table, []).append(parquet)
            for table, files in spills.items():
                load.add_parquets(table, files)
            when = scanlog.now()
            rows = [
                scanlog.InputRow(r.path, r.sha256, r.size, scanlog.LOADED, r.rows, 0) for r in group
            ]
            scanlog.write_group(self.con, [(r.path, r.entries) for r in group], rows,
                                scan_id=self.scan_id, when=when)  # fmt: skip
            before = self.loads
            self.loads += len(group)
            if before < self.pause_at <= self.loads:
                self._pause()
            self.con.commit()
        except BaseException:
            self._rollback()
            raise
        finally:
            for result in group:
                for _, parquet in result.batches:
                    with contextlib.suppress(OSError):
                        os.unlink(parquet)
        for result in group:
            self.paths.add(result.path)
            self._finish(result.path, result.entries)
        self.scan.rows_added += load.rows

    def load_result(self, result: _WorkerResult) -> None:
        try:
            if result.failed:
                self._finish(result.path, result.entries)
                return
            sha = result.sha256
            if sha is not None and (result.duplicate_of is not None or sha in self.hashes):
                if sha not in self.hashes:  # known to the worker only: cannot happen
                    self.hashes[sha] = result.duplicate_of or result.path
                self.duplicate(result.path, sha, result.size)
                return
            self._begin()
            try:
                load = _InputLoad(self.con, self._dedupe_path(result.path))
                for table, parquet in result.batches:
                    load.add_parquet(table, parquet)
                for table, batch in result.tables:
                    load.add_arrow(table, batch)
                added, already = load.finish()
                self._note_already(result.entries, result.path, already)
                row = scanlog.InputRow(result.path, sha, result.size, scanlog.LOADED, added,
                                       already)  # fmt: skip
                self._commit(result.path, result.entries, row)
            except BaseException:
                self._rollback()
                raise
        finally:
            for _, parquet in result.batches:
                with contextlib.suppress(OSError):
                    os.unlink(parquet)

    def load_stdin(self, path: str) -> None:
        """Stdin is hashed as it is read; known content is rolled back, not added twice."""
        real = sys.stdin
        buffer = getattr(real, "buffer", None)
        if buffer is None:  # no stdin at all: the reader says so
            self.load_serial(path)
            return
        hashing = _HashingReader(buffer)
        self._begin()
        try:
            load = _InputLoad(self.con, None)
            sys.stdin = _StdinShim(real, hashing)  # type: ignore[assignment]
            try:
                entries = normalize_path(path, load.add_arrow, limits=self.limits)
                hashing.drain()
            finally:
                sys.stdin = real
            sha = hashing.digest.hexdigest() if hashing.size else None
            if sha is not None and sha in self.hashes:
                self._rollback()
                self.duplicate(path, sha, hashing.size)
                return
            added, _ = load.finish()
            row = scanlog.InputRow(path, sha, hashing.size, scanlog.LOADED, added, 0)
            self._commit(path, entries, row)
        except BaseException:
            self._rollback()
            raise


def ingest_paths(
    paths: Iterable[str],
    con: duckdb.DuckDBPyConnection,
    *,
    workers: int | None = None,
    on_done: OnDone | None = None,
    limits: readers.Limits | None = None,
) -> IngestStats:
    """Read every input under ``paths`` into the model tables of ``con``.

    Folders are walked; ``-`` is stdin (read in this process). With more than one input and
    more than one worker, files are spread over worker processes, largest first. Each
    input is committed on its own with its scan-log rows; inputs whose content is already
    in the case are skipped (see the module docstring). An exception (Ctrl-C included)
    rolls back the input being loaded and propagates; inputs committed before it stay.
    ``limits`` are the decompression-bomb limits (default: the readers' module values).
    """
    inputs, not_logs = readers.plan_inputs(list(paths))
    case = _Case(con, on_done, limits)
    for stats in not_logs:
        case.scan.add(stats)
    stdin_inputs = [p for p in inputs if p == "-"]
    file_inputs = sorted((p for p in inputs if p != "-"), key=_size, reverse=True)
    n_workers = workers if workers is not None else _default_workers(len(file_inputs))

    if n_workers <= 1 or len(file_inputs) <= 1:
        for path in file_inputs:
            case.load_serial(path)
    else:
        for result in _parallel(file_inputs, n_workers, dict(case.hashes), limits):
            case.add_result(result)
        case.flush_group()
    for path in stdin_inputs:
        case.load_stdin(path)
    return case.scan


_SPILL_PREFIX = "wmihunt-spill-"


def _sweep_stale_spills() -> None:
    """Remove spill folders of scans that were killed (their process is gone)."""
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(_SPILL_PREFIX):
            continue
        pid = name[len(_SPILL_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # gone: nobody will load these Parquet files
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        except OSError:
            pass  # alive (or not ours to signal): leave it


def _parallel(
    paths: list[str], n_workers: int, known: dict[str, str], limits: readers.Limits | None
) -> Iterator[_WorkerResult]:
    _sweep_stale_spills()
    scratch = tempfile.mkdtemp(prefix=f"{_SPILL_PREFIX}{os.getpid()}-")
    pool = ProcessPoolExecutor(max_workers=n_workers, initializer=_init_worker,
                               initargs=(known,))  # fmt: skip
    finished = False
    try:
        futures: dict[Future[_WorkerResult], str] = {
            pool.submit(_worker, p, scratch, limits): p for p in paths
        }
        for future in as_completed(futures):
            # forget the future once consumed: it holds the result (Arrow batches), and
            # as_completed releases only its own references
            path = futures.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # a crashed worker loses one file, never the scan
                stats = FileStats(path)
                stats.error("file", f"worker failed: {type(exc).__name__}: {exc}")
                result = _WorkerResult(path, [stats], failed=True)
            yield result
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:  # interrupted: do not wait for files nobody will load
            pool.shutdown(wait=False, cancel_futures=True)
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        shutil.rmtree(scratch, ignore_errors=True)


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per model table (for the scan header and tests)."""
    return {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in MODELS}


__all__ = [
    "BATCH_ROWS",
    "PAUSE_ENV",
    "IngestStats",
    "file_sha256",
    "ingest_paths",
    "normalize_path",
    "table_counts",
]
