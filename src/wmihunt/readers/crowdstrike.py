"""CrowdStrike Falcon events (FDR / event stream JSON objects with ``event_simpleName``)."""

from __future__ import annotations

import re
from typing import Any

from ..events import CROWDSTRIKE_CHANNEL, RawEvent
from .winevent import describe

#: Cheap pre-decoding look at a JSON line (see ``jsonl``).
MARKER = b'"event_simpleName"'
NAME = re.compile(rb'"event_simpleName"\s*:\s*"([A-Za-z0-9_]+)"')


def is_crowdstrike(obj: dict[str, Any]) -> bool:
    return "event_simpleName" in obj


def from_crowdstrike(
    obj: dict[str, Any], *, file: str, member: str | None, line: int | None
) -> RawEvent:
    """channel = ``CrowdStrike``, event_id = the event_simpleName, data = the whole object."""
    name = obj.get("event_simpleName")
    if not isinstance(name, str) or not name:
        raise ValueError(f"event_simpleName is not a name: {describe(name)}")
    computer = obj.get("ComputerName") or obj.get("aid_computer_name")
    time = obj.get("timestamp")
    if time in (None, ""):
        time = obj.get("ProcessStartTime")
    sid = obj.get("UserSid")
    return RawEvent(
        channel=CROWDSTRIKE_CHANNEL,
        event_id=name,
        data=obj,
        provider="CrowdStrike Falcon",
        computer=computer if isinstance(computer, str) else None,
        time=time,
        user_sid=sid if isinstance(sid, str) else None,
        file=file,
        member=member,
        line=line,
    )
