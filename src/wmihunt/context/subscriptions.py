"""Subscription triples: filter + consumer + binding as one object per host.

Sources on the same host (names compare case-insensitively):

- Sysmon 19 (filter: name, EventNamespace, query), 20 (consumer: name, type, payload),
  21 (binding: ``[\\\\.\\ns:]CommandLineEventConsumer.Name="X"`` and
  ``[\\\\.\\ns:]__EventFilter.Name="Y"`` references; the names are parsed out).
- WMI-Activity 5861 (binding: ESS = filter name, CONSUMER = ``Class="X"``, and
  PossibleCause = both instances as MOF text: query, namespace, payload, creator SID).
- WMI-Activity 5859 (a permanent filter's query became active): attached to the
  subscription whose filter query is the same text.

A binding keys the object (host, filter name, consumer name). A filter or consumer that
no binding names becomes an object of its own (``binding_seen`` false), so a lone Sysmon
20 (detection 1) still shows its payload. Every event is listed with its operation, so a
subscription created then deleted shows both times.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import duckdb

from ._sql import rows
from .mof import parse_binding_cause

_EVENT_IDS = ("19", "20", "21", "5859", "5861")
_REF = re.compile(
    r'^(?:(?P<ns>.*?):)?(?P<cls>[A-Za-z_]\w*)(?:\.Name)?\s*=\s*"(?P<name>.*)"\s*$', re.S
)
#: Sysmon 20 ``Type`` -> consumer class.
_TYPE_CLASS = {
    "command line": "CommandLineEventConsumer",
    "script": "ActiveScriptEventConsumer",
}

_SQL = """
SELECT uid, time, dest, "user", user_id, data_source, event_id, kind, operation, name,
       namespace, query, consumer_type, destination, consumer, "filter", possible_cause,
       message, client_process_id
FROM wmi_activity
WHERE event_id IN {ids} {where}
ORDER BY time NULLS LAST, uid
"""


def parse_ref(value: str | None) -> dict[str, str | None]:
    """Split a binding reference into namespace, class and name.

    ``\\\\.\\ROOT\\subscription:CommandLineEventConsumer.Name="X"`` ->
    ``{"namespace": "\\\\.\\ROOT\\subscription", "class": "CommandLineEventConsumer",
    "name": "X"}``; a bare name (5861 ESS) is returned as the name.
    """
    if value is None:
        return {"namespace": None, "class": None, "name": None}
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    text = text.replace('\\"', '"')
    match = _REF.match(text)
    if match is None:
        return {"namespace": None, "class": None, "name": text or None}
    name = match.group("name").replace('\\"', '"')
    return {"namespace": match.group("ns") or None, "class": match.group("cls"), "name": name}


def _key(name: str | None) -> str:
    return (name or "").strip().lower()


def _norm_query(query: str | None) -> str:
    return " ".join((query or "").split()).lower()


class _Sub:
    """One subscription being assembled."""

    def __init__(self, dest: str | None, filter_name: str | None, consumer_name: str | None):
        self.dest = dest
        self.filter_name = filter_name
        self.consumer_name = consumer_name
        self.fields: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.binding_seen = False
        self.sources: set[str] = set()

    def set(self, key: str, value: Any) -> None:
        if value not in (None, "") and self.fields.get(key) in (None, ""):
            self.fields[key] = value

    def add(self, row: dict[str, Any], role: str) -> None:
        self.sources.add(row.get("data_source") or "?")
        self.events.append({
            "uid": row["uid"], "time": row["time"], "event_id": row["event_id"],
            "role": role, "operation": row.get("operation"), "user": row.get("user"),
        })

    def result(self) -> dict[str, Any]:
        events = sorted(self.events, key=lambda e: (e["time"] or "", e["uid"]))
        ops = [(e["operation"] or "").lower() for e in events]
        created = [e["time"] for e in events if (e["operation"] or "").lower() == "created"]
        modified = [e["time"] for e in events if (e["operation"] or "").lower() == "modified"]
        deleted = [e["time"] for e in events if (e["operation"] or "").lower() == "deleted"]
        creator = next(
            (e["user"] for e in events if (e["operation"] or "").lower() in ("created", "modified")
             and e["user"]),
            None,
        )
        last_op = next((o for o in reversed(ops) if o), "")
        names = {n for n in (self.filter_name, self.consumer_name) if n}
        f = self.fields
        return {
            "dest": self.dest,
            "name": " / ".join(sorted(names)) if len(names) > 1 else next(iter(names), None),
            "filter_name": self.filter_name,
            "consumer_name": self.consumer_name,
            "namespace": f.get("namespace"),
            "event_namespace": f.get("event_namespace"),
            "query": f.get("query"),
            "consumer_class": f.get("consumer_class"),
            "consumer_type": f.get("consumer_type"),
            "payload": f.get("payload"),
            "scripting_engine": f.get("scripting_engine"),
            "creator": creator,
            "creator_sid": f.get("creator_sid"),
            "created": created[0] if created else None,
            "modified": modified,
            "deleted": deleted[-1] if deleted else None,
            "state": "deleted" if last_op == "deleted" else "present",
            "first_seen": events[0]["time"] if events else None,
            "last_seen": events[-1]["time"] if events else None,
            "binding_seen": self.binding_seen,
            "complete": bool(self.binding_seen and f.get("query") and f.get("payload")),
            "activations": f.get("activations", []),
            "sources": sorted(self.sources),
            "events": events,
        }


def _binding_names(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(filter ref, consumer ref, MOF fields) of a Sysmon 21 or 5861 row."""
    flt = parse_ref(row.get("filter"))
    con = parse_ref(row.get("consumer"))
    mof: dict[str, Any] = {}
    if row["event_id"] == "5861":
        cause = row.get("possible_cause")
        if not cause and row.get("message"):
            msg = row["message"]
            at = msg.find("PossibleCause")
            cause = msg[at:] if at >= 0 else None
        mof = parse_binding_cause(cause)
        flt["name"] = flt["name"] or mof.get("filter_name")
        con["name"] = con["name"] or mof.get("consumer_name")
        con["class"] = con["class"] or mof.get("consumer_class")
        flt["namespace"] = row.get("namespace")
    return flt, con, mof


def subscriptions(
    con: duckdb.DuckDBPyConnection, dest: str | None = None
) -> list[dict[str, Any]]:
    """Every subscription seen (on ``dest`` only, when given), oldest first."""
    where, params = "", []
    if dest is not None:
        where, params = "AND lower(dest) = lower(?)", [dest]
    data = rows(con, _SQL.format(ids=_EVENT_IDS, where=where), params)
    subs: dict[tuple[str, str, str], _Sub] = {}

    def sub_for(host: str | None, fname: str | None, cname: str | None) -> _Sub:
        key = (_key(host), _key(fname), _key(cname))
        if key not in subs:
            subs[key] = _Sub(host, fname, cname)
        return subs[key]

    # 1. bindings define the triples
    for row in data:
        if row["event_id"] not in ("21", "5861"):
            continue
        flt, cref, mof = _binding_names(row)
        sub = sub_for(row["dest"], flt["name"], cref["name"])
        sub.binding_seen = True
        sub.add(row, "binding")
        sub.set("namespace", cref["namespace"] or flt["namespace"])
        sub.set("consumer_class", cref["class"])
        sub.set("query", mof.get("query"))
        sub.set("event_namespace", mof.get("event_namespace"))
        sub.set("payload", mof.get("payload"))
        sub.set("scripting_engine", mof.get("scripting_engine"))
        sub.set("creator_sid", mof.get("creator_sid"))

    by_filter: dict[tuple[str, str], list[_Sub]] = {}
    by_consumer: dict[tuple[str, str], list[_Sub]] = {}
    for (host, fkey, ckey), sub in subs.items():
        by_filter.setdefault((host, fkey), []).append(sub)
        by_consumer.setdefault((host, ckey), []).append(sub)

    # 2. filters and consumers join their bindings by name, or stand alone
    for row in data:
        host = _key(row["dest"])
        if row["event_id"] == "19":
            targets = by_filter.get((host, _key(row["name"]))) or [
                sub_for(row["dest"], row["name"], None)
            ]
            for sub in targets:
                sub.add(row, "filter")
                sub.set("query", row.get("query"))
                sub.set("event_namespace", row.get("namespace"))
        elif row["event_id"] == "20":
            targets = by_consumer.get((host, _key(row["name"]))) or [
                sub_for(row["dest"], None, row["name"])
            ]
            ctype = row.get("consumer_type")
            for sub in targets:
                sub.add(row, "consumer")
                sub.set("consumer_type", ctype)
                sub.set("consumer_class", _TYPE_CLASS.get((ctype or "").strip().lower()))
                sub.set("payload", row.get("destination"))

    # 3. 5859 activations attach by query text
    for row in data:
        if row["event_id"] != "5859" or not row.get("query"):
            continue
        wanted = _norm_query(row["query"])
        for (host, _f, _c), sub in subs.items():
            if host == _key(row["dest"]) and _norm_query(sub.fields.get("query")) == wanted:
                sub.fields.setdefault("activations", []).append(
                    {"uid": row["uid"], "time": row["time"], "namespace": row.get("namespace")}
                )
    out = [s.result() for s in subs.values() if s.events]
    out.sort(key=lambda s: (s["first_seen"] or "", s["dest"] or "", s["name"] or ""))
    return out


def subscription_for_event(
    con: duckdb.DuckDBPyConnection,
    uid: str,
    *,
    of_host: Callable[[str | None], list[dict[str, Any]]] | None = None,
) -> dict[str, Any] | None:
    """The subscription an event (Sysmon 19/20/21, 5859/5861) belongs to, if any.

    ``of_host(dest)``: the host's ``subscriptions`` when the caller keeps them (a report
    asks for many events of few hosts); the answer is then one of its objects."""
    host = con.execute("SELECT dest FROM wmi_activity WHERE uid = ? LIMIT 1", [uid]).fetchone()
    if host is None:
        return None
    for sub in (of_host or (lambda dest: subscriptions(con, dest)))(host[0]):
        if any(e["uid"] == uid for e in sub["events"]) or any(
            a["uid"] == uid for a in sub["activations"]
        ):
            return sub
    return None
