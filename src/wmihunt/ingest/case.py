"""Loading into the case: whole inputs per transaction, with their scan-log rows.

See the package docstring for the rules (whole files, files by content, records by
position) and the test hook.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from .. import readers, scanlog, store
from ..accounting import DUPLICATE, FileStats, ScanStats
from ..textpath import text_path
from . import normalizing
from .normalizing import BATCH_ROWS, file_sha256
from .parallel import FileResult, TaskResult

#: Called after each top-level input is done: (path, its file entries).
OnDone = Callable[[str, list[FileStats]], None]

#: See the package docstring: a test hook, never set in normal use.
PAUSE_ENV = "WMIHUNT_TEST_PAUSE_BEFORE_COMMIT"

_HASH_CHUNK = 1 << 20

#: A group of inputs is committed when it holds BATCH_ROWS rows, GROUP_BYTES of Arrow
#: data, this many inputs, or was started this many seconds ago (what an interrupted scan
#: may have to read again). The bytes bound the parent's memory: a group is held, then
#: copied once more by the insert.
GROUP_INPUTS = 256
GROUP_SECONDS = 2.0
GROUP_BYTES = 4 << 20
#: An in-memory case compacts the rows added since the last CHECKPOINT only then; a
#: checkpoint is taken after the group that brings this many Arrow bytes since the last.
CHECKPOINT_BYTES = 32 << 20
#: DuckDB's memory limit while worker results are loaded, plus room for the transaction
#: (``_room``). Without a limit DuckDB keeps every buffer it ever used: on 4x the EVTX
#: bench set the loading process peaked at 215 MB instead of ~150 MB.
LOADING_MEMORY = 32 << 20


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


class _InputLoad:
    """Rows inside the open transaction; staged when positions may repeat (a grown file).

    ``only``/``exclude`` select rows by ``ev_file`` when a batch holds rows of several
    inputs (a worker's task) and not all of them are to be loaded here."""

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

    @staticmethod
    def _where(only: str | None, exclude: set[str] | None) -> tuple[str, list[Any]]:
        if only is not None:
            return " WHERE ev_file = ?", [only]
        if exclude:
            return " WHERE ev_file NOT IN (SELECT unnest(?::VARCHAR[]))", [sorted(exclude)]
        return "", []

    def add_arrow(
        self,
        table: str,
        batch: pa.Table,
        *,
        only: str | None = None,
        exclude: set[str] | None = None,
    ) -> None:
        if batch.num_rows == 0:
            return
        where, params = self._where(only, exclude)
        self.rows += store.load_batch(
            self.con, table, batch, target=self._target(table), where=where, params=params
        )

    def add_parquets(
        self,
        table: str,
        parquets: list[str],
        *,
        only: str | None = None,
        exclude: set[str] | None = None,
    ) -> None:
        if not parquets:
            return
        target = self._target(table)
        where, params = self._where(only, exclude)
        got = self.con.execute(
            f"INSERT INTO {target} BY NAME SELECT * FROM read_parquet(?){where}",
            [parquets, *params],
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


def _spilled(task: TaskResult) -> dict[str, list[str]]:
    spills: dict[str, list[str]] = {}
    for table, parquet in task.batches:
        spills.setdefault(table, []).append(parquet)
    return spills


def _room(tasks: list[TaskResult]) -> int:
    """DuckDB's memory limit for loading ``tasks`` in one transaction: LOADING_MEMORY
    plus twice their Arrow data (what the workers sent back and what they spilled).
    Inserting a batch needs memory for the batch: DuckDB allocates a column of a spilled
    50,000-row batch in one block, and under a fixed 32 MB limit such a batch failed
    ("could not allocate block")."""
    data = 0
    for task in tasks:
        data += task.nbytes
        for _, parquet in task.batches:
            with contextlib.suppress(OSError):
                data += os.path.getsize(parquet)
    return LOADING_MEMORY + 2 * data


def _remove_spills(tasks: list[TaskResult]) -> None:
    for task in tasks:
        for _, parquet in task.batches:
            with contextlib.suppress(OSError):
                os.unlink(parquet)


class Case:
    """Commits whole inputs (alone or in groups) and keeps the scan's accounting."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        on_done: OnDone | None = None,
        limits: readers.Limits | None = None,
    ) -> None:
        self.con = con
        self.on_done = on_done
        self.limits = limits
        self.scan = IngestStats(logged=True)
        self.scan_id = uuid.uuid4().hex
        self.hashes, self.paths = scanlog.loaded_inputs(con)
        self.loads = 0
        # inputs read but not committed yet: committed together (whole inputs only)
        self._tasks: list[TaskResult] = []
        self._exclude: set[str] = set()  # their rows must not be loaded
        self._logged: list[tuple[str, list[FileStats], scanlog.InputRow]] = []
        self._unlogged: list[tuple[str, list[FileStats]]] = []  # failed inputs
        self._group_inputs = 0
        self._group_rows = 0
        self._group_bytes = 0
        self._group_started = 0.0
        pause = os.environ.get(PAUSE_ENV, "")
        self.pause_at = int(pause) if pause.isdigit() else 0
        # an in-memory case compacts its new rows only on CHECKPOINT (a file database
        # checkpoints by itself as its WAL grows)
        ((path,),) = con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchall()
        self._in_memory = path is None
        self._unchecked_bytes = 0

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
    def _duplicate_entry(self, path: str, sha: str) -> FileStats:
        first = self.hashes[sha]
        stats = FileStats(path, format=DUPLICATE)
        same = "the same file" if first == path else f"{first}"
        stats.warn("file", f"already in the case (same content, sha256 {sha[:16]}..., as "
                   f"{same}): not read again")  # fmt: skip
        self.scan.duplicates += 1
        return stats

    def duplicate(self, path: str, sha: str, size: int | None) -> None:
        """Content already in the case: log it, read nothing."""
        stats = self._duplicate_entry(path, sha)
        self._begin()
        try:
            self._commit(path, [stats], scanlog.InputRow(path, sha, size, scanlog.DUPLICATE))
        except BaseException:
            self._rollback()
            raise

    def failed(self, path: str, exc: BaseException) -> None:
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

    # -- inputs read in this process ------------------------------------------------------
    def load_serial(self, path: str) -> None:
        sha, size = file_sha256(path)
        name = text_path(path)  # opened by ``path``, stored as ``name``
        if sha is not None and sha in self.hashes:
            self.duplicate(name, sha, size)
            return
        self._begin()
        try:
            load = _InputLoad(self.con, self._dedupe_path(name))
            try:
                entries = normalizing.normalize_path(path, load.add_arrow, limits=self.limits)
            except Exception as exc:  # a bug: this input is not loaded, the others are
                self._rollback()
                self.failed(name, exc)
                return
            added, already = load.finish()
            self._note_already(entries, name, already)
            self._commit(name, entries, scanlog.InputRow(name, sha, size, scanlog.LOADED,
                                                         added, already))  # fmt: skip
        except BaseException:
            self._rollback()
            raise

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
                entries = normalizing.normalize_path(path, load.add_arrow, limits=self.limits)
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

    # -- inputs read by worker processes --------------------------------------------------
    def _is_copy(self, file: FileResult) -> bool:
        """Is ``file``'s content already in the case or met earlier in this scan? If so,
        the first name it was seen under is remembered for the duplicate's message."""
        if file.sha256 is None or (file.duplicate_of is None and file.sha256 not in self.hashes):
            return False
        self.hashes.setdefault(file.sha256, file.duplicate_of or file.name)
        return True

    def add_task(self, task: TaskResult) -> None:
        """A worker's task joins the pending group (committed by ``flush_group``). A task
        holding a file already in the case at the same path (it may have grown: its rows
        are deduplicated by position) is loaded file by file instead."""
        if any(
            not f.failed and f.duplicate_of is None and self._dedupe_path(f.name) is not None
            for f in task.files
        ):
            self.flush_group()
            self._load_by_file(task)
            return
        if not self._tasks:
            self._group_started = time.monotonic()
        self._tasks.append(task)
        for file in task.files:
            self._group_inputs += 1
            if file.failed:
                self._exclude.add(file.name)
                self._unlogged.append((file.name, file.entries))
                continue
            sha = file.sha256
            if self._is_copy(file):
                if file.duplicate_of is None:  # read, but a copy of an earlier input
                    self._exclude.add(file.name)
                row = scanlog.InputRow(file.name, sha, file.size, scanlog.DUPLICATE)
                self._logged.append((file.name, [self._duplicate_entry(file.name, sha)], row))
                continue
            if sha is not None:
                self.hashes[sha] = file.name  # a later copy in this scan is a duplicate
            row = scanlog.InputRow(file.name, sha, file.size, scanlog.LOADED, file.rows, 0)
            self._logged.append((file.name, file.entries, row))
            self._group_rows += file.rows
        self._group_bytes += task.nbytes
        if (
            self._group_rows >= BATCH_ROWS
            or self._group_bytes >= GROUP_BYTES
            or self._group_inputs >= GROUP_INPUTS
            or time.monotonic() - self._group_started >= GROUP_SECONDS
        ):
            self.flush_group()

    def flush_group(self) -> None:
        """Commit the pending inputs in ONE transaction: one Arrow INSERT per model (the
        tasks' batches concatenated; spilled Parquet read in one ``read_parquet`` list),
        one Arrow INSERT per scan-log table. Whole inputs only, so an interrupted scan
        still leaves only complete inputs; the test hook pauses before the commit of the
        group that holds the N-th input."""
        tasks, logged, unlogged = self._tasks, self._logged, self._unlogged
        exclude = self._exclude
        self._tasks, self._logged, self._unlogged, self._exclude = [], [], [], set()
        self._group_inputs = self._group_rows = self._group_bytes = 0
        if not tasks:
            return
        load = _InputLoad(self.con, None)
        try:
            with store.memory_limit(self.con, _room(tasks)):
                self._write_group(load, tasks, logged, exclude)
        finally:
            _remove_spills(tasks)
        self._unchecked_bytes += sum(task.nbytes for task in tasks)
        if self._in_memory and self._unchecked_bytes >= CHECKPOINT_BYTES:
            self.con.execute("CHECKPOINT")
            self._unchecked_bytes = 0
        for path, entries, row in logged:
            if row.status == scanlog.LOADED:
                self.paths.add(path)
            self._finish(path, entries)
        for path, entries in unlogged:
            self._finish(path, entries)
        self.scan.rows_added += load.rows

    def _write_group(
        self,
        load: _InputLoad,
        tasks: list[TaskResult],
        logged: list[tuple[str, list[FileStats], scanlog.InputRow]],
        exclude: set[str],
    ) -> None:
        """The transaction of ``flush_group``: rows, scan log, commit (or roll back)."""
        self._begin()
        try:
            by_table: dict[str, list[pa.Table]] = {}
            spills: dict[str, list[str]] = {}
            for task in tasks:
                for table, batch in task.tables:
                    by_table.setdefault(table, []).append(batch)
                for table, files in _spilled(task).items():
                    spills.setdefault(table, []).extend(files)
            for table, batches in by_table.items():
                batch = batches[0] if len(batches) == 1 else pa.concat_tables(batches)
                load.add_arrow(table, batch, exclude=exclude)
            for table, files in spills.items():
                load.add_parquets(table, files, exclude=exclude)
            scanlog.write_group(self.con, [(path, entries) for path, entries, _ in logged],
                                [row for _, _, row in logged], scan_id=self.scan_id,
                                when=scanlog.now())  # fmt: skip
            before = self.loads
            self.loads += sum(1 for _, _, row in logged if row.status == scanlog.LOADED)
            if before < self.pause_at <= self.loads:
                self._pause()
            self.con.commit()
        except BaseException:
            self._rollback()
            raise

    def _load_by_file(self, task: TaskResult) -> None:
        """Each input of ``task`` in its own transaction, its rows picked by ``ev_file``."""
        try:
            spills = _spilled(task)
            with store.memory_limit(self.con, _room([task])):
                for file in task.files:
                    self._load_file(task, spills, file)
        finally:
            _remove_spills([task])

    def _load_file(self, task: TaskResult, spills: dict[str, list[str]], file: FileResult) -> None:
        if file.failed:
            self._finish(file.name, file.entries)
            return
        sha = file.sha256
        if self._is_copy(file):
            self.duplicate(file.name, sha, file.size)
            return
        self._begin()
        try:
            load = _InputLoad(self.con, self._dedupe_path(file.name))
            for table, parquets in spills.items():
                load.add_parquets(table, parquets, only=file.name)
            for table, batch in task.tables:
                load.add_arrow(table, batch, only=file.name)
            added, already = load.finish()
            self._note_already(file.entries, file.name, already)
            row = scanlog.InputRow(file.name, sha, file.size, scanlog.LOADED, added, already)
            self._commit(file.name, file.entries, row)
        except BaseException:
            self._rollback()
            raise


__all__ = ["GROUP_INPUTS", "GROUP_SECONDS", "PAUSE_ENV", "Case", "IngestStats", "OnDone"]
