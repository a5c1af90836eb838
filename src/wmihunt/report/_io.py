"""Open an output target: a path, ``-`` for stdout, or an already open file."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

Target = str | Path | IO[Any]


@contextmanager
def open_text(target: Target) -> Iterator[IO[str]]:
    """A text stream (UTF-8, no newline translation, as the csv module wants)."""
    if isinstance(target, str | Path):
        if str(target) == "-":
            yield sys.stdout
            sys.stdout.flush()
            return
        with open(target, "w", encoding="utf-8", newline="") as fh:
            yield fh
        return
    yield target  # type: ignore[misc]


@contextmanager
def open_binary(target: Target) -> Iterator[IO[bytes]]:
    """A byte stream; a text stream given by the caller is wrapped to take bytes."""
    if isinstance(target, str | Path):
        if str(target) == "-":
            yield sys.stdout.buffer
            sys.stdout.buffer.flush()
            return
        with open(target, "wb") as fh:
            yield fh
        return
    if isinstance(target, io.TextIOBase):
        buffer = getattr(target, "buffer", None)
        if buffer is not None:
            target.flush()
            yield buffer
            buffer.flush()
            return
        yield _TextAsBinary(target)  # type: ignore[misc]
        return
    yield target  # type: ignore[misc]


class _TextAsBinary:
    """Adapter: ``write(bytes)`` onto a text stream such as ``io.StringIO``."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text

    def write(self, data: bytes) -> int:
        self._text.write(data.decode("utf-8"))
        return len(data)

    def flush(self) -> None:
        self._text.flush()
