"""What every normalizer shares: field access on a RawEvent and the common row columns."""

from __future__ import annotations

from typing import Any

from ..events import RawEvent
from ..textpath import text_path
from .fields import as_text, is_sid, parse_int, parse_time, xml_unescape

#: NXLog input modules whose EventData values keep XML escapes (``&lt;``...) literally.
_NXLOG_MODULES = frozenset({"im_msvistalog", "im_mseventlog"})


class NormalizeError(Exception):
    """An event that cannot be normalized; the message is the human reason."""


class Fields:
    """Read access to ``RawEvent.data`` by field name.

    Names match exactly; with ``fold_case`` (WMI-Activity, whose UserData names vary in
    case across Windows versions: ``Processid``/``ProcessID``) a miss is retried
    case-insensitively. Exact-only is the default because folding every event's keys
    costs about a third of the normalization time.

    ``text(name)`` gives the value as text with NXLog's literal XML escapes decoded when
    the event came through NXLog (``SourceModuleType`` im_msvistalog, or a reader's
    ``extra["xml_escaped"]`` flag, which wins when set); ``raw(name)`` gives it as the
    source wrote it.
    """

    __slots__ = ("_folded", "data", "fold_case", "xml_escaped")

    def __init__(self, event: RawEvent, fold_case: bool = False) -> None:
        data = event.data
        if not isinstance(data, dict):
            raise NormalizeError(f"event data is {type(data).__name__}, not a mapping")
        self.data: dict[str, Any] = data
        self._folded: dict[str, Any] | None = None
        self.fold_case = fold_case
        flag = event.extra.get("xml_escaped") if isinstance(event.extra, dict) else None
        if flag is None:
            module = data.get("SourceModuleType")
            flag = isinstance(module, str) and module.lower() in _NXLOG_MODULES
        self.xml_escaped: bool = bool(flag)

    def get(self, *names: str) -> Any:
        """The first of ``names`` present, else ``None``."""
        data = self.data
        for name in names:
            if name in data:
                return data[name]
        if not self.fold_case:
            return None
        if self._folded is None:
            self._folded = {str(k).casefold(): v for k, v in data.items()}
        for name in names:
            value = self._folded.get(name.casefold())
            if value is not None:
                return value
        return None

    def has(self, *names: str) -> bool:
        return self.get(*names) is not None

    def raw(self, *names: str) -> str | None:
        """Text as the source wrote it."""
        return as_text(self.get(*names))

    def text(self, *names: str) -> str | None:
        """Text with NXLog XML escapes decoded (when the event came through NXLog)."""
        if len(names) == 1 and not self.fold_case:  # the common case, inlined
            value = self.data.get(names[0])
        else:
            value = self.get(*names)
        if type(value) is not str:
            value = as_text(value)
        return xml_unescape(value) if self.xml_escaped else value

    def int(self, *names: str, bits: int = 64) -> int | None:
        return parse_int(self.get(*names), bits)


def message_text(event: RawEvent, fields: Fields) -> str | None:
    """The rendered message: ``RawEvent.message``, else a ``Message`` field."""
    if event.message:
        return event.message
    return as_text(fields.get("Message"))


def system_user_sid(event: RawEvent, fields: Fields) -> str | None:
    """``System/Security/@UserID``; NXLog carries it as a ``UserID`` field."""
    if event.user_sid:
        return event.user_sid
    value = as_text(fields.get("UserID"))
    return value if is_sid(value) else None


def event_id_text(event_id: Any) -> str:
    return str(event_id).strip()


def uid(event: RawEvent, file: str | None = None) -> str:
    """Stable event id: ``<file>|<member>|L<line>`` for line formats, else the record id.

    The line comes first because a JSON-lines file often mixes hosts and channels, whose
    record numbers collide (82 collisions in one OTRF dataset); a file position cannot.
    ``file``: ``text_path(event.file)`` when the caller has it already.
    """
    if event.line is not None:
        pos = f"L{event.line}"
    elif event.record_id is not None:
        pos = str(event.record_id)
    else:
        pos = "?"
    if file is None:
        file = text_path(event.file)
    return f"{file}|{text_path(event.member or '')}|{pos}"


def base_row(
    event: RawEvent, fields: Fields, data_source: str, time_field: str | None = None
) -> dict[str, Any]:
    """COMMON and EVIDENCE columns; ``time``/``dest``/``user`` are defaults a normalizer
    may override (CrowdStrike host names, ...). ``time_field``: the event's own time field
    (Sysmon ``UtcTime``: when the thing happened), which wins over the System time when it
    can be read."""
    dest = event.computer or as_text(fields.get("Hostname", "Computer", "ComputerName"))
    sid = system_user_sid(event, fields)
    file = text_path(event.file)
    when = parse_time(fields.get(time_field)) if time_field is not None else None
    if when is None:
        when = parse_time(event.time) or parse_time(fields.get("@timestamp", "TimeCreated"))
    return {
        "uid": uid(event, file),
        "time": when,
        "dest": dest or None,
        "user": sid,
        "user_id": sid,
        "data_source": data_source,
        "channel": event.channel,
        "event_id": event_id_text(event.event_id),
        "provider": event.provider or as_text(fields.get("SourceName")),
        "ev_file": file,
        "ev_member": text_path(event.member) if event.member is not None else None,
        "ev_record_id": parse_int(event.record_id),
        "ev_line": parse_int(event.line),
    }


def set_user(row: dict[str, Any], user: str | None, sid: str | None = None) -> None:
    """Set ``user``/``user_id`` from the event's own account fields, keeping the System
    UserID defaults when the event names no account. ``user_id`` is the SID of ``user``:
    the given SID, or ``user`` itself when it is a SID, else ``None``."""
    if user is None and sid is None:
        return
    row["user"] = user if user is not None else sid
    row["user_id"] = sid if sid is not None else (user if is_sid(user) else None)
