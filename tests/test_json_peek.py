"""``json_dialects.peek`` (the pre-decoding look at each JSON line) agrees with decoding.

The reader skips a line on peek's answer alone, so peek must never name another channel or
event id than ``to_event`` on the decoded line would; answering None is always allowed.
"""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from wmihunt.readers.json_dialects import peek, to_event

_ids = st.one_of(st.integers(0, 70000), st.integers(0, 70000).map(str), st.just("x"))
_channels = st.sampled_from(["Security", "Microsoft-Windows-Sysmon/Operational", "a\\b", ""])
_filler = st.dictionaries(
    st.sampled_from(["a", "Message", "EventID", "event_id", "Channel", "channel", "winlog"]),
    st.one_of(st.text(max_size=20), st.integers(-(2**63), 2**63 - 1), _ids),
    max_size=3,
)


def _nxlog(eid: object, channel: str, extra: dict) -> dict:
    return {**extra, "EventID": eid, "Channel": channel}


def _ecs(eid: object, channel: str, extra: dict) -> dict:
    return {"message": "m", **extra, "winlog": {"event_id": eid, "channel": channel}}


def _agrees(obj: dict) -> None:
    line = orjson.dumps(obj)
    ident = peek(line)
    if ident is None:
        return
    event = to_event(orjson.loads(line), file="f", member=None, line=1)
    assert (event.channel, event.event_id) == ident


@settings(max_examples=1000, deadline=None)
@given(_ids, _channels, _filler, st.booleans())
def test_peek_never_contradicts_decoding(eid: object, channel: str, extra: dict, ecs: bool) -> None:
    obj = (_ecs if ecs else _nxlog)(eid, channel, extra)
    try:
        _agrees(obj)
    except ValueError:  # to_event refuses the object: peek must not have answered then
        assert peek(orjson.dumps(obj)) is None


def test_peek_values() -> None:
    assert peek(b'{"EventID": 4688, "Channel": "Security"}') == ("Security", 4688)
    assert peek(b'{"Channel":"Security","EventID":"4688"}') == ("Security", 4688)
    line = b'{"message":"x","winlog":{"event_id":"1","channel":"Sysmon/Operational"}}'
    assert peek(line) == ("Sysmon/Operational", 1)
    # a second EventID key (nested) makes the answer uncertain: decode instead
    assert peek(b'{"EventID": 1, "Channel": "S", "x": {"EventID": 2}}') is None
    assert peek(b'{"EventID": 1, "x": 2}') is None  # no channel
    # found by the property test: "winlog" present but not an object -> decoded as NXLog,
    # so the ECS keys next to it must not decide (a decoy could hide a Sysmon 1 event)
    decoy = (b'{"channel":"x","winlog":"x","event_id":0,"EventID":1,'
             b'"Channel":"Microsoft-Windows-Sysmon/Operational"}')  # fmt: skip
    assert peek(decoy) is None
    event = to_event(orjson.loads(decoy), file="f", member=None, line=1)
    assert (event.channel, event.event_id) == ("Microsoft-Windows-Sysmon/Operational", 1)
    assert peek(b'{"winlog.channel":"Security","winlog.event_id":4688,"EventID":1,'
                b'"Channel":"x"}') is None  # flattened ECS: decoding rebuilds it  # fmt: skip
    assert peek(b'{"event_simpleName": "ProcessRollup2", "a": 1}') == (
        "CrowdStrike",
        "ProcessRollup2",
    )
