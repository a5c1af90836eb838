"""Worker tasks of several files (``ingest.parallel``): packing, copies met in the same
scan, a file that fails inside a task, the same path given twice.

Workers are forked, so a module attribute patched here (task size, a failing
normalizer) is what they run.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from test_robustness_helpers import SAMPLES

from wmihunt import ingest, scanlog, store
from wmihunt.ingest import parallel

SYSMON = SAMPLES / "ws01_sysmon.xml"  # 40 process starts, 6 WMI events
SECURITY = SAMPLES / "ws01_security.xml"


def _rows(con: Any) -> dict[str, int]:
    return {k: v for k, v in ingest.table_counts(con).items() if v}


def _copies(tmp_path: Path, n: int, source: Path = SYSMON) -> list[Path]:
    paths = []
    for i in range(n):
        p = tmp_path / f"copy{i}{source.suffix}"
        shutil.copyfile(source, p)
        paths.append(p)
    return paths


def test_plan_packs_small_files_and_keeps_big_and_solo_ones_alone(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (2 << 20))
    small = []
    for i in range(10):
        p = tmp_path / f"s{i}.bin"
        p.write_bytes(b"y" * (1000 + i))
        small.append(str(p))
    solo = small[3]
    tasks = parallel.plan_tasks([str(big), *small, small[5]], {solo}, n_workers=2)
    assert tasks[0] == [str(big)]  # largest first, alone (over the 1 MiB floor budget)
    assert [solo] in tasks
    flat = [p for t in tasks for p in t]
    assert sorted(flat) == sorted([str(big), *small, small[5]])  # each exactly as given
    holding = [t for t in tasks if small[5] in t]
    assert len(holding) == 1 and holding[0].count(small[5]) == 2  # a repeated path: one task
    assert all(len(t) <= parallel.TASK_FILES for t in tasks)


def test_plan_respects_task_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(parallel, "TASK_FILES", 3)
    paths = [str(p) for p in _copies(tmp_path, 8)]
    tasks = parallel.plan_tasks(paths, set(), n_workers=2)
    assert [len(t) for t in tasks] == [3, 3, 2]


@pytest.mark.parametrize("task_files", [1, 64], ids=["copies-in-other-tasks", "one-task"])
def test_copies_in_one_scan_are_loaded_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, task_files: int
) -> None:
    monkeypatch.setattr(parallel, "TASK_FILES", task_files)
    paths = _copies(tmp_path, 5)
    con = store.connect(tmp_path / "case.duckdb")
    stats = ingest.ingest_paths([str(p) for p in paths], con, workers=2)
    assert _rows(con) == {"process_start": 40, "wmi_activity": 6}
    assert (stats.rows_added, stats.duplicates) == (46, 4)
    statuses = sorted(r["status"] for r in scanlog.inputs(con))
    assert statuses == [scanlog.DUPLICATE] * 4 + [scanlog.LOADED]
    loaded = next(r for r in scanlog.inputs(con) if r["status"] == scanlog.LOADED)
    assert loaded["rows_added"] == 46
    dups = [f for f in stats.files if f.format == "duplicate"]
    assert len(dups) == 4 and all(f.read == 0 for f in dups)
    assert con.execute(
        "SELECT count(DISTINCT ev_file) FROM "
        "(SELECT ev_file FROM process_start UNION ALL SELECT ev_file FROM wmi_activity)"
    ).fetchone() == (1,)
    con.close()


def test_a_file_failing_inside_a_task_loses_only_itself(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sysmon, security = tmp_path / "a_sysmon.xml", tmp_path / "b_security.xml"
    shutil.copyfile(SYSMON, sysmon)
    shutil.copyfile(SECURITY, security)
    real = parallel.normalize_path

    def fails_after_reading(path: str, **kw: Any) -> Any:
        entries = real(path, **kw)  # its rows are in the task's batcher already
        if path == str(sysmon):
            raise RuntimeError("boom")
        return entries

    monkeypatch.setattr(parallel, "normalize_path", fails_after_reading)
    con = store.connect(None)
    alone = store.connect(None)
    expected = ingest.ingest_paths([str(security)], alone, workers=1)
    stats = ingest.ingest_paths([str(sysmon), str(security)], con, workers=2)
    assert _rows(con) == _rows(alone)  # the security file's rows, none of the sysmon ones
    assert con.execute(
        "SELECT count(*) FROM process_start WHERE ev_file = ?", [str(sysmon)]
    ).fetchone() == (0,)
    assert stats.rows_added == expected.rows_added
    failed = next(f for f in stats.files if f.path == str(sysmon))
    assert failed.errors == [{"position": "file", "reason": "worker failed: RuntimeError: boom"}]
    assert str(sysmon) not in {r["path"] for r in scanlog.inputs(con)}  # read again next time
    con.close()


def test_the_same_path_twice_is_read_once(tmp_path: Path) -> None:
    (a,) = _copies(tmp_path, 1)
    (tmp_path / "other").mkdir()
    (b,) = _copies(tmp_path / "other", 1, SECURITY)
    con = store.connect(None)
    stats = ingest.ingest_paths([str(a), str(b), str(a)], con, workers=2)
    assert con.execute(
        "SELECT count(*), count(DISTINCT uid) FROM process_start WHERE ev_file = ?", [str(a)]
    ).fetchone() == (40, 40)
    assert stats.duplicates == 1
    con.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_name_that_is_not_utf8_is_read_and_stored_as_text(
    tmp_path: Path, workers: int
) -> None:
    """A planted file whose name is not valid UTF-8 reached Python with lone surrogates:
    the scan stopped with a traceback. It is read by its real name and stored as text."""
    import os

    import orjson

    folder = tmp_path / "logs"
    folder.mkdir()
    raw = os.fsdecode(bytes(folder) + b"/bad\xff\xfename.xml")
    shutil.copyfile(SYSMON, raw)
    shutil.copyfile(SECURITY, folder / "ok.xml")
    con = store.connect(tmp_path / "case.duckdb")
    stats = ingest.ingest_paths([str(folder)], con, workers=workers)
    shown = f"{folder}/bad\\xff\\xfename.xml"
    assert not stats.has_errors
    orjson.dumps(stats.to_dict())
    assert shown in {f.path for f in stats.files}
    assert con.execute(
        "SELECT count(*) FROM process_start WHERE ev_file = ? AND uid LIKE ?", [shown, shown + "|%"]
    ).fetchone() == (40,)
    again = ingest.ingest_paths([str(folder)], con, workers=workers)
    assert (again.duplicates, again.rows_added) == (2, 0)  # known by its stored name
    con.close()
