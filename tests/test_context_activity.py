"""Host/user activity (the story's investigation searches) and the for_finding entry."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from wmihunt import store
from wmihunt.context import CONTEXT_KEYS, for_finding, for_host, for_user
from wmihunt.context.activity import (
    host_activity,
    process_info,
    wmi_events,
    wmic_runs,
    wmiprvse_children,
)
from wmihunt.context.findings import MINIMAL_FINDINGS_DDL
from wmihunt.models import MODELS

T0 = datetime(2019, 5, 11, 17, 57, 0)
HOST = "IEWIN7"


def load(con, table: str, rows: list[dict]) -> None:
    store.load_batch(con, table, pa.Table.from_pylist(rows, schema=MODELS[table].arrow_schema))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def proc(uid, minutes, name, parent, *, dest=HOST, user="IEWIN7\\IEUser", cmd=None, guid=None,
         pguid=None, logon_id=None):
    return {"uid": uid, "time": at(minutes), "dest": dest, "user": user, "process_name": name,
            "process_path": "C:\\Windows\\System32\\" + name, "process": cmd or name,
            "parent_process_name": parent, "data_source": "sysmon", "event_id": "1",
            "process_guid": guid, "parent_process_guid": pguid, "logon_id": logon_id}


def finding(con, fid, minutes, det, score, table, uid, *, dest=HOST, user="IEWIN7\\IEUser",
            mitre=("T1047",), objects=("dest", "user")):
    con.execute(
        "INSERT INTO findings VALUES (?, ?, ?, 'TTP', ?, ?, 'msg', ?, ?, ?, 'sysmon', ?, ?, "
        "false, ?)",
        [fid, det, det, score, list(mitre), at(minutes), dest, user, table, uid, list(objects)],
    )


@pytest.fixture
def case():
    con = store.connect()
    con.execute(MINIMAL_FINDINGS_DDL)
    load(con, "process_start", [
        proc("cmd1", 0, "cmd.exe", "WmiPrvSE.exe", cmd="cmd.exe /Q /c whoami", guid="G1",
             logon_id="0x1d313d"),
        proc("who", 0.1, "whoami.exe", "cmd.exe", guid="G2", pguid="G1"),
        proc("cmd2", 30, "cmd.exe", "WmiPrvSE.exe", cmd="cmd.exe /Q /c ipconfig", guid="G3"),
        proc("cmd3", 300, "cmd.exe", "explorer.exe", user="IEWIN7\\admin"),  # outside window
        proc("wmic", -10, "WMIC.exe", "cmd.exe", cmd="wmic /node:SRV process call create x"),
        proc("far", 0, "cmd.exe", "WmiPrvSE.exe", dest="OTHER"),
    ])
    load(con, "wmi_activity", [
        {"uid": "f19", "time": at(-5), "dest": HOST, "event_id": "19", "kind": "filter",
         "operation": "Created", "name": "BotFilter82", "query": "SELECT 1",
         "data_source": "sysmon", "user": "IEWIN7\\IEUser"},
        {"uid": "c20", "time": at(-5), "dest": HOST, "event_id": "20", "kind": "consumer",
         "operation": "Created", "name": "BotConsumer23", "consumer_type": "Command Line",
         "destination": "C:\\Windows\\System32\\cmd.exe /Q /c whoami", "data_source": "sysmon"},
        {"uid": "b21", "time": at(-5), "dest": HOST, "event_id": "21", "kind": "binding",
         "operation": "Created", "consumer": 'CommandLineEventConsumer.Name="BotConsumer23"',
         "filter": '__EventFilter.Name="BotFilter82"', "data_source": "sysmon"},
        {"uid": "old57", "time": at(-600), "dest": HOST, "event_id": "5857", "kind": "provider",
         "data_source": "wmi_activity"},
    ])
    load(con, "script_block", [
        {"uid": "ps1", "time": at(1), "dest": HOST, "event_id": "4104", "script_block_id": "B",
         "message_number": 1, "message_total": 2, "script_block_text": "Invoke-Wmi"},
        {"uid": "ps2", "time": at(1), "dest": HOST, "event_id": "4104", "script_block_id": "B",
         "message_number": 2, "message_total": 2, "script_block_text": "Exec -Target x"},
    ])
    finding(con, "F0", -60, "Earlier thing", 25, "process_start", "cmd3")
    finding(con, "F1", 0, "Process Execution via WMI", 49, "process_start", "cmd1")
    finding(con, "F9", -5, "WMI Permanent Event Subscription - Sysmon", 30, "wmi_activity", "b21",
            mitre=("T1546.003",))
    finding(con, "F2", 1, "PowerShell Invoke WmiExec Usage", 100, "script_block", "ps1",
            objects=("dest",))
    finding(con, "FX", 0, "Process Execution via WMI", 49, "process_start", "far", dest="OTHER")
    return con


def test_host_activity_window_wmi_children_wmic_and_upstream_searches(case):
    act = host_activity(case, HOST, "2019-05-11T17:57:00Z", window=timedelta(minutes=45),
                        process_name="cmd.exe", parent_process_name="WmiPrvSE.exe",
                        finding_id="F1")
    assert act["wmi"]["counts"] == {"19": 1, "20": 1, "21": 1}  # 5857 is 10 h earlier
    assert [c["uid"] for c in act["wmiprvse_children"]] == ["cmd1", "cmd2"]  # not OTHER's
    assert [w["uid"] for w in act["wmic_runs"]] == ["wmic"]
    info = act["process_info"]
    assert (info["count"], info["users"], info["first_seen"], info["last_seen"]) == (
        3, 2, "2019-05-11T17:57:00.000000Z", "2019-05-11T22:57:00.000000Z")
    by = {(g["user"], g["parent_process_name"]): g for g in info["by_user"]}
    assert by[("IEWIN7\\IEUser", "WmiPrvSE.exe")]["count"] == 2
    assert sorted(by[("IEWIN7\\IEUser", "WmiPrvSE.exe")]["command_lines"]) == [
        "cmd.exe /Q /c ipconfig", "cmd.exe /Q /c whoami"]
    parent = act["parent_process_info"]
    assert parent["count"] == 2 and parent["by_user"][0]["process_name"] == "cmd.exe"
    # earlier alerts for the host: before the finding, not itself, not other hosts
    assert [f["finding_id"] for f in act["earlier_findings"]] == ["F9", "F0"]
    assert process_info(case, HOST) is None


def test_for_finding_process_has_tree_subscription_activity_risk_and_is_json(case):
    ctx = for_finding(case, "F1")
    assert tuple(ctx) == CONTEXT_KEYS
    json.dumps(ctx)  # JSON-serialisable as is
    tree = ctx["tree"]
    assert tree["process"]["uid"] == "cmd1"
    assert [a["process_name"] for a in tree["ancestors"]] == ["WmiPrvSE.exe"]
    assert [d["uid"] for d in tree["descendants"]] == ["who"]
    assert ctx["origin"]["target"]["method"] is None  # no Security log in this case
    # the consumer's payload is this command line: the subscription is shown with it
    sub = ctx["subscription"]
    assert sub["consumer_name"] == "BotConsumer23" and sub["relation"] == (
        "payload names the process")
    assert ctx["script"] is None
    assert ctx["activity"]["process_info"]["process_name"] == "cmd.exe"
    risk = ctx["risk"]
    assert risk["dest"]["total_risk"] == 49 + 30 + 100 + 25 and risk["dest"]["flagged"]
    # the user's risk counts their findings on every host (FX is on OTHER)
    assert risk["user"]["total_risk"] == 49 + 30 + 25 + 49 and risk["threshold"] == 100
    assert for_finding(case, "F1", threshold=500)["risk"]["dest"]["flagged"] is False


def test_for_finding_subscription_and_script_findings(case):
    sub = for_finding(case, "F9")["subscription"]
    assert (sub["filter_name"], sub["query"], sub["payload"]) == (
        "BotFilter82", "SELECT 1", "C:\\Windows\\System32\\cmd.exe /Q /c whoami")
    ctx = for_finding(case, "F2")
    assert ctx["script"]["text"] == "Invoke-WmiExec -Target x" and ctx["tree"] is None
    with pytest.raises(LookupError):
        for_finding(case, "nope")


def test_for_host_and_for_user(case):
    host = for_host(case, "iewin7")
    json.dumps(host)
    assert host["data"]["process_start"]["rows"] == 5
    assert [s["name"] for s in host["subscriptions"]] == ["BotConsumer23 / BotFilter82"]
    assert [c["uid"] for c in host["wmiprvse_children"]] == ["cmd1", "cmd2"]
    assert host["risk"]["total_risk"] == 204 and len(host["findings"]) == 4
    assert host["wmiprvse_info"]["count"] == 2
    user = for_user(case, "ieuser")
    json.dumps(user)
    assert [(r["object"], r["total_risk"]) for r in user["risk"]] == [("IEWIN7\\IEUser", 153)]
    assert {h["dest"]: h["wmi_children"] for h in user["hosts"]} == {HOST: 2, "OTHER": 1}
    assert [f["finding_id"] for f in user["findings"]] == ["F0", "F9", "F1", "FX", "F2"]


def test_a_reports_windows_keep_sql_between_bounds_order_and_null_times():
    """The window slices a report cuts from a host's rows (``memo``) equal the per-window
    queries at the edges: rows exactly at both bounds are in, a microsecond outside is
    out, rows without a time never match, ties on time keep uid order, counts per
    EventID come in SQL order with an empty EventID last."""
    con = store.connect()
    lo, hi = at(0), at(60)
    micro = timedelta(microseconds=1)
    procs = [
        proc("a-lo", 0, "cmd.exe", "WmiPrvSE.exe"),
        proc("b-hi", 60, "cmd.exe", "WmiPrvSE.exe"),
        proc("a-hi", 60, "wmic.exe", "WmiPrvSE.exe"),
        proc("before", 0, "cmd.exe", "WmiPrvSE.exe"),
        proc("after", 60, "cmd.exe", "WmiPrvSE.exe"),
        proc("no-time", 30, "cmd.exe", "WmiPrvSE.exe"),
        proc("lower", 30, "WMIC.EXE", "WMIPRVSE.EXE", dest=HOST.lower()),
    ]
    procs[3]["time"] = lo - micro
    procs[4]["time"] = hi + micro
    procs[5]["time"] = None
    load(con, "process_start", procs)
    wmi = [{"uid": f"w{i}", "time": t, "dest": HOST, "event_id": e, "data_source": "x"}
           for i, (t, e) in enumerate([(lo, "5861"), (hi, "19"), (lo, None), (hi, "5857"),
                                       (hi + micro, "19"), (None, "20"), (at(5), "19")])]
    load(con, "wmi_activity", wmi)
    memo: dict = {}
    for limit in (100, 2):
        for fn in (wmiprvse_children, wmic_runs):
            alone = fn(con, HOST, lo, hi, limit)
            assert fn(con, HOST, lo, hi, limit, memo) == alone
        events = wmi_events(con, HOST, lo, hi, limit)
        assert wmi_events(con, HOST, lo, hi, limit, memo) == events
    assert [r["uid"] for r in wmiprvse_children(con, HOST, lo, hi, 100, memo)] == [
        "a-lo", "lower", "a-hi", "b-hi"]
    assert list(wmi_events(con, HOST, lo, hi, 100, memo)["counts"]) == ["19", "5857", "5861",
                                                                        None]
    assert any(k[0] == "timeline" and v is not None for k, v in memo.items())
