"""WMI subscription activity -> ``wmi_activity``: Sysmon 19/20/21 and
Microsoft-Windows-WMI-Activity/Operational 5857-5861.

Sysmon 19-21: ``*_raw`` columns keep the value exactly as the source wrote it (leading
space, quotes, doubled backslashes, NXLog XML escapes); the main columns hold it cleaned.
When an exporter kept only the rendered ``Message`` (NXLog, Splunk classic), the fields
are parsed from its ``Key: value`` lines, in the template's order.

WMI-Activity, two forms of the same event:

- structured (EVTX/XML ``UserData``, flattened by the readers): fields go to their
  columns, ``PossibleCause`` to ``possible_cause``, and ``message`` stays NULL;
- text only (``Namespace = ...; Consumer = ...; PossibleCause = ...``): ``message`` keeps
  the whole text and the fields are extracted from it. ``consumer`` and ``query`` use
  upstream Splunk's expressions, ``Consumer =\\s+([^;|^$]+)`` and
  ``NotificationQuery =\\s+([^;|^$]+)`` (first match; the class stops at ``;``, ``|``,
  ``^`` and ``$``), so values match upstream's.

Detection rules therefore test "the text has the word Binding/Temporary" on
``possible_cause`` OR ``message``. ``query`` is the WQL with whitespace runs collapsed to
one space (5860 queries may hold tabs and newlines); ``query_raw`` is the text exactly.
5858 (client failure) is the exception: its ``message`` is always filled (the source text,
or the fields rendered in Windows' own template) since it has no column for ResultCode.
5857's host ``ProcessID`` goes to ``client_process_id``. Events that name no account of
their own keep the System UserID as ``user``.
"""

from __future__ import annotations

import re
from typing import Any

from ..events import RawEvent
from .common import Fields, message_text, set_user
from .fields import clean_sysmon_value, collapse_ws, opt, parse_int, parse_time

# --- Sysmon 19/20/21 --------------------------------------------------------------------

#: Message template keys per EventID, in Sysmon's order.
_SYSMON_KEYS: dict[int, tuple[str, ...]] = {
    19: (
        "RuleName",
        "EventType",
        "UtcTime",
        "Operation",
        "User",
        "EventNamespace",
        "Name",
        "Query",
    ),
    20: ("RuleName", "EventType", "UtcTime", "Operation", "User", "Name", "Type", "Destination"),
    21: ("RuleName", "EventType", "UtcTime", "Operation", "User", "Consumer", "Filter"),
}
#: The payload keys whose absence means "only the message has the fields".
_SYSMON_PAYLOAD = {
    19: ("EventNamespace", "Name", "Query"),
    20: ("Name", "Type", "Destination"),
    21: ("Consumer", "Filter"),
}
_KEY_LINE = {key: re.compile(rf"^{key}: ?", re.M) for keys in _SYSMON_KEYS.values() for key in keys}


def parse_sysmon_message(text: str, keys: tuple[str, ...]) -> dict[str, str]:
    """``Key: value`` lines of a rendered Sysmon message, searched in template order (so a
    value cannot reorder the keys before it); a value runs until the next key's line, so
    multi-line values (script consumers) stay whole. One space after the colon is the
    separator: Sysmon's own leading space of WMI values is kept."""
    spans: list[tuple[str, int, int]] = []
    pos = 0
    for key in keys:
        match = _KEY_LINE[key].search(text, pos)
        if match is not None:
            spans.append((key, match.start(), match.end()))
            pos = match.end()
    out: dict[str, str] = {}
    for i, (key, _start, value_start) in enumerate(spans):
        end = spans[i + 1][1] if i + 1 < len(spans) else len(text)
        value = text[value_start:end]
        if value.endswith("\r\n"):
            value = value[:-2]
        elif value.endswith("\n"):
            value = value[:-1]
        out[key] = value
    return out


class _SysmonValues:
    """Structured field first (raw and NXLog-decoded), else the value parsed from the
    message text (rendered text has no XML escapes)."""

    def __init__(self, event: RawEvent, f: Fields, event_id: int) -> None:
        self.f = f
        self.parsed: dict[str, str] = {}
        self.message: str | None = None
        if not all(f.has(k) for k in _SYSMON_KEYS[event_id][3:]):
            text = message_text(event, f)
            if text:
                self.parsed = parse_sysmon_message(text, _SYSMON_KEYS[event_id])
                if not any(f.has(k) for k in _SYSMON_PAYLOAD[event_id]):
                    self.message = text

    def raw(self, key: str) -> str | None:
        return self.f.raw(key) if self.f.has(key) else self.parsed.get(key)

    def text(self, key: str) -> str | None:
        return self.f.text(key) if self.f.has(key) else self.parsed.get(key)

    def pair(self, key: str) -> tuple[str | None, str | None]:
        """(raw, cleaned)."""
        return self.raw(key), clean_sysmon_value(self.text(key))


def _sysmon_wmi(event: RawEvent, f: Fields, row: dict[str, Any], event_id: int) -> None:
    values = _SysmonValues(event, f, event_id)
    when = parse_time(values.text("UtcTime"))  # Sysmon's own time wins, as for event 1
    if when is not None:
        row["time"] = when
    set_user(row, opt(values.text("User")))
    row["operation"] = opt(values.text("Operation"))
    row["message"] = values.message
    if event_id == 19:
        row["kind"] = "filter"
        row["namespace"] = clean_sysmon_value(values.text("EventNamespace"))
        row["name_raw"], row["name"] = values.pair("Name")
        row["query_raw"], row["query"] = values.pair("Query")
    elif event_id == 20:
        row["kind"] = "consumer"
        row["name_raw"], row["name"] = values.pair("Name")
        row["consumer_type"] = opt(values.text("Type"))
        row["destination_raw"], row["destination"] = values.pair("Destination")
    else:
        row["kind"] = "binding"
        row["consumer_raw"], row["consumer"] = values.pair("Consumer")
        row["filter_raw"], row["filter"] = values.pair("Filter")


def sysmon_19(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    _sysmon_wmi(event, f, row, 19)


def sysmon_20(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    _sysmon_wmi(event, f, row, 20)


def sysmon_21(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    _sysmon_wmi(event, f, row, 21)


# --- WMI-Activity/Operational text form ---------------------------------------------------

#: Upstream Splunk's extractions (security_content), kept byte for byte.
UPSTREAM_CONSUMER = re.compile(r"Consumer =\s+([^;|^$]+)")
UPSTREAM_QUERY = re.compile(r"NotificationQuery =\s+([^;|^$]+)")

_LEAD = r"(?:^|[;,]\s*)"
_NAMESPACE = re.compile(_LEAD + r"Namespace\s*=\s*([^;,\r\n]*)")
_FILTER = re.compile(r"Eventfilter =\s+([^;|^$]+)")
_FILTER_NOTE = re.compile(r"\s*\(refer to its activate eventid:\s*\d+\)\s*$")
_USER = re.compile(_LEAD + r"(?:UserName|User|OwnerName)\s*=\s*([^;,\r\n]*)")
_PID = re.compile(
    _LEAD + r"(?:ClientProcessId|HostProcessID|ProcessID|Processid)\s*=\s*(\d+)", re.I
)
_MACHINE = re.compile(_LEAD + r"ClientMachine\s*=\s*([^;,\r\n]*)")
_CAUSE = re.compile(_LEAD + r"PossibleCause\s*=\s*(.*)", re.S)
_OPERATION = re.compile(_LEAD + r"Operation\s*=\s*(.*?)(?=;\s*ResultCode\s*=|;|$)", re.S)
_PROVIDER = re.compile(_LEAD + r"Provider\s*=\s*([^;,\r\n]*)")
_PROVIDER_STARTED = re.compile(r"^\s*(.*?) provider started with result code")
_HOST_PROCESS = re.compile(r"\bHostProcess\s*=\s*([^;,\r\n]*)")
_PROVIDER_PATH = re.compile(r"\bProviderPath\s*=\s*([^;\r\n]*)")


def _find(pattern: re.Pattern[str], text: str, group: int = 1) -> str | None:
    match = pattern.search(text)
    return match.group(group) if match else None


def _stripped(value: str | None) -> str | None:
    return opt(value.strip()) if value is not None else None


def _from_text(row: dict[str, Any], text: str, event_id: int) -> None:
    """Fill the row from the rendered WMI-Activity message."""
    row["message"] = text
    set_user(row, _stripped(_find(_USER, text)))
    row["client_process_id"] = parse_int(_find(_PID, text))
    cause = _find(_CAUSE, text)
    row["possible_cause"] = cause if cause is not None and cause.strip() else None
    if event_id == 5857:
        row["provider_name"] = _stripped(_find(_PROVIDER_STARTED, text))
        row["host_process"] = _stripped(_find(_HOST_PROCESS, text))
        row["provider_path"] = _stripped(_find(_PROVIDER_PATH, text))
        return
    row["namespace"] = _stripped(_find(_NAMESPACE, text))
    row["client_machine"] = _stripped(_find(_MACHINE, text))
    if event_id == 5858:
        row["operation"] = _stripped(_find(_OPERATION, text))
    elif event_id in (5859, 5860):
        query = _find(UPSTREAM_QUERY, text)
        row["query_raw"] = query
        row["query"] = collapse_ws(query) or None
        if event_id == 5859:
            row["provider_name"] = _stripped(_find(_PROVIDER, text))
    elif event_id == 5861:
        consumer = _find(UPSTREAM_CONSUMER, text)
        row["consumer_raw"] = consumer
        row["consumer"] = _stripped(consumer)
        flt = _find(_FILTER, text)
        row["filter_raw"] = flt
        row["filter"] = _stripped(_FILTER_NOTE.sub("", flt)) if flt is not None else None


# --- WMI-Activity/Operational structured form ---------------------------------------------

#: Fields whose presence means the event is structured, per EventID.
_STRUCTURED = {
    5857: ("ProviderName", "HostProcess", "ProviderPath"),
    5858: ("Operation", "ResultCode", "ClientMachine"),
    5859: ("NamespaceName", "Query"),
    5860: ("NamespaceName", "Query"),
    5861: ("Namespace", "ESS", "CONSUMER"),
}
#: 5858's Windows message template, for rendering the structured form.
_TEMPLATE_5858 = (
    "Id",
    "ClientMachine",
    "User",
    "ClientProcessId",
    "Component",
    "Operation",
    "ResultCode",
    "PossibleCause",
)
_KIND = {5857: "provider", 5858: "other", 5859: "permanent", 5860: "temporary", 5861: "binding"}


def _from_fields(row: dict[str, Any], f: Fields, event_id: int) -> None:
    cause = f.text("PossibleCause")
    row["possible_cause"] = cause if cause is not None and cause.strip() else None
    if event_id == 5857:
        row["provider_name"] = opt(f.text("ProviderName"))
        row["host_process"] = opt(f.text("HostProcess"))
        row["client_process_id"] = f.int("ProcessID")
        row["provider_path"] = opt(f.text("ProviderPath"))
        return
    set_user(row, opt(f.text("User")))
    row["client_process_id"] = f.int("ClientProcessId", "Processid")
    row["client_machine"] = opt(f.text("ClientMachine", "MachineName"))
    if event_id == 5858:
        row["operation"] = opt(f.text("Operation"))
        parts = [f"{k} = {v}" for k in _TEMPLATE_5858 if (v := f.text(k)) is not None]
        row["message"] = "; ".join(parts) or None
    elif event_id in (5859, 5860):
        row["namespace"] = opt(f.text("NamespaceName", "Namespace"))
        query = f.text("Query")
        row["query_raw"] = f.raw("Query")
        row["query"] = collapse_ws(query) or None
        if event_id == 5859:
            row["provider_name"] = opt(f.text("Provider"))
    elif event_id == 5861:
        row["namespace"] = opt(f.text("Namespace"))
        row["filter_raw"] = f.raw("ESS")
        row["filter"] = _stripped(f.text("ESS"))
        row["consumer_raw"] = f.raw("CONSUMER")
        row["consumer"] = _stripped(f.text("CONSUMER"))


def _wmi_activity(event: RawEvent, f: Fields, row: dict[str, Any], event_id: int) -> None:
    row["kind"] = _KIND[event_id]
    if any(f.has(k) for k in _STRUCTURED[event_id]):
        _from_fields(row, f, event_id)
        if event_id == 5858 and (text := message_text(event, f)):
            row["message"] = text
        return
    text = message_text(event, f)
    if text:
        _from_text(row, text, event_id)


def wmi_5857(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    _wmi_activity(event, f, row, 5857)


def wmi_5858(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    _wmi_activity(event, f, row, 5858)


def wmi_5859(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    _wmi_activity(event, f, row, 5859)


def wmi_5860(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    _wmi_activity(event, f, row, 5860)


def wmi_5861(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    _wmi_activity(event, f, row, 5861)
