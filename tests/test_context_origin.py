"""Remote origin: network logon behind a WmiPrvSE child, wmic /node:, 4648, both ends."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from wmihunt import store
from wmihunt.context.origin import (
    network_logon,
    parse_wmic_nodes,
    remote_origin,
    wmi_anchor,
)
from wmihunt.models import MODELS

T0 = datetime(2019, 3, 18, 22, 16, 9)
TARGET = "WIN-T.example.corp"
SOURCE = "PC01.example.corp"


def load(con, table: str, rows: list[dict]) -> None:
    store.load_batch(con, table, pa.Table.from_pylist(rows, schema=MODELS[table].arrow_schema))


def at(sec: float) -> datetime:
    return T0 + timedelta(seconds=sec)


def logon(uid, sec, user, logon_id, *, dest=TARGET, ip="10.0.2.17", ws="PC01", ltype=3,
          sid=None, rec=None, file="sec.evtx"):
    return {"uid": uid, "time": at(sec), "dest": dest, "event_id": "4624", "logon_type": ltype,
            "user": user, "target_user": user, "target_user_sid": sid,
            "target_logon_id": logon_id, "src_ip": ip, "src_workstation": ws,
            "data_source": "security", "ev_file": file, "ev_record_id": rec}


def proc(uid, sec, name, *, dest=TARGET, parent="WmiPrvSE.exe", user="EXAMPLE\\Administrator",
         logon_id=None, target_logon_id=None, target_user=None, cmd=None, pid=None, ppid=None,
         source="sysmon", user_id=None, guid=None, pguid=None, rec=None, file="p.evtx"):
    return {"uid": uid, "time": at(sec), "dest": dest, "process_name": name,
            "process_path": "C:\\Windows\\System32\\" + name, "process": cmd,
            "parent_process_name": parent, "user": user, "user_id": user_id,
            "logon_id": logon_id, "target_logon_id": target_logon_id, "target_user": target_user,
            "process_id": pid, "parent_process_id": ppid, "data_source": source,
            "process_guid": guid, "parent_process_guid": pguid, "ev_file": file,
            "ev_record_id": rec}


def test_logon_id_join_ignores_other_host_and_later_logon():
    con = store.connect()
    load(con, "logon", [
        logon("good", -20, "EXAMPLE\\Administrator", "0x10fc09"),
        logon("other-host", -5, "EXAMPLE\\Administrator", "0x10fc09", dest="ELSEWHERE"),
        logon("later", 5, "EXAMPLE\\Administrator", "0x10FC09"),
    ])
    load(con, "process_start", [proc("cmd", 0, "cmd.exe", logon_id="0x10fc09")])
    got = remote_origin(con, "cmd")["target"]
    assert got["method"] == "logon_id" and got["confidence"] == "high"
    lg = got["logon"]
    assert lg["uid"] == "good" and lg["src_ip"] == "10.0.2.17" and lg["src_workstation"] == "PC01"
    assert lg["account"] == "EXAMPLE\\Administrator" and lg["seconds_before"] == 20.0


def test_win10_4688_uses_target_logon_id_not_the_wmiprvse_subject():
    con = store.connect()
    load(con, "logon", [logon("l", -6, "WINLAB.LOCAL\\Administrator", "0x82215a",
                              ip="192.168.1.219", ws=None)])
    load(con, "process_start", [proc(
        "note", 0, "notepad.exe", source="security", user="WINLAB\\WIND10$", user_id="S-1-5-20",
        logon_id="0x3e4", target_logon_id="0x82215a", target_user="WINLAB.LOCAL\\Administrator")])
    got = remote_origin(con, "note")["target"]
    assert (got["method"], got["logon"]["uid"], got["logon"]["src_ip"]) == (
        "logon_id", "l", "192.168.1.219")


def test_same_user_fallback_takes_nearest_preceding_on_same_host_only():
    con = store.connect()
    load(con, "logon", [
        logon("old", -600, "IEWIN7\\IEUser", "0x1"),
        logon("older", -900, "IEWIN7\\IEUser", "0x2"),
        logon("wrong-host", -30, "IEWIN7\\IEUser", "0x3", dest="OTHER"),
        logon("after", 10, "IEWIN7\\IEUser", "0x4"),
        logon("other-user", -10, "IEWIN7\\bob", "0x5"),
    ])
    load(con, "process_start", [proc("c", 0, "cmd.exe", user="IEWIN7\\IEUser",
                                     logon_id="0x1d313d")])
    got = remote_origin(con, "c")["target"]
    assert (got["method"], got["confidence"], got["logon"]["uid"]) == (
        "same_user_preceding", "medium", "old")
    node = wmi_anchor(con, "c")
    none = network_logon(con, node, user_lookback=timedelta(minutes=5))
    assert none["logon"] is None and "0x1d313d" in none["reason"]


def test_old_4688_service_identity_uses_nearest_person_logon_before_not_at_or_after():
    """Shape of LM_WMI_4624_4688_TargetHost.evtx: calc.exe's 4688 shows NETWORK SERVICE."""
    con = store.connect()
    load(con, "logon", [
        logon("admin", -20, "EXAMPLE\\Administrator", "0x10fc09", rec=4),
        logon("machine", -19, "EXAMPLE\\WIN-T$", "0x10fac2", sid="S-1-5-18", rec=5),
        logon("anon", -18, "NT AUTHORITY\\ANONYMOUS LOGON", "0x9", sid="S-1-5-7", rec=6),
        # same timestamp as calc but logged after it in the same file: not "preceding"
        logon("user01", 0, "EXAMPLE\\user01", "0x110085", rec=8),
    ])
    load(con, "process_start", [
        proc("wmi", -19.5, "WmiPrvSE.exe", parent=None, source="security", pid=0xAE8,
             user="EXAMPLE\\WIN-T$", user_id="S-1-5-18", logon_id="0x3e7",
             file="sec.evtx", rec=5),
        proc("calc", 0, "calc.exe", source="security", pid=0x424, ppid=0xAE8,
             user="EXAMPLE\\WIN-T$", user_id="S-1-5-20", logon_id="0x3e4",
             file="sec.evtx", rec=7),
    ])
    got = remote_origin(con, "calc")["target"]
    assert (got["method"], got["confidence"], got["logon"]["uid"]) == (
        "host_preceding", "low", "admin")


def test_descendant_of_wmi_child_uses_the_child_as_anchor():
    con = store.connect()
    load(con, "logon", [logon("l", -1, "IEWIN7\\IEUser", "0x1d313d", dest="IEWIN7")])
    load(con, "process_start", [
        proc("cmd", 0, "cmd.exe", dest="IEWIN7", logon_id="0x1d313d", guid="G1", pguid="GW"),
        proc("who", 1, "whoami.exe", dest="IEWIN7", parent="cmd.exe", logon_id="0x1d313d",
             guid="G2", pguid="G1"),
        proc("plain", 2, "notepad.exe", dest="IEWIN7", parent="explorer.exe"),
    ])
    got = remote_origin(con, "who")["target"]
    assert got["wmi_child"]["uid"] == "cmd" and got["logon"]["uid"] == "l"
    assert remote_origin(con, "plain") is None
    assert remote_origin(con, "missing") is None


def test_parse_wmic_nodes():
    assert parse_wmic_nodes('wmic /node:"127.0.0.1" service where (caption like "%Sp%")') == {
        "targets": ["127.0.0.1"], "files": []}
    assert parse_wmic_nodes("WMIC.exe /NODE:17.12.0.1 process call create x")["targets"] == [
        "17.12.0.1"]
    assert parse_wmic_nodes('wmic -node:a,b, "c d" os get')["targets"] == ["a", "b", "c d"]
    assert parse_wmic_nodes('wmic /node:@hosts.txt /node:"@C:\\a b.txt" os') == {
        "targets": [], "files": ["hosts.txt", "C:\\a b.txt"]}
    # "node" inside a where clause is not a switch (detection 5's literal false positive)
    assert parse_wmic_nodes('wmic process where "commandline like \'%node server%\'"') == {
        "targets": [], "files": []}
    assert parse_wmic_nodes(None) == {"targets": [], "files": []}
    assert parse_wmic_nodes('wmic /node:"unterminated')["targets"] == ["unterminated"]


def _two_hosts(con, *, source_offset: float = -26.0) -> None:
    load(con, "logon", [
        logon("t-logon", -20, "EXAMPLE\\Administrator", "0x10fc09"),
        {"uid": "cred", "time": at(source_offset + 1), "dest": SOURCE, "event_id": "4648",
         "user": "EXAMPLE.CORP\\administrator", "target_user": "EXAMPLE.CORP\\administrator",
         "subject_user": "EXAMPLE\\user01", "target_server": TARGET,
         "target_info": "host/" + TARGET, "process_name": "C:\\Windows\\System32\\wbem\\WMIC.exe",
         "process_id": 0x44C, "data_source": "security"},
        {"uid": "cred-elsewhere", "time": at(-25), "dest": "PC09", "event_id": "4648",
         "target_server": "FILESRV", "process_name": "C:\\x\\WMIC.exe", "data_source": "security"},
    ])
    load(con, "process_start", [
        proc("wmic", source_offset, "WMIC.exe", dest=SOURCE, parent="cmd.exe",
             user="EXAMPLE\\user01", pid=0x44C,
             cmd="wmic /node:WIN-T /user:administrator process call create calc.exe"),
        proc("calc", 0, "calc.exe", logon_id="0x10fc09"),
    ])


def test_both_ends_linked_when_both_hosts_are_scanned():
    con = store.connect()
    _two_hosts(con)
    target = remote_origin(con, "calc")["target"]
    best = target["source"]["best"]
    assert best["source_dest"] == SOURCE and best["within_window"] and best["workstation_match"]
    kinds = sorted(c["kind"] for c in target["source"]["candidates"])
    assert kinds == ["explicit_credentials", "wmic"]
    assert best["kind"] == "explicit_credentials" and best["delta_seconds"] == 25.0

    source = remote_origin(con, "wmic")["source"]
    assert source["nodes"] == ["WIN-T"] and source["loopback"] is False
    (cred,) = source["explicit_credentials"]
    assert cred["uid"] == "cred" and cred["target_server"] == TARGET and cred["same_process"]
    (tgt,) = source["targets"]
    assert tgt["dest"] == TARGET
    assert [c["uid"] for c in tgt["wmiprvse_children"]] == ["calc"]
    assert [lg["uid"] for lg in tgt["logons_from_source"]] == ["t-logon"]


def test_clock_skew_keeps_name_match_but_outside_window():
    con = store.connect()
    _two_hosts(con, source_offset=-10 * 3600.0)  # source clock 10 h behind
    src = remote_origin(con, "calc")["target"]["source"]
    best = src["best"]
    assert best is not None and best["within_window"] is False and best["workstation_match"]
    assert best["delta_seconds"] > 9 * 3600


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('/-node:"@, \tabc.\\'), max_size=120))
def test_parse_wmic_nodes_never_raises(cmdline):
    got = parse_wmic_nodes(cmdline)
    assert all(isinstance(t, str) and t for t in got["targets"] + got["files"])


_USERS = ["EXAMPLE\\Administrator", "example\\ADMINISTRATOR", "Administrator", "WIN-T$",
          "ANONYMOUS LOGON", "NT AUTHORITY\\SYSTEM", "bob", None]
_IDS = ["0x10fc09", "0x10FC09", "1113097", " 0x3e7 ", "0x3e4", "junk", "", None]
_SIDS = [None, "S-1-5-18", "S-1-5-21-1-2-3-500", "S-1-5-7"]


@st.composite
def _logon_rows(draw):
    """Type-3 (and other) logons on few times, files and record ids: ties, same-time
    records of the process's own file before and after it, unknown positions."""
    rows = []
    for i in range(draw(st.integers(0, 14))):
        row = logon(f"L{i}", draw(st.sampled_from([-4000, -300, -60, -1, 0, 0, 0, 1])),
                    draw(st.sampled_from(_USERS)), draw(st.sampled_from(_IDS)),
                    dest=draw(st.sampled_from([TARGET, TARGET.upper(), "OTHER"])),
                    ltype=draw(st.sampled_from([3, 3, 3, 2, None])),
                    sid=draw(st.sampled_from(_SIDS)),
                    rec=draw(st.sampled_from([None, 9, 10, 10, 11])),
                    file=draw(st.sampled_from(["p.evtx", "p.evtx", "sec.evtx", None])))
        if draw(st.booleans()):
            row["time"] = None if draw(st.booleans()) else row["time"]
        if draw(st.integers(0, 3)) == 0:  # an explicit-credentials logon
            row.update(event_id="4648", process_id=draw(st.sampled_from([None, 100, 200])),
                       process_name=draw(st.sampled_from(
                           ["C:\\Windows\\System32\\wbem\\WMIC.exe", "wmic.exe",
                            "cmd.exe", None])))
        rows.append(row)
    return rows


@st.composite
def _anchors(draw):
    return [
        proc(f"P{i}", 0, "cmd.exe", user=draw(st.sampled_from(_USERS)),
             logon_id=draw(st.sampled_from(_IDS)),
             target_logon_id=draw(st.sampled_from([None, "0x10fc09", "0x3e7"])),
             target_user=draw(st.sampled_from([None, "Administrator"])),
             user_id=draw(st.sampled_from(_SIDS)),
             rec=draw(st.sampled_from([None, 10])),
             file=draw(st.sampled_from(["p.evtx", None])))
        for i in range(draw(st.integers(1, 4)))
    ]


@settings(max_examples=150, deadline=None)
@given(_logon_rows(), _anchors(), st.booleans(),
       st.sampled_from([-4000, -300, -60, -1, 0, 1]), st.sampled_from([None, 100, 200]))
def test_a_reports_host_logons_answer_as_the_queries_do(logons, anchors, capped, start, pid):
    """The memo's in-memory searches of a host's logons give what each query gives: the
    network logon (method, reason; ties broken the same way, the same-time rule,
    lookbacks, service identities), the type-3 logons of a window and a wmic's 4648s
    (bounds, order, pid first, limits), and (``capped``) the fallback to queries."""
    from wmihunt.context import logons as searches

    con = store.connect()
    load(con, "logon", logons)
    load(con, "process_start", anchors)
    memo: dict = {}
    saved = searches.HOST_ROWS_CAP
    searches.HOST_ROWS_CAP = 2 if capped else saved
    try:
        for uid in (a["uid"] for a in anchors):
            node = wmi_anchor(con, uid)
            assert network_logon(con, node, memo=memo) == network_logon(con, node)
        lo, hi = at(start), at(start + 60)
        for dest in (TARGET, TARGET.lower()):
            for limit in (2, 200):
                assert (searches.type3_between(con, dest, lo, hi, limit, memo)
                        == searches.type3_between(con, dest, lo, hi, limit, None))
                assert (searches.wmic_credentials(con, dest, lo, hi, pid, limit, memo)
                        == searches.wmic_credentials(con, dest, lo, hi, pid, limit, None))
    finally:
        searches.HOST_ROWS_CAP = saved
        con.close()


def test_a_reports_source_events_equal_each_targets_queries():
    """A report reads every wmic /node: run and 4648 once and filters them per target
    host: the same candidates as the per-host queries, for an ASCII host, hosts DuckDB
    and Python lower differently ('İ'), a host named by its short name in another case,
    rows without a host, and (cap) the fallback to queries."""
    import wmihunt.context.origin as origin

    hosts = [TARGET, "İSTANBUL-DC.example.corp", "istanbul-dc", None, SOURCE]
    procs, creds = [], []
    for i, host in enumerate(hosts):
        procs.append(proc(f"w{i}", i, "WMIC.exe", dest=host, parent="cmd.exe",
                          cmd="wmic /node:WIN-T,İSTANBUL-DC process call create x"))
        procs.append(proc(f"n{i}", i, "wmic.exe", dest=host, parent="cmd.exe",
                          cmd="wmic process list"))  # names no node
        for j, (server, info) in enumerate([("WIN-T", None), (None, "HOST/İSTANBUL-DC"),
                                            ("istanbul-dc.example.corp", "x"),
                                            ("elsewhere", "HOST/WIN-T")]):
            creds.append({"uid": f"c{i}{j}", "time": at(i + j), "dest": host,
                          "event_id": "4648", "target_server": server, "target_info": info,
                          "process_name": "C:\\Windows\\System32\\wbem\\WMIC.exe",
                          "data_source": "security"})
    procs += [proc(f"t{i}", 30, "cmd.exe", dest=h) for i, h in enumerate(hosts) if h]
    con = store.connect()
    load(con, "process_start", procs)
    load(con, "logon", creds)
    for cap in (origin.SOURCE_ROWS_CAP, 1):
        memo: dict = {}
        saved, origin.SOURCE_ROWS_CAP = origin.SOURCE_ROWS_CAP, cap
        try:
            for host in hosts:
                if host:
                    node = {"dest": host, "time": "2019-03-18T22:16:39.000000Z"}
                    alone = origin.sources_of_target(con, node, None)
                    assert origin.sources_of_target(con, node, None, memo=memo) == alone
                    if host == TARGET:  # by server, by info, by /node:, from 3 other hosts
                        assert sorted(c.get("target_server") or c["kind"]
                                      for c in alone["candidates"]) == [
                            *["WIN-T"] * 3, *["elsewhere"] * 3, *["wmic"] * 3]
        finally:
            origin.SOURCE_ROWS_CAP = saved
        assert (memo[("source rows",)] is None) == (cap == 1)


def test_window_logons_keep_one_order_through_ties_and_unknown_record_ids():
    """Logons of one second, with and without record ids, come oldest first in the
    order the newest-first search reverses, by query and from a report's memo alike."""
    from wmihunt.context import logons as searches

    con = store.connect()
    load(con, "logon", [
        logon("b", 0, "u", "0x1", rec=5), logon("a", 0, "u", "0x1", rec=5),
        logon("n", 0, "u", "0x1", rec=None), logon("z", -1, "u", "0x1", rec=99),
        logon("later", 1, "u", "0x1", rec=1),
    ])
    want = ["z", "n", "a", "b"]
    assert [r["uid"] for r in searches.type3_between(con, TARGET, at(-1), at(0), 10, None)] \
        == want
    assert [r["uid"] for r in searches.type3_between(con, TARGET, at(-1), at(0), 10, {})] \
        == want


def test_a_wmic_without_a_start_time_names_its_targets_without_windows():
    """A wmic whose time the log did not give (unreadable) still lists the hosts its
    /node: names; there is no window to find their WmiPrvSE children or logons in. It
    used to raise AttributeError, which no context guard catches (the whole report
    stopped)."""
    con = store.connect()
    wmic = proc("w", 0, "wmic.exe", parent="cmd.exe", dest=SOURCE,
                cmd="wmic /node:WIN-T process call create x")
    wmic["time"] = None
    load(con, "process_start", [wmic, proc("t", 5, "cmd.exe")])
    for memo in (None, {}):
        (tgt,) = remote_origin(con, "w", memo=memo)["source"]["targets"]
        assert tgt["dest"] == TARGET
        assert tgt["wmiprvse_children"] == [] and tgt["logons_from_source"] == []
