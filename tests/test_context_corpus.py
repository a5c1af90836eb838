"""Context joins on real logs from ../shared/corpus (skipped when absent or before ingest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wmihunt import store
from wmihunt.context import for_finding, infer_parents, process_tree, remote_origin, subscriptions
from wmihunt.context.tree import walk
from wmihunt.detect import run_detections
from wmihunt.ingest import ingest_paths
from wmihunt.rules.loader import load_story

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
ATTACK = CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES"


def _ingest(*names: str):
    """A fresh case with ``names`` ingested and parents inferred (skips when not possible)."""
    paths = [ATTACK / n for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"corpus not present: {missing[0]}")
    con = store.connect()
    ingest_paths([str(p) for p in paths], con, workers=1)
    infer_parents(con)
    return con


def _uid(con, where: str, params: list | None = None) -> str:
    got = con.execute(f"SELECT uid FROM process_start WHERE {where} ORDER BY time", params or [])
    rows = got.fetchall()
    assert rows, f"no process_start row where {where}"
    return rows[0][0]


def test_impacket_wmiexec_chain_wmiprvse_cmd_whoami():
    con = _ingest("Lateral Movement/LM_wmiexec_impacket_sysmon_whoami.evtx")
    children = con.execute(
        "SELECT count(*) FROM process_start WHERE lower(parent_process_name) = 'wmiprvse.exe'"
    ).fetchone()[0]
    assert children == 3
    uid = _uid(con, "process LIKE '%whoami /all%' AND process_name = 'cmd.exe'")
    tree = process_tree(con, uid)
    assert [a["process_name"] for a in tree["ancestors"]] == ["WmiPrvSE.exe"]
    assert tree["ancestors"][0]["logged"] is False  # WmiPrvSE's own start is not in the file
    assert [d["process_name"] for d in walk(tree["descendants"])] == ["whoami.exe"]
    assert tree["descendants"][0]["linked_by"] == "guid"
    # Sysmon only: the logon id is known, the 4624 is not in the case
    origin = remote_origin(con, uid)["target"]
    assert origin["method"] is None and "0x1d313d" in origin["reason"]


def test_poisonhandler_chain_wmiprvse_rundll32_cmd_notepad():
    con = _ingest("Lateral Movement/LM_wmi_PoisonHandler_Mr-Un1k0d3r_sysmon_1_13.evtx")
    uid = _uid(con, "process = 'rundll32 url.dll,FileProtocolHandler ms-browser://'")
    tree = process_tree(con, uid)
    assert [a["process_name"] for a in tree["ancestors"]] == ["WmiPrvSE.exe"]
    chain = [(d["process_name"], d["depth"]) for d in walk(tree["descendants"])]
    assert chain == [("cmd.exe", 1), ("notepad.exe", 2)]
    uid = _uid(con, "process = 'cmd.exe /c start ms-browser://'")
    chain = [(d["process_name"], d["depth"]) for d in walk(process_tree(con, uid)["descendants"])]
    assert chain == [("cmd.exe", 1), ("notepad.exe", 2)]


def test_commandlineeventconsumer_one_subscription_created_then_deleted():
    con = _ingest("Persistence/sysmon_20_21_1_CommandLineEventConsumer.evtx")
    (sub,) = subscriptions(con)
    assert (sub["filter_name"], sub["consumer_name"]) == ("BotFilter82", "BotConsumer23")
    assert sub["query"] == ("SELECT * FROM __InstanceModificationEvent WITHIN 10 WHERE "
                            "TargetInstance ISA 'Win32_PerfFormattedData_PerfOS_System'")
    assert sub["payload"] == "c:\\Windows\\System32\\cmd.exe"
    assert sub["consumer_class"] == "CommandLineEventConsumer"
    assert sub["creator"] == "IEWIN7\\IEUser"
    assert sub["created"] is not None and sub["deleted"] is not None
    assert sub["created"] < sub["deleted"] and sub["state"] == "deleted"
    assert sub["complete"] is True


def test_wmighost_one_script_subscription_with_payload():
    con = _ingest("Persistence/wmighost_sysmon_20_21_1.evtx")
    (sub,) = subscriptions(con)
    assert sub["name"] == "ProbeScriptFint" and sub["dest"] == "PC04.example.corp"
    assert sub["consumer_class"] == "ActiveScriptEventConsumer"
    assert sub["payload"].startswith('var sXmlUrl="http://kumardeep.sosblogs.com/')
    assert sub["namespace"] == "\\\\.\\root\\subscription"
    assert sub["modified"] and sub["created"] is None and sub["deleted"] is None
    # the file has no Sysmon 19 nor 5861: the filter's query was never logged
    assert sub["query"] is None and sub["complete"] is False


def test_old_4688_parent_inferred_and_origin_both_ends():
    con = _ingest("Lateral Movement/LM_WMI_4624_4688_TargetHost.evtx",
                  "Lateral Movement/LM_WMIC_4648_rpcss.evtx")
    row = con.execute(
        "SELECT uid, parent_process_name, parent_inferred FROM process_start "
        "WHERE process_name = 'calc.exe'"
    ).fetchone()
    assert row[1] == "WmiPrvSE.exe" and row[2] is True
    target = remote_origin(con, row[0])["target"]
    # the old 4688 shows NETWORK SERVICE (0x3e4): no logon id; nearest earlier person logon
    assert (target["method"], target["confidence"]) == ("host_preceding", "low")
    logon = target["logon"]
    assert (logon["account"], logon["src_ip"], logon["src_workstation"]) == (
        "EXAMPLE\\Administrator", "10.0.2.17", "PC01")
    best = target["source"]["best"]
    assert best["source_dest"] == "PC01.example.corp" and best["kind"] == "explicit_credentials"
    assert best["workstation_match"] is True
    assert best["within_window"] is False  # the two captures are ~10.8 h apart


def test_detection_3_fires_on_inferred_parent_when_engine_present():
    con = _ingest("Lateral Movement/LM_WMI_4624_4688_TargetHost.evtx")
    run_detections(con, load_story())
    got = con.execute(
        "SELECT detection_number, parent_inferred, finding_id FROM findings"
    ).fetchall()
    assert [(n, inf) for n, inf, _ in got] == [(3, True)]
    ctx = for_finding(con, got[0][2])
    assert ctx["tree"]["ancestors"][-1]["process_name"] == "WmiPrvSE.exe"
    assert ctx["origin"]["target"]["logon"]["src_ip"] == "10.0.2.17"


def test_consumer_launched_processes_show_their_subscription_when_engine_present():
    con = _ingest("Persistence/wmighost_sysmon_20_21_1.evtx",
                  "Persistence/sysmon_20_21_1_CommandLineEventConsumer.evtx")
    run_detections(con, load_story())
    got = dict(con.execute(
        "SELECT detection_number, finding_id FROM findings WHERE detection_number IN (3, 6)"
    ).fetchall())
    scrcons = for_finding(con, got[6])["subscription"]  # WMIGhost: scrcons.exe starts
    assert scrcons["name"] == "ProbeScriptFint"
    # the JScript body itself names scrcons.exe (it kills stale copies of it)
    assert scrcons["relation"] == "payload names the process"
    cmd = for_finding(con, got[3])["subscription"]  # BotConsumer23 runs cmd.exe as SYSTEM
    assert cmd["consumer_name"] == "BotConsumer23"
    assert cmd["relation"] == "payload names the process"
