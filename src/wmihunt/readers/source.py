"""One leaf input handed to a format reader: a file, or one member of an archive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from ..accounting import FileStats


@dataclass(slots=True)
class Source:
    #: The file entry's accounting (``stats.path`` is ``archive!member`` for members).
    stats: FileStats
    #: The top-level input as given (``-`` for stdin); goes to ``RawEvent.file``.
    file: str
    #: Member path inside the archive(s), nested ones joined by ``!``; else None.
    member: str | None
    #: What ``sniff`` found: ``evtx``, ``xml``, ``json`` (leaf formats) or another kind.
    kind: str
    #: The content, buffered and positioned at its first byte (not necessarily seekable).
    stream: BinaryIO | None
    #: Set when the content is a plain regular file on disk (fast path for EVTX).
    disk_path: str | None = None
    #: Size in bytes when known.
    size: int | None = None

    @property
    def label(self) -> str:
        """How errors name this input."""
        return self.stats.path
