"""Normalization: RawEvent -> one row of one model (see ``wmihunt.models``).

Public API:

- ``is_relevant(channel, event_id) -> bool``: the ``Relevance`` predicate readers use.
- ``normalize(event) -> tuple[str, dict] | None``: the model (table) name and the row,
  keyed by that model's column names (this implementation always gives every column).
  ``None`` means "relevant channel, but nothing to model" (counted as skipped).
  Raises ``NormalizeError`` (with a human reason) for an event it must reject.
- ``RELEVANT_EVENT_IDS``: the numeric EventIDs of all relevant Windows events, for
  readers that prefilter before they know the channel.

``SOURCES`` is the one table of what is relevant and who normalizes it: add a row there
to support another event. Every row has the COMMON and EVIDENCE columns; ``time`` is UTC
(Sysmon ``UtcTime`` when present, else the System time), NULL when unparseable: a row is
kept rather than rejected for a bad time. Only an event whose data is not a mapping is
rejected. ``uid`` is ``<file>|<member>|L<line>`` for line formats, else ``...|<record id>``.

NXLog leaves XML escapes (``&lt;``...) in field values: they are decoded when the data has
``SourceModuleType`` ``im_msvistalog``, or when a reader sets ``extra["xml_escaped"]``
(which wins either way); readers must therefore not decode them too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..events import CROWDSTRIKE_CHANNEL, RawEvent
from ..models import MODELS
from . import logon, powershell, process, wmi
from .common import Fields, NormalizeError, base_row

Filler = Callable[[RawEvent, Fields, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Source:
    """How one (channel, event id) becomes a row."""

    data_source: str
    table: str
    fill: Filler
    #: Match field names case-insensitively (see ``Fields``).
    fold_case: bool = False
    #: The event's own time field, which wins over the System time when readable.
    time_field: str | None = None


SYSMON = "Microsoft-Windows-Sysmon/Operational"
SECURITY = "Security"
WMI_ACTIVITY = "Microsoft-Windows-WMI-Activity/Operational"
POWERSHELL = "Microsoft-Windows-PowerShell/Operational"

_RAW_SOURCES: dict[tuple[str, int | str], Source] = {
    (SYSMON, 1): Source("sysmon", "process_start", process.sysmon_1, time_field="UtcTime"),
    (SYSMON, 19): Source("sysmon", "wmi_activity", wmi.sysmon_19),
    (SYSMON, 20): Source("sysmon", "wmi_activity", wmi.sysmon_20),
    (SYSMON, 21): Source("sysmon", "wmi_activity", wmi.sysmon_21),
    (SECURITY, 4688): Source("security", "process_start", process.security_4688),
    (SECURITY, 4624): Source("security", "logon", logon.security_4624),
    (SECURITY, 4648): Source("security", "logon", logon.security_4648),
    (WMI_ACTIVITY, 5857): Source("wmi_activity", "wmi_activity", wmi.wmi_5857, fold_case=True),
    (WMI_ACTIVITY, 5858): Source("wmi_activity", "wmi_activity", wmi.wmi_5858, fold_case=True),
    (WMI_ACTIVITY, 5859): Source("wmi_activity", "wmi_activity", wmi.wmi_5859, fold_case=True),
    (WMI_ACTIVITY, 5860): Source("wmi_activity", "wmi_activity", wmi.wmi_5860, fold_case=True),
    (WMI_ACTIVITY, 5861): Source("wmi_activity", "wmi_activity", wmi.wmi_5861, fold_case=True),
    (POWERSHELL, 4104): Source("powershell", "script_block", powershell.powershell_4104),
    (CROWDSTRIKE_CHANNEL, "ProcessRollup2"): Source(
        "crowdstrike", "process_start", process.crowdstrike_process
    ),
    (CROWDSTRIKE_CHANNEL, "SyntheticProcessRollup2"): Source(
        "crowdstrike", "process_start", process.crowdstrike_process
    ),
}


def _event_key(event_id: object) -> int | str | None:
    """Windows ids as int (``"4688"`` too), CrowdStrike names case-folded."""
    if isinstance(event_id, bool):
        return None
    if isinstance(event_id, int):
        return event_id
    if isinstance(event_id, str):
        text = event_id.strip()
        return int(text) if text.isascii() and text.isdigit() else text.casefold()
    return None


def _key(channel: str, event_id: object) -> tuple[str, int | str | None]:
    return (channel.casefold() if isinstance(channel, str) else "", _event_key(event_id))


#: (channel case-folded, event id) -> Source; the only list of relevant events.
SOURCES: dict[tuple[str, int | str | None], Source] = {
    _key(channel, eid): source for (channel, eid), source in _RAW_SOURCES.items()
}
_COLUMNS = {name: tuple(model.column_names) for name, model in MODELS.items()}
RELEVANT_EVENT_IDS: frozenset[int] = frozenset(k[1] for k in SOURCES if isinstance(k[1], int))


def is_relevant(channel: str, event_id: int | str) -> bool:
    """Does a normalizer want this event? Channel compared case-insensitively; the id may
    be an int or its text (CrowdStrike: the ``event_simpleName``)."""
    return _key(channel, event_id) in SOURCES


def normalize(event: RawEvent) -> tuple[str, dict[str, Any]] | None:
    source = SOURCES.get(_key(event.channel, event.event_id))
    if source is None:
        return None
    fields = Fields(event, source.fold_case)  # NormalizeError when data is not a mapping
    row = dict.fromkeys(_COLUMNS[source.table])  # every column present, NULL by default
    row.update(base_row(event, fields, source.data_source, source.time_field))
    source.fill(event, fields, row)
    return source.table, row


__all__ = [
    "RELEVANT_EVENT_IDS",
    "SOURCES",
    "NormalizeError",
    "Source",
    "is_relevant",
    "normalize",
]
