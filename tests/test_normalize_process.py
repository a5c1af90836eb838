"""Process starts: Sysmon 1, Security 4688 (both shapes), CrowdStrike (Synthetic)ProcessRollup2.

Fixture values are invented for these tests, shaped like the real sources.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from wmihunt.events import CROWDSTRIKE_CHANNEL, RawEvent
from wmihunt.models import PROCESS_START
from wmihunt.normalize import normalize

SYSMON = "Microsoft-Windows-Sysmon/Operational"


def row_of(event: RawEvent) -> dict[str, Any]:
    result = normalize(event)
    assert result is not None
    table, row = result
    assert table == "process_start"
    assert set(row) <= set(PROCESS_START.column_names)
    pa.Table.from_pylist([row], schema=PROCESS_START.arrow_schema)  # types fit the columns
    return row


def test_sysmon_1() -> None:
    event = RawEvent(
        channel=SYSMON,
        event_id=1,
        provider="Microsoft-Windows-Sysmon",
        computer="ws07.corp.example",
        time="2023-05-06T10:11:12.987654300Z",
        record_id=9911,
        user_sid="S-1-5-18",
        file="/logs/sysmon.evtx",
        data={
            "RuleName": "-",
            "UtcTime": "2023-05-06 10:11:12.980",
            "ProcessGuid": "{11111111-2222-3333-4444-555555555555}",
            "ProcessId": "4410",
            "Image": "C:\\Windows\\System32\\wbem\\WMIC.exe",
            "OriginalFileName": "wmic.exe",
            "CommandLine": 'wmic /node:"10.1.2.3" process call create "cmd /c whoami"',
            "CurrentDirectory": "C:\\Users\\bob\\",
            "User": "CORP\\bob",
            "LogonId": "0x5a3f1",
            "IntegrityLevel": "Medium",
            "Hashes": "SHA256=ABCDEF",
            "ParentProcessGuid": "{11111111-2222-3333-4444-000000000001}",
            "ParentProcessId": 3308,
            "ParentImage": "C:\\Windows\\System32\\cmd.exe",
            "ParentCommandLine": '"C:\\Windows\\system32\\cmd.exe" ',
        },
    )
    row = row_of(event)
    assert row["time"] == datetime(2023, 5, 6, 10, 11, 12, 980000)  # UtcTime wins
    assert row["dest"] == "ws07.corp.example"
    assert row["user"] == "CORP\\bob"
    assert row["user_id"] is None  # Sysmon 1 has no SID of the process user
    assert row["data_source"] == "sysmon"
    assert row["process"] == 'wmic /node:"10.1.2.3" process call create "cmd /c whoami"'
    assert row["process_path"] == "C:\\Windows\\System32\\wbem\\WMIC.exe"
    assert row["process_name"] == "WMIC.exe"
    assert row["original_file_name"] == "wmic.exe"
    assert row["process_id"] == 4410
    assert row["process_guid"] == "{11111111-2222-3333-4444-555555555555}"
    assert row["parent_process"] == '"C:\\Windows\\system32\\cmd.exe" '
    assert row["parent_process_path"] == "C:\\Windows\\System32\\cmd.exe"
    assert row["parent_process_name"] == "cmd.exe"
    assert row["parent_process_id"] == 3308
    assert row["parent_process_guid"] == "{11111111-2222-3333-4444-000000000001}"
    assert row["logon_id"] == "0x5a3f1"
    assert row["integrity_level"] == "Medium"
    assert row["current_directory"] == "C:\\Users\\bob\\"
    assert row["hashes"] == "SHA256=ABCDEF"
    assert row["event_id"] == "1"
    assert row["channel"] == SYSMON
    assert row["provider"] == "Microsoft-Windows-Sysmon"
    assert row["ev_record_id"] == 9911
    assert row["uid"] == "/logs/sysmon.evtx||9911"


def test_sysmon_1_without_utctime_uses_system_time() -> None:
    event = RawEvent(
        channel=SYSMON,
        event_id=1,
        data={"Image": "C:\\x\\a.exe"},
        time="2023-05-06T10:11:12.5Z",
        file="f",
        record_id=1,
    )
    row = row_of(event)
    assert row["time"] == datetime(2023, 5, 6, 10, 11, 12, 500000)
    assert row["process"] is None  # missing command line is NULL
    assert row["user"] is None


def _4688_new() -> RawEvent:
    """Windows 10+ shape: ParentProcessName, Target*, MandatoryLabel."""
    return RawEvent(
        channel="Security",
        event_id=4688,
        provider="Microsoft-Windows-Security-Auditing",
        computer="srv02.corp.example",
        time="2024-02-03T04:05:06.1234567Z",
        record_id=70001,
        file="sec.evtx",
        data={
            "SubjectUserSid": "S-1-5-20",
            "SubjectUserName": "SRV02$",
            "SubjectDomainName": "CORP",
            "SubjectLogonId": "0x3e4",
            "NewProcessId": "0x1a2c",
            "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
            "TokenElevationType": "%%1936",
            "ProcessId": "0xe10",
            "CommandLine": "cmd.exe /Q /c echo 1 > \\\\127.0.0.1\\ADMIN$\\__out 2>&1",
            "TargetUserSid": "S-1-5-21-100-200-300-1105",
            "TargetUserName": "carol",
            "TargetDomainName": "CORP",
            "TargetLogonId": "0x77aa1",
            "ParentProcessName": "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
            "MandatoryLabel": "S-1-16-12288",
        },
    )


def test_4688_new_shape() -> None:
    row = row_of(_4688_new())
    assert row["time"] == datetime(2024, 2, 3, 4, 5, 6, 123456)
    assert row["dest"] == "srv02.corp.example"
    assert row["data_source"] == "security"
    assert row["user"] == "CORP\\SRV02$"  # the subject, as upstream
    assert row["user_id"] == "S-1-5-20"
    assert row["target_user"] == "CORP\\carol"  # the account the process runs as
    assert row["target_logon_id"] == "0x77aa1"
    assert row["logon_id"] == "0x3e4"
    assert row["process_id"] == 0x1A2C == 6700
    assert row["parent_process_id"] == 0xE10 == 3600
    assert row["process_path"] == "C:\\Windows\\System32\\cmd.exe"
    assert row["process_name"] == "cmd.exe"
    assert row["parent_process_path"] == "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe"
    assert row["parent_process_name"] == "WmiPrvSE.exe"
    assert row["process"].startswith("cmd.exe /Q /c echo 1")
    assert row["integrity_level"] == "S-1-16-12288"
    assert row["token_elevation_type"] == "%%1936"
    assert row.get("parent_process") is None  # 4688 has no parent command line
    assert row.get("original_file_name") is None


def test_4688_without_target_account() -> None:
    event = _4688_new()
    event.data.update(
        TargetUserSid="NULL SID", TargetUserName="-", TargetDomainName="-", TargetLogonId="0x0"
    )
    event.data["MandatoryLabel"] = "Mandatory Label\\High Mandatory Level"
    row = row_of(event)
    assert row["target_user"] is None
    assert row["target_logon_id"] is None
    assert row["integrity_level"] == "Mandatory Label\\High Mandatory Level"


def test_4688_old_shape_without_parent_name_or_command_line() -> None:
    """2008R2/2012: no ParentProcessName, no Target*, and here no CommandLine at all."""
    event = RawEvent(
        channel="Security",
        event_id=4688,
        computer="legacy01.corp.example",
        time="2016-07-08T09:10:11.000000Z",
        record_id=12,
        file="old.evtx",
        data={
            "SubjectUserSid": "S-1-5-18",
            "SubjectUserName": "LEGACY01$",
            "SubjectDomainName": "CORP",
            "SubjectLogonId": "0x3e7",
            "NewProcessId": "0x9c4",
            "NewProcessName": "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
            "TokenElevationType": "%%1936",
            "ProcessId": "0x25c",
        },
    )
    row = row_of(event)
    assert row["process_id"] == 2500
    assert row["parent_process_id"] == 604
    assert row["process_name"] == "WmiPrvSE.exe"
    assert row["process"] is None
    assert row["parent_process_path"] is None
    assert row["parent_process_name"] is None
    assert row["target_user"] is None
    assert row["user"] == "CORP\\LEGACY01$"


def test_4688_empty_command_line_stays_empty() -> None:
    event = _4688_new()
    event.data["CommandLine"] = ""
    assert row_of(event)["process"] == ""


def test_4688_subject_sid_rendered_as_name() -> None:
    """Splunk-rendered XML may carry a name in SubjectUserSid; it is not a SID."""
    event = _4688_new()
    event.data.update(SubjectUserSid="NT AUTHORITY\\SYSTEM", SubjectUserName="-")
    row = row_of(event)
    assert row["user"] == "NT AUTHORITY\\SYSTEM"
    assert row["user_id"] is None


def test_4688_nxlog_lowercase_channel_and_hostname() -> None:
    event = _4688_new()
    event.channel = "security"
    event.computer = None
    event.data.update(Hostname="srv02.corp.example", SourceModuleType="im_msvistalog")
    event.data["CommandLine"] = "cmd /c type a.txt &gt; b.txt &amp;&amp; exit"
    row = row_of(event)
    assert row["dest"] == "srv02.corp.example"
    assert row["process"] == "cmd /c type a.txt > b.txt && exit"


_FALCON = {
    "event_simpleName": "ProcessRollup2",
    "timestamp": "1700000000123",
    "ProcessStartTime": "1699999999.500",
    "aid": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "ComputerName": "LAPTOP-17",
    "UserSid": "S-1-5-21-111-222-333-1001",
    "UserName": "dave",
    "CommandLine": '"C:\\Windows\\System32\\scrcons.exe" -Embedding',
    "ImageFileName": "\\Device\\HarddiskVolume2\\Windows\\System32\\scrcons.exe",
    "RawProcessId": "7720",
    "TargetProcessId": "4401122334",
    "ParentProcessId": "4401100000",
    "ParentBaseFileName": "svchost.exe",
    "AuthenticationId": "999",
    "IntegrityLevel": "16384",
    "MD5HashData": "d41d8cd98f00b204e9800998ecf8427e",
    "SHA1HashData": "0000000000000000000000000000000000000000",
    "SHA256HashData": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
}


def test_crowdstrike_process_rollup2() -> None:
    event = RawEvent(
        channel=CROWDSTRIKE_CHANNEL,
        event_id="ProcessRollup2",
        data=dict(_FALCON),
        file="fdr.json",
        line=3,
    )
    row = row_of(event)
    assert row["time"] == datetime(2023, 11, 14, 22, 13, 20, 123000)  # epoch ms
    assert row["dest"] == "LAPTOP-17"
    assert row["user"] == "dave"
    assert row["user_id"] == "S-1-5-21-111-222-333-1001"
    assert row["data_source"] == "crowdstrike"
    assert row["event_id"] == "ProcessRollup2"
    assert row["process_path"] == "\\Device\\HarddiskVolume2\\Windows\\System32\\scrcons.exe"
    assert row["process_name"] == "scrcons.exe"
    assert row["process"] == '"C:\\Windows\\System32\\scrcons.exe" -Embedding'
    assert row["process_id"] == 7720
    assert row["process_guid"] == "4401122334"
    assert row["parent_process_guid"] == "4401100000"
    assert row.get("parent_process_id") is None  # a Falcon id is not an OS pid
    assert row["parent_process_name"] == "svchost.exe"
    assert row.get("parent_process_path") is None
    assert row["logon_id"] == "999"
    assert row["integrity_level"] == "16384"
    assert row["hashes"] == (
        "MD5=d41d8cd98f00b204e9800998ecf8427e,"
        "SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert row["uid"] == "fdr.json||L3"
    assert row["ev_line"] == 3
    assert row["ev_record_id"] is None


def test_crowdstrike_synthetic_rollup_fallbacks() -> None:
    """No ComputerName/UserName/timestamp: aid, UserSid and ProcessStartTime stand in."""
    data = dict(_FALCON, event_simpleName="SyntheticProcessRollup2")
    for key in ("ComputerName", "UserName", "timestamp"):
        del data[key]
    event = RawEvent(
        channel=CROWDSTRIKE_CHANNEL, event_id="SyntheticProcessRollup2", data=data, file="s.json"
    )
    row = row_of(event)
    assert row["dest"] == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert row["user"] == "S-1-5-21-111-222-333-1001"
    assert row["user_id"] == "S-1-5-21-111-222-333-1001"
    assert row["time"] == datetime(2023, 11, 14, 22, 13, 19, 500000)  # epoch seconds
    assert row["event_id"] == "SyntheticProcessRollup2"
    assert row["process_name"] == "scrcons.exe"


def test_crowdstrike_aid_computer_name() -> None:
    data = dict(_FALCON)
    del data["ComputerName"]
    data["aid_computer_name"] = "LAPTOP-18"
    event = RawEvent(channel=CROWDSTRIKE_CHANNEL, event_id="ProcessRollup2", data=data)
    assert row_of(event)["dest"] == "LAPTOP-18"


def test_oversized_command_line_is_kept_whole() -> None:
    event = _4688_new()
    event.data["CommandLine"] = "powershell -enc " + "A" * 1_000_000
    assert len(row_of(event)["process"]) == 1_000_016
