"""Damaged EVTX: bit flips, truncation inside a chunk header, wrong checksums, zeroed
records, looping tables. Built from the project's samples by fuzz/evtxgen.py, so these
tests need no outside file."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from pathlib import Path

import evtx
import pytest
from test_readers_helpers import collect, one
from test_robustness_helpers import ROOT, SAMPLES, invariants, sample_evtx

from fuzz.evtxgen import CHUNK, FILE_HEADER, fix_chunk_checksums, record_offsets
from wmihunt.ingest import normalize_path

#: ws01_security (48 events) as EVTX: chunk 0 holds records 1..20, chunk 1 21..39,
#: chunk 2 40..48 (asserted below).
DATA = sample_evtx("ws01_security")
CHUNK_RECORDS = [(1, 20), (21, 39), (40, 48)]


def _write(tmp_path: Path, data: bytes | bytearray, name: str = "x.evtx") -> Path:
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def _chunk(data: bytearray, index: int) -> bytearray:
    return data[FILE_HEADER + index * CHUNK : FILE_HEADER + (index + 1) * CHUNK]


def _put_chunk(data: bytearray, index: int, chunk: bytearray) -> None:
    data[FILE_HEADER + index * CHUNK : FILE_HEADER + (index + 1) * CHUNK] = chunk


def test_the_writer_makes_what_the_xml_says(tmp_path: Path) -> None:
    """fuzz/evtxgen.py: each sample XML log and its EVTX give the same model rows."""
    drop = ("uid", "ev_file", "ev_line", "ev_record_id")
    for xml in sorted(SAMPLES.glob("*.xml")):
        rows: dict[str, list] = {}
        for name, path in (("xml", xml), ("evtx", _write(tmp_path, sample_evtx(xml.stem)))):
            out: list = []
            normalize_path(str(path), lambda _t, b, out=out: out.extend(b.to_pylist()))
            rows[name] = [{k: v for k, v in r.items() if k not in drop} for r in out]
        assert rows["evtx"] == rows["xml"] and rows["xml"], xml.name
    ids = [r["event_record_id"] for r in evtx.PyEvtxParser(str(_write(tmp_path, DATA)))
           .records_json()]  # fmt: skip
    assert ids == list(range(1, 49))
    assert [record_offsets(DATA, FILE_HEADER + i * CHUNK) and i for i in range(3)] == [0, 1, 2]
    for i, (first, last) in enumerate(CHUNK_RECORDS):
        assert struct.unpack_from("<QQ", DATA, FILE_HEADER + i * CHUNK + 24) == (first, last)


def test_truncated_at_every_offset_of_a_chunk_header(tmp_path: Path) -> None:
    """The file ends 0..511 bytes into chunk 1's 512-byte header: chunk 0 is read, the
    rest is reported lost (its count is unknown: no complete header of it is left)."""
    path = tmp_path / "cut.evtx"
    for cut in range(512):
        size = FILE_HEADER + CHUNK + cut
        path.write_bytes(DATA[:size])
        events, entries = collect(path)
        stats = one(entries)
        assert (cut, len(events), stats.read, stats.rejected) == (cut, 20, 20, 0)
        assert stats.errors == [{
            "position": f"byte {size:,}",
            "reason": f"file is truncated: its header declares 3 chunks (200,704 bytes) but it "
                      f"has {size:,} bytes; the records of the missing part are lost",
        }], cut  # fmt: skip


@pytest.mark.parametrize("cut", [512, 600, 4096, CHUNK - 1])
def test_truncated_after_a_whole_chunk_header_counts_its_records(tmp_path: Path, cut: int) -> None:
    size = FILE_HEADER + CHUNK + cut
    _, entries = collect(_write(tmp_path, DATA[:size]))
    stats = one(entries)
    assert (stats.read, stats.normalized, stats.rejected) == (39, 20, 19)
    assert stats.errors[0]["reason"].startswith("file is truncated: its header declares 3")
    assert stats.errors[1] == {
        "position": "chunk 1",
        "reason": "19 records lost: the chunk header declares records 21..39, 0 were read and "
                  "0 already counted lost (the parser skipped them or stopped early: "
                  "damaged records?)",
    }  # fmt: skip


def test_wrong_file_header_checksum(tmp_path: Path) -> None:
    data = bytearray(DATA)
    data[124] ^= 0xFF
    events, entries = collect(_write(tmp_path, data))
    stats = one(entries)
    assert (len(events), stats.errors) == (48, [])
    assert stats.warnings == [
        {
            "position": "file header",
            "reason": "EVTX file header checksum mismatch (header damaged?)",
        }
    ]


def test_wrong_chunk_header_checksum(tmp_path: Path) -> None:
    data = bytearray(DATA)
    data[FILE_HEADER + CHUNK + 124] ^= 0xFF  # chunk 1
    events, entries = collect(_write(tmp_path, data))
    stats = one(entries)
    assert (len(events), stats.errors) == (48, [])
    assert stats.warnings == [{
        "position": f"chunk 1 (byte {FILE_HEADER + CHUNK:,})",
        "reason": "EVTX chunk header checksum mismatch (header damaged?): its record count "
                  "cannot be checked",
    }]  # fmt: skip


def test_wrong_records_checksum(tmp_path: Path) -> None:
    """A record altered after the fact (header checksum still right) is read as it is:
    the records' checksum is not checked (it cost 8% of the read time; docs/robustness.md)."""
    data = bytearray(DATA)
    pos, _ = record_offsets(DATA, FILE_HEADER)[2]
    where = data.find("WS01".encode("utf-16-le"), pos)
    data[where : where + 8] = "WS99".encode("utf-16-le")
    events, entries = collect(_write(tmp_path, data))
    stats = one(entries)
    assert (len(events), stats.errors, stats.warnings) == (48, [], [])
    assert any(e.computer.startswith("WS99") for e in events)


def test_zeroed_record_loses_the_rest_of_its_chunk_and_says_how_many(tmp_path: Path) -> None:
    """Regression (found while fuzzing): the parser stops at a zeroed record without a word;
    the 17 records after it in chunk 0 were silently missing from the accounting."""
    data = bytearray(DATA)
    pos, size = record_offsets(DATA, FILE_HEADER)[3]  # record 4
    data[pos : pos + size] = bytes(size)
    events, entries = collect(_write(tmp_path, data))
    stats = one(entries)
    every = [e.record_id for e in collect(SAMPLES / "ws01_security.xml")[0]]
    assert [e.record_id for e in events] == every[:3] + every[20:]  # records 4..20 lost
    assert (len(events), stats.read, stats.rejected) == (31, 48, 17)
    assert stats.errors == [{
        "position": "chunk 0",
        "reason": "17 records lost: the chunk header declares records 1..20, 3 were read and 0 "
                  "already counted lost (the parser skipped them or stopped early: damaged "
                  "records?)",
    }]  # fmt: skip
    assert stats.warnings == []


def test_zeroed_record_data_rejects_that_record_only(tmp_path: Path) -> None:
    data = bytearray(DATA)
    pos, size = record_offsets(DATA, FILE_HEADER)[3]
    data[pos + 24 : pos + size - 4] = bytes(size - 28)  # header kept, Binary XML zeroed
    events, entries = collect(_write(tmp_path, data))
    stats = one(entries)
    assert (len(events), stats.read, stats.rejected) == (47, 48, 1)
    assert stats.errors == [
        {"position": "record 4", "reason": 'undecodable record: no "Event" object'}
    ]


def test_broken_record_size_counts_the_rest_of_the_chunk(tmp_path: Path) -> None:
    data = bytearray(DATA)
    pos, _ = record_offsets(DATA, FILE_HEADER)[5]  # record 6
    struct.pack_into("<I", data, pos + 4, 8)
    fixed = _chunk(data, 0)
    fix_chunk_checksums(fixed)  # a consistent chunk: only the size field is wrong
    _put_chunk(data, 0, fixed)
    events, entries = collect(_write(tmp_path, data))
    stats = one(entries)
    assert (len(events), stats.read, stats.rejected) == (33, 48, 15)
    assert stats.errors[0]["reason"] == (
        "records lost (count unknown): RuntimeError: Invalid EVTX record data size, should be "
        "equals or greater than 28, found `8`"
    )
    assert stats.errors[1]["reason"].startswith("15 records lost: the chunk header declares "
                                                "records 1..20, 5 were read")  # fmt: skip
    assert stats.warnings == []


_HANG_CHECK = """
import sys, evtx
n = sum(1 for _ in evtx.PyEvtxParser(sys.argv[1], number_of_threads=1,
                                     skip_errors=True).records_json())
print(n)
"""


def test_looping_string_table_does_not_hang(tmp_path: Path) -> None:
    """Regression (found by fuzzing): two string-table links pointing at each other make
    the ``evtx`` parser loop forever. The reader parses a copy without that table (names
    are then read where the records point) and loses nothing."""
    data = bytearray(DATA)
    chunk = _chunk(data, 2)  # the last chunk has free space
    (free,) = struct.unpack_from("<I", chunk, 48)
    a, b = free + 16, free + 32  # unused space after the last record
    struct.pack_into("<I", chunk, 128, a)  # string table head -> a -> b -> a ...
    struct.pack_into("<I", chunk, a, b)
    struct.pack_into("<I", chunk, b, a)
    fix_chunk_checksums(chunk)
    _put_chunk(data, 2, chunk)
    path = _write(tmp_path, data)
    # the bare parser really hangs on it (bounded here by a timeout)
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", _HANG_CHECK, str(path)], timeout=3,
                       capture_output=True)  # fmt: skip
    events, entries = collect(path)
    stats = one(entries)
    assert (len(events), stats.read, stats.errors) == (48, 48, [])
    assert stats.warnings == [{
        "position": f"chunk 2 (byte {FILE_HEADER + 2 * CHUNK:,})",
        "reason": "the chunk's string or template table links in a loop (damaged or crafted; "
                  "the parser would never finish): the table is ignored, names and templates "
                  "are read where the records point",
    }]  # fmt: skip


def test_bit_flips_keep_every_invariant(tmp_path: Path) -> None:
    """300 random flips (1-8 bits), half with checksums made consistent again: reading
    never raises, every entry balances, every error has a position and a reason."""
    rng = random.Random(1234)
    path = tmp_path / "flip.evtx"
    small = sample_evtx("dc01_security")  # one chunk, 11 records
    total = 0
    for _ in range(300):
        data = bytearray(small)
        for _ in range(rng.choice((1, 2, 8))):
            at = rng.randrange(FILE_HEADER, len(data) // 4 + FILE_HEADER)
            data[at] ^= 1 << rng.randrange(8)
        if rng.random() < 0.5:
            chunk = _chunk(data, 0)
            fix_chunk_checksums(chunk)
            _put_chunk(data, 0, chunk)
        path.write_bytes(bytes(data))
        outcome = invariants(path)
        total += outcome.read
        assert outcome.read >= 11 or outcome.errors  # a lost record is always said
    assert total > 300 * 8


def test_helper_paths_exist() -> None:
    assert (ROOT / "fuzz" / "evtxgen.py").is_file()


def test_record_id_beyond_int64(tmp_path: Path) -> None:
    """Regression (fuzzing): record ids are unsigned 64-bit; one above 2^63 broke the
    chunk ledger (OverflowError) and lost the rest of the file."""
    data = bytearray(sample_evtx("dc01_security"))
    pos, _ = record_offsets(bytes(data), FILE_HEADER)[4]  # record 5 of 11
    struct.pack_into("<Q", data, pos + 8, 2**64 - 1)
    chunk = _chunk(data, 0)
    fix_chunk_checksums(chunk)
    _put_chunk(data, 0, chunk)
    events, entries = collect(_write(tmp_path, data))
    stats = one(entries)
    # record 5 now has an id outside its chunk's range: it is still that chunk's record
    # (read between two others of it), counted once, not also as lost
    assert (len(events), stats.read, stats.errors) == (11, 11, [])


def test_ids_outside_every_range_do_not_hide_lost_records(tmp_path: Path) -> None:
    """Chunk 0 loses records 4..20 (zeroed record 4); chunk 1's header is damaged, its
    records keep their ids: they are not attributed to chunk 0, whose loss is counted."""
    data = bytearray(DATA)
    pos, size = record_offsets(DATA, FILE_HEADER)[3]
    data[pos : pos + size] = bytes(size)
    struct.pack_into("<QQ", data, FILE_HEADER + CHUNK + 24, 10**12, 10**12 + 5)  # no CRC fix
    events, entries = collect(_write(tmp_path, data))
    stats = one(entries)
    assert (len(events), stats.rejected) == (31, 17)
    assert stats.errors[0]["reason"].startswith("17 records lost: the chunk header declares "
                                                "records 1..20, 3 were read")  # fmt: skip
