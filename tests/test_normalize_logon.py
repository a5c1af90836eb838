"""Logons (Security 4624, 4648) and PowerShell script blocks (4104).

Fixture values are invented for these tests, shaped like the real sources.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from wmihunt.events import RawEvent
from wmihunt.models import MODELS
from wmihunt.normalize import normalize


def row_of(event: RawEvent, table: str) -> dict[str, Any]:
    result = normalize(event)
    assert result is not None
    assert result[0] == table
    row = result[1]
    assert set(row) <= set(MODELS[table].column_names)
    pa.Table.from_pylist([row], schema=MODELS[table].arrow_schema)
    return row


def test_4624_network_logon() -> None:
    event = RawEvent(
        channel="Security",
        event_id=4624,
        provider="Microsoft-Windows-Security-Auditing",
        computer="srv30.lab.example",
        time="2022-03-04T05:06:07.080910Z",
        record_id=4242,
        file="sec.evtx",
        data={
            "SubjectUserSid": "S-1-0-0",
            "SubjectUserName": "-",
            "SubjectDomainName": "-",
            "SubjectLogonId": "0x0",
            "TargetUserSid": "S-1-5-21-5-6-7-1300",
            "TargetUserName": "judy",
            "TargetDomainName": "LAB",
            "TargetLogonId": "0x9f0e1",
            "LogonType": 3,
            "LogonProcessName": "NtLmSsp ",
            "AuthenticationPackageName": "NTLM",
            "WorkstationName": "ATTACKER-PC",
            "ProcessId": "0x0",
            "ProcessName": "-",
            "IpAddress": "10.20.30.40",
            "IpPort": "50123",
        },
    )
    row = row_of(event, "logon")
    assert row["time"] == datetime(2022, 3, 4, 5, 6, 7, 80910)
    assert row["data_source"] == "security"
    assert row["logon_type"] == 3
    assert row["user"] == row["target_user"] == "LAB\\judy"
    assert row["user_id"] == row["target_user_sid"] == "S-1-5-21-5-6-7-1300"
    assert row["target_logon_id"] == "0x9f0e1"
    assert row["subject_user"] is None
    assert row["subject_logon_id"] == "0x0"
    assert row["src_ip"] == "10.20.30.40"
    assert row["src_port"] == 50123
    assert row["src_workstation"] == "ATTACKER-PC"
    assert row["logon_process"] == "NtLmSsp"
    assert row["auth_package"] == "NTLM"
    assert row["process_name"] is None
    assert row["process_id"] == 0


def test_4624_placeholders_and_text_logon_type() -> None:
    event = RawEvent(
        channel="security",
        event_id="4624",
        data={
            "LogonType": "5",
            "TargetUserName": "SYSTEM",
            "TargetDomainName": "NT AUTHORITY",
            "TargetUserSid": "S-1-5-18",
            "IpAddress": "-",
            "IpPort": "-",
            "WorkstationName": "-",
            "ProcessName": "C:\\Windows\\System32\\services.exe",
            "ProcessId": "0x2d0",
        },
    )
    row = row_of(event, "logon")
    assert row["logon_type"] == 5
    assert row["src_ip"] is None
    assert row["src_port"] is None
    assert row["src_workstation"] is None
    assert row["process_name"] == "C:\\Windows\\System32\\services.exe"
    assert row["process_id"] == 720
    assert row["event_id"] == "4624"


def test_4648_explicit_credentials() -> None:
    event = RawEvent(
        channel="Security",
        event_id=4648,
        computer="ws40.lab.example",
        time="2022-03-04T05:06:00Z",
        record_id=77,
        file="sec.evtx",
        data={
            "SubjectUserSid": "S-1-5-21-5-6-7-1400",
            "SubjectUserName": "kim",
            "SubjectDomainName": "LAB",
            "SubjectLogonId": "0x1b2c3",
            "TargetUserName": "admin2",
            "TargetDomainName": "LAB.EXAMPLE",
            "TargetServerName": "srv30.lab.example",
            "TargetInfo": "RPCSS/srv30.lab.example",
            "ProcessId": "0x3a0",
            "ProcessName": "C:\\Windows\\System32\\wbem\\WMIC.exe",
            "IpAddress": "-",
            "IpPort": "-",
        },
    )
    row = row_of(event, "logon")
    assert row["user"] == row["target_user"] == "LAB.EXAMPLE\\admin2"
    assert row["user_id"] is None
    assert row["subject_user"] == "LAB\\kim"
    assert row["subject_logon_id"] == "0x1b2c3"
    assert row["target_server"] == "srv30.lab.example"
    assert row["target_info"] == "RPCSS/srv30.lab.example"
    assert row["process_name"] == "C:\\Windows\\System32\\wbem\\WMIC.exe"
    assert row["process_id"] == 928
    assert row["src_ip"] is None
    assert row["logon_type"] is None


def test_4104_script_block_part() -> None:
    text = "function Invoke-WMIExec {\n  param($Target)\n  # part 2 of 3\n"
    event = RawEvent(
        channel="Microsoft-Windows-PowerShell/Operational",
        event_id=4104,
        provider="Microsoft-Windows-PowerShell",
        computer="ws41.lab.example",
        time="2022-05-06T07:08:09.101112131Z",
        record_id=31337,
        user_sid="S-1-5-21-5-6-7-1500",
        file="ps.evtx",
        data={
            "MessageNumber": "2",
            "MessageTotal": 3,
            "ScriptBlockText": text,
            "ScriptBlockId": "0b0c0d0e-1111-2222-3333-444455556666",
            "Path": "C:\\Users\\lee\\Invoke-WMIExec.ps1",
        },
    )
    row = row_of(event, "script_block")
    assert row["time"] == datetime(2022, 5, 6, 7, 8, 9, 101112)
    assert row["data_source"] == "powershell"
    assert row["dest"] == "ws41.lab.example"
    assert row["user"] == row["user_id"] == "S-1-5-21-5-6-7-1500"
    assert row["script_block_text"] == text
    assert row["script_block_id"] == "0b0c0d0e-1111-2222-3333-444455556666"
    assert row["message_number"] == 2
    assert row["message_total"] == 3
    assert row["path"] == "C:\\Users\\lee\\Invoke-WMIExec.ps1"


def test_4104_nxlog_user_and_escapes() -> None:
    event = RawEvent(
        channel="Microsoft-Windows-PowerShell/Operational",
        event_id=4104,
        time="2022-05-06T07:08:09Z",
        file="nx.json",
        line=9,
        data={
            "SourceModuleType": "im_msvistalog",
            "Hostname": "ws42",
            "UserID": "S-1-5-21-5-6-7-1600",
            "ScriptBlockText": "&lt;# help #&gt; if ($a -and $b) { &amp; $c }",
            "MessageNumber": "1",
            "MessageTotal": "1",
            "Path": "",
        },
    )
    row = row_of(event, "script_block")
    assert row["dest"] == "ws42"
    assert row["user"] == row["user_id"] == "S-1-5-21-5-6-7-1600"
    assert row["script_block_text"] == "<# help #> if ($a -and $b) { & $c }"
    assert row["path"] is None
