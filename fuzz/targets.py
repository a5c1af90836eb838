"""Fuzz targets: run one input through the real reader + normalizer path, check invariants.

Every file target writes the input to a scratch file and reads it with
``wmihunt.ingest.normalize_path`` (what a scan runs per input), so sniffing, archives,
the format reader, the normalizers and the Arrow batching are all exercised. The
``normalize`` target feeds a decoded RawEvent straight to the normalizers, which is far
faster per execution. The targets differ in their seeds and mutators (``mutators``), not
in the code under test: any input may reach any reader.

Invariants (a violation raises ``InvariantError``; any other exception is a crash):

1. no exception escapes; no record is reported as an *internal* error (the ingest and
   reader safety nets catch bugs: for the fuzzer such a catch is a bug found);
2. every file entry balances: ``read == normalized + skipped + rejected``;
3. every error (rejected record or file problem) has a non-empty position and reason,
   and a file entry with rejected records lists at least one error;
4. the rows handed to the store equal the records counted as normalized, and each
   batch has its model's exact Arrow schema;
5. the accounting serializes to JSON (it is stored in the case database as such).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa

from wmihunt.accounting import FileStats
from wmihunt.events import RawEvent
from wmihunt.ingest import normalize_path
from wmihunt.models import MODELS
from wmihunt.normalize import NormalizeError, normalize
from wmihunt.readers import compression

from . import FILE_TARGETS, TARGETS

__all__ = ["FILE_TARGETS", "TARGETS", "InvariantError", "Outcome", "make", "run_file"]

#: Bomb limits while fuzzing: an expansion past 8 MiB is refused (the rule is the same,
#: the floor is lower), so that one execution never decompresses 100 MiB.
FUZZ_FLOOR_BYTES = 8 << 20

_INTERNAL = ("internal reader error", "internal error", "worker failed")


class InvariantError(AssertionError):
    """An input broke one of the invariants above (the message says which)."""


@dataclass
class Outcome:
    """What one execution saw (kept small: the runner aggregates it)."""

    entries: int = 0
    read: int = 0
    normalized: int = 0
    skipped: int = 0
    rejected: int = 0
    errors: int = 0
    reasons: list[str] = field(default_factory=list)


def use_fuzz_limits() -> None:
    """Lower the bomb guard's floor for this process (see ``FUZZ_FLOOR_BYTES``)."""
    compression.EXPANSION_FLOOR_BYTES = FUZZ_FLOOR_BYTES


def check_entries(entries: list[FileStats], rows: int) -> Outcome:
    """Invariants 1-3 and 5 on a finished input; ``rows`` is what reached the store."""
    out = Outcome(entries=len(entries))
    if not entries:
        raise InvariantError("no file entry: the input is not accounted for at all")
    for stats in entries:
        if not stats.balanced:
            raise InvariantError(f"unbalanced accounting: {stats.to_dict()}")
        for problem in (*stats.errors, *stats.warnings):
            position, reason = problem.get("position"), problem.get("reason")
            if position in (None, "") or not isinstance(reason, str) or not reason.strip():
                raise InvariantError(f"error without position or reason: {problem!r}")
            if any(word in reason for word in _INTERNAL):
                raise InvariantError(f"internal error caught by a safety net: {reason}")
        if stats.rejected and not (stats.errors or stats.errors_dropped):
            raise InvariantError(f"{stats.rejected} records rejected without a reason")
        try:
            orjson.dumps(stats.to_dict())
        except TypeError as exc:
            raise InvariantError(f"accounting does not serialize: {exc}") from exc
        out.read += stats.read
        out.normalized += stats.normalized
        out.skipped += stats.skipped
        out.rejected += stats.rejected
        out.errors += len(stats.errors)
        out.reasons.extend(str(e["reason"])[:60] for e in stats.errors[:3])
    if out.normalized != rows:
        raise InvariantError(f"{rows} rows stored but {out.normalized} records normalized")
    return out


def run_file(path: str | Path) -> Outcome:
    """Read one input file as a scan does, checking every invariant."""
    rows = 0

    def emit(table: str, batch: pa.Table) -> None:
        nonlocal rows
        if batch.schema != MODELS[table].arrow_schema:
            raise InvariantError(f"batch for {table} has schema {batch.schema}")
        rows += batch.num_rows

    entries = normalize_path(str(path), emit)
    return check_entries(entries, rows)


class FileTarget:
    """Writes each input to one reused scratch file (on tmpfs when there is one)."""

    def __init__(self, folder: str | None = None) -> None:
        base = folder or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
        self._dir = tempfile.TemporaryDirectory(prefix="wmihunt-fuzz-", dir=base)
        self.path = os.path.join(self._dir.name, "input")

    def __call__(self, data: bytes) -> Outcome:
        with open(self.path, "wb") as f:
            f.write(data)
        return run_file(self.path)

    def close(self) -> None:
        self._dir.cleanup()


#: RawEvent attributes typed ``str | None`` by the contract (events.py): the readers
#: guarantee them, so the normalize target keeps them to that type; ``data`` and
#: ``time`` are the source's own values and take anything.
_TEXT_FIELDS = ("provider", "computer", "user_sid", "message", "userdata_element")


def event_from_json(data: bytes) -> RawEvent | None:
    """A RawEvent from a ``normalize`` seed; None when the input is not one (ignored)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    channel, event_id = obj.get("channel"), obj.get("event_id")
    if not isinstance(channel, str) or not isinstance(event_id, int | str):
        return None
    extra, record_id = obj.get("extra"), obj.get("record_id")
    event = RawEvent(
        channel=channel,
        event_id=event_id,
        data=obj.get("data"),  # type: ignore[arg-type]  # anything: normalizers must cope
        time=obj.get("time"),
        record_id=record_id if type(record_id) is int else None,
        extra=extra if isinstance(extra, dict) else {},
        file="fuzz",
        member=None,
        line=1,
    )
    for name in _TEXT_FIELDS:
        value = obj.get(name)
        setattr(event, name, value if isinstance(value, str) else None)
    return event


def run_normalize(data: bytes) -> Outcome:
    """Normalize one decoded RawEvent: NormalizeError or a row of the model's types."""
    event = event_from_json(data)
    out = Outcome()
    if event is None:
        return out
    try:
        result = normalize(event)
    except NormalizeError as exc:
        if not str(exc).strip():
            raise InvariantError("NormalizeError without a reason") from exc
        out.rejected = 1
        return out
    if result is None:
        out.skipped = 1
        return out
    table, row = result
    try:
        pa.Table.from_pylist([row], schema=MODELS[table].arrow_schema)
    except (pa.ArrowException, TypeError, ValueError, UnicodeError) as exc:
        raise InvariantError(f"row does not fit {table}: {type(exc).__name__}: {exc}") from exc
    out.normalized = 1
    return out


def make(target: str) -> Callable[[bytes], Outcome]:
    """The callable that runs one input of ``target``."""
    if target == "normalize":
        return run_normalize
    if target in FILE_TARGETS:
        return FileTarget()
    raise ValueError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")
