"""Helpers for the reader tests (no tests here): run ``read_path`` as the ingest driver does."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from wmihunt.accounting import FileStats
from wmihunt.events import RawEvent
from wmihunt.readers import Limits, read_path

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

SYSMON = "Microsoft-Windows-Sysmon/Operational"
WMI = "Microsoft-Windows-WMI-Activity/Operational"


def want_all(channel: str, event_id: int | str) -> bool:
    return True


def collect(
    path: str | Path,
    want: Callable[[str, int | str], bool] = want_all,
    limits: Limits | None = None,
) -> tuple[list[RawEvent], list[FileStats]]:
    """Read ``path`` like the ingest driver: every yielded event is accepted by the caller."""
    entries: list[FileStats] = []
    events: list[RawEvent] = []
    for event in read_path(str(path), want, entries.append, limits=limits):
        assert entries, "an event came before on_file"
        entries[-1].accepted()
        events.append(event)
    for stats in entries:
        assert stats.balanced, stats.to_dict()
    return events, entries


def one(entries: list[FileStats]) -> FileStats:
    assert len(entries) == 1, [e.path for e in entries]
    return entries[0]


def reasons(stats: FileStats) -> str:
    return " | ".join(f"{e['position']}: {e['reason']}" for e in stats.errors)


def xml_event(
    event_id: int = 1,
    channel: str = SYSMON,
    data: dict[str, str] | None = None,
    *,
    record: int = 4522,
    computer: str = "win-dc-1.attackrange.local",
    time: str = "2020-10-08T11:03:46.617920300Z",
    provider: str = "Microsoft-Windows-Sysmon",
    sid: str | None = "S-1-5-18",
    userdata: tuple[str, dict[str, str]] | None = None,
    message: str | None = None,
    qualifiers: str | None = None,
) -> str:
    """A one-line Windows event XML, shaped like Splunk's XmlWinEventLog raw events."""
    eid_attr = f" Qualifiers={quoteattr(qualifiers)}" if qualifiers else ""
    security = f"<Security UserID={quoteattr(sid)}/>" if sid else "<Security/>"
    system = (
        f"<System><Provider Name={quoteattr(provider)} Guid='{{5770385F-C22A-43E0}}'/>"
        f"<EventID{eid_attr}>{event_id}</EventID><Version>5</Version><Level>4</Level>"
        f"<TimeCreated SystemTime={quoteattr(time)}/><EventRecordID>{record}</EventRecordID>"
        f"<Correlation/><Execution ProcessID='2912' ThreadID='3424'/>"
        f"<Channel>{escape(channel)}</Channel><Computer>{escape(computer)}</Computer>"
        f"{security}</System>"
    )
    if userdata is not None:
        element, fields = userdata
        inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
        body = (
            f"<UserData><{element} xmlns='http://manifests.microsoft.com/win/2006/windows/WMI'>"
            f"{inner}</{element}></UserData>"
        )
    else:
        items = "".join(
            f"<Data Name={quoteattr(k)}>{escape(v)}</Data>" for k, v in (data or {}).items()
        )
        body = f"<EventData>{items}</EventData>"
    rendering = (
        f"<RenderingInfo Culture='en-US'><Message>{escape(message)}</Message>"
        f"<Level>Information</Level></RenderingInfo>"
        if message is not None
        else ""
    )
    return (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>"
        f"{system}{body}{rendering}</Event>"
    )


def nxlog_line(**fields: object) -> str:
    """An NXLog/OTRF-style flat JSON event line."""
    base: dict[str, object] = {
        "EventID": 1,
        "Channel": SYSMON,
        "Hostname": "WORKSTATION5.theshire.local",
        "@timestamp": "2020-09-20T21:38:57.482Z",
        "EventTime": "2020-09-20 17:38:55",
        "RecordNumber": 2289994,
        "SourceName": "Microsoft-Windows-Sysmon",
        "UserID": "S-1-5-18",
        "Image": "C:\\Windows\\System32\\cmd.exe",
        "CommandLine": "cmd.exe /c whoami",
        "ParentImage": "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
    }
    base.update(fields)
    return json.dumps(base)
