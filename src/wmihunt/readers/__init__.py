"""Readers: turn input files (any supported format, possibly archived) into RawEvents.

Public API (used by the ingest driver; nothing else in the package touches formats):

- ``iter_inputs(paths) -> Iterator[str]``: expand folders into files (sorted), keep ``-``.
- ``read_path(path, want, on_file) -> Iterator[RawEvent]``: open one top-level input
  (file, archive, or ``-`` for stdin), walk archive members transparently, sniff each
  stream's format from its content, and yield the relevant RawEvents. For each file or
  archive member it creates a ``FileStats`` and calls ``on_file(stats)`` *before* yielding
  that member's first event; it counts every record it reads (``skip`` when ``want`` says
  no, ``reject`` with position and reason when it cannot decode it). Records it yields are
  counted by the caller (``accepted`` or ``reject``). It never raises for bad data.
"""
