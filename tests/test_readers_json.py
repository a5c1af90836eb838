"""JSON lines and JSON documents: NXLog, Winlogbeat ECS, EVTX-as-JSON, CrowdStrike."""

from __future__ import annotations

import json
from pathlib import Path

from test_readers_helpers import SYSMON, WMI, collect, nxlog_line, one

from wmihunt.events import CROWDSTRIKE_CHANNEL
from wmihunt.readers import jsonl
from wmihunt.readers.containers import iter_sources


def _lines(tmp_path: Path, name: str, *lines: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(b"\n".join(x.encode() if isinstance(x, str) else x for x in lines) + b"\n")
    return path


def test_nxlog_dialect_a(tmp_path: Path) -> None:
    """OTRF 2019-2020: string EventID, lower-case channel, RecordNumber, flat fields."""
    line = nxlog_line(EventID="4688", Channel="security", RecordNumber=7, NewProcessName="x")
    events, entries = collect(_lines(tmp_path, "a.json", line))
    stats = one(entries)
    assert (stats.format, stats.read, stats.normalized) == ("jsonl", 1, 1)
    ev = events[0]
    assert (ev.channel, ev.event_id, ev.record_id, ev.line) == ("security", 4688, 7, 1)
    assert ev.computer == "WORKSTATION5.theshire.local"
    assert ev.time == "2020-09-20T21:38:57.482Z"
    assert ev.provider == "Microsoft-Windows-Sysmon"
    assert ev.user_sid == "S-1-5-18"
    assert ev.data["NewProcessName"] == "x"
    assert ev.data["EventID"] == "4688"  # the whole object is the data, values as given


def test_nxlog_dialect_b_and_message(tmp_path: Path) -> None:
    line = json.dumps(
        {
            "SourceName": "Microsoft-Windows-WMI-Activity",
            "Channel": WMI,
            "Hostname": "WORKSTATION6",
            "TimeCreated": "2020-10-23T02:04:59.123Z",
            "@timestamp": "2020-10-23T02:05:00.000Z",
            "EventID": 5861,
            "Message": "Namespace = //./root/subscription; Eventfilter = Evil; Consumer = X",
        }
    )
    events, _ = collect(_lines(tmp_path, "b.json", line))
    ev = events[0]
    assert (ev.channel, ev.event_id, ev.record_id) == (WMI, 5861, None)
    assert ev.time == "2020-10-23T02:04:59.123Z"  # TimeCreated wins over @timestamp
    assert ev.computer == "WORKSTATION6"
    assert ev.message.startswith("Namespace = //./root/subscription")


def test_winlogbeat_ecs(tmp_path: Path) -> None:
    process = {
        "@timestamp": "2023-01-02T03:04:05.678Z",
        "message": "Process Create:",
        "host": {"name": "ws1"},
        "event": {"code": "1", "provider": "Microsoft-Windows-Sysmon"},
        "winlog": {
            "channel": SYSMON,
            "event_id": "1",
            "record_id": "123",
            "computer_name": "ws1.corp.local",
            "provider_name": "Microsoft-Windows-Sysmon",
            "user": {"identifier": "S-1-5-18"},
            "event_data": {"Image": "C:\\Windows\\System32\\cmd.exe", "ParentImage": "w.exe"},
        },
    }
    binding = {
        "@timestamp": "2023-01-02T03:04:06Z",
        "host": {"name": "ws2"},
        "winlog": {
            "channel": WMI,
            "event_id": 5861,
            "user_data": {
                "xml_name": "Operation_ESStoConsumerBinding",
                "ESS": "Evil",
                "Namespace": "//./root/subscription",
            },
        },
    }
    events, entries = collect(
        _lines(tmp_path, "beat.ndjson", json.dumps(process), json.dumps(binding))
    )
    assert one(entries).read == 2
    ev = events[0]
    assert (ev.channel, ev.event_id, ev.record_id) == (SYSMON, 1, 123)
    assert (ev.computer, ev.provider, ev.user_sid) == (
        "ws1.corp.local",
        "Microsoft-Windows-Sysmon",
        "S-1-5-18",
    )
    assert ev.time == "2023-01-02T03:04:05.678Z"
    assert ev.message == "Process Create:"
    assert ev.data == {"Image": "C:\\Windows\\System32\\cmd.exe", "ParentImage": "w.exe"}
    ev = events[1]
    assert (ev.channel, ev.event_id, ev.computer) == (WMI, 5861, "ws2")
    assert ev.userdata_element == "Operation_ESStoConsumerBinding"
    assert ev.data == {"ESS": "Evil", "Namespace": "//./root/subscription"}


def test_crowdstrike(tmp_path: Path) -> None:
    obj = {
        "event_simpleName": "ProcessRollup2",
        "timestamp": "1713805173418",
        "ProcessStartTime": "1713805173.321",
        "ComputerName": "HOST-1",
        "UserSid": "S-1-5-21-586445407-708991241-1829972403-500",
        "ParentBaseFileName": "WmiPrvSE.exe",
        "CommandLine": '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" ',
        "aid": "168a90e125d443beb2a4e2914985084d",
    }
    other = {"event_simpleName": "DnsRequest", "timestamp": "1713805173419"}
    events, entries = collect(
        _lines(tmp_path, "fdr.json", json.dumps(obj), json.dumps(other)),
        want=lambda c, e: c == CROWDSTRIKE_CHANNEL and e == "ProcessRollup2",
    )
    stats = one(entries)
    assert (stats.read, stats.normalized, stats.skipped) == (2, 1, 1)
    assert stats.skipped_by_event == {"CrowdStrike:DnsRequest": 1}
    ev = events[0]
    assert (ev.channel, ev.event_id, ev.computer) == (
        CROWDSTRIKE_CHANNEL,
        "ProcessRollup2",
        "HOST-1",
    )
    assert ev.time == "1713805173418"
    assert ev.user_sid == "S-1-5-21-586445407-708991241-1829972403-500"
    assert ev.data is not None and ev.data["ParentBaseFileName"] == "WmiPrvSE.exe"


def _evtx_json(eid: int, record: int, **data: object) -> dict:
    return {
        "Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
                "EventID": {"#attributes": {"Qualifiers": 0}, "#text": eid},
                "TimeCreated": {"#attributes": {"SystemTime": "2025-12-15T12:36:19.993798Z"}},
                "EventRecordID": record,
                "Channel": SYSMON,
                "Computer": "swachchhanda",
                "Security": {"#attributes": {"UserID": "S-1-5-18"}},
            },
            "EventData": data,
        }
    }


def test_pretty_printed_evtx_json_object(tmp_path: Path) -> None:
    """The SigmaHQ regression .json shape: one Event object over many lines."""
    path = tmp_path / "one.json"
    path.write_text(json.dumps(_evtx_json(1, 75071, ProcessId=13636, Image="WMIC.exe"), indent=2))
    events, entries = collect(path)
    stats = one(entries)
    assert (stats.format, stats.read) == ("json", 1)
    ev = events[0]
    assert (ev.channel, ev.event_id, ev.record_id, ev.line) == (SYSMON, 1, 75071, 1)
    assert (ev.computer, ev.user_sid, ev.provider) == (
        "swachchhanda",
        "S-1-5-18",
        "Microsoft-Windows-Sysmon",
    )
    assert ev.time == "2025-12-15T12:36:19.993798Z"
    assert ev.data == {"ProcessId": 13636, "Image": "WMIC.exe"}


def test_json_array_and_bad_elements(tmp_path: Path) -> None:
    items = [_evtx_json(1, n, Image=f"p{n}.exe") for n in range(1, 4)]
    text = json.dumps(items, indent=1)
    text = text[:-1] + ', 42, "text", {"x": 1}, [1, 2]\n]'
    path = tmp_path / "arr.json"
    path.write_text(text)
    events, entries = collect(path)
    stats = one(entries)
    assert stats.format == "json"
    assert [e.record_id for e in events] == [1, 2, 3]
    starts = [n for n, text in enumerate(text.splitlines(), 1) if text == " {"]
    assert [e.line for e in events] == starts[:3]
    assert starts[0] == 2
    assert (stats.read, stats.rejected) == (7, 4)
    got = [(e["position"], e["reason"]) for e in stats.errors]
    last = len(text.splitlines()) - 1
    assert got[0] == (f"element 4 (line {last})", "not a JSON object (a number)")
    assert got[1] == (f"element 5 (line {last})", "not a JSON object (a string)")
    assert "unknown JSON event shape" in got[2][1]
    assert got[3] == (f"element 7 (line {last})", "not a JSON object (a list)")


def test_truncated_json_array(tmp_path: Path) -> None:
    text = json.dumps([nxlog_line_obj(1), nxlog_line_obj(2)])[:-30]
    path = tmp_path / "cut.json"
    path.write_text(text)
    events, entries = collect(path)
    stats = one(entries)
    assert [e.record_id for e in events] == [1]
    assert stats.rejected == 1
    assert "unterminated JSON value" in stats.errors[0]["reason"]


def nxlog_line_obj(record: int) -> dict:
    return json.loads(nxlog_line(RecordNumber=record))


def test_bad_lines_are_rejected_with_line_numbers(tmp_path: Path) -> None:
    deep = "[" * 2000 + "]" * 2000
    path = _lines(
        tmp_path,
        "bad.jsonl",
        nxlog_line(RecordNumber=1),
        "this is not json",
        b'{"EventID": 1, "Channel": "x", "CommandLine": "\xff\xfe"}',
        '{"EventID": 1, "Channel": "x", "Value": NaN}',
        deep,
        "",
        '["a", "list"]',
        '{"no": "event id"}',
        '{"EventID": "abc", "Channel": "Security"}',
        nxlog_line(RecordNumber=10),
    )
    events, entries = collect(path)
    stats = one(entries)
    assert [e.record_id for e in events] == [1, 10]
    assert [e.line for e in events] == [1, 10]
    assert (stats.read, stats.normalized, stats.rejected) == (9, 2, 7)
    by_line = {e["position"]: e["reason"] for e in stats.errors}
    assert set(by_line) == {f"line {n}" for n in (2, 3, 4, 5, 7, 8, 9)}
    assert by_line["line 2"].startswith("not valid JSON")
    assert by_line["line 3"].startswith("invalid UTF-8")
    assert "NaN" in by_line["line 4"]
    assert by_line["line 5"].startswith("JSON nested too deeply")
    assert by_line["line 7"] == "not a JSON object (a list)"
    assert "unknown JSON event shape" in by_line["line 8"]
    assert by_line["line 9"] == "EventID is not an integer: 'abc'"


def test_invalid_utf8_rejected_even_when_irrelevant(tmp_path: Path) -> None:
    path = _lines(tmp_path, "u.jsonl", b'{"EventID": 3, "Channel": "Security", "X": "\xc3\x28"}')
    _, entries = collect(path, want=lambda c, e: False)
    stats = one(entries)
    assert (stats.read, stats.rejected, stats.skipped) == (1, 1, 0)
    assert stats.errors[0]["reason"].startswith("invalid UTF-8")


def test_prefilter_skips_without_decoding(tmp_path: Path, monkeypatch) -> None:
    calls: list[bytes] = []
    real = jsonl.orjson.loads

    def counting(data):  # type: ignore[no-untyped-def]
        calls.append(data)
        return real(data)

    monkeypatch.setattr(jsonl.orjson, "loads", counting)
    lines = [nxlog_line(EventID=eid, RecordNumber=n) for n, eid in enumerate([10, 10, 1, 7, 10])]
    events, entries = collect(
        _lines(tmp_path, "p.jsonl", *lines),
        want=lambda c, e: c.lower() == SYSMON.lower() and e == 1,
    )
    stats = one(entries)
    assert [e.record_id for e in events] == [2]
    assert len(calls) == 1  # only the relevant line was decoded
    assert stats.skipped_by_event == {f"{SYSMON}:10": 3, f"{SYSMON}:7": 1}


def test_ambiguous_line_is_decoded(tmp_path: Path) -> None:
    """Two EventID keys (a nested one): the prefilter must not guess."""
    line = json.dumps({"EventID": 1, "Channel": SYSMON, "Inner": {"EventID": 99}})
    events, _entries = collect(_lines(tmp_path, "amb.jsonl", line))
    assert [e.event_id for e in events] == [1]


def test_one_megabyte_command_line(tmp_path: Path) -> None:
    command = "powershell -enc " + "QUJD" * (1 << 18)
    events, entries = collect(_lines(tmp_path, "big.jsonl", nxlog_line(CommandLine=command)))
    assert one(entries).rejected == 0
    assert events[0].data["CommandLine"] == command


def test_line_longer_than_limit_is_rejected_not_held(tmp_path: Path) -> None:
    huge = nxlog_line(CommandLine="A" * 3_000_000)
    path = _lines(tmp_path, "huge.jsonl", huge, nxlog_line(RecordNumber=5))
    sources = iter_sources(str(path))
    src = next(sources)
    events = list(jsonl.read_json(src, lambda c, e: True, max_line=1 << 20))
    assert [e.record_id for e in events] == [5]
    assert [e.line for e in events] == [2]
    assert src.stats.errors == [
        {"position": "line 1", "reason": "line longer than 1,048,576 bytes: not read"}
    ]


def test_blank_lines_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_bytes(
        b"\xef\xbb\xbf\r\n"
        + nxlog_line(RecordNumber=1).encode()
        + b"\r\n\r\n"
        + nxlog_line(RecordNumber=2).encode()
        + b"\r\n"
    )
    events, entries = collect(path)
    assert one(entries).format == "jsonl"
    assert [(e.record_id, e.line) for e in events] == [(1, 2), (2, 4)]


def test_document_scanner_is_independent_of_read_size(tmp_path: Path, monkeypatch) -> None:
    """Values, strings and escapes that straddle two reads are split the same way."""
    items = [json.loads(nxlog_line(RecordNumber=n, CommandLine='a\\"b' * n)) for n in range(1, 6)]
    path = tmp_path / "arr.json"
    path.write_text(json.dumps(items, indent=2) + "\n")
    expected, _ = collect(path)
    assert [e.record_id for e in expected] == [1, 2, 3, 4, 5]
    for size in (1, 2, 3, 7, 64):
        monkeypatch.setattr(jsonl, "_READ", size)
        events, entries = collect(path)
        assert [(e.record_id, e.line, e.data) for e in events] == [
            (e.record_id, e.line, e.data) for e in expected
        ]
        assert one(entries).errors == []


def test_utf16_json_from_powershell(tmp_path: Path) -> None:
    """`Get-WinEvent ... | ConvertTo-Json > x.json` in Windows PowerShell writes UTF-16LE."""
    items = [json.loads(nxlog_line(RecordNumber=n, CommandLine="naïve.exe")) for n in (1, 2)]
    path = tmp_path / "ps.json"
    path.write_bytes(b"\xff\xfe" + json.dumps(items, indent=4).encode("utf-16-le"))
    events, entries = collect(path)
    assert (one(entries).format, one(entries).errors) == ("json", [])
    assert [(e.record_id, e.data["CommandLine"]) for e in events] == [
        (1, "naïve.exe"),
        (2, "naïve.exe"),
    ]
