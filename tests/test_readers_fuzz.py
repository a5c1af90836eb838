"""Arbitrary damaged input never raises out of the readers and always balances."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from test_readers_helpers import collect, nxlog_line, xml_event

_BASES = [
    ("\n".join(nxlog_line(RecordNumber=n) for n in range(4)) + "\n").encode(),
    json.dumps([json.loads(nxlog_line(RecordNumber=n)) for n in range(3)], indent=1).encode(),
    "\n".join(xml_event(1, record=n) for n in range(3)).encode(),
]
_EDIT = st.tuples(st.integers(0, 4000), st.integers(0, 30), st.binary(max_size=6))


def _mutate(base: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(base)
    for at, drop, insert in edits:
        at %= len(data) + 1
        data[at : at + drop] = insert
    return bytes(data)


@settings(max_examples=150, deadline=None)
@given(
    base=st.sampled_from(_BASES),
    edits=st.lists(_EDIT, min_size=1, max_size=6),
    compress=st.booleans(),
    relevant=st.booleans(),
)
def test_damaged_input_is_accounted(
    base: bytes, edits: list[tuple[int, int, bytes]], compress: bool, relevant: bool
) -> None:
    data = _mutate(base, edits)
    if compress:  # and every third one cut short
        packed = gzip.compress(data)
        data = packed[: max(20, len(packed) // 2)] if len(data) % 3 == 0 else packed
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input"
        path.write_bytes(data)
        events, entries = collect(path, want=lambda c, e: relevant)  # asserts balance
    assert entries
    assert all(stats.normalized <= stats.read for stats in entries)
    assert len(events) == sum(stats.normalized for stats in entries)
