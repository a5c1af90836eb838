"""Detection 2 on PowerShell script blocks split over several 4104 events."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from wmihunt import store
from wmihunt.detect import run_detections
from wmihunt.models import SCRIPT_BLOCK
from wmihunt.rules.loader import load_story

T0 = dt.datetime(2024, 3, 12, 9, 0, 0)


def _part(block: str, n: int, total: int, text: str, dest: str = "WS01") -> dict:
    return {
        "uid": f"ps.xml||{block}-{n}",
        "time": T0 + dt.timedelta(milliseconds=n),
        "dest": dest,
        "user": "S-1-5-21-1-2-3-1001",
        "data_source": "powershell",
        "script_block_text": text,
        "script_block_id": block,
        "message_number": n,
        "message_total": total,
        "channel": "Microsoft-Windows-PowerShell/Operational",
        "event_id": "4104",
        "ev_file": "ps.xml",
        "ev_record_id": hash((block, n)) % 10_000,
    }


@pytest.fixture()
def con():
    c = store.connect()
    yield c
    c.close()


def _findings(con, rows: list[dict]) -> list[tuple]:
    store.load_batch(con, "script_block", pa.Table.from_pylist(rows, SCRIPT_BLOCK.arrow_schema))
    story = [r for r in load_story() if r.meta.number == 2]
    run_detections(con, story)
    return con.execute("SELECT uid, message FROM findings ORDER BY uid").fetchall()


def test_needle_across_a_part_boundary_fires_once_on_the_first_part(con) -> None:
    rows = [
        _part("b1", 1, 3, "function Invoke-Wmi"),
        _part("b1", 2, 3, "Exec { param($Target) }"),
        _part("b1", 3, 3, "Write-Output done"),
    ]
    found = _findings(con, rows)
    assert [uid for uid, _ in found] == ["ps.xml||b1-1"]
    assert found[0][1].endswith("(matched in the script reassembled from its 4104 parts)")


def test_needle_inside_one_part_is_not_reported_twice(con) -> None:
    rows = [
        _part("b2", 1, 3, "function Invoke-WMIExec {"),
        _part("b2", 2, 3, "  $x = 1"),
        _part("b2", 3, 3, "} Invoke-WmiExec -Target srv01"),
    ]
    found = _findings(con, rows)
    # each part that matches alone is a finding; the joined script adds nothing
    assert [uid for uid, _ in found] == ["ps.xml||b2-1", "ps.xml||b2-3"]
    assert not any("reassembled" in message for _, message in found)


def test_same_block_id_on_another_host_is_not_joined(con) -> None:
    rows = [
        _part("b3", 1, 2, "function Invoke-Wmi", dest="WS01"),
        _part("b3", 2, 2, "Exec {}", dest="SRV01"),
    ]
    assert _findings(con, rows) == []


def test_benign_split_script_does_not_fire(con) -> None:
    rows = [
        _part("b4", 1, 2, "Invoke-WmiMethod -Class Win32_Process "),
        _part("b4", 2, 2, "-Name Create -ArgumentList notepad.exe"),
    ]
    assert _findings(con, rows) == []
