"""Script context: 4104 parts reassembled; detection 2's needle across a part boundary."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from wmihunt import store
from wmihunt.context.scripts import (
    detect_spanning,
    reassembled_scripts,
    script_context,
)
from wmihunt.models import MODELS

T0 = datetime(2022, 5, 2, 12, 39, 41)
SCRIPT = (
    "function Invoke-Something {}\n"
    "Import-Module .\\Invoke-WMIExec.ps1\n"
    "Invoke-WMIExec -Target 10.0.0.5 -Username admin -Hash 0123 -Command whoami\n"
)


def load(con, table: str, rows: list[dict]) -> None:
    store.load_batch(con, table, pa.Table.from_pylist(rows, schema=MODELS[table].arrow_schema))


def part(uid, n, total, text, *, block="{B1}", dest="WIN-DC", sec=None):
    return {
        "uid": uid, "time": T0 + timedelta(seconds=n if sec is None else sec), "dest": dest,
        "user": "S-1-5-21-1-500", "user_id": "S-1-5-21-1-500", "data_source": "powershell",
        "event_id": "4104", "script_block_text": text, "script_block_id": block,
        "message_number": n, "message_total": total, "ev_file": "ps.evtx", "ev_record_id": 100 + n,
    }


def three_parts() -> list[str]:
    """Cut so that "invoke-wmiexec" never appears whole inside one part."""
    first = SCRIPT.index("Invoke-WMIExec.ps1") + 6  # "Invoke|-WMIExec.ps1"
    second = SCRIPT.index("Invoke-WMIExec -Target") + 10  # "Invoke-WMI|Exec -Target"
    return [SCRIPT[:first], SCRIPT[first:second], SCRIPT[second:]]


def test_three_parts_reassemble_and_needle_across_boundary_is_found():
    con = store.connect()
    a, b, c = three_parts()
    assert all("invoke-wmiexec" not in p.lower() for p in (a, b, c))
    # logged out of order, one part twice
    load(con, "script_block", [part("p3", 3, 3, c), part("p1", 1, 3, a), part("p2", 2, 3, b),
                               part("p2dup", 2, 3, b, sec=9)])
    (row,) = reassembled_scripts(con).fetchall()
    rel = reassembled_scripts(con)
    got = dict(zip(rel.columns, row, strict=True))
    assert got["script_block_text"] == SCRIPT
    assert (got["parts"], got["message_total"], got["missing_count"], got["complete"]) == (
        3, 3, 0, True)
    assert got["uid"] == "p1" and got["part_numbers"] == [1, 2, 3]

    (hit,) = detect_spanning(con, "Invoke-WmiExec")
    assert hit["uid"] == "p1"  # the needle starts in part 1: "...Import-Module .\\Invoke|"
    assert hit["match_parts"] == [1, 2]
    assert hit["ev_record_id"] == 101 and hit["dest"] == "WIN-DC"
    assert hit["script_block_text"] == SCRIPT

    ctx = script_context(con, "p2")
    assert ctx["text"] == SCRIPT and ctx["complete"] is True and ctx["missing"] == []
    assert [p["uid"] for p in ctx["parts"]] == ["p1", "p2", "p3"]


def test_whole_part_match_is_not_spanning_and_missing_part_is_reported():
    con = store.connect()
    load(con, "script_block", [
        # needle whole in one part: upstream's per-part rule already fires
        part("w1", 1, 2, "Invoke-WmiExec -Target x"), part("w2", 2, 2, " more", ),
        # part 2 of 3 never logged
        part("m1", 1, 3, "Write-Host 'a'", block="{B2}"),
        part("m3", 3, 3, "Write-Host 'c'", block="{B2}"),
        # same block id on another host: a different script
        part("o1", 1, 1, "Invoke-WmiEx", block="{B1}", dest="OTHER"),
    ])
    assert detect_spanning(con) == []
    ctx = script_context(con, "m3")
    assert ctx["missing"] == [2] and ctx["complete"] is False and ctx["message_total"] == 3
    assert ctx["text"] == "Write-Host 'a'Write-Host 'c'"
    rel = reassembled_scripts(con)
    by_uid = {r[rel.columns.index("uid")]: dict(zip(rel.columns, r, strict=True))
              for r in rel.fetchall()}
    assert by_uid["m1"]["missing_count"] == 1 and by_uid["m1"]["complete"] is False
    assert by_uid["o1"]["script_block_text"] == "Invoke-WmiEx"
    assert script_context(con, "nope") is None


def test_script_context_truncates_long_text():
    con = store.connect()
    load(con, "script_block", [part("x", 1, 1, "A" * 50)])
    ctx = script_context(con, "x", max_chars=10)
    assert ctx["text"] == "A" * 10 and ctx["truncated"] is True and ctx["length"] == 50
