"""Value helpers shared by the normalizers: paths, ids, times, Sysmon and NXLog escapes.

Every helper is total: whatever an attacker or a broken exporter wrote into a field, it
returns a value of the documented type or ``None``; it never raises.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

_EPOCH = datetime(1970, 1, 1)

#: Values Windows writes where a field has no value.
_PLACEHOLDERS = frozenset({"", "-"})
#: SIDs that mean "no account".
_NULL_SIDS = frozenset({"", "-", "NULL SID", "S-1-0-0"})


# --- text -------------------------------------------------------------------------------

#: ``{"#text": ...}`` wrappers unwrapped at most (real converters write one).
_MAX_TEXT_WRAPPING = 64


def as_text(value: Any) -> str | None:
    """The value as text, as the source wrote it; ``None`` stays ``None``.

    An empty string stays empty (a real, empty command line is not a missing one).
    A ``{"#text": ...}`` element (XML-to-JSON converters) gives its text.
    """
    if type(value) is str:  # the common case, first
        return value
    for _ in range(_MAX_TEXT_WRAPPING):  # {"#text": {"#text": ...}}, iteratively
        if not (isinstance(value, dict) and "#text" in value):
            break
        value = value["#text"]
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        return str(value)
    except RecursionError:  # a list/object nested about 1000 deep (JSON allows 1024)
        return f"[{type(value).__name__} nested too deeply to show]"


def opt(value: Any) -> str | None:
    """Text, or ``None`` when the source wrote a placeholder (``""`` or ``"-"``)."""
    text = value if type(value) is str else as_text(value)
    if text is None or text.strip() in _PLACEHOLDERS:
        return None
    return text


def opt_sid(value: Any) -> str | None:
    """A SID field, or ``None`` for the placeholders meaning "no account" (``NULL SID``...)."""
    text = as_text(value)
    if text is None or text.strip() in _NULL_SIDS:
        return None
    return text


def is_sid(value: str | None) -> bool:
    return bool(value) and value[:4].upper() == "S-1-"  # type: ignore[index]


def join_account(domain: Any, name: Any) -> str | None:
    """``DOMAIN\\name``; just ``name`` without a domain; ``None`` without a name."""
    n = opt(name)
    if n is None:
        return None
    d = opt(domain)
    return f"{d}\\{n}" if d is not None else n


def collapse_ws(value: str | None) -> str | None:
    """Runs of whitespace (tabs, newlines) as one space, ends trimmed."""
    if value is None:
        return None
    return " ".join(value.split())


# --- paths ------------------------------------------------------------------------------


def basename(path: Any) -> str | None:
    """Last component of a Windows, NT device (``\\Device\\HarddiskVolume1\\...``) or
    forward-slash path; a value without a separator is returned whole. Case is kept."""
    text = as_text(path)
    if text is None:
        return None
    cut = max(text.rfind("\\"), text.rfind("/"))
    return text[cut + 1 :] if cut >= 0 else text


# --- numbers ----------------------------------------------------------------------------

_DEC = re.compile(r"[+-]?\d+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")


def parse_int(value: Any, bits: int = 64) -> int | None:
    """Hex (``0xf84``) or decimal id/number as int; ``None`` for a placeholder, garbage,
    or a value that does not fit a signed integer of ``bits`` bits (the column type)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        n = int(value)
    else:
        text = as_text(value)
        if text is None:
            return None
        text = text.strip()
        if _HEX.fullmatch(text):
            n = int(text[2:], 16)
        elif _DEC.fullmatch(text) and len(text) < 40:
            n = int(text)
        else:
            return None
    limit = 1 << (bits - 1)
    return n if -limit <= n < limit else None


# --- times ------------------------------------------------------------------------------

_ISO = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,30}))?)?)?"
    r"\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*"
)
_NUMBER = re.compile(r"\s*\d{1,30}(?:\.\d{1,30})?\s*")


def parse_time(value: Any) -> datetime | None:
    """Naive UTC datetime from the shapes sources write, else ``None`` (never raises).

    - ISO 8601 with ``T`` or a space, optional fraction (beyond microseconds truncated),
      optional ``Z``/offset (converted to UTC); no zone means UTC (Sysmon ``UtcTime``).
    - Epoch numbers (int, float or digit text), unit chosen by magnitude: seconds
      (CrowdStrike ``ProcessStartTime``), milliseconds (``timestamp``), micro-, nanoseconds.
    - ``datetime`` objects: aware ones converted to UTC.
    """
    try:
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return value
        if isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                return None
            return _from_epoch(Decimal(value))
        text = as_text(value)
        if text is None or len(text) > 80:
            return None
        if len(text) >= 19:
            fast = _canonical_iso(text)
            if fast is not None:
                return fast
        if _NUMBER.fullmatch(text):
            return _from_epoch(Decimal(text.strip()))
        match = _ISO.fullmatch(text)
        return _from_iso(match) if match else None
    except (ValueError, OverflowError, ArithmeticError, InvalidOperation):
        return None


def _canonical_iso(text: str) -> datetime | None:
    """The shape nearly every Windows time has (EVTX ``SystemTime``, Sysmon ``UtcTime``):
    ASCII ``YYYY-MM-DD[T ]hh:mm:ss[.f{1,9}][Z]``, read by ``datetime.fromisoformat`` (C,
    about 10x the regular expression). ``None`` for anything else, an impossible date
    included: the regular expression then decides, so the result is always its result."""
    body = text[:-1] if text[-1] == "Z" else text
    n = len(body)
    if not (n == 19 or (21 <= n <= 29 and body[19] == ".")):
        return None
    if (body[4], body[7], body[13], body[16]) != ("-", "-", ":", ":") or body[10] not in "T ":
        return None
    digits = body[:4] + body[5:7] + body[8:10] + body[11:13] + body[14:16] + body[17:19] + body[20:]
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return datetime.fromisoformat(body)  # no zone in ``body``: naive, as UTC
    except ValueError:
        return None


def _from_epoch(number: Decimal) -> datetime | None:
    if number < 0:
        return None
    if number < Decimal(10) ** 11:
        micros = number * 1_000_000
    elif number < Decimal(10) ** 14:
        micros = number * 1_000
    elif number < Decimal(10) ** 17:
        micros = number
    else:
        micros = number / 1_000
    return _EPOCH + timedelta(microseconds=int(micros))


def _from_iso(match: re.Match[str]) -> datetime:
    year, month, day, hour, minute, second, frac, zone = match.groups()
    micro = int((frac or "")[:6].ljust(6, "0"))
    result = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro
    )
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        result = result - offset if zone[0] == "+" else result + offset
    return result


# --- escapes ----------------------------------------------------------------------------

_SYSMON_ESCAPE = re.compile(r'\\([\\"])')


def clean_sysmon_value(value: Any) -> str | None:
    """Undo Sysmon's rendering of WMI (19/20/21) values: one leading space, surrounding
    double quotes, backslash-escaped ``\\`` and ``"``.

    `` "C:\\\\Windows\\\\notepad.exe"`` -> ``C:\\Windows\\notepad.exe``. Escapes are
    undone only inside a quoted value (an unquoted value was not escaped by Sysmon).
    """
    text = as_text(value)
    if text is None:
        return None
    if text.startswith(" "):
        text = text[1:]
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return _SYSMON_ESCAPE.sub(r"\1", text[1:-1])
    return text


def sysmon_escape(value: str) -> str:
    """Inverse of ``clean_sysmon_value`` (how Sysmon renders a WMI value); for tests."""
    return ' "' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_XML_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&apos;": "'"}
_XML_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|apos);")


def xml_unescape(value: str | None) -> str | None:
    """Decode the five predefined XML entities in one pass (``&amp;lt;`` -> ``&lt;``).

    NXLog's ``im_msvistalog`` leaves them literally in EventData values."""
    if value is None or "&" not in value:
        return value
    return _XML_ENTITY.sub(lambda m: _XML_ENTITIES[m.group(0)], value)
