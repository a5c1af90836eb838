"""Windows event XML: single event, wevtutil output, <Events> exports, Splunk raw lines."""

from __future__ import annotations

from pathlib import Path

from test_readers_helpers import SYSMON, WMI, collect, one, reasons, xml_event


def _write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_single_event_fields(tmp_path: Path) -> None:
    text = xml_event(
        1,
        data={
            "Image": r"C:\Windows\System32\cmd.exe",
            "CommandLine": 'cmd.exe /c "reg save HKLM\\sam & whoami"',
            "ParentImage": r"C:\Windows\System32\wbem\WmiPrvSE.exe",
            "RuleName": "",
        },
        record=4522,
        message="Process Create:\nRuleName: -",
    )
    events, entries = collect(_write(tmp_path, "one.xml", text))
    stats = one(entries)
    assert (stats.format, stats.read, stats.normalized) == ("xml", 1, 1)
    ev = events[0]
    assert ev.channel == SYSMON
    assert ev.event_id == 1
    assert ev.provider == "Microsoft-Windows-Sysmon"
    assert ev.computer == "win-dc-1.attackrange.local"
    assert ev.time == "2020-10-08T11:03:46.617920300Z"
    assert ev.record_id == 4522
    assert ev.user_sid == "S-1-5-18"
    assert ev.data["CommandLine"] == 'cmd.exe /c "reg save HKLM\\sam & whoami"'
    assert ev.data["ParentImage"] == r"C:\Windows\System32\wbem\WmiPrvSE.exe"
    assert ev.data["RuleName"] == ""
    assert ev.message == "Process Create:\nRuleName: -"
    assert ev.extra == {"rendering": {"Level": "Information"}}
    assert ev.file == str(tmp_path / "one.xml")
    assert ev.member is None
    assert ev.line == 1


def test_userdata_and_qualifiers(tmp_path: Path) -> None:
    binding = xml_event(
        5861,
        WMI,
        provider="Microsoft-Windows-WMI-Activity",
        userdata=(
            "Operation_ESStoConsumerBinding",
            {
                "Namespace": "//./root/subscription",
                "ESS": "Evil Persistence",
                "CONSUMER": 'CommandLineEventConsumer="Evil Persistence"',
                "PossibleCause": "Binding EventFilter: instance of __EventFilter {...};",
            },
        ),
    )
    service = xml_event(7036, "System", {"param1": "WMI Performance Adapter"}, qualifiers="16384")
    path = _write(tmp_path, "two.xml", binding + "\n" + service + "\n")
    events, entries = collect(path)
    assert one(entries).read == 2
    assert events[0].userdata_element == "Operation_ESStoConsumerBinding"
    assert events[0].data["ESS"] == "Evil Persistence"
    assert events[0].data["CONSUMER"] == 'CommandLineEventConsumer="Evil Persistence"'
    assert "xmlns" not in events[0].data
    assert (events[1].event_id, events[1].channel, events[1].line) == (7036, "System", 2)


def test_events_export_utf16_with_declaration(tmp_path: Path) -> None:
    """PowerShell/wevtutil exports are often UTF-16 with a BOM and an <Events> root."""
    body = "".join(xml_event(1, record=n, data={"Image": "ü.exe"}) for n in range(1, 4))
    text = "\ufeff<?xml version='1.0' encoding='UTF-16'?>\r\n<Events>" + body + "</Events>\r\n"
    events, entries = collect(_write(tmp_path, "export.xml", text, "utf-16-le"))
    stats = one(entries)
    assert (stats.format, stats.read, stats.errors) == ("xml", 3, [])
    assert [e.record_id for e in events] == [1, 2, 3]
    assert events[0].data["Image"] == "ü.exe"


def test_wevtutil_concatenated_multiline_events(tmp_path: Path) -> None:
    """wevtutil qe /f:xml: events back to back, no root; a ScriptBlock spans lines."""
    script = "function New-Mutex($MutexName) {\n  [Threading.Mutex]::new($false, $MutexName)\n}"
    first = xml_event(
        4104, "Microsoft-Windows-PowerShell/Operational", {"ScriptBlockText": script}, record=7
    )
    second = xml_event(4688, "Security", {"NewProcessName": r"C:\x.exe"}, record=8)
    events, entries = collect(_write(tmp_path, "q.xml", first + second))
    assert one(entries).read == 2
    assert events[0].data["ScriptBlockText"] == script
    assert events[1].line == 3  # the second event starts on the script block's last line


def test_skip_counts_without_parsing(tmp_path: Path) -> None:
    text = "\n".join(xml_event(eid, record=eid) for eid in (1, 3, 3, 10))
    events, entries = collect(
        _write(tmp_path, "s.xml", text), want=lambda c, e: c.lower() == SYSMON.lower() and e == 1
    )
    stats = one(entries)
    assert [e.event_id for e in events] == [1]
    assert (stats.read, stats.normalized, stats.skipped) == (4, 1, 3)
    assert stats.skipped_by_event == {f"{SYSMON}:3": 2, f"{SYSMON}:10": 1}


def test_doctype_and_entities_rejected(tmp_path: Path) -> None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE Event [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    )
    xxe = xml_event(1, data={"CommandLine": "&xxe;"}).replace("&amp;xxe;", "&xxe;")
    good = xml_event(1, record=99)
    text = laughs + "\n" + xml_event(1, data={"CommandLine": "&lol2;"}) + "\n" + xxe + "\n" + good
    events, entries = collect(_write(tmp_path, "evil.xml", text), want=lambda c, e: False)
    stats = one(entries)
    assert events == []
    assert (stats.read, stats.rejected, stats.skipped) == (3, 2, 1)
    assert stats.errors[0]["position"] == "event 1 (line 2)"
    assert "DOCTYPE/ENTITY declaration: refused" in stats.errors[0]["reason"]
    assert stats.errors[1]["position"] == "event 2 (line 3)"
    assert "undefined entity" in stats.errors[1]["reason"]


def test_malformed_and_truncated_events(tmp_path: Path) -> None:
    good = xml_event(1, record=1)
    broken = xml_event(1, record=2).replace("</EventData>", "</EventDat>")
    cut = xml_event(1, record=3)[:200]
    text = good + "\n" + broken + "\n" + good.replace(">1<", ">1<", 1) + "\n" + cut
    events, entries = collect(_write(tmp_path, "bad.xml", text))
    stats = one(entries)
    assert [e.record_id for e in events] == [1, 1]
    assert stats.rejected == 2
    assert stats.errors[0]["position"] == "event 2 (line 2)"
    assert "malformed XML" in stats.errors[0]["reason"]
    assert stats.errors[1]["position"] == "line 4"
    assert "truncated event" in stats.errors[1]["reason"]


def test_non_event_xml_is_an_error(tmp_path: Path) -> None:
    _, entries = collect(_write(tmp_path, "pom.xml", "<project><a>1</a></project>"))
    stats = one(entries)
    assert stats.read == 0
    assert "no Windows <Event> element found" in reasons(stats)


def test_oversized_event_rejected_then_reading_goes_on(tmp_path: Path) -> None:
    from wmihunt.readers import xml as xml_reader
    from wmihunt.readers.containers import iter_sources

    big = xml_event(1, data={"CommandLine": "A" * 5000}, record=1)
    small = xml_event(1, record=2)
    path = _write(tmp_path, "big.xml", big + "\n" + small + "\n")
    sources = iter_sources(str(path))  # keep the generator alive: it owns the open file
    src = next(sources)
    events = list(xml_reader.read_xml(src, lambda c, e: True, max_event=2000))
    assert [e.record_id for e in events] == [2]
    assert src.stats.rejected == 1
    assert "event longer than 2,000 bytes" in src.stats.errors[0]["reason"]


def test_event_splitting_is_independent_of_read_size(tmp_path: Path, monkeypatch) -> None:
    from wmihunt.readers import xml as xml_reader

    text = "<Events>\n" + "\n".join(xml_event(1, record=n) for n in range(1, 5)) + "\n</Events>"
    path = _write(tmp_path, "e.xml", text)
    expected, _ = collect(path)
    assert [(e.record_id, e.line) for e in expected] == [(1, 2), (2, 3), (3, 4), (4, 5)]
    for size in (1, 3, 5, 17, 300):
        monkeypatch.setattr(xml_reader, "_READ", size)
        events, entries = collect(path)
        assert [(e.record_id, e.line) for e in events] == [(e.record_id, e.line) for e in expected]
        assert one(entries).errors == []


def test_parser_itself_refuses_dtds_and_entities() -> None:
    """Defence in depth: even past the DOCTYPE check, the parser refuses declarations."""
    import pytest

    from wmihunt.readers.xmlparse import ExpatError, UnsafeXml, parse

    for doc in (
        b'<!DOCTYPE Event [<!ENTITY a "b">]><Event>&a;</Event>',
        b'<!DOCTYPE Event SYSTEM "http://127.0.0.1/evil.dtd"><Event/>',
        b'<!DOCTYPE Event [<!ENTITY x SYSTEM "file:///etc/passwd">]><Event>&x;</Event>',
    ):
        with pytest.raises(UnsafeXml):
            parse(doc)
    with pytest.raises(ExpatError, match="undefined entity"):
        parse(b"<Event>&xxe;</Event>")
    doc = b"<e:Event xmlns:e='urn:x'><e:System><e:EventID>7</e:EventID></e:System></e:Event>"
    root = parse(doc)
    assert (root.name, root.children[0].children[0].text) == ("Event", "7")
