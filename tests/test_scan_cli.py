"""`wmihunt scan` end to end: exit codes, --stats shape, filters, user-rule reporting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wmihunt.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "logs"
FALCON = SAMPLES / "ws02_falcon.jsonl.gz"

BENIGN = (
    '{"event_simpleName":"ProcessRollup2","ComputerName":"WS09","UserName":"alice",'
    '"timestamp":"1710237600000","ImageFileName":"\\\\Device\\\\HarddiskVolume2\\\\Windows'
    '\\\\explorer.exe","CommandLine":"C:\\\\Windows\\\\explorer.exe",'
    '"ParentBaseFileName":"userinit.exe","RawProcessId":"4242","TargetProcessId":"1",'
    '"ParentProcessId":"2"}\n'
)


def test_stats_file_has_the_documented_shape(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    code = main(["scan", str(FALCON), "-q", "--stats", str(stats)])
    assert code == 1  # findings
    data = json.loads(stats.read_text())
    assert set(data["totals"]) >= {"read", "normalized", "skipped", "rejected"}
    (entry,) = data["files"]
    assert entry["path"].endswith("ws02_falcon.jsonl.gz")
    assert entry["format"] == "jsonl"
    assert entry["read"] == entry["normalized"] + entry["skipped"] + entry["rejected"] > 0
    assert entry["errors"] == []
    assert data["totals"]["read"] == entry["read"]


def test_exit_code_is_zero_without_findings(tmp_path: Path) -> None:
    log = tmp_path / "benign.jsonl"
    log.write_text(BENIGN)
    assert main(["scan", str(log), "-q"]) == 0


def test_exit_code_is_two_when_an_input_is_unreadable_and_others_still_scanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.evtx"
    junk.write_bytes(b"\x00\x01garbage that is no log" * 10)
    out = tmp_path / "f.jsonl"
    code = main(["scan", str(junk), str(FALCON), "--format", "jsonl", "-o", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "junk.evtx" in err and "unrecognised format" in err
    assert "Traceback" not in err
    assert len(out.read_text().splitlines()) == 11  # the good file's findings are all there


def test_detection_filter_and_unknown_detection(tmp_path: Path) -> None:
    out = tmp_path / "f.jsonl"
    assert main(["scan", str(FALCON), "-q", "--detection", "11", "--format", "jsonl",
                 "-o", str(out)]) == 1  # fmt: skip
    names = {json.loads(line)["detection"] for line in out.read_text().splitlines()}
    assert names == {"WMIC XSL Execution via URL"}
    assert main(["scan", str(FALCON), "-q", "--detection", "no such rule"]) == 2


def test_user_rules_that_cannot_run_are_listed_briefly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad_field.yml").write_text(
        "title: Uses a field the models do not have\nid: 5f0c1d8e-0000-4000-8000-000000000001\n"
        "logsource: {product: windows, category: process_creation}\n"
        "detection: {sel: {Description: x}, condition: sel}\nlevel: low\n"
    )
    (rules / "good.yml").write_text(
        "title: Explorer started\nid: 5f0c1d8e-0000-4000-8000-000000000002\n"
        "logsource: {product: windows, category: process_creation}\n"
        "detection: {sel: {Image|endswith: '\\explorer.exe'}, condition: sel}\nlevel: low\n"
    )
    log = tmp_path / "benign.jsonl"
    log.write_text(BENIGN)
    out = tmp_path / "f.jsonl"
    code = main(["scan", str(log), "--rules", str(rules), "--format", "jsonl", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert [json.loads(x)["detection"] for x in out.read_text().splitlines()] == [
        "Explorer started"
    ]
    lines = [x for x in err.splitlines() if x.startswith("wmihunt scan:")]
    assert any("bad_field.yml" in x and "unknown field" in x for x in err.split("wmihunt scan:"))
    assert "1 rules not used" in err.replace("\n", " ")
    assert len(lines) <= 4


def test_the_program_exits_with_its_code_and_complete_outputs(tmp_path: Path) -> None:
    """``python -m wmihunt`` skips the interpreter's teardown (``cli.run``): its exit code,
    the findings file, the case on disk and JSON lines on a pipe must still be whole."""
    import subprocess
    import sys

    import duckdb

    out, db = tmp_path / "f.jsonl", tmp_path / "case.duckdb"
    done = subprocess.run(
        [sys.executable, "-m", "wmihunt", "scan", str(SAMPLES), "-q", "-o", str(out),
         "--db", str(db), "--no-context"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # findings
    lines = out.read_text().splitlines()
    assert len(lines) > 50 and all(json.loads(line)["finding_id"] for line in lines)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM findings").fetchone() == (len(lines),)
    con.close()
    piped = subprocess.run(
        [sys.executable, "-m", "wmihunt", "scan", str(SAMPLES), "--format", "jsonl",
         "--no-context", "--db", str(db)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert piped.returncode == 1, piped.stderr
    assert len(piped.stdout.splitlines()) == len(lines)  # nothing lost in the pipe buffer
    table = subprocess.run(
        [sys.executable, "-m", "wmihunt", "scan", str(SAMPLES), "--db", str(db)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert table.returncode == 1, table.stderr
    assert "risk threshold" in table.stdout.splitlines()[-1]  # the view's last line
    missing = subprocess.run(
        [sys.executable, "-m", "wmihunt", "scan", str(tmp_path / "nothing-here")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert missing.returncode == 2
    assert "no such file or folder" in missing.stderr


def test_a_quiet_scan_streams_the_same_findings_a_listed_scan_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A quiet scan writes findings one at a time from the case (``iter_findings_json``);
    a scan that also shows them on the terminal loads the list first. Same bytes, context
    included, in every streamed format; the exit code counts findings either way."""
    listed, streamed = tmp_path / "listed.jsonl", tmp_path / "streamed.jsonl"
    assert main(["scan", str(SAMPLES), "-o", str(listed)]) == 1  # table + JSON lines
    capsys.readouterr()
    assert main(["scan", str(SAMPLES), "-q", "-o", str(streamed)]) == 1
    assert listed.read_bytes() == streamed.read_bytes()
    lines = [json.loads(line) for line in listed.read_text().splitlines()]
    assert len(lines) > 50 and all("context" in f for f in lines)
    assert main(["scan", str(SAMPLES), "--format", "json", "--no-context"]) == 1
    array = json.loads(capsys.readouterr().out)
    assert [f["finding_id"] for f in array] == [f["finding_id"] for f in lines]
    assert main(["scan", str(SAMPLES), "-q"]) == 1  # nothing written: findings counted
    benign = tmp_path / "benign.jsonl"
    benign.write_text(BENIGN)
    for args in (["-q"], ["-q", "--format", "json"], ["--format", "jsonl"]):
        assert main(["scan", str(benign), *args]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "[]"


def _activity_lists(finding: dict) -> list[list]:
    act = (finding.get("context") or {}).get("activity") or {}
    return [act.get("wmiprvse_children") or [], act.get("wmic_runs") or [],
            act.get("earlier_findings") or [], (act.get("wmi") or {}).get("events") or []]


def test_context_rows_bounds_each_activity_list_in_scan_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--context-rows N`` cuts each list of a finding's host activity to N rows (the
    counts per EventID stay whole), in a quiet (streamed) scan, a listed one and
    ``wmihunt report``; the default is 100; 0 is refused."""
    default, explicit, short = (tmp_path / f"{n}.jsonl" for n in ("d", "e", "s"))
    case = tmp_path / "case.duckdb"
    assert main(["scan", str(SAMPLES), "-q", "-o", str(default), "--db", str(case)]) == 1
    assert main(["scan", str(SAMPLES), "-q", "-o", str(explicit), "--context-rows", "100"]) == 1
    assert main(["scan", str(SAMPLES), "-o", str(short), "--context-rows", "1"]) == 1
    capsys.readouterr()
    full = [json.loads(line) for line in default.read_text().splitlines()]
    cut = [json.loads(line) for line in short.read_text().splitlines()]
    assert explicit.read_bytes() == default.read_bytes()
    assert max(len(x) for f in full for x in _activity_lists(f)) > 1
    assert max(len(x) for f in cut for x in _activity_lists(f)) == 1
    for a, b in zip(full, cut, strict=True):
        assert a["finding_id"] == b["finding_id"]
        wmi = [((f["context"].get("activity") or {}).get("wmi") or {}).get("counts")
               for f in (a, b)]
        assert wmi[0] == wmi[1]
    report = tmp_path / "report.jsonl"
    assert main(["report", "--db", str(case), "-o", str(report), "--context-rows", "1"]) == 0
    reported = [json.loads(line) for line in report.read_text().splitlines()]
    assert max(len(x) for f in reported for x in _activity_lists(f)) == 1
    with pytest.raises(SystemExit):
        main(["scan", str(SAMPLES), "--context-rows", "0"])
