"""The one record type that readers hand to the normalizers.

Readers turn every input format (EVTX, Windows XML, JSON dialects, CrowdStrike) into
``RawEvent`` objects; normalizers turn ``RawEvent`` objects into model rows. Neither side
knows the other's formats: this module is the whole contract between them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Channel name used for CrowdStrike Falcon events (they have no Windows channel).
CROWDSTRIKE_CHANNEL = "CrowdStrike"

#: ``(channel, event_id) -> bool``: does any normalizer want this event?
#: Readers call it *before* decoding a record fully, so irrelevant records cost little.
#: ``channel`` is compared case-insensitively by the implementation.
Relevance = Callable[[str, "int | str"], bool]


@dataclass(slots=True)
class RawEvent:
    """One input event, in a format-neutral shape.

    ``data`` holds the event's named fields, flattened: Windows ``EventData/Data[@Name]``,
    the single child element of ``UserData`` (its fields, not the wrapper), the
    ``winlog.event_data`` of Winlogbeat/ECS, NXLog's flat fields, or the whole CrowdStrike
    object. Values are kept as the source gave them (str, int, ...); normalizers convert.
    """

    channel: str
    #: Windows EventID (int); for CrowdStrike the ``event_simpleName`` (str).
    event_id: int | str
    data: dict[str, Any]
    provider: str | None = None
    computer: str | None = None
    #: System time as written by the source (ISO 8601, "YYYY-MM-DD hh:mm:ss.fff",
    #: epoch ms ...); normalizers parse it.
    time: Any = None
    record_id: int | None = None
    #: ``System/Security/@UserID`` (a SID) when present.
    user_sid: str | None = None
    #: Rendered message text, when the source carries one (NXLog, Splunk classic).
    message: str | None = None
    #: Evidence: input file, archive member (or None), 1-based line for line formats.
    file: str = ""
    member: str | None = None
    line: int | None = None
    #: Name of the UserData child element (e.g. ``Operation_ESStoConsumerBinding``).
    userdata_element: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
