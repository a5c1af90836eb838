"""The detection run: findings table, JSON shape, summaries (spec §3.3), filters, strategies."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from test_detect_helpers import T0, fired, insert, process_row, script_row, story, wmi_row

from wmihunt import findings as F
from wmihunt import store
from wmihunt.detect import run_detections, select_rules, summarize
from wmihunt.findings import fetch_findings, finding_to_json, iso_utc

WMIC = "C:\\Windows\\System32\\wbem\\WMIC.exe"
WMIPRVSE = "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe"
REMOTE = "wmic /node:srv01 process call create calc.exe"


def _con_with(rows_by_table: dict[str, list[dict]]) -> object:
    con = store.connect()
    for table, rows in rows_by_table.items():
        insert(con, table, rows)
    return con


def test_findings_table_has_the_declared_columns() -> None:
    con = _con_with({"process_start": [process_row("sysmon", WMIC, REMOTE)]})
    run_detections(con, story())
    cols = [r[0] for r in con.execute("DESCRIBE findings").fetchall()]
    assert cols == list(F.COLUMN_NAMES)
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE findings)").fetchall())
    assert types["mitre"] == "VARCHAR[]" and types["time"] == "TIMESTAMP"


def test_one_finding_per_rule_and_event_with_metadata() -> None:
    row = process_row("sysmon", WMIC, REMOTE, time=dt.datetime(2024, 5, 1, 12, 0, 0, 250000))
    con = _con_with({"process_start": [row]})
    result = run_detections(con, story())
    rows = fetch_findings(con)
    assert sorted(r["detection_number"] for r in rows) == [4, 5, 7]
    assert result.counts["Remote Process Instantiation via WMI"] == 1
    assert result.counts["Process Execution via WMI"] == 0
    assert result.total == 3
    by_number = {r["detection_number"]: r for r in rows}
    r4 = by_number[4]
    assert r4["detection_id"] == "d25d2c3d-d9d8-40ec-8fdf-e86fe155a3da"
    assert (r4["type"], r4["risk_score"], r4["mitre"]) == ("TTP", 49, ["T1047"])
    assert r4["risk_objects"] == ["dest", "user"]
    assert r4["rule_source"] == "story" and r4["table_name"] == "process_start"
    assert r4["uid"] == row["uid"] and r4["dest"] == row["dest"] and r4["user"] == row["user"]
    assert by_number[7]["type"] == "Hunting" and by_number[7]["risk_score"] == 25
    # upstream template rendered as upstream would, and the corrected sentence
    assert r4["message_upstream"] == (
        f"A wmic.exe process {REMOTE} contain process spawn commandline {REMOTE} in host "
        "ws01.corp.example"
    )
    assert r4["message"].startswith("wmic.exe started a process on a remote node")
    assert REMOTE in r4["message"] and "CORP\\alice" in r4["message"]
    fields = json.loads(r4["fields"])
    assert fields["process"] == REMOTE and fields["process_name"] == "WMIC.exe"
    assert fields["original_file_name"] == "WMIC.exe" and fields["process_id"] == 4242


def test_finding_id_is_stable_across_runs_and_strategies() -> None:
    con = _con_with({"process_start": [process_row("sysmon", WMIC, REMOTE, uid="f.evtx||7")]})
    run_detections(con, story())
    first = sorted(r["finding_id"] for r in fetch_findings(con))
    run_detections(con, story(), strategy="union")
    assert sorted(r["finding_id"] for r in fetch_findings(con)) == first
    assert len(set(first)) == 3 and all(len(f) == 32 for f in first)


def test_jsonl_shape() -> None:
    row = process_row("security", "C:\\Windows\\System32\\calc.exe", None, WMIPRVSE)
    row["time"] = dt.datetime(2022, 5, 1, 4, 42, 6, 656542)
    con = _con_with({"process_start": [row]})
    run_detections(con, story())
    (finding,) = fetch_findings(con)
    out = finding_to_json(finding)
    for key in (
        "detection",
        "detection_id",
        "type",
        "risk_score",
        "mitre",
        "message",
        "time",
        "dest",
        "user",
        "data_source",
        "evidence",
    ):
        assert key in out
    assert out["detection"] == "Process Execution via WMI"
    assert out["mitre"] == ["T1047"] and isinstance(out["mitre"], list)
    assert out["time"] == "2022-05-01T04:42:06.656542Z"
    assert out["data_source"] == "security"
    assert out["process"] is None and out["process_name"] == "calc.exe"
    assert out["parent_process_name"] == "WmiPrvSE.exe"
    assert out["evidence"] == {
        "file": "security.evtx",
        "member": None,
        "record_id": row["ev_record_id"],
        "line": None,
        "channel": "Security",
        "event_id": 4688,
    }
    assert out["message_upstream"].endswith("detected on host - ws01.corp.example")
    json.dumps(out)  # serialisable as is


def test_jsonl_evidence_of_crowdstrike_line_and_text_event_id() -> None:
    row = process_row("crowdstrike", "C:\\Windows\\System32\\calc.exe", "calc", WMIPRVSE)
    con = _con_with({"process_start": [row]})
    run_detections(con, story())
    (finding,) = fetch_findings(con)
    ev = finding_to_json(finding)["evidence"]
    assert ev["event_id"] == "ProcessRollup2" and ev["line"] == row["ev_line"]
    assert ev["record_id"] is None


def test_iso_utc() -> None:
    assert iso_utc(dt.datetime(2020, 1, 2, 3, 4, 5)) == "2020-01-02T03:04:05Z"
    aware = dt.datetime(2020, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert iso_utc(aware) == "2020-01-02T03:04:05Z"
    assert iso_utc(None) is None


def test_message_of_detection_2_uses_the_computer_alias() -> None:
    con = _con_with({"script_block": [script_row("Invoke-WmiExec -Target x", dest="dc01")]})
    run_detections(con, story())
    (f,) = fetch_findings(con)
    assert f["message_upstream"] == "PowerShell was identified running a Invoke-WmiExec on dc01."


def test_messages_of_8_and_10_have_no_upstream_template() -> None:
    rows = [
        wmi_row(
            data_source="wmi_activity",
            event_id="5861",
            consumer='CommandLineEventConsumer="E"',
            filter="E",
            possible_cause="Binding EventFilter: x",
        ),
        wmi_row(
            data_source="wmi_activity",
            event_id="5860",
            query="SELECT * FROM X",
            possible_cause="Temporary",
        ),
    ]
    con = _con_with({"wmi_activity": rows})
    run_detections(con, story())
    got = {f["detection_number"]: f for f in fetch_findings(con)}
    assert set(got) == {8, 10}
    assert got[8]["message_upstream"] is None and got[10]["message_upstream"] is None
    as_json = finding_to_json(got[8])
    assert as_json["message"] == got[8]["message"]
    assert as_json["possible_cause"] == as_json["event_text"] == "Binding EventFilter: x"
    assert got[8]["message"] == (
        "WMI permanent event subscription on ws01.corp.example: filter E bound to consumer "
        'CommandLineEventConsumer="E"'
    )
    assert "SELECT * FROM X" in got[10]["message"]


# --- summaries (spec §3.3) -------------------------------------------------------------------
def test_process_summary_keeps_missing_values_as_null_and_counts() -> None:
    t1, t2 = T0, T0 + dt.timedelta(minutes=5)
    a = process_row("security", "C:\\Windows\\calc.exe", None, WMIPRVSE, user=None, time=t1)
    b = dict(a, uid="other", time=t2, ev_record_id=99)  # same grouping tuple
    c = process_row("sysmon", "C:\\Windows\\calc.exe", "calc", WMIPRVSE, time=t2)
    con = _con_with({"process_start": [a, b, c]})
    result = run_detections(con, story())
    rows = result.summaries["Process Execution via WMI"].rows
    assert len(rows) == 2
    null_row = next(r for r in rows if r["user"] == "null")
    assert null_row["count"] == 2 and null_row["process"] == "null"
    assert null_row["original_file_name"] == "null"
    assert null_row["firstTime"] == "2024-05-01T12:00:00"
    assert null_row["lastTime"] == "2024-05-01T12:05:00"
    other = next(r for r in rows if r["user"] != "null")
    assert other["count"] == 1 and other["process"] == "calc"
    assert list(rows[0])[-3:] == ["count", "firstTime", "lastTime"]


def test_summaries_of_1_2_8_10_drop_rows_with_a_missing_grouping_value() -> None:
    full = wmi_row(
        event_id="20", operation="Created", name="E", consumer_type="Script", destination="x"
    )
    missing = wmi_row(event_id="20", operation="Created", name="E", consumer_type="Script")
    ps_ok = script_row("Invoke-WmiExec a")
    ps_nodest = script_row("Invoke-WmiExec b", dest=None)
    q = "SELECT * FROM __InstanceCreationEvent"
    t_ok = wmi_row(data_source="wmi_activity", event_id="5860", query=q, possible_cause="Temporary")
    t_nodest = dict(t_ok, uid="t2", dest=None)
    con = _con_with(
        {"wmi_activity": [full, missing, t_ok, t_nodest], "script_block": [ps_ok, ps_nodest]}
    )
    result = run_detections(con, story())
    assert result.counts["Detect WMI Event Subscription Persistence"] == 2  # findings: both
    s1 = result.summaries["Detect WMI Event Subscription Persistence"].rows
    assert [(r["destination"], r["count"]) for r in s1] == [("x", 1)]  # summary: one
    s2 = result.summaries["PowerShell Invoke WmiExec Usage"].rows
    assert [r["script_block_text"] for r in s2] == ["Invoke-WmiExec a"]
    assert s2[0]["event_id"] == "4104"
    s10 = result.summaries["WMI Temporary Event Subscription"].rows
    assert [(r["dest"], r["query"], r["count"]) for r in s10] == [("ws01.corp.example", q, 1)]


def test_summary_of_8_groups_by_the_event_text_of_either_form() -> None:
    cons = 'CommandLineEventConsumer="E"'
    structured = wmi_row(
        data_source="wmi_activity",
        event_id="5861",
        consumer=cons,
        possible_cause="Binding EventFilter: A",
    )
    text = wmi_row(
        data_source="wmi_activity",
        event_id="5861",
        consumer=cons,
        possible_cause="Binding EventFilter: B",
        message="Consumer = x; Binding B",
    )
    con = _con_with({"wmi_activity": [structured, dict(structured, uid="dup"), text]})
    result = run_detections(con, story())
    rows = result.summaries["WMI Permanent Event Subscription"].rows
    assert [(r["event_text"], r["count"]) for r in rows] == [
        ("Binding EventFilter: A", 2),
        ("Consumer = x; Binding B", 1),
    ]


def test_summary_of_9_is_one_row_per_event() -> None:
    b = wmi_row(event_id="21", operation="Created", consumer="C", filter="F")
    con = _con_with({"wmi_activity": [b, dict(b, uid="again"), wmi_row(event_id="21")]})
    result = run_detections(con, story())
    rows = result.summaries["WMI Permanent Event Subscription - Sysmon"].rows
    assert len(rows) == 3 and all(r["count"] == 1 for r in rows)
    assert rows[0]["firstTime"] == rows[0]["lastTime"] == "2024-05-01T12:00:00"
    assert any(r["consumer"] is None for r in rows)  # kept, not dropped


def test_summarize_alone_reads_only_the_findings_table() -> None:
    con = _con_with({"process_start": [process_row("sysmon", WMIC, REMOTE)]})
    run_detections(con, story())
    con.execute("DELETE FROM process_start")
    rule = next(r for r in story() if r.meta.number == 5)
    assert summarize(con, rule).rows[0]["count"] == 1


# --- filters ------------------------------------------------------------------------------------
@pytest.fixture()
def mixed():
    rows = [
        process_row("sysmon", WMIC, REMOTE, time=T0),
        process_row(
            "sysmon", "C:\\Windows\\calc.exe", "calc", WMIPRVSE, time=T0 + dt.timedelta(hours=1)
        ),
    ]
    return _con_with({"process_start": rows, "script_block": [script_row("invoke-wmiexec")]})


def _numbers(con) -> list[int]:
    return sorted(r["detection_number"] for r in fetch_findings(con))


def test_filter_by_detection_name_number_or_id(mixed) -> None:
    run_detections(mixed, story(), detections=["remote wmi command attempt", "#3"])
    assert _numbers(mixed) == [3, 5]
    run_detections(mixed, story(), detections=["0734bd21-2769-4972-a5f1-78bb1e011224"])
    assert _numbers(mixed) == [2]
    with pytest.raises(ValueError, match="unknown detection"):
        run_detections(mixed, story(), detections=["No Such Detection"])


def test_filter_by_type_and_min_risk(mixed) -> None:
    run_detections(mixed, story(), types=["Hunting"])
    assert _numbers(mixed) == [7]
    run_detections(mixed, story(), min_risk=49)
    assert _numbers(mixed) == [2, 3, 4]
    result = run_detections(mixed, story(), types=["ttp"], min_risk=100)
    assert _numbers(mixed) == [2] and list(result.counts) == ["PowerShell Invoke WmiExec Usage"]


def test_time_window_from_inclusive_to_exclusive(mixed) -> None:
    run_detections(mixed, story(), since=T0 + dt.timedelta(minutes=30))
    assert _numbers(mixed) == [3]  # the script block and the wmic start are at T0
    run_detections(mixed, story(), until=T0 + dt.timedelta(hours=1))
    assert _numbers(mixed) == [2, 4, 5, 7]
    aware = (T0 + dt.timedelta(hours=1)).replace(tzinfo=dt.UTC)
    run_detections(mixed, story(), since=aware, until=aware + dt.timedelta(seconds=1))
    assert _numbers(mixed) == [3]


def test_select_rules_keeps_order() -> None:
    chosen = select_rules(story(), detections=["7", "3"])
    assert [r.meta.number for r in chosen] == [3, 7]


# --- strategies and robustness ---------------------------------------------------------
def test_scan_and_union_strategies_agree(mixed) -> None:
    run_detections(mixed, story(), strategy="scan")
    scan = sorted((r["finding_id"], r["message"], r["fields"]) for r in fetch_findings(mixed))
    run_detections(mixed, story(), strategy="union")
    union = sorted((r["finding_id"], r["message"], r["fields"]) for r in fetch_findings(mixed))
    assert scan == union and len(scan) == 5
    with pytest.raises(ValueError):
        run_detections(mixed, story(), strategy="bogus")


def test_chunked_scan_covers_every_row(monkeypatch) -> None:
    import wmihunt.detect as detect

    rows = [process_row("sysmon", WMIC, REMOTE) for _ in range(7)]
    con = _con_with({"process_start": rows})
    monkeypatch.setattr(detect, "CHUNK_ROWS", 3)
    result = run_detections(con, story())
    assert result.counts["Remote WMI Command Attempt"] == 7


def test_a_rule_that_fails_at_run_time_is_reported_and_the_others_still_run(mixed) -> None:
    good = list(story())
    bad = dataclasses.replace(good[4], where="CAST('x' AS INTEGER) = 1", rule_id="bad")
    bad = dataclasses.replace(bad, meta=dataclasses.replace(bad.meta, detection="Broken"))
    result = run_detections(mixed, [*good, bad])
    assert [title for title, _ in result.errors] == [bad.title]
    assert "Conversion Error" in result.errors[0][1] or "convert" in result.errors[0][1].lower()
    assert _numbers(mixed) == [2, 3, 4, 5, 7]


def test_empty_tables_and_no_rules() -> None:
    con = store.connect()
    hits, result = fired(con)
    assert hits == {} and result.total == 0
    assert all(not s.rows for s in result.summaries.values())
    empty = result.summaries["Process Execution via WMI"].columns
    insert(con, "process_start", [process_row("sysmon", "C:\\calc.exe", "calc", WMIPRVSE)])
    _, result = fired(con)
    assert result.summaries["Process Execution via WMI"].columns == empty
    result = run_detections(con, [])
    assert result.total == 0 and result.counts == {}


def test_hostile_values_stay_data() -> None:
    evil = 'wmic /node:x process call create "\'; DROP TABLE process_start; --" $dest$ %s {0}'
    con = _con_with({"process_start": [process_row("sysmon", WMIC, evil, dest="h'1")]})
    run_detections(con, story())
    msgs = [f["message"] for f in fetch_findings(con)]
    assert len(msgs) == 3 and all(evil in m and "h'1" in m for m in msgs)
    assert con.execute("SELECT count(*) FROM process_start").fetchall() == [(1,)]


def test_rules_split_over_threads_find_the_same(monkeypatch) -> None:
    """Many rules are matched by parallel queries (``detect._match``): same findings as
    one query, on the bundled samples (every table, every story rule)."""
    from pathlib import Path

    import wmihunt.detect as detect
    from wmihunt.ingest import ingest_paths

    con = store.connect(None)
    ingest_paths([str(Path(__file__).parents[1] / "samples" / "logs")], con, workers=1)

    def findings() -> list[tuple]:
        return sorted((r["finding_id"], r["message"], r["fields"]) for r in fetch_findings(con))

    run_detections(con, story())
    one_query = findings()
    monkeypatch.setattr(detect, "PARALLEL_RULES", 1)  # 12 rules -> 2 threads per table
    parallel_queries = []
    real_arrow = detect._arrow
    monkeypatch.setattr(detect, "_arrow", lambda rel: parallel_queries.append(1) or real_arrow(rel))
    run_detections(con, story())
    assert findings() == one_query and len(one_query) > 60
    assert len(parallel_queries) >= 4  # two per table with two rules or more


def test_many_rules_test_each_distinct_row_once_and_find_the_same(monkeypatch, tmp_path) -> None:
    """From ``DEDUPE_RULES`` rules on, rows with the same values in every column the rules
    read are tested once: every copy still gets its own finding."""
    import shutil
    from pathlib import Path

    import wmihunt.detect as detect
    from wmihunt.ingest import ingest_paths

    logs = Path(__file__).parents[1] / "samples" / "logs"
    shutil.copytree(logs, tmp_path / "a")
    (tmp_path / "b").mkdir()  # the same events again: rows equal but for uid/file
    for name in ("ws01_sysmon.xml", "ws01_security.xml", "srv01_winlogbeat.jsonl"):
        data = (logs / name).read_bytes()  # one more trailing newline: other content hash
        (tmp_path / "b" / name).write_bytes(data + b"\n")
    con = store.connect(None)
    ingest_paths([str(tmp_path)], con, workers=1)

    def findings() -> list[tuple]:
        return sorted((r["finding_id"], r["message"], r["fields"]) for r in fetch_findings(con))

    run_detections(con, story())
    every_row = findings()
    monkeypatch.setattr(detect, "DEDUPE_RULES", 1)
    process_rules = [r for r in story() if r.table == "process_start"]
    sql = detect.build_match_sql("process_start", list(enumerate(process_rules)))
    assert "GROUP BY" in sql
    # each predicate once (in the matched list), not again in a WHERE: planning is the cost
    assert all(sql.count(f"({r.where})") == 1 for r in process_rules)
    run_detections(con, story())
    assert findings() == every_row
    per_copy = con.execute(
        "SELECT split_part(ev_file, '/', -2) AS copy, count(*) FROM findings GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [c for c, _ in per_copy] == ["a", "b"] and per_copy[1][1] > 40
