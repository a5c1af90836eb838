"""EVTX reading on real files (read from ../shared/corpus), corrupt copies and archives."""

from __future__ import annotations

import gzip
import io
import random
import shutil
import tarfile
import zipfile
from pathlib import Path

import evtx
import orjson
import pytest
from test_readers_helpers import CORPUS, SYSMON, collect, one, reasons

from wmihunt.readers.winevent import from_event_json

ATTACKS = CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES"
TARGET_HOST = ATTACKS / "Lateral Movement" / "LM_WMI_4624_4688_TargetHost.evtx"
CONSUMER = ATTACKS / "Persistence" / "sysmon_20_21_1_CommandLineEventConsumer.evtx"
SYSMON_BIG = CORPUS / "williballenthin__python-evtx" / "tests" / "data" / "issue_43.evtx"
WMI_ACTIVITY = next(
    (CORPUS / "SigmaHQ__sigma").glob("**/win_wmi_activity_nteventlogfile_cleareventlog/*.evtx"),
    CORPUS / "missing.evtx",
)


def _need(*paths: Path) -> None:
    for path in paths:
        if not path.is_file():
            pytest.skip(f"corpus not present: {path}")


def _count(path: Path) -> int:
    return sum(1 for _ in evtx.PyEvtxParser(str(path)).records_json())


def test_security_fields() -> None:
    _need(TARGET_HOST)
    events, entries = collect(TARGET_HOST)
    stats = one(entries)
    assert (stats.format, stats.read, stats.normalized, stats.errors) == ("evtx", 8, 8, [])
    calc = next(e for e in events if e.record_id == 563299)
    assert (calc.channel, calc.event_id) == ("Security", 4688)
    assert calc.provider == "Microsoft-Windows-Security-Auditing"
    assert calc.computer == "WIN-77LTAPHIQ1R.example.corp"
    assert calc.time == "2019-03-18T22:15:49.676748Z"
    assert calc.user_sid is None  # <Security/> without UserID
    assert calc.data["NewProcessName"] == "C:\\Windows\\System32\\calc.exe"
    assert calc.data["ProcessId"] == "0xae8"
    assert (calc.file, calc.member, calc.line) == (str(TARGET_HOST), None, None)
    assert [e.data.get("LogonType") for e in events if e.event_id == 4624][:2] == [3, 3]


def test_sysmon_wmi_fields_keep_source_values() -> None:
    _need(CONSUMER)
    events, _ = collect(CONSUMER, want=lambda c, e: c == SYSMON and e in (19, 20, 21))
    by_id = {e.record_id: e for e in events}
    assert sorted(by_id) == [16111, 16112, 16115, 16120, 16121, 16123]
    consumer = by_id[16111]
    assert consumer.event_id == 20
    assert consumer.data["Name"] == ' "BotConsumer23"'  # leading space and quotes kept
    assert consumer.data["Destination"] == ' "c:\\\\Windows\\\\System32\\\\cmd.exe"'
    assert by_id[16112].data["Filter"] == ' "__EventFilter.Name=\\"BotFilter82\\""'


def test_userdata_event() -> None:
    _need(WMI_ACTIVITY)
    events, _ = collect(WMI_ACTIVITY)
    ev = events[0]
    assert (ev.channel, ev.event_id, ev.record_id) == (
        "Microsoft-Windows-WMI-Activity/Operational",
        5858,
        5314,
    )
    assert ev.userdata_element == "Operation_ClientFailure"
    assert ev.data["ClientProcessId"] == 25920
    assert ev.data["ResultCode"] == "0x80041003"
    assert "#attributes" not in ev.data
    assert ev.user_sid == "S-1-5-18"


def test_skipped_records_are_counted_by_event() -> None:
    _need(SYSMON_BIG)
    events, entries = collect(SYSMON_BIG, want=lambda c, e: c == SYSMON and e == 1)
    stats = one(entries)
    assert stats.read == _count(SYSMON_BIG) == 1730
    assert stats.normalized == len(events) == 356
    assert stats.skipped_by_event[f"{SYSMON}:2"] == 851
    assert sum(stats.skipped_by_event.values()) == stats.skipped == 1730 - 356


def test_prefilter_agrees_with_full_decoding() -> None:
    """The cheap channel/EventID look must select exactly what full decoding would."""
    _need(SYSMON_BIG, TARGET_HOST, WMI_ACTIVITY)
    rng = random.Random(7)
    chosen: dict[tuple[str, int], bool] = {}

    def want(channel: str, event_id: int | str) -> bool:
        key = (channel.lower(), int(event_id))
        return chosen.setdefault(key, rng.random() < 0.5)

    for path in (SYSMON_BIG, TARGET_HOST, WMI_ACTIVITY):
        expected = []
        for record in evtx.PyEvtxParser(str(path)).records_json():
            ev = from_event_json(orjson.loads(record["data"]), file="", member=None, line=None)
            if want(ev.channel, ev.event_id):
                expected.append(ev.record_id)
        events, _ = collect(path, want=want)
        assert [e.record_id for e in events] == expected


def test_members_of_archives(tmp_path: Path) -> None:
    _need(TARGET_HOST)
    data = TARGET_HOST.read_bytes()
    (tmp_path / "a.evtx.gz").write_bytes(gzip.compress(data))
    with zipfile.ZipFile(tmp_path / "b.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("logs/Security.evtx", data)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("c/Security.evtx")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (tmp_path / "c.tar.gz").write_bytes(raw.getvalue())
    events, entries = collect(tmp_path)
    assert [(s.path, s.format, s.read, s.errors) for s in entries] == [
        (str(tmp_path / "a.evtx.gz"), "evtx", 8, []),
        (f"{tmp_path / 'b.zip'}!logs/Security.evtx", "evtx", 8, []),
        (f"{tmp_path / 'c.tar.gz'}!c/Security.evtx", "evtx", 8, []),
    ]
    assert {(e.file, e.member) for e in events} == {
        (str(tmp_path / "a.evtx.gz"), None),
        (str(tmp_path / "b.zip"), "logs/Security.evtx"),
        (str(tmp_path / "c.tar.gz"), "c/Security.evtx"),
    }


def test_truncated_file(tmp_path: Path) -> None:
    _need(SYSMON_BIG, TARGET_HOST)
    data = SYSMON_BIG.read_bytes()
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(data[: 4096 + 65536 * 10 + 1234])
    shutil.copyfile(TARGET_HOST, tmp_path / "z_next.evtx")
    _, entries = collect(tmp_path)
    stats = entries[0]
    assert 0 < stats.read < 1730
    # the partial chunk 10 keeps its header: its records are counted lost (the missing
    # chunks 11-22 have no header left, their count is unknown)
    assert stats.rejected == 84
    assert stats.errors[0]["position"] == f"byte {4096 + 65536 * 10 + 1234:,}"
    assert "file is truncated: its header declares 23 chunks" in stats.errors[0]["reason"]
    assert stats.errors[1]["position"] == "chunk 10"
    assert stats.errors[1]["reason"].startswith("84 records lost: the chunk header declares")
    assert (entries[1].read, entries[1].errors) == (8, [])


def test_corrupt_chunk_counts_lost_records(tmp_path: Path) -> None:
    _need(SYSMON_BIG)
    data = bytearray(SYSMON_BIG.read_bytes())
    chunk2 = 4096 + 2 * 65536
    for i in range(chunk2 + 0x300, chunk2 + 0x600):  # inside chunk 2's records
        data[i] ^= 0x5A
    path = tmp_path / "flipped.evtx"
    path.write_bytes(bytes(data))
    _, entries = collect(path)
    stats = one(entries)
    assert stats.read == 1730  # what the parser yields plus the records it says it lost
    assert stats.rejected == 73
    assert stats.errors[0]["position"] == "record after 150"
    assert stats.errors[0]["reason"].startswith("73 records lost: RuntimeError: Failed to parse")


def test_corrupt_chunk_header(tmp_path: Path) -> None:
    _need(SYSMON_BIG)
    data = bytearray(SYSMON_BIG.read_bytes())
    data[4096 + 65536 : 4096 + 65536 + 8] = b"XXXXXXXX"
    path = tmp_path / "chunk.evtx"
    path.write_bytes(bytes(data))
    _, entries = collect(path)
    stats = one(entries)
    assert 1500 < stats.read < 1730
    assert stats.errors[0]["position"].endswith("(chunk 1)")
    assert "records lost (count unknown)" in stats.errors[0]["reason"]
    assert "Invalid EVTX chunk header magic" in stats.errors[0]["reason"]


def test_random_bytes_and_bad_header(tmp_path: Path) -> None:
    rng = random.Random(3)
    (tmp_path / "a_random.evtx").write_bytes(rng.randbytes(70000))
    (tmp_path / "b_magic.evtx").write_bytes(b"ElfFile\x00" + rng.randbytes(200))
    (tmp_path / "c_garbage_header.evtx").write_bytes(b"ElfFile\x00" + rng.randbytes(70000))
    (tmp_path / "d_ok.json").write_text('{"EventID": 1, "Channel": "Security"}\n')
    events, entries = collect(tmp_path)
    first, second, garbage, third = entries
    assert garbage.read == 0
    assert garbage.errors[0]["position"] == "file header"
    assert garbage.errors[0]["reason"].startswith("invalid EVTX file header")
    assert first.format == "unknown"
    assert "unrecognised format (first bytes:" in reasons(first)
    assert second.format == "evtx"
    assert "not a readable EVTX file" in reasons(second)
    assert second.read == 0
    assert third.read == 1 and len(events) == 1


def test_evtx_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    _need(TARGET_HOST)
    import sys

    class FakeStdin:
        buffer = io.BytesIO(TARGET_HOST.read_bytes())

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    events, entries = collect("-")
    assert (one(entries).format, len(events)) == ("evtx", 8)
    assert events[0].file == "-"


def test_copy_is_independent_of_name(tmp_path: Path) -> None:
    _need(TARGET_HOST)
    path = tmp_path / "not-a-log.txt"
    shutil.copyfile(TARGET_HOST, path)
    _, entries = collect(path)
    assert (one(entries).format, one(entries).read) == ("evtx", 8)
