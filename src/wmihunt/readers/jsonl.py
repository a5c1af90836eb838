"""JSON lines, and JSON documents (one object, an array of objects, or several objects).

A stream whose first line is one complete ``{...}`` is read as JSON lines (format
``jsonl``), streaming line by line. Anything else starting with ``{`` or ``[`` (a
pretty-printed object, an array) is split into top-level values by a small streaming
scanner (format ``json``), so a big array is never held whole in memory.

Per line, ``json_dialects.peek`` reads channel and EventID from the raw bytes; when
``want`` says no, the line is counted as skipped without being decoded. That saves the
decode for irrelevant lines but also means a skipped line is only checked to be one
``{...}`` of valid UTF-8, not fully validated. Every other line is decoded with orjson.
Bad lines (not JSON, invalid UTF-8, NaN, nested deeper than orjson's limit, not an object,
longer than ``MAX_LINE_BYTES``) are rejected with their line number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

import orjson

from ..accounting import FileStats
from ..events import RawEvent, Relevance
from .json_dialects import peek, to_event
from .source import Source
from .streams import Prefixed, buffered

#: Longest JSON line (or document value) read; longer ones are rejected, never held.
MAX_LINE_BYTES = 64 << 20

_BOM = b"\xef\xbb\xbf"
_SPACE = b" \t\r\n"


def read_json(src: Source, want: Relevance, *, max_line: int | None = None) -> Iterator[RawEvent]:
    """Yield the relevant events of a JSON lines or JSON document source."""
    if src.stream is None:
        return
    limit = MAX_LINE_BYTES if max_line is None else max_line
    stream = src.stream
    first = stream.readline(limit + 1)
    start = first.removeprefix(_BOM).strip(_SPACE)
    # Leading blank lines: find the first line with content.
    blank_lines = 0
    while first and not start and first.endswith(b"\n"):
        blank_lines += 1
        first = stream.readline(limit + 1)
        start = first.strip(_SPACE)
    cut = len(first) > limit and not first.endswith(b"\n")  # an over-long first line
    if start.startswith(b"{") and (start.endswith(b"}") or cut):
        src.stats.format = "jsonl"
        yield from _lines(src, want, stream, first, blank_lines, limit)
    else:
        src.stats.format = "json"
        rest = buffered(Prefixed(first.removeprefix(_BOM), stream))
        yield from _document(src, want, rest, blank_lines, limit)


# -- JSON lines -----------------------------------------------------------------------
def _lines(
    src: Source, want: Relevance, stream: BinaryIO, first: bytes, offset: int, limit: int
) -> Iterator[RawEvent]:
    stats = src.stats
    readline = stream.readline
    decided: dict[object, bool] = {}  # want() answers per (channel, event id)
    skipped: dict[tuple[str, int | str], int] = {}  # peeked skips, added to stats in bulk
    number = offset
    line = first.removeprefix(_BOM)
    try:
        while line:
            number += 1
            if len(line) > limit and not line.endswith(b"\n"):
                while True:  # drop the rest of the line without holding it
                    more = readline(1 << 20)
                    if not more or more.endswith(b"\n"):
                        break
                _flush(stats, skipped)
                stats.reject(f"line {number}", f"line longer than {limit:,} bytes: not read")
            else:
                text = line.strip(_SPACE)
                if text:
                    event = _line_event(src, want, text, number, decided, skipped)
                    if event is not None:
                        yield event
            line = readline(limit + 1)
    finally:
        _flush(stats, skipped)


def _line_event(
    src: Source,
    want: Relevance,
    text: bytes,
    number: int,
    decided: dict[object, bool],
    skipped: dict[tuple[str, int | str], int],
) -> RawEvent | None:
    if text[-1:] == b"}" and text[:1] == b"{":
        ident = peek(text)
        if ident is not None:
            relevant = decided.get(ident)
            if relevant is None:
                relevant = decided[ident] = bool(want(*ident))
            if not relevant and _utf8(text):
                skipped[ident] = skipped.get(ident, 0) + 1
                return None
    _flush(src.stats, skipped)  # keep the accounting in line order before touching it
    return _decode(src, want, text, number, f"line {number}")


def _flush(stats: FileStats, skipped: dict[tuple[str, int | str], int]) -> None:
    """Add the pending peeked skips to ``stats`` (the same result as one ``stats.skip``
    per line, without formatting the counter key for every skipped line)."""
    if skipped:
        for (channel, event_id), n in skipped.items():
            stats.read += n
            stats.skipped += n
            stats.skipped_by_event[f"{channel}:{event_id}"] += n
        skipped.clear()


def _utf8(text: bytes) -> bool:
    if text.isascii():
        return True
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode(src: Source, want: Relevance, text: bytes, line: int, position: str) -> RawEvent | None:
    stats = src.stats
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        stats.reject(position, _json_reason(exc, text))
        return None
    try:
        event = to_event(obj, file=src.file, member=src.member, line=line)
    except ValueError as exc:
        stats.reject(position, str(exc))
        return None
    if not want(event.channel, event.event_id):
        stats.skip(event.channel, event.event_id)
        return None
    return event


def _json_reason(exc: orjson.JSONDecodeError, text: bytes) -> str:
    message = str(exc)
    if not _utf8(text):
        return f"invalid UTF-8 ({message})"
    if "depth limit" in message or "recursion" in message:
        return f"JSON nested too deeply ({message})"
    if b"NaN" in text or b"Infinity" in text:
        return f"not valid JSON (NaN/Infinity are not JSON): {message}"
    return f"not valid JSON: {message}"


# -- JSON documents -------------------------------------------------------------------
_IN_STRING = re.compile(rb'["\\]')
_STRUCTURE = re.compile(rb'[{}\[\]"]')
_NON_SPACE = re.compile(rb"[^ \t\r\n]")
_SCALAR_END = re.compile(rb'[ \t\r\n,\]\[{}"]')
_READ = 1 << 20


def _document(
    src: Source, want: Relevance, stream: BinaryIO, offset: int, limit: int
) -> Iterator[RawEvent]:
    stats = src.stats
    for ordinal, line, value, problem in _values(stream, limit):
        position = f"element {ordinal} (line {line + offset})"
        if problem is not None:
            if value is None and ordinal == 0:
                stats.error(f"line {line + offset}", problem)
            elif value is None:
                stats.reject(position, problem)
            else:
                stats.warn(position, problem)
            continue
        assert value is not None
        event = _decode(src, want, value, line + offset, position)
        if event is not None:
            yield event


class _Scanner:
    """Splits a JSON text into its top-level values (the elements of a top-level array)."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.buf = b""
        self.eof = False
        self.line = 1  # line number at buf[line_pos]
        self.line_pos = 0

    def more(self, keep_from: int) -> int:
        """Drop buf[:keep_from], read more; returns how far positions moved."""
        self.line += self.buf.count(b"\n", self.line_pos, keep_from)
        self.line_pos = 0
        self.buf = self.buf[keep_from:]
        chunk = self.stream.read(_READ)
        if chunk:
            self.buf += chunk
        else:
            self.eof = True
        return keep_from

    def line_at(self, index: int) -> int:
        self.line += self.buf.count(b"\n", self.line_pos, index)
        self.line_pos = index
        return self.line


def _values(stream: BinaryIO, limit: int) -> Iterator[tuple[int, int, bytes | None, str | None]]:
    """(ordinal, line, value bytes, problem). A value of None with a problem is a lost
    element (ordinal > 0) or a document-level error (ordinal 0)."""
    sc = _Scanner(stream, limit)
    pos = 0
    start = -1  # start of the value being scanned, -1 between values
    depth = 0
    base: int | None = None  # 1 inside a top-level array, 0 for bare values
    closed = False
    state = ""  # "" (structure), "string", "scalar"
    skip_next = False  # a backslash ended the previous chunk: skip the escaped byte
    ordinal = 0
    start_line = 1
    while True:
        if pos >= len(sc.buf):
            if sc.eof:
                break
            moved = sc.more(start if start >= 0 else pos)
            pos -= moved
            if start >= 0:
                start -= moved
                if len(sc.buf) - start > limit:
                    yield (
                        ordinal,
                        start_line,
                        None,
                        (f"value longer than {limit:,} bytes: the rest of the file is not read"),
                    )
                    return
            continue
        buf = sc.buf
        if skip_next:
            pos += 1
            skip_next = False
            continue
        if state == "string":
            m = _IN_STRING.search(buf, pos)
            if m is None:
                pos = len(buf)
            elif m.group() == b"\\":
                pos = m.end() + 1
                skip_next = pos > len(buf)
                pos = min(pos, len(buf))
            else:
                state = ""
                pos = m.end()
                if depth == base:  # a top-level string
                    yield ordinal, start_line, buf[start:pos], None
                    start = -1
            continue
        if state == "scalar":
            m = _SCALAR_END.search(buf, pos)
            if m is None and not sc.eof:
                pos = len(buf)
                continue
            stop = m.start() if m is not None else len(buf)
            yield ordinal, start_line, buf[start:stop], None
            state, start, pos = "", -1, stop
            continue
        if start < 0:
            m = _NON_SPACE.search(buf, pos)
            if m is None:
                pos = len(buf)
                continue
            char = buf[m.start() : m.start() + 1]
            if base is None:
                base = 1 if char == b"[" else 0
                if base:
                    depth, pos = 1, m.end()
                    continue
            if closed:
                yield 0, sc.line_at(m.start()), None, "data after the end of the JSON array ignored"
                return
            if base == 1 and char in (b",", b"]"):
                pos = m.end()
                if char == b"]":
                    closed, depth = True, 0
                continue
            start, pos = m.start(), m.end()
            ordinal += 1
            start_line = sc.line_at(start)
            if char in (b"{", b"["):
                depth += 1
            elif char == b'"':
                state = "string"
            elif char in (b"}", b"]", b","):  # a stray delimiter: a one-byte bad value
                yield ordinal, start_line, char, None
                start = -1
            else:
                state = "scalar"
            continue
        m = _STRUCTURE.search(buf, pos)
        if m is None:
            pos = len(buf)
            continue
        token = m.group()
        pos = m.end()
        if token == b'"':
            state = "string"
        elif token in (b"{", b"["):
            depth += 1
        else:
            depth -= 1
            if depth == base:
                yield ordinal, start_line, buf[start:pos], None
                start = -1
    if start >= 0:
        if state == "scalar":
            yield ordinal, start_line, sc.buf[start:], None
        else:
            yield ordinal, start_line, None, "unterminated JSON value (truncated file?)"
    elif base == 1 and not closed:
        yield ordinal, sc.line, b"", "the JSON array is not closed (truncated file?)"
