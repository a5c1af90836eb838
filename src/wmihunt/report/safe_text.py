"""Make attacker-controlled text safe to print on a terminal.

Event fields were written by an attacker's process (ARCHITECTURE decision 7): an ANSI
escape in a command line must be shown, never interpreted. Control characters become
visible escapes (``\\x1b``), and rich markup is escaped so ``[red]`` stays literal.
"""

from __future__ import annotations

import re

from rich.markup import escape as _escape_markup

# C0 controls except tab/newline, DEL, C1 controls, and bidi/zero-width format characters
# that can reorder or hide text on a terminal.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object, *, keep_newlines: bool = False) -> str:
    """Return ``text`` with every control/format character replaced by a visible escape."""
    if text is None:
        return ""
    s = str(text)
    if s.isprintable():  # no control or format character at all: most fields (fast path)
        return s
    if not keep_newlines:
        s = s.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return _UNSAFE.sub(_visible, s)


def for_rich(text: object, *, limit: int | None = None, keep_newlines: bool = False) -> str:
    """Escape ``text`` for a rich renderable: control chars made visible, markup escaped."""
    s = visible(text, keep_newlines=keep_newlines)
    if limit is not None and len(s) > limit:
        s = s[: max(0, limit - 1)] + "…"
    return _escape_markup(s)
