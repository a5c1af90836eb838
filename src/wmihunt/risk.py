"""Risk per entity, as risk-based alerting does it: SQL over the findings table.

Each finding adds its ``risk_score`` to each of its risk objects: the values of the
fields its rule names as risk objects (``dest`` always; ``user`` for detections 3, 4, 5,
6, 7, 9, 11, 12 in the story). Those field names come from, in order: the ``risk_objects``
argument (a column name, or a mapping from detection id or name to field names), a
``risk_objects`` column of the findings table (the rule metadata, written by the detection
engine), or :data:`STORY_RISK_OBJECTS` (the story's table, a fallback only). Entities are
ranked by total risk, then distinct detections, then distinct ATT&CK techniques; an entity
whose total reaches ``threshold`` is flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from .context import findings as fnd
from .context._sql import q, rows, sql_lower, table_columns

DEFAULT_THRESHOLD = 100

_DEST_USER = ("dest", "user")
#: The story's risk objects by upstream detection id (DETECTIONS.md section 1); used only
#: when neither an argument nor a findings column names them.
STORY_RISK_OBJECTS: dict[str, tuple[str, ...]] = {
    "01d9a0c2-cece-11eb-ab46-acde48001122": ("dest",),  # 1 subscription persistence
    "0734bd21-2769-4972-a5f1-78bb1e011224": ("dest",),  # 2 Invoke-WmiExec
    "24869767-8579-485d-9a4f-d9ddfd8f0cac": _DEST_USER,  # 3
    "d25d2c3d-d9d8-40ec-8fdf-e86fe155a3da": _DEST_USER,  # 4
    "272df6de-61f1-4784-877c-1fbc3e2d0838": _DEST_USER,  # 5
    "aa73f80d-d728-4077-b226-81ea0c8be589": _DEST_USER,  # 6
    "0661c2de-93de-11ec-9833-acde48001122": _DEST_USER,  # 7
    "71bfdb13-f200-4c6c-b2c9-a2e07adf437d": ("dest",),  # 8
    "ad05aae6-3b2a-4f73-af97-57bd26cee3b9": _DEST_USER,  # 9
    "38cbd42c-1098-41bb-99cf-9d6d2b296d83": ("dest",),  # 10
    "787e9dd0-4328-11ec-a029-acde48001122": _DEST_USER,  # 11
    "004e32e2-146d-11ec-a83f-acde48001122": _DEST_USER,  # 12
}

RiskObjects = str | Mapping[str, Sequence[str]] | None


def _objects_sql(
    con: duckdb.DuckDBPyConnection, cols: fnd.FindingColumns, risk_objects: RiskObjects
) -> str:
    """SQL expression giving each finding's list of risk-object field names: the argument,
    else the findings column, else the story table; a detection none of them knows scores
    ``dest`` only."""
    if isinstance(risk_objects, str):
        return f"coalesce(f.{q(risk_objects)}, ['dest'])"
    mapping: Mapping[str, Sequence[str]] = (
        risk_objects if risk_objects is not None else STORY_RISK_OBJECTS
    )
    det_id = f"lower(CAST(f.{q(cols.detection_id)} AS VARCHAR))"
    det_name = f"lower(CAST(f.{q(cols.detection)} AS VARCHAR))"
    whens = " ".join(
        f"WHEN {det_id} = {_lit(str(k).lower())} OR {det_name} = {_lit(str(k).lower())} "
        f"THEN [{', '.join(_lit(str(x)) for x in v)}]::VARCHAR[]"
        for k, v in mapping.items()
    )
    lookup = f"(CASE {whens} END)" if whens else "NULL::VARCHAR[]"
    if risk_objects is None and cols.risk_objects is not None:
        return f"coalesce(f.{q(cols.risk_objects)}, {lookup}, ['dest'])"
    return f"coalesce({lookup}, ['dest'])"


def _lit(text: str) -> str:
    """A SQL string literal (rule metadata, not event data, but quoted all the same)."""
    return "'" + text.replace("'", "''") + "'"


def _unpivot_sql(con: duckdb.DuckDBPyConnection, risk_objects: RiskObjects) -> str | None:
    """One row per (finding, risk object type, risk object value)."""
    cols = fnd.resolve(con)
    if cols is None:
        return None
    present = {c.lower(): c for c in table_columns(con, fnd.FINDINGS_TABLE)}
    objects = _objects_sql(con, cols, risk_objects)
    # The value of field F is column F of the finding (dest, user, or any other column).
    cases = " ".join(
        f"WHEN '{name}' THEN CAST(f.{q(col)} AS VARCHAR)"
        for name, col in present.items()
        if name.isidentifier()
    )
    return f"""
        SELECT lower(f._ro) AS object_type,
               CASE lower(f._ro) {cases} ELSE NULL END AS object,
               f.{q(cols.finding_id)} AS finding_id,
               coalesce(TRY_CAST(f.{q(cols.risk_score)} AS DOUBLE), 0) AS score,
               f.{q(cols.detection)} AS detection,
               f.{q(cols.mitre)} AS mitre,
               f.{q(cols.time)} AS time
        FROM (SELECT f.*, unnest({objects}) AS _ro FROM {fnd.FINDINGS_TABLE} AS f) AS f
    """


def risk_by_entity(
    con: duckdb.DuckDBPyConnection,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    risk_objects: RiskObjects = None,
    object_type: str | None = None,
    entity: str | None = None,
    entities: Sequence[tuple[str, str]] | None = None,
    limit: int | None = None,
    keyed: bool = False,
) -> list[dict[str, Any]]:
    """Entities ranked by total risk, distinct detections and distinct techniques.

    Each row: ``object_type`` (``dest``/``user``/...), ``object``, ``total_risk``,
    ``findings``, ``detections`` (distinct count), ``detection_names``, ``techniques``
    (distinct count), ``technique_ids``, ``first_time``, ``last_time``, ``flagged``.
    Entity names compare case-insensitively (``WIN-T`` and ``win-t`` are one host).
    ``object_type``/``entity`` filter one kind or one name; ``entities`` keeps only the
    given (type, name) pairs. ``keyed``: each row also has ``_key``, the lower-cased
    name entities are grouped by (see ``risk_index``).
    """
    source = _unpivot_sql(con, risk_objects)
    if source is None:
        return []
    where, params = [], {"threshold": float(threshold)}
    if object_type is not None:
        where.append("object_type = lower($otype)")
        params["otype"] = object_type
    if entity is not None:
        where.append("lower(object) = lower($entity)")
        params["entity"] = entity
    if entities is not None:
        pairs = [(t, e) for t, e in entities if t and e]
        if not pairs:
            return []
        ors = []
        for i, (otype, name) in enumerate(pairs):
            ors.append(f"(object_type = lower($t{i}) AND lower(object) = lower($e{i}))")
            params[f"t{i}"], params[f"e{i}"] = otype, name
        where.append("(" + " OR ".join(ors) + ")")
    sql = f"""
        WITH ro AS MATERIALIZED (
            SELECT * FROM ({source})
            WHERE object IS NOT NULL AND trim(object) NOT IN ('', '-', 'null')
            {"".join(" AND " + w for w in where)}
        ),
        techniques AS (
            SELECT object_type, key, count(DISTINCT t) AS techniques,
                   list_sort(list(DISTINCT t)) AS technique_ids
            FROM (SELECT object_type, lower(object) AS key,
                         unnest(coalesce(mitre, []::VARCHAR[])) AS t FROM ro)
            GROUP BY ALL
        ),
        agg AS (
            SELECT object_type, lower(object) AS key, min(object) AS object,
                   sum(score) AS total_risk, count(DISTINCT finding_id) AS findings,
                   count(DISTINCT detection) AS detections,
                   list_sort(list(DISTINCT detection)) AS detection_names,
                   min(time) AS first_time, max(time) AS last_time
            FROM ro GROUP BY ALL
        )
        SELECT a.object_type, a.object, a.total_risk, a.findings, a.detections,
               a.detection_names, coalesce(t.techniques, 0) AS techniques,
               coalesce(t.technique_ids, []::VARCHAR[]) AS technique_ids,
               a.first_time, a.last_time, a.total_risk >= $threshold AS flagged
               {", a.key AS _key" if keyed else ""}
        FROM agg a LEFT JOIN techniques t USING (object_type, key)
        ORDER BY a.total_risk DESC, a.detections DESC, techniques DESC, a.object_type, a.object
        {f"LIMIT {int(limit)}" if limit else ""}
    """
    found = rows(con, sql, params)
    for row in found:
        total = row["total_risk"]
        if isinstance(total, float) and total.is_integer():
            row["total_risk"] = int(total)
    return found


def risk_index(
    con: duckdb.DuckDBPyConnection, *, threshold: float = DEFAULT_THRESHOLD,
    risk_objects: RiskObjects = None,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Every entity's ``risk_by_entity`` row by (object type, lower-cased name): one query
    for a report instead of one per finding. Look a name up with ``index_key``."""
    found = risk_by_entity(con, threshold=threshold, risk_objects=risk_objects, keyed=True)
    return {(row["object_type"], row.pop("_key")): row for row in found}


def index_key(con: duckdb.DuckDBPyConnection, object_type: str, name: str) -> tuple[str, str]:
    """The ``risk_index`` key of an entity: the type and name as DuckDB lowers them."""
    return sql_lower(con, object_type), sql_lower(con, name)


def entity_risk(
    con: duckdb.DuckDBPyConnection, object_type: str, entity: str | None, **kwargs: Any
) -> dict[str, Any] | None:
    """Risk of one entity (None when it has no scored finding)."""
    if not entity:
        return None
    found = risk_by_entity(con, object_type=object_type, entity=entity, **kwargs)
    return found[0] if found else None


def top_entities(
    con: duckdb.DuckDBPyConnection, n: int = 5, **kwargs: Any
) -> list[dict[str, Any]]:
    """The ``n`` riskiest entities (for the end of a scan's terminal output)."""
    return risk_by_entity(con, limit=n, **kwargs)
