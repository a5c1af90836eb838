"""EVTX files through ``evtx`` (pyevtx-rs): filter before decoding, report corruption.

Per record, ``records_json()`` gives a JSON string. Channel and EventID are taken from it
with ``str.find`` (the System block comes first), ``want`` decides (its answer is cached
per channel/EventID pair), and only relevant records are decoded with orjson; skipped
records are added to the accounting in bulk. The parser runs with ``skip_errors=True``:
a corrupt chunk is a ``RuntimeWarning`` (collected per batch of records, so the cost is
paid once per batch) that becomes a file error with its position, and reading goes on.
When the message names the chunk's record IDs, those records are counted as rejected.

Truncation is checked from the file header, because the parser silently ignores a
partial last chunk: a file shorter than its header's chunk count says is an error.

Every record is accounted for against the chunk headers (``_Ledger``): a chunk whose
header checksum is right declares its first and last record ids, and the parser may
stop inside a chunk without a word (a zeroed record, a wrong free-space offset) or say
"records lost" without a count. Records a trusted header declares that were neither
read nor counted lost by a parser message are counted as rejected, with the chunk.
A chunk whose header checksum is wrong gets a warning. The records' own checksum is not
checked (reading every chunk again cost about 8% of the read time on the corpus).

``evtx`` never returns from a chunk whose string table links form a loop (a crafted or
damaged file). Such loops are found from the chunk tables (about 4% of the read time),
and the file is then parsed from a copy with those tables zeroed: the parser reads each
name and template where a record points, so nothing is lost (checked on the corpus).
EVTX needs seeking: archive members and stdin are spooled to a temporary file first.
"""

from __future__ import annotations

import bisect
import itertools
import mmap
import os
import re
import shutil
import struct
import tempfile
import warnings
import zlib
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import evtx as pyevtx
import orjson

from ..accounting import FileStats
from ..events import RawEvent, Relevance
from .source import Source
from .winevent import from_event_json

_HEADER_BLOCK = 4096
_CHUNK = 65536
#: Records pulled from the parser per warnings-capturing batch.
BATCH = 256

_RECORD_IDS = re.compile(r"record IDs (\d+)\.\.(\d+)")
_CHUNK_NO = re.compile(r"chunk number (\d+)")


def read_evtx(src: Source, want: Relevance) -> Iterator[RawEvent]:
    """Yield the relevant records of one EVTX source; account for every other one."""
    src.stats.format = "evtx"
    with _seekable(src) as (path, size):
        if path is None:
            return
        if not _check_layout(src, path, size):
            return
        ledger = _Ledger.of(src, path, size)
        with _without_loops(src, path, ledger.looping) as safe_path:
            if safe_path is None:
                return
            try:
                parser = pyevtx.PyEvtxParser(
                    safe_path, number_of_threads=1, indent=False, skip_errors=True
                )
                records = parser.records_json()
            except Exception as exc:
                src.stats.error("file header", f"not a readable EVTX file: {_short(exc)}")
                return
            yield from _records(src, records, want, ledger)
        ledger.settle(src.stats)


def _records(
    src: Source, records: Iterator[dict[str, Any]], want: Relevance, ledger: _Ledger
) -> Iterator[RawEvent]:
    """The per-record loop: kept flat because it runs once per record of every EVTX."""
    stats = src.stats
    seen = ledger.seen
    last_id: int | None = None
    # (channel, EventID text) -> True/False from want(), or None: "decode to find out".
    decided: dict[tuple[str, str], bool | None] = {}
    skipped: dict[tuple[str, str], int] = {}  # added to stats in bulk
    while True:
        batch, problems, failure = _pull(records)
        seen.extend(
            i for r in batch if type(i := r.get("event_record_id")) is int and 0 <= i < _U64
        )
        for record in batch:
            text = record.get("data")
            key = _key(text) if type(text) is str else None
            if key is not None:
                relevant = decided.get(key, _UNSEEN)
                if relevant is _UNSEEN:
                    relevant = decided[key] = _decide(key, want)
                if relevant is False:
                    skipped[key] = skipped.get(key, 0) + 1
                    continue
            event = _decode(src, record, want)
            if event is not None:
                _flush(stats, skipped)
                yield event
        _flush(stats, skipped)
        for index, message in problems:
            before = batch[index - 1].get("event_record_id") if index else last_id
            _file_problem(src, message, before, ledger)
        if batch:
            last_id = batch[-1].get("event_record_id", last_id)
        if failure is not None:
            stats.error(_after(last_id), f"parsing stopped: {failure}")
            return
        if len(batch) < BATCH:
            return


_UNSEEN: Any = object()
_U64 = 1 << 64


def _key(text: str) -> tuple[str, str] | None:
    """(Channel, EventID digits) sliced from a record's JSON text without decoding it.

    The System block comes first and its values before Channel are numbers, attributes
    and plain strings, so the first ``"EventID":`` and the next ``"Channel":"`` are
    System's (a quote inside a JSON string is always escaped). The slices are checked
    once per distinct key, in ``_decide``.
    """
    i = text.find('"EventID":') + 10
    if i < 10:
        return None
    if text[i : i + 1] == "{":  # {"#attributes":{"Qualifiers":16384},"#text":7036}
        i = text.find('"#text":', i) + 8
        j = text.find("}", i)
    else:
        j = text.find(",", i)
    k = text.find('"Channel":"', j) + 11
    if k < 11 or i < 8:
        return None
    return text[k : text.find('"', k)], text[i:j]


def _decide(key: tuple[str, str], want: Relevance) -> bool | None:
    channel, digits = key
    if not digits.isdigit() or len(digits) > 10 or "\\" in channel:
        return None
    return bool(want(channel, int(digits)))


def _flush(stats: FileStats, skipped: dict[tuple[str, str], int]) -> None:
    """Account skipped records in bulk (same result as one ``stats.skip`` per record)."""
    if skipped:
        for (channel, digits), n in skipped.items():
            stats.read += n
            stats.skipped += n
            stats.skipped_by_event[f"{channel}:{int(digits)}"] += n
        skipped.clear()


def _pull(
    records: Iterator[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[tuple[int, str]], str | None]:
    """Up to BATCH records, the parser's warnings (with the index they came before), and
    the message of an exception that ended iteration."""
    batch: list[dict[str, Any]] = []
    problems: list[tuple[int, str]] = []

    def show(message: Warning | str, *_args: object, **_kw: object) -> None:
        problems.append((len(batch), str(message)))

    failure = None
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show  # type: ignore[assignment]
        try:
            batch.extend(itertools.islice(records, BATCH))
        except Exception as exc:
            failure = _short(exc)
    return batch, problems, failure


def _decode(src: Source, record: dict[str, Any], want: Relevance) -> RawEvent | None:
    """Decode one record fully; count it if it cannot be decoded or is not wanted."""
    stats = src.stats
    text = record.get("data")
    record_id = record.get("event_record_id")
    if not isinstance(text, str):
        stats.reject(f"record {record_id}", "parser returned no data for this record")
        return None
    try:
        event = from_event_json(orjson.loads(text), file=src.file, member=src.member, line=None)
    except (orjson.JSONDecodeError, ValueError) as exc:
        stats.reject(f"record {record_id}", f"undecodable record: {exc}")
        return None
    if event.record_id is None and isinstance(record_id, int):
        event.record_id = record_id
    if not want(event.channel, event.event_id):
        stats.skip(event.channel, event.event_id)
        return None
    return event


def _file_problem(src: Source, message: str, last_id: int | None, ledger: _Ledger) -> None:
    """A parser warning: a chunk or record skipped. Count the records when it says which."""
    message = message.removeprefix("Skipping EVTX data: ")
    ids = _RECORD_IDS.search(message)
    chunk = _CHUNK_NO.search(message)
    where = _after(last_id)
    if chunk:
        where += f" (chunk {chunk.group(1)})"
    if ids:
        first, last = int(ids.group(1)), int(ids.group(2))
        lost = last - first + 1
        if 0 < lost <= 1_000_000:
            src.stats.read += lost
            src.stats.rejected += lost
            src.stats.error(where, f"{lost} records lost: {message}")
            ledger.lost.append((first, last))
            return
    src.stats.error(where, f"records lost (count unknown): {message}")


#: Most records a 64 KiB chunk can hold (a record is at least 28 bytes): a header that
#: declares more is not believed.
_MAX_CHUNK_RECORDS = (_CHUNK - 512) // 28


class _Ledger:
    """Record ids each chunk header declares, against those the parser gave.

    Records are attributed to a chunk by id (chunk ids are consecutive ranges); see
    ``_read_per_chunk`` for ids that fit no range. Only chunks whose header checksum is
    right ("trusted") have their missing records counted.
    """

    def __init__(self, chunks: list[tuple[int, int, int, bool]]) -> None:
        #: (first id, last id, chunk index, trusted) of each chunk with a plausible range
        self.chunks = sorted(chunks)
        self.seen: array[int] = array("Q")  # record ids are unsigned 64-bit
        self.lost: list[tuple[int, int]] = []  # id ranges a parser message counted
        #: byte offsets of chunks whose string/template tables link in a loop
        self.looping: list[int] = []

    @classmethod
    def of(cls, src: Source, path: str, size: int) -> _Ledger:
        """Read every chunk header present in the file; warn about wrong checksums."""
        chunks: list[tuple[int, int, int, bool]] = []
        looping: list[int] = []
        if size < _HEADER_BLOCK + 512:
            return cls(chunks)
        try:
            # mapped: headers and table links are read where they are, records are not
            with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                for index in itertools.count():
                    at = _HEADER_BLOCK + index * _CHUNK
                    if at + 512 > len(mm):
                        break
                    header = mm[at : at + 512]
                    declared = _chunk_range(src, header, index, at)
                    if declared is not None:
                        chunks.append((declared[0], declared[1], index, declared[2]))
                    chunk = memoryview(mm)[at : at + _CHUNK]
                    try:
                        loops = header[:8] == b"ElfChnk\x00" and _tables_loop(chunk)
                    finally:
                        chunk.release()
                    if loops:
                        looping.append(at)
                        src.stats.warn(
                            f"chunk {index} (byte {at:,})",
                            "the chunk's string or template table links in a loop (damaged or "
                            "crafted; the parser would never finish): the table is ignored, "
                            "names and templates are read where the records point",
                        )
        except (OSError, ValueError):
            pass
        ledger = cls(chunks)
        ledger.looping = looping
        return ledger

    def _read_per_chunk(self) -> list[int]:
        """Records read per chunk (positions in ``self.chunks``), in one pass in read order.

        A run of records whose ids fit no range, read between two records of one chunk,
        belongs to that chunk. A run at a boundary between chunks is left out: giving it to
        a neighbour could hide that neighbour's lost records (a damaged header makes a whole
        chunk's records fit no range), so a crafted id there is over-reported as lost.
        """
        chunks = self.chunks
        starts = [c[0] for c in chunks]
        got = [0] * len(chunks)
        current, pending = -1, 0  # chunk of the last attributed record; unattributed since
        lo, hi = 1, 0  # the current chunk's range (fast path: ids run consecutively)
        for rid in self.seen:
            if not lo <= rid <= hi:
                k = bisect.bisect_right(starts, rid) - 1
                if k < 0 or rid > chunks[k][1]:
                    pending += 1
                    continue
                if k != current:
                    pending = 0
                current, lo, hi = k, chunks[k][0], chunks[k][1]
            got[current] += 1 + pending
            pending = 0
        return got

    def settle(self, stats: FileStats) -> None:
        """Count as rejected the declared records neither read nor already counted."""
        if not any(trusted for *_, trusted in self.chunks):
            return
        got = self._read_per_chunk()
        lost = sorted(self.lost)
        for (first, last, index, trusted), read in zip(self.chunks, got, strict=True):
            if not trusted:
                continue
            declared = last - first + 1
            counted = sum(max(0, min(b, last) - max(a, first) + 1) for a, b in lost)
            missing = declared - min(declared, read + counted)
            if missing > 0:
                stats.read += missing
                stats.rejected += missing
                noun = "record" if missing == 1 else "records"
                stats.error(
                    f"chunk {index}",
                    f"{missing} {noun} lost: the chunk header declares records "
                    f"{first}..{last}, {read} were read and {counted} already counted lost "
                    "(the parser skipped them or stopped early: damaged records?)",
                )


def _tables_loop(chunk: bytes | memoryview) -> bool:
    """Does a chain of the string table (64 heads at 128) or template table (32 heads at
    384) come back to an earlier link? ``evtx`` follows the string chains without a
    bound (a link to itself ends a chain, a longer loop never does)."""
    end = len(chunk) - 4
    unpack = struct.unpack_from
    for head in unpack("<96I", chunk, 128):
        if not 0 < head <= end:
            continue
        (offset,) = unpack("<I", chunk, head)
        if offset == 0 or offset == head:  # the usual chain: one link
            continue
        visited = {head}
        while 0 < offset <= end:
            if offset in visited:
                return True
            visited.add(offset)
            (following,) = unpack("<I", chunk, offset)
            if following == offset:
                break
            offset = following
    return False


@contextmanager
def _without_loops(src: Source, path: str, looping: list[int]) -> Iterator[str | None]:
    """``path``, or a temporary copy whose looping chunk tables are zeroed (the parser
    then reads every name and template at the offset a record gives: nothing is lost)."""
    if not looping:
        yield path
        return
    with tempfile.NamedTemporaryFile(prefix="wmihunt-", suffix=".evtx") as copy:
        try:
            with open(path, "rb") as original:
                shutil.copyfileobj(original, copy, 1 << 20)
            for at in looping:
                copy.seek(at + 128)
                copy.write(b"\x00" * 384)
            copy.flush()
        except OSError as exc:
            src.stats.error("file", f"cannot make a safe copy to parse: {exc}")
            yield None
            return
        yield copy.name


def _chunk_range(src: Source, data: bytes, index: int, at: int) -> tuple[int, int, bool] | None:
    """(first, last, header checksum right) record ids a chunk header declares, or None
    when it is no chunk or its range is implausible."""
    if len(data) < 512 or data[:8] != b"ElfChnk\x00":
        return None  # unused space, or a header damaged beyond recognition
    (stored,) = struct.unpack_from("<I", data, 124)
    trusted = zlib.crc32(data[128:512], zlib.crc32(data[:120])) == stored
    if not trusted:
        src.stats.warn(f"chunk {index} (byte {at:,})", "EVTX chunk header checksum mismatch "
                       "(header damaged?): its record count cannot be checked")  # fmt: skip
    first, last = struct.unpack_from("<QQ", data, 24)
    if not 0 <= last - first < _MAX_CHUNK_RECORDS:
        return None
    return first, last, trusted


def _after(last_id: int | None) -> str:
    return "start of file" if last_id is None else f"record after {last_id}"


def _check_layout(src: Source, path: str, size: int) -> bool:
    """File errors for a damaged header or a truncated file (the parser itself silently
    ignores a partial last chunk, and yields nothing from a file with a garbage header).
    False when the file cannot be opened at all (the error is filed)."""
    try:
        with open(path, "rb") as f:
            header = f.read(_HEADER_BLOCK)
    except OSError as exc:
        src.stats.error("file", f"cannot read: {exc.strerror or exc}")
        return False
    if len(header) < _HEADER_BLOCK:
        return True  # the parser reports it
    header_size, _minor, major, block_size, chunks = struct.unpack_from("<IHHHH", header, 32)
    if (header_size, major, block_size) != (128, 3, _HEADER_BLOCK):
        src.stats.error(
            "file header",
            f"invalid EVTX file header (header size {header_size}, version {major}, "
            f"block size {block_size}): the file is damaged or not an EVTX file",
        )
        return True
    (checksum,) = struct.unpack_from("<I", header, 124)
    if zlib.crc32(header[:120]) != checksum:
        src.stats.warn("file header", "EVTX file header checksum mismatch (header damaged?)")
    expected = _HEADER_BLOCK + chunks * _CHUNK
    if size < expected:
        src.stats.error(
            f"byte {size:,}",
            f"file is truncated: its header declares {chunks} chunks ({expected:,} bytes) "
            f"but it has {size:,} bytes; the records of the missing part are lost",
        )
    elif (size - _HEADER_BLOCK) % _CHUNK:
        partial = (size - _HEADER_BLOCK) % _CHUNK
        src.stats.error(
            f"byte {size - partial:,}",
            f"file ends inside a chunk ({partial:,} bytes of a 65,536-byte chunk): "
            "the records of that partial chunk are lost",
        )
    return True


@contextmanager
def _seekable(src: Source) -> Iterator[tuple[str | None, int]]:
    """A path the parser can seek in: the file itself, or a spooled temporary copy."""
    if src.disk_path is not None:
        try:
            size = os.path.getsize(src.disk_path)
        except OSError as exc:
            src.stats.error("file", f"cannot read: {exc}")
            yield None, 0
            return
        yield src.disk_path, size
        return
    if src.stream is None:
        yield None, 0
        return
    with tempfile.NamedTemporaryFile(prefix="wmihunt-", suffix=".evtx") as spool:
        try:
            shutil.copyfileobj(src.stream, spool, 1 << 20)
            spool.flush()
            ok = True
        except OSError as exc:
            src.stats.error("file", f"cannot spool to a temporary file: {exc}")
            ok = False
        yield (spool.name, spool.tell()) if ok else (None, 0)


def _short(exc: BaseException) -> str:
    text = str(exc).replace("An error occurred while trying to deserialize evtx stream.: ", "")
    return f"{type(exc).__name__}: {text}"[:500]
