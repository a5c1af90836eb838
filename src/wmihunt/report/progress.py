"""Progress display for long scans: files done, records read, rate."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from ..accounting import FileStats
from .safe_text import visible


class ScanProgress:
    """Callback for ``ingest_paths(on_done=...)`` that advances a rich progress bar."""

    def __init__(self, progress: Progress | None, total_files: int) -> None:
        self._progress = progress
        self._records = 0
        self._task = progress.add_task("reading", total=total_files) if progress else None

    def __call__(self, path: str, entries: list[FileStats]) -> None:
        self._records += sum(e.read for e in entries)
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task,
                advance=1,
                description=f"{self._records:,} records · {visible(os.path.basename(path))[:40]}",
            )


@contextmanager
def scan_progress(console: Console, total_files: int, enabled: bool) -> Iterator[ScanProgress]:
    """Yield an ``on_done`` callback; shows a bar only when ``enabled`` and on a terminal."""
    if not enabled or not console.is_terminal:
        yield ScanProgress(None, total_files)
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield ScanProgress(progress, total_files)
