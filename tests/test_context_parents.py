"""Parent reconstruction for old-shape Security 4688 (no ParentProcessName)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from wmihunt import store
from wmihunt.context.parents import infer_parents
from wmihunt.models import MODELS

T0 = datetime(2019, 3, 18, 22, 15, 0)


def load(con, table: str, rows: list[dict]) -> None:
    store.load_batch(con, table, pa.Table.from_pylist(rows, schema=MODELS[table].arrow_schema))


def start(uid, sec, pid, ppid, path, *, dest="WIN-T.example.corp", parent_path=None,
          source="security", guid=None):
    return {
        "uid": uid, "time": T0 + timedelta(seconds=sec), "dest": dest, "data_source": source,
        "process_path": path, "process_name": path.rsplit("\\", 1)[-1], "process_id": pid,
        "parent_process_id": ppid, "parent_process_path": parent_path,
        "parent_process_name": parent_path.rsplit("\\", 1)[-1] if parent_path else None,
        "process_guid": guid, "event_id": "4688" if source == "security" else "1",
        "parent_inferred": False,
    }


WMIPRVSE = r"C:\Windows\System32\wbem\WmiPrvSE.exe"
SVCHOST = r"C:\Windows\System32\svchost.exe"


def parents(con) -> dict[str, tuple]:
    got = con.execute(
        "SELECT uid, parent_process_name, parent_process_path, parent_inferred FROM process_start"
    ).fetchall()
    return {u: (n, p, i) for u, n, p, i in got}


def test_old_4688_gets_parent_from_earlier_start_of_its_parent_pid():
    con = store.connect()
    load(con, "process_start", [
        start("svc", 0, 0x248, 0x1F0, SVCHOST),
        start("wmi", 10, 0xAE8, 0x248, WMIPRVSE),
        start("calc", 30, 0x424, 0xAE8, r"C:\Windows\System32\calc.exe"),
    ])
    assert infer_parents(con) == 2  # wmi <- svc, calc <- wmi ("svc"'s parent is unknown)
    got = parents(con)
    assert got["calc"] == ("WmiPrvSE.exe", WMIPRVSE, True)
    assert got["wmi"] == ("svchost.exe", SVCHOST, True)
    assert got["svc"] == (None, None, False)
    assert infer_parents(con) == 0  # idempotent


def test_pid_reuse_most_recent_earlier_start_wins_and_later_start_never_counts():
    con = store.connect()
    load(con, "process_start", [
        start("old", 0, 0x100, 4, r"C:\a\old.exe"),  # first holder of pid 0x100
        start("new", 100, 0x100, 4, WMIPRVSE),  # pid 0x100 reused
        start("child", 200, 0x200, 0x100, r"C:\Windows\System32\cmd.exe"),
        start("early", 50, 0x300, 0x100, r"C:\x\early.exe"),  # between: parent is "old"
        start("later", 300, 0x100, 4, r"C:\z\later.exe"),  # after the child: never its parent
    ])
    infer_parents(con)
    got = parents(con)
    assert got["child"] == ("WmiPrvSE.exe", WMIPRVSE, True)
    assert got["early"][0] == "old.exe"


def test_other_host_never_counts_and_sysmon_rows_are_not_rewritten():
    con = store.connect()
    load(con, "process_start", [
        start("wmi-b", 0, 0x10, 4, WMIPRVSE, dest="HOST-B"),
        start("child-a", 5, 0x20, 0x10, r"C:\calc.exe", dest="HOST-A"),
        # host names compare case-insensitively
        start("wmi-a", 1, 0x30, 4, WMIPRVSE, dest="host-c"),
        start("child-c", 6, 0x40, 0x30, r"C:\calc.exe", dest="HOST-C"),
        # a Sysmon row without parent path is not a 4688: left alone
        start("sysmon", 7, 0x50, 0x30, r"C:\y.exe", dest="HOST-C", source="sysmon", guid="{g}"),
        # a new-shape 4688 keeps its logged parent
        start("new4688", 8, 0x60, 0x30, r"C:\n.exe", dest="HOST-C", parent_path=SVCHOST),
    ])
    assert infer_parents(con) == 1
    got = parents(con)
    assert got["child-a"] == (None, None, False)
    assert got["child-c"] == ("WmiPrvSE.exe", WMIPRVSE, True)
    assert got["sysmon"] == (None, None, False)
    assert got["new4688"] == ("svchost.exe", SVCHOST, False)


def test_empty_tables_and_missing_times_do_not_fail():
    con = store.connect()
    assert infer_parents(con) == 0
    row = start("x", 0, 1, 2, r"C:\x.exe")
    row["time"] = None
    # "x" has no time (cannot be ordered), "c" would be the child of "x": neither is filled
    load(con, "process_start", [row, start("c", 5, 3, 1, r"C:\c.exe")])
    assert infer_parents(con) == 0
    assert parents(con)["c"] == (None, None, False)
