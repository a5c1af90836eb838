"""The finding's field names, their order and types: one place for every output format.

A finding is a plain dict (the JSONL shape of ``detect.finding_to_json``). The detection's
output fields are model columns (``models.py``), so their names and types come from there;
this module only fixes their *order* in flat outputs and adds the finding's own fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..models import MODELS

#: The finding's own fields, in output order. ``finding_id`` is present when the finding
#: comes from a case database; the others are always present (``user`` may be null).
CORE_FIELDS: tuple[str, ...] = (
    "finding_id",
    "detection",
    "detection_id",
    "type",
    "risk_score",
    "mitre",
    "message",
    "time",
    "dest",
    "user",
    "data_source",
)

#: Optional finding metadata the detection engine adds after the core fields: the upstream
#: message (when the story has one) and the Sigma rule that matched.
DETAIL_FIELDS: tuple[str, ...] = ("message_upstream", "rule")

#: Keys of the nested ``rule`` object.
RULE_FIELDS: tuple[str, ...] = ("id", "title", "source")

#: Keys of the nested ``evidence`` object, in output order.
EVIDENCE_FIELDS: tuple[str, ...] = ("file", "member", "record_id", "line", "channel", "event_id")

#: Output fields the story's detections produce, in the order flat outputs show them.
#: CSV always has these columns (empty when a detection does not output the field).
STANDARD_OUTPUT_FIELDS: tuple[str, ...] = (
    "process",
    "process_name",
    "process_path",
    "original_file_name",
    "process_id",
    "process_guid",
    "parent_process",
    "parent_process_name",
    "parent_process_path",
    "parent_process_id",
    "parent_process_guid",
    "parent_inferred",
    "user_id",
    "logon_id",
    "integrity_level",
    "kind",
    "operation",
    "name",
    "namespace",
    "query",
    "consumer_type",
    "consumer",
    "destination",
    "filter",
    "script_block_text",
    "script_block_id",
    "message_number",
    "message_total",
    "path",
)

#: Model columns that are never output fields: they are core fields or belong in evidence.
_NOT_OUTPUT = {"time", "dest", "user", "data_source", "message", "channel", "event_id"}


def _model_output_types() -> dict[str, str]:
    """Every model column that may appear as a finding output field -> its SQL type."""
    out: dict[str, str] = {}
    for model in MODELS.values():
        for col in model.columns:
            if col.name.startswith("ev_") or col.name in _NOT_OUTPUT:
                continue
            out.setdefault(col.name, col.sql_type)
    return out


#: Output field -> SQL type (VARCHAR, BIGINT, INTEGER, BOOLEAN, TIMESTAMP).
OUTPUT_FIELD_TYPES: dict[str, str] = _model_output_types()

#: Output fields that are not model columns, with their JSON types: a summary grouping
#: alias and the event's channel/EventID when a detection groups by them (EventID is an
#: integer for Windows events, text for CrowdStrike event names).
EXTRA_OUTPUT_TYPES: dict[str, tuple[str, ...]] = {
    "event_text": ("string", "null"),
    "channel": ("string", "null"),
    "event_id": ("integer", "string", "null"),
}

#: Known top-level keys of a finding (anything else is passed through, after these).
KNOWN_FIELDS: frozenset[str] = frozenset({*CORE_FIELDS, *OUTPUT_FIELD_TYPES, "evidence", "context"})

#: Fields whose text is the finding's payload, in the order a one-line view prefers them.
SUBJECT_FIELDS: tuple[str, ...] = (
    "process",
    "destination",
    "consumer",
    "query",
    "script_block_text",
    "name",
    "filter",
    "process_name",
)

#: Risk bands (lower bound, name): the story's scores are 25, 30, 36, 49, 63, 80, 100.
RISK_BANDS: tuple[tuple[int, str], ...] = ((80, "critical"), (49, "high"), (30, "medium"))


def risk_band(score: object) -> str:
    """``critical`` (>= 80), ``high`` (>= 49), ``medium`` (>= 30) or ``low``."""
    try:
        value = int(score)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return "low"
    for bound, name in RISK_BANDS:
        if value >= bound:
            return name
    return "low"


def as_int(value: object, default: int = 0) -> int:
    """``value`` as an int, ``default`` when it is not a number (bad data never raises)."""
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time (``...Z``, offset or naive UTC) or a datetime, as aware UTC; else None."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def iso_z(value: datetime) -> str:
    """``value`` (aware or naive UTC) as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def subject(finding: Mapping[str, Any]) -> str:
    """The one piece of event text that best says what happened (command line, payload...)."""
    for key in SUBJECT_FIELDS:
        value = finding.get(key)
        if value not in (None, ""):
            return str(value)
    return ""


def _shown(value: object) -> bool:
    """Worth showing: not null, empty, ``false`` (e.g. ``parent_inferred``) or an empty list."""
    return not (value is None or value is False or value in ("", [], {}))


def output_fields(finding: Mapping[str, Any]) -> list[str]:
    """The finding's output fields that have a value: standard order first, then the rest."""
    present = [k for k in STANDARD_OUTPUT_FIELDS if k in finding and _shown(finding[k])]
    fixed = {*CORE_FIELDS, *DETAIL_FIELDS, *STANDARD_OUTPUT_FIELDS, "evidence", "context"}
    present.extend(sorted(k for k in finding if k not in fixed and _shown(finding[k])))
    return present


def evidence_of(finding: Mapping[str, Any]) -> dict[str, Any]:
    """The evidence object with all its keys (missing ones as None)."""
    raw = finding.get("evidence")
    ev = raw if isinstance(raw, Mapping) else {}
    out = {k: ev.get(k) for k in EVIDENCE_FIELDS}
    out.update({k: v for k, v in ev.items() if k not in out})
    return out


def evidence_label(finding: Mapping[str, Any]) -> str:
    """``file[!member] record N`` / ``line N``: where the raw event is."""
    ev = evidence_of(finding)
    where = str(ev.get("file") or "?")
    if ev.get("member"):
        where += f"!{ev['member']}"
    if ev.get("record_id") is not None:
        where += f" record {ev['record_id']}"
    elif ev.get("line") is not None:
        where += f" line {ev['line']}"
    return where


def mitre_list(value: object) -> list[str]:
    """The ATT&CK ids of a finding as a list (a string or a list is accepted)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
    if isinstance(value, Iterable):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)]


def time_span(findings: Iterable[Mapping[str, Any]]) -> tuple[datetime | None, datetime | None]:
    """Earliest and latest finding time (None, None when no finding has a time)."""
    times = [t for t in (parse_time(f.get("time")) for f in findings) if t is not None]
    if not times:
        return None, None
    return min(times), max(times)


#: ``risk.risk_by_entity`` names the entity type by its field; reports say host/user.
_ENTITY_TYPES = {"dest": "host", "user": "user"}


def entity_fields(entity: Mapping[str, Any]) -> dict[str, Any]:
    """One risk row in the reports' terms, whichever shape it came in.

    Accepts the documented shape (``entity``, ``entity_type`` host|user, ``risk_total``,
    ``detections``, ``techniques``, ``flagged``) and ``wmihunt.risk.risk_by_entity`` rows
    (``object``, ``object_type`` dest|user, ``total_risk``, ``detections`` count,
    ``detection_names``, ``techniques`` count, ``technique_ids``, ``flagged``).
    """
    kind = entity.get("entity_type") or entity.get("object_type") or ""
    detections = entity.get("detection_names") or entity.get("detections")
    techniques = entity.get("technique_ids") or entity.get("techniques")
    total = entity.get("risk_total", entity.get("total_risk"))
    return {
        "entity": entity.get("entity", entity.get("object")),
        "entity_type": _ENTITY_TYPES.get(str(kind), str(kind)),
        "risk_total": as_int(total),
        "detections": detections,
        "detection_count": len(detections)
        if isinstance(detections, list | tuple | set)
        else as_int(detections),
        "techniques": techniques,
        "findings": entity.get("findings"),
        "flagged": bool(entity.get("flagged")),
    }
