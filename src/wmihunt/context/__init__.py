"""Investigation context: the joins that turn a finding into a story (see docs/context.md).

``for_finding(con, finding_id)`` is the one entry the outputs use; it returns
``{"tree", "origin", "subscription", "script", "activity", "risk"}`` as JSON-ready data
(a key is None when it does not apply to the finding's kind of event). ``for_host`` and
``for_user`` answer ``wmihunt investigate --host/--user``. One module per join:
``parents`` (old 4688 parent inference, run after ingest), ``tree``, ``origin`` (its logon
searches in ``logons``), ``subscriptions``, ``scripts``, ``activity``; risk lives in
``wmihunt.risk``. A report of many findings shares one memo (``_memo``) across its calls
and ``prepare``s each page of findings (see ``for_finding``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import duckdb

from ..models import MODELS
from . import findings
from ._memo import RECENT_EVENTS, Memo, cached, copied, has_recent, memoized
from ._sql import jsonable, one, q, rows
from .activity import (
    DEFAULT_LIMIT,
    DEFAULT_WINDOW,
    earlier_findings,
    host_activity,
    host_span,
    process_info,
    user_activity,
    wmic_runs,
    wmiprvse_children,
)
from .origin import remote_origin
from .parents import infer_parents
from .scripts import detect_spanning, reassembled_scripts, script_context
from .subscriptions import subscription_for_event, subscriptions
from .tree import NODE_COLUMNS, process_tree, process_trees

__all__ = [
    "CONTEXT_KEYS",
    "DEFAULT_LIMIT",
    "detect_spanning",
    "earlier_findings",
    "for_finding",
    "for_host",
    "for_user",
    "infer_parents",
    "prepare",
    "process_tree",
    "reassembled_scripts",
    "remote_origin",
    "script_context",
    "subscriptions",
]

CONTEXT_KEYS = ("tree", "origin", "subscription", "script", "activity", "risk")
_ALL_TIME = (datetime(1601, 1, 1), datetime(9999, 1, 1))


def _safe(section: Callable[[], Any]) -> Any:
    """Run one join; a failure becomes an ``error`` entry instead of losing the others."""
    try:
        return section()
    except (duckdb.Error, ValueError, TypeError, KeyError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _event_table(
    con: duckdb.DuckDBPyConnection, table: Any, uid: Any, memo: Memo | None = None
) -> str | None:
    """The model table holding ``uid`` (the finding's own claim first)."""
    if uid is None:
        return None
    names = [table] if table in MODELS else []
    names += [m for m in MODELS if m != table]
    held = None if memo is None else cached(memo, ("finding_uids",), lambda: _finding_uids(con))
    for name in names:
        uids = held.get(name) if held is not None and isinstance(uid, str) else None
        if uids is not None:
            if uid in uids:
                return name
        elif con.execute(f"SELECT 1 FROM {name} WHERE uid = ? LIMIT 1", [uid]).fetchone():
            return name
    return None


def _finding_uids(con: duckdb.DuckDBPyConnection) -> dict[str, set[str] | None] | None:
    """The uids of the findings each model table holds (one query per table for a report,
    instead of up to one per table per finding); None when there is no findings table,
    and None for a table the case lacks (a damaged case: its query then fails as alone)."""
    cols = findings.resolve(con)
    if cols is None:
        return None
    held: dict[str, set[str] | None] = {}
    for name in MODELS:
        try:
            found = con.execute(
                f"SELECT DISTINCT t.uid FROM {name} AS t WHERE t.uid IN "
                f"(SELECT CAST({q(cols.uid)} AS VARCHAR) FROM {findings.FINDINGS_TABLE})"
            ).fetchall()
        except duckdb.CatalogException:
            held[name] = None
        else:
            held[name] = {uid for (uid,) in found}
    return held


def _temporary_subscription(con: duckdb.DuckDBPyConnection, uid: str) -> dict[str, Any] | None:
    """A 5860 temporary subscription, with the client process when its pid is logged."""
    row = one(
        con,
        "SELECT uid, time, dest, \"user\", event_id, namespace, query, client_process_id, "
        "client_machine, possible_cause FROM wmi_activity WHERE uid = ? AND event_id = '5860'",
        [uid],
    )
    if row is None:
        return None
    row["kind"] = "temporary"
    if row.get("client_process_id") is not None and row.get("time"):
        row["client_process"] = one(
            con,
            f"""SELECT {", ".join(f'"{c}"' for c in NODE_COLUMNS)} FROM process_start
                WHERE lower(dest) = lower(?) AND process_id = ? AND time <= ?
                ORDER BY time DESC, uid LIMIT 1""",
            [row["dest"], row["client_process_id"],
             datetime.fromisoformat(row["time"].rstrip("Z"))],
        )
    return row


def _subscription_for_process(
    con: duckdb.DuckDBPyConnection, proc: dict[str, Any], memo: dict[Any, Any] | None = None
) -> dict[str, Any] | None:
    """For a consumer-launched process (scrcons.exe, or a child of WmiPrvSE.exe/scrcons.exe):
    the subscription present on the host when it started, preferring one whose payload
    names the process."""
    name = (proc.get("process_name") or "").lower()
    parent = (proc.get("parent_process_name") or "").lower()
    if name != "scrcons.exe" and parent not in ("wmiprvse.exe", "scrcons.exe"):
        return None
    when = proc.get("time") or ""
    active = [
        s for s in host_subscriptions(con, proc.get("dest"), memo)
        if s["payload"] and (s["first_seen"] or "") <= when
        and not (s["deleted"] and s["deleted"] < when)
    ]
    if not active:
        return None
    cmd = (proc.get("process") or "").lower()

    def named(s: dict[str, Any]) -> bool:
        payload = (s["payload"] or "").lower()
        return bool(name) and (name in payload or (bool(payload) and payload in cmd))

    best = max(active, key=lambda s: (named(s), s["first_seen"] or ""))
    return copied(best) | {"relation": "payload names the process" if named(best)
                           else "present on the host when the process started"}


def host_subscriptions(
    con: duckdb.DuckDBPyConnection, dest: str | None, memo: dict[Any, Any] | None
) -> list[dict[str, Any]]:
    """``subscriptions(con, dest)``, once per host for a report (``memo``). Read only: the
    caller copies what it hands out."""
    return cached(memo, ("subscriptions", dest), lambda: subscriptions(con, dest))


def _event_context(
    con: duckdb.DuckDBPyConnection, claimed: Any, uid: Any, memo: dict[Any, Any] | None
) -> dict[str, Any]:
    """The parts of a finding's context that depend only on its event: the table holding
    it, the tree, origin and subscription of a process, the subscription of a WMI event,
    the script of a script block. Several detections can fire on one event."""
    table = _event_table(con, claimed, uid, memo)
    out: dict[str, Any] = {"table": table, "tree": None, "origin": None,
                           "subscription": None, "script": None}
    if table == "process_start":
        tree = out["tree"] = _safe(lambda: _tree(con, uid, memo))
        proc = tree.get("process") if isinstance(tree, dict) else None
        whole = tree if proc else None  # the tree spares the origin its own walk
        out["origin"] = _safe(lambda: remote_origin(con, uid, tree=whole, memo=memo))
        if proc:
            out["subscription"] = _safe(lambda: _subscription_for_process(con, proc, memo))
    elif table == "wmi_activity":
        out["subscription"] = _safe(
            lambda: copied(subscription_for_event(
                con, uid, of_host=lambda dest: host_subscriptions(con, dest, memo)))
            or _temporary_subscription(con, uid))
    elif table == "script_block":
        out["script"] = _safe(lambda: script_context(con, uid))
    return out


def _tree(con: duckdb.DuckDBPyConnection, uid: Any, memo: Memo | None) -> dict[str, Any] | None:
    """The process tree, from the ones ``prepare`` made for these findings when it did."""
    prepared = None if memo is None else memo.get(("trees",))
    if prepared is not None and uid in prepared:
        return prepared[uid]
    return process_tree(con, uid, memo=memo)


def prepare(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], memo: Memo) -> None:
    """Compute in set queries what the contexts of the next findings (``rows``: rows of
    the findings table) will ask for one by one: the process trees of their events. The
    memo holds them until the next call. A failure here (a damaged case) leaves each
    finding to compute, and report, its own."""
    memo.pop(("trees",), None)
    try:
        cols = cached(memo, ("columns",), lambda: findings.resolve(con))
        if cols is None:
            return
        uids = []
        for row in rows:
            uid, claimed = row.get(cols.uid), row.get(cols.table)
            if (isinstance(uid, str) and not has_recent(memo, ("event", claimed, uid))
                    and _event_table(con, claimed, uid, memo) == "process_start"):
                uids.append(uid)
        memo[("trees",)] = process_trees(con, uids, memo=memo)
    except (duckdb.Error, ValueError, TypeError, KeyError):
        return


def _finding_row(
    con: duckdb.DuckDBPyConnection,
    finding_id: object,
    row: dict[str, Any] | None,
    cols: findings.FindingColumns | None,
) -> dict[str, Any] | None:
    """The finding's row as ``findings.get`` gives it; from ``row`` (the caller's row of
    the findings table, all columns) without a query when given."""
    if row is None or cols is None:
        return findings.get(con, finding_id)
    finding = {str(k): jsonable(v) for k, v in row.items()}
    finding.setdefault("table", finding.get(cols.table))
    return finding


def for_finding(
    con: duckdb.DuckDBPyConnection,
    finding_id: object,
    *,
    window: timedelta = DEFAULT_WINDOW,
    threshold: float | None = None,
    risk_objects: Any = None,
    memo: dict[Any, Any] | None = None,
    row: dict[str, Any] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """The context of one finding. Raises ``LookupError`` when there is no such finding.

    ``limit``: rows of each list of the host's activity (``EARLIER_LIMIT`` at most for
    earlier findings); lower it for outputs whose readers cut long lines.

    ``memo``: a dict shared by the calls for the findings of one report, over a case that
    does not change meanwhile: what depends only on the finding's event (tree, origin,
    subscription, script: several detections fire on one event), on its host and user
    (risk, process info, subscriptions, remote sources), or on its host and time (the
    activity window) is computed once per distinct value instead of once per finding.
    Each call gets its own copies. ``row``: the finding's row of the findings table when
    the caller has it (saves looking it up by id).
    """
    from .. import risk as risk_mod  # risk imports context.findings: import here, not at top

    cols = cached(memo, ("columns",), lambda: findings.resolve(con))
    finding = _finding_row(con, finding_id, row, cols)
    if finding is None:
        raise LookupError(f"no finding with id {finding_id!r}")
    assert cols is not None
    uid = finding.get(cols.uid)
    claimed = finding.get("table")
    event = memoized(
        memo, ("event", claimed, uid), lambda: _event_context(con, claimed, uid, memo),
        recent=RECENT_EVENTS)
    table = event.pop("table")
    ctx: dict[str, Any] = dict.fromkeys(CONTEXT_KEYS)
    ctx.update(event)
    tree = ctx["tree"]
    proc = tree.get("process") if table == "process_start" and isinstance(tree, dict) else None
    dest = finding.get(cols.dest)
    if dest:
        ctx["activity"] = _safe(lambda: host_activity(
            con, dest, finding.get(cols.time), window=window,
            process_name=(proc or {}).get("process_name"),
            parent_process_name=(proc or {}).get("parent_process_name"),
            finding_id=finding.get(cols.finding_id), memo=memo, limit=limit,
        ))
    kwargs: dict[str, Any] = {"risk_objects": risk_objects}
    if threshold is not None:
        kwargs["threshold"] = threshold
    user = finding.get(cols.user)

    def risk() -> dict[str, Any]:
        if memo is None:
            found = risk_mod.risk_by_entity(
                con, entities=[("dest", dest), ("user", user)], **kwargs)
            pick = {r["object_type"]: r for r in found}
        else:  # every entity's risk at once, then the finding's two
            index = cached(memo, ("risk", threshold, repr(risk_objects)),
                           lambda: risk_mod.risk_index(con, **kwargs))
            pick = {kind: copied(index.get(risk_mod.index_key(con, kind, name)))
                    for kind, name in (("dest", dest), ("user", user)) if name}
        return {"dest": pick.get("dest"), "user": pick.get("user"),
                "threshold": kwargs.get("threshold", risk_mod.DEFAULT_THRESHOLD)}

    ctx["risk"] = _safe(risk)
    return ctx


def for_host(
    con: duckdb.DuckDBPyConnection, dest: str, *, threshold: float | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """A host's case: data span, risk, findings, subscriptions, WMI children, wmic runs."""
    from .. import risk as risk_mod

    kwargs = {} if threshold is None else {"threshold": threshold}
    lo, hi = _ALL_TIME
    spawned = _safe(lambda: wmiprvse_children(con, dest, lo, hi, limit))
    return {
        "host": dest,
        "data": _safe(lambda: host_span(con, dest)),
        "risk": _safe(lambda: risk_mod.entity_risk(con, "dest", dest, **kwargs)),
        "findings": _safe(lambda: earlier_findings(con, dest, None, limit=limit)),
        "subscriptions": _safe(lambda: subscriptions(con, dest)),
        "wmi_events": _safe(lambda: rows(
            con,
            "SELECT event_id, kind, count(*) AS count, min(time) AS first_seen, "
            "max(time) AS last_seen FROM wmi_activity WHERE lower(dest) = lower(?) "
            "GROUP BY ALL ORDER BY event_id",
            [dest],
        )),
        "wmiprvse_children": spawned,
        "wmic_runs": _safe(lambda: wmic_runs(con, dest, lo, hi, limit)),
        "wmiprvse_info": _safe(
            lambda: process_info(con, dest, parent_process_name="WmiPrvSE.exe")),
    }


def for_user(
    con: duckdb.DuckDBPyConnection, user: str, *, threshold: float | None = None
) -> dict[str, Any]:
    """A user's case: risk, where they logged on from, hosts, explicit credentials, findings."""
    from .. import risk as risk_mod

    kwargs = {} if threshold is None else {"threshold": threshold}
    account = user.split("\\")[-1].lower()

    def risk() -> list[dict[str, Any]]:
        # every user entity with that account name (DOMAIN\\name forms differ by source)
        return [r for r in risk_mod.risk_by_entity(con, object_type="user", **kwargs)
                if str(r["object"]).split("\\")[-1].lower() == account]

    out = _safe(lambda: user_activity(con, user))
    return {"risk": _safe(risk), **out}

