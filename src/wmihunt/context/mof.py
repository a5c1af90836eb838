"""Parse the MOF instance text WMI-Activity 5861 puts in ``PossibleCause``.

Example (shortened)::

    Binding EventFilter:
    instance of __EventFilter
    {
        CreatorSID = {1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 148, 201, ...};
        EventNamespace = "root/cimv2";
        Name = "Evil Persistence";
        Query = "select * from Win32_ProcessStartTrace where ProcessName='notepad.exe'";
    };
    Perm. Consumer:
    instance of CommandLineEventConsumer
    { CommandLineTemplate = "powershell -Sta ..."; Name = "Evil Persistence"; };

A hand-written scanner (no regex backtracking over attacker text, no eval): strings with
backslash escapes, ``{...}`` arrays, bare words. Malformed text yields what was parsed.
"""

from __future__ import annotations

import re
from typing import Any

_INSTANCE = re.compile(r"instance\s+of\s+([A-Za-z_]\w*)\s*\{")
_KEY = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'"}

#: Keys that carry a consumer's payload, by consumer class (any class: first present wins).
PAYLOAD_KEYS = (
    "CommandLineTemplate", "ExecutablePath", "ScriptText", "ScriptFileName", "Text",
    "FileName", "Message",
)


def _string(text: str, i: int) -> tuple[str, int]:
    """Read a quoted string starting at ``text[i] == '"'``; return (value, index after)."""
    out: list[str] = []
    i += 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    return "".join(out), n


def _array(text: str, i: int) -> tuple[list[str], int]:
    """Read ``{a, "b", c}``; return the items as text."""
    items: list[str] = []
    i += 1
    n = len(text)
    current: list[str] = []
    while i < n:
        ch = text[i]
        if ch == '"':
            value, i = _string(text, i)
            current.append(value)
            continue
        if ch in ",}":
            item = "".join(current).strip()
            if item:
                items.append(item)
            current = []
            i += 1
            if ch == "}":
                return items, i
            continue
        current.append(ch)
        i += 1
    return items, n


def parse_instances(text: str | None) -> list[dict[str, Any]]:
    """Every ``instance of Class { Key = value; ... };`` in ``text``, as dicts with a
    ``__class`` key. Values: str, list[str] (arrays), or the bare word as text."""
    if not text:
        return []
    found: list[dict[str, Any]] = []
    pos = 0
    n = len(text)
    while pos < n:
        match = _INSTANCE.search(text, pos)
        if match is None:
            break
        inst: dict[str, Any] = {"__class": match.group(1)}
        i = match.end()
        while i < n:
            while i < n and text[i] in " \t\r\n;":
                i += 1
            if i >= n or text[i] == "}":
                i += 1
                break
            key = _KEY.match(text, i)
            if key is None:  # not "Key = value": skip to the next statement
                nxt = text.find(";", i)
                i = n if nxt < 0 else nxt + 1
                continue
            i = key.end()
            if i < n and text[i] == '"':
                value: Any
                value, i = _string(text, i)
            elif i < n and text[i] == "{":
                value, i = _array(text, i)
            else:
                end = i
                while end < n and text[end] not in ";}\r\n":
                    end += 1
                value, i = text[i:end].strip(), end
            inst[key.group(1)] = value
        found.append(inst)
        pos = i
    return found


def sid_from_bytes(values: Any) -> str | None:
    """A binary SID given as a MOF byte array (``CreatorSID``) as ``S-1-5-21-...``."""
    if not isinstance(values, list):
        return None
    try:
        raw = bytes(int(v) for v in values)
    except (TypeError, ValueError):
        return None
    if len(raw) < 8 or raw[0] != 1 or len(raw) < 8 + 4 * raw[1]:
        return None
    authority = int.from_bytes(raw[2:8], "big")
    subs = [int.from_bytes(raw[8 + 4 * k : 12 + 4 * k], "little") for k in range(raw[1])]
    return "S-1-" + "-".join(str(x) for x in [authority, *subs])


def parse_binding_cause(text: str | None) -> dict[str, Any]:
    """The filter and consumer of a 5861 ``PossibleCause`` as flat fields (missing: absent)."""
    out: dict[str, Any] = {}
    for inst in parse_instances(text):
        cls = inst["__class"]
        if cls == "__EventFilter":
            out["filter_name"] = inst.get("Name")
            out["query"] = inst.get("Query")
            out["query_language"] = inst.get("QueryLanguage")
            out["event_namespace"] = inst.get("EventNamespace")
            if sid := sid_from_bytes(inst.get("CreatorSID")):
                out["creator_sid"] = sid
        elif cls.endswith("EventConsumer") or "consumer_class" not in out:
            out["consumer_class"] = cls
            out["consumer_name"] = inst.get("Name")
            out["payload_key"], out["payload"] = next(
                ((k, inst[k]) for k in PAYLOAD_KEYS if isinstance(inst.get(k), str)),
                (None, None),
            )
            if inst.get("ScriptingEngine"):
                out["scripting_engine"] = inst["ScriptingEngine"]
            if "creator_sid" not in out and (sid := sid_from_bytes(inst.get("CreatorSID"))):
                out["creator_sid"] = sid
    return {k: v for k, v in out.items() if v is not None}
