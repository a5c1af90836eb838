"""Value helpers of the normalizers: examples plus properties (hypothesis)."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wmihunt.normalize.fields import (
    as_text,
    basename,
    clean_sysmon_value,
    collapse_ws,
    join_account,
    opt,
    opt_sid,
    parse_int,
    parse_time,
    sysmon_escape,
    xml_unescape,
)

# --- basename ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (r"C:\Windows\System32\wbem\WMIC.exe", "WMIC.exe"),
        (r"\Device\HarddiskVolume3\Windows\System32\scrcons.exe", "scrcons.exe"),
        ("/usr/bin/python3", "python3"),
        (r"C:/mixed\sep/tool.EXE", "tool.EXE"),
        ("wmic.exe", "wmic.exe"),
        ("", ""),
        (None, None),
    ],
)
def test_basename(path: str | None, expected: str | None) -> None:
    assert basename(path) == expected


_segment = st.text(st.characters(blacklist_characters="\\/"), max_size=20)


@given(st.lists(_segment, min_size=1, max_size=6), st.sampled_from(["\\", "/"]))
def test_basename_is_last_segment(parts: list[str], sep: str) -> None:
    assert basename(sep.join(parts)) == parts[-1]


@given(_segment)
def test_basename_without_separator_is_whole_value(value: str) -> None:
    assert basename(value) == value


# --- ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0xf84", 3972),
        ("0XB2C", 2860),
        ("0x0", 0),
        ("2296", 2296),
        (" 42 ", 42),
        (7852, 7852),
        (12.0, 12),
        (12.5, None),
        (None, None),
        ("-", None),
        ("", None),
        ("0x", None),
        ("12ab", None),
        (True, None),
        ("0x" + "f" * 20, None),  # does not fit BIGINT
    ],
)
def test_parse_int(value: object, expected: int | None) -> None:
    assert parse_int(value) == expected


def test_parse_int_respects_column_width() -> None:
    assert parse_int("65535", bits=32) == 65535
    assert parse_int(str(2**31), bits=32) is None
    assert parse_int(str(2**63 - 1)) == 2**63 - 1
    assert parse_int(str(2**63)) is None


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_parse_int_hex_and_decimal_round_trip(n: int) -> None:
    assert parse_int(hex(n)) == n
    assert parse_int(str(n)) == n


@given(st.one_of(st.text(), st.integers(), st.floats(), st.none(), st.booleans()))
def test_parse_int_is_total(value: object) -> None:
    result = parse_int(value)
    assert result is None or (isinstance(result, int) and -(2**63) <= result < 2**63)


# --- times ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-03-04T05:06:07.123456Z", datetime(2021, 3, 4, 5, 6, 7, 123456)),
        ("2021-03-04T05:06:07.123456789Z", datetime(2021, 3, 4, 5, 6, 7, 123456)),
        ("2021-03-04T05:06:07Z", datetime(2021, 3, 4, 5, 6, 7)),
        ("2021-03-04T07:06:07.5+02:00", datetime(2021, 3, 4, 5, 6, 7, 500000)),
        ("2021-03-04T00:06:07-0500", datetime(2021, 3, 4, 5, 6, 7)),
        ("2021-03-04 05:06:07.290", datetime(2021, 3, 4, 5, 6, 7, 290000)),  # Sysmon UtcTime
        ("2021-03-04 05:06:07", datetime(2021, 3, 4, 5, 6, 7)),
        ("1615000000123", datetime(2021, 3, 6, 3, 6, 40, 123000)),  # epoch ms (Falcon)
        (1615000000123, datetime(2021, 3, 6, 3, 6, 40, 123000)),
        ("1615000000.25", datetime(2021, 3, 6, 3, 6, 40, 250000)),  # epoch s (ProcessStartTime)
        (1615000000, datetime(2021, 3, 6, 3, 6, 40)),
        (1615000000.5, datetime(2021, 3, 6, 3, 6, 40, 500000)),
        ("1615000000123456", datetime(2021, 3, 6, 3, 6, 40, 123456)),  # epoch µs
        ("1615000000123456789", datetime(2021, 3, 6, 3, 6, 40, 123456)),  # epoch ns
        ("2021-02-30T00:00:00Z", None),
        ("yesterday", None),
        ("", None),
        (None, None),
        (float("nan"), None),
        (-5, None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


def test_parse_time_converts_aware_datetimes_to_naive_utc() -> None:
    from datetime import timedelta, timezone

    aware = datetime(2021, 3, 4, 7, 0, tzinfo=timezone(timedelta(hours=2)))
    assert parse_time(aware) == datetime(2021, 3, 4, 5, 0)
    assert parse_time(datetime(2021, 3, 4, 5, 0)) == datetime(2021, 3, 4, 5, 0)


@given(st.text(max_size=100))
def test_parse_time_never_raises_on_text(value: str) -> None:
    result = parse_time(value)
    assert result is None or (isinstance(result, datetime) and result.tzinfo is None)


@given(st.one_of(st.integers(), st.floats(), st.none(), st.booleans(), st.binary(max_size=20)))
def test_parse_time_never_raises_on_other_values(value: object) -> None:
    result = parse_time(value)
    assert result is None or isinstance(result, datetime)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1)))
def test_parse_time_iso_round_trip(when: datetime) -> None:
    assert parse_time(when.isoformat() + "Z") == when
    assert parse_time(when.strftime("%Y-%m-%d %H:%M:%S.%f")) == when


def _by_regular_expression(text: str) -> datetime | None:
    """``parse_time``'s general path alone (the reference for its ``fromisoformat`` one)."""
    from wmihunt.normalize.fields import _ISO, _from_iso

    match = _ISO.fullmatch(text)
    try:
        return _from_iso(match) if match else None
    except (ValueError, OverflowError):
        return None


@st.composite
def _near_canonical(draw: st.DrawFn) -> str:
    """A canonical Windows time (``2021-03-04 05:06:07.123``, ``...T...Z``), often with
    one change: another character anywhere (separators, non-ASCII digits, spaces), a
    fraction of another length or with a comma, a zone."""
    when = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    text = when.strftime("%Y-%m-%d") + draw(st.sampled_from("T ")) + when.strftime("%H:%M:%S")
    text += draw(st.one_of(st.just(""), st.text(st.sampled_from("0123456789"), min_size=0,
                                                 max_size=12).map(lambda d: "." + d)))  # fmt: skip
    if draw(st.booleans()):
        at = draw(st.sampled_from([4, 7, 10, 13, 16, 19]) | st.integers(0, len(text) - 1))
        char = draw(st.sampled_from([*"05-:.,T_t/ xZ", "٣", "\u00a0"]))
        text = text[:at] + char + text[at + 1 :]
    return text + draw(st.sampled_from(["", "", "Z", "z", " ", "+02:00", "UTC", "ZZ"]))


@settings(max_examples=2000)
@given(_near_canonical())
def test_parse_time_fast_path_gives_the_regular_expressions_result(text: str) -> None:
    """Windows times in the canonical shape are read by ``fromisoformat``; on the canonical
    shape and everything near it (wrong separators, impossible dates, non-ASCII digits,
    long fractions, zones) the result is exactly the general path's."""
    assert parse_time(text) == _by_regular_expression(text)


# --- Sysmon 19-21 values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (' "C:\\\\Tools\\\\payload.exe"', "C:\\Tools\\payload.exe"),
        (' "Updater Filter"', "Updater Filter"),
        (
            ' "ActiveScriptEventConsumer.Name=\\"Sync Agent\\""',
            'ActiveScriptEventConsumer.Name="Sync Agent"',
        ),
        (
            ' "\\\\\\\\.\\\\root\\\\subscription:__EventFilter.Name=\\"f1\\""',
            '\\\\.\\root\\subscription:__EventFilter.Name="f1"',
        ),
        (' "root\\\\cimv2"', "root\\cimv2"),
        ("Command Line", "Command Line"),  # not quoted: nothing to undo
        (" plain", "plain"),
        (' ""', ""),
        ('"', '"'),
        (None, None),
    ],
)
def test_clean_sysmon_value(raw: str | None, expected: str | None) -> None:
    assert clean_sysmon_value(raw) == expected


@given(st.text(max_size=200))
def test_clean_sysmon_value_inverts_sysmon_rendering(value: str) -> None:
    assert clean_sysmon_value(sysmon_escape(value)) == value


@given(st.text(max_size=200))
def test_clean_sysmon_value_is_total(value: str) -> None:
    assert isinstance(clean_sysmon_value(value), str)


# --- XML escapes (NXLog) ----------------------------------------------------------------


def test_xml_unescape_decodes_the_five_entities_once() -> None:
    assert xml_unescape("a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;") == "a <b> & \"c\" 'd'"
    assert xml_unescape("&amp;lt;") == "&lt;"  # a literal "&lt;" written by NXLog
    assert xml_unescape("&#60; &nbsp; & alone") == "&#60; &nbsp; & alone"
    assert xml_unescape(None) is None


@given(st.text(max_size=100))
def test_xml_unescape_inverts_xml_escaping(value: str) -> None:
    from xml.sax.saxutils import escape

    assert xml_unescape(escape(value, {'"': "&quot;", "'": "&apos;"})) == value


# --- small text helpers -----------------------------------------------------------------


def test_placeholders_and_accounts() -> None:
    assert opt("-") is None
    assert opt("") is None
    assert opt(" - ") is None
    assert opt("x") == "x"
    assert opt(3) == "3"
    assert as_text("") == ""  # an empty value stays empty: it is not a missing one
    assert as_text({"#text": "v"}) == "v"
    assert opt_sid("NULL SID") is None
    assert opt_sid("S-1-0-0") is None
    assert opt_sid("S-1-5-18") == "S-1-5-18"
    assert join_account("CORP", "alice") == "CORP\\alice"
    assert join_account("-", "alice") == "alice"
    assert join_account("CORP", "-") is None
    assert join_account(None, None) is None
    assert collapse_ws("SELECT *\n\tFROM  x ") == "SELECT * FROM x"
