"""Script context: PowerShell 4104 script blocks reassembled from their parts.

PowerShell splits a long script block over several 4104 events with the same
``ScriptBlockId`` (``MessageNumber`` of ``MessageTotal``), cutting the text at arbitrary
characters. Upstream tests each part alone, so ``invoke-wmiexec`` cut across two parts
is missed; here parts are joined per (host, ScriptBlockId) in ``MessageNumber`` order.
A part logged twice counts once; missing parts make the script ``complete = false``.
"""

from __future__ import annotations

from typing import Any

import duckdb

from ..reassembly import REASSEMBLED_SQL
from ._sql import rows

#: Scripts whose whole text contains the needle (``$needle``, lower case) while no single
#: part does: what per-part matching misses.
SPANNING_SQL = f"""
SELECT r.*
FROM ({REASSEMBLED_SQL}) AS r
WHERE r.parts > 1
  AND contains(lower(r.script_block_text), $needle)
  AND NOT EXISTS (
      SELECT 1 FROM script_block AS p
      WHERE lower(p.dest) IS NOT DISTINCT FROM lower(r.dest)
        AND p.script_block_id = r.script_block_id
        AND contains(lower(p.script_block_text), $needle)
  )
"""

DEFAULT_MAX_CHARS = 200_000



def reassembled_scripts(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """All script blocks, reassembled, as a DuckDB relation (lazy; query or join it)."""
    return con.sql(REASSEMBLED_SQL)


def _parts(con: duckdb.DuckDBPyConnection, dest: str | None, block: str) -> list[dict[str, Any]]:
    return rows(
        con,
        """
        SELECT DISTINCT ON (message_number) uid, time, message_number, message_total,
               script_block_text
        FROM script_block
        WHERE lower(dest) IS NOT DISTINCT FROM lower(?)
          AND coalesce(script_block_id, uid) = ?
        ORDER BY message_number, time, uid
        """,
        [dest, block],
    )


def _locate(parts: list[dict[str, Any]], needle: str) -> tuple[int | None, list[int]]:
    """Index of the part where ``needle`` starts in the joined text, and the message
    numbers it spans (case-insensitive)."""
    lowered = [(p["script_block_text"] or "").lower() for p in parts]
    whole = "".join(lowered)
    at = whole.find(needle)
    if at < 0:
        return None, []
    end = at + len(needle)
    start_idx, spans, offset = None, [], 0
    for i, text in enumerate(lowered):
        lo, hi = offset, offset + len(text)
        if lo <= at < hi and start_idx is None:
            start_idx = i
        if lo < end and at < hi:
            spans.append(parts[i]["message_number"])
        offset = hi
    return start_idx, spans


def detect_spanning(
    con: duckdb.DuckDBPyConnection, needle: str = "invoke-wmiexec"
) -> list[dict[str, Any]]:
    """Scripts where ``needle`` appears only across a part boundary.

    Each row is the reassembled script (columns of ``REASSEMBLED_SQL``) with ``uid`` and
    the evidence columns of the part where the needle *starts*, and ``match_parts`` (the
    message numbers it spans). Feed these to detection 2 as extra matches marked
    ``reassembled``; per-part matches stay as upstream has them.
    """
    wanted = needle.lower()
    found = rows(con, SPANNING_SQL, {"needle": wanted})
    for row in found:
        block = row["script_block_id"] or row["uid"]
        parts = _parts(con, row["dest"], block)
        idx, spans = _locate(parts, wanted)
        row["match_parts"] = spans
        if idx is not None:
            row["uid"] = parts[idx]["uid"]
            ev = rows(
                con,
                "SELECT time, ev_file, ev_member, ev_record_id, ev_line FROM script_block "
                "WHERE uid = ? LIMIT 1",
                [row["uid"]],
            )
            if ev:
                row.update(ev[0])
    return found


def script_context(
    con: duckdb.DuckDBPyConnection, uid: str, *, max_chars: int = DEFAULT_MAX_CHARS
) -> dict[str, Any] | None:
    """The whole script a 4104 part belongs to, its parts, and what is missing."""
    me = rows(
        con,
        "SELECT dest, coalesce(script_block_id, uid) AS block FROM script_block "
        "WHERE uid = ? LIMIT 1",
        [uid],
    )
    if not me:
        return None
    dest, block = me[0]["dest"], me[0]["block"]
    parts = _parts(con, dest, block)
    total = max((p["message_total"] or 0 for p in parts), default=0) or len(parts)
    have = {p["message_number"] for p in parts}
    missing = [n for n in range(1, min(total, 10_000) + 1) if n not in have]
    text = "".join(p["script_block_text"] or "" for p in parts)
    first = rows(
        con,
        "SELECT \"user\", user_id, path FROM script_block WHERE uid = ? LIMIT 1",
        [parts[0]["uid"]],
    )[0]
    return {
        "dest": dest,
        "script_block_id": block,
        "user": first["user"],
        "user_id": first["user_id"],
        "path": first["path"],
        "message_total": total,
        "parts": [
            {"message_number": p["message_number"], "uid": p["uid"], "time": p["time"],
             "length": len(p["script_block_text"] or "")}
            for p in parts
        ],
        "missing": missing,
        "complete": not missing,
        "first_time": min((p["time"] for p in parts if p["time"]), default=None),
        "last_time": max((p["time"] for p in parts if p["time"]), default=None),
        "length": len(text),
        "text": text[:max_chars],
        "truncated": len(text) > max_chars,
    }
