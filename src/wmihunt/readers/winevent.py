"""Windows event in its JSON rendering (``{"Event": {"System": ..., "EventData": ...}}``).

This is the shape ``evtx``'s ``records_json()`` produces and that evtx_dump / SigmaHQ
regression ``.json`` files hold. Shared by the EVTX reader and the JSON reader.
"""

from __future__ import annotations

from typing import Any

from ..events import RawEvent

_ATTRS = "#attributes"
_TEXT = "#text"
#: Deepest nesting of event data accepted (Windows events have a few levels); deeper
#: records are rejected rather than recursed into (Python's stack is about 1000 frames).
MAX_DEPTH = 64


def describe(value: Any) -> str:
    """A short rendering of a bad value for a reason text (never a deep or huge repr)."""
    if isinstance(value, dict | list):
        return f"a {'JSON object' if isinstance(value, dict) else 'list'} of {len(value)} items"
    return repr(value)[:80]


def to_int(value: Any, what: str) -> int:
    """An integer field given as int or decimal string; ValueError with a reason otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
    if isinstance(value, dict) and _TEXT in value:  # {"#attributes": ..., "#text": 4625}
        return to_int(value[_TEXT], what)
    raise ValueError(f"{what} is not an integer: {describe(value)}")


def optional_int(value: Any) -> int | None:
    try:
        return None if value is None else to_int(value, "value")
    except ValueError:
        return None


def attr(node: Any, name: str) -> Any:
    """``node["#attributes"][name]`` when present."""
    if isinstance(node, dict):
        attrs = node.get(_ATTRS)
        if isinstance(attrs, dict):
            return attrs.get(name)
    return None


def clean(value: Any, depth: int = 0) -> Any:
    """Drop ``#attributes``; a node with only attributes and text becomes its text.

    ValueError for data nested deeper than ``MAX_DEPTH`` (the record is then rejected).
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"event data nested deeper than {MAX_DEPTH} levels: not read")
    if isinstance(value, dict):
        if _TEXT in value and all(k in (_ATTRS, _TEXT) for k in value):
            return clean(value[_TEXT], depth + 1)
        if _ATTRS in value and len(value) == 1:
            return None
        return {k: clean(v, depth + 1) for k, v in value.items() if k != _ATTRS}
    if isinstance(value, list):
        return [clean(v, depth + 1) for v in value]
    return value


def _unnamed_data(value: Any) -> list[Any]:
    value = clean(value)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def event_data(node: Any) -> dict[str, Any]:
    """EventData fields by name; ``Data`` entries without a Name as a list under ``Data``."""
    if node is None:
        return {}
    if not isinstance(node, dict):
        return {"Data": _unnamed_data(node)}
    out = dict(node)
    out.pop(_ATTRS, None)
    # text and numbers (nearly every value) need no cleaning: only the others are visited
    nested = [k for k, value in out.items() if type(value) not in _PLAIN and k != "Data"]
    for key in nested:
        out[key] = clean(out[key])
    if "Data" in out:
        out["Data"] = _unnamed_data(out["Data"])
    return out


#: Value types ``clean`` returns unchanged (``bool`` is not ``int`` here: still exact).
_PLAIN = frozenset({str, int, float, type(None)})


def user_data(node: Any) -> tuple[dict[str, Any], str | None]:
    """Fields of the single child element of UserData, and that element's name."""
    if not isinstance(node, dict):
        return ({} if node is None else {"UserData": clean(node)}), None
    children = [(k, v) for k, v in node.items() if k != _ATTRS]
    if len(children) == 1:
        name, child = children[0]
        if isinstance(child, dict):
            return {k: clean(v) for k, v in child.items() if k != _ATTRS}, name
        return {name: clean(child)}, name
    return {k: clean(v) for k, v in children}, None


def from_event_json(obj: Any, *, file: str, member: str | None, line: int | None) -> RawEvent:
    """Build a RawEvent from ``{"Event": {...}}``; ValueError with a reason if it is not one."""
    event = obj.get("Event") if isinstance(obj, dict) else None
    if not isinstance(event, dict):
        raise ValueError('no "Event" object')
    system = event.get("System")
    if not isinstance(system, dict):
        raise ValueError('no "Event.System" object')
    if "EventID" not in system:
        raise ValueError("no System/EventID")
    event_id = to_int(system["EventID"], "EventID")
    channel = system.get("Channel")
    element = None
    if "EventData" in event:
        data = event_data(event["EventData"])
    elif "UserData" in event:
        data, element = user_data(event["UserData"])
    else:
        data = {}
        for key, value in event.items():  # e.g. ProcessingErrorData, DebugData
            if key not in ("System", "RenderingInfo", _ATTRS) and isinstance(value, dict):
                data = event_data(value)
                element = key
                break
    rendering = event.get("RenderingInfo")
    message = rendering.get("Message") if isinstance(rendering, dict) else None
    computer = system.get("Computer")
    provider, sid = attr(system.get("Provider"), "Name"), attr(system.get("Security"), "UserID")
    return RawEvent(
        channel=channel if isinstance(channel, str) else "",
        event_id=event_id,
        data=data,
        provider=provider if isinstance(provider, str) else None,
        computer=computer if isinstance(computer, str) else None,
        time=attr(system.get("TimeCreated"), "SystemTime"),
        record_id=optional_int(system.get("EventRecordID")),
        user_sid=sid if isinstance(sid, str) else None,
        message=message if isinstance(message, str) else None,
        file=file,
        member=member,
        line=line,
        userdata_element=element,
    )
