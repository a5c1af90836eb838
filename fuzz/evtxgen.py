"""Write valid EVTX files from Windows event XML, so EVTX seeds need no outside file.

The project has no EVTX of its own (its samples are XML and JSON), and the corpus may be
absent, so the fuzz seeds and the robustness tests build EVTX here: each ``<Event>``
element becomes one record whose Binary XML is a template instance with an inline template
definition and no substitutions (every value is literal text), the layout a parser must
handle for any Windows record. Chunks, the file header and every checksum are filled as
Windows does; ``pyevtx-rs`` reads the result back to the same JSON as the XML.

Layout notes (offsets are the ones the parser and the robustness tests rely on):

- file header: 4096 bytes (``FILE_HEADER``), CRC32 of its first 120 bytes at 124;
- chunk: 65536 bytes (``CHUNK``), header 512 bytes; CRC32 of the records at 52 and of
  header bytes 0-120 + 128-512 at 124; records start at 512;
- record: ``**\\0\\0``, size, record id, FILETIME, Binary XML, size again.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterable, Sequence

FILE_HEADER = 4096
CHUNK = 65536
CHUNK_HEADER = 512
RECORD_HEADER = 24
_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le", errors="surrogatepass")


class _Fragment:
    """Binary XML of one template definition; offsets are absolute within the chunk."""

    def __init__(self, base: int) -> None:
        self.out = bytearray()
        self.base = base
        #: (value type, packed value) of each substitution, in index order
        self.subs: list[tuple[int, bytes]] = []

    def _pos(self) -> int:
        return self.base + len(self.out)

    def name(self, text: str) -> None:
        # A name reference pointing right after itself: the name is defined inline.
        self.out += struct.pack("<I", self._pos() + 4)
        chars = _utf16(text)
        self.out += struct.pack("<IHH", 0, _name_hash(text), len(chars) // 2)
        self.out += chars + b"\x00\x00"

    def value(self, text: str, more: bool = False) -> None:
        chars = _utf16(text)
        self.out += bytes([0x45 if more else 0x05, 0x01]) + struct.pack("<H", len(chars) // 2)
        self.out += chars

    def substitution(self, value_type: int, fmt: str, number: int) -> None:
        """A typed value, given by the template instance (as Windows writes numbers)."""
        bits = struct.calcsize(fmt) * 8
        self.out += bytes([0x0D]) + struct.pack("<HB", len(self.subs), value_type)
        self.subs.append((value_type, struct.pack(fmt, number % (1 << bits))))

    def element(self, node: ET.Element) -> None:
        attrs = list(node.attrib.items())
        self.out.append(0x41 if attrs else 0x01)
        self.out += struct.pack("<H", 0xFFFF)  # dependency identifier: none
        size_at = len(self.out)
        self.out += b"\x00\x00\x00\x00"  # data size, filled below
        self.name(_local(node.tag))
        if attrs:
            list_at = len(self.out)
            self.out += b"\x00\x00\x00\x00"
            for i, (key, val) in enumerate(attrs):
                self.out.append(0x46 if i < len(attrs) - 1 else 0x06)
                self.name(_local(key))
                self.value(val)
            struct.pack_into("<I", self.out, list_at, len(self.out) - list_at - 4)
        children = list(node)
        text = node.text or ""
        if not children and not text:
            self.out.append(0x03)  # close empty element
        else:
            self.out.append(0x02)  # close start element
            typed = _NUMERIC.get(_local(node.tag))
            if typed is not None and not children and text.isdigit() and len(text) < 19:
                self.substitution(*typed, int(text))
            elif text:
                self.value(text)
            for child in children:
                self.element(child)
                if child.tail and child.tail.strip():
                    self.value(child.tail)
            self.out.append(0x04)  # end element
        struct.pack_into("<I", self.out, size_at, len(self.out) - size_at - 4)


#: System fields written as typed substitutions: (BinXML value type, struct format).
_NUMERIC = {
    "EventID": (0x06, "<H"),
    "Version": (0x04, "<B"),
    "Level": (0x04, "<B"),
    "Task": (0x06, "<H"),
    "Opcode": (0x04, "<B"),
    "EventRecordID": (0x0A, "<Q"),
}


def _name_hash(text: str) -> int:
    """The 16-bit name hash Windows stores (the parser does not check it)."""
    h = 0
    for ch in text:
        h = (h * 65599 + ord(ch)) & 0xFFFFFFFF
    return h & 0xFFFF


def record_binxml(event: ET.Element, at: int, template_id: int) -> bytes:
    """The Binary XML of one record that starts at chunk offset ``at`` (after its header)."""
    head = bytearray(b"\x0f\x01\x01\x00")  # fragment header
    head.append(0x0C)  # template instance
    head.append(0x01)
    head += struct.pack("<I", template_id)
    def_at = at + len(head) + 4
    head += struct.pack("<I", def_at)
    # Template definition: next offset, GUID, data size, then the fragment.
    body = _Fragment(def_at + 24)
    body.out += b"\x0f\x01\x01\x00"
    body.element(event)
    body.out.append(0x00)  # end of stream
    guid = uuid.UUID(int=template_id).bytes_le
    head += struct.pack("<I", 0) + guid + struct.pack("<I", len(body.out))
    subs = struct.pack("<I", len(body.subs))
    subs += b"".join(struct.pack("<HBB", len(v), t, 0) for t, v in body.subs)
    subs += b"".join(v for _, v in body.subs)
    return bytes(head) + bytes(body.out) + subs + b"\x00"


def _filetime(event: ET.Element) -> int:
    for node in event.iter():
        if _local(node.tag) == "TimeCreated":
            text = node.get("SystemTime", "")
            try:
                when = dt.datetime.fromisoformat(text.replace("Z", "+00:00")[:26] + "+00:00")
            except ValueError:
                break
            return int((when - _EPOCH).total_seconds() * 10_000_000)
    return 0


def _record(event: ET.Element, record_id: int, at: int) -> bytes:
    binxml = record_binxml(event, at + RECORD_HEADER, record_id)
    size = RECORD_HEADER + len(binxml) + 4
    pad = (-size) % 8
    size += pad
    head = b"**\x00\x00" + struct.pack("<IQQ", size, record_id, _filetime(event))
    return head + binxml + b"\x00" * pad + struct.pack("<I", size)


def _chunk(records: Sequence[tuple[int, bytes]], offsets: Sequence[int]) -> bytes:
    data = b"".join(r for _, r in records)
    first, last = records[0][0], records[-1][0]
    free = CHUNK_HEADER + len(data)
    header = bytearray(CHUNK_HEADER)
    header[0:8] = b"ElfChnk\x00"
    struct.pack_into("<QQQQ", header, 8, first, last, first, last)
    struct.pack_into("<III", header, 40, 128, offsets[-1], free)
    struct.pack_into("<I", header, 52, zlib.crc32(data))
    struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120]) + bytes(header[128:])))
    return bytes(header) + data + b"\x00" * (CHUNK - free)


def fix_chunk_checksums(chunk: bytearray) -> None:
    """Recompute a chunk's two checksums in place (after a deliberate edit)."""
    (free,) = struct.unpack_from("<I", chunk, 48)
    free = min(max(free, CHUNK_HEADER), len(chunk))
    struct.pack_into("<I", chunk, 52, zlib.crc32(bytes(chunk[CHUNK_HEADER:free])))
    struct.pack_into("<I", chunk, 124, zlib.crc32(bytes(chunk[:120]) + bytes(chunk[128:512])))


def file_header(chunks: int, next_record: int) -> bytes:
    header = bytearray(FILE_HEADER)
    header[0:8] = b"ElfFile\x00"
    struct.pack_into("<QQQ", header, 8, 0, max(chunks - 1, 0), next_record)
    struct.pack_into("<IHHHH", header, 32, 128, 1, 3, FILE_HEADER, chunks)
    struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120])))
    return bytes(header)


def evtx_from_elements(events: Iterable[ET.Element], first_record: int = 1) -> bytes:
    """An EVTX file holding ``events`` as records numbered from ``first_record``."""
    chunks: list[bytes] = []
    pending: list[tuple[int, bytes]] = []
    offsets: list[int] = []
    record_id = first_record
    for event in events:
        at = CHUNK_HEADER + sum(len(r) for _, r in pending)
        rec = _record(event, record_id, at)
        if at + len(rec) > CHUNK and pending:
            chunks.append(_chunk(pending, offsets))
            pending, offsets, at = [], [], CHUNK_HEADER
            rec = _record(event, record_id, at)
        if at + len(rec) > CHUNK:
            raise ValueError(f"event {record_id} does not fit in one chunk ({len(rec)} bytes)")
        pending.append((record_id, rec))
        offsets.append(at)
        record_id += 1
    if pending:
        chunks.append(_chunk(pending, offsets))
    return file_header(len(chunks), record_id) + b"".join(chunks)


def events_in_xml(text: str | bytes) -> list[ET.Element]:
    """The ``<Event>`` elements of an XML export (``<Events>`` root or bare events)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    body = text.split("?>", 1)[1] if text.lstrip().startswith("<?xml") else text
    if "<Events" not in body[:200]:
        body = f"<Events>{body}</Events>"
    root = ET.fromstring(body)
    return [e for e in root.iter() if _local(e.tag) == "Event"]


def evtx_from_xml(text: str | bytes, first_record: int = 1) -> bytes:
    """EVTX bytes holding every ``<Event>`` of ``text``."""
    return evtx_from_elements(events_in_xml(text), first_record)


def chunk_offsets(data: bytes) -> list[int]:
    """Start offsets of the chunks a file header declares (and that the data holds)."""
    if len(data) < FILE_HEADER:
        return []
    (count,) = struct.unpack_from("<H", data, 42)
    return [FILE_HEADER + i * CHUNK for i in range(count) if FILE_HEADER + i * CHUNK < len(data)]


def record_offsets(data: bytes, chunk_at: int) -> list[tuple[int, int]]:
    """(offset, size) of each record in the chunk at ``chunk_at`` (walking the sizes)."""
    out = []
    pos = chunk_at + CHUNK_HEADER
    end = min(chunk_at + CHUNK, len(data))
    while pos + RECORD_HEADER <= end and data[pos : pos + 4] == b"**\x00\x00":
        (size,) = struct.unpack_from("<I", data, pos + 4)
        if size < RECORD_HEADER + 4 or pos + size > end:
            break
        out.append((pos, size))
        pos += size
    return out
