"""Findings as JSON lines: one finding per line, stable field names and order.

The shape is the one ``docs/output.md`` documents and ``schemas/finding.schema.json``
validates. Control characters in event text are escaped by JSON itself (``\\u001b``), so
the file is also safe to ``cat`` on a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from ._io import Target, open_binary
from .fields import CORE_FIELDS, DETAIL_FIELDS, STANDARD_OUTPUT_FIELDS, evidence_of, iso_z

_OPTS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    """JSON for values orjson does not know (bad data never raises: fall back to text)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _plain(value: Any) -> Any:
    """``value`` with datetimes as ISO 8601 UTC 'Z' text (for the json fallback)."""
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; datetimes become ISO 8601 UTC with ``Z``."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTS)
    except (orjson.JSONEncodeError, TypeError):  # e.g. an int beyond 64 bits
        return json.dumps(_plain(value), default=_default, ensure_ascii=False).encode("utf-8")


def ordered_finding(finding: Mapping[str, Any], *, include_context: bool = True) -> dict[str, Any]:
    """The finding in output order: core fields, output fields, evidence, context.

    Core fields are always present (``finding_id`` only when the finding has one); then
    ``message_upstream`` and ``rule`` when given; output fields are kept as the detection
    gave them (standard ones first, others by name);
    ``evidence`` always has its six keys.
    """
    out: dict[str, Any] = {}
    for key in CORE_FIELDS:
        if key == "finding_id" and finding.get(key) is None:
            continue
        out[key] = finding.get(key)
    if not isinstance(out.get("mitre"), list):
        out["mitre"] = [] if out.get("mitre") is None else [str(out["mitre"])]
    for key in (*DETAIL_FIELDS, *STANDARD_OUTPUT_FIELDS):
        if key in finding:
            out[key] = finding[key]
    skip = {*out, "evidence", "context"}
    for key in sorted(k for k in finding if k not in skip):
        out[key] = finding[key]
    out["evidence"] = evidence_of(finding)
    if include_context and finding.get("context"):
        out["context"] = finding["context"]
    return out


def finding_line(finding: Mapping[str, Any], *, include_context: bool = True) -> bytes:
    """One JSON line (with its newline) for ``finding``."""
    return dumps(ordered_finding(finding, include_context=include_context)) + b"\n"


def write_jsonl(
    findings: Iterable[Mapping[str, Any]], target: Target, *, include_context: bool = True
) -> int:
    """Write one line per finding to ``target`` (path, ``-`` or open file); return the count."""
    count = 0
    with open_binary(target) as out:
        for finding in findings:
            out.write(finding_line(finding, include_context=include_context))
            count += 1
    return count
