"""Normalizers on real public logs from ../shared/corpus (skipped when it is absent).

The events are read here with a few lines of code (not the project's readers, which are
tested on their own) and turned into RawEvents the way the readers do.
"""

from __future__ import annotations

import io
import json
import tarfile
import zlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from wmihunt.events import RawEvent
from wmihunt.models import MODELS
from wmihunt.normalize import is_relevant, normalize

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
COVENANT = (
    CORPUS / "OTRF__Security-Datasets/datasets/atomic/windows/persistence/host"
    "/covenant_persistwmi.tar.gz"
)
EVTX_DIR = CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"corpus not present: {path}")
    return path


def _rows(events: list[RawEvent]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in MODELS}
    for event in events:
        if is_relevant(event.channel, event.event_id):
            result = normalize(event)
            assert result is not None
            rows[result[0]].append(result[1])
    for table, table_rows in rows.items():  # every row fits its model's column types
        pa.Table.from_pylist(table_rows, schema=MODELS[table].arrow_schema)
    return rows


def _nxlog_lines(path: Path) -> list[RawEvent]:
    """The JSON lines of the (trailer-less) tar.gz, as NXLog-dialect RawEvents."""
    raw = zlib.decompressobj(wbits=31).decompress(path.read_bytes())  # no trailer check
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        member = next(m for m in archive if m.isfile())
        lines = archive.extractfile(member).read().decode("utf-8").splitlines()  # type: ignore[union-attr]
    events = []
    for number, line in enumerate(lines, 1):
        d = json.loads(line)
        eid = d.get("EventID")
        events.append(
            RawEvent(
                channel=d.get("Channel", ""),
                event_id=int(eid) if str(eid).isdigit() else eid,
                data=d,
                provider=d.get("SourceName"),
                computer=d.get("Hostname"),
                time=d.get("@timestamp"),
                record_id=d.get("RecordNumber"),
                message=d.get("Message"),
                file=str(path),
                member=member.name,
                line=number,
            )
        )
    return events


def _evtx(path: Path) -> list[RawEvent]:
    evtx = pytest.importorskip("evtx")
    events = []
    for record in evtx.PyEvtxParser(str(path)).records_json():
        event = json.loads(record["data"])["Event"]
        system = event["System"]
        eid = system["EventID"]
        security = (system.get("Security") or {}).get("#attributes") or {}
        events.append(
            RawEvent(
                channel=system["Channel"],
                event_id=eid["#text"] if isinstance(eid, dict) else eid,
                data=event.get("EventData") or {},
                provider=system["Provider"]["#attributes"]["Name"],
                computer=system["Computer"],
                time=system["TimeCreated"]["#attributes"]["SystemTime"],
                record_id=record["event_record_id"],
                user_sid=security.get("UserID"),
                file=str(path),
            )
        )
    return events


def test_covenant_wmi_persistence_nxlog() -> None:
    rows = _rows(_nxlog_lines(_need(COVENANT)))
    wmi = rows["wmi_activity"]
    by_kind = {(r["event_id"], r["kind"]): r for r in wmi}

    consumer = by_kind[("20", "consumer")]
    assert consumer["dest"] == "IT001.shire.com"
    assert consumer["user"] == "shire\\pgustavo"
    assert consumer["name"] == "Evil Persistence"
    assert consumer["consumer_type"] == "Command Line"
    assert consumer["destination"] == "powershell -Sta -Nop -Window Hidden -EncodedCommand <blah>"
    assert "&lt;blah&gt;" in consumer["destination_raw"]  # NXLog's escapes kept raw

    binding = by_kind[("21", "binding")]
    assert binding["consumer"] == 'CommandLineEventConsumer.Name="Evil Persistence"'
    assert binding["filter"] == '__EventFilter.Name="Evil Persistence"'
    assert binding["time"].isoformat() == "2019-12-05T04:47:55.353000"  # Sysmon UtcTime

    flt = by_kind[("19", "filter")]
    assert flt["query"] == "select * from Win32_ProcessStartTrace where ProcessName='notepad.exe'"
    assert flt["namespace"] == "root/cimv2"

    wmi_binding = by_kind[("5861", "binding")]  # message text only in this dataset
    assert wmi_binding["consumer"] == 'CommandLineEventConsumer="Evil Persistence"'
    assert wmi_binding["filter"] == "Evil Persistence"
    assert "Binding" in wmi_binding["message"]
    assert "CommandLineTemplate" in wmi_binding["possible_cause"]

    permanent = by_kind[("5859", "permanent")]
    assert permanent["query"] == flt["query"]
    assert permanent["possible_cause"] == "Permanent"

    assert len(rows["logon"]) == 18  # 14 x 4624 + 4 x 4648
    assert all(r["time"] is not None and r["dest"] for table in rows.values() for r in table)
    uids = [r["uid"] for table in rows.values() for r in table]
    assert len(uids) == len(set(uids))


def test_sysmon_consumer_evtx() -> None:
    path = _need(EVTX_DIR / "Persistence" / "sysmon_20_21_1_CommandLineEventConsumer.evtx")
    rows = _rows(_evtx(path))
    consumers = [r for r in rows["wmi_activity"] if r["kind"] == "consumer"]
    assert consumers
    assert {r["destination"] for r in consumers} == {"c:\\Windows\\System32\\cmd.exe"}
    assert all(r["destination_raw"] == ' "c:\\\\Windows\\\\System32\\\\cmd.exe"' for r in consumers)


def test_old_4688_and_network_logons_evtx() -> None:
    path = _need(EVTX_DIR / "Lateral Movement" / "LM_WMI_4624_4688_TargetHost.evtx")
    rows = _rows(_evtx(path))
    starts = {r["process_name"]: r for r in rows["process_start"]}
    host, child = starts["WmiPrvSE.exe"], starts["calc.exe"]
    assert child["parent_process_id"] == host["process_id"] == 0xAE8
    assert child["parent_process_name"] is None  # old shape: no ParentProcessName
    assert child["process"] == ""  # logged, but empty
    network = [r for r in rows["logon"] if r["logon_type"] == 3 and r["src_ip"] == "10.0.2.17"]
    assert {r["src_workstation"] for r in network} == {None, "PC01"}
