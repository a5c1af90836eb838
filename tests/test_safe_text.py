"""``visible``: attacker text made safe for a terminal or a page, and its fast path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wmihunt.report.safe_text import _UNSAFE, for_rich, visible


def test_every_character_the_escape_covers_is_non_printable():
    """``visible`` returns a printable string untouched: that is sound only if no
    character it escapes is printable (checked over every code point)."""
    assert not [c for c in map(chr, range(0x110000)) if _UNSAFE.match(c) and c.isprintable()]


def test_controls_bidi_and_newlines_become_visible_escapes():
    assert visible("a\x1b[31mb\u202ec\u200bd\x85e") == "a\\x1b[31mb\\u202ec\\u200bd\\x85e"
    assert visible("l1\r\nl2\tx") == "l1\\r\\nl2\\tx"
    assert visible("l1\nl2\x07", keep_newlines=True) == "l1\nl2\\x07"
    assert visible("C:\\Windows\\wmic.exe /node:\"ü\"") == "C:\\Windows\\wmic.exe /node:\"ü\""
    assert visible(None) == "" and visible(4688) == "4688"
    assert for_rich("[bold]x\x1b") == "\\[bold]x\\x1b"


@settings(max_examples=500)
@given(st.text(), st.booleans())
def test_no_unsafe_character_survives(text, keep_newlines):
    out = visible(text, keep_newlines=keep_newlines)
    assert not _UNSAFE.search(out)
    if not keep_newlines:
        assert not set("\r\n\t") & set(out)
