"""Open one top-level input and walk it down to leaf streams, through any archives.

Layers are sniffed from content, not names: gzip/bzip2/xz are transparent (their content
keeps the file's name); zip and tar members are file entries of their own, named
``archive.zip!member/name.json`` (nested: ``outer.zip!inner.tar.gz!x.json``). Nothing is
extracted to disk: member names (even absolute or ``../`` ones) are only labels. A zip
that does not come from a plain file (stdin, or nested in another archive) and an EVTX
that must be seekable are spooled to an anonymous temporary file, within the bomb limits
(see ``compression``). Problems of a layer (truncation, corruption, bomb guard) are filed
on the file entry being read when they happen, or on the last one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from typing import BinaryIO

from ..accounting import FileStats
from .compression import Decompressed, Limits
from .sniff import HEAD_BYTES, describe_head, sniff
from .source import Source
from .streams import CHUNK_BYTES, Guarded, Prefixed, ProblemSink, Transcoded, buffered, read_fully

#: Leaf kinds handed to format readers.
LEAF_KINDS = frozenset({"evtx", "xml", "json"})
_COMPRESSIONS = frozenset({"gzip", "bzip2", "xz"})
#: Leading whitespace read while looking for the first meaningful byte.
_MAX_LEADING_SPACE = 1 << 20


def _stdin() -> BinaryIO:
    return sys.stdin.buffer


def iter_sources(path: str, limits: Limits | None = None) -> Iterator[Source]:
    """Yield one ``Source`` per leaf stream of ``path`` (a file, or ``-`` for stdin).

    Sources whose ``stream`` is None carry only an error in their stats (nothing to read).
    """
    yield from _Walker(path, limits or Limits.default()).run()


class _Walker:
    def __init__(self, path: str, limits: Limits) -> None:
        self.path = path
        self.limits = limits
        #: Limits for layers nested in another layer: also held to the rule against the
        #: size of the file on disk, else gzip(gzip(...)) would get 200x per layer.
        self.nested = limits
        self.sink = ProblemSink()
        self.last: FileStats | None = None

    def _limits(self, depth: int) -> Limits:
        return self.limits if depth == 0 else self.nested

    # -- entries ---------------------------------------------------------------------
    def _display(self, chain: list[str]) -> str:
        return "!".join([self.path, *chain])

    def _entry(self, chain: list[str], kind: str, stream: BinaryIO | None, **kw: object) -> Source:
        stats = FileStats(self._display(chain), format=kind if kind in LEAF_KINDS else "unknown")
        self.last = stats
        self.sink.file_on(stats)
        member = "!".join(chain) if chain else None
        return Source(stats, self.path, member, kind, stream, **kw)  # type: ignore[arg-type]

    def _error(self, chain: list[str], fmt: str, position: str, reason: str) -> Source:
        src = self._entry(chain, fmt, None)
        src.stats.format = fmt
        src.stats.error(position, reason)
        return src

    # -- walk ------------------------------------------------------------------------
    def run(self) -> Iterator[Source]:
        disk_path: str | None = None
        size: int | None = None
        if self.path == "-":
            try:
                raw: BinaryIO = _stdin()
            except (AttributeError, ValueError, OSError):
                yield self._error([], "unknown", "stdin", "standard input is not available")
                return
            owned = False
        else:
            try:
                st = os.stat(self.path)
                if stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(21, "is a directory")
                raw = open(self.path, "rb", buffering=0)  # noqa: SIM115
            except OSError as exc:
                yield self._error([], "unknown", "file", f"cannot open: {exc.strerror or exc}")
                return
            owned = True
            if stat.S_ISREG(st.st_mode):
                disk_path, size = self.path, st.st_size
                cap = min(self.limits.cap, self.limits.allowed(st.st_size))
                self.nested = dataclasses.replace(self.limits, cap=cap)
        try:
            # Unbuffered: sniffing reads only the head (an on-disk EVTX is then read by
            # the parser itself); _walk buffers what it goes on reading.
            top = Guarded(raw, self.sink, "file")
            yield from self._walk(top, [], 0, disk_path, size)
        finally:
            if owned:
                raw.close()
        if self.sink.items:
            if self.last is None:
                yield self._error([], "unknown", "file", "no readable content")
            self.sink.file_on(self.last)  # type: ignore[arg-type]

    def _head(self, stream: BinaryIO) -> tuple[bytes, str]:
        head = read_fully(stream, HEAD_BYTES)
        kind = sniff(head)
        while kind == "empty" and len(head) < _MAX_LEADING_SPACE:
            more = read_fully(stream, HEAD_BYTES)
            if not more:
                break
            head += more
            kind = sniff(head.lstrip())
            if kind not in ("xml", "json", "empty"):
                kind = "unknown"
        return head, kind

    def _walk(
        self,
        stream: BinaryIO,
        chain: list[str],
        depth: int,
        disk_path: str | None,
        size: int | None,
    ) -> Iterator[Source]:
        head, kind = self._head(stream)
        rest = buffered(Prefixed(head, stream))
        layered = kind in _COMPRESSIONS or kind in ("zip", "tar") or kind.startswith("utf-16")
        if layered and depth >= self.limits.max_nesting:
            yield self._error(
                chain, kind, "file", f"{kind} nested more than {depth} levels deep: refused"
            )
            return
        if kind in _COMPRESSIONS:
            dec = Decompressed(rest, kind, self.sink, self._limits(depth))
            yield from self._walk(buffered(dec), chain, depth + 1, None, None)
        elif kind.startswith("utf-16"):
            encoding = "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else kind
            text = buffered(Transcoded(rest, encoding))
            yield from self._walk(text, chain, depth + 1, None, None)
        elif kind == "zip":
            yield from self._zip(rest, chain, depth, disk_path)
        elif kind == "tar":
            yield from self._tar(rest, chain, depth)
        else:
            src = self._entry(chain, kind, rest, disk_path=disk_path, size=size)
            if kind == "empty":
                src.stats.warn("file", "empty input: no data")
            elif kind.startswith("unsupported:"):
                src.stats.error("file start", f"unsupported format: {kind.split(':', 1)[1]}")
            elif kind not in LEAF_KINDS:
                src.stats.error(
                    "file start", f"unrecognised format (first bytes: {describe_head(head)})"
                )
            yield src
            self.sink.file_on(src.stats)

    # -- zip -------------------------------------------------------------------------
    def _zip(
        self, stream: BinaryIO, chain: list[str], depth: int, disk_path: str | None
    ) -> Iterator[Source]:
        spool = None
        try:
            if disk_path is not None:
                archive: zipfile.ZipFile = zipfile.ZipFile(disk_path)
                archive_size = os.path.getsize(disk_path)
            else:  # zip needs seeking: spool the (already guarded) stream
                spool = tempfile.TemporaryFile(prefix="wmihunt-")  # noqa: SIM115
                shutil.copyfileobj(stream, spool, CHUNK_BYTES)
                archive_size = spool.tell()
                spool.seek(0)
                archive = zipfile.ZipFile(spool)
        except Exception as exc:  # zipfile raises many types on a damaged archive
            if spool is not None:
                spool.close()
            yield self._error(chain, "zip", "file", f"corrupt zip archive: {exc}")
            return
        try:
            yield from self._zip_members(archive, archive_size, chain, depth)
        finally:
            archive.close()
            if spool is not None:
                spool.close()

    def _empty(self, chain: list[str], kind: str, damaged: bool) -> Source:
        """The entry for an archive without any file: an input is never silently absent."""
        src = self._entry(chain, kind, None)
        src.stats.format = kind
        if damaged:
            src.stats.error("file", f"{kind} archive lists no files but holds file data "
                            "(damaged directory?): nothing could be read")  # fmt: skip
        else:
            src.stats.warn("file", f"empty {kind} archive: no files")
        return src

    def _zip_members(
        self, archive: zipfile.ZipFile, archive_size: int, chain: list[str], depth: int
    ) -> Iterator[Source]:
        expanded_before = 0
        # not ZipInfo.is_dir(): it raises IndexError on an empty member name
        files = [i for i in archive.infolist() if not i.filename.endswith("/")]
        if not files:
            fp = archive.fp
            head = b""
            if fp is not None:
                fp.seek(0)
                head = fp.read(4)
            yield self._empty(chain, "zip", damaged=head == b"PK\x03\x04")
            return
        for info in files:
            member_chain = [*chain, info.filename]
            if info.flag_bits & 0x1:
                yield self._error(member_chain, "zip", "member", "encrypted zip member: not read")
                continue
            try:
                raw = archive.open(info)
            except Exception as exc:  # unsupported method, damaged header, encryption...
                yield self._error(member_chain, "zip", "member", f"cannot read zip member: {exc}")
                continue
            limits = self._limits(depth)  # the same object for every member
            # Per member and for the archive as a whole (many small bombs add up).
            max_bytes = max(
                0,
                min(
                    limits.allowed(info.compress_size),
                    limits.allowed(archive_size) - expanded_before,
                ),
            )
            guarded = Guarded(
                raw,
                self.sink,
                f"member {info.filename}",
                max_bytes,
                lambda n, c=info.compress_size, lim=limits: lim.refusal(c, n),
            )
            try:
                content = buffered(guarded)
                yield from self._walk(content, member_chain, depth + 1, None, info.file_size)
            finally:
                raw.close()
            expanded_before += guarded.total

    # -- tar -------------------------------------------------------------------------
    def _tar(self, stream: BinaryIO, chain: list[str], depth: int) -> Iterator[Source]:
        counted = Guarded(stream, self.sink, "tar stream")
        try:
            archive = tarfile.open(fileobj=buffered(counted), mode="r|")  # noqa: SIM115
        except Exception as exc:  # tarfile raises more than TarError on damaged headers
            yield self._error(chain, "tar", "file", f"corrupt tar archive: {exc}")
            return
        last_name = "(start)"
        files = 0
        try:
            while True:
                try:
                    member = archive.next()
                except Exception as exc:  # TarError, EOFError, and others on damage
                    self.sink.error(
                        f"tar header after member {last_name}",
                        f"corrupt or truncated tar archive ({exc}): the rest is lost",
                    )
                    break
                if member is None:
                    break
                last_name = member.name
                if self.sink.items and self.last is not None:
                    self.sink.file_on(self.last)
                if not member.isreg():
                    continue  # directories, links, devices: no content of their own
                files += 1
                content: BinaryIO | _TarData | None
                if member.issparse():
                    content = archive.extractfile(member)
                else:
                    content = _TarData(archive.fileobj, member.size)  # type: ignore[arg-type]
                if content is None:
                    continue
                guarded = Guarded(content, self.sink, f"member {member.name}")  # type: ignore[arg-type]
                yield from self._walk(
                    buffered(guarded), [*chain, member.name], depth + 1, None, member.size
                )
            end_offset = archive.offset
        finally:
            archive.close()
        if not files and not self.sink.items:
            yield self._empty(chain, "tar", damaged=False)
        while counted.read(CHUNK_BYTES):  # let the layers below see their end (trailers)
            pass
        if counted.total < end_offset + 512 and not counted.failed:
            self.sink.warning(
                f"byte {counted.total:,} of tar stream",
                "tar archive ends without its end-of-archive block (cut after its last member?)",
            )


class _TarData:
    """The data of the current member of a streamed tar, read straight from the tar stream.

    tarfile's own member reader raises on a short read and loses the piece it had; this
    one hands over what is there, then raises ``EOFError`` on the next read.
    """

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self._left = size
        self._short = False

    def read(self, n: int = -1) -> bytes:
        if self._short:
            raise EOFError(f"unexpected end of data: {self._left:,} bytes of the member missing")
        if self._left <= 0:
            return b""
        want = self._left if n < 0 else min(n, self._left)
        data = self._stream.read(want)
        self._left -= len(data)
        if len(data) < want:
            self._short = True
        return data
