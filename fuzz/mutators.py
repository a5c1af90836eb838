"""Mutations of seed inputs: generic byte edits plus format-aware damage per target.

Every mutator is ``(data, rng) -> bytes`` and never raises. The format-aware ones make
the damage the issue names: for EVTX bit flips, truncation inside a chunk header, wrong
or recomputed checksums, zeroed and resized records; for XML unclosed tags, DOCTYPEs
with entity expansion, external entities and deep nesting; for JSON invalid UTF-8, NaN,
deep nesting, long lines and a wrong type for a field; for archives cut trailers, bad
member names and nesting. ``mutate(target, data, rng, others)`` picks a few at random.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import re
import struct
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from .evtxgen import CHUNK, CHUNK_HEADER, FILE_HEADER, chunk_offsets, fix_chunk_checksums
from .evtxgen import record_offsets as _records

Mutator = Callable[[bytes, random.Random], bytes]

_INTERESTING = (
    b"\x00", b"\xff", b"\x7f", b"\x80", b"\xfe\xff", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80",
    b"\x01\x00\x00\x00", b"<", b">", b"&", b"\"", b"\\", b"{", b"}", b"[", b"]", b"\n",
    b"\r\n", b"\xef\xbb\xbf", b"\xc3", b"\xed\xa0\x80", b"NaN", b"-Infinity", b"1e999",
    b"99999999999999999999999", b"\\ud800", b"%n%s", b"\x1b[31m",
)  # fmt: skip


# -- generic --------------------------------------------------------------------------
def bit_flip(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return b"\x00"
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def set_bytes(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    token = rng.choice(_INTERESTING) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 8))
    return data[:at] + token + data[at + (len(token) if rng.random() < 0.5 else 0) :]


def delete_range(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randint(1, min(64, len(data) - at)) :]


def duplicate_range(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    piece = data[at : at + rng.randint(1, 256)]
    to = rng.randrange(len(data) + 1)
    return data[:to] + piece * rng.choice((1, 1, 2, 16)) + data[to:]


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)] if data else data


def zero_range(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    n = rng.randint(1, 512)
    return data[:at] + b"\x00" * min(n, len(data) - at) + data[at + n :]


GENERIC: tuple[Mutator, ...] = (bit_flip, set_bytes, delete_range, duplicate_range, truncate,
                                zero_range)  # fmt: skip


def splice(data: bytes, other: bytes, rng: random.Random) -> bytes:
    """Head of one input, tail of another (cross-over)."""
    if not data or not other:
        return data or other
    return data[: rng.randrange(len(data))] + other[rng.randrange(len(other)) :]


# -- EVTX -----------------------------------------------------------------------------
def _pick_chunk(data: bytes, rng: random.Random) -> int | None:
    chunks = chunk_offsets(data)
    return rng.choice(chunks) if chunks else None


def evtx_truncate_chunk_header(data: bytes, rng: random.Random) -> bytes:
    """Cut the file at an offset inside a chunk header (the file header says more)."""
    at = _pick_chunk(data, rng)
    return data if at is None else data[: at + rng.randrange(CHUNK_HEADER)]


def evtx_flip_in_chunk_header(data: bytes, rng: random.Random) -> bytes:
    at = _pick_chunk(data, rng)
    if at is None:
        return bit_flip(data, rng)
    out = bytearray(data)
    i = at + rng.randrange(min(CHUNK_HEADER, len(out) - at))
    out[i] ^= 1 << rng.randrange(8)
    if rng.random() < 0.5:  # a consistent header the parser will trust
        _fix(out, at)
    return bytes(out)


def _fix(out: bytearray, at: int) -> None:
    chunk = bytearray(out[at : at + CHUNK])
    if len(chunk) >= CHUNK_HEADER:
        fix_chunk_checksums(chunk)
        out[at : at + len(chunk)] = chunk


def evtx_wrong_checksum(data: bytes, rng: random.Random) -> bytes:
    """Break one of the three checksums (file header, chunk header, chunk records)."""
    out = bytearray(data)
    which = rng.randrange(3)
    if which == 0 and len(out) >= 128:
        out[124] ^= 0xFF
    else:
        at = _pick_chunk(data, rng)
        if at is None or len(out) < at + 128:
            return bit_flip(data, rng)
        out[at + (124 if which == 1 else 52)] ^= 0xFF
    return bytes(out)


def evtx_edit_record(data: bytes, rng: random.Random) -> bytes:
    """Zero, flip, resize or duplicate one record; optionally recompute the checksums."""
    at = _pick_chunk(data, rng)
    if at is None:
        return bit_flip(data, rng)
    records = _records(data, at)
    if not records:
        return bit_flip(data, rng)
    out = bytearray(data)
    pos, size = rng.choice(records)
    kind = rng.randrange(6)
    if kind == 0:  # zero the whole record
        out[pos : pos + size] = b"\x00" * size
    elif kind == 1:  # zero its Binary XML only (header kept)
        out[pos + 24 : pos + size - 4] = b"\x00" * (size - 28)
    elif kind == 2:  # a lying size field
        value = rng.choice((0, 1, 24, size - 8, size + 8, 0xFFFF, 0xFFFFFFFF))
        struct.pack_into("<I", out, pos + 4, value)
    elif kind == 3:  # a duplicate record id
        (rid,) = struct.unpack_from("<Q", out, records[0][0] + 8)
        struct.pack_into("<Q", out, pos + 8, rid)
    elif kind == 4:  # flip bits inside the Binary XML
        for _ in range(rng.randint(1, 6)):
            i = pos + 24 + rng.randrange(max(1, size - 28))
            out[i] ^= 1 << rng.randrange(8)
    else:  # copy another record over this one (sizes may not match)
        src_pos, src_size = rng.choice(records)
        piece = bytes(out[src_pos : src_pos + src_size])[: CHUNK - (pos - at)]
        out[pos : pos + len(piece)] = piece
    if rng.random() < 0.7:
        _fix(out, at)
    return bytes(out)


def evtx_chunk_count(data: bytes, rng: random.Random) -> bytes:
    """A file header that declares a different number of chunks (checksum kept valid)."""
    if len(data) < FILE_HEADER:
        return data
    out = bytearray(data)
    struct.pack_into("<H", out, 42, rng.choice((0, 1, 2, 255, 0xFFFF)))
    if rng.random() < 0.7:
        import zlib

        struct.pack_into("<I", out, 124, zlib.crc32(bytes(out[:120])))
    return bytes(out)


def evtx_offsets(data: bytes, rng: random.Random) -> bytes:
    """Point a chunk's string/template tables or last-record/free-space offsets elsewhere."""
    at = _pick_chunk(data, rng)
    if at is None or len(data) < at + CHUNK_HEADER:
        return bit_flip(data, rng)
    out = bytearray(data)
    field = rng.choice((44, 48, 128 + 4 * rng.randrange(64), 384 + 4 * rng.randrange(32)))
    value = rng.choice((0, 1, 511, 512, 600, CHUNK - 1, CHUNK, 0xFFFFFFFF, rng.randrange(CHUNK)))
    struct.pack_into("<I", out, at + field, value)
    _fix(out, at)
    return bytes(out)


EVTX: tuple[Mutator, ...] = (evtx_truncate_chunk_header, evtx_flip_in_chunk_header,
                             evtx_wrong_checksum, evtx_edit_record, evtx_edit_record,
                             evtx_chunk_count, evtx_offsets)  # fmt: skip


# -- XML ------------------------------------------------------------------------------
_LAUGHS = (
    b'<!DOCTYPE Event [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>'
)
_EXTERNAL = b'<!DOCTYPE Event [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
_PARAM = b'<!DOCTYPE Event [<!ENTITY % p SYSTEM "http://192.0.2.1/x.dtd"> %p;]>'


def _at_tag(data: bytes, rng: random.Random, pattern: bytes) -> int:
    spots = [m.start() for m in re.finditer(pattern, data)]
    return rng.choice(spots) if spots else rng.randrange(len(data) + 1)


def xml_doctype(data: bytes, rng: random.Random) -> bytes:
    at = _at_tag(data, rng, rb"<Event[\s>]")
    decl = rng.choice((_LAUGHS, _EXTERNAL, _PARAM, b"<!DOCTYPE Event>"))
    ref = rng.choice((b"&d;", b"&x;", b"&undefined;", b""))
    out = data[:at] + decl + data[at:]
    spot = out.find(b"</Data>", at)
    return out[:spot] + ref + out[spot:] if spot > 0 else out


def xml_unclose(data: bytes, rng: random.Random) -> bytes:
    """Drop a closing tag (``</Data>``, ``</System>``, ``</Event>`` ...)."""
    ends = [m for m in re.finditer(rb"</[A-Za-z:]+\s*>", data)]
    if not ends:
        return data + b"<Event><System>"
    m = rng.choice(ends)
    return data[: m.start()] + data[m.end() :]


def xml_nest(data: bytes, rng: random.Random) -> bytes:
    """Deep nesting inside event data (or anywhere)."""
    depth = rng.choice((10, 500, 2000, 20000))
    at = _at_tag(data, rng, rb"<Data[\s>]|<UserData>|<EventData>")
    tag = rng.choice((b"a", b"Data", b"Event", b"x:y"))
    opened = b"<" + tag + b">"
    closed = b"</" + tag + b">"
    return data[:at] + opened * depth + b"deep" + closed * depth + data[at:]


def xml_junk(data: bytes, rng: random.Random) -> bytes:
    """Markup that parsers trip on: CDATA, comments, PIs, odd encodings, control bytes."""
    piece = rng.choice((
        b"<![CDATA[</Event>]]>", b"<!-- </Event> -->", b"<?pi x?>", b"&#0;", b"&#xD800;",
        b"&#1114112;", b"\x00", b"\x1b]0;title\x07", b'<?xml version="1.0" encoding="x-bogus"?>',
        b'<?xml version="1.0" encoding="utf-16"?>', b"<Event>", b"</Event>", b"</Event >",
        b"<e:Event xmlns:e='u'>", b"<System/>", b"<EventID>99999999999</EventID>",
        b"<EventID>-1</EventID>", b"<Channel>&amp;</Channel>", b" Name=''", b"\xff\xfe",
    ))  # fmt: skip
    at = rng.randrange(len(data) + 1)
    return data[:at] + piece + data[at:]


XML: tuple[Mutator, ...] = (xml_doctype, xml_unclose, xml_unclose, xml_nest, xml_junk, xml_junk)


# -- JSON -----------------------------------------------------------------------------
_WRONG: tuple[Any, ...] = (None, True, False, 0, -1, 2**63 - 1, 1.5, "", "x", "4688",
                           " 1 ", [], [1, "a"], {}, {"#text": 1}, {"a": {"b": None}},
                           "\u202e\x1b[2J", "C:\\" + "A" * 300)  # fmt: skip


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out.extend(_paths(child, (*prefix, i)))
    return out


def _set(root: Any, path: tuple[Any, ...], value: Any) -> None:
    node = root
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def wrong_type(obj: Any, rng: random.Random) -> Any:
    """Give one field (at any depth) a value of another type."""
    paths = _paths(obj)
    if paths:
        _set(obj, rng.choice(paths), rng.choice(_WRONG))
    return obj


def _lines_edit(data: bytes, rng: random.Random, edit: Callable[[bytes], bytes]) -> bytes:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    lines[i] = edit(lines[i])
    return b"\n".join(lines)


def json_wrong_type(data: bytes, rng: random.Random) -> bytes:
    def edit(line: bytes) -> bytes:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return line
        return orjson.dumps(wrong_type(obj, rng))

    if data.lstrip()[:1] == b"[":  # a JSON document: edit the whole value
        try:
            return orjson.dumps(wrong_type(orjson.loads(data), rng), option=orjson.OPT_INDENT_2)
        except orjson.JSONDecodeError:
            return data
    return _lines_edit(data, rng, edit)


def json_bad_text(data: bytes, rng: random.Random) -> bytes:
    """Invalid UTF-8, NaN/Infinity, lone surrogate escapes, control bytes, inside a value."""
    piece = rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"NaN", b"Infinity",
                        b"\\ud800", b"\\udfff\\ud800", b"\\u0000", b"\x00", b"\x1b[31m",
                        b"\xef\xbb\xbf", b"1e400", b"-0", b"18446744073709551616"))  # fmt: skip
    spots = [m.end() for m in re.finditer(rb':\s*"?', data)] or [rng.randrange(len(data) + 1)]
    at = rng.choice(spots)
    return data[:at] + piece + data[at:]


def json_nest(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice((100, 600, 1100, 5000, 100000))
    kind = rng.choice(((b"[", b"]"), (b'{"a":', b"}")))
    spots = [m.end() for m in re.finditer(rb":\s*", data)] or [0]
    at = rng.choice(spots)
    end = data.find(b",", at)
    end = end if end > 0 else at
    return data[:at] + kind[0] * depth + b"1" + kind[1] * depth + data[end:]


def json_long_line(data: bytes, rng: random.Random) -> bytes:
    """A long value (the tests cover 100 MB lines; fuzzing keeps it fast)."""
    spots = [m.end() for m in re.finditer(rb':\s*"', data)] or [0]
    at = rng.choice(spots)
    return data[:at] + b"A" * rng.choice((1000, 70000, 1 << 20)) + data[at:]


def json_structure(data: bytes, rng: random.Random) -> bytes:
    """Line structure damage: split/join lines, blank lines, arrays, stray delimiters."""
    piece = rng.choice((b"\n", b"\r\n", b"", b"\n\n\n", b"][", b",", b"}{", b"\n[", b"]\n",
                        b"\n{}\n", b"\nnull\n", b'\n"x"\n', b"\n[]\n", b"\n1\n"))  # fmt: skip
    at = rng.randrange(len(data) + 1)
    return data[:at] + piece + data[at + rng.choice((0, 0, 1)) :]


JSON: tuple[Mutator, ...] = (json_wrong_type, json_wrong_type, json_wrong_type, json_bad_text,
                             json_nest, json_long_line, json_structure)  # fmt: skip


# -- archives -------------------------------------------------------------------------
def _tar(members: Sequence[tuple[str, bytes]], mode: str = "w") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode=mode) as tar:  # type: ignore[call-overload]
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


def _zip(members: Sequence[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in members:
            z.writestr(name, content)
    return raw.getvalue()


_NAMES = ("logs/a.json", "/etc/passwd", "../../../tmp/x.evtx", "C:\\Windows\\x.xml",
          "a/../../b.jsonl", "", "\x1b[2J.json", "dir/")  # fmt: skip


def wrap(data: bytes, rng: random.Random) -> bytes:
    """Put the input in a container (gzip, bzip2, xz, zip, tar), maybe damaged."""
    kind = rng.randrange(7)
    name = rng.choice(_NAMES)
    if kind == 0:
        out = gzip.compress(data, mtime=0)
        return out[: -rng.choice((1, 4, 8))] if rng.random() < 0.3 else out
    if kind == 1:
        return bz2.compress(data)
    if kind == 2:
        return lzma.compress(data)
    if kind == 3:
        return _zip([(name or "x", data), ("b.txt", data[:100])])
    if kind == 4:
        return _tar([(name or "x", data), ("second.json", data[: len(data) // 2])])
    if kind == 5:
        return gzip.compress(_tar([(name or "x", data)]), mtime=0)
    return _zip([("inner.tar.gz", gzip.compress(_tar([(name or "x", data)]), mtime=0))])


ARCHIVE: tuple[Mutator, ...] = (wrap, wrap)


# -- dispatch -------------------------------------------------------------------------
FORMAT_MUTATORS: dict[str, tuple[Mutator, ...]] = {
    "evtx": EVTX,
    "xml": XML,
    "jsonl": JSON,
    "json": JSON,
    "crowdstrike": JSON,
    "normalize": (json_wrong_type, json_wrong_type, json_bad_text),
    "archive": GENERIC,  # archive seeds are containers already: damage their bytes
}

#: Largest input a mutation may produce (bigger results are cut): keeps executions fast.
MAX_INPUT = 4 << 20


def _safely(mutator: Mutator, data: bytes, rng: random.Random) -> bytes:
    """Format-aware mutators parse their input, which may already be broken: a mutator
    that fails leaves the data as it was."""
    try:
        return mutator(data, rng)
    except (ValueError, TypeError, RecursionError, OverflowError, struct.error):
        return data


def mutate(target: str, data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
    """One fuzz input: 1-4 edits, format-aware ones about half of the time."""
    specific = FORMAT_MUTATORS.get(target, ())
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        roll = rng.random()
        if roll < 0.08 and others:
            data = splice(data, rng.choice(others), rng)
        elif roll < 0.55 and specific:
            data = _safely(rng.choice(specific), data, rng)
        elif roll < 0.6 and target != "archive":
            data = _safely(wrap, data, rng)
        else:
            data = rng.choice(GENERIC)(data, rng)
        data = data[:MAX_INPUT]
    return data
