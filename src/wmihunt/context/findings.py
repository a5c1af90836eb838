"""The findings table as the context layer reads it: every column name it relies on.

The detection engine (``wmihunt.detect`` / ``wmihunt.findings``) writes ``findings``; this
module is the one place the context layer names its columns, so a rename there means an
edit here only. For the model-table and risk-objects columns a short list of names is
tried in order, so older case files still open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from ._sql import one, q, table_columns

FINDINGS_TABLE = "findings"


@dataclass(frozen=True, slots=True)
class FindingColumns:
    """Column names of the findings table (defaults: the detection engine's contract)."""

    finding_id: str = "finding_id"
    detection: str = "detection"
    detection_id: str = "detection_id"
    type: str = "type"
    risk_score: str = "risk_score"
    mitre: str = "mitre"  # VARCHAR[] of ATT&CK ids
    message: str = "message"
    time: str = "time"
    dest: str = "dest"
    user: str = "user"
    data_source: str = "data_source"
    table: str = "table_name"  # model table of the matched event
    uid: str = "uid"  # the event's uid in that table
    parent_inferred: str = "parent_inferred"
    risk_objects: str | None = "risk_objects"  # VARCHAR[] of field names, when present


#: Names tried for the model-table column, first match wins.
TABLE_CANDIDATES = ("table_name", "table", "model", "source_table", "event_table")
#: Names tried for the risk-objects column (a list of field names per finding).
RISK_OBJECT_CANDIDATES = ("risk_objects", "risk_object_fields")

#: A findings table with just the columns this layer reads; tests create it, and it
#: documents what the detection engine must provide.
MINIMAL_FINDINGS_DDL = """
CREATE TABLE IF NOT EXISTS findings (
  finding_id VARCHAR, detection VARCHAR, detection_id VARCHAR, type VARCHAR,
  risk_score INTEGER, mitre VARCHAR[], message VARCHAR, time TIMESTAMP, dest VARCHAR,
  "user" VARCHAR, data_source VARCHAR, table_name VARCHAR, uid VARCHAR,
  parent_inferred BOOLEAN, risk_objects VARCHAR[]
)
"""


def resolve(con: duckdb.DuckDBPyConnection, table: str = FINDINGS_TABLE) -> FindingColumns | None:
    """Column names as they exist in ``table``; None when there is no findings table."""
    cols = table_columns(con, table)
    if not cols:
        return None
    lower = {c.lower(): c for c in cols}
    table_col = next((lower[c] for c in TABLE_CANDIDATES if c in lower), "table_name")
    risk_col = next((lower[c] for c in RISK_OBJECT_CANDIDATES if c in lower), None)
    return FindingColumns(table=table_col, risk_objects=risk_col)


def get(con: duckdb.DuckDBPyConnection, finding_id: object) -> dict[str, Any] | None:
    """The finding's row (all its columns) by id; ids compare as text."""
    cols = resolve(con)
    if cols is None:
        return None
    row = one(
        con,
        f"SELECT * FROM {FINDINGS_TABLE} WHERE CAST({q(cols.finding_id)} AS VARCHAR) = ? LIMIT 1",
        [str(finding_id)],
    )
    if row is None:
        return None
    # Give the context layer stable keys whatever the engine called them.
    row.setdefault("table", row.get(cols.table))
    return row
