"""Process tree: ancestors up to the root and descendants of one process start.

Links, computed once per connection into a temporary table (one set-based query):

- ``guid``: Sysmon ``ParentProcessGuid`` / Falcon ``ParentProcessId`` equals the parent's
  ``process_guid`` on the same host. Used whenever the child has a ``process_guid``.
- ``pid``: for rows without a guid (Security 4688), the most recent earlier start on the
  same host whose pid equals the child's parent pid (ASOF join). Pids are reused, so
  "most recent earlier" is the best guess the log allows; see docs/context.md.

Ties (copies of one start in two files, or two starts of one pid at one time) go to the
candidate in the child's own file, then to the smallest uid, and a level's children are
taken in uid order: a tree is the same from run to run, whatever order the files were
read in (rowids follow that order), and copies of a log keep their own trees.

The link table is keyed by ``process_start``'s rowid, with ART indexes on the child, the
parent and the uid, so walking a tree is a few indexed set queries (one per level), not a
scan of the whole table per call: about 1 ms per level on a million process starts.

A parent that was never logged (it started before logging began, or its log is missing)
appears as an ``unlogged`` node built from the child's parent fields.
"""

from __future__ import annotations

from typing import Any

import duckdb

from ._memo import Memo, cached
from ._sql import rows

LINK_TABLE = "ctx_process_link"
_META_TABLE = "ctx_process_link_meta"

DEFAULT_MAX_DEPTH = 8
DEFAULT_MAX_DESCENDANTS = 200

_LINK_SQL = f"""
CREATE OR REPLACE TEMP TABLE {LINK_TABLE} AS
WITH base AS (
    SELECT rowid AS rid, uid, lower(dest) AS host, time, process_id, parent_process_id,
           process_guid, parent_process_guid, ev_file
    FROM process_start
    WHERE uid IS NOT NULL
),
guid_link AS (
    SELECT c.rid, first(p.rid ORDER BY p.time, p.ev_file IS DISTINCT FROM c.ev_file, p.uid)
                      FILTER (WHERE p.time IS NOT NULL) AS parent_rid
    FROM base AS c
    JOIN base AS p
      ON c.host = p.host AND lower(c.parent_process_guid) = lower(p.process_guid)
     AND p.rid <> c.rid
    WHERE c.parent_process_guid IS NOT NULL
    GROUP BY c.rid
),
pid_time AS (
    SELECT c.rid, c.host, c.parent_process_id AS pid, p.time AS ptime, c.ev_file
    FROM (SELECT * FROM base
          WHERE process_guid IS NULL AND parent_process_id IS NOT NULL
            AND time IS NOT NULL) AS c
    ASOF JOIN (SELECT * FROM base WHERE process_id IS NOT NULL AND time IS NOT NULL) AS p
      ON c.host = p.host AND c.parent_process_id = p.process_id AND c.time >= p.time
),
pid_link AS (
    SELECT t.rid, first(p.rid ORDER BY p.ev_file IS DISTINCT FROM t.ev_file, p.uid)
               AS parent_rid
    FROM pid_time AS t
    JOIN base AS p
      ON p.host = t.host AND p.process_id = t.pid AND p.time = t.ptime AND p.rid <> t.rid
    GROUP BY t.rid
)
SELECT b.rid, b.uid, coalesce(g.parent_rid, pl.parent_rid) AS parent_rid,
       CASE WHEN g.parent_rid IS NOT NULL THEN 'guid'
            WHEN pl.parent_rid IS NOT NULL THEN 'pid' END AS link
FROM base AS b
LEFT JOIN guid_link AS g ON g.rid = b.rid
LEFT JOIN pid_link AS pl ON pl.rid = b.rid
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
    state = con.execute("SELECT count(*), coalesce(max(rowid), -1) FROM process_start").fetchone()
    try:
        built = con.execute(f"SELECT n, last FROM {_META_TABLE}").fetchone()
    except duckdb.CatalogException:
        built = None
    if built is not None and tuple(built) == tuple(state):
        return
    con.execute(_LINK_SQL)
    for col in ("rid", "uid", "parent_rid"):
        con.execute(f"CREATE INDEX ctx_link_{col} ON {LINK_TABLE} ({col})")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_META_TABLE} AS "
        f"SELECT {int(state[0])}::BIGINT AS n, {int(state[1])}::BIGINT AS last"
    )


def _fetch(con: duckdb.DuckDBPyConnection, rids: list[int]) -> dict[int, dict[str, Any]]:
    """Node rows by process_start rowid."""
    if not rids:
        return {}
    select = f"SELECT p.rowid AS _rid, {_NODE_SELECT} FROM process_start AS p"
    if len(rids) == 1:  # a rowid point lookup is the fastest form
        found = rows(con, f"{select} WHERE p.rowid = ?", rids)
    else:
        found = rows(con, f"{select} WHERE p.rowid IN (SELECT unnest(?::BIGINT[]))", [rids])
    return {r.pop("_rid"): r for r in found}


def _rid(con: duckdb.DuckDBPyConnection, uid: str, memo: Memo | None = None) -> int | None:
    cached(memo, ("links",), lambda: ensure_links(con) or True)
    got = con.execute(f"SELECT min(rid) FROM {LINK_TABLE} WHERE uid = ?", [uid]).fetchone()
    return got[0] if got else None


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
    rid = _rid(con, uid)
    if rid is None:
        return None
    node = _fetch(con, [rid]).get(rid)
    return _node(node) if node else None


def ancestors(
    con: duckdb.DuckDBPyConnection, uid: str, *, max_depth: int = DEFAULT_MAX_DEPTH
) -> list[dict[str, Any]]:
    """Parent, grandparent, ... (nearest first), each with ``depth`` and ``linked_by``."""
    rid = _rid(con, uid)
    return [] if rid is None else _ancestors(con, rid, max_depth)


def _ancestors(con: duckdb.DuckDBPyConnection, rid: int, max_depth: int) -> list[dict[str, Any]]:
    chain = _chains(con, [rid], max_depth)[rid]
    return _ancestor_nodes(chain, _fetch(con, [r for r, _ in chain]))


def _ancestor_nodes(
    chain: list[tuple[int, str]], nodes: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Ancestor rows (nearest first) from a chain of (rowid, link) and the fetched rows."""
    out = []
    for depth, (r, link) in enumerate(chain, start=1):
        if r in nodes:
            out.append(_node({"depth": depth, "linked_by": link, **nodes[r]}))
    return out


def descendants(
    con: duckdb.DuckDBPyConnection,
    uid: str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    limit: int = DEFAULT_MAX_DESCENDANTS,
) -> list[dict[str, Any]]:
    """Children, grandchildren, ... as a flat list (breadth first, then by time), each with
    ``depth`` and ``parent_uid``; at most ``limit + 1`` rows (the extra one says "more").
    One indexed set query per level."""
    rid = _rid(con, uid)
    return [] if rid is None else _descendants(con, rid, max_depth, limit)


def _descendants(
    con: duckdb.DuckDBPyConnection, rid: int, max_depth: int, limit: int
) -> list[dict[str, Any]]:
    found = _levels(con, [rid], max_depth, limit)[rid]
    return _descendant_nodes(found, _fetch(con, _rids_of(found)), limit)


def _take_children(
    got: list[tuple[int, int, str, str]],
    seen: set[int],
    found: list[tuple[int, int, int, str]],
    depth: int,
    limit: int,
) -> list[int]:
    """Add one level's (child, parent, link, uid) rows, sorted by uid (the same from run
    to run, whatever order the files were read in), to ``found`` (up to one past
    ``limit``); the next level's rids."""
    level = []
    for child, parent, link, _uid in got:
        if child not in seen:
            seen.add(child)
            level.append(child)
            found.append((child, parent, depth, link))
            if len(found) > limit:
                break
    return level


def _rids_of(found: list[tuple[int, int, int, str]]) -> list[int]:
    """The rows ``_descendant_nodes`` needs: each descendant and its parent."""
    return [f[0] for f in found] + list({f[1] for f in found})


def _descendant_nodes(
    found: list[tuple[int, int, int, str]], nodes: dict[int, dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    out = []
    for child, parent, depth, link in found:
        if child in nodes:
            out.append(_node({"depth": depth, "linked_by": link,
                              "parent_uid": nodes.get(parent, {}).get("uid"), **nodes[child]}))
    out.sort(key=lambda r: (r["depth"], r["time"] or "", r["uid"]))
    return out[: limit + 1]


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
    memo: Memo | None = None,
) -> dict[str, Any] | None:
    """The process, its ancestors (root first) and its descendants (nested ``children``).

    Every ancestor carries ``depth`` (1 = parent) and ``linked_by`` (how it was found);
    the root may be an ``unlogged`` node. None when ``uid`` is not a process start.
    ``memo``: see ``context.for_finding`` (the link table is checked once).
    """
    rid = _rid(con, uid, memo)
    node = _fetch(con, [rid]).get(rid) if rid is not None else None
    if rid is None or node is None:
        return None
    node = _node(node)
    up = _ancestors(con, rid, max_depth + 1)
    down = _descendants(con, rid, max_depth, max_descendants)
    return _assemble(uid, node, up, down, max_depth, max_descendants)


def _assemble(
    uid: str,
    node: dict[str, Any],
    up: list[dict[str, Any]],
    down: list[dict[str, Any]],
    max_depth: int,
    max_descendants: int,
) -> dict[str, Any]:
    """A tree from its process, ancestors (nearest first, ``max_depth + 1`` asked for)
    and descendants (``max_descendants + 1`` asked for)."""
    truncated_up = len(up) > max_depth
    up = up[:max_depth]
    top = up[-1] if up else node
    if not truncated_up:
        stub = _unlogged_parent(top)
        if stub is not None:
            stub["depth"] = len(up) + 1
            up.append(stub)
    kept = down[:max_descendants]
    return {
        "process": node,
        "ancestors": list(reversed(up)),
        "descendants": nest(kept, uid),
        "descendant_count": len(kept),
        "ancestors_truncated": truncated_up,
        "descendants_truncated": len(down) > max_descendants,
    }


def process_trees(
    con: duckdb.DuckDBPyConnection,
    uids: list[str],
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_descendants: int = DEFAULT_MAX_DESCENDANTS,
    memo: Memo | None = None,
) -> dict[str, dict[str, Any] | None]:
    """``process_tree`` of each uid, by uid: the same trees from a few set queries per
    tree level for all of them, instead of a few queries per tree (a report's findings)."""
    cached(memo, ("links",), lambda: ensure_links(con) or True)
    wanted = list(dict.fromkeys(u for u in uids if isinstance(u, str)))
    if not wanted:
        return {}
    rid_of: dict[str, int] = dict(con.execute(
        f"SELECT uid, min(rid) FROM {LINK_TABLE} WHERE uid IN (SELECT unnest(?::VARCHAR[])) "
        "GROUP BY uid", [wanted]).fetchall())
    roots = sorted(set(rid_of.values()))
    chains = _chains(con, roots, max_depth + 1)
    below = _levels(con, roots, max_depth, max_descendants)
    needed = set(roots)
    for root in roots:
        needed.update(r for r, _ in chains[root])
        needed.update(_rids_of(below[root]))
    nodes = _fetch(con, sorted(needed))
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(wanted)
    for uid, rid in rid_of.items():
        if rid in nodes:
            out[uid] = _assemble(uid, _node(dict(nodes[rid])),
                                 _ancestor_nodes(chains[rid], nodes),
                                 _descendant_nodes(below[rid], nodes, max_descendants),
                                 max_depth, max_descendants)
    return out


def _chains(
    con: duckdb.DuckDBPyConnection, roots: list[int], max_depth: int
) -> dict[int, list[tuple[int, str]]]:
    """The (rowid, link) of the parent, grandparent, ... of each root, one query per level
    for all of them (an indexed point lookup for a single root)."""
    chains: dict[int, list[tuple[int, str]]] = {r: [] for r in roots}
    seen = {r: {r} for r in roots}
    current = {r: r for r in roots}  # root -> the rid whose parent comes next
    for _ in range(max_depth):
        if not current:
            break
        asked = sorted(set(current.values()))
        where, params = ("rid = ?", asked) if len(asked) == 1 else (
            "rid IN (SELECT unnest(?::BIGINT[]))", [asked])
        links = {rid: (parent, link) for rid, parent, link in con.execute(
            f"SELECT rid, parent_rid, link FROM {LINK_TABLE} WHERE {where}", params
        ).fetchall()}
        following = {}
        for root, rid in current.items():
            parent, link = links.get(rid, (None, None))
            if parent is None or parent in seen[root]:  # no parent, or a pid-time cycle
                continue
            seen[root].add(parent)
            chains[root].append((parent, link))
            following[root] = parent
        current = following
    return chains


def _levels(
    con: duckdb.DuckDBPyConnection, roots: list[int], max_depth: int, limit: int
) -> dict[int, list[tuple[int, int, int, str]]]:
    """The (rid, parent rid, depth, link) of each root's descendants, breadth first, at
    most ``limit + 1`` per root: one query per level for all of them; each root takes its
    level's children in uid order."""
    found: dict[int, list[tuple[int, int, int, str]]] = {r: [] for r in roots}
    seen = {r: {r} for r in roots}
    level = {r: [r] for r in roots}
    for depth in range(1, max_depth + 1):
        level = {r: lv for r, lv in level.items() if lv and len(found[r]) <= limit}
        if not level:
            break
        by_parent: dict[int, list[tuple[int, int, str, str]]] = {}
        for child, parent, link, uid in con.execute(
            f"SELECT rid, parent_rid, link, uid FROM {LINK_TABLE} "
            "WHERE parent_rid IN (SELECT unnest(?::BIGINT[]))",
            [sorted({p for lv in level.values() for p in lv})],
        ).fetchall():
            by_parent.setdefault(parent, []).append((child, parent, link, uid))
        level = {
            root: _take_children(
                sorted((row for p in set(parents) for row in by_parent.get(p, ())),
                       key=lambda row: (row[3], row[0])),
                seen[root], found[root], depth, limit)
            for root, parents in level.items()
        }
    return found


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
