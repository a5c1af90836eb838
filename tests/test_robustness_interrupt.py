"""Interrupted scans and re-runs into one case file (``--db``).

A scan killed (SIGKILL) or stopped (Ctrl-C) mid-way leaves a case that opens and holds
only whole input files; running the same scan again completes it, and its findings
equal those of an uninterrupted scan: the same findings, none twice. Re-running adds
nothing, new files add only themselves, a grown file adds only its new records.

The kills are made deterministic with ingest's documented test hook
``WMIHUNT_TEST_PAUSE_BEFORE_COMMIT=N``: the scan pauses with the N-th input's rows
written but not committed, says so on stderr, and the test kills it right there.
"""

from __future__ import annotations

import gzip
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_readers_helpers import nxlog_line
from test_robustness_helpers import ROOT, SAMPLES

from wmihunt import ingest, scanlog, store
from wmihunt.detect import run_detections
from wmihunt.models import MODELS
from wmihunt.rules.loader import load_story

COPIES = 4
#: The API path, used only when ``python -m wmihunt`` cannot be imported; it does what
#: ``wmihunt scan --db`` does: ingest, parent inference, detection.
DRIVER = """
import sys
from wmihunt import ingest, store
from wmihunt.context.parents import infer_parents
from wmihunt.detect import run_detections
from wmihunt.rules.loader import load_story

db, workers, *paths = sys.argv[1:]
con = store.connect(db)
ingest.ingest_paths(paths, con, workers=int(workers))
infer_parents(con)
run_detections(con, load_story())
con.close()
"""
FINDING_COLUMNS = 'finding_id, detection, uid, message, time, dest, "user", fields'


def _cli_available() -> bool:
    probe = "from wmihunt.cli import build_parser; build_parser()"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def how() -> str:
    """``cli``: ``python -m wmihunt scan --db``; ``api`` (the same steps in a subprocess)
    only while the command line cannot be imported."""
    return "cli" if _cli_available() else "api"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """COPIES copies of the sample incident, each file with its own content (and hash)."""
    root = tmp_path_factory.mktemp("logs")
    for i in range(COPIES):
        folder = root / f"copy{i}"
        folder.mkdir()
        for src in sorted(SAMPLES.iterdir()):
            data = src.read_bytes()
            if src.suffix == ".gz":
                data = gzip.compress(gzip.decompress(data) + b"\n" * (i + 1), mtime=i)
            elif src.suffix == ".xml":
                data += f"<!-- copy {i} -->\n".encode()
            else:
                data += b"\n" * (i + 1)
            (folder / src.name).write_bytes(data)
    return root


def _command(how: str, db: Path, paths: list[str], workers: int) -> list[str]:
    if how == "cli":
        return [sys.executable, "-m", "wmihunt", "scan", *paths, "--db", str(db),
                "--workers", str(workers), "-q", "--no-context"]  # fmt: skip
    return [sys.executable, "-c", DRIVER, str(db), str(workers), *paths]


def _env(pause: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ingest.PAUSE_ENV}
    env["PYTHONPATH"] = str(ROOT / "src")
    if pause is not None:
        env[ingest.PAUSE_ENV] = str(pause)
    return env


def _scan(how: str, db: Path, paths: list[str], workers: int = 1) -> None:
    proc = subprocess.run(_command(how, db, paths, workers), env=_env(), capture_output=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr.decode(errors="replace")[-2000:]


def _scan_and_stop(how: str, db: Path, paths: list[str], pause: int, sig: int,
                   workers: int = 1) -> int:  # fmt: skip
    """Start a scan, wait until it pauses before its ``pause``-th commit, send ``sig``."""
    proc = subprocess.Popen(_command(how, db, paths, workers), env=_env(pause),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    seen = b""
    try:
        while b"wmihunt-test-hook: paused before commit" not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"the scan never paused: {seen[-2000:]!r}"
            ready, _, _ = select.select([proc.stderr], [], [], left)
            chunk = os.read(proc.stderr.fileno(), 65536) if ready else b""
            assert chunk or proc.poll() is None, f"the scan ended first: {seen[-2000:]!r}"
            seen += chunk
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
        _no_orphans(db)
        return code
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def _no_orphans(db: Path, wait: float = 10.0) -> None:
    """Worker processes of a killed scan exit on their own (they watch their parent)."""
    deadline = time.monotonic() + wait
    while True:
        left = []
        for pid in os.listdir("/proc"):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if pid.isdigit() and str(db).encode() in cmdline:
                left.append(int(pid))
        if not left:
            return
        assert time.monotonic() < deadline, f"processes left behind by the scan: {left}"
        time.sleep(0.2)


def _rows_per_file(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in MODELS:
        for path, n in con.execute(
            f"SELECT ev_file, count(*) FROM {table} GROUP BY ev_file"
        ).fetchall():
            counts[path] = counts.get(path, 0) + n
    return counts


def _findings(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT {FINDING_COLUMNS} FROM findings ORDER BY finding_id").fetchall()


def _case(db: Path) -> dict[str, Any]:
    """What a case file holds: rows per input, loaded inputs, findings."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        loaded = [r for r in scanlog.inputs(con) if r["status"] == scanlog.LOADED]
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        return {
            "rows": _rows_per_file(con),
            "loaded": {r["path"]: r["rows_added"] for r in loaded},
            "inputs": scanlog.inputs(con),
            "files_logged": {
                r[0] for r in con.execute("SELECT DISTINCT input FROM scan_files").fetchall()
            },
            "findings": _findings(con) if "findings" in tables else None,
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def reference(how: str, logs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted scan of the same inputs."""
    db = tmp_path_factory.mktemp("ref") / "ref.duckdb"
    _scan(how, db, [str(logs)])
    case = _case(db)
    assert len(case["loaded"]) == COPIES * 8 and case["findings"]
    return case


def _assert_whole_files(case: dict[str, Any], reference: dict[str, Any]) -> None:
    """Every file in the case is complete (as many rows as in the reference) and logged."""
    assert set(case["rows"]) <= set(case["loaded"])  # no row without its scan-log entry
    for path, n in case["loaded"].items():
        assert case["rows"].get(path, 0) == n == reference["rows"].get(path, 0), path
    assert case["files_logged"] == set(case["loaded"])


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_mid_file_then_rerun(how: str, logs: Path, reference: dict[str, Any],
                                     tmp_path: Path, workers: int) -> None:  # fmt: skip
    db = tmp_path / "case.duckdb"
    code = _scan_and_stop(how, db, [str(logs)], pause=5, sig=signal.SIGKILL, workers=workers)
    assert code == -signal.SIGKILL
    killed = _case(db)  # the file opens (its write-ahead log is replayed)
    if workers == 1:
        assert len(killed["loaded"]) == 4  # the 5th input was written, never committed
    else:  # the 5th input's group (small inputs are committed together) is not in
        assert len(killed["loaded"]) < 5
    _assert_whole_files(killed, reference)
    assert killed["findings"] is None  # detection never ran

    _scan(how, db, [str(logs)], workers=workers)  # the same scan again, to the end
    done = _case(db)
    _assert_whole_files(done, reference)
    assert done["rows"] == reference["rows"]
    assert done["findings"] == reference["findings"]
    assert len({f[0] for f in done["findings"]}) == len(done["findings"])  # none twice
    # inputs in before the kill are not read again: logged once loaded, once duplicate
    again = [r["status"] for r in done["inputs"] if r["path"] in killed["loaded"]]
    assert sorted(again) == sorted([scanlog.LOADED, scanlog.DUPLICATE] * len(killed["loaded"]))


def test_ctrl_c_mid_file_then_rerun(how: str, logs: Path, reference: dict[str, Any],
                                    tmp_path: Path) -> None:  # fmt: skip
    db = tmp_path / "case.duckdb"
    code = _scan_and_stop(how, db, [str(logs)], pause=3, sig=signal.SIGINT)
    assert code != 0
    stopped = _case(db)
    assert len(stopped["loaded"]) == 2
    _assert_whole_files(stopped, reference)
    _scan(how, db, [str(logs)])
    assert _case(db)["findings"] == reference["findings"]


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_at_a_moment_nobody_chose(how: str, logs: Path, reference: dict[str, Any],
                                         tmp_path: Path, workers: int) -> None:  # fmt: skip
    """No hook: killed once the write-ahead log has grown by some commits (8-11 of the 32
    inputs, serially). Whatever the moment, whole files only; the re-run completes. With
    2 workers the small inputs form one group (ingest.flush_group), so the kill lands
    after its commit; the hooked test above kills inside a group."""
    db = tmp_path / "case.duckdb"
    proc = subprocess.Popen(_command(how, db, [str(logs)], workers), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wal = Path(f"{db}.wal")
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if wal.exists() and wal.stat().st_size > 250_000:
            break
        time.sleep(0.002)
    proc.kill()
    proc.wait()
    _no_orphans(db)
    killed = _case(db)
    _assert_whole_files(killed, reference)
    _scan(how, db, [str(logs)])
    done = _case(db)
    assert done["findings"] == reference["findings"]
    assert done["rows"] == reference["rows"]


def test_rerun_adds_nothing_and_new_files_add_only_themselves(
    how: str, logs: Path, reference: dict[str, Any], tmp_path: Path
) -> None:
    db = tmp_path / "case.duckdb"
    first = [str(logs / "copy0"), str(logs / "copy1")]
    _scan(how, db, first)
    one = _case(db)
    _scan(how, db, first)  # again: nothing added, findings the same
    two = _case(db)
    assert two["rows"] == one["rows"] and two["findings"] == one["findings"]
    assert [r["status"] for r in two["inputs"][16:]] == [scanlog.DUPLICATE] * 16
    _scan(how, db, [str(logs)])  # the whole case: only copy2 and copy3 are new
    three = _case(db)
    assert three["rows"] == reference["rows"]
    assert three["findings"] == reference["findings"]
    new = [r for r in three["inputs"][32:] if r["status"] == scanlog.LOADED]
    assert sorted(Path(r["path"]).parent.name for r in new) == ["copy2"] * 8 + ["copy3"] * 8


# -- in-process: the same rules, without subprocesses ----------------------------------
def _ingest(con: duckdb.DuckDBPyConnection, *paths: Path) -> ingest.IngestStats:
    return ingest.ingest_paths([str(p) for p in paths], con, workers=1)


def test_same_content_under_another_name_is_a_duplicate(tmp_path: Path) -> None:
    a = tmp_path / "a.xml"
    shutil.copyfile(SAMPLES / "ws01_sysmon.xml", a)
    b = tmp_path / "renamed.xml"
    shutil.copyfile(a, b)
    con = store.connect(tmp_path / "case.duckdb")
    stats = _ingest(con, a, b)
    assert (stats.duplicates, stats.rows_added) == (1, 46)
    dup = next(f for f in stats.files if f.path == str(b))
    assert dup.format == "duplicate" and dup.errors == []
    assert dup.warnings[0]["reason"].startswith("already in the case (same content, sha256 ")
    assert dup.warnings[0]["reason"].endswith(f"..., as {a}): not read again")
    assert sum(ingest.table_counts(con).values()) == 46  # once, not twice
    con.close()


def test_a_grown_file_adds_only_its_new_records(tmp_path: Path) -> None:
    log = tmp_path / "live.json"
    log.write_text("".join(nxlog_line(RecordNumber=i) + "\n" for i in range(10)))
    con = store.connect(tmp_path / "case.duckdb")
    assert _ingest(con, log).rows_added == 10
    with open(log, "a") as f:  # the log grows: 5 more events
        f.writelines(nxlog_line(RecordNumber=i) + "\n" for i in range(10, 15))
    stats = _ingest(con, log)
    assert (stats.rows_added, stats.rows_already, stats.duplicates) == (5, 10, 0)
    assert stats.files[0].warnings == [{
        "position": "file",
        "reason": f"10 records already in the case from an earlier scan of {log} (same file, "
                  "member and record id or line): not added again",
    }]  # fmt: skip
    assert con.execute("SELECT count(*), count(DISTINCT uid) FROM process_start").fetchone() == (
        15, 15)  # fmt: skip
    assert _ingest(con, log).duplicates == 1
    con.close()


def test_stdin_is_hashed_as_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    data = "".join(nxlog_line(RecordNumber=i) + "\n" for i in range(4)).encode()

    class FakeStdin:
        def __init__(self) -> None:
            self.buffer = io.BytesIO(data)

    con = store.connect(tmp_path / "case.duckdb")
    monkeypatch.setattr(sys, "stdin", FakeStdin())
    assert _ingest(con, Path("-")).rows_added == 4
    monkeypatch.setattr(sys, "stdin", FakeStdin())
    again = _ingest(con, Path("-"))
    assert (again.rows_added, again.duplicates) == (0, 1)
    assert ingest.table_counts(con)["process_start"] == 4
    loaded = [r for r in scanlog.inputs(con) if r["status"] == scanlog.LOADED]
    assert [(r["path"], r["size"]) for r in loaded] == [("-", len(data))]
    con.close()


def test_ctrl_c_in_process_rolls_back_the_file_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for i in range(4):
        p = tmp_path / f"f{i}.json"
        p.write_text("".join(nxlog_line(RecordNumber=i * 10 + j) + "\n" for j in range(3)))
        paths.append(p)
    real = ingest.normalize_path
    calls = []

    def interrupted(path: str, emit: Any, **kw: Any) -> Any:
        calls.append(path)
        entries = real(path, emit, **kw)  # rows written into the open transaction...
        if len(calls) == 3:
            raise KeyboardInterrupt  # ...then Ctrl-C before the commit
        return entries

    monkeypatch.setattr(ingest.normalizing, "normalize_path", interrupted)
    con = store.connect(tmp_path / "case.duckdb")
    with pytest.raises(KeyboardInterrupt):
        _ingest(con, *paths)
    assert ingest.table_counts(con)["process_start"] == 6  # two whole files
    assert len(scanlog.inputs(con)) == 2
    monkeypatch.setattr(ingest.normalizing, "normalize_path", real)
    stats = _ingest(con, *paths)
    assert (stats.rows_added, stats.duplicates) == (6, 2)
    run_detections(con, load_story())
    assert ingest.table_counts(con)["process_start"] == 12
    con.close()


def test_spill_folders_of_killed_scans_are_swept(tmp_path: Path) -> None:
    import tempfile

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is free now (reuse within this test is not a concern)
    stale = Path(tempfile.gettempdir()) / f"wmihunt-spill-{dead.pid}-test"
    stale.mkdir()
    (stale / "process_start-x.parquet").write_bytes(b"PAR1")
    mine = Path(tempfile.gettempdir()) / f"wmihunt-spill-{os.getpid()}-test"
    mine.mkdir()
    try:
        for i in range(2):
            (tmp_path / f"{i}.json").write_text(nxlog_line(RecordNumber=i) + "\n")
        con = store.connect()
        assert ingest.ingest_paths([str(tmp_path)], con, workers=2).rows_added == 2
        con.close()
        assert not stale.exists() and mine.exists()  # a live process's folder stays
    finally:
        shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(mine, ignore_errors=True)
