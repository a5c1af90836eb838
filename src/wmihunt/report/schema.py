"""The JSON Schema (Draft 2020-12) of one finding line, built from the model columns.

``schemas/finding.schema.json`` is this function's output, checked in so other tools can
use it; a test keeps the two equal. Regenerate with
``python -m wmihunt.report.schema > src/wmihunt/schemas/finding.schema.json``.

The schema is strict (``additionalProperties: false``): a new field in findings must be
added here (a model column is picked up automatically) and documented in docs/output.md.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from importlib import resources
from typing import Any

from ..models import MODELS
from .fields import CORE_FIELDS, EVIDENCE_FIELDS, EXTRA_OUTPUT_TYPES, OUTPUT_FIELD_TYPES

SCHEMA_ID = "urn:wmihunt:schema:finding:1"
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$"
MITRE_PATTERN = r"^T\d{4}(\.\d{3})?$"
DATA_SOURCES = ("sysmon", "security", "crowdstrike", "wmi_activity", "powershell")
CONTEXT_KEYS = ("tree", "origin", "subscription", "script", "activity", "risk")

_JSON_TYPE = {"VARCHAR": "string", "BIGINT": "integer", "INTEGER": "integer", "BOOLEAN": "boolean"}


def _column_doc(name: str) -> str:
    for model in MODELS.values():
        for col in model.columns:
            if col.name == name and col.doc:
                return col.doc
    return ""


def _output_property(name: str, sql_type: str) -> dict[str, Any]:
    if sql_type == "TIMESTAMP":
        prop: dict[str, Any] = {"type": ["string", "null"], "pattern": TIME_PATTERN}
    else:
        prop = {"type": [_JSON_TYPE[sql_type], "null"]}
    doc = _column_doc(name)
    if doc:
        prop["description"] = doc
    return prop


def build_finding_schema() -> dict[str, Any]:
    """The finding schema as a dict."""
    core: dict[str, Any] = {
        "finding_id": {
            "type": ["string", "integer"],
            "description": "id of the finding in the case database (absent without one)",
        },
        "detection": {"type": "string", "minLength": 1, "description": "upstream name"},
        "detection_id": {"type": "string", "minLength": 1, "description": "upstream id"},
        "type": {"type": "string", "minLength": 1, "description": "TTP | Hunting"},
        "risk_score": {"type": "integer", "minimum": 0},
        "mitre": {
            "type": "array",
            "items": {"type": "string", "pattern": MITRE_PATTERN},
            "description": "ATT&CK technique ids",
        },
        "message": {"type": "string"},
        "time": {
            "type": ["string", "null"],
            "pattern": TIME_PATTERN,
            "description": "event time, ISO 8601 UTC with Z; null only if the event had none",
        },
        "dest": {"type": ["string", "null"], "description": "host"},
        "user": {"type": ["string", "null"], "description": "account"},
        "data_source": {"enum": list(DATA_SOURCES)},
    }
    properties: dict[str, Any] = {k: core[k] for k in CORE_FIELDS}
    properties["message_upstream"] = {
        "type": ["string", "null"],
        "description": "the upstream alert message rendered; null when the story has none",
    }
    properties["rule"] = {"$ref": "#/$defs/rule"}
    outputs: dict[str, Any] = {
        name: _output_property(name, sql_type) for name, sql_type in OUTPUT_FIELD_TYPES.items()
    }
    outputs.update({name: {"type": list(types)} for name, types in EXTRA_OUTPUT_TYPES.items()})
    for name in sorted(outputs):
        properties[name] = outputs[name]
    properties["evidence"] = {"$ref": "#/$defs/evidence"}
    properties["context"] = {"$ref": "#/$defs/context"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "wmihunt finding (one line of the JSONL output)",
        "type": "object",
        "required": [k for k in CORE_FIELDS if k != "finding_id"] + ["evidence"],
        "properties": properties,
        "additionalProperties": False,
        "$defs": {
            "evidence": {
                "type": "object",
                "required": list(EVIDENCE_FIELDS),
                "properties": {
                    "file": {"type": "string", "description": "input file path"},
                    "member": {"type": ["string", "null"], "description": "archive member"},
                    "record_id": {
                        "type": ["integer", "null"],
                        "description": "EVTX EventRecordID or JSON RecordNumber",
                    },
                    "line": {
                        "type": ["integer", "null"],
                        "minimum": 1,
                        "description": "1-based line in a line-oriented input",
                    },
                    "channel": {"type": ["string", "null"]},
                    "event_id": {
                        "type": ["integer", "string", "null"],
                        "description": "Windows EventID (integer) or CrowdStrike event_simpleName",
                    },
                },
                "additionalProperties": False,
            },
            "rule": {
                "type": "object",
                "description": "the Sigma rule that matched",
                "properties": {
                    "id": {"type": ["string", "null"]},
                    "title": {"type": ["string", "null"]},
                    "source": {"type": ["string", "null"], "description": "story | user"},
                },
                "additionalProperties": False,
            },
            "context": {
                "type": "object",
                "description": "investigation context (present when it was computed)",
                "properties": {k: {} for k in CONTEXT_KEYS},
            },
        },
    }


def schema_text() -> str:
    """The schema as the checked-in file's text."""
    return json.dumps(build_finding_schema(), indent=2, ensure_ascii=False) + "\n"


@cache
def load_finding_schema() -> dict[str, Any]:
    """The shipped schema file (package data)."""
    path = resources.files("wmihunt") / "schemas" / "finding.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))


if __name__ == "__main__":
    sys.stdout.write(schema_text())
