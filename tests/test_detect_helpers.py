"""Row builders for the detection tests: events shaped like each source's normalized rows.

Rows go straight into DuckDB through ``store.load_batch`` (the normalizers are tested on
their own); this module also checks that the builders fill what the sources fill.
"""

from __future__ import annotations

import datetime as dt
import itertools
import ntpath
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import duckdb
import pyarrow as pa

from wmihunt import store
from wmihunt.detect import DetectionResult, run_detections
from wmihunt.models import MODELS
from wmihunt.rules import CompiledRule, load_story

SOURCES = ("sysmon", "security", "crowdstrike")
T0 = dt.datetime(2024, 5, 1, 12, 0, 0)
_counter = itertools.count(1)

_CHANNEL = {
    "sysmon": "Microsoft-Windows-Sysmon/Operational",
    "security": "Security",
    "crowdstrike": "CrowdStrike",
    "wmi_activity": "Microsoft-Windows-WMI-Activity/Operational",
    "powershell": "Microsoft-Windows-PowerShell/Operational",
}
_EVENT_ID = {"sysmon": "1", "security": "4688", "crowdstrike": "ProcessRollup2"}


@cache
def story() -> tuple[CompiledRule, ...]:
    return tuple(load_story())


def new_uid(prefix: str = "t") -> str:
    return f"{prefix}|{next(_counter)}"


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append rows (missing columns NULL) through the store's Arrow path."""
    model = MODELS[table]
    full = []
    for row in rows:
        unknown = set(row) - set(model.column_names)
        assert not unknown, f"not columns of {table}: {unknown}"
        r = {c: row.get(c) for c in model.column_names}
        r["uid"] = r["uid"] or new_uid(table)
        r["time"] = r["time"] or T0
        full.append(r)
    return store.load_batch(con, table, pa.Table.from_pylist(full, schema=model.arrow_schema))


def _device_path(path: str | None) -> str | None:
    if path is None or path[1:3] != ":\\":
        return path
    return "\\Device\\HarddiskVolume3" + path[2:]


def process_row(
    source: str,
    image: str,
    cmdline: str | None,
    parent: str | None = "C:\\Windows\\System32\\cmd.exe",
    *,
    ofn: str | None = None,
    user: str | None = "CORP\\alice",
    dest: str = "ws01.corp.example",
    uid: str | None = None,
    time: dt.datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A process start as each normalizer writes it.

    Sysmon 1 has every field, OriginalFileName included (``ofn``, default: the image's
    name). Security 4688 has no original file name. CrowdStrike logs NT device paths and
    only the parent's base name (``ParentBaseFileName``).
    """
    name = ntpath.basename(image) if image else None
    parent_name = ntpath.basename(parent) if parent else None
    row: dict[str, Any] = {
        "uid": uid or new_uid(source),
        "time": time or T0,
        "dest": dest,
        "user": user,
        "data_source": source,
        "channel": _CHANNEL[source],
        "event_id": _EVENT_ID[source],
        "process": cmdline,
        "process_name": name,
        "ev_file": f"{source}.evtx" if source != "crowdstrike" else "falcon.json",
        "ev_record_id": next(_counter),
    }
    if source == "sysmon":
        row |= {
            "process_path": image,
            "original_file_name": ofn if ofn is not None else name,
            "parent_process_path": parent,
            "parent_process_name": parent_name,
            "process_id": 4242,
            "parent_process_id": 4000,
        }
    elif source == "security":
        row |= {
            "process_path": image,
            "parent_process_path": parent,
            "parent_process_name": parent_name,
            "process_id": 0xF84,
            "parent_process_id": 0xB2C,
        }
    else:
        row |= {
            "process_path": _device_path(image),
            "parent_process_name": parent_name,
            "process_id": 5012,
            "ev_record_id": None,
            "ev_line": next(_counter),
        }
    return row | extra


def wmi_row(**values: Any) -> dict[str, Any]:
    """A wmi_activity row; ``data_source`` decides Sysmon vs WMI-Activity."""
    source = values.get("data_source", "sysmon")
    base = {
        "uid": new_uid("wmi"),
        "dest": "ws01.corp.example",
        "user": "CORP\\alice",
        "data_source": source,
        "channel": _CHANNEL[source],
        "ev_file": "wmi.evtx",
        "ev_record_id": next(_counter),
    }
    return base | values


def script_row(text: str | None, **values: Any) -> dict[str, Any]:
    base = {
        "uid": new_uid("ps"),
        "dest": "ws01.corp.example",
        "user": "S-1-5-21-1-2-3-500",
        "data_source": "powershell",
        "channel": _CHANNEL["powershell"],
        "event_id": "4104",
        "script_block_text": text,
        "script_block_id": "{00000000-0000-0000-0000-000000000001}",
        "message_number": 1,
        "message_total": 1,
        "ev_file": "ps.evtx",
        "ev_record_id": next(_counter),
    }
    return base | values


def fired(
    con: duckdb.DuckDBPyConnection, rules: Iterable[CompiledRule] | None = None, **kw: Any
) -> tuple[dict[str, set[int]], DetectionResult]:
    """Run the rules; uid -> the story numbers (or 0 for user rules) that fired on it."""
    result = run_detections(con, list(rules if rules is not None else story()), **kw)
    hits: dict[str, set[int]] = {}
    for uid, number in con.execute("SELECT uid, detection_number FROM findings").fetchall():
        hits.setdefault(uid, set()).add(number or 0)
    return hits, result


def test_process_row_shapes_follow_the_sources() -> None:
    image = "C:\\Windows\\System32\\wbem\\WMIC.exe"
    sysmon = process_row("sysmon", image, "wmic /?")
    security = process_row("security", image, "wmic /?")
    falcon = process_row("crowdstrike", image, "wmic /?", "C:\\Windows\\explorer.exe")
    assert sysmon["original_file_name"] == "WMIC.exe"
    assert "original_file_name" not in security
    assert falcon["process_path"] == "\\Device\\HarddiskVolume3\\Windows\\System32\\wbem\\WMIC.exe"
    assert falcon["parent_process_name"] == "explorer.exe"
    assert "parent_process_path" not in falcon
    con = store.connect()
    assert insert(con, "process_start", [sysmon, security, falcon]) == 3
    assert con.execute("SELECT count(DISTINCT uid) FROM process_start").fetchall() == [(3,)]
