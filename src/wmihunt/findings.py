"""The ``findings`` table (one row per matched event and rule) and its JSON shape.

The columns are defined here once; ``detect`` fills the table, reports read it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

TABLE = "findings"


@dataclass(frozen=True, slots=True)
class FindingColumn:
    name: str
    sql_type: str
    doc: str = ""


COLUMNS: tuple[FindingColumn, ...] = (
    FindingColumn("finding_id", "VARCHAR", "md5(detection_id | event uid): stable across runs"),
    FindingColumn("detection", "VARCHAR", "upstream detection name (rule title for user rules)"),
    FindingColumn("detection_id", "VARCHAR", "upstream id (Sigma id for user rules)"),
    FindingColumn("detection_number", "INTEGER", "1-12 in the story, NULL for user rules"),
    FindingColumn("rule_id", "VARCHAR", "Sigma rule id"),
    FindingColumn("rule_title", "VARCHAR"),
    FindingColumn("rule_source", "VARCHAR", "story | user"),
    FindingColumn("type", "VARCHAR", "TTP | Hunting"),
    FindingColumn("risk_score", "INTEGER"),
    FindingColumn("mitre", "VARCHAR[]", "ATT&CK technique ids"),
    FindingColumn("risk_objects", "VARCHAR[]", "fields scored with risk_score (dest, user)"),
    FindingColumn("threat_objects", "VARCHAR[]"),
    FindingColumn("message", "VARCHAR", "corrected sentence shown to the analyst"),
    FindingColumn("message_upstream", "VARCHAR", "upstream template rendered; NULL when none"),
    FindingColumn("time", "TIMESTAMP", "event time, UTC"),
    FindingColumn("dest", "VARCHAR"),
    FindingColumn("user", "VARCHAR"),
    FindingColumn("data_source", "VARCHAR"),
    FindingColumn("table_name", "VARCHAR", "model table the event is in"),
    FindingColumn("uid", "VARCHAR", "event uid in that table"),
    FindingColumn("fields", "VARCHAR", "JSON object: the detection's output and grouping fields"),
    FindingColumn("parent_inferred", "BOOLEAN", "parent fields reconstructed after ingest"),
    FindingColumn("channel", "VARCHAR"),
    FindingColumn("event_id", "VARCHAR"),
    FindingColumn("ev_file", "VARCHAR"),
    FindingColumn("ev_member", "VARCHAR"),
    FindingColumn("ev_record_id", "BIGINT"),
    FindingColumn("ev_line", "BIGINT"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)


def ddl(table: str = TABLE) -> str:
    cols = ",\n  ".join(f'"{c.name}" {c.sql_type}' for c in COLUMNS)
    return f'CREATE OR REPLACE TABLE "{table}" (\n  {cols}\n)'


def create_table(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create an empty findings table: a detection run replaces the previous one."""
    con.execute(ddl())


def fetch_findings(
    con: duckdb.DuckDBPyConnection, where: str = "", params: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Findings as dicts, in time order (then detection number; the finding id breaks the
    remaining ties, so that outputs are reproducible)."""
    return list(iter_findings(con, where, params))


def count_findings(con: duckdb.DuckDBPyConnection) -> int:
    """Findings in the case (0 when it has no findings table)."""
    try:
        ((n,),) = con.execute(f'SELECT count(*) FROM "{TABLE}"').fetchall()
    except duckdb.CatalogException:
        return 0
    return int(n)


def iter_findings(
    con: duckdb.DuckDBPyConnection, where: str = "", params: list[Any] | None = None
) -> Iterator[dict[str, Any]]:
    """``fetch_findings`` a thousand rows at a time: a caller that converts each finding
    (``finding_to_json``) never holds all of them twice."""
    order = "time NULLS LAST, detection_number, uid, finding_id"
    sql = f'SELECT * FROM "{TABLE}" {where} ORDER BY {order}'
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    while rows := cur.fetchmany(1000):
        for row in rows:
            yield dict(zip(names, row, strict=True))


def iso_utc(value: dt.datetime | None) -> str | None:
    """Naive-UTC or aware datetime -> ISO 8601 with a Z."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    spec = "microseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec) + "Z"


def _event_id(value: Any) -> int | str | None:
    if value is None:
        return None
    text = str(value)
    return int(text) if text.isdigit() else text


def finding_to_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """One findings row -> the JSONL object (issue #3 shape)."""
    out: dict[str, Any] = {
        "detection": row["detection"],
        "detection_id": row["detection_id"],
        "type": row["type"],
        "risk_score": row["risk_score"],
        "mitre": list(row["mitre"] or []),
        "message": row["message"],
        "time": iso_utc(row["time"]),
        "dest": row["dest"],
        "user": row["user"],
        "data_source": row["data_source"],
    }
    fields = json.loads(row["fields"]) if row.get("fields") else {}
    for key, value in fields.items():
        out.setdefault(key, value)
    out["message_upstream"] = row.get("message_upstream")
    out["finding_id"] = row["finding_id"]
    out["rule"] = {"id": row["rule_id"], "title": row["rule_title"], "source": row["rule_source"]}
    out["parent_inferred"] = bool(row.get("parent_inferred"))
    out["evidence"] = {
        "file": row["ev_file"],
        "member": row["ev_member"],
        "record_id": row["ev_record_id"],
        "line": row["ev_line"],
        "channel": row["channel"],
        "event_id": _event_id(row["event_id"]),
    }
    return out
