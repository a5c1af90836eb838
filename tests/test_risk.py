"""Risk per entity: sums per risk object, ranking, threshold, risk objects from metadata."""

from __future__ import annotations

from datetime import datetime, timedelta

from wmihunt import store
from wmihunt.context.findings import MINIMAL_FINDINGS_DDL
from wmihunt.risk import STORY_RISK_OBJECTS, entity_risk, risk_by_entity, top_entities

T0 = datetime(2020, 1, 14, 20, 0, 0)
D3 = "24869767-8579-485d-9a4f-d9ddfd8f0cac"
D1 = "01d9a0c2-cece-11eb-ab46-acde48001122"
D5 = "272df6de-61f1-4784-877c-1fbc3e2d0838"


def add(con, fid, det_id, name, score, mitre, dest, user, *, objects=None, sec=0):
    con.execute(
        "INSERT INTO findings (finding_id, detection, detection_id, type, risk_score, mitre, "
        "message, time, dest, \"user\", data_source, table_name, uid, parent_inferred, "
        "risk_objects) VALUES (?, ?, ?, 'TTP', ?, ?, 'm', ?, ?, ?, 'sysmon', 'process_start', "
        "?, false, ?)",
        [fid, name, det_id, score, mitre, T0 + timedelta(seconds=sec), dest, user, fid, objects],
    )


def setup(con, *, with_objects: bool = True) -> None:
    con.execute(MINIMAL_FINDINGS_DDL)
    o = (lambda *f: list(f)) if with_objects else (lambda *f: None)
    add(con, "1", D3, "Process Execution via WMI", 49, ["T1047"], "HOST-A", "A\\eve",
        objects=o("dest", "user"), sec=1)
    add(con, "2", D3, "Process Execution via WMI", 49, ["T1047"], "host-a", "A\\eve",
        objects=o("dest", "user"), sec=2)
    add(con, "3", D1, "Detect WMI Event Subscription Persistence", 63, ["T1546.003"], "HOST-A",
        "A\\eve", objects=o("dest"), sec=3)  # dest only: eve gets nothing from this one
    add(con, "4", D5, "Remote WMI Command Attempt", 36, ["T1047"], "HOST-B", None,
        objects=o("dest", "user"), sec=4)  # no user: only the host scores


def test_sums_rank_and_flag_with_risk_objects_column():
    con = store.connect()
    setup(con)
    ranked = risk_by_entity(con)
    assert [(r["object_type"], r["object"], r["total_risk"]) for r in ranked] == [
        ("dest", "HOST-A", 161), ("user", "A\\eve", 98), ("dest", "HOST-B", 36)]
    host_a = ranked[0]
    assert host_a["findings"] == 3 and host_a["detections"] == 2 and host_a["techniques"] == 2
    assert host_a["technique_ids"] == ["T1047", "T1546.003"]
    assert host_a["flagged"] is True and ranked[1]["flagged"] is False
    assert host_a["first_time"] == "2020-01-14T20:00:01.000000Z"
    assert [r["flagged"] for r in risk_by_entity(con, threshold=90)] == [True, True, False]
    assert entity_risk(con, "user", "a\\EVE")["total_risk"] == 98
    assert entity_risk(con, "user", None) is None and entity_risk(con, "dest", "nope") is None
    assert [r["object"] for r in top_entities(con, 1)] == ["HOST-A"]


def test_fallback_to_story_table_and_explicit_mapping():
    con = store.connect()
    setup(con, with_objects=False)
    expected = {("dest", "HOST-A"): 161, ("user", "A\\eve"): 98, ("dest", "HOST-B"): 36}
    # the column is there but NULL: the story table fills in
    ranked = {(r["object_type"], r["object"]): r["total_risk"] for r in risk_by_entity(con)}
    assert ranked == expected
    con.execute("ALTER TABLE findings DROP COLUMN risk_objects")
    ranked = {(r["object_type"], r["object"]): r["total_risk"] for r in risk_by_entity(con)}
    assert ranked == expected
    assert STORY_RISK_OBJECTS[D1] == ("dest",)
    # an explicit mapping (by detection name) wins: here the subscription also scores user
    mapping = {**STORY_RISK_OBJECTS, "Detect WMI Event Subscription Persistence": ["dest", "user"]}
    mapping.pop(D1)
    assert entity_risk(con, "user", "A\\eve", risk_objects=mapping)["total_risk"] == 161


def test_ties_break_on_distinct_detections_then_techniques_and_no_findings_table():
    con = store.connect()
    assert risk_by_entity(con) == []
    con.execute(MINIMAL_FINDINGS_DDL)
    add(con, "a", D3, "X", 50, ["T1047"], "ONE", None, objects=["dest"])
    add(con, "b", D3, "X", 50, ["T1047"], "ONE", None, objects=["dest"])
    add(con, "c", D3, "X", 50, ["T1047"], "TWO", None, objects=["dest"])
    add(con, "d", D1, "Y", 50, ["T1546.003"], "TWO", None, objects=["dest"])
    assert [r["object"] for r in risk_by_entity(con)] == ["TWO", "ONE"]
