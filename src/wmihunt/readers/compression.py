"""Streaming decompression (gzip, bzip2, xz) with a decompression-bomb guard.

Nothing is ever decompressed to disk or fully into memory: ``Decompressed`` is a raw
stream that yields output in bounded pieces. It is lenient where nothing is lost and
loud where something is:

- a gzip member whose deflate data is complete but whose 8-byte trailer (CRC, size) is
  missing, or bytes after the last member (e.g. one stray ``\\n``, as in some OTRF
  archives, which makes ``tar`` say "unexpected end of file"): everything is recovered,
  reported as a *warning*;
- compressed data that ends early, is corrupt, or fails its CRC: an *error* (data lost
  or suspect), after yielding everything that could be decompressed.

Expansion guard (the rule, with the defaults below): a stream or archive member is
refused — reading stops and an error is filed — as soon as its expanded size exceeds
``min(MAX_EXPANDED_BYTES, max(MAX_EXPANSION_RATIO x compressed_bytes, EXPANSION_FLOOR_BYTES))``
where ``compressed_bytes`` is what has been consumed so far (streams) or the member's
compressed size (zip; the archive as a whole is held to the same rule against its file
size). The ratio is 200, not 20: real Sysmon JSON compresses 30-50x (OTRF archives of the
corpus do) and repetitive logs more, while deflate bombs reach about 1000x. Reading is
streamed, so a bomb costs time (and, for an EVTX member, temporary disk), not memory:
a false refusal that loses real events is the worse failure. Every value can be changed
here (module defaults, read at call time) or per call through ``Limits``.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from .streams import ProblemSink, _RawReader

MIB = 1 << 20
GIB = 1 << 30

#: Refuse output beyond this multiple of the compressed input ...
MAX_EXPANSION_RATIO = 200.0
#: ... but always allow at least this much ...
EXPANSION_FLOOR_BYTES = 100 * MIB
#: ... and never more than this, whatever the ratio.
MAX_EXPANDED_BYTES = 10 * GIB
#: Archives/compressions nested deeper than this are refused.
MAX_NESTING = 4

_RAW_CHUNK = 256 * 1024
_OUT_CHUNK = 1 * MIB


@dataclass(frozen=True, slots=True)
class Limits:
    """Decompression-bomb limits (see the module docstring for the exact rule)."""

    ratio: float = MAX_EXPANSION_RATIO
    floor: int = EXPANSION_FLOOR_BYTES
    cap: int = MAX_EXPANDED_BYTES
    max_nesting: int = MAX_NESTING

    @classmethod
    def default(cls) -> Limits:
        """Limits from the module-level defaults as they are now (they may be patched)."""
        return cls(MAX_EXPANSION_RATIO, EXPANSION_FLOOR_BYTES, MAX_EXPANDED_BYTES, MAX_NESTING)

    def allowed(self, compressed: int) -> int:
        return min(self.cap, max(int(self.ratio * compressed), self.floor))

    def refusal(self, compressed: int, limit: int) -> str:
        """Why reading stopped at ``limit`` expanded bytes."""
        return (
            f"refused as a possible decompression bomb: expanded size passed {limit:,} bytes "
            f"from {compressed:,} compressed bytes (limit: min({self.cap:,}, "
            f"max({self.ratio:g} x compressed, {self.floor:,}))); the rest is not read"
        )


class _Decoder(Protocol):
    eof: bool
    unused_data: bytes
    needs_input: bool

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _GzipMember:
    """One gzip member (RFC 1952) decoded by hand, to tell a missing trailer from loss."""

    def __init__(self) -> None:
        self.eof = False
        self.unused_data = b""
        self.needs_input = True
        self.name: str | None = None
        self._state = "header"
        self._buf = b""
        self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        self._crc = 0
        self._size = 0
        self.crc_ok: bool | None = None

    def _parse_header(self) -> bool:
        buf = self._buf
        if len(buf) < 10:
            return False
        if buf[:2] != b"\x1f\x8b" or buf[2] != 8:
            raise zlib.error("not a gzip member header")
        flags = buf[3]
        pos = 10
        if flags & 4:  # FEXTRA
            if len(buf) < pos + 2:
                return False
            pos += 2 + struct.unpack_from("<H", buf, pos)[0]
        for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
            if flags & flag:
                end = buf.find(b"\x00", pos)
                if end < 0:
                    return False
                if flag == 8:
                    self.name = buf[pos:end].decode("latin-1")
                pos = end + 1
        if flags & 2:  # FHCRC
            pos += 2
        if len(buf) < pos:
            return False
        self._buf = buf[pos:]
        self._state = "body"
        return True

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if data:
            self._buf = self._buf + data if self._buf else data
        if self._state == "header" and not self._parse_header():
            self.needs_input = True
            return b""
        out = b""
        if self._state == "body":
            out = self._inflate.decompress(self._buf, max_length)
            self._buf = self._inflate.unconsumed_tail
            self._crc = zlib.crc32(out, self._crc)
            self._size += len(out)
            if self._inflate.eof:  # the leftover input is unused_data (not also the tail)
                self._buf = self._inflate.unused_data
                self._state = "trailer"
        if self._state == "trailer" and len(self._buf) >= 8:
            crc, size = struct.unpack_from("<II", self._buf)
            self.crc_ok = crc == self._crc and size == (self._size & 0xFFFFFFFF)
            self.unused_data = self._buf[8:]
            self._buf = b""
            self._state = "done"
            self.eof = True
        full = max_length > 0 and len(out) >= max_length
        self.needs_input = not self.eof and not full and not self._buf_pending()
        return out

    def _buf_pending(self) -> bool:
        return self._state == "body" and bool(self._buf)

    def truncation(self) -> tuple[str, str]:
        """(level, reason) when the raw data ends before this member does."""
        if self._state == "header":
            return "error", "compressed data ends inside a gzip header (truncated file)"
        if self._state == "body":
            return "error", (
                "compressed data ends early (truncated file): everything before was "
                "recovered, the end of the stream is lost"
            )
        missing = 8 - len(self._buf)
        return "warning", (
            f"gzip trailer missing ({missing} of 8 bytes): the data is complete and was all "
            "recovered, but its CRC could not be checked"
        )


_MAGIC = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00"}


def _new_decoder(kind: str) -> _Decoder:
    if kind == "gzip":
        return _GzipMember()
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    raise ValueError(kind)


class Decompressed(_RawReader):
    """The decompressed content of ``raw`` (gzip, bzip2 or xz; multi-member aware)."""

    def __init__(self, raw: BinaryIO, kind: str, sink: ProblemSink, limits: Limits) -> None:
        super().__init__()
        self._raw = raw
        self._kind = kind
        self._sink = sink
        self._limits = limits
        self._dec: _Decoder = _new_decoder(kind)
        self._in_total = 0
        self.out_total = 0
        self._finished = False
        self._pending_in = b""
        #: Original file name stored in the first gzip header, if any.
        self.stored_name: str | None = None

    def _read_raw(self) -> bytes:
        data = self._raw.read(_RAW_CHUNK)
        self._in_total += len(data)
        return data

    def _where(self) -> str:
        return f"compressed byte {self._in_total:,}"

    def _stop(self, level: str, reason: str) -> bytes:
        self._finished = True
        if level == "error":
            self._sink.error(self._where(), f"{self._kind}: {reason}")
        else:
            self._sink.warning(self._where(), f"{self._kind}: {reason}")
        return b""

    def _after_member(self) -> bytes | None:
        """At the end of a member: start the next one, or finish. None means go on."""
        dec = self._dec
        if isinstance(dec, _GzipMember):
            if self.stored_name is None:
                self.stored_name = dec.name
            if dec.crc_ok is False:
                self._sink.error(
                    self._where(), "gzip: CRC or size mismatch: the data read may be corrupt"
                )
        rest = dec.unused_data or self._read_raw()
        if not rest:
            self._finished = True
            return b""
        magic = _MAGIC[self._kind]
        if len(rest) < len(magic):
            rest += self._read_raw()
        if rest.startswith(magic):
            self._dec = _new_decoder(self._kind)
            self._pending_in = rest
            return None
        extra = len(rest)
        zeros = not rest.strip(b"\x00")
        while extra < 64 * MIB:  # count what is left, within reason
            more = self._read_raw()
            if not more:
                break
            extra += len(more)
            zeros = zeros and not more.strip(b"\x00")
        noun = "byte" if extra == 1 else "bytes"
        what = f"zero {noun}" if zeros else f"{noun} of trailing data"
        return self._stop(
            "warning",
            f"{extra:,} {what} after the end of the compressed stream ignored "
            "(tools may call this 'unexpected end of file'); all data was recovered",
        )

    def _produce(self, size: int) -> bytes:
        while not self._finished:
            dec = self._dec
            if dec.eof:
                done = self._after_member()
                if done is not None:
                    return done
                continue
            data = b""
            if dec.needs_input:
                data, self._pending_in = self._pending_in, b""
                if not data:
                    data = self._read_raw()
                if not data:
                    if isinstance(dec, _GzipMember):
                        level, reason = dec.truncation()
                    else:
                        level, reason = "error", "compressed data ends early (truncated file)"
                    return self._stop(level, reason)
            try:
                out = dec.decompress(data, _OUT_CHUNK)
            except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
                return self._stop("error", f"corrupt compressed data ({exc}): the rest is lost")
            if out:
                allowed = self._limits.allowed(self._in_total)
                if self.out_total + len(out) > allowed:  # deliver up to the limit, then stop
                    out = out[: max(0, allowed - self.out_total)]
                    self.out_total += len(out)
                    self._stop("error", self._limits.refusal(self._in_total, allowed))
                    return out
                self.out_total += len(out)
                return out
        return b""
