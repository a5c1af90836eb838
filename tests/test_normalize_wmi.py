"""WMI subscription activity: Sysmon 19/20/21 and WMI-Activity/Operational 5857-5861.

Fixture values are invented for these tests, shaped like the real sources (EVTX/XML
structured fields, and NXLog/Splunk-classic events that only carry the message text).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest

from wmihunt.events import RawEvent
from wmihunt.models import WMI_ACTIVITY
from wmihunt.normalize import normalize
from wmihunt.normalize.fields import sysmon_escape
from wmihunt.normalize.wmi import parse_sysmon_message

SYSMON = "Microsoft-Windows-Sysmon/Operational"
WMI = "Microsoft-Windows-WMI-Activity/Operational"


def row_of(event: RawEvent) -> dict[str, Any]:
    result = normalize(event)
    assert result is not None
    table, row = result
    assert table == "wmi_activity"
    assert set(row) <= set(WMI_ACTIVITY.column_names)
    pa.Table.from_pylist([row], schema=WMI_ACTIVITY.arrow_schema)
    return row


def sysmon(event_id: int, data: dict[str, Any], **kw: Any) -> RawEvent:
    base = dict(
        channel=SYSMON,
        event_id=event_id,
        provider="Microsoft-Windows-Sysmon",
        computer="ws11.lab.example",
        time="2022-08-09T10:00:00.000000Z",
        record_id=501,
        user_sid="S-1-5-18",
        file="sysmon.evtx",
    )
    base.update(kw)
    return RawEvent(data=data, **base)


# --- Sysmon 19/20/21, structured ---------------------------------------------------------


def test_sysmon_19_filter() -> None:
    row = row_of(
        sysmon(
            19,
            {
                "RuleName": "",
                "EventType": "WmiFilterEvent",
                "UtcTime": "2022-08-09 09:59:58.250",
                "Operation": "Created",
                "User": "LAB\\erin",
                "EventNamespace": ' "root\\\\cimv2"',
                "Name": ' "UpdCheck"',
                "Query": ' "SELECT * FROM __InstanceModificationEvent WITHIN 30 WHERE '
                "TargetInstance ISA 'Win32_LocalTime' AND TargetInstance.Hour = 3\"",
            },
        )
    )
    assert row["kind"] == "filter"
    assert row["data_source"] == "sysmon"
    assert row["time"] == datetime(2022, 8, 9, 9, 59, 58, 250000)
    assert row["operation"] == "Created"
    assert row["user"] == "LAB\\erin"
    assert row["namespace"] == "root\\cimv2"
    assert row["name_raw"] == ' "UpdCheck"'
    assert row["name"] == "UpdCheck"
    assert row["query"] == (
        "SELECT * FROM __InstanceModificationEvent WITHIN 30 WHERE "
        "TargetInstance ISA 'Win32_LocalTime' AND TargetInstance.Hour = 3"
    )
    assert row["query_raw"].startswith(' "SELECT')
    assert row["message"] is None


def test_sysmon_20_consumer_raw_and_cleaned() -> None:
    payload = 'C:\\Users\\Public\\run.vbs "arg one"'
    row = row_of(
        sysmon(
            20,
            {
                "EventType": "WmiConsumerEvent",
                "UtcTime": "2022-08-09 09:59:59.001",
                "Operation": "Modified",
                "User": "LAB\\erin",
                "Name": ' "UpdCheck"',
                "Type": "Command Line",
                "Destination": sysmon_escape(payload),
            },
        )
    )
    assert row["kind"] == "consumer"
    assert row["operation"] == "Modified"
    assert row["consumer_type"] == "Command Line"
    assert row["destination_raw"] == ' "C:\\\\Users\\\\Public\\\\run.vbs \\"arg one\\""'
    assert row["destination"] == payload
    assert row["name"] == "UpdCheck"


def test_sysmon_20_script_consumer_keeps_multiline_payload() -> None:
    script = 'Set s = CreateObject("WScript.Shell")\r\ns.Run "calc.exe"\r\n'
    row = row_of(
        sysmon(
            20,
            {
                "Operation": "Created",
                "User": "LAB\\erin",
                "Name": ' "Tick"',
                "Type": "Script",
                "Destination": sysmon_escape(script),
            },
        )
    )
    assert row["consumer_type"] == "Script"
    assert row["destination"] == script


def test_sysmon_21_binding() -> None:
    row = row_of(
        sysmon(
            21,
            {
                "EventType": "WmiBindingEvent",
                "UtcTime": "2022-08-09 10:00:00.500",
                "Operation": "Created",
                "User": "LAB\\erin",
                "Consumer": ' "\\\\\\\\.\\\\ROOT\\\\subscription:CommandLineEventConsumer'
                '.Name=\\"UpdCheck\\""',
                "Filter": ' "__EventFilter.Name=\\"UpdCheck\\""',
            },
        )
    )
    assert row["kind"] == "binding"
    assert row["consumer"] == ('\\\\.\\ROOT\\subscription:CommandLineEventConsumer.Name="UpdCheck"')
    assert row["consumer_raw"].startswith(' "\\\\\\\\.')
    assert row["filter"] == '__EventFilter.Name="UpdCheck"'
    assert row["filter_raw"] == ' "__EventFilter.Name=\\"UpdCheck\\""'
    assert row["user"] == "LAB\\erin"
    assert row["user_id"] is None


def test_sysmon_20_nxlog_structured_keeps_escapes_raw_and_decodes_cleaned() -> None:
    event = sysmon(
        20,
        {
            "SourceModuleType": "im_msvistalog",
            "Hostname": "ws12.lab.example",
            "UtcTime": "2022-08-09 10:00:01.000",
            "Operation": "Created",
            "User": "LAB\\frank",
            "Name": ' "Nightly"',
            "Type": "Command Line",
            "Destination": ' "cmd /c a.exe &gt; out.txt &amp; del &quot;x&quot;"',
        },
        computer=None,
        record_id=None,
        line=17,
        file="nxlog.json",
    )
    row = row_of(event)
    assert row["dest"] == "ws12.lab.example"
    assert row["destination_raw"] == ' "cmd /c a.exe &gt; out.txt &amp; del &quot;x&quot;"'
    assert row["destination"] == 'cmd /c a.exe > out.txt & del "x"'
    assert row["uid"] == "nxlog.json||L17"


# --- Sysmon 19/20/21 from the message text only (NXLog) ---------------------------------

_MSG_20 = (
    "WmiEventConsumer activity detected:\r\n"
    "RuleName: \r\n"
    "EventType: WmiConsumerEvent\r\n"
    "UtcTime: 2021-01-02 03:04:05.678\r\n"
    "Operation: Created\r\n"
    "User: LAB\\gina\r\n"
    'Name:  "Beacon Keeper"\r\n'
    "Type: Command Line\r\n"
    'Destination:  "powershell -nop -w hidden -c \\"iex (gc C:\\\\t\\\\b.txt)\\" <x>"'
)


def test_sysmon_20_from_message_text_only() -> None:
    event = sysmon(
        20,
        {"SourceModuleType": "im_msvistalog", "Hostname": "ws13", "Message": _MSG_20},
        computer=None,
        time="2021-01-02T03:04:06.000Z",
    )
    row = row_of(event)
    assert row["kind"] == "consumer"
    assert row["time"] == datetime(2021, 1, 2, 3, 4, 5, 678000)
    assert row["operation"] == "Created"
    assert row["user"] == "LAB\\gina"
    assert row["name_raw"] == ' "Beacon Keeper"'
    assert row["name"] == "Beacon Keeper"
    assert row["consumer_type"] == "Command Line"
    # rendered text has no XML escapes: "<x>" stays as written
    assert row["destination"] == 'powershell -nop -w hidden -c "iex (gc C:\\t\\b.txt)" <x>'
    assert row["message"] == _MSG_20


def test_sysmon_20_message_in_raw_event_message() -> None:
    event = sysmon(20, {}, message=_MSG_20)
    row = row_of(event)
    assert row["name"] == "Beacon Keeper"
    assert row["message"] == _MSG_20


def test_sysmon_19_and_21_from_message_text_only() -> None:
    msg_19 = (
        "WmiEventFilter activity detected:\r\nRuleName: \r\nEventType: WmiFilterEvent\r\n"
        "UtcTime: 2021-01-02 03:04:05.000\r\nOperation: Created\r\nUser: LAB\\gina\r\n"
        'EventNamespace:  "root\\\\cimv2"\r\nName:  "Beacon Keeper"\r\n'
        "Query:  \"SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName='calc.exe'\""
    )
    row = row_of(sysmon(19, {"Message": msg_19}))
    assert row["namespace"] == "root\\cimv2"
    assert row["name"] == "Beacon Keeper"
    assert row["query"] == "SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName='calc.exe'"

    msg_21 = (
        "WmiEventConsumerToFilter activity detected:\r\nRuleName: \r\n"
        "EventType: WmiBindingEvent\r\nUtcTime: 2021-01-02 03:04:06.000\r\n"
        "Operation: Created\r\nUser: LAB\\gina\r\n"
        'Consumer:  "CommandLineEventConsumer.Name=\\"Beacon Keeper\\""\r\n'
        'Filter:  "__EventFilter.Name=\\"Beacon Keeper\\""'
    )
    row = row_of(sysmon(21, {"Message": msg_21}))
    assert row["kind"] == "binding"
    assert row["consumer"] == 'CommandLineEventConsumer.Name="Beacon Keeper"'
    assert row["filter"] == '__EventFilter.Name="Beacon Keeper"'
    assert row["operation"] == "Created"


def test_parse_sysmon_message_keeps_multiline_values_and_template_order() -> None:
    text = (
        "WmiEventConsumer activity detected:\nOperation: Created\nUser: U\n"
        'Name:  "n"\nType: Script\nDestination:  "line1\nUser: not-a-key\nline3"'
    )
    keys = ("RuleName", "EventType", "UtcTime", "Operation", "User", "Name", "Type", "Destination")
    parsed = parse_sysmon_message(text, keys)
    assert parsed["User"] == "U"
    assert parsed["Destination"] == ' "line1\nUser: not-a-key\nline3"'
    assert "RuleName" not in parsed


def test_sysmon_20_without_any_field_is_still_a_row() -> None:
    """Detection 1 counts every event 20, so an empty one is kept, not rejected."""
    row = row_of(sysmon(20, {}))
    assert row["kind"] == "consumer"
    assert row["destination"] is None
    assert row["user"] == "S-1-5-18"  # falls back to the System UserID
    assert row["time"] == datetime(2022, 8, 9, 10, 0)


# --- WMI-Activity, structured (UserData) ----------------------------------------------------


def wmi(event_id: int, data: dict[str, Any], **kw: Any) -> RawEvent:
    base = dict(
        channel=WMI,
        event_id=event_id,
        provider="Microsoft-Windows-WMI-Activity",
        computer="srv21.lab.example",
        time="2022-10-11T12:13:14.151617Z",
        record_id=88,
        user_sid="S-1-5-18",
        file="wmi.evtx",
    )
    base.update(kw)
    return RawEvent(data=data, **base)


def test_5857_provider_structured() -> None:
    row = row_of(
        wmi(
            5857,
            {
                "ProviderName": "MSVDS__PROVIDER",
                "Code": "0x0",
                "HostProcess": "wmiprvse.exe",
                "ProcessID": 3012,
                "ProviderPath": "%systemroot%\\system32\\wbem\\vdswmi.dll",
            },
            userdata_element="Operation_StartedOperational",
            user_sid="S-1-5-20",
        )
    )
    assert row["kind"] == "provider"
    assert row["data_source"] == "wmi_activity"
    assert row["provider_name"] == "MSVDS__PROVIDER"
    assert row["host_process"] == "wmiprvse.exe"
    assert row["client_process_id"] == 3012
    assert row["provider_path"] == "%systemroot%\\system32\\wbem\\vdswmi.dll"
    assert row["user"] == "S-1-5-20"
    assert row["user_id"] == "S-1-5-20"
    assert row["message"] is None
    assert row["time"] == datetime(2022, 10, 11, 12, 13, 14, 151617)


def test_5857_provider_text() -> None:
    text = (
        "SampleProv provider started with result code 0x0. HostProcess = wmiprvse.exe; "
        "ProcessID = 4410; ProviderPath = C:\\Windows\\System32\\wbem\\sample.dll"
    )
    row = row_of(wmi(5857, {}, message=text))
    assert row["provider_name"] == "SampleProv"
    assert row["host_process"] == "wmiprvse.exe"
    assert row["client_process_id"] == 4410
    assert row["provider_path"] == "C:\\Windows\\System32\\wbem\\sample.dll"
    assert row["message"] == text


def test_5858_client_failure_structured() -> None:
    row = row_of(
        wmi(
            5858,
            {
                "Id": "{00000000-0000-0000-0000-000000000000}",
                "ClientMachine": "SRV21",
                "User": "LAB\\henry",
                "ClientProcessId": 6120,
                "Component": "Unknown",
                "Operation": "Start IWbemServices::ExecQuery - root\\cimv2 : select * from X",
                "ResultCode": "0x80041010",
                "PossibleCause": "Unknown",
            },
        )
    )
    assert row["kind"] == "other"
    assert row["user"] == "LAB\\henry"
    assert row["user_id"] is None
    assert row["client_machine"] == "SRV21"
    assert row["client_process_id"] == 6120
    assert row["operation"] == "Start IWbemServices::ExecQuery - root\\cimv2 : select * from X"
    assert row["possible_cause"] == "Unknown"
    assert "ResultCode = 0x80041010" in row["message"]


def test_5859_permanent_structured_and_text() -> None:
    row = row_of(
        wmi(
            5859,
            {
                "NamespaceName": "//./root/CIMV2",
                "Query": "select * from Win32_ProcessStartTrace where ProcessName='mspaint.exe'",
                "User": "S-1-5-21-9-8-7-1200",
                "Processid": 2000,
                "Provider": "WMI Kernel Trace Event Provider",
                "queryid": 4,
                "PossibleCause": "Permanent",
            },
        )
    )
    assert row["kind"] == "permanent"
    assert row["namespace"] == "//./root/CIMV2"
    assert row["query"] == "select * from Win32_ProcessStartTrace where ProcessName='mspaint.exe'"
    assert row["user"] == row["user_id"] == "S-1-5-21-9-8-7-1200"
    assert row["client_process_id"] == 2000
    assert row["provider_name"] == "WMI Kernel Trace Event Provider"
    assert row["possible_cause"] == "Permanent"
    assert row["message"] is None

    text = (
        "Namespace = //./root/CIMV2; NotificationQuery = select * from Win32_ProcessStartTrace "
        "where ProcessName='mspaint.exe'; OwnerName = S-1-5-21-9-8-7-1200; HostProcessID = 2000;"
        "  Provider= WMI Kernel Trace Event Provider, queryID = 4; PossibleCause = Permanent"
    )
    row = row_of(wmi(5859, {"Message": text}))
    assert row["namespace"] == "//./root/CIMV2"
    assert row["query"] == "select * from Win32_ProcessStartTrace where ProcessName='mspaint.exe'"
    assert row["user"] == "S-1-5-21-9-8-7-1200"
    assert row["client_process_id"] == 2000
    assert row["provider_name"] == "WMI Kernel Trace Event Provider"
    assert row["possible_cause"] == "Permanent"
    assert row["message"] == text


def test_5860_temporary_structured_query_whitespace() -> None:
    query = "SELECT * FROM __InstanceCreationEvent WITHIN 2\n\tWHERE TargetInstance ISA 'x'"
    row = row_of(
        wmi(
            5860,
            {
                "NamespaceName": "ROOT\\CIMV2",
                "Query": query,
                "User": "LAB\\ivan",
                "Processid": 7136,
                "MachineName": "SRV21",
                "PossibleCause": "Temporary",
            },
            userdata_element="Operation_TemporaryEssStarted",
        )
    )
    assert row["kind"] == "temporary"
    assert row["namespace"] == "ROOT\\CIMV2"
    assert row["query_raw"] == query
    assert row["query"] == (
        "SELECT * FROM __InstanceCreationEvent WITHIN 2 WHERE TargetInstance ISA 'x'"
    )
    assert row["user"] == "LAB\\ivan"
    assert row["client_process_id"] == 7136
    assert row["client_machine"] == "SRV21"
    assert row["possible_cause"] == "Temporary"
    assert row["message"] is None


def test_5860_lowercase_field_names() -> None:
    row = row_of(wmi(5860, {"namespacename": "root\\x", "query": "SELECT 1", "processid": "12"}))
    assert row["namespace"] == "root\\x"
    assert row["query"] == "SELECT 1"
    assert row["client_process_id"] == 12


def test_5860_temporary_text_upstream_extraction() -> None:
    text = (
        "Namespace = ROOT\\Subscription; NotificationQuery = SELECT * FROM "
        "Win32_ProcessStartTrace WHERE ProcessName = 'notepad.exe'; UserName = LAB\\ivan; "
        "ClientProcessID = 4196, ClientMachine = SRV21; PossibleCause = Temporary"
    )
    row = row_of(wmi(5860, {}, message=text))
    assert row["namespace"] == "ROOT\\Subscription"
    assert (
        row["query_raw"]
        == "SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName = 'notepad.exe'"
    )
    assert row["query"] == row["query_raw"]
    assert row["user"] == "LAB\\ivan"
    assert row["client_process_id"] == 4196
    assert row["client_machine"] == "SRV21"
    assert row["possible_cause"] == "Temporary"
    assert row["message"] == text


@pytest.mark.parametrize("stop", ["|", "$", "^", ";"])
def test_5860_text_query_stops_where_upstream_regex_stops(stop: str) -> None:
    text = (
        f"Namespace = root; NotificationQuery = SELECT a{stop}b FROM c; PossibleCause = Temporary"
    )
    row = row_of(wmi(5860, {}, message=text))
    assert row["query_raw"] == "SELECT a"


def test_5861_binding_structured() -> None:
    cause = (
        'Binding EventFilter: \ninstance of __EventFilter\n{\n\tName = "Keeper";\n};\n'
        "Perm. Consumer: \ninstance of CommandLineEventConsumer\n{\n"
        '\tCommandLineTemplate = "cmd /c calc";\n};\n'
    )
    row = row_of(
        wmi(
            5861,
            {
                "Namespace": "//./root/subscription",
                "ESS": "Keeper",
                "CONSUMER": 'CommandLineEventConsumer="Keeper"',
                "PossibleCause": cause,
            },
            userdata_element="Operation_ESStoConsumerBinding",
        )
    )
    assert row["kind"] == "binding"
    assert row["namespace"] == "//./root/subscription"
    assert row["filter"] == row["filter_raw"] == "Keeper"
    assert row["consumer"] == row["consumer_raw"] == 'CommandLineEventConsumer="Keeper"'
    assert row["possible_cause"] == cause
    assert row["message"] is None
    assert row["user"] == "S-1-5-18"  # the event names no account of its own


def test_5861_binding_text() -> None:
    text = (
        "Namespace = //./root/subscription; Eventfilter = Keeper (refer to its activate "
        'eventid:5859); Consumer = CommandLineEventConsumer="Keeper"; PossibleCause = Binding '
        'EventFilter: \ninstance of __EventFilter\n{\n\tName = "Keeper";\n};\n'
    )
    row = row_of(wmi(5861, {"Message": text}, computer=None, line=4, record_id=None))
    assert row["consumer_raw"] == 'CommandLineEventConsumer="Keeper"'
    assert row["consumer"] == 'CommandLineEventConsumer="Keeper"'
    assert row["filter_raw"] == "Keeper (refer to its activate eventid:5859)"
    assert row["filter"] == "Keeper"
    assert row["namespace"] == "//./root/subscription"
    assert row["possible_cause"].startswith("Binding EventFilter:")
    assert row["message"] == text
    assert row["dest"] is None


def test_5861_text_scm_event_log_consumer() -> None:
    text = (
        "Namespace = //./root/subscription; Eventfilter = SCM Event Log Filter (refer to its "
        'activate eventid:5859); Consumer = NTEventLogEventConsumer="SCM Event Log Consumer"; '
        "PossibleCause = Binding EventFilter: \ninstance of __EventFilter\n{\n};\n"
    )
    row = row_of(wmi(5861, {}, message=text))
    assert row["consumer"] == 'NTEventLogEventConsumer="SCM Event Log Consumer"'
    assert row["filter"] == "SCM Event Log Filter"


def test_wmi_activity_without_fields_or_text() -> None:
    row = row_of(wmi(5861, {}))
    assert row["kind"] == "binding"
    assert row["consumer"] is None
    assert row["message"] is None
