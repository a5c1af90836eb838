"""Process tree: guid links (Sysmon, CrowdStrike) and pid + time links (4688)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from wmihunt import store
from wmihunt.context.tree import chain_names, process_tree, process_trees, walk
from wmihunt.models import MODELS

T0 = datetime(2020, 1, 14, 20, 44, 0)


def load(con, table: str, rows: list[dict]) -> None:
    store.load_batch(con, table, pa.Table.from_pylist(rows, schema=MODELS[table].arrow_schema))


def sysmon(uid, sec, name, guid, pguid, pname, *, cmd=None, dest="MSEDGEWIN10", pid=None):
    return {
        "uid": uid, "time": T0 + timedelta(seconds=sec), "dest": dest, "data_source": "sysmon",
        "event_id": "1", "process_name": name, "process_path": "C:\\Windows\\System32\\" + name,
        "process": cmd or name, "process_guid": guid, "parent_process_guid": pguid,
        "parent_process_name": pname, "parent_process_path": "C:\\Windows\\System32\\" + pname,
        "process_id": pid, "user": "MSEDGEWIN10\\IEUser",
    }


def sec4688(uid, sec, name, pid, ppid, *, dest="WIN-T", pname=None):
    return {
        "uid": uid, "time": T0 + timedelta(seconds=sec), "dest": dest, "data_source": "security",
        "event_id": "4688", "process_name": name, "process_path": "C:\\Windows\\System32\\" + name,
        "process_id": pid, "parent_process_id": ppid, "parent_process_name": pname,
    }


def test_sysmon_guid_chain_with_unlogged_wmiprvse_root_and_descendants():
    con = store.connect()
    load(con, "process_start", [
        sysmon("r", 0, "rundll32.exe", "G-R", "G-WMI", "WmiPrvSE.exe",
               cmd="rundll32 url.dll,FileProtocolHandler ms-browser://"),
        sysmon("c", 1, "cmd.exe", "G-C", "G-R", "rundll32.exe", cmd='"cmd.exe" /c notepad.exe'),
        sysmon("n", 2, "notepad.exe", "G-N", "G-C", "cmd.exe"),
        sysmon("w", 3, "whoami.exe", "G-W", "G-C", "cmd.exe"),
        # same guid on another host: must not join
        sysmon("x", 4, "evil.exe", "G-X", "G-C", "cmd.exe", dest="OTHER"),
    ])
    tree = process_tree(con, "c")
    assert tree["process"]["process_name"] == "cmd.exe"
    assert [a["process_name"] for a in tree["ancestors"]] == ["WmiPrvSE.exe", "rundll32.exe"]
    assert tree["ancestors"][1]["linked_by"] == "guid" and tree["ancestors"][1]["depth"] == 1
    wmi = tree["ancestors"][0]
    assert wmi["logged"] is False and wmi["process_guid"] == "G-WMI"
    assert chain_names(tree) == ["WmiPrvSE.exe", "rundll32.exe", "cmd.exe"]
    assert [(d["process_name"], d["depth"], d["parent_uid"]) for d in tree["descendants"]] == [
        ("notepad.exe", 1, "c"), ("whoami.exe", 1, "c")]
    full = process_tree(con, "r")
    (cmd,) = full["descendants"]
    assert cmd["uid"] == "c" and [k["uid"] for k in cmd["children"]] == ["n", "w"]
    assert [d["uid"] for d in walk(full["descendants"])] == ["c", "n", "w"]
    assert full["descendant_count"] == 3


def pid_reuse() -> list[dict]:
    """Old-shape 4688 starts linked by pid and time, with a reused pid."""
    return [
        sec4688("svc", 0, "svchost.exe", 0x248, 0x1F0),
        sec4688("wmi", 10, "WmiPrvSE.exe", 0x100, 0x248),
        sec4688("cmd", 20, "cmd.exe", 0x200, 0x100, pname="WmiPrvSE.exe"),
        sec4688("who", 25, "whoami.exe", 0x300, 0x200, pname="cmd.exe"),
        # pid 0x200 reused by notepad; its child belongs to notepad, not to cmd
        sec4688("note", 40, "notepad.exe", 0x200, 0x248),
        sec4688("kid", 50, "conhost.exe", 0x400, 0x200),
    ]


def test_4688_pid_links_respect_reuse_and_time_order():
    con = store.connect()
    load(con, "process_start", [
        *pid_reuse(),
        # a start of pid 0x100 after cmd never becomes cmd's parent
        sec4688("late", 30, "late.exe", 0x100, 0x248),
    ])
    tree = process_tree(con, "cmd")
    assert [a["uid"] for a in tree["ancestors"]] == ["svc", "wmi"]
    assert all(a["linked_by"] == "pid" for a in tree["ancestors"])
    assert [d["uid"] for d in tree["descendants"]] == ["who"]
    assert [d["uid"] for d in process_tree(con, "note")["descendants"]] == ["kid"]
    # svc's own parent (pid 0x1f0) was never logged and it has no parent name: no stub
    assert tree["ancestors"][0]["logged"] is True


def test_bounds_and_unknown_uid():
    con = store.connect()
    chain = [sysmon("p0", 0, "root.exe", "G0", None, "x.exe")]
    chain[0]["parent_process_name"] = None
    chain[0]["parent_process_path"] = None
    for i in range(1, 12):
        chain.append(sysmon(f"p{i}", i, f"p{i}.exe", f"G{i}", f"G{i - 1}", f"p{i - 1}.exe"))
    # a wide fan-out under p11
    chain += [sysmon(f"k{i}", 20 + i, "k.exe", f"K{i}", "G11", "p11.exe") for i in range(30)]
    load(con, "process_start", chain)
    tree = process_tree(con, "p11", max_depth=4, max_descendants=10)
    assert [a["uid"] for a in tree["ancestors"]] == ["p7", "p8", "p9", "p10"]
    assert tree["ancestors_truncated"] is True
    assert len(tree["descendants"]) == 10 and tree["descendants_truncated"] is True
    assert process_tree(con, "p11", max_depth=11)["ancestors"][0]["uid"] == "p0"
    assert process_tree(con, "p11", max_depth=11)["ancestors_truncated"] is False
    assert process_tree(con, "nope") is None


def test_links_follow_new_rows():
    con = store.connect()
    load(con, "process_start", [sysmon("a", 0, "a.exe", "GA", "GZ", "z.exe")])
    assert process_tree(con, "a")["descendants"] == []
    load(con, "process_start", [sysmon("b", 1, "b.exe", "GB", "GA", "a.exe")])
    assert [d["uid"] for d in process_tree(con, "a")["descendants"]] == ["b"]


def test_trees_of_many_processes_at_once_equal_each_alone():
    """``process_trees`` (a report's set queries per level) gives every tree exactly as
    ``process_tree`` does: guid and pid links, pid reuse, a chain deeper than the bound,
    a fan-out wider than the limit, roots inside each other's trees, a cycle of pid links,
    unknown uids."""
    con = store.connect()
    rows = [sysmon("p0", 0, "root.exe", "G0", None, "x.exe")]
    for i in range(1, 12):
        rows.append(sysmon(f"p{i}", i, f"p{i}.exe", f"G{i}", f"G{i - 1}", f"p{i - 1}.exe"))
    rows += [sysmon(f"k{i}", 20 + i, "k.exe", f"K{i}", "G11", "p11.exe") for i in range(30)]
    rows += [sysmon(f"g{i}", 60 + i, "g.exe", f"GG{i}", f"K{i % 3}", "k.exe") for i in range(9)]
    rows += [
        *pid_reuse(),
        # two starts at one time naming each other's pid: the pid links form a cycle
        sec4688("cy1", 70, "a.exe", 0x900, 0x901, dest="LOOP"),
        sec4688("cy2", 70, "b.exe", 0x901, 0x900, dest="LOOP"),
    ]
    load(con, "process_start", rows)
    uids = [r["uid"] for r in rows] + ["nope", "p3"]  # an unknown uid, a repeated one
    for depth, limit in ((8, 200), (4, 10), (2, 3), (11, 31), (11, 33), (1, 0)):
        alone = {u: process_tree(con, u, max_depth=depth, max_descendants=limit) for u in uids}
        together = process_trees(con, uids, max_depth=depth, max_descendants=limit)
        assert together == alone, (depth, limit)
    assert together["nope"] is None
    assert process_trees(con, []) == {}


def test_tied_parents_resolve_the_same_whatever_the_load_order():
    """Copies of one log (the same starts in two files) and two starts of one pid at one
    time: a child links to the candidate in its own file, then to the smallest uid, and a
    level's children come in uid order, whichever rows were loaded first (rowids follow
    the load order)."""
    rows = [
        sysmon("A||1", 0, "wmiprvse.exe", "G-W", "G-S", "svchost.exe"),
        sysmon("B||1", 0, "wmiprvse.exe", "G-W", "G-S", "svchost.exe"),
        sysmon("B||2", 1, "cmd.exe", "G-C", "G-W", "wmiprvse.exe"),
        sysmon("C||2", 1, "cmd.exe", "G-C2", "G-W", "wmiprvse.exe"),
        sec4688("A||10", 0, "svchost.exe", 0x248, 0x1F0),
        sec4688("B||10", 0, "svchost.exe", 0x248, 0x1F0),
        sec4688("B||11", 5, "WmiPrvSE.exe", 0x100, 0x248),
        sec4688("C||11", 5, "WmiPrvSE.exe", 0x101, 0x248),
    ]
    for row in rows:
        row["ev_file"] = row["uid"].split("||")[0]
    trees = []
    for order in (rows, rows[::-1]):
        con = store.connect()
        load(con, "process_start", order)
        trees.append({u: process_tree(con, u) for u in ("B||2", "C||2", "B||11", "C||11",
                                                         "A||1", "B||1", "A||10")})
    assert trees[0] == trees[1]
    first = trees[0]
    assert first["B||2"]["ancestors"][-1]["uid"] == "B||1"  # its own file's copy
    assert first["C||2"]["ancestors"][-1]["uid"] == "A||1"  # no copy in C: smallest uid
    assert first["B||11"]["ancestors"][-1]["uid"] == "B||10"  # pid tie, own file
    assert first["C||11"]["ancestors"][-1]["uid"] == "A||10"  # pid tie, smallest uid
    assert [d["uid"] for d in first["A||1"]["descendants"]] == ["C||2"]
    assert [d["uid"] for d in first["B||1"]["descendants"]] == ["B||2"]


def test_a_cut_level_keeps_the_same_children_whatever_the_load_order():
    rows = [sysmon("P||1", 0, "wmiprvse.exe", "G-P", "G-S", "svchost.exe")]
    rows += [sysmon(f"X||{i}", i, "cmd.exe", f"G-{i}", "G-P", "wmiprvse.exe") for i in (3, 4, 2)]
    kept = []
    for order in (rows, [rows[0], *rows[:0:-1]]):
        con = store.connect()
        load(con, "process_start", order)
        tree = process_tree(con, "P||1", max_descendants=1)
        assert tree["descendants_truncated"] is True
        kept.append([d["uid"] for d in tree["descendants"]])
        assert process_trees(con, ["P||1"], max_descendants=1)["P||1"] == tree
    assert kept == [["X||2"], ["X||2"]]
