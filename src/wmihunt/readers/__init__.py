"""Readers: turn input files (any supported format, possibly archived) into RawEvents.

Public API (used by the ingest driver; nothing else in the package touches formats):

- ``iter_inputs(paths) -> Iterator[str]``: expand folders into files (sorted), keep ``-``.
- ``plan_inputs(paths) -> (inputs, not_logs)``: the same, but a file found *inside a
  folder* whose first bytes are no supported format (a README, a CSV, a YAML file next
  to the logs) is not an input: it comes back as a ``FileStats`` with a warning, so it is
  listed and counted, but is not an input error. A file named explicitly is always read
  (and gets the "unrecognised format" error when it is not a log).
- ``read_path(path, want, on_file) -> Iterator[RawEvent]``: open one top-level input
  (file, archive, or ``-`` for stdin), walk archive members transparently, sniff each
  stream's format from its content, and yield the relevant RawEvents. For each file or
  archive member it creates a ``FileStats`` and calls ``on_file(stats)`` *before* yielding
  that member's first event; it counts every record it reads (``skip`` when ``want`` says
  no, ``reject`` with position and reason when it cannot decode it). Records it yields are
  counted by the caller (``accepted`` or ``reject``). It never raises for bad data.

Formats (sniffed from content, see ``sniff``): EVTX (``evtx``), Windows event XML
(``xml``), JSON lines / JSON documents in the Winlogbeat-ECS, NXLog, EVTX-JSON and
CrowdStrike dialects (``jsonl``, ``json``); inside gzip, bzip2, xz, zip and tar, nested.
``FileStats.format`` is ``evtx``, ``xml``, ``jsonl``, ``json``, or ``unknown``/the
container kind for entries that could not be read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

from ..accounting import FileStats
from ..events import RawEvent, Relevance
from .compression import Limits
from .containers import iter_sources
from .evtx import read_evtx
from .jsonl import read_json
from .sniff import HEAD_BYTES, describe_head, sniff
from .source import Source
from .xml import read_xml

_READERS: dict[str, Callable[[Source, Relevance], Iterator[RawEvent]]] = {
    "evtx": read_evtx,
    "xml": read_xml,
    "json": read_json,
}


def iter_inputs(paths: Iterable[str]) -> Iterator[str]:
    """Expand folders into the regular files below them, in sorted order; keep the rest.

    Inside folders, hidden entries (names starting with ``.``) are left out and symlinked
    folders are not followed. Paths named explicitly (files, ``-``, missing paths) are
    kept as given, so ``read_path`` reports what is wrong with them.
    """
    for path in paths:
        if path != "-" and os.path.isdir(path):
            yield from _walk_folder(path)
        else:
            yield path


def plan_inputs(paths: Iterable[str]) -> tuple[list[str], list[FileStats]]:
    """Expand ``paths`` like ``iter_inputs``; set aside non-log files found in folders."""
    inputs: list[str] = []
    not_logs: list[FileStats] = []
    for path in paths:
        if path == "-" or not os.path.isdir(path):
            inputs.append(path)
            continue
        for inner in _walk_folder(path):
            head = _head(inner)
            if head is None or sniff(head) != "unknown":
                inputs.append(inner)  # a log, an archive, empty, or unreadable: read_path says
                continue
            stats = FileStats(inner, format="not a log")
            stats.warn("file start", f"not a log file (first bytes: {describe_head(head)}); "
                       f"found in folder {path}, not read")  # fmt: skip
            not_logs.append(stats)
    return inputs, not_logs


def _head(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(HEAD_BYTES)
    except OSError:
        return None


def _walk_folder(folder: str) -> Iterator[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            full = os.path.join(root, name)
            if not name.startswith(".") and os.path.isfile(full):
                found.append(full)
    found.sort(key=lambda p: os.path.relpath(p, folder).split(os.sep))
    yield from found


def read_path(
    path: str,
    want: Relevance,
    on_file: Callable[[FileStats], None],
    *,
    limits: Limits | None = None,
) -> Iterator[RawEvent]:
    """Yield the relevant events of one input (see the module docstring)."""
    if path != "-" and os.path.isdir(path):
        for inner in _walk_folder(path):
            yield from read_path(inner, want, on_file, limits=limits)
        return
    for src in iter_sources(path, limits):
        on_file(src.stats)
        reader = _READERS.get(src.kind)
        if reader is None or src.stream is None:
            continue
        try:
            yield from reader(src, want)
        except Exception as exc:  # a reader bug must not lose the other inputs
            src.stats.error("file", f"internal reader error: {type(exc).__name__}: {exc}")


__all__ = ["Limits", "iter_inputs", "plan_inputs", "read_path"]
