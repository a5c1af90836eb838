"""Decide what a byte stream holds from its first bytes, never from its file name.

``sniff(head)`` looks at up to ``HEAD_BYTES`` bytes and returns one of the ``Kind`` names:
compressions (``gzip``, ``bzip2``, ``xz``: transparent layers), containers (``zip``,
``tar``: one entry per member), text encodings to undo first (``utf-16-le``,
``utf-16-be``: transcoded to UTF-8, then sniffed again), leaf formats (``evtx``, ``xml``,
``json``), ``empty`` (nothing but whitespace), or ``unsupported:<what>`` / ``unknown``.
"""

from __future__ import annotations

#: How many bytes the container layer reads ahead for sniffing (a tar header needs 512).
HEAD_BYTES = 4096

EVTX_MAGIC = b"ElfFile\x00"
_UTF8_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"

_MAGICS: tuple[tuple[bytes, str], ...] = (
    (EVTX_MAGIC, "evtx"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # empty archive
    (b"(\xb5/\xfd", "unsupported:zstd"),
    (b"7z\xbc\xaf\x27\x1c", "unsupported:7z"),
    (b"Rar!\x1a\x07", "unsupported:rar"),
    (b"ElfChnk\x00", "unsupported:a bare EVTX chunk without file header"),
    (b"MSCF", "unsupported:cab"),
)


def _is_tar_header(block: bytes) -> bool:
    """A POSIX/GNU tar header: "ustar" magic, or (old v7 tar) a valid header checksum."""
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    stored = block[148:156].split(b"\x00", 1)[0].strip()
    if not stored or not all(48 <= c <= 55 for c in stored):  # octal digits only
        return False
    if not block[:100].rstrip(b"\x00"):  # no member name
        return False
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return int(stored, 8) == computed


def _first_text_char(text: bytes) -> str | None:
    stripped = text.lstrip(_WHITESPACE)
    return chr(stripped[0]) if stripped else None


def sniff(head: bytes) -> str:
    """Return the kind of stream whose first bytes are ``head`` (see module docstring)."""
    for magic, kind in _MAGICS:
        if head.startswith(magic):
            return kind
    if _is_tar_header(head[:512]):
        return "tar"
    if head.startswith(b"\xff\xfe") and not head.startswith(b"\xff\xfe\x00\x00"):
        return "utf-16-le"
    if head.startswith(b"\xfe\xff"):
        return "utf-16-be"
    # UTF-16 without a byte order mark: ASCII markup interleaved with NULs.
    if len(head) >= 2 and head[1] == 0 and head[0] in b"<{[ \t\r\n":
        return "utf-16-le"
    if len(head) >= 2 and head[0] == 0 and head[1] in b"<{[ \t\r\n":
        return "utf-16-be"
    text = head[len(_UTF8_BOM) :] if head.startswith(_UTF8_BOM) else head
    first = _first_text_char(text)
    if first is None:
        return "empty"
    if first == "<":
        return "xml"
    if first in "{[":
        return "json"
    return "unknown"


def describe_head(head: bytes, n: int = 16) -> str:
    """A short, printable rendering of the first bytes, for "unrecognised format" errors."""
    return head[:n].hex(" ") if head else "(empty)"
