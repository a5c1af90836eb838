"""Process tree: ancestors up to the root and descendants of one process start.

Links, computed once per connection into a temporary table (set-based, no Python loop):

- ``guid``: Sysmon ``ParentProcessGuid`` / Falcon ``ParentProcessId`` equals the parent's
  ``process_guid`` on the same host. Used whenever the child has a ``process_guid``.
- ``pid``: for rows without a guid (Security 4688), the most recent earlier start on the
  same host whose pid equals the child's parent pid (ASOF join). Pids are reused, so
  "most recent earlier" is the best guess the log allows; see docs/context.md.

A parent that was never logged (it started before logging began, or its log is missing)
appears as an ``unlogged`` node built from the child's parent fields.
"""

from __future__ import annotations

from typing import Any

import duckdb

from ._sql import rows

LINK_TABLE = "ctx_process_link"
_META_TABLE = "ctx_process_link_meta"

DEFAULT_MAX_DEPTH = 8
DEFAULT_MAX_DESCENDANTS = 200

_LINK_SQL = f"""
CREATE OR REPLACE TEMP TABLE {LINK_TABLE} AS
WITH base AS (
    SELECT uid, lower(dest) AS host, time, process_id, parent_process_id,
           process_guid, parent_process_guid
    FROM process_start
    WHERE uid IS NOT NULL
),
guid_link AS (
    SELECT c.uid, min_by(p.uid, p.time) AS parent_uid
    FROM base AS c
    JOIN base AS p
      ON c.host = p.host AND lower(c.parent_process_guid) = lower(p.process_guid)
     AND p.uid <> c.uid
    WHERE c.parent_process_guid IS NOT NULL
    GROUP BY c.uid
),
pid_link AS (
    SELECT c.uid, p.uid AS parent_uid
    FROM (SELECT * FROM base
          WHERE process_guid IS NULL AND parent_process_id IS NOT NULL
            AND time IS NOT NULL) AS c
    ASOF JOIN (SELECT * FROM base WHERE process_id IS NOT NULL AND time IS NOT NULL) AS p
      ON c.host = p.host AND c.parent_process_id = p.process_id AND c.time >= p.time
    WHERE p.uid <> c.uid
)
SELECT uid, parent_uid, 'guid' AS link FROM guid_link
UNION ALL
SELECT uid, parent_uid, 'pid' AS link FROM pid_link
"""

#: Columns of a tree node (also used by other joins that list processes).
NODE_COLUMNS = (
    "uid", "time", "dest", "user", "process_name", "process_path", "process",
    "process_id", "process_guid", "parent_process_name", "parent_process_path",
    "parent_process_id", "parent_process_guid", "parent_process", "parent_inferred",
    "logon_id", "target_user", "target_logon_id", "integrity_level", "data_source",
    "event_id", "ev_file", "ev_member", "ev_record_id", "ev_line",
)
_NODE_SELECT = ", ".join(f'p."{c}"' for c in NODE_COLUMNS)


def ensure_links(con: duckdb.DuckDBPyConnection) -> None:
    """Build (or rebuild, when process_start changed) the temporary parent-link table."""
    count = con.execute("SELECT count(*) FROM process_start").fetchone()[0]
    try:
        built = con.execute(f"SELECT n FROM {_META_TABLE}").fetchone()
    except duckdb.CatalogException:
        built = None
    if built is not None and built[0] == count:
        return
    con.execute(_LINK_SQL)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_META_TABLE} AS SELECT {int(count)}::BIGINT AS n")


def _node(row: dict[str, Any]) -> dict[str, Any]:
    row["logged"] = True
    return row


def _unlogged_parent(child: dict[str, Any]) -> dict[str, Any] | None:
    """The parent as the child describes it, when no start of it was logged."""
    if not (child.get("parent_process_name") or child.get("parent_process_path")):
        return None
    return {
        "uid": None,
        "logged": False,
        "dest": child.get("dest"),
        "process_name": child.get("parent_process_name"),
        "process_path": child.get("parent_process_path"),
        "process": child.get("parent_process"),
        "process_id": child.get("parent_process_id"),
        "process_guid": child.get("parent_process_guid"),
        "inferred": bool(child.get("parent_inferred")),
    }


def process_node(con: duckdb.DuckDBPyConnection, uid: str) -> dict[str, Any] | None:
    found = rows(con, f"SELECT {_NODE_SELECT} FROM process_start p WHERE p.uid = ? LIMIT 1", [uid])
    return _node(found[0]) if found else None


def ancestors(
    con: duckdb.DuckDBPyConnection, uid: str, *, max_depth: int = DEFAULT_MAX_DEPTH
) -> list[dict[str, Any]]:
    """Parent, grandparent, ... (nearest first), each with ``depth`` and ``linked_by``."""
    ensure_links(con)
    found = rows(
        con,
        f"""
        WITH RECURSIVE up(uid, depth, linked_by) AS (
            SELECT ?::VARCHAR, 0, NULL::VARCHAR
            UNION ALL
            SELECT l.parent_uid, up.depth + 1, l.link
            FROM up JOIN {LINK_TABLE} AS l ON l.uid = up.uid
            WHERE up.depth < ?
        )
        SELECT DISTINCT ON (up.depth) up.depth, up.linked_by, {_NODE_SELECT}
        FROM up JOIN process_start AS p ON p.uid = up.uid
        WHERE up.depth > 0
        ORDER BY up.depth
        """,
        [uid, max_depth],
    )
    return [_node(r) for r in found]


def descendants(
    con: duckdb.DuckDBPyConnection,
    uid: str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    limit: int = DEFAULT_MAX_DESCENDANTS,
) -> list[dict[str, Any]]:
    """Children, grandchildren, ... as a flat list (breadth first, then by time), each with
    ``depth`` and ``parent_uid``; at most ``limit + 1`` rows (the extra one says "more")."""
    ensure_links(con)
    found = rows(
        con,
        f"""
        WITH RECURSIVE down(uid, parent_uid, depth, linked_by) AS (
            SELECT ?::VARCHAR, NULL::VARCHAR, 0, NULL::VARCHAR
            UNION ALL
            SELECT l.uid, l.parent_uid, down.depth + 1, l.link
            FROM down JOIN {LINK_TABLE} AS l ON l.parent_uid = down.uid
            WHERE down.depth < ?
        )
        SELECT DISTINCT ON (down.uid) down.depth, down.parent_uid, down.linked_by,
               {_NODE_SELECT}
        FROM down JOIN process_start AS p ON p.uid = down.uid
        WHERE down.depth > 0
        ORDER BY down.uid, down.depth
        """,
        [uid, max_depth],
    )
    found.sort(key=lambda r: (r["depth"], r["time"] or "", r["uid"]))
    return [_node(r) for r in found[: limit + 1]]


def nest(flat: list[dict[str, Any]], root_uid: str) -> list[dict[str, Any]]:
    """Turn a flat descendant list (``parent_uid`` links) into nested ``children`` lists."""
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for node in flat:
        node["children"] = []
        by_parent.setdefault(node["parent_uid"], []).append(node)
    for node in flat:
        node["children"] = by_parent.get(node["uid"], [])
    return by_parent.get(root_uid, [])


def process_tree(
    con: duckdb.DuckDBPyConnection,
    uid: str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_descendants: int = DEFAULT_MAX_DESCENDANTS,
) -> dict[str, Any] | None:
    """The process, its ancestors (root first) and its descendants (nested ``children``).

    Every ancestor carries ``depth`` (1 = parent) and ``linked_by`` (how it was found);
    the root may be an ``unlogged`` node. None when ``uid`` is not a process start.
    """
    node = process_node(con, uid)
    if node is None:
        return None
    up = ancestors(con, uid, max_depth=max_depth + 1)
    truncated_up = len(up) > max_depth
    up = up[:max_depth]
    top = up[-1] if up else node
    if not truncated_up:
        stub = _unlogged_parent(top)
        if stub is not None:
            stub["depth"] = len(up) + 1
            up.append(stub)
    down = descendants(con, uid, max_depth=max_depth, limit=max_descendants)
    kept = down[:max_descendants]
    return {
        "process": node,
        "ancestors": list(reversed(up)),
        "descendants": nest(kept, uid),
        "descendant_count": len(kept),
        "ancestors_truncated": truncated_up,
        "descendants_truncated": len(down) > max_descendants,
    }


def walk(children: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Depth-first flat view of nested descendants."""
    out: list[dict[str, Any]] = []
    for child in children:
        out.append(child)
        out.extend(walk(child.get("children") or []))
    return out


def chain_names(tree: dict[str, Any]) -> list[str]:
    """Root-first process names along the ancestor chain down to the process."""
    names = [a.get("process_name") or "?" for a in tree["ancestors"]]
    return [*names, tree["process"].get("process_name") or "?"]
