"""Subscription triples from Sysmon 19/20/21 and WMI-Activity 5859/5861."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from wmihunt import store
from wmihunt.context.mof import parse_binding_cause, parse_instances, sid_from_bytes
from wmihunt.context.subscriptions import parse_ref, subscription_for_event, subscriptions
from wmihunt.models import MODELS

T0 = datetime(2019, 5, 11, 17, 57, 0)


def load(con, table: str, rows: list[dict]) -> None:
    store.load_batch(con, table, pa.Table.from_pylist(rows, schema=MODELS[table].arrow_schema))


def wmi(uid, sec, event_id, *, dest="IEWIN7", source="sysmon", **cols):
    kind = {"19": "filter", "20": "consumer", "21": "binding", "5859": "permanent",
            "5861": "binding"}[event_id]
    return {"uid": uid, "time": T0 + timedelta(seconds=sec), "dest": dest, "event_id": event_id,
            "data_source": source, "kind": kind, **cols}


CAUSE = (
    "Binding EventFilter: \ninstance of __EventFilter\n{\n\tCreatorSID = {1, 5, 0, 0, 0, 0, 0,"
    " 5, 21, 0, 0, 0, 148, 201, 44, 47, 92, 247, 22, 107, 113, 39, 52, 166, 88, 4, 0, 0};\n"
    '\tEventNamespace = "root/cimv2";\n\tName = "Evil Persistence";\n'
    "\tQuery = \"select * from Win32_ProcessStartTrace where ProcessName='notepad.exe'\";\n"
    '\tQueryLanguage = "WQL";\n};\nPerm. Consumer: \ninstance of ActiveScriptEventConsumer\n{\n'
    '\tName = "Evil Persistence";\n\tScriptingEngine = "JScript";\n'
    '\tScriptText = "var s = \\"a;b}\\";\\nGetObject(\\"x\\")";\n};\n'
)


def test_created_then_deleted_triple_shows_both_times_and_payload():
    con = store.connect()
    user = "IEWIN7\\IEUser"
    ref_c = '\\\\.\\ROOT\\subscription:CommandLineEventConsumer.Name="BotConsumer23"'
    ref_f = '\\\\.\\ROOT\\subscription:__EventFilter.Name="BotFilter82"'
    load(con, "wmi_activity", [
        wmi("f1", 0, "19", operation="Created", user=user, name="BotFilter82",
            namespace="root\\cimv2", query="SELECT * FROM __InstanceModificationEvent WITHIN 60"),
        wmi("c1", 1, "20", operation="Created", user=user, name="BotConsumer23",
            consumer_type="Command Line", destination="C:\\Windows\\system32\\cmd.exe"),
        wmi("b1", 2, "21", operation="Created", user=user, consumer=ref_c, filter=ref_f),
        wmi("b2", 60, "21", operation="Deleted", user=user, consumer=ref_c, filter=ref_f),
        wmi("f2", 61, "19", operation="Deleted", user=user, name="BotFilter82",
            namespace="root\\cimv2", query="SELECT * FROM __InstanceModificationEvent WITHIN 60"),
        wmi("c2", 62, "20", operation="Deleted", user=user, name="BotConsumer23",
            consumer_type="Command Line", destination="C:\\Windows\\system32\\cmd.exe"),
        # same names on another host: a different subscription
        wmi("o1", 5, "21", dest="OTHER", operation="Created", consumer=ref_c, filter=ref_f),
    ])
    subs = subscriptions(con, "iewin7")
    assert len(subs) == 1
    s = subs[0]
    assert (s["filter_name"], s["consumer_name"]) == ("BotFilter82", "BotConsumer23")
    assert s["name"] == "BotConsumer23 / BotFilter82"
    assert s["namespace"] == "\\\\.\\ROOT\\subscription"
    assert s["event_namespace"] == "root\\cimv2"
    assert s["query"] == "SELECT * FROM __InstanceModificationEvent WITHIN 60"
    assert (s["consumer_type"], s["consumer_class"]) == ("Command Line", "CommandLineEventConsumer")
    assert s["payload"] == "C:\\Windows\\system32\\cmd.exe"
    assert s["creator"] == user
    assert s["created"] == "2019-05-11T17:57:00.000000Z"
    assert s["deleted"] == "2019-05-11T17:58:02.000000Z"
    assert s["state"] == "deleted" and s["complete"] is True
    assert [e["uid"] for e in s["events"]] == ["f1", "c1", "b1", "b2", "f2", "c2"]
    assert len(subscriptions(con)) == 2
    other = subscription_for_event(con, "o1")
    assert other["dest"] == "OTHER" and other["query"] is None and other["complete"] is False
    assert subscription_for_event(con, "c2")["filter_name"] == "BotFilter82"
    assert subscription_for_event(con, "nope") is None


def test_5861_message_form_gives_query_payload_and_creator_sid_and_5859_activation():
    con = store.connect()
    load(con, "wmi_activity", [
        wmi("w61", 10, "5861", source="wmi_activity", dest="IT001.shire.com",
            namespace="//./root/subscription", filter="Evil Persistence",
            consumer='ActiveScriptEventConsumer="Evil Persistence"', possible_cause=CAUSE),
        wmi("w59", 11, "5859", source="wmi_activity", dest="IT001.shire.com",
            namespace="//./root/CIMV2",
            query="select * from  Win32_ProcessStartTrace where ProcessName='notepad.exe'"),
        # a 5859 of another query stays out
        wmi("w59b", 12, "5859", source="wmi_activity", dest="IT001.shire.com", query="select 1"),
    ])
    (s,) = subscriptions(con)
    assert s["name"] == "Evil Persistence"
    assert s["query"] == "select * from Win32_ProcessStartTrace where ProcessName='notepad.exe'"
    assert s["consumer_class"] == "ActiveScriptEventConsumer"
    assert s["payload"] == 'var s = "a;b}";\nGetObject("x")'
    assert s["scripting_engine"] == "JScript"
    assert s["creator_sid"] == "S-1-5-21-791464340-1796667228-2788435825-1112"
    assert s["namespace"] == "//./root/subscription"
    assert [a["uid"] for a in s["activations"]] == ["w59"]
    assert s["state"] == "present" and s["created"] is None  # 5861 has no operation


def test_5861_with_cause_only_in_message_and_lone_consumer():
    con = store.connect()
    load(con, "wmi_activity", [
        wmi("m", 0, "5861", source="wmi_activity", message="Namespace = //./root/subscription; "
            "Eventfilter = Evil Persistence (refer to its activate eventid:5859); "
            'Consumer = ActiveScriptEventConsumer="Evil Persistence"; PossibleCause = ' + CAUSE),
        wmi("lone", 5, "20", operation="Modified", name="ProbeScriptFint", consumer_type="Script",
            destination="var toff=3000;"),
    ])
    subs = {s["name"]: s for s in subscriptions(con)}
    assert subs["Evil Persistence"]["payload"].startswith("var s")
    lone = subs["ProbeScriptFint"]
    assert lone["binding_seen"] is False and lone["consumer_class"] == "ActiveScriptEventConsumer"
    assert lone["modified"] == ["2019-05-11T17:57:05.000000Z"] and lone["creator"] is None


def test_parse_ref_and_mof_edge_cases():
    assert parse_ref('CommandLineEventConsumer.Name="Evil Persistence"') == {
        "namespace": None, "class": "CommandLineEventConsumer", "name": "Evil Persistence"}
    assert parse_ref('CommandLineEventConsumer.Name=\\"X\\"')["name"] == "X"
    assert parse_ref('NTEventLogEventConsumer="SCM Event Log Consumer"')["class"] == (
        "NTEventLogEventConsumer")
    assert parse_ref("Evil Persistence")["name"] == "Evil Persistence"
    assert parse_ref(None)["name"] is None
    # truncated, unbalanced, hostile text never raises
    assert parse_instances('instance of X { A = "unterminated') == [
        {"__class": "X", "A": "unterminated"}]
    assert parse_instances("instance of X { garbage ; B = 1; }") == [{"__class": "X", "B": "1"}]
    assert parse_binding_cause("no mof here") == {}
    assert sid_from_bytes(["1", "1", "0", "0", "0", "0", "0", "5", "18", "0", "0", "0"]) == (
        "S-1-5-18")
    assert sid_from_bytes(["x"]) is None and sid_from_bytes([1, 9, 0]) is None


def test_times_sort_as_text_within_one_second():
    """Times are fixed-width ISO strings: .5 s after a whole second sorts after it."""
    con = store.connect()
    ref_c, ref_f = 'CommandLineEventConsumer.Name="A"', '__EventFilter.Name="A"'
    load(con, "wmi_activity", [
        wmi("late", 0.5, "21", operation="Deleted", consumer=ref_c, filter=ref_f),
        wmi("early", 0, "21", operation="Created", consumer=ref_c, filter=ref_f),
    ])
    (s,) = subscriptions(con)
    assert [e["uid"] for e in s["events"]] == ["early", "late"]
    assert s["created"] == "2019-05-11T17:57:00.000000Z" and s["state"] == "deleted"
    assert s["deleted"] == "2019-05-11T17:57:00.500000Z"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('instance of X{}=";\\,\n\t aN.:@-'), max_size=200))
def test_parsers_never_raise_on_hostile_text(text):
    for inst in parse_instances(text):
        assert isinstance(inst["__class"], str)
    assert isinstance(parse_binding_cause(text), dict)
    assert set(parse_ref(text)) == {"namespace", "class", "name"}
