"""``wmihunt investigate``: finding, host and user views from a case file; hostile text."""

from __future__ import annotations

import argparse
import io
import json
from datetime import datetime, timedelta

import pyarrow as pa
import pytest
from rich.console import Console

from wmihunt import store
from wmihunt.commands import investigate
from wmihunt.context.findings import MINIMAL_FINDINGS_DDL
from wmihunt.models import MODELS

T0 = datetime(2019, 4, 30, 20, 32, 51)
EVIL = "cmd.exe /c echo \x1b[31mred\x1b[0m [bold]markup[/bold] \u202eevil"


def load(con, table: str, rows: list[dict]) -> None:
    store.load_batch(con, table, pa.Table.from_pylist(rows, schema=MODELS[table].arrow_schema))


@pytest.fixture
def case_db(tmp_path):
    path = tmp_path / "case.duckdb"
    con = store.connect(path)
    load(con, "process_start", [
        {"uid": "c1", "time": T0, "dest": "IEWIN7", "user": "IEWIN7\\IEUser",
         "process_name": "cmd.exe", "process": EVIL, "parent_process_name": "WmiPrvSE.exe",
         "process_guid": "G1", "parent_process_guid": "GW", "logon_id": "0x1d313d",
         "data_source": "sysmon", "process_id": 3840},
        {"uid": "w1", "time": T0 + timedelta(seconds=1), "dest": "IEWIN7",
         "user": "IEWIN7\\IEUser", "process_name": "whoami.exe", "process": "whoami /all",
         "parent_process_name": "cmd.exe", "process_guid": "G2", "parent_process_guid": "G1",
         "data_source": "sysmon"},
    ])
    load(con, "logon", [{"uid": "l1", "time": T0 - timedelta(seconds=2), "dest": "IEWIN7",
                         "event_id": "4624", "logon_type": 3, "target_user": "IEWIN7\\IEUser",
                         "target_logon_id": "0x1d313d", "src_ip": "10.0.0.9",
                         "src_workstation": "KALI"}])
    con.execute(MINIMAL_FINDINGS_DDL)
    con.execute(
        "INSERT INTO findings VALUES ('F1', 'Process Execution via WMI', "
        "'24869767-8579-485d-9a4f-d9ddfd8f0cac', 'TTP', 49, ['T1047'], ?, ?, 'IEWIN7', "
        "'IEWIN7\\IEUser', 'sysmon', 'process_start', 'c1', false, ['dest', 'user'])",
        ["A remote instance execution of wmic.exe by WmiPrvSE.exe detected on host - IEWIN7", T0],
    )
    con.close()
    return path


def run(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    investigate.add_parser(parser.add_subparsers())
    args = parser.parse_args(["investigate", *argv])
    buf = io.StringIO()
    code = args.run(args, Console(file=buf, width=220, force_terminal=False, highlight=False))
    return code, buf.getvalue()


def test_finding_view_shows_tree_origin_risk_and_escapes_event_text(case_db):
    code, out = run(["--db", str(case_db), "--finding", "F1"])
    assert code == 0
    assert "WmiPrvSE.exe" in out and "whoami.exe" in out and "(start not logged)" in out
    assert "10.0.0.9" in out and "KALI" in out and "logon_id" in out
    assert "\x1b" not in out and "\u202e" not in out  # no raw escape or bidi override
    assert "\\x1b[31mred" in out and "\\u202eevil" in out
    assert "[bold]markup[/bold]" in out  # markup shown literally, not applied


def test_json_host_and_user_views(case_db, capsys):
    code, _ = run(["--db", str(case_db), "--finding", "F1", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["finding"]["finding_id"] == "F1"
    assert data["context"]["origin"]["target"]["logon"]["src_ip"] == "10.0.0.9"
    assert data["context"]["tree"]["descendants"][0]["process_name"] == "whoami.exe"
    code, out = run(["--db", str(case_db), "--host", "iewin7"])
    assert code == 0 and "Process Execution via WMI" in out
    assert "WmiPrvSE.exe children" in out and "\\x1b[31mred" in out
    code, out = run(["--db", str(case_db), "--user", "IEUser"])
    assert code == 0 and "KALI" in out and "49" in out


def test_errors_exit_2(case_db, tmp_path, capsys):
    assert run(["--db", str(case_db), "--finding", "nope"])[0] == 2
    assert run(["--db", str(tmp_path / "missing.duckdb"), "--host", "x"])[0] == 2
    assert "no such case database" in capsys.readouterr().err
