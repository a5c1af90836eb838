"""Remote origin: who asked for a WMI-spawned process, from where — and the other end.

**Target side** (a process whose parent, or an ancestor's parent, is WmiPrvSE.exe): the
network logon (Security 4624, logon type 3) on the same host that carried the request,
found by, in order of confidence:

1. ``logon_id`` (high): a 4624 whose ``TargetLogonId`` equals the process's logon id.
   Sysmon 1 ``LogonId`` and Windows 10+ 4688 ``TargetLogonId`` carry the caller's logon
   (verified on the corpus: the 4688 of notepad.exe under WmiPrvSE.exe has
   ``SubjectLogonId`` 0x3e4 — NETWORK SERVICE, WmiPrvSE's own — and ``TargetLogonId`` =
   the 4624 type 3 of Administrator from 192.168.1.219). The 4688 subject logon id is
   tried too, except the well-known service ids (0x3e7, 0x3e4, 0x3e5).
2. ``same_user_preceding`` (medium): the nearest *earlier* type-3 logon of the process's
   account on that host within ``user_lookback``.
3. ``host_preceding`` (low): only for a process logged under a service identity (old 4688
   shape: no TargetLogonId; the child of WmiPrvSE.exe shows NETWORK SERVICE): the nearest
   earlier type-3 logon of a person (not a machine account, not anonymous) on that host
   within ``host_lookback``.

A logon logged after the process, or on another host, is never used.

**Source side** (a wmic.exe process): the targets its ``/node:`` names (quoted values,
lists, ``@file``), and the 4648 (explicit credentials) WMIC.exe logged for them.

**Both ends**, when both hosts' logs are in the case: a target-side process is linked to
source events on other hosts that name its host (``wmic /node:`` or a 4648 target server),
and a source-side wmic to WmiPrvSE children and type-3 logons on the hosts it names;
candidates are ranked by workstation-name agreement and time distance, and reported with
``delta_seconds`` and ``within_window`` (hosts' clocks may disagree: see docs/context.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import duckdb

from . import logons
from ._memo import Memo, cached
from ._sql import SERVICE_LOGON_IDS, SERVICE_SIDS, capped, rows, short_host, sql_lower
from .activity import wmiprvse_children
from .tree import NODE_COLUMNS, ancestors, process_node

WMI_HOST = "wmiprvse.exe"
WMIC = "wmic.exe"
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", ".", "[::1]"})

DEFAULT_USER_LOOKBACK = timedelta(hours=1)
DEFAULT_HOST_LOOKBACK = timedelta(minutes=5)
DEFAULT_LINK_WINDOW = timedelta(minutes=10)
#: How long after a wmic start its 4648 may come.
CREDENTIALS_WINDOW = timedelta(minutes=30)


# --- wmic /node: -------------------------------------------------------------------------


def parse_wmic_nodes(cmdline: str | None) -> dict[str, list[str]]:
    """Targets named by ``/node:`` (or ``-node:``) switches of a wmic command line.

    ``/node:"a b",c /NODE:@hosts.txt`` -> ``{"targets": ["a b", "c"], "files":
    ["hosts.txt"]}``. Values may be quoted; a comma (optionally followed by spaces)
    continues the list; ``@file`` names a file of targets (its content is not in the logs).
    """
    out: dict[str, list[str]] = {"targets": [], "files": []}
    if not cmdline:
        return out
    text = cmdline
    low = text.lower()
    n = len(text)
    pos = 0
    while True:
        at = low.find("node", pos)
        if at < 0:
            break
        pos = at + 4
        before = low[at - 1] if at > 0 else ""
        prefix = low[at - 2] if at > 1 else ""
        if before not in "/-" or (prefix and prefix not in ' \t"'):
            continue
        i = pos
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != ":":
            continue
        i += 1
        while i < n:
            if text[i] == '"':
                end = text.find('"', i + 1)
                end = n if end < 0 else end
                value, i = text[i + 1 : end], end + 1
            else:
                end = i
                while end < n and text[end] not in ' \t,"':
                    end += 1
                value, i = text[i:end], end
            value = value.strip()
            if value.startswith("@"):
                if value[1:]:
                    out["files"].append(value[1:])
            elif value:
                out["targets"].append(value)
            if i < n and text[i] == ",":
                i += 1
                while i < n and text[i] in " \t":
                    i += 1
                continue
            break
        pos = max(pos, i)
    return out


def is_loopback(target: str) -> bool:
    return target.strip().lower() in LOOPBACK


# --- target side -------------------------------------------------------------------------


def _basename(path: str | None) -> str:
    return (path or "").replace("/", "\\").rsplit("\\", 1)[-1].lower()


def _logon_int(value: Any) -> int | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    try:
        return int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        return None


def _is_service_identity(proc: dict[str, Any]) -> bool:
    user = (proc.get("user") or "").lower()
    if proc.get("user_id") in SERVICE_SIDS or user.endswith("$"):
        return True
    if user.split("\\")[-1] in ("system", "network service", "local service"):
        return True
    return _logon_int(proc.get("logon_id")) in SERVICE_LOGON_IDS and not proc.get(
        "target_logon_id"
    )


def wmi_anchor(con: duckdb.DuckDBPyConnection, uid: str) -> dict[str, Any] | None:
    """The process itself or its nearest ancestor whose parent is WmiPrvSE.exe."""
    node = process_node(con, uid)
    if node is None:
        return None
    return _anchor(node, lambda: ancestors(con, uid))


def _anchor(
    node: dict[str, Any], nearest_first: Callable[[], list[dict[str, Any]]]
) -> dict[str, Any] | None:
    """``wmi_anchor`` of a process node, given its logged ancestors (read only if needed)."""
    if _wmi_child(node):
        return node
    return next((a for a in nearest_first() if _wmi_child(a)), None)


def _wmi_child(proc: dict[str, Any]) -> bool:
    return _basename(proc.get("parent_process_name") or proc.get("parent_process_path")) == WMI_HOST


def _logon(row: dict[str, Any] | None, proc_time: str | None) -> dict[str, Any] | None:
    if row is None:
        return None
    if proc_time and row.get("time"):
        delta = datetime.fromisoformat(proc_time.rstrip("Z")) - datetime.fromisoformat(
            row["time"].rstrip("Z")
        )
        row["seconds_before"] = delta.total_seconds()
    row["account"] = row.get("target_user")
    return row


def _logon_ids(proc: dict[str, Any]) -> list[int]:
    ids = []
    for key in ("target_logon_id", "logon_id"):
        value = _logon_int(proc.get(key))
        if value is not None and value not in SERVICE_LOGON_IDS and value not in ids:
            ids.append(value)
    return ids


def network_logon(
    con: duckdb.DuckDBPyConnection,
    proc: dict[str, Any],
    *,
    user_lookback: timedelta = DEFAULT_USER_LOOKBACK,
    host_lookback: timedelta = DEFAULT_HOST_LOOKBACK,
    memo: Memo | None = None,
) -> dict[str, Any]:
    """The 4624 type-3 logon behind ``proc`` (a process node), with method and confidence.

    ``memo``: see ``context.for_finding`` (a host's type-3 logons are read once and
    searched here: ``context.logons``)."""
    time = proc.get("time")
    if not time or not proc.get("dest"):
        return {"method": None, "confidence": None, "logon": None,
                "reason": "the process has no time or host"}
    when = datetime.fromisoformat(time.rstrip("Z"))
    pos = proc.get("ev_line") if proc.get("ev_line") is not None else proc.get("ev_record_id")
    search = logons.network_search(con, proc["dest"], memo)
    earlier = logons.Earlier(when, proc.get("ev_file"), pos)
    ids = _logon_ids(proc)
    if ids:
        found = search(earlier, logon_ids=ids)
        if found:
            return {"method": "logon_id", "confidence": "high", "logon": _logon(found, time)}
    account = (proc.get("target_user") or proc.get("user") or "").split("\\")[-1].lower()
    if account and not _is_service_identity(proc):
        found = search(earlier, since=when - user_lookback, account=account)
        if found:
            return {"method": "same_user_preceding", "confidence": "medium",
                    "logon": _logon(found, time)}
    elif _is_service_identity(proc):
        found = search(earlier, since=when - host_lookback, person=True)
        if found:
            return {"method": "host_preceding", "confidence": "low",
                    "logon": _logon(found, time)}
    ids_text = ", ".join(hex(i) for i in ids) or "none usable"
    return {
        "method": None, "confidence": None, "logon": None,
        "reason": f"no earlier 4624 logon type 3 on {proc['dest']} matches "
                  f"(logon ids: {ids_text}); is the host's Security log in the case?",
    }


# --- source side -------------------------------------------------------------------------


def explicit_credentials(
    con: duckdb.DuckDBPyConnection, proc: dict[str, Any], *,
    window: timedelta = CREDENTIALS_WINDOW, memo: Memo | None = None,
) -> list[dict[str, Any]]:
    """4648 events WMIC.exe logged on the wmic's host after it started (same pid first)."""
    if not proc.get("time") or not proc.get("dest"):
        return []
    when = datetime.fromisoformat(proc["time"].rstrip("Z"))
    found = logons.wmic_credentials(con, proc["dest"], when, when + window,
                                    proc.get("process_id"), 20, memo)
    for row in found:
        row["account"] = row.get("target_user")
        row["same_process"] = row.get("process_id") == proc.get("process_id")
    return found


def _hosts_named(
    con: duckdb.DuckDBPyConnection, target: str, memo: Memo | None = None
) -> list[str]:
    """Hosts in the case whose name (or short name) is ``target``."""
    want = short_host(target)
    names = cached(memo, ("hosts",), lambda: con.execute(
        "SELECT DISTINCT dest FROM process_start WHERE dest IS NOT NULL "
        "UNION SELECT DISTINCT dest FROM logon WHERE dest IS NOT NULL"
    ).fetchall())
    return [n for (n,) in names if short_host(n) == want]


def _delta(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    return (datetime.fromisoformat(a.rstrip("Z")) - datetime.fromisoformat(b.rstrip("Z"))
            ).total_seconds()


def targets_of_source(
    con: duckdb.DuckDBPyConnection, proc: dict[str, Any], *,
    window: timedelta = DEFAULT_LINK_WINDOW, memo: Memo | None = None,
    credentials: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """For a wmic on host A naming B: WmiPrvSE children and type-3 logons from A on B.

    ``credentials``: the wmic's ``explicit_credentials`` when the caller has them."""
    nodes = parse_wmic_nodes(proc.get("process"))["targets"]
    if credentials is None:
        credentials = explicit_credentials(con, proc, memo=memo)
    for cred in credentials:
        if cred.get("target_server"):
            nodes.append(cred["target_server"])
    src_short = short_host(proc.get("dest"))
    # without a start time (unreadable in the log) there is no window to look in
    when = datetime.fromisoformat(proc["time"].rstrip("Z")) if proc.get("time") else None
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for target in nodes:
        hosts = [proc["dest"]] if is_loopback(target) else _hosts_named(con, target, memo)
        for host in hosts:
            if host.lower() in seen:
                continue
            seen.add(host.lower())
            children: list[dict[str, Any]] = []
            found: list[dict[str, Any]] = []
            if when is not None:
                lo, hi = when - window, when + window
                children = wmiprvse_children(con, host, lo, hi, 20, memo, columns=NODE_COLUMNS)
                found = [lg for lg in logons.type3_between(con, host, lo, hi, 200, memo)
                         if short_host(lg.get("src_workstation")) == src_short]
            for item in (*children, *found):
                item["delta_seconds"] = _delta(item.get("time"), proc["time"])
            out.append({
                "target": target, "dest": host, "local": host.lower() == proc["dest"].lower(),
                "wmiprvse_children": children, "logons_from_source": found[:20],
            })
    return out


def sources_of_target(
    con: duckdb.DuckDBPyConnection,
    proc: dict[str, Any],
    logon: dict[str, Any] | None,
    *,
    window: timedelta = DEFAULT_LINK_WINDOW,
    memo: Memo | None = None,
) -> dict[str, Any]:
    """For a WmiPrvSE child on host B: wmic /node:B runs and 4648s naming B on other hosts.

    Returns ``{"best": candidate or None, "candidates": [...]}``; each candidate has
    ``delta_seconds`` (target time minus source time), ``within_window`` and
    ``workstation_match`` (the source host's name is the logon's WorkstationName).
    """
    dest = proc.get("dest") or ""
    workstation = short_host((logon or {}).get("src_workstation"))
    found = cached(memo, ("sources", dest), lambda: _source_events(con, dest, memo))
    cands = [dict(c) for c in found]
    limit = window.total_seconds()
    for c in cands:
        c["delta_seconds"] = _delta(proc.get("time"), c["time"])
        c["within_window"] = c["delta_seconds"] is not None and abs(c["delta_seconds"]) <= limit
        c["workstation_match"] = bool(workstation) and short_host(c["source_dest"]) == workstation
    cands.sort(key=lambda c: (not c["within_window"], not c["workstation_match"],
                              abs(c["delta_seconds"] or 0.0)))
    best = cands[0] if cands and (cands[0]["within_window"] or cands[0]["workstation_match"]) \
        else None
    return {"best": best, "candidates": cands[:10]}


#: What a source candidate shows of a wmic run and of a 4648.
_WMIC_SOURCE = "p.dest, p.time, p.uid, p.process, p.\"user\""
_CRED_SOURCE = ("l.dest, l.time, l.uid, l.target_user, l.subject_user, l.target_server, "
                "l.target_info, l.process_name")
_WMIC_NODE_SQL = (
    "(lower(p.process_name) = 'wmic.exe' OR lower(p.original_file_name) = 'wmic.exe') "
    "AND contains(lower(p.process), 'node')"
)
#: The most source events (wmic /node: runs, 4648s) a report keeps to find every
#: target's sources in; above, one query per target host.
SOURCE_ROWS_CAP = 20_000


def _source_events(
    con: duckdb.DuckDBPyConnection, dest: str, memo: Memo | None = None
) -> list[dict[str, Any]]:
    """The wmic runs and 4648 events on other hosts that name ``dest``, as candidates
    without the fields that depend on the target process (each kind in time order, at
    most 5,000 of each looked at)."""
    want = short_host(dest)
    every = None if memo is None else cached(memo, ("source rows",), lambda: _source_rows(con))
    if every is None:
        wmics = rows(
            con,
            f"""SELECT {_WMIC_SOURCE} FROM process_start AS p
                WHERE {_WMIC_NODE_SQL} AND lower(p.dest) <> lower($dest)
                ORDER BY p.time, p.uid LIMIT 5000""",
            {"dest": dest},
        )
        creds = rows(
            con,
            f"""SELECT {_CRED_SOURCE} FROM logon AS l
                WHERE l.event_id = '4648' AND lower(l.dest) <> lower($dest)
                  AND (contains(lower(l.target_server), $short)
                       OR contains(lower(l.target_info), $short))
                ORDER BY l.time, l.uid LIMIT 5000""",
            {"dest": dest, "short": want or ""},
        )
    else:  # the same filters, on values DuckDB lowered
        low, short = sql_lower(con, dest), want or ""
        wmics = [r for host, r in every[0] if host is not None and host != low][:5000]
        creds = [r for host, server, info, r in every[1]
                 if host is not None and host != low
                 and ((server is not None and short in server)
                      or (info is not None and short in info))][:5000]
    cands: list[dict[str, Any]] = []
    for w in wmics:
        if any(short_host(t) == want for t in parse_wmic_nodes(w.get("process"))["targets"]):
            cands.append({"kind": "wmic", "source_dest": w["dest"], "time": w["time"],
                          "uid": w["uid"], "process": w.get("process"), "user": w.get("user")})
    for c in creds:
        info_host = (c.get("target_info") or "").split("/")[-1]
        if want in (short_host(c.get("target_server")), short_host(info_host)):
            cands.append({"kind": "explicit_credentials", "source_dest": c["dest"],
                          "time": c["time"], "uid": c["uid"], "account": c.get("target_user"),
                          "subject_user": c.get("subject_user"),
                          "target_server": c.get("target_server"),
                          "target_info": c.get("target_info"),
                          "process_name": c.get("process_name")})
    return cands


def _source_rows(con: duckdb.DuckDBPyConnection) -> tuple[list[Any], list[Any]] | None:
    """Every wmic /node: run (lowered host, row) and every 4648 (lowered host, server,
    info, row) in time order, or None above ``SOURCE_ROWS_CAP`` of either."""
    wmics = capped(con, f"SELECT lower(p.dest), {_WMIC_SOURCE} FROM process_start AS p "
                        f"WHERE {_WMIC_NODE_SQL} ORDER BY p.time, p.uid",
                   None, SOURCE_ROWS_CAP, lead=1)
    if wmics is None:
        return None
    creds = capped(con, "SELECT lower(l.dest), lower(l.target_server), lower(l.target_info), "
                        f"{_CRED_SOURCE} FROM logon AS l WHERE l.event_id = '4648' "
                        "ORDER BY l.time, l.uid",
                   None, SOURCE_ROWS_CAP, lead=3)
    return None if creds is None else (wmics, creds)


# --- entry -------------------------------------------------------------------------------


def remote_origin(
    con: duckdb.DuckDBPyConnection,
    uid: str,
    *,
    user_lookback: timedelta = DEFAULT_USER_LOOKBACK,
    host_lookback: timedelta = DEFAULT_HOST_LOOKBACK,
    link_window: timedelta = DEFAULT_LINK_WINDOW,
    tree: dict[str, Any] | None = None,
    memo: Memo | None = None,
) -> dict[str, Any] | None:
    """Origin of a process start: target side (WMI-spawned) and/or source side (wmic).

    None when the process is neither started through WMI nor a wmic naming a node.
    ``tree``: the process's ``process_tree`` (default depth) when the caller has it: its
    process and logged ancestors are the ones this would look up. ``memo``: see
    ``context.for_finding`` (the case's hosts and each host's remote sources, once).
    """
    if tree is not None:
        proc = tree["process"]
        anchor = _anchor(proc, lambda: [a for a in reversed(tree["ancestors"]) if a["logged"]])
    else:
        proc = process_node(con, uid)
        if proc is None:
            return None
        anchor = wmi_anchor(con, uid)
    out: dict[str, Any] = {}
    if anchor is not None:
        found = network_logon(con, anchor, user_lookback=user_lookback,
                              host_lookback=host_lookback, memo=memo)
        out["target"] = {
            "dest": anchor.get("dest"),
            "wmi_child": {k: anchor.get(k) for k in ("uid", "time", "process_name", "process",
                                                     "user", "target_user", "logon_id",
                                                     "target_logon_id")},
            **found,
            "source": sources_of_target(con, anchor, found.get("logon"), window=link_window,
                                        memo=memo),
        }
    is_wmic = WMIC in (_basename(proc.get("process_name")), _basename(proc.get("process_path")))
    if is_wmic:
        nodes = parse_wmic_nodes(proc.get("process"))
        creds = explicit_credentials(con, proc, memo=memo)
        if nodes["targets"] or nodes["files"] or creds:
            out["source"] = {
                "dest": proc.get("dest"),
                "nodes": nodes["targets"],
                "node_files": nodes["files"],
                "loopback": bool(nodes["targets"]) and all(is_loopback(t)
                                                           for t in nodes["targets"]),
                "explicit_credentials": creds,
                "targets": targets_of_source(con, proc, window=link_window, memo=memo,
                                             credentials=creds),
            }
    return out or None
