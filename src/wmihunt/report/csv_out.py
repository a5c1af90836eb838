"""Findings and the upstream-style summary as CSV (flat columns, one header row).

Columns are stable: the core fields, ``message_upstream`` and ``rule_id/title/source``,
every standard output field (empty when a detection does not output it), any other output
field present in the data (by name), then the evidence flattened as ``evidence_file``,
``evidence_member`` ... Lists are joined with
``;``, booleans are ``true``/``false``, null is an empty cell.

Event text is hostile: with ``excel_safe`` (the default) a cell that starts with
``= + - @`` or a tab/CR gets a leading ``'`` so a spreadsheet shows it instead of running
it as a formula (OWASP "CSV injection"). Pass ``excel_safe=False`` for byte-exact values.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ._io import Target, open_text
from .fields import CORE_FIELDS, EVIDENCE_FIELDS, RULE_FIELDS, STANDARD_OUTPUT_FIELDS, iso_z
from .jsonl import dumps

EVIDENCE_COLUMNS: tuple[str, ...] = tuple(f"evidence_{k}" for k in EVIDENCE_FIELDS)
#: ``message_upstream`` and the matched rule, flattened.
DETAIL_COLUMNS: tuple[str, ...] = ("message_upstream", *(f"rule_{k}" for k in RULE_FIELDS))

#: Summary columns that come first, in this order, when present.
SUMMARY_LEAD: tuple[str, ...] = (
    "detection",
    "detection_id",
    "count",
    "firstTime",
    "lastTime",
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any, *, excel_safe: bool = True) -> str:
    """One CSV cell: text for any value, formula-neutralized when ``excel_safe``."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = iso_z(value)
    elif isinstance(value, list | tuple):
        text = ";".join("" if v is None else str(v) for v in value)
    elif isinstance(value, Mapping):
        text = dumps(value).decode("utf-8")
    else:
        text = str(value)
    if excel_safe and text.startswith(_FORMULA_START):
        text = "'" + text
    return text


def _flat_keys(finding: Mapping[str, Any]) -> list[str]:
    keys = []
    for key, value in finding.items():
        if key in ("evidence", "context"):
            continue
        if isinstance(value, Mapping):
            keys.extend(f"{key}_{sub}" for sub in value)
        else:
            keys.append(key)
    return keys


def csv_columns(findings: Sequence[Mapping[str, Any]]) -> list[str]:
    """The header for ``findings``: fixed columns plus any extra output field present."""
    fixed = [*CORE_FIELDS, *DETAIL_COLUMNS, *STANDARD_OUTPUT_FIELDS]
    extras = sorted({k for f in findings for k in _flat_keys(f)} - set(fixed))
    return [*fixed, *extras, *EVIDENCE_COLUMNS]


def flatten_finding(finding: Mapping[str, Any]) -> dict[str, Any]:
    """The finding as one flat dict: nested objects become ``<key>_<sub>`` (``evidence_file``,
    ``rule_id`` ...); ``context`` is left out (it is in the JSONL and HTML outputs)."""
    flat: dict[str, Any] = {}
    for key, value in finding.items():
        if key in ("evidence", "context"):
            continue
        if isinstance(value, Mapping):
            for sub, sub_value in value.items():
                flat[f"{key}_{sub}"] = sub_value
        else:
            flat[key] = value
    evidence = finding.get("evidence")
    ev = evidence if isinstance(evidence, Mapping) else {}
    for key in EVIDENCE_FIELDS:
        flat[f"evidence_{key}"] = ev.get(key)
    for key, value in ev.items():
        flat.setdefault(f"evidence_{key}", value)
    return flat


def write_csv(
    findings: Iterable[Mapping[str, Any]], target: Target, *, excel_safe: bool = True
) -> int:
    """Write the findings as CSV to ``target`` (path, ``-`` or open text file); return rows."""
    rows = list(findings)
    columns = csv_columns(rows)
    with open_text(target) as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        for finding in rows:
            flat = flatten_finding(finding)
            writer.writerow([cell(flat.get(c), excel_safe=excel_safe) for c in columns])
    return len(rows)


def summary_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Lead columns present in the rows, then the others in order of first appearance."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    lead = [c for c in SUMMARY_LEAD if c in seen]
    return [*lead, *(c for c in seen if c not in lead)]


def write_summary_csv(
    rows: Iterable[Mapping[str, Any]], target: Target, *, excel_safe: bool = True
) -> int:
    """Write the upstream-style summary rows (one per grouping tuple) as one CSV.

    Each detection groups by its own fields, so the header is the union of the rows' keys;
    a row leaves the columns of other detections empty.
    """
    data = list(rows)
    columns = summary_columns(data)
    with open_text(target) as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        for row in data:
            writer.writerow([cell(row.get(c), excel_safe=excel_safe) for c in columns])
    return len(data)
