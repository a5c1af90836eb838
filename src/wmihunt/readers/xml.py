"""Windows event XML: one ``<Event>``, ``wevtutil qe /f:xml`` output (events without a
root), ``<Events>`` exports, and Splunk ``XmlWinEventLog`` raw lines.

The stream is cut into events at each ``</Event>`` end tag (never loading the file), and
each event is parsed on its own by ``xmlparse`` (expat with DTDs, entity declarations and
external entities refused): a ``<!DOCTYPE`` or ``<!ENTITY`` in or before an event rejects
that event (no entity expansion, no external entity resolution), and an undefined entity
reference is a parse error. Channel and
EventID are read from the System block with a regex first, so irrelevant events are
counted as skipped without being parsed (and so without being validated).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..events import RawEvent, Relevance
from .source import Source
from .winevent import optional_int, to_int
from .xmlparse import ExpatError, Node, UnsafeXml, parse

#: Largest single event accepted; a longer one is rejected without being held.
MAX_EVENT_BYTES = 64 << 20

_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?Event\s*>")
_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Event[\s/>]")
_EVENT_ID = re.compile(rb"<EventID(?:\s[^>]*)?>\s*(\d{1,10})\s*</EventID>")
_CHANNEL = re.compile(rb"<Channel>([^<&]*)</Channel>")
_DECLARATION = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
#: An entity reference other than the five predefined ones or a character reference:
#: such an event is parsed (and so rejected) even when it would be skipped.
_CUSTOM_ENTITY = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos);|#)")
_ENCODING = re.compile(rb"""<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_READ = 1 << 20


def read_xml(src: Source, want: Relevance, *, max_event: int | None = None) -> Iterator[RawEvent]:
    """Yield the relevant events of a Windows event XML source."""
    src.stats.format = "xml"
    if src.stream is None:
        return
    limit = MAX_EVENT_BYTES if max_event is None else max_event
    declaration = b""
    count = 0
    for line, prefix, body in _pieces(src, limit):
        if not declaration:
            declaration = _declaration(prefix)
        if body is None:
            continue
        count += 1
        position = f"event {count} (line {line})"
        event = _event(src, want, prefix, body, declaration, position, line)
        if event is not None:
            yield event
    if count == 0 and not src.stats.errors:
        src.stats.error("file", "no Windows <Event> element found: not an event XML file")


def _declaration(prefix: bytes) -> bytes:
    """The XML declaration to repeat before each event when it names a non-UTF encoding."""
    m = _ENCODING.search(prefix)
    if m and m.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8", b"utf-16"):
        return b'<?xml version="1.0" encoding="' + m.group(1) + b'"?>'
    return b"-"  # seen, nothing to repeat


def _pieces(src: Source, limit: int) -> Iterator[tuple[int, bytes, bytes | None]]:
    """(line of the event start, text before the event, the event's bytes)."""
    stream = src.stream
    assert stream is not None
    buf = b""
    line = 1
    scan_from = 0
    discarding = False
    eof = False
    while not eof:
        chunk = stream.read(_READ)
        if not chunk:
            eof = True
        buf += chunk
        cut = 0
        for m in _END.finditer(buf, scan_from):
            piece = buf[cut : m.end()]
            newlines_before = line
            line += piece.count(b"\n")
            cut = m.end()
            if discarding:  # the end of an oversized event we already rejected
                discarding = False
                continue
            start = _START.search(piece)
            if start is None:
                src.stats.reject(f"line {newlines_before}", "</Event> without a matching <Event>")
                continue
            event_line = newlines_before + piece.count(b"\n", 0, start.start())
            if len(piece) - start.start() > limit:
                src.stats.reject(
                    f"line {event_line}", f"event longer than {limit:,} bytes: not read"
                )
                continue
            yield event_line, piece[: start.start()], piece[start.start() :]
        buf = buf[cut:]
        scan_from = max(0, len(buf) - 16)  # an end tag may straddle two reads
        if len(buf) > limit and not discarding:
            src.stats.reject(
                f"line {line}", f"event longer than {limit:,} bytes (or no </Event>): not read"
            )
            discarding = True
        if discarding:
            line += buf.count(b"\n", 0, max(0, len(buf) - 16))
            buf = buf[-16:]
            scan_from = 0
    if discarding:
        return
    start = _START.search(buf)
    if start is not None:
        start_line = line + buf.count(b"\n", 0, start.start())
        src.stats.reject(
            f"line {start_line}", "truncated event: no </Event> before the end of the data"
        )
    elif buf.strip():
        yield line, buf, None  # a trailer such as </Events>, or a file without events


def _event(
    src: Source,
    want: Relevance,
    prefix: bytes,
    body: bytes,
    declaration: bytes,
    position: str,
    line: int,
) -> RawEvent | None:
    stats = src.stats
    if (b"<!" in prefix or b"<!" in body) and (
        _DECLARATION.search(prefix) or _DECLARATION.search(body)
    ):
        stats.reject(
            position,
            "XML DOCTYPE/ENTITY declaration: refused (entity expansion and external "
            "entities are not allowed)",
        )
        return None
    ident = _peek(body)
    if ident is not None and not _CUSTOM_ENTITY.search(body) and not want(*ident):
        stats.skip(*ident)
        return None
    text = body if declaration in (b"", b"-") else declaration + body
    try:
        event = _from_element(parse(text), src, line)
    except UnsafeXml as exc:
        stats.reject(position, f"unsafe XML refused: {exc}")
        return None
    except ExpatError as exc:
        stats.reject(position, f"malformed XML: {exc}")
        return None
    except ValueError as exc:
        stats.reject(position, str(exc))
        return None
    except LookupError as exc:  # the XML declaration names an encoding Python lacks
        stats.reject(position, f"malformed XML: {exc} (in the XML declaration)")
        return None
    if not want(event.channel, event.event_id):
        stats.skip(event.channel, event.event_id)
        return None
    return event


def _peek(body: bytes) -> tuple[str, int] | None:
    end = body.find(b"</System>")
    head = body[:end] if end > 0 else body
    eid = _EVENT_ID.search(head)
    channel = _CHANNEL.search(head)
    if eid is None or channel is None:
        return None
    try:
        return channel.group(1).decode("utf-8").strip(), int(eid.group(1))
    except UnicodeDecodeError:
        return None


def _text(element: Node) -> str:
    if len(element):
        return "".join(element.itertext())
    return element.text


def _value(element: Node) -> Any:
    """A leaf's text, or a dict of its children for nested elements."""
    if not len(element):
        return element.text
    out: dict[str, Any] = {}
    for child in element:
        _put(out, child.name, _value(child))
    return out


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Repeated names get ``_1``, ``_2`` suffixes (as the evtx JSON rendering does)."""
    if key in out:
        n = 1
        while f"{key}_{n}" in out:
            n += 1
        key = f"{key}_{n}"
    out[key] = value


def _from_element(root: Node, src: Source, line: int) -> RawEvent:
    if root.name != "Event":
        raise ValueError(f"root element is <{root.name}>, not <Event>")
    system: dict[str, Node] = {}
    data: dict[str, Any] = {}
    element_name: str | None = None
    message: str | None = None
    rendering: dict[str, Any] = {}
    for part in root:
        name = part.name
        if name == "System":
            for field in part:
                system[field.name] = field
        elif name == "EventData":
            data = _event_data(part)
        elif name == "UserData":
            children = part.children
            if len(children) == 1:
                element_name = children[0].name
                value = _value(children[0])
                data = value if isinstance(value, dict) else {element_name: value}
            else:
                for child in children:
                    _put(data, child.name, _value(child))
        elif name == "RenderingInfo":
            for field in part:
                if field.name == "Message":
                    message = _text(field)
                else:
                    rendering[field.name] = _value(field)
        elif not data and len(part):  # ProcessingErrorData, DebugData, ...
            data = _event_data(part)
            element_name = name
    eid = system.get("EventID")
    if eid is None:
        raise ValueError("no System/EventID")
    event_id = to_int(eid.text, "EventID")
    channel = system.get("Channel")
    computer = system.get("Computer")
    record = system.get("EventRecordID")
    return RawEvent(
        channel=channel.text.strip() if channel is not None else "",
        event_id=event_id,
        data=data,
        provider=_attr(system, "Provider", "Name"),
        computer=(computer.text or None) if computer is not None else None,
        time=_attr(system, "TimeCreated", "SystemTime"),
        record_id=optional_int(record.text) if record is not None else None,
        user_sid=_attr(system, "Security", "UserID"),
        message=message,
        file=src.file,
        member=src.member,
        line=line,
        userdata_element=element_name,
        extra={"rendering": rendering} if rendering else {},
    )


def _attr(system: dict[str, Node], field: str, name: str) -> str | None:
    element = system.get(field)
    return element.get(name) if element is not None else None


def _event_data(part: Node) -> dict[str, Any]:
    data: dict[str, Any] = {}
    unnamed: list[Any] = []
    for item in part:
        tag = item.name
        name = item.get("Name") if tag == "Data" else None
        if tag == "Data" and name is None:
            unnamed.append(_text(item))
        else:
            _put(data, name or tag, _text(item) if tag == "Data" else _value(item))
    if unnamed:
        data["Data"] = unnamed
    return data
