"""The model schemas: one table per kind of activity, with Splunk CIM-style column names.

This is the one contract between normalization (which fills rows), the store (which
creates tables) and detection (which queries them). Column order here is table order.
Times are UTC, naive ``TIMESTAMP``. Every table ends with the evidence columns so a
finding can point back at the raw event.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

_ARROW = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "TIMESTAMP": pa.timestamp("us"),
    "BOOLEAN": pa.bool_(),
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    sql_type: str
    doc: str = ""

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW[self.sql_type]


@dataclass(frozen=True, slots=True)
class Model:
    name: str  # table name
    columns: tuple[Column, ...]
    doc: str = ""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.arrow_type) for c in self.columns])

    def ddl(self) -> str:
        cols = ",\n  ".join(f'"{c.name}" {c.sql_type}' for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n)"


def _c(name: str, sql_type: str = "VARCHAR", doc: str = "") -> Column:
    return Column(name, sql_type, doc)


#: Columns every model starts with.
COMMON = (
    _c("uid", doc="stable id of the source event: '<file>|<member>|<record_id or line>'"),
    _c("time", "TIMESTAMP", "event time, UTC"),
    _c("dest", doc="host the event was logged on"),
    _c("user", doc="account (DOMAIN\\name when known, else SID)"),
    _c("user_id", doc="SID of the account when known"),
    _c("data_source", doc="sysmon | security | crowdstrike | wmi_activity | powershell"),
)

#: Evidence columns every model ends with.
EVIDENCE = (
    _c("channel"),
    _c("event_id", doc="Windows EventID as text, or CrowdStrike event_simpleName"),
    _c("provider"),
    _c("ev_file", doc="input file path"),
    _c("ev_member", doc="archive member, or NULL"),
    _c("ev_record_id", "BIGINT", "EVTX EventRecordID or JSON RecordNumber"),
    _c("ev_line", "BIGINT", "1-based line in a line-oriented input, or NULL"),
)

PROCESS_START = Model(
    "process_start",
    (
        *COMMON,
        _c("process", doc="command line"),
        _c("process_path", doc="image path as logged"),
        _c("process_name", doc="basename of process_path, as logged (case kept)"),
        _c("original_file_name", doc="PE OriginalFileName (Sysmon only)"),
        _c("process_id", "BIGINT"),
        _c("process_guid", doc="Sysmon ProcessGuid or Falcon TargetProcessId"),
        _c("parent_process", doc="parent command line (Sysmon only)"),
        _c("parent_process_path"),
        _c("parent_process_name"),
        _c("parent_process_id", "BIGINT"),
        _c("parent_process_guid", doc="Sysmon ParentProcessGuid or Falcon ParentProcessId"),
        _c(
            "parent_inferred",
            "BOOLEAN",
            "parent_process_* filled by the context step from an earlier start (old 4688)",
        ),
        _c("logon_id", doc="Sysmon LogonId / 4688 SubjectLogonId / Falcon AuthenticationId"),
        _c("target_user", doc="4688 TargetDomainName\\TargetUserName: the new process's account"),
        _c("target_logon_id", doc="4688 TargetLogonId"),
        _c("integrity_level", doc="Sysmon IntegrityLevel / 4688 MandatoryLabel / Falcon level"),
        _c("token_elevation_type", doc="4688 TokenElevationType"),
        _c("current_directory"),
        _c("hashes"),
        *EVIDENCE,
    ),
    "Process start: Sysmon 1, Security 4688, CrowdStrike (Synthetic)ProcessRollup2.",
)

WMI_ACTIVITY = Model(
    "wmi_activity",
    (
        *COMMON,
        _c("kind", doc="filter | consumer | binding | temporary | permanent | provider | other"),
        _c("operation", doc="Sysmon Operation (Created/Modified/Deleted)"),
        _c("name", doc="filter or consumer name, cleaned"),
        _c("name_raw"),
        _c("namespace", doc="event namespace (Sysmon 19 EventNamespace, 5860/5861 namespace)"),
        _c("query", doc="WQL query, cleaned (Sysmon 19 Query, 5859/5860 Query)"),
        _c("query_raw"),
        _c("consumer_type", doc="Sysmon 20 Type: Command Line | Script | ..."),
        _c("destination", doc="Sysmon 20 Destination (the payload), cleaned"),
        _c("destination_raw"),
        _c("consumer", doc="consumer reference, e.g. CommandLineEventConsumer=\"x\", cleaned"),
        _c("consumer_raw"),
        _c("filter", doc="filter reference / name (Sysmon 21 Filter, 5861 ESS), cleaned"),
        _c("filter_raw"),
        _c("possible_cause", doc="WMI-Activity PossibleCause (5861: filter+consumer MOF)"),
        _c("client_process_id", "BIGINT"),
        _c("client_machine"),
        _c("provider_name", doc="5857 ProviderName"),
        _c("host_process", doc="5857 HostProcess"),
        _c("provider_path", doc="5857 ProviderPath"),
        _c("message", doc="rendered text when the source only has text (classic/NXLog)"),
        *EVIDENCE,
    ),
    "WMI subscription activity: Sysmon 19/20/21, WMI-Activity/Operational 5857-5861.",
)

SCRIPT_BLOCK = Model(
    "script_block",
    (
        *COMMON,
        _c("script_block_text"),
        _c("script_block_id"),
        _c("message_number", "INTEGER"),
        _c("message_total", "INTEGER"),
        _c("path", doc="script file path, when the block came from a file"),
        *EVIDENCE,
    ),
    "PowerShell script block logging 4104.",
)

LOGON = Model(
    "logon",
    (
        *COMMON,
        _c("logon_type", "INTEGER"),
        _c("target_user", doc="TargetDomainName\\TargetUserName"),
        _c("target_user_sid"),
        _c("target_logon_id"),
        _c("subject_user", doc="SubjectDomainName\\SubjectUserName"),
        _c("subject_logon_id"),
        _c("src_ip", doc="IpAddress"),
        _c("src_port", "INTEGER"),
        _c("src_workstation", doc="WorkstationName"),
        _c("logon_process"),
        _c("auth_package"),
        _c("target_server", doc="4648 TargetServerName"),
        _c("target_info", doc="4648 TargetInfo"),
        _c("process_name", doc="process that logged on / used explicit credentials"),
        _c("process_id", "BIGINT"),
        *EVIDENCE,
    ),
    "Logons for context: Security 4624 and 4648.",
)

MODELS: dict[str, Model] = {m.name: m for m in (PROCESS_START, WMI_ACTIVITY, SCRIPT_BLOCK, LOGON)}
