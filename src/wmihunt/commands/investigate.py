"""``wmihunt investigate --db FILE (--finding ID | --host NAME | --user NAME)``.

Prints the context of one finding (process tree, remote origin, subscription, script,
host activity, risk), or a host's or a user's case, from a case database made by
``wmihunt scan --db FILE``. ``--json`` prints the same data as JSON. Every event field is
escaped (``report.safe_text``): an attacker's ANSI sequence or rich markup shows as text.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
from rich import box
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from ..report.safe_text import for_rich

EXIT_OK = 0
EXIT_ERROR = 2
SCRIPT_LIMIT = 4000
CELL_LIMIT = 160


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "investigate",
        help="show the context of a finding, a host or a user from a case database",
        description="Show what an analyst needs to judge a finding: the process tree, the "
        "remote origin (network logon, wmic /node:, explicit credentials), the WMI "
        "subscription, the reassembled script, the host's WMI activity around it, and risk.",
    )
    parser.add_argument("--db", required=True, metavar="FILE", help="case database (DuckDB)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--finding", metavar="ID", help="a finding id (finding_id)")
    what.add_argument("--host", metavar="NAME", help="a host name (dest)")
    what.add_argument("--user", metavar="NAME", help="an account (DOMAIN\\name or name)")
    parser.add_argument("--json", action="store_true", help="print the context as JSON")
    parser.add_argument(
        "--window", type=float, default=60.0, metavar="MINUTES",
        help="host activity shown around a finding: +/- this many minutes (default 60)",
    )
    parser.add_argument(
        "--threshold", type=float, default=None, metavar="N",
        help="risk total from which an entity is flagged (default 100)",
    )
    parser.set_defaults(run=run)
    return parser


# --- small renderers ---------------------------------------------------------------------


def _s(value: Any, limit: int | None = CELL_LIMIT) -> str:
    """Escaped cell text; ``-`` for nothing."""
    if value is None or value == "":
        return "-"
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    return for_rich(value, limit=limit)


def _time(value: Any) -> str:
    text = str(value or "")
    return for_rich(text[:19]) if text else "-"


def _kv(title: str, pairs: Iterable[tuple[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE, show_header=False)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in pairs:
        if value not in (None, "", [], {}):
            table.add_row(for_rich(key), _s(value, limit=1000))
    return table


_HEADERS = {
    "parent_process_name": "parent", "process_name": "name", "first_seen": "first",
    "last_seen": "last", "command_lines": "command lines", "object_type": "type",
    "object": "entity", "total_risk": "risk", "technique_ids": "ATT&CK",
    "delta_seconds": "delta s", "subject_user": "subject", "src_workstation": "workstation",
}
_NO_WRAP = frozenset({"time", "first_seen", "last_seen", "count", "event_id", "risk_score",
                      "total_risk", "findings", "detections", "object_type", "logon_type"})


def _dur(seconds: Any) -> str | None:
    """``38906.4`` -> ``38906.4 s (10.8 h)``."""
    if not isinstance(seconds, int | float):
        return None
    text = f"{seconds:g} s"
    if abs(seconds) >= 3600:
        text += f" ({seconds / 3600:.1f} h)"
    elif abs(seconds) >= 60:
        text += f" ({seconds / 60:.1f} min)"
    return text


def _rows(title: str, data: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for col in columns:
        table.add_column(for_rich(_HEADERS.get(col, col)), overflow="fold",
                         no_wrap=col in _NO_WRAP)
    for row in data:
        cells = [_time(row.get(c)) if c in ("time", "first_seen", "last_seen") else _s(row.get(c))
                 for c in columns]
        table.add_row(*cells)
    return table


def _label(node: Mapping[str, Any], *, me: bool = False) -> str:
    name = _s(node.get("process_name"), limit=80)
    pid = node.get("process_id")
    parts = [f"[bold]{name}[/bold]" if me else name]
    if pid is not None:
        parts.append(f"({pid})")
    if node.get("process"):
        parts.append(f"[dim]{_s(node['process'], limit=200)}[/dim]")
    if node.get("user"):
        parts.append(f"[cyan]{_s(node['user'], limit=60)}[/cyan]")
    if node.get("time"):
        parts.append(_time(node["time"]))
    if node.get("logged") is False:
        parts.append("[yellow](start not logged)[/yellow]")
    if node.get("parent_inferred"):
        parts.append("[yellow](parent inferred)[/yellow]")
    return " ".join(parts)


def render_tree(tree: Mapping[str, Any]) -> Tree:
    """Ancestors root first, the process in bold, its descendants below it."""
    ancestors = list(tree.get("ancestors") or [])
    root = Tree(_label(ancestors[0]) if ancestors else _label(tree["process"], me=True))
    branch = root
    for node in ancestors[1:]:
        branch = branch.add(_label(node))
    if ancestors:
        branch = branch.add(_label(tree["process"], me=True))

    def add(parent: Tree, children: Sequence[Mapping[str, Any]]) -> None:
        for child in children:
            add(parent.add(_label(child)), child.get("children") or [])

    add(branch, tree.get("descendants") or [])
    if tree.get("descendants_truncated"):
        branch.add("[yellow]... more descendants not shown[/yellow]")
    return root


def _origin(console: Console, origin: Mapping[str, Any]) -> None:
    target = origin.get("target")
    if target:
        logon = target.get("logon") or {}
        console.print(_kv("Remote origin (target side)", [
            ("WMI child", (target.get("wmi_child") or {}).get("process_name")),
            ("method", target.get("method")),
            ("confidence", target.get("confidence")),
            ("account", logon.get("account")),
            ("source IP", logon.get("src_ip")),
            ("workstation", logon.get("src_workstation")),
            ("logon id", logon.get("target_logon_id")),
            ("logon time", _time(logon.get("time")) if logon else None),
            ("seconds before", _dur(logon.get("seconds_before"))),
            ("note", target.get("reason")),
        ]))
        best = (target.get("source") or {}).get("best")
        if best:
            console.print(_kv("Source end", [
                ("host", best.get("source_dest")), ("seen as", best.get("kind")),
                ("time", _time(best.get("time"))), ("command", best.get("process")),
                ("account", best.get("account")), ("target server", best.get("target_server")),
                ("delta", _dur(best.get("delta_seconds"))),
                ("within window", "yes" if best.get("within_window") else
                 "no: clock skew between the hosts, or another session"),
            ]))
    source = origin.get("source")
    if source:
        console.print(_kv("Remote origin (source side)", [
            ("nodes", source.get("nodes")), ("node files", source.get("node_files")),
            ("loopback only", source.get("loopback")),
        ]))
        creds = source.get("explicit_credentials") or []
        if creds:
            console.print(_rows("Explicit credentials (4648)", creds,
                                ("time", "subject_user", "account", "target_server",
                                 "target_info")))
        for tgt in source.get("targets") or []:
            console.print(_rows(f"On target {_s(tgt.get('dest'))}: WmiPrvSE children",
                                tgt.get("wmiprvse_children") or [],
                                ("time", "process_name", "process", "user", "delta_seconds")))


def _subscription(console: Console, sub: Mapping[str, Any]) -> None:
    if sub.get("kind") == "temporary":
        console.print(_kv("Temporary subscription (5860)", [
            (k, sub.get(k)) for k in ("namespace", "query", "user", "client_process_id",
                                      "client_machine")
        ]))
        return
    console.print(_kv("WMI subscription", [
        ("name", sub.get("name")), ("filter", sub.get("filter_name")),
        ("consumer", sub.get("consumer_name")), ("namespace", sub.get("namespace")),
        ("event namespace", sub.get("event_namespace")), ("query", sub.get("query")),
        ("consumer class", sub.get("consumer_class") or sub.get("consumer_type")),
        ("payload", sub.get("payload")), ("engine", sub.get("scripting_engine")),
        ("creator", sub.get("creator")), ("creator SID", sub.get("creator_sid")),
        ("created", _time(sub.get("created")) if sub.get("created") else None),
        ("deleted", _time(sub.get("deleted")) if sub.get("deleted") else None),
        ("state", sub.get("state")), ("relation", sub.get("relation")),
    ]))
    console.print(_rows("Subscription events", sub.get("events") or [],
                        ("time", "event_id", "role", "operation", "user")))


def _script(console: Console, script: Mapping[str, Any]) -> None:
    console.print(_kv("Script block", [
        ("script block id", script.get("script_block_id")), ("path", script.get("path")),
        ("parts", f"{len(script.get('parts') or [])} of {script.get('message_total')}"),
        ("missing parts", script.get("missing")), ("length", script.get("length")),
    ]))
    text = script.get("text") or ""
    console.print(for_rich(text, limit=SCRIPT_LIMIT, keep_newlines=True), soft_wrap=True)
    if len(text) > SCRIPT_LIMIT or script.get("truncated"):
        console.print("[yellow]... script truncated; --json has the whole text[/yellow]")


def _activity(console: Console, act: Mapping[str, Any]) -> None:
    wmi = act.get("wmi") or {}
    if wmi.get("counts"):
        counts = ", ".join(f"{k}: {v}" for k, v in wmi["counts"].items())
        console.print(f"[bold]WMI events on the host in the window[/bold] {for_rich(counts)}")
        console.print(_rows("", wmi.get("events") or [],
                            ("time", "event_id", "operation", "name", "query", "destination")))
    for key, title in (("wmiprvse_children", "WmiPrvSE.exe children in the window"),
                       ("wmic_runs", "wmic runs in the window")):
        if act.get(key):
            console.print(_rows(title, act[key], ("time", "process_name", "process", "user")))
    for key, title in (("process_info", "Process info"),
                       ("parent_process_info", "Parent process info")):
        info = act.get(key)
        if info and info.get("count"):
            other = "parent_process_name" if key == "process_info" else "process_name"
            name = info.get("process_name") or info.get("parent_process_name")
            console.print(_rows(
                f"{title}: {_s(name)} on {_s(info.get('dest'))} ({info['count']} starts, "
                f"{_time(info.get('first_seen'))} .. {_time(info.get('last_seen'))})",
                info.get("by_user") or [],
                ("user", other, "count", "first_seen", "last_seen", "command_lines")))
    if act.get("earlier_findings"):
        console.print(_rows("Earlier findings on the host", act["earlier_findings"],
                            ("time", "detection", "risk_score", "user", "finding_id")))


def _risk(console: Console, risk: Iterable[Mapping[str, Any] | None], title: str) -> None:
    rows = [r for r in risk if r]
    if rows:
        console.print(_rows(title, [
            {**r, "flagged": "FLAGGED" if r.get("flagged") else ""} for r in rows
        ], ("object_type", "object", "total_risk", "findings", "detections", "technique_ids",
            "flagged")))


# --- views -------------------------------------------------------------------------------


def render_finding(console: Console, finding: Mapping[str, Any], ctx: Mapping[str, Any]) -> None:
    console.print(_kv(f"Finding {_s(finding.get('finding_id'))}", [
        ("detection", finding.get("detection")), ("time", _time(finding.get("time"))),
        ("host", finding.get("dest")), ("user", finding.get("user")),
        ("risk score", finding.get("risk_score")), ("ATT&CK", finding.get("mitre")),
        ("message", finding.get("message")),
        ("parent inferred", "yes" if finding.get("parent_inferred") else None),
    ]))
    for key in ("tree", "origin", "subscription", "script", "activity", "risk"):
        value = ctx.get(key)
        if not value:
            continue
        if isinstance(value, Mapping) and "error" in value:
            console.print(f"[red]{key}: {for_rich(value['error'])}[/red]")
        elif key == "tree":
            console.print("[bold]Process tree[/bold]")
            console.print(render_tree(value))
        elif key == "origin":
            _origin(console, value)
        elif key == "subscription":
            _subscription(console, value)
        elif key == "script":
            _script(console, value)
        elif key == "activity":
            _activity(console, value)
        elif key == "risk":
            _risk(console, (value.get("dest"), value.get("user")), "Risk")


def render_host(console: Console, host: Mapping[str, Any]) -> None:
    data = host.get("data") or {}
    console.print(_rows(f"Host {_s(host.get('host'))}", [
        {"table": t, **v} for t, v in data.items() if isinstance(v, Mapping)
    ], ("table", "rows", "first_seen", "last_seen")))
    _risk(console, [host.get("risk")], "Risk")
    if host.get("findings"):
        console.print(_rows("Findings", host["findings"],
                            ("time", "detection", "risk_score", "user", "finding_id")))
    for sub in host.get("subscriptions") or []:
        _subscription(console, sub)
    if host.get("wmi_events"):
        console.print(_rows("WMI activity", host["wmi_events"],
                            ("event_id", "kind", "count", "first_seen", "last_seen")))
    for key, title in (("wmiprvse_children", "WmiPrvSE.exe children"), ("wmic_runs", "wmic runs")):
        if host.get(key):
            console.print(_rows(title, host[key], ("time", "process_name", "process", "user")))


def render_user(console: Console, user: Mapping[str, Any]) -> None:
    console.print(f"[bold]User {_s(user.get('user'))}[/bold]")
    _risk(console, user.get("risk") or [], "Risk")
    for key, title, cols in (
        ("logons", "Logons (4624)", ("dest", "logon_type", "src_ip", "src_workstation", "count",
                                     "first_seen", "last_seen")),
        ("explicit_credentials", "Explicit credentials (4648)",
         ("dest", "subject_user", "target_server", "process_name", "count", "first_seen")),
        ("hosts", "Hosts with processes of this user",
         ("dest", "processes", "wmi_children", "first_seen", "last_seen")),
        ("findings", "Findings", ("time", "dest", "detection", "risk_score", "finding_id")),
    ):
        if user.get(key):
            console.print(_rows(title, user[key], cols))


# --- entry -------------------------------------------------------------------------------


def _open(db: Path) -> duckdb.DuckDBPyConnection | None:
    from ..store import connect

    if not db.is_file():
        print(f"wmihunt investigate: no such case database: {db}", file=sys.stderr)
        return None
    try:
        return connect(db, read_only=True)
    except duckdb.Error as exc:
        print(f"wmihunt investigate: cannot open {db}: {exc}", file=sys.stderr)
        return None


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    from .. import context
    from ..context import findings as fnd

    con = _open(Path(args.db))
    if con is None:
        return EXIT_ERROR
    console = console or Console(highlight=False)
    try:
        if args.finding is not None:
            finding = fnd.get(con, args.finding)
            if finding is None:
                print(f"wmihunt investigate: no finding with id {args.finding!r}",
                      file=sys.stderr)
                return EXIT_ERROR
            ctx = context.for_finding(con, args.finding, threshold=args.threshold,
                                      window=timedelta(minutes=args.window))
            if args.json:
                from ..context._sql import jsonable

                out = {"finding": jsonable(finding), "context": ctx}
                sys.stdout.write(json.dumps(out, indent=2) + "\n")
            else:
                render_finding(console, finding, ctx)
        elif args.host is not None:
            host = context.for_host(con, args.host, threshold=args.threshold)
            if args.json:
                sys.stdout.write(json.dumps(host, indent=2) + "\n")
            else:
                render_host(console, host)
        else:
            user = context.for_user(con, args.user, threshold=args.threshold)
            if args.json:
                sys.stdout.write(json.dumps(user, indent=2) + "\n")
            else:
                render_user(console, user)
    except duckdb.Error as exc:
        print(f"wmihunt investigate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        con.close()
    return EXIT_OK
