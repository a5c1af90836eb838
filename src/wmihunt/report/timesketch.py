"""Findings as Timesketch-importable JSON lines.

Timesketch needs ``message``, ``datetime`` (ISO 8601) and ``timestamp_desc`` on every
line; ``timestamp`` (microseconds since the epoch) is added so it need not parse. The
finding's fields follow, flat (``evidence_file`` ..., ``mitre`` joined with ``,``) because
Timesketch searches flat attributes best. The finding's own message is kept as
``detection_message``; ``message`` is the one-line view Timesketch shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ._io import Target, open_binary
from .csv_out import flatten_finding
from .fields import mitre_list, parse_time
from .jsonl import dumps

TIMESTAMP_DESC = "Event Time"
#: Used when a finding has no usable time: it is still written, at the epoch, and says so.
NO_TIME_DESC = "No Event Time"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_timesketch(finding: Mapping[str, Any]) -> dict[str, Any]:
    """One Timesketch event for ``finding``."""
    when = parse_time(finding.get("time"))
    flat = flatten_finding(finding)
    message = finding.get("message")
    head = f"[{finding.get('type') or '?'} {finding.get('risk_score', '?')}] "
    head += str(finding.get("detection") or "finding")
    event: dict[str, Any] = {
        "message": f"{head}: {message}" if message else head,
        "datetime": (when or _EPOCH).isoformat(),
        "timestamp": ((when or _EPOCH) - _EPOCH) // timedelta(microseconds=1),
        "timestamp_desc": TIMESTAMP_DESC if when else NO_TIME_DESC,
    }
    flat.pop("message", None)
    flat["detection_message"] = message
    flat["mitre"] = ",".join(mitre_list(finding.get("mitre")))
    for key, value in flat.items():
        if key not in event:
            event[key] = value
    return event


def write_timesketch(findings: Iterable[Mapping[str, Any]], target: Target) -> int:
    """Write one Timesketch line per finding to ``target``; return the count."""
    count = 0
    with open_binary(target) as out:
        for finding in findings:
            out.write(dumps(to_timesketch(finding)) + b"\n")
            count += 1
    return count
