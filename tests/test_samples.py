"""The bundled samples (samples/logs): reproducible, well-formed, complete, and found.

These tests read the committed files the way a user's tools would (stdlib XML and JSON),
not through the generator's objects, so they check what is actually shipped. The literal
predicates below restate shared/spec/DETECTIONS.md independently of the generator.
"""

from __future__ import annotations

import gzip
import importlib.util
import ipaddress
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

try:  # an independent safe parser (defusedxml, a test dependency); fall back to the stdlib
    from defusedxml.ElementTree import fromstring as xml_fromstring
except ImportError:  # pragma: no cover - defusedxml is a test dependency
    from xml.etree.ElementTree import fromstring as xml_fromstring

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
LOGS = SAMPLES / "logs"
EXPECTED = json.loads((SAMPLES / "EXPECTED.json").read_text(encoding="utf-8"))
NS = "{http://schemas.microsoft.com/win/2004/08/events/event}"

SYSMON = "Microsoft-Windows-Sysmon/Operational"
SECURITY = "Security"
POWERSHELL = "Microsoft-Windows-PowerShell/Operational"
WMI = "Microsoft-Windows-WMI-Activity/Operational"
FALCON = "CrowdStrike"

MODEL_OF = {
    (SYSMON, 1): "process_start",
    (SECURITY, 4688): "process_start",
    (FALCON, "ProcessRollup2"): "process_start",
    (FALCON, "SyntheticProcessRollup2"): "process_start",
    (SYSMON, 19): "wmi_activity",
    (SYSMON, 20): "wmi_activity",
    (SYSMON, 21): "wmi_activity",
    (WMI, 5857): "wmi_activity",
    (WMI, 5859): "wmi_activity",
    (WMI, 5860): "wmi_activity",
    (WMI, 5861): "wmi_activity",
    (POWERSHELL, 4104): "script_block",
    (SECURITY, 4624): "logon",
    (SECURITY, 4648): "logon",
}

#: Fields each source must carry (structured fields; NXLog WMI-Activity: see TEXT_KEYS).
REQUIRED: dict[tuple[str, object], tuple[str, ...]] = {
    (SYSMON, 1): (
        "UtcTime",
        "ProcessGuid",
        "ProcessId",
        "Image",
        "OriginalFileName",
        "CommandLine",
        "User",
        "LogonId",
        "IntegrityLevel",
        "ParentProcessGuid",
        "ParentProcessId",
        "ParentImage",
        "ParentCommandLine",
    ),
    (SYSMON, 19): ("UtcTime", "Operation", "User", "EventNamespace", "Name", "Query"),
    (SYSMON, 20): ("UtcTime", "Operation", "User", "Name", "Type", "Destination"),
    (SYSMON, 21): ("UtcTime", "Operation", "User", "Consumer", "Filter"),
    (SECURITY, 4688): (
        "SubjectUserSid",
        "SubjectUserName",
        "SubjectDomainName",
        "SubjectLogonId",
        "NewProcessId",
        "NewProcessName",
        "ProcessId",
    ),
    (SECURITY, 4624): (
        "TargetUserSid",
        "TargetUserName",
        "TargetDomainName",
        "TargetLogonId",
        "LogonType",
        "IpAddress",
        "WorkstationName",
        "AuthenticationPackageName",
    ),
    (SECURITY, 4648): (
        "SubjectUserName",
        "TargetUserName",
        "TargetServerName",
        "TargetInfo",
        "ProcessName",
    ),
    (POWERSHELL, 4104): ("MessageNumber", "MessageTotal", "ScriptBlockText", "ScriptBlockId"),
    (WMI, 5857): ("ProviderName", "HostProcess", "ProviderPath"),
    (WMI, 5859): ("NamespaceName", "Query", "PossibleCause"),
    (WMI, 5860): ("NamespaceName", "Query", "User", "Processid", "ClientMachine", "PossibleCause"),
    (WMI, 5861): ("Namespace", "ESS", "CONSUMER", "PossibleCause"),
    (FALCON, "ProcessRollup2"): (
        "timestamp",
        "aid",
        "ComputerName",
        "TargetProcessId",
        "ParentProcessId",
        "RawProcessId",
        "ImageFileName",
        "CommandLine",
        "ParentBaseFileName",
        "UserSid",
        "IntegrityLevel",
    ),
    (FALCON, "SyntheticProcessRollup2"): (
        "timestamp",
        "aid",
        "ComputerName",
        "TargetProcessId",
        "ParentProcessId",
        "RawProcessId",
        "ImageFileName",
        "CommandLine",
        "ParentBaseFileName",
        "UserSid",
    ),
}
#: WMI-Activity via NXLog carries its fields only in Message: the text keys it must have.
TEXT_KEYS = {
    5857: ("HostProcess = ", "ProviderPath = "),
    5859: ("NotificationQuery = ", "PossibleCause = Permanent"),
    5860: (
        "Namespace = ",
        "NotificationQuery = ",
        "UserName = ",
        "ClientMachine = ",
        "PossibleCause = Temporary",
    ),
    5861: ("Namespace = ", "Eventfilter = ", "Consumer = ", "PossibleCause = Binding"),
}
DATA_SOURCE_OF_DETECTION = {
    1: {(SYSMON, 20)},
    2: {(POWERSHELL, 4104)},
    8: {(WMI, 5861)},
    9: {(SYSMON, 21)},
    10: {(WMI, 5860)},
}
PROCESS_SOURCES = {k for k, v in MODEL_OF.items() if v == "process_start"}
DEFAULT_TEMP_QUERIES = (
    "SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName = 'wsmprovhost.exe'",
    "SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'AntiVirusProduct' OR "
    "TargetInstance ISA 'FirewallProduct' OR TargetInstance ISA 'AntiSpywareProduct'",
)


# ------------------------------------------------------------------ reading the files


@dataclass
class Event:
    file: str
    line: int
    record_id: int | None
    channel: str
    event_id: int | str
    computer: str
    fields: dict[str, Any]
    message: str | None = None
    userdata: str | None = None
    system: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, object]:
        channel = SECURITY if self.channel.lower() == "security" else self.channel
        return channel, self.event_id


def _xml_event(text: str, file: str, line: int) -> Event:
    root = xml_fromstring(text.encode("utf-8"))
    system = root.find(f"{NS}System")
    assert system is not None, f"{file}:{line}: no System"
    values: dict[str, str] = {}
    userdata_name = None
    event_data = root.find(f"{NS}EventData")
    if event_data is not None:
        for data in event_data:
            values[data.get("Name", "")] = data.text or ""
    user_data = root.find(f"{NS}UserData")
    if user_data is not None:
        (element,) = list(user_data)
        userdata_name = element.tag.split("}")[-1]
        for child in element:
            values[child.tag.split("}")[-1]] = child.text or ""
    sys_values = {
        "Provider": system.find(f"{NS}Provider").get("Name", ""),
        "SystemTime": system.find(f"{NS}TimeCreated").get("SystemTime", ""),
        "UserID": (system.find(f"{NS}Security").get("UserID") or ""),
    }
    return Event(
        file,
        line,
        int(system.findtext(f"{NS}EventRecordID")),
        system.findtext(f"{NS}Channel"),
        int(system.findtext(f"{NS}EventID")),
        system.findtext(f"{NS}Computer"),
        values,
        None,
        userdata_name,
        sys_values,
    )


def _read_xml(path: Path) -> list[Event]:
    text = path.read_text(encoding="utf-8")
    if text.startswith("<?xml"):
        root = xml_fromstring(text.encode("utf-8"))  # the whole export is one document
        assert root.tag == "Events"
    else:  # Splunk XmlWinEventLog: every line is one complete event
        for number, line in enumerate(text.splitlines(), start=1):
            assert line.startswith("<Event xmlns="), f"{path.name}:{number}"
            xml_fromstring(line.encode("utf-8"))
    events = []
    starts = [m.start() for m in re.finditer(r"<Event xmlns=", text)]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else text.index("</Event>", start) + 8
        chunk = text[start:end].rstrip()
        if chunk.endswith("</Events>"):
            chunk = chunk[: -len("</Events>")].rstrip()
        events.append(_xml_event(chunk, path.name, text.count("\n", 0, start) + 1))
    return events


def _lines(path: Path) -> list[str]:
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    return path.read_text(encoding="utf-8").splitlines()


def _read_json(path: Path, fmt: str) -> list[Event]:
    events = []
    for number, line in enumerate(_lines(path), start=1):
        obj = json.loads(line)
        if fmt == "winlogbeat":
            w = obj["winlog"]
            events.append(
                Event(
                    path.name,
                    number,
                    w["record_id"],
                    w["channel"],
                    int(w["event_id"]),
                    w["computer_name"],
                    w["event_data"],
                    obj.get("message"),
                )
            )
        elif fmt == "nxlog":
            events.append(
                Event(
                    path.name,
                    number,
                    obj["RecordNumber"],
                    obj["Channel"],
                    int(obj["EventID"]),
                    obj["Hostname"],
                    obj,
                    obj.get("Message"),
                )
            )
        else:
            events.append(
                Event(
                    path.name,
                    number,
                    None,
                    FALCON,
                    obj["event_simpleName"],
                    obj["ComputerName"],
                    obj,
                )
            )
    return events


def read_all() -> dict[str, list[Event]]:
    out = {}
    for name, meta in EXPECTED["files"].items():
        path = LOGS / name
        fmt = meta["format"]
        out[name] = _read_xml(path) if fmt.startswith("xml") else _read_json(path, fmt)
    return out


EVENTS = read_all()
ALL = [ev for evs in EVENTS.values() for ev in evs]


def _basename(path: str | None) -> str:
    return (path or "").replace("/", "\\").rsplit("\\", 1)[-1]


def _find(file: str, record_id: int | None, line: int) -> Event:
    for ev in EVENTS[file]:
        if ev.line == line:
            assert record_id is None or ev.record_id == record_id
            return ev
    raise AssertionError(f"no event at {file}:{line}")


# ------------------------------------------------------------ the literal predicates


def _process(ev: Event) -> tuple[str, str, str, str] | None:
    f = ev.fields
    if ev.key == (SYSMON, 1):
        return (
            _basename(f["Image"]),
            f.get("OriginalFileName", ""),
            f.get("CommandLine", ""),
            _basename(f.get("ParentImage")),
        )
    if ev.key == (SECURITY, 4688):
        return (
            _basename(f["NewProcessName"]),
            "",
            f.get("CommandLine", ""),
            _basename(f.get("ParentProcessName")),
        )
    if ev.channel == FALCON:
        return (
            _basename(f["ImageFileName"]),
            "",
            f.get("CommandLine", ""),
            f.get("ParentBaseFileName", ""),
        )
    return None


def _glob(pattern: str, value: str) -> bool:
    rx = ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.fullmatch(rx, value, re.IGNORECASE | re.DOTALL) is not None


def literal(ev: Event) -> set[int]:
    hits: set[int] = set()
    proc = _process(ev)
    if proc:
        name, original, cmd, parent = (x.lower() for x in proc)
        wmic = "wmic.exe" in (name, original)
        checks = {
            3: parent == "wmiprvse.exe" and "\\dismhost.exe" not in cmd,
            4: wmic and all(s in cmd for s in ("/node:", "process", "call", "create")),
            5: wmic and "node" in cmd,
            6: name == "scrcons.exe",
            7: wmic and all(s in cmd for s in (" process ", " call ", " create ")),
            11: wmic and ("http://" in cmd or "https://" in cmd) and "/format:" in cmd,
            12: wmic and all(s in cmd for s in ("os get", "/format:", ".xsl")),
        }
        return {n for n, ok in checks.items() if ok}
    if ev.key == (SYSMON, 20):
        hits.add(1)
    if ev.key == (SYSMON, 21):
        hits.add(9)
    if ev.key == (POWERSHELL, 4104) and "invoke-wmiexec" in ev.fields["ScriptBlockText"].lower():
        hits.add(2)
    if ev.channel == WMI and ev.event_id in (5860, 5861):
        text = ev.message if ev.userdata is None else " ".join(ev.fields.values())
        assert text is not None
        if ev.event_id == 5861 and re.search(r"\bBinding\b", text, re.I):
            m = re.search(r"Consumer =\s+([^;|^$]+)", text)
            consumer = ev.fields.get("CONSUMER") if ev.userdata else (m and m.group(1))
            if consumer and consumer.lower() != 'nteventlogeventconsumer="scm event log consumer"':
                hits.add(8)
        if ev.event_id == 5860 and re.search(r"\bTemporary\b", text, re.I):
            m = re.search(r"NotificationQuery =\s+([^;|^$]+)", text)
            query = ev.fields.get("Query") if ev.userdata else (m and m.group(1))
            if query and not any(_glob(d, query) for d in DEFAULT_TEMP_QUERIES):
                hits.add(10)
    return hits


# --------------------------------------------------------------------------- tests


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "wmihunt_sample_generator", SAMPLES / "generate.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    _load_generator().generate(out)
    return out


def test_generator_reproduces_the_committed_files(regenerated: Path) -> None:
    committed = sorted(p.name for p in LOGS.iterdir())
    assert committed == sorted(p.name for p in (regenerated / "logs").iterdir())
    expected = (regenerated / "EXPECTED.json").read_bytes()
    assert expected == (SAMPLES / "EXPECTED.json").read_bytes(), "EXPECTED.json is stale"
    for name in committed:
        new, old = (regenerated / "logs" / name).read_bytes(), (LOGS / name).read_bytes()
        if name.endswith(".gz"):
            # deflate output may differ between zlib builds; the content may not
            assert gzip.decompress(new) == gzip.decompress(old), name
        else:
            assert new == old, f"{name} is stale: run python samples/generate.py"


def test_generator_is_byte_for_byte_deterministic(regenerated: Path, tmp_path: Path) -> None:
    _load_generator().generate(tmp_path)
    for path in [regenerated / "EXPECTED.json", *(regenerated / "logs").iterdir()]:
        again = tmp_path / path.relative_to(regenerated)
        assert again.read_bytes() == path.read_bytes(), path.name


def test_samples_are_small_and_gzip_is_real() -> None:
    total = sum(p.stat().st_size for p in LOGS.iterdir())
    assert total < 500_000
    gz = [p for p in LOGS.iterdir() if p.suffix == ".gz"]
    assert gz and all(p.read_bytes()[:2] == b"\x1f\x8b" for p in gz)


def test_every_file_parses_and_matches_the_manifest() -> None:
    assert set(EVENTS) == {p.name for p in LOGS.iterdir()}  # nothing but event files
    formats = {meta["format"] for meta in EXPECTED["files"].values()}
    assert formats == {"xml-events", "xml-lines", "winlogbeat", "nxlog", "falcon"}
    for name, events in EVENTS.items():
        meta = EXPECTED["files"][name]
        assert len(events) == meta["events"], name
        assert dict(Counter(f"{e.channel}:{e.event_id}" for e in events)) == meta["sources"]
        ids = [e.record_id for e in events if e.record_id is not None]
        assert len(ids) == len(set(ids)), f"{name}: duplicate record ids"
    assert len(ALL) == EXPECTED["total_events"]


def test_every_event_has_the_fields_its_source_needs() -> None:
    checked = Counter()
    for ev in ALL:
        if ev.channel == WMI and ev.userdata is None:  # NXLog: fields only in Message
            assert ev.message, f"{ev.file}:{ev.line}"
            for key in TEXT_KEYS[ev.event_id]:
                assert key in ev.message, f"{ev.file}:{ev.line} lacks {key!r}"
            checked[ev.key] += 1
            continue
        for name in REQUIRED.get(ev.key, ()):
            assert ev.fields.get(name) not in (None, ""), f"{ev.file}:{ev.line} lacks {name}"
        if ev.key == (FALCON, "ProcessRollup2") and ev.fields["UserSid"].startswith("S-1-5-21-"):
            assert ev.fields.get("UserName"), f"{ev.file}:{ev.line}"  # SYSTEM has only a SID
        if ev.key == (SECURITY, 4688) and ev.fields.get("ParentProcessName"):
            assert ev.fields.get("CommandLine") and ev.fields.get("MandatoryLabel")
        checked[ev.key] += 1
    assert set(REQUIRED) <= set(checked), set(REQUIRED) - set(checked)


def test_the_four_models_are_exercised() -> None:
    models = Counter(MODEL_OF.get(ev.key, "not_modelled") for ev in ALL)
    assert {"process_start", "wmi_activity", "script_block", "logon"} <= set(models)
    assert models["not_modelled"] > 0  # some noise must be counted as skipped
    expected = Counter()
    for meta in EXPECTED["files"].values():
        expected.update(meta["models"])
    assert dict(models) == dict(expected)


def test_expected_lists_every_detection_with_a_positive() -> None:
    dets = EXPECTED["detections"]
    assert sorted(dets, key=int) == [str(n) for n in range(1, 13)]
    for num, det in dets.items():
        assert det["count"] == len(det["matches"]) >= 1, num
        assert any(m["label"] in ("TP", "TP-cleanup") for m in det["matches"]), num
        for match in det["matches"]:
            ev = _find(match["file"], match["record_id"], match["line"])
            sources = DATA_SOURCE_OF_DETECTION.get(int(num), PROCESS_SOURCES)
            assert ev.key in sources, (num, match)


def test_expected_equals_the_literal_predicates_on_the_files() -> None:
    found: dict[int, set[tuple[str, int]]] = {n: set() for n in range(1, 13)}
    for ev in ALL:
        for n in literal(ev):
            found[n].add((ev.file, ev.line))
    for num, det in EXPECTED["detections"].items():
        assert found[int(num)] == {(m["file"], m["line"]) for m in det["matches"]}, num
    for entry in EXPECTED["must_not_fire"]:
        ev = _find(entry["file"], entry["record_id"], entry["line"])
        assert not literal(ev) & set(entry["resembles"]), entry


def test_the_story_look_alikes_are_there() -> None:
    """The near misses the spec asks for exist, and none of them fires what it resembles."""
    texts = {e["note"] for e in EXPECTED["must_not_fire"]}
    joined = " | ".join(texts)
    for needle in (
        "processcall",
        "'-node:'",
        "renamed wmic",
        "dismhost",
        "built-in",
        "not wmic",
        "Windows default binding",
        "default (WinRM)",
        "Invoke-WmiMethod",
    ):
        assert needle.lower() in joined.lower(), needle
    cmds = [(_process(ev) or ("", "", "", ""))[2] for ev in ALL]
    for needle in (
        "wmic  process call create",
        "WMIC.EXE  /NODE:",
        "-node:",
        "/node:@",
        "/format:list",
        "%node server%",
        'os get /format:"C:\\Users\\Public\\x.xsl"',
        '/node:localhost os get /FORMAT:"https://',
    ):
        assert any(needle in c for c in cmds), needle


def test_sysmon_process_tree_links_powershell_cmd_wmic() -> None:
    sysmon = [e for e in EVENTS["ws01_sysmon.xml"] if e.event_id == 1]
    by_guid = {e.fields["ProcessGuid"]: e for e in sysmon}
    chains = 0
    for ev in sysmon:
        if _basename(ev.fields["Image"]).lower() != "wmic.exe":
            continue
        parent = by_guid.get(ev.fields["ParentProcessGuid"])
        assert parent is not None, f"WMIC at line {ev.line} has no logged parent"
        assert parent.line < ev.line
        grand = by_guid.get(parent.fields["ParentProcessGuid"])
        if _basename(parent.fields["Image"]) == "cmd.exe" and grand is not None:
            assert _basename(grand.fields["Image"]) == "powershell.exe"
            assert ev.fields["CommandLine"].startswith(("wmic  ", "WMIC.EXE  "))
            chains += 1
    assert chains >= 5


def test_wmi_children_on_the_target_match_a_network_logon() -> None:
    srv = EVENTS["srv01_winlogbeat.jsonl"]
    logons = {
        e.fields["TargetLogonId"]: e
        for e in srv
        if e.key == (SECURITY, 4624) and e.fields["LogonType"] == "3"
    }
    wmiprvse = {
        e.fields["ProcessGuid"]
        for e in srv
        if e.key == (SYSMON, 1) and e.fields["Image"].endswith("WmiPrvSE.exe")
    }
    attacker_children = 0
    for ev in srv:
        if ev.key != (SYSMON, 1) or ev.fields["ParentProcessGuid"] not in wmiprvse:
            continue
        if ev.fields["User"] == "NT AUTHORITY\\SYSTEM":
            continue  # servicing (dismhost)
        logon = logons[ev.fields["LogonId"]]
        assert logon.line < ev.line
        if logon.fields["TargetUserName"] == "adm-svc":
            assert logon.fields["IpAddress"] in ("192.0.2.21", "192.0.2.22")
            attacker_children += 1
    assert attacker_children == 6
    whoami = [e for e in srv if e.key == (SYSMON, 1) and e.fields["Image"].endswith("whoami.exe")]
    assert whoami and whoami[0].fields["ParentImage"].endswith("cmd.exe")


def test_source_side_4648_names_the_target() -> None:
    explicit = [e for e in EVENTS["ws01_security.xml"] if e.event_id == 4648]
    assert any(
        e.fields["TargetServerName"] == "SRV01.examplecorp.test"
        and e.fields["ProcessName"].endswith("WMIC.exe")
        for e in explicit
    )


def test_old_4688_parents_are_earlier_new_process_ids() -> None:
    dc = [e for e in EVENTS["dc01_security.xml"] if e.event_id == 4688]
    assert all("ParentProcessName" not in e.fields and "CommandLine" not in e.fields for e in dc)
    assert all(re.fullmatch(r"0x[0-9a-f]+", e.fields["ProcessId"]) for e in dc)
    seen: dict[str, Event] = {}
    linked = []
    for ev in dc:
        parent = seen.get(ev.fields["ProcessId"])
        if parent is not None and parent.fields["NewProcessName"].endswith("WmiPrvSE.exe"):
            linked.append(_basename(ev.fields["NewProcessName"]))
        seen[ev.fields["NewProcessId"]] = ev
    assert sorted(linked) == ["cmd.exe", "mofcomp.exe"]


def test_falcon_ids_link_children_to_parents() -> None:
    falcon = EVENTS["ws02_falcon.jsonl.gz"]
    by_id = {e.fields["TargetProcessId"]: e for e in falcon}
    assert {e.event_id for e in falcon} == {"ProcessRollup2", "SyntheticProcessRollup2"}
    for ev in falcon:
        if ev.fields["ParentBaseFileName"] in ("WmiPrvSE.exe", "scrcons.exe", "WMIC.exe"):
            parent = by_id[ev.fields["ParentProcessId"]]
            assert _basename(parent.fields["ImageFileName"]) == ev.fields["ParentBaseFileName"]
        assert ev.fields["ImageFileName"].startswith("\\Device\\HarddiskVolume")
        assert ev.fields["IntegrityLevel"].isdigit()


def test_split_script_blocks() -> None:
    blocks: dict[str, list[Event]] = {}
    for ev in EVENTS["ws01_powershell.xml"]:
        blocks.setdefault(ev.fields["ScriptBlockId"], []).append(ev)
    three = [b for b in blocks.values() if b[0].fields["MessageTotal"] == "3"]
    assert len(three) == 1
    parts = sorted(three[0], key=lambda e: int(e.fields["MessageNumber"]))
    assert [e.fields["MessageNumber"] for e in parts] == ["1", "2", "3"]
    assert [("invoke-wmiexec" in e.fields["ScriptBlockText"].lower()) for e in parts] == [
        False,
        True,
        False,
    ]
    spanning = [b for b in blocks.values() if b[0].fields["MessageTotal"] == "2"]
    assert len(spanning) == 1
    texts = [
        e.fields["ScriptBlockText"]
        for e in sorted(spanning[0], key=lambda e: int(e.fields["MessageNumber"]))
    ]
    assert not any("invoke-wmiexec" in t.lower() for t in texts)
    assert "invoke-wmiexec" in "".join(texts).lower()


def test_sysmon_wmi_values_keep_sysmon_quoting() -> None:
    wmi = [e for e in ALL if e.key in {(SYSMON, 19), (SYSMON, 20), (SYSMON, 21)}]
    assert {e.fields["Operation"] for e in wmi} == {"Created", "Deleted"}
    for ev in wmi:
        for name in ("Name", "Destination", "Consumer", "Filter", "Query", "EventNamespace"):
            if name in ev.fields:
                assert ev.fields[name].startswith(' "') and ev.fields[name].endswith('"')
    destinations = [e.fields["Destination"] for e in wmi if "Destination" in e.fields]
    assert ' "C:\\\\Windows\\\\System32\\\\notepad.exe"' in destinations


def test_xml_escaping_and_fictional_addresses() -> None:
    raw = (LOGS / "ws01_security.xml").read_text(encoding="utf-8")
    assert "2&gt;&amp;1" in raw  # the command lines carry '2>&1'
    assert "2&gt;&amp;1" in (LOGS / "ws01_sysmon.xml").read_text(encoding="utf-8")
    assert "&gt;= 240" in (LOGS / "ws01_wmi_activity.xml").read_text(encoding="utf-8")
    allowed = [
        ipaddress.ip_network(n)
        for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "127.0.0.0/8")
    ]
    for name in EVENTS:
        text = "\n".join(_lines(LOGS / name))
        for ip in set(re.findall(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])", text)):
            addr = ipaddress.ip_address(ip)
            assert any(addr in net for net in allowed), f"{name}: {ip} is not a documentation IP"


def test_readme_counts_match_expected() -> None:
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\|\s*(\d{1,2})\s*\|[^|]*\|\s*(\d+)\s*\|", readme, re.M))
    assert {k: int(v) for k, v in rows.items()} == {
        k: d["count"] for k, d in EXPECTED["detections"].items()
    }


# ------------------------------------------------------------------- the real scan


def _engine_findings() -> list[dict[str, Any]]:
    """Ingest samples/logs, run the story rules, return findings as JSONL-shaped dicts."""
    from wmihunt import detect, findings, ingest, store
    from wmihunt.rules.loader import load_story

    con = store.connect()
    try:
        scan = ingest.ingest_paths([str(LOGS)], con, workers=1)
        assert scan.totals()["rejected"] == 0, scan.to_dict()
        result = detect.run_detections(con, load_story())
        assert not result.errors, result.errors
        return [findings.finding_to_json(row) for row in findings.fetch_findings(con)]
    finally:
        con.close()


def _cli_findings(tmp_path: Path) -> list[dict[str, Any]]:
    """``wmihunt scan samples/logs --format jsonl -o FILE`` (docs/output.md)."""
    from wmihunt.cli import main

    out = tmp_path / "findings.jsonl"
    try:
        code = main(["scan", str(LOGS), "--format", "jsonl", "-o", str(out)])
    except SystemExit as exc:  # argparse errors exit with 2
        code = exc.code
    assert code != 2, "wmihunt scan rejected '--format jsonl -o FILE' (docs/output.md)"
    assert out.exists(), f"wmihunt scan exited {code} without writing {out}"
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line]


def _same(evidence: dict[str, Any], ref: tuple[str, int | None, int | None]) -> bool:
    """Does a finding's evidence point at the expected event (file + record id, or line)?"""
    if _basename(evidence.get("file")) != ref[0]:
        return False
    if evidence.get("record_id") is not None and ref[1] is not None:
        return evidence["record_id"] == ref[1]
    return evidence.get("line") == ref[2]


def _assert_matches_expected(findings: list[dict[str, Any]]) -> None:
    """Every literal match is found once; extras only where EXPECTED allows (not_literal)."""
    by_id = {d["upstream_id"]: int(n) for n, d in EXPECTED["detections"].items()}
    beyond: dict[int, list[tuple[str, int | None, int | None]]] = {n: [] for n in range(1, 13)}
    for entry in EXPECTED["not_literal"]:
        for n in entry["detections"]:
            beyond[n].append((entry["file"], entry["record_id"], entry["line"]))
    got: dict[int, list[dict[str, Any]]] = {n: [] for n in range(1, 13)}
    for finding in findings:
        n = by_id.get(finding["detection_id"])
        if n is not None:
            got[n].append(finding["evidence"])
    for num, det in EXPECTED["detections"].items():
        n = int(num)
        refs = [(m["file"], m["record_id"], m["line"]) for m in det["matches"]]
        missing = [r for r in refs if not any(_same(ev, r) for ev in got[n])]
        assert not missing, f"detection {n} missed {missing}"
        extra = [ev for ev in got[n] if not any(_same(ev, r) for r in refs)]
        unexplained = [ev for ev in extra if not any(_same(ev, r) for r in beyond[n])]
        assert not unexplained, f"detection {n} fired on look-alikes: {unexplained}"
        assert len(got[n]) - len(extra) == det["count"], f"detection {n}: duplicate findings"


def test_engine_findings_on_the_samples_match_expected() -> None:
    _assert_matches_expected(_engine_findings())


def test_scan_command_on_the_samples_matches_expected(tmp_path: Path) -> None:
    _assert_matches_expected(_cli_findings(tmp_path))
