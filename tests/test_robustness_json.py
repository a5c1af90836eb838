"""Hostile JSON lines: invalid UTF-8, NaN, a 100 MB line, deep nesting, and a wrong type
in every field of every dialect. Bad lines are rejected with their line number and reason;
no value of any type makes a reader or normalizer fail."""

from __future__ import annotations

import copy
import gzip
import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
from test_readers_helpers import collect, nxlog_line, one
from test_robustness_helpers import SAMPLES, invariants, sample_evtx

from fuzz.mutators import _WRONG, _paths, _set
from wmihunt.ingest import normalize_path
from wmihunt.normalize import is_relevant

GOOD = nxlog_line(RecordNumber=1)
MIB = 1 << 20


def _read(tmp_path: Path, data: bytes, name: str = "events.json") -> tuple[list, Any]:
    path = tmp_path / name
    path.write_bytes(data)
    invariants(path)
    events, entries = collect(path, want=is_relevant)
    return events, one(entries)


def _lines(*lines: str | bytes) -> bytes:
    return b"".join((x.encode() if isinstance(x, str) else x) + b"\n" for x in lines)


def test_invalid_utf8(tmp_path: Path) -> None:
    bad = GOOD.replace("whoami", "who\udcffami").encode("utf-8", "surrogateescape")
    events, stats = _read(tmp_path, _lines(GOOD, bad, GOOD))
    assert (len(events), stats.read, stats.rejected) == (2, 3, 1)
    assert stats.errors == [{
        "position": "line 2",
        "reason": "invalid UTF-8 (str is not valid UTF-8: surrogates not allowed: line 1 column "
                  "1 (char 0))",
    }]  # fmt: skip


def test_invalid_utf8_in_a_line_that_would_be_skipped(tmp_path: Path) -> None:
    """A skipped line is not decoded, but its UTF-8 is still checked."""
    bad = nxlog_line(EventID=3, Image="aXb").encode().replace(b"aXb", b"a\xffb")
    events, stats = _read(tmp_path, _lines(bad, nxlog_line(EventID=3), GOOD))
    assert (len(events), stats.read, stats.skipped, stats.rejected) == (1, 3, 1, 1)
    assert stats.errors[0]["position"] == "line 1"
    assert stats.errors[0]["reason"].startswith("invalid UTF-8")


def test_nan_and_infinity(tmp_path: Path) -> None:
    nan = GOOD.replace('"RecordNumber": 1', '"RecordNumber": NaN')
    inf = GOOD.replace('"RecordNumber": 1', '"RecordNumber": -Infinity')
    events, stats = _read(tmp_path, _lines(nan, GOOD, inf))
    assert (len(events), stats.read, stats.rejected) == (1, 3, 2)
    col = nan.index("NaN")
    assert stats.errors == [
        {"position": "line 1", "reason": "not valid JSON (NaN/Infinity are not JSON): unexpected "
         f"character, expected a JSON value: line 1 column {col + 1} (char {col})"},
        {"position": "line 3", "reason": "not valid JSON (NaN/Infinity are not JSON): no digit "
         f"after sign: line 1 column {col + 2} (char {col + 1})"},
    ]  # fmt: skip


def test_a_100_mb_line(tmp_path: Path) -> None:
    """Rejected as too long; memory holds at most one line's limit, never the line."""
    path = tmp_path / "huge.json"
    with open(path, "wb") as out:
        out.write(_lines(GOOD))
        out.write(GOOD[:-1].encode() + b', "Padding": "')
        chunk = b"A" * MIB
        for _ in range(100):
            out.write(chunk)
        out.write(b'"}\n')
        out.write(_lines(nxlog_line(RecordNumber=3)))
    tracemalloc.start()
    started = time.perf_counter()
    events, entries = collect(path, want=is_relevant)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stats = one(entries)
    assert [e.data["RecordNumber"] for e in events] == [1, 3]
    assert (stats.read, stats.rejected) == (3, 1)
    assert stats.errors == [{"position": "line 2",
                             "reason": "line longer than 67,108,864 bytes: not read"}]  # fmt: skip
    assert peak < 160 * MIB  # the 64 MiB limit (+ buffers), not 100 MB
    assert seconds < 20


def test_a_100_mb_line_compressed(tmp_path: Path) -> None:
    """The same line inside gzip (small on disk): same accounting."""
    body = GOOD[:-1].encode() + b', "Padding": "' + b"A" * (100 * MIB) + b'"}\n'
    data = gzip.compress(_lines(GOOD) + body + _lines(GOOD), 1, mtime=0)
    events, stats = _read(tmp_path, data, "huge.json.gz")
    # 100 MB of "A" compress 1000x: past the 100 MiB floor the bomb guard stops the
    # stream, so the line after it is lost, and said to be
    assert (len(events), stats.read, stats.rejected) == (1, 2, 1)
    assert stats.errors[0] == {
        "position": "line 2",
        "reason": "line longer than 67,108,864 bytes: not read",
    }
    assert stats.errors[1]["reason"].startswith(
        "gzip: refused as a possible decompression bomb: expanded size passed 104,857,600 bytes"
    )


def test_deeply_nested_values(tmp_path: Path) -> None:
    deep_list = GOOD.replace('"cmd.exe /c whoami"', "[" * 100_000 + "]" * 100_000)
    events, stats = _read(tmp_path, _lines(deep_list, GOOD))
    assert (len(events), stats.read, stats.rejected) == (1, 2, 1)
    col = deep_list.index("[") + 1024
    assert stats.errors == [{"position": "line 1", "reason": "JSON nested too deeply (depth "
                             f"limit exceeded: line 1 column {col + 1} (char {col}))"}]  # fmt: skip


def test_nesting_orjson_accepts_but_python_cannot_print(tmp_path: Path) -> None:
    """Regression (fuzzing): 1000 levels pass orjson (its limit is 1024) and then broke
    Python's str()/recursion in the readers and normalizers."""
    wrapped = '{"#text": ' * 1000 + '"calc.exe"' + "}" * 1000
    lists = "[" * 1000 + "]" * 1000
    lines = [
        GOOD.replace('"cmd.exe /c whoami"', wrapped),
        GOOD.replace('"cmd.exe /c whoami"', lists),
    ]
    event = {"Event": {"System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"},
                       "EventData": {"Image": "a", "CommandLine": "DEEP"}}}  # fmt: skip
    lines.append(json.dumps(event).replace('"DEEP"', lists))
    path = tmp_path / "deep.json"
    path.write_bytes(_lines(*lines))
    outcome = invariants(path)  # no internal error anywhere (readers, normalizers, Arrow)
    assert (outcome.read, outcome.normalized, outcome.rejected) == (3, 2, 1)
    rows: list[dict] = []
    normalize_path(str(path), lambda _t, b: rows.extend(b.to_pylist()))
    assert all(isinstance(r["process"], str) for r in rows)
    _, entries = collect(path)
    assert one(entries).errors == [
        {"position": "line 3", "reason": "event data nested deeper than 64 levels: not read"}
    ]


# -- a wrong type in every field ------------------------------------------------------
def _samples() -> list[dict[str, Any]]:
    """One event per relevant (channel, event id) from each JSON dialect of the samples,
    plus EVTX-as-JSON records: the shapes every reader and normalizer sees."""
    import evtx

    shapes: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    texts = [(SAMPLES / "srv01_winlogbeat.jsonl").read_bytes(),
             (SAMPLES / "dc01_nxlog.json").read_bytes(),
             gzip.decompress((SAMPLES / "ws02_falcon.jsonl.gz").read_bytes())]  # fmt: skip
    for name in ("ws01_security", "ws01_wmi_activity", "ws01_powershell", "ws01_sysmon"):
        path = Path(f"/dev/shm/wmihunt-test-{name}.evtx")
        path.write_bytes(sample_evtx(name))
        try:
            texts.append(b"\n".join(r["data"].encode() for r in
                                    evtx.PyEvtxParser(str(path)).records_json()))  # fmt: skip
        finally:
            path.unlink()
    for text in texts:
        for line in text.splitlines():
            obj = orjson.loads(line)
            key = (orjson.dumps(sorted(obj)).decode()[:40], _ident(obj))
            if key not in seen:
                seen.add(key)
                shapes.append(obj)
    return shapes


def _ident(obj: dict[str, Any]) -> str:
    for path in (("EventID",), ("winlog", "event_id"), ("event_simpleName",),
                 ("Event", "System", "EventID")):  # fmt: skip
        node: Any = obj
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            return str(node)
    return "?"


def test_wrong_type_in_every_field(tmp_path: Path) -> None:
    """Every field (at any depth) of every shape, given each of 18 values of other types
    (null, bool, numbers, huge ints, strings, lists, objects, terminal escapes...)."""
    lines: list[bytes] = []
    for shape in _samples():
        for path in _paths(shape):
            for value in _WRONG:
                obj = copy.deepcopy(shape)
                _set(obj, path, value)
                lines.append(orjson.dumps(obj))
    assert len(lines) > 5000
    path = tmp_path / "wrong.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    started = time.perf_counter()
    outcome = invariants(path)  # balanced, no internal error, every rejection explained
    assert outcome.read == len(lines)
    assert outcome.normalized + outcome.skipped + outcome.rejected == len(lines)
    assert outcome.normalized > len(lines) // 2  # most wrong values are kept as text
    assert time.perf_counter() - started < 30
    _, entries = collect(path, want=is_relevant)
    reasons = {e["reason"] for e in one(entries).errors}
    assert "EventID is not an integer: a list of 2 items" in reasons
    assert "winlog.event_id is not an integer: a JSON object of 1 items" in reasons
    assert "event_simpleName is not a name: None" in reasons
