"""Byte-stream plumbing shared by the container layer: read-ahead, guards, transcoding.

Every stream here turns failures of the layer below (a truncated archive, a CRC error, an
I/O error, an expansion past the bomb limit) into a ``Problem`` in a ``ProblemSink`` and
an early end of data, so format readers simply see EOF and never an exception. The
container layer then files the problems on the file entry being read.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from ..accounting import FileStats

#: Read size for the layers below the format readers.
CHUNK_BYTES = 1 << 20


@dataclass(slots=True)
class Problem:
    level: str  # "error" (something was lost) or "warning" (nothing was lost)
    position: str
    reason: str


@dataclass
class ProblemSink:
    """Problems seen by the streams of one input, waiting to be filed on a file entry."""

    items: list[Problem] = field(default_factory=list)

    def error(self, position: str, reason: str) -> None:
        self.items.append(Problem("error", position, reason))

    def warning(self, position: str, reason: str) -> None:
        self.items.append(Problem("warning", position, reason))

    def file_on(self, stats: FileStats) -> None:
        """Move every pending problem onto ``stats``."""
        for p in self.items:
            if p.level == "error":
                stats.error(p.position, p.reason)
            else:
                stats.warn(p.position, p.reason)
        self.items.clear()


def read_fully(stream: BinaryIO, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads; fewer only at end of data."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class _RawReader(io.RawIOBase):
    """Base for raw streams that produce bytes through ``_produce`` (b"" means EOF)."""

    def __init__(self) -> None:
        super().__init__()
        self._buf = b""
        self._pos = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def _produce(self, size: int) -> bytes:
        raise NotImplementedError

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        want = len(b)
        while self._pos >= len(self._buf) and not self._eof:
            self._buf = self._produce(want)
            self._pos = 0
            if not self._buf:
                self._eof = True
        n = min(want, len(self._buf) - self._pos)
        b[:n] = memoryview(self._buf)[self._pos : self._pos + n]
        self._pos += n
        return n


class Prefixed(_RawReader):
    """``head`` (already read for sniffing) followed by the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        super().__init__()
        self._head: bytes | None = head
        self._stream = stream

    def _produce(self, size: int) -> bytes:
        if self._head:
            head, self._head = self._head, None
            return head
        return self._stream.read(size)


class Guarded(_RawReader):
    """Reads ``stream`` and turns its exceptions into problems; optionally caps its size.

    With ``max_bytes``, at most that many bytes are delivered; then reading stops with the
    error ``refusal(max_bytes)`` (the decompression-bomb guard of archive members).
    """

    def __init__(
        self,
        stream: BinaryIO,
        sink: ProblemSink,
        what: str,
        max_bytes: int | None = None,
        refusal: Callable[[int], str] | None = None,
    ) -> None:
        super().__init__()
        self._stream = stream
        self._sink = sink
        self._what = what
        self._max = max_bytes
        self._refusal = refusal
        self.total = 0
        self.failed = False

    def _produce(self, size: int) -> bytes:
        if self.failed:
            return b""
        try:
            data = self._stream.read(size)
        except Exception as exc:  # the layer below is broken: stop here, say why
            self.failed = True
            self._sink.error(f"byte {self.total:,} of {self._what}", _describe(exc))
            return b""
        if self._max is not None and self.total + len(data) > self._max:
            data = data[: max(0, self._max - self.total)]
            self.failed = True
            reason = self._refusal(self._max) if self._refusal else "size limit reached"
            self._sink.error(f"byte {self.total + len(data):,} of {self._what}", reason)
        self.total += len(data)
        return data


class Transcoded(_RawReader):
    """UTF-16 (or any codec) text re-encoded as UTF-8, streaming; a BOM is dropped."""

    def __init__(self, stream: BinaryIO, encoding: str) -> None:
        super().__init__()
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._bom_checked = False
        self._done = False

    def _produce(self, size: int) -> bytes:
        while not self._done:
            raw = self._stream.read(size)
            final = not raw
            text = self._decoder.decode(raw, final=final)
            if final:
                self._done = True
            if not self._bom_checked and text:
                self._bom_checked = True
                text = text.removeprefix("\ufeff")
            if text:
                return text.encode("utf-8", errors="surrogatepass")
        return b""


def buffered(raw: io.RawIOBase) -> io.BufferedReader:
    return io.BufferedReader(raw, buffer_size=CHUNK_BYTES)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    name = type(exc).__name__
    if "CRC" in text:
        return f"checksum mismatch, the data read may be corrupt ({text})"
    if "unexpected end of data" in text or isinstance(exc, EOFError):
        return f"data ends early (truncated): the rest of this member is lost ({text})"
    return f"read failed: {name}: {text}"
