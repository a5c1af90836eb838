"""JSON lines: skipped lines are counted in bulk, with the same result as one by one."""

from __future__ import annotations

from pathlib import Path

from wmihunt import readers
from wmihunt.accounting import FileStats
from wmihunt.normalize import is_relevant

SYSMON = "Microsoft-Windows-Sysmon/Operational"


def _line(eid: int, channel: str = SYSMON) -> str:
    return f'{{"EventID": {eid}, "Channel": "{channel}", "Image": "C:\\\\x.exe"}}\n'


def _read(path: Path, stop_after: int | None = None) -> tuple[list[FileStats], int]:
    entries: list[FileStats] = []
    events = readers.read_path(str(path), is_relevant, entries.append)
    n = 0
    for _ in events:
        n += 1
        if stop_after is not None and n >= stop_after:
            events.close()  # type: ignore[attr-defined]
            break
    return entries, n


def test_counts_and_order_match_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        _line(3)
        + _line(7)
        + _line(3)
        + "{not json}\n"  # rejected between skips
        + _line(1)  # relevant: yielded
        + _line(13, "Microsoft-Windows-Sysmon/Operational")
        + _line(4663, "Security")
        + _line(3)
    )
    (stats,), yielded = _read(path)
    assert yielded == 1
    assert (stats.read, stats.skipped, stats.rejected) == (7, 6, 1)
    assert list(stats.skipped_by_event.items()) == [
        (f"{SYSMON}:3", 3),
        (f"{SYSMON}:7", 1),
        (f"{SYSMON}:13", 1),
        ("Security:4663", 1),
    ]
    assert [e["position"] for e in stats.errors] == ["line 4"]


def test_skips_before_an_early_stop_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "stop.jsonl"
    path.write_text(_line(3) + _line(3) + _line(1) + _line(3) + _line(1))
    (stats,), yielded = _read(path, stop_after=1)
    assert yielded == 1
    assert stats.skipped == 2 and stats.skipped_by_event[f"{SYSMON}:3"] == 2
