"""Hostile archives: decompression bombs, hostile member names, cut gzip trailers."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from test_readers_helpers import collect, nxlog_line, one, xml_event
from test_robustness_helpers import (
    _bomb_stream,
    _repeated,
    crc32_combine,
    invariants,
    write_deflate_bomb_zip,
)

from wmihunt.readers import Limits, compression

MIB = 1 << 20
GIB = 1 << 30
PREFIX = b'{"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "x": "'


def _refusal(limits: Limits, compressed: int, limit: int) -> str:
    return (
        f"refused as a possible decompression bomb: expanded size passed {limit:,} bytes "
        f"from {compressed:,} compressed bytes (limit: min({limits.cap:,}, "
        f"max({limits.ratio:g} x compressed, {limits.floor:,}))); the rest is not read"
    )


def _read_bounded(path: Path, limits: Limits | None = None) -> tuple[list, list, int, float]:
    """collect() with the peak of Python memory and the time it took."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        events, entries = collect(path, limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return events, entries, peak, time.perf_counter() - start


def test_zip_bomb_refused_at_the_default_limit(tmp_path: Path) -> None:
    """4 GiB of zeros behind a JSON line start, in a 4 MiB zip: read (streaming) until
    the default limit, then refused with the rule and the numbers in the message."""
    bomb = tmp_path / "bomb.zip"
    compressed, expanded = write_deflate_bomb_zip(bomb, "logs/big.json", PREFIX, 4 * 1024)
    assert expanded > 4 * GIB and bomb.stat().st_size < 5 * MIB  # small on disk, never GiBs
    limits = Limits.default()
    allowed = limits.allowed(compressed)  # 200 x compressed: about 850 MB
    assert allowed == int(200 * compressed) < expanded
    events, entries, peak, _ = _read_bounded(bomb)
    stats = one(entries)
    assert (stats.path, stats.format, events) == (f"{bomb}!logs/big.json", "jsonl", [])
    # the one (endless) line is rejected as too long, then the member is cut off
    assert (stats.read, stats.rejected) == (1, 1)
    assert stats.errors == [
        {"position": "line 1", "reason": "line longer than 67,108,864 bytes: not read"},
        {"position": f"byte {allowed:,} of member logs/big.json",
         "reason": _refusal(limits, compressed, allowed)},
    ]  # fmt: skip
    assert peak < 200 * MIB  # one over-long line held (64 MiB), never the expansion


def test_zip_bomb_limit_is_configurable(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    compressed, _ = write_deflate_bomb_zip(bomb, "big.json", PREFIX, 2 * 1024)
    strict = Limits(ratio=20, floor=16 * MIB, cap=10 * GIB)
    _, entries, _, _ = _read_bounded(bomb, strict)
    limit = strict.allowed(compressed)
    assert limit == int(20 * compressed)
    assert one(entries).errors[-1] == {
        "position": f"byte {limit:,} of member big.json",
        "reason": _refusal(strict, compressed, limit),
    }


def test_module_defaults_are_the_configuration(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:  # fmt: skip
    """What a scan uses (``Limits.default()``) follows the module values at call time."""
    monkeypatch.setattr(compression, "MAX_EXPANSION_RATIO", 20.0)
    monkeypatch.setattr(compression, "EXPANSION_FLOOR_BYTES", 8 * MIB)
    bomb = tmp_path / "bomb.zip"
    write_deflate_bomb_zip(bomb, "big.json", PREFIX, 1024)
    outcome = invariants(bomb)  # the scan path: ingest.normalize_path
    assert (outcome.read, outcome.rejected) == (1, 1)
    _, entries = collect(bomb)
    assert f"max(20 x compressed, {8 * MIB:,})" in one(entries).errors[-1]["reason"]


def test_a_scan_takes_its_limits_from_the_caller(tmp_path: Path) -> None:
    from wmihunt import ingest, store

    bomb = tmp_path / "bomb.zip"
    compressed, _ = write_deflate_bomb_zip(bomb, "big.json", PREFIX, 64)
    strict = Limits(ratio=2, floor=MIB, cap=GIB)
    con = store.connect()
    for workers in (1, 2):  # in this process, and in worker processes
        stats = ingest.ingest_paths([str(bomb), str(bomb)], con, workers=workers, limits=strict)
        loaded = [f for f in stats.files if f.format != "duplicate"]
        assert loaded[0].errors[-1]["reason"] == _refusal(strict, compressed, MIB), workers
        con.execute("DELETE FROM scan_inputs")  # forget it: read it again with 2 workers
    con.close()


def _gzip_bomb(path: Path, zero_mib: int) -> int:
    """A gzip member of PREFIX + zeros, streamed like the zip bomb; returns its size."""
    with open(path, "wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
        for piece in _bomb_stream(PREFIX, zero_mib):
            out.write(piece)
        crc = crc32_combine(zlib.crc32(PREFIX), _repeated(zlib.crc32(bytes(MIB)), MIB, zero_mib),
                            zero_mib * MIB)  # fmt: skip
        out.write(struct.pack("<II", crc, (len(PREFIX) + zero_mib * MIB) & 0xFFFFFFFF))
    return path.stat().st_size


def test_gzip_bomb_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.json.gz"
    _gzip_bomb(bomb, 1024)
    events, entries, peak, _ = _read_bounded(bomb)
    stats = one(entries)
    # a stream is held to the rule against what it has consumed so far: the first read
    # of 256 KiB may expand to the 100 MiB floor, not to 200 x the whole file
    limits = Limits.default()
    assert stats.errors[-1] == {
        "position": "compressed byte 262,144",
        "reason": "gzip: " + _refusal(limits, 262_144, limits.floor),
    }
    assert (stats.read, stats.rejected, events) == (1, 1, [])
    assert peak < 200 * MIB


def test_nested_bomb_is_held_to_the_size_on_disk(tmp_path: Path) -> None:
    """gzip(gzip(3 GiB)) is 7 KB on disk: the inner layer may not take 200x of the outer
    layer's output (640 MB), only what the file on disk allows (the 100 MiB floor)."""
    inner = tmp_path / "inner.gz"
    _gzip_bomb(inner, 3 * 1024)
    bomb = tmp_path / "nested.json.gz"
    bomb.write_bytes(gzip.compress(inner.read_bytes(), 9, mtime=0))
    inner.unlink()
    assert bomb.stat().st_size < 16 * 1024
    _, entries, _, seconds = _read_bounded(bomb)
    floor = compression.EXPANSION_FLOOR_BYTES
    reason = one(entries).errors[-1]["reason"]
    assert reason.startswith(f"gzip: refused as a possible decompression bomb: expanded size "
                             f"passed {floor:,} bytes from ")  # fmt: skip
    assert f"(limit: min({floor:,}, max(200 x compressed, {floor:,})))" in reason
    assert seconds < 30


def test_tar_member_names_are_only_labels(tmp_path: Path) -> None:
    """Absolute and ``../`` names are never used as paths: nothing is written anywhere."""
    names = ["/etc/cron.d/wmihunt-evil.json", "../../outside.xml", "a/../../../escape.jsonl",
             "C:\\Windows\\evil.json"]  # fmt: skip
    payloads = [nxlog_line(RecordNumber=1).encode() + b"\n", xml_event(1).encode(),
                nxlog_line(RecordNumber=3).encode() + b"\n",
                nxlog_line(RecordNumber=4).encode() + b"\n"]  # fmt: skip
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in zip(names, payloads, strict=True):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    folder = tmp_path / "deep" / "er"
    folder.mkdir(parents=True)
    archive = folder / "evil.tar"
    archive.write_bytes(raw.getvalue())
    before = sorted(p for p in tmp_path.rglob("*"))
    cwd_before = sorted(os.listdir("."))
    events, entries = collect(archive)
    assert [s.path for s in entries] == [f"{archive}!{n}" for n in names]
    assert [(s.read, s.normalized, s.errors) for s in entries] == [(1, 1, [])] * 4
    assert [e.member for e in events] == names
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert sorted(os.listdir(".")) == cwd_before
    assert not Path("/etc/cron.d/wmihunt-evil.json").exists()


def _jsonl(n: int) -> bytes:
    return b"".join(nxlog_line(RecordNumber=i).encode() + b"\n" for i in range(n))


@pytest.mark.parametrize("cut", [8, 5, 1])
def test_gzip_without_its_trailer(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "cut.json.gz"
    path.write_bytes(gzip.compress(_jsonl(50), mtime=0)[:-cut])
    events, entries = collect(path)
    stats = one(entries)
    assert (len(events), stats.read, stats.errors) == (50, 50, [])
    assert stats.warnings == [{
        "position": f"compressed byte {path.stat().st_size:,}",
        "reason": f"gzip: gzip trailer missing ({cut} of 8 bytes): the data is complete and "
                  "was all recovered, but its CRC could not be checked",
    }]  # fmt: skip


def test_tar_gz_without_its_trailer(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = _jsonl(20)
        info = tarfile.TarInfo("logs/a.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "logs.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0)[:-8])
    events, entries = collect(path)
    stats = one(entries)
    assert (stats.path, len(events), stats.errors) == (f"{path}!logs/a.json", 20, [])
    assert "gzip trailer missing (8 of 8 bytes)" in stats.warnings[0]["reason"]


def test_zip_with_a_damaged_directory_is_not_silently_empty(tmp_path: Path) -> None:
    """Regression (fuzzing): a zip whose central directory lists no file but which holds
    file data produced no entry at all, so the input vanished from the accounting."""
    import zipfile

    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.xml", xml_event(1))
    data = bytearray(raw.getvalue())
    eocd = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HHI", data, eocd + 8, 0, 0, 0)  # no entries, empty directory
    (tmp_path / "damaged.zip").write_bytes(bytes(data))
    (tmp_path / "empty.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    _, entries = collect(tmp_path)
    damaged, empty_entry = entries
    assert damaged.errors == [
        {
            "position": "file",
            "reason": "zip archive lists no files but "
            "holds file data (damaged directory?): nothing could be read",
        }
    ]
    assert empty_entry.errors == []
    assert empty_entry.warnings == [{"position": "file", "reason": "empty zip archive: no files"}]


def test_zip_that_zipfile_itself_cannot_parse(tmp_path: Path) -> None:
    """Regression (fuzzing): ``zipfile`` raises NotImplementedError (a "version needed to
    extract" it does not know) and IndexError (an empty member name), not BadZipFile;
    both escaped the readers and lost the input."""
    import zipfile

    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.json", _jsonl(3))
    data = bytearray(raw.getvalue())
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<H", data, central + 6, 212)  # version needed to extract: 21.2
    (tmp_path / "a_version.zip").write_bytes(bytes(data))
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(""), _jsonl(3))
    (tmp_path / "b_unnamed.zip").write_bytes(raw.getvalue())
    outcome = invariants(tmp_path)  # nothing escapes
    assert outcome.read == 3
    events, entries = collect(tmp_path)
    version, unnamed = entries
    assert version.errors == [
        {"position": "file", "reason": "corrupt zip archive: zip file version 21.2"}
    ]
    assert (unnamed.path, unnamed.read, unnamed.errors) == (f"{tmp_path / 'b_unnamed.zip'}!", 3, [])
    assert len(events) == 3


def test_tar_member_name_that_is_not_utf8_is_stored_as_escaped_text(tmp_path: Path) -> None:
    """Found by the long fuzz run: tarfile hands a non-UTF-8 member name over with lone
    surrogates, which no JSON, Arrow or DuckDB column takes: the accounting did not
    serialize and a scan stopped with a traceback. Names are stored with ``\\xNN``."""
    import orjson

    data = (nxlog_line(RecordNumber=1) + "\n").encode()
    archive = tmp_path / "odd.tar"
    with tarfile.open(archive, "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tar:
        info = tarfile.TarInfo("logs/\xff\xfeevil.json")  # latin-1 bytes: not UTF-8
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    outcome = invariants(archive)  # every invariant, the accounting's JSON included
    assert outcome.normalized == 1
    from wmihunt.ingest import normalize_path

    rows = []
    entries = normalize_path(str(archive), lambda table, batch: rows.extend(batch.to_pylist()))
    member = next(e for e in entries if e.path.startswith(str(archive) + "!"))
    assert member.path == f"{archive}!logs/\\xff\\xfeevil.json"
    orjson.dumps([e.to_dict() for e in entries])
    assert rows[0]["ev_member"] == "logs/\\xff\\xfeevil.json"
    assert rows[0]["uid"] == f"{archive}|logs/\\xff\\xfeevil.json|L1"
