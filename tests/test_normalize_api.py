"""The normalize package API: relevance, common columns, rejection, and type safety."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wmihunt.events import CROWDSTRIKE_CHANNEL, RawEvent
from wmihunt.models import MODELS
from wmihunt.normalize import (
    RELEVANT_EVENT_IDS,
    SOURCES,
    NormalizeError,
    is_relevant,
    normalize,
)

SYSMON = "Microsoft-Windows-Sysmon/Operational"


@pytest.mark.parametrize(
    ("channel", "event_id"),
    [
        (SYSMON, 1),
        (SYSMON, 19),
        (SYSMON, 20),
        (SYSMON, 21),
        ("microsoft-windows-sysmon/operational", "20"),
        ("Security", 4688),
        ("security", "4688"),
        ("SECURITY", 4624),
        ("Security", " 4648 "),
        ("Microsoft-Windows-WMI-Activity/Operational", 5857),
        ("Microsoft-Windows-WMI-Activity/Operational", 5858),
        ("Microsoft-Windows-WMI-Activity/Operational", 5859),
        ("Microsoft-Windows-WMI-Activity/Operational", 5860),
        ("microsoft-windows-wmi-activity/operational", "5861"),
        ("Microsoft-Windows-PowerShell/Operational", 4104),
        (CROWDSTRIKE_CHANNEL, "ProcessRollup2"),
        (CROWDSTRIKE_CHANNEL, "SyntheticProcessRollup2"),
        ("crowdstrike", "processrollup2"),
    ],
)
def test_relevant(channel: str, event_id: int | str) -> None:
    assert is_relevant(channel, event_id)


@pytest.mark.parametrize(
    ("channel", "event_id"),
    [
        (SYSMON, 3),
        (SYSMON, 4688),
        ("Security", 1),
        ("Security", 4689),
        ("Microsoft-Windows-WMI-Activity/Operational", 5862),
        ("Microsoft-Windows-PowerShell/Operational", 4103),
        ("Windows PowerShell", 4104),
        ("System", 7045),
        (CROWDSTRIKE_CHANNEL, "NetworkConnectIP4"),
        ("Security", "ProcessRollup2"),
        ("", ""),
        ("Security", "4688x"),
        ("Security", True),
    ],
)
def test_not_relevant(channel: str, event_id: Any) -> None:
    assert not is_relevant(channel, event_id)
    assert normalize(RawEvent(channel=channel, event_id=event_id, data={})) is None


def test_relevant_event_ids() -> None:
    expected = [1, 19, 20, 21, 4104, 4624, 4648, 4688, 5857, 5858, 5859, 5860, 5861]
    assert sorted(RELEVANT_EVENT_IDS) == expected


def test_every_source_feeds_a_known_model() -> None:
    assert {s.table for s in SOURCES.values()} == set(MODELS)
    assert {s.data_source for s in SOURCES.values()} == {
        "sysmon",
        "security",
        "crowdstrike",
        "wmi_activity",
        "powershell",
    }


def test_non_mapping_data_is_rejected() -> None:
    event = RawEvent(channel="Security", event_id=4688, data=["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(NormalizeError, match="not a mapping"):
        normalize(event)


def test_common_and_evidence_columns() -> None:
    event = RawEvent(
        channel="Security",
        event_id=4688,
        data={"NewProcessName": "C:\\a.exe"},
        provider="Microsoft-Windows-Security-Auditing",
        computer="h1",
        time="2020-01-02T03:04:05Z",
        record_id=17,
        file="in.zip",
        member="logs/sec.evtx",
    )
    table, row = normalize(event)  # type: ignore[misc]
    assert table == "process_start"
    assert set(row) == set(MODELS[table].column_names)  # every column, NULL by default
    assert row["uid"] == "in.zip|logs/sec.evtx|17"
    assert row["time"] == datetime(2020, 1, 2, 3, 4, 5)
    assert row["dest"] == "h1"
    assert row["channel"] == "Security"
    assert row["event_id"] == "4688"
    assert row["provider"] == "Microsoft-Windows-Security-Auditing"
    assert row["ev_file"] == "in.zip"
    assert row["ev_member"] == "logs/sec.evtx"
    assert row["ev_record_id"] == 17
    assert row["ev_line"] is None
    assert row["parent_inferred"] is None


def test_uid_prefers_the_line_of_line_formats() -> None:
    """JSON lines mix hosts and channels: their record numbers collide, lines do not."""
    base = dict(channel="Security", event_id=4624, data={}, file="x.json")
    _, a = normalize(RawEvent(record_id=5, line=10, **base))  # type: ignore[arg-type, misc]
    _, b = normalize(RawEvent(record_id=5, line=11, **base))  # type: ignore[arg-type, misc]
    _, c = normalize(RawEvent(**base))  # type: ignore[arg-type, misc]
    assert (a["uid"], b["uid"], c["uid"]) == ("x.json||L10", "x.json||L11", "x.json||?")
    assert a["ev_record_id"] == 5 and a["ev_line"] == 10


def test_time_fallbacks_and_bad_time_keeps_the_row() -> None:
    data = {"@timestamp": "2020-01-02T03:04:05.5Z"}
    _, row = normalize(RawEvent(channel="Security", event_id=4624, data=data))  # type: ignore[misc]
    assert row["time"] == datetime(2020, 1, 2, 3, 4, 5, 500000)
    _, row = normalize(  # type: ignore[misc]
        RawEvent(channel="Security", event_id=4624, data={}, time="not a time")
    )
    assert row["time"] is None


def test_nxlog_escape_flag_from_reader_wins() -> None:
    data = {"SourceModuleType": "im_msvistalog", "CommandLine": "a &amp; b"}
    event = RawEvent(channel="Security", event_id=4688, data=data, extra={"xml_escaped": False})
    assert normalize(event)[1]["process"] == "a &amp; b"  # type: ignore[index]
    event = RawEvent(
        channel="Security",
        event_id=4688,
        data={"CommandLine": "a &amp; b"},
        extra={"xml_escaped": True},
    )
    assert normalize(event)[1]["process"] == "a & b"  # type: ignore[index]


# --- hostile input: any field values give rows that fit the column types -----------------

_values = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)
_names = st.sampled_from(
    [
        "UtcTime",
        "Image",
        "CommandLine",
        "ProcessId",
        "ParentProcessId",
        "NewProcessId",
        "User",
        "SubjectUserSid",
        "TargetUserName",
        "LogonType",
        "IpPort",
        "MessageNumber",
        "Name",
        "Destination",
        "Query",
        "Consumer",
        "Filter",
        "ESS",
        "CONSUMER",
        "Processid",
        "ClientProcessId",
        "ProcessID",
        "PossibleCause",
        "timestamp",
        "ProcessStartTime",
        "RawProcessId",
        "ImageFileName",
        "UserSid",
        "Message",
        "Hostname",
        "SourceModuleType",
        "ScriptBlockText",
        "MessageTotal",
        "NamespaceName",
        "Operation",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(SOURCES, key=str)),
    st.dictionaries(_names, _values, max_size=12),
    _values,
    st.one_of(st.none(), st.text(max_size=200)),
)
def test_any_field_values_fit_the_model(
    key: tuple[str, Any], data: dict[str, Any], time: Any, message: str | None
) -> None:
    channel, event_id = key
    if channel == "crowdstrike":
        channel, event_id = (
            CROWDSTRIKE_CHANNEL,
            {"processrollup2": "ProcessRollup2"}.get(event_id, "SyntheticProcessRollup2"),
        )
    event = RawEvent(
        channel=channel,
        event_id=event_id,
        data=data,
        time=time,
        message=message,
        file="fuzz",
        line=1,
    )
    result = normalize(event)
    assert result is not None
    table, row = result
    pa.Table.from_pylist([row], schema=MODELS[table].arrow_schema)
