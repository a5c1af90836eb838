"""Archives, folders, stdin, sniffing by content, and the decompression-bomb guard."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from test_readers_helpers import collect, nxlog_line, one, reasons, xml_event

from wmihunt.readers import Limits, iter_inputs, read_path
from wmihunt.readers.sniff import sniff


def _jsonl(*records: int) -> bytes:
    return "".join(nxlog_line(RecordNumber=r) + "\n" for r in records).encode()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def test_gzip_sniffed_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "events.txt"
    path.write_bytes(gzip.compress(_jsonl(1, 2, 3)))
    events, entries = collect(path)
    stats = one(entries)
    assert (stats.path, stats.format, stats.read) == (str(path), "jsonl", 3)
    assert stats.errors == stats.warnings == []
    assert [(e.file, e.member, e.line) for e in events] == [(str(path), None, n) for n in (1, 2, 3)]


@pytest.mark.parametrize("compress", [bz2.compress, lzma.compress])
def test_bzip2_and_xz(tmp_path: Path, compress) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.log"
    path.write_bytes(compress(_jsonl(1, 2)))
    events, entries = collect(path)
    assert [e.record_id for e in events] == [1, 2]
    assert one(entries).errors == []


def test_misleading_extensions(tmp_path: Path) -> None:
    (tmp_path / "a.evtx").write_bytes(_jsonl(1))
    (tmp_path / "b.json").write_text(xml_event(1, record=2))
    events, entries = collect(tmp_path)
    assert [(s.format, s.read) for s in entries] == [("jsonl", 1), ("xml", 1)]
    assert [e.record_id for e in events] == [1, 2]


def test_zip_members_are_file_entries(tmp_path: Path) -> None:
    path = tmp_path / "logs.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("dir/", b"")
        z.writestr("dir/a.json", _jsonl(1, 2))
        z.writestr("b.xml", xml_event(1, record=3))
        z.writestr("c.json.gz", gzip.compress(_jsonl(4)))
        z.writestr("notes.txt", b"hello")
    events, entries = collect(path)
    assert [s.path for s in entries] == [
        f"{path}!dir/a.json",
        f"{path}!b.xml",
        f"{path}!c.json.gz",
        f"{path}!notes.txt",
    ]
    assert [s.read for s in entries] == [2, 1, 1, 0]
    assert [(e.file, e.member, e.record_id) for e in events] == [
        (str(path), "dir/a.json", 1),
        (str(path), "dir/a.json", 2),
        (str(path), "b.xml", 3),
        (str(path), "c.json.gz", 4),
    ]
    assert "unrecognised format (first bytes: 68 65 6c 6c 6f)" in reasons(entries[3])


def test_nested_archives(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("deep.json", _jsonl(7))
    path = tmp_path / "outer.tgz"
    path.write_bytes(_tar_gz({"inner.zip": inner.getvalue(), "top.json": _jsonl(8)}))
    events, entries = collect(path)
    assert [s.path for s in entries] == [f"{path}!inner.zip!deep.json", f"{path}!top.json"]
    assert [(e.member, e.record_id) for e in events] == [
        ("inner.zip!deep.json", 7),
        ("top.json", 8),
    ]


def test_nesting_limit(tmp_path: Path) -> None:
    data = _jsonl(1)
    for _ in range(3):
        data = gzip.compress(data)
    path = tmp_path / "x.gz.gz.gz"
    path.write_bytes(data)
    events, entries = collect(path, limits=Limits(max_nesting=2))
    assert events == []
    assert "nested more than 2 levels deep" in reasons(one(entries))
    assert len(collect(path)[0]) == 1


def test_tar_gz_without_gzip_trailer_warns_and_recovers_all(tmp_path: Path) -> None:
    data = _tar_gz({"a.json": _jsonl(*range(1, 501))})
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(data[:-8])  # drop CRC32 + ISIZE
    events, entries = collect(path)
    stats = one(entries)
    assert stats.path == f"{path}!a.json"
    assert (stats.read, stats.rejected, stats.errors) == (500, 0, [])
    assert len(events) == 500
    assert len(stats.warnings) == 1
    assert "gzip trailer missing (8 of 8 bytes)" in stats.warnings[0]["reason"]


def test_trailing_garbage_after_gzip_warns(tmp_path: Path) -> None:
    """The OTRF covenant_persistwmi.tar.gz case: one stray byte after the gzip stream."""
    path = tmp_path / "x.tar.gz"
    path.write_bytes(_tar_gz({"a.json": _jsonl(1, 2)}) + b"\n")
    events, entries = collect(path)
    stats = one(entries)
    assert (len(events), stats.errors) == (2, [])
    assert "1 byte of trailing data" in stats.warnings[0]["reason"]


def test_truncated_gzip_is_an_error_with_partial_recovery(tmp_path: Path) -> None:
    data = gzip.compress(_jsonl(*range(1, 2001)))
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    events, entries = collect(path)
    stats = one(entries)
    assert 100 < len(events) < 2000
    assert stats.rejected <= 1  # the cut last line, if the cut fell inside one
    assert "compressed data ends early (truncated file)" in reasons(stats)


def test_truncated_tar_member_is_an_error(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = _jsonl(*range(1, 300))
        info = tarfile.TarInfo("a.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "cut.tar"
    path.write_bytes(raw.getvalue()[: 512 + len(data) // 2])
    events, entries = collect(path)
    stats = one(entries)
    assert 10 < len(events) < 299
    assert "data ends early (truncated)" in reasons(stats)


def test_unsafe_member_names_are_only_labels(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    path = work / "evil.tar.gz"
    path.write_bytes(_tar_gz({"../escaped.json": _jsonl(1), "/abs/x.json": _jsonl(2)}))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    events, entries = collect(path)
    assert [s.path for s in entries] == [f"{path}!../escaped.json", f"{path}!/abs/x.json"]
    assert [e.record_id for e in events] == [1, 2]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_bomb_guard_refuses_member_and_goes_on(tmp_path: Path) -> None:
    bomb = tmp_path / "a_bomb.json.gz"
    bomb.write_bytes(gzip.compress(_jsonl(1) + b" " * 5_000_000))
    fine = tmp_path / "b_fine.json"
    fine.write_bytes(_jsonl(2))
    limits = Limits(ratio=20, floor=100_000, cap=1 << 30)
    events, entries = collect(tmp_path, limits=limits)
    assert [e.record_id for e in events] == [1, 2]
    assert "refused as a possible decompression bomb" in reasons(entries[0])
    assert entries[1].errors == []


def test_zip_bomb_member_refused(tmp_path: Path) -> None:
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.json", _jsonl(1) + b"\n" * 3_000_000)
        z.writestr("ok.json", _jsonl(2))
    _events, entries = collect(path, limits=Limits(ratio=50, floor=10_000, cap=1 << 30))
    assert "refused as a possible decompression bomb" in reasons(entries[0])
    assert entries[1].errors == [] and entries[1].read == 1


def test_corrupt_zip_and_crc_error(tmp_path: Path) -> None:
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.json", _jsonl(1, 2))
    data = bytearray(path.read_bytes())
    data[data.index(b'"RecordNumber": 2') + 16] ^= 0x01  # "2" -> "3": CRC no longer matches
    path.write_bytes(bytes(data))
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    _events, entries = collect(tmp_path)
    assert [s.path for s in entries] == [str(tmp_path / "broken.zip"), f"{path}!a.json"]
    assert "corrupt zip archive" in reasons(entries[0])
    assert "checksum mismatch" in reasons(entries[1])


def test_folder_walk_sorted_hidden_skipped(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.json").write_bytes(_jsonl(2))
    (tmp_path / "a.json").write_bytes(_jsonl(1))
    (tmp_path / "c.json").write_bytes(_jsonl(3))
    (tmp_path / ".hidden.json").write_bytes(_jsonl(9))
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.json").write_bytes(_jsonl(9))
    walked = list(iter_inputs([str(tmp_path), "-", str(tmp_path / "missing.json")]))
    assert walked == [
        str(tmp_path / "a.json"),
        str(tmp_path / "b" / "2.json"),
        str(tmp_path / "c.json"),
        "-",
        str(tmp_path / "missing.json"),
    ]
    events, _ = collect(tmp_path)
    assert [e.record_id for e in events] == [1, 2, 3]


def test_missing_empty_and_unknown_files(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "blank.json").write_bytes(b"  \n\n ")
    (tmp_path / "info.yml").write_text("id: 1\n")
    (tmp_path / "z.json").write_bytes(_jsonl(5))
    _, missing = collect(tmp_path / "nope.json")
    assert "cannot open: No such file or directory" in reasons(one(missing))
    events, entries = collect(tmp_path)
    by_name = {Path(s.path).name: s for s in entries}
    assert by_name["empty.json"].warnings[0]["reason"] == "empty input: no data"
    assert by_name["blank.json"].errors == []
    assert "unrecognised format" in reasons(by_name["info.yml"])
    assert [e.record_id for e in events] == [5]


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeStdin:
        buffer = io.BytesIO(gzip.compress(_jsonl(1, 2)))

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    events, entries = collect("-")
    stats = one(entries)
    assert (stats.path, stats.format, stats.read) == ("-", "jsonl", 2)
    assert [(e.file, e.line) for e in events] == [("-", 1), ("-", 2)]


def test_zip_on_stdin_is_spooled(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as z:
        z.writestr("m.json", _jsonl(3))

    class FakeStdin:
        buffer = io.BytesIO(raw.getvalue())

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    events, entries = collect("-")
    assert one(entries).path == "-!m.json"
    assert [(e.file, e.member) for e in events] == [("-", "m.json")]


def test_on_file_called_before_first_event(tmp_path: Path) -> None:
    path = tmp_path / "t.tar.gz"
    path.write_bytes(_tar_gz({"a.json": _jsonl(1), "b.json": _jsonl(2)}))
    seen: list[str] = []
    for event in read_path(str(path), lambda c, e: True, lambda s: seen.append(s.path)):
        assert seen[-1].endswith(event.member or "")
        seen.append(f"event {event.record_id}")
    assert seen == [f"{path}!a.json", "event 1", f"{path}!b.json", "event 2"]


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"ElfFile\x00" + b"\x00" * 100, "evtx"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"PK\x03\x04", "zip"),
        (b"BZh91AY", "bzip2"),
        (b"\xfd7zXZ\x00\x00", "xz"),
        (b"  \r\n <Event>", "xml"),
        (b'\xef\xbb\xbf{"a": 1}', "json"),
        (b"[{}]", "json"),
        (b"\xff\xfe<\x00E\x00", "utf-16-le"),
        ("<Events>".encode("utf-16-le"), "utf-16-le"),
        (b"(\xb5/\xfd", "unsupported:zstd"),
        (b"   ", "empty"),
        (b"", "empty"),
        (b"id: 1", "unknown"),
    ],
)
def test_sniff(head: bytes, kind: str) -> None:
    assert sniff(head) == kind


def test_sniff_tar() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("x.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    assert sniff(raw.getvalue()[:4096]) == "tar"
    v7 = bytearray(raw.getvalue()[:512])
    v7[257:265] = b"\x00" * 8  # no ustar magic: the header checksum must decide
    v7[148:156] = b"        "
    v7[148:155] = f"{sum(v7):06o}\x00".encode()
    assert sniff(bytes(v7)) == "tar"


def _gzip_member(
    data: bytes, header_extra: bytes = b"", flags: int = 0, crc: int | None = None
) -> bytes:
    import struct
    import zlib

    body = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = body.compress(data) + body.flush()
    header = b"\x1f\x8b\x08" + bytes([flags]) + b"\x00" * 4 + b"\x00\xff" + header_extra
    value = zlib.crc32(data) if crc is None else crc
    return header + deflated + struct.pack("<II", value, len(data) & 0xFFFFFFFF)


def test_gzip_members_headers_and_crc(tmp_path: Path) -> None:
    import struct

    extra = struct.pack("<H", 4) + b"abcd" + b"name.json\x00" + b"a comment\x00" + b"\x00\x00"
    fancy = _gzip_member(_jsonl(1), extra, flags=4 | 8 | 16 | 2)  # FEXTRA FNAME FCOMMENT FHCRC
    path = tmp_path / "multi.gz"
    path.write_bytes(fancy + gzip.compress(_jsonl(2)))  # two members, one stream
    events, entries = collect(path)
    assert [e.record_id for e in events] == [1, 2]
    assert one(entries).errors == one(entries).warnings == []

    bad = tmp_path / "crc.gz"
    bad.write_bytes(_gzip_member(_jsonl(3), crc=12345))
    events, entries = collect(bad)
    assert [e.record_id for e in events] == [3]
    assert "CRC or size mismatch" in reasons(one(entries))


def test_concatenated_bzip2_streams(tmp_path: Path) -> None:
    path = tmp_path / "x.bz2"
    path.write_bytes(bz2.compress(_jsonl(1)) + bz2.compress(_jsonl(2)))
    events, entries = collect(path)
    assert [e.record_id for e in events] == [1, 2]
    assert one(entries).errors == []


def test_non_log_files_inside_a_folder_are_listed_not_errors(tmp_path: Path) -> None:
    from wmihunt.readers import plan_inputs

    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "a.jsonl"
    log.write_text('{"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"}\n')
    (tmp_path / "logs" / "README.md").write_text("# notes about this case\n")
    (tmp_path / "logs" / "hashes.csv").write_text("file,sha256\n")
    named = tmp_path / "named.txt"
    named.write_text("plain text named on the command line\n")
    inputs, not_logs = plan_inputs([str(tmp_path / "logs"), str(named)])
    assert inputs == [str(log), str(named)]  # a file named explicitly is always read
    assert sorted(Path(s.path).name for s in not_logs) == ["README.md", "hashes.csv"]
    for stats in not_logs:
        assert stats.errors == [] and stats.read == 0 and stats.balanced
        assert "not a log file" in stats.warnings[0]["reason"]
