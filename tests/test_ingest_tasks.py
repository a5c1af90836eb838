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


def _stopped(pid: int, seconds: float = 10) -> bool:
    """Has process ``pid`` ended (gone, or a zombie nobody reaped yet)? Asked of /proc,
    not of ``Process.is_alive``: the pool's own thread reaps its workers too, and the
    ``Process`` object that loses that race keeps saying alive."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except OSError:  # gone
            return True
        time.sleep(0.02)
    return False


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


def test_a_reading_abandoned_before_finish_stops_its_workers(tmp_path: Path) -> None:
    """``scan`` starts the workers before it loads the rules; when it then gives up (bad
    rules, an error), ``close`` must stop them and remove their spill folder."""
    import os

    paths = [str(p) for p in _copies(tmp_path, 6)]
    con = store.connect(None)
    reading = ingest.start(paths, con, workers=2)
    pool = reading._pool
    assert pool is not None
    processes = list(pool._pool._processes.values())
    assert processes and all(p.is_alive() for p in processes)
    scratch = pool._scratch
    reading.close()
    assert all(_stopped(p.pid) for p in processes)
    assert not os.path.exists(scratch)
    assert ingest.table_counts(con) == dict.fromkeys(ingest.table_counts(con), 0)
    con.close()


def test_ctrl_c_while_loading_worker_results_stops_cleanly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ctrl-C in the parent while workers still read: KeyboardInterrupt reaches the
    caller (no other exception from the cleanup), the workers are stopped, and the case
    holds whole inputs only."""
    from wmihunt.ingest import case as case_module

    monkeypatch.setattr(parallel, "TASK_FILES", 1)  # one task per file
    paths = [str(p) for p in _copies(tmp_path, 1)]
    for i in range(5):  # other contents (an extra newline each): all loaded
        p = tmp_path / f"more{i}.xml"
        p.write_bytes(SYSMON.read_bytes() + b"\n" * (i + 1))
        paths.append(str(p))
    real = case_module.Case.add_task
    seen: list[int] = []
    pools: list[Any] = []

    def interrupted(self: Any, task: Any) -> None:
        seen.append(1)
        if len(seen) == 3:
            raise KeyboardInterrupt
        real(self, task)
        self.flush_group()  # the first two are committed

    monkeypatch.setattr(case_module.Case, "add_task", interrupted)
    real_pool = parallel.WorkerPool.__init__

    def keep(self: Any, *a: Any, **k: Any) -> None:
        real_pool(self, *a, **k)
        pools.append(list(self._pool._processes.values()))

    monkeypatch.setattr(parallel.WorkerPool, "__init__", keep)
    con = store.connect(tmp_path / "case.duckdb")
    with pytest.raises(KeyboardInterrupt):
        ingest.ingest_paths(paths, con, workers=2)
    assert all(_stopped(p.pid) for p in pools[0])
    assert _rows(con) == {"process_start": 80, "wmi_activity": 12}  # two whole inputs
    con.close()


def test_a_new_case_starts_reading_before_duckdb_is_imported() -> None:
    """``scan`` forks its workers before it imports DuckDB (about a third of a second):
    planning and starting a reading must not import it, and the workers then never
    carry it. Asked of a fresh interpreter, where nothing else imported it yet."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from wmihunt import ingest\n"
        f"reading = ingest.start([{str(SYSMON)!r}, {str(SECURITY)!r}], workers=2)\n"
        "assert reading._pool is not None, 'no worker pool'\n"
        "loaded = 'duckdb' in sys.modules\n"
        "reading.close()\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_reading_started_without_the_case_loads_into_the_one_given_to_finish(
    tmp_path: Path,
) -> None:
    """A new case: the reading starts with no connection, ``finish`` gets it. Same rows
    and accounting as a reading started with the connection; without one, ``finish``
    refuses instead of loading nowhere."""
    paths = [str(SYSMON), str(SECURITY), *map(str, _copies(tmp_path, 2))]
    early = ingest.start(paths, workers=2)
    with pytest.raises(TypeError, match="connection"):
        early.finish()
    early.close()
    con = store.connect(None)
    stats = ingest.start(paths, workers=2).finish(con=con)
    reference = store.connect(None)
    expected = ingest.ingest_paths(paths, reference, workers=2)
    assert _rows(con) == _rows(reference) == {
        "process_start": 80,  # 40 Sysmon 1 + 40 Security 4688
        "wmi_activity": 6,
        "logon": 7,
    }
    assert (stats.duplicates, stats.rows_added) == (expected.duplicates, expected.rows_added)
    assert stats.duplicates == 2  # the copies met in the same scan
    con.close()
    reference.close()
