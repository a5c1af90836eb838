"""The scan's terminal view: escaped event text, grouping by host, counts, quiet mode."""

from __future__ import annotations

import io
import re

import report_fixtures as fx
from rich.console import Console

from wmihunt.report.terminal import render_scan

ANSI_CMD = "wmic.exe /node:x process call create " + fx.ANSI + " [bold red]markup[/bold red]"


def _render(findings, entities=None, *, accounting=None, width=200, **kw) -> str:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, color_system="truecolor", width=width)
    render_scan(
        console,
        fx.realistic_accounting() if accounting is None else accounting,
        findings,
        None,
        fx.realistic_entities() if entities is None else entities,
        **kw,
    )
    return buf.getvalue()


def _plain(text: str) -> str:
    """The output without rich's own SGR sequences (ESC [ ... m)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_ansi_escapes_in_event_fields_are_shown_not_sent():
    findings = fx.realistic_findings()
    findings[0]["process"] = ANSI_CMD
    findings[1]["user"] = "CORP\\\x1b[2Jevil\x07"
    findings[2]["dest"] = "srv\x1b]8;;http://x\x07link"
    out = _render(findings)
    plain = _plain(out)
    # rich colours the output itself (force_terminal): the only ESC bytes left are its SGRs
    assert "\x1b" not in plain
    assert "\x07" not in out
    assert "\\x1b[31mred\\x1b]0;title\\x07" in plain
    assert "CORP\\\\x1b[2Jevil\\x07" in plain
    assert "srv\\x1b]8;;http://x\\x07link" in plain
    assert "[bold red]markup[/bold red]" in plain  # markup shown literally, not applied


def test_control_and_bidi_characters_in_every_column():
    f = fx.realistic_findings()[3]
    f |= {"detection": "Det\x1b[5m", "user": "u\u202eevil", "process": "a\rb\x00c\x9bd"}
    plain = _plain(_render([f], entities=[{"entity": "h\x1bx", "entity_type": "host",
                                            "risk_total": 120, "flagged": True}]))  # fmt: skip
    assert "\x1b" not in plain and "\u202e" not in plain and "\x00" not in plain
    assert "\x9b" not in plain and "\r" not in plain
    assert "Det\\x1b[5m" in plain and "u\\u202eevil" in plain and "a\\rb\\x00c\\x9bd" in plain
    assert "h\\x1bx" in plain


def test_header_counts_hosts_and_time_span():
    plain = _plain(_render(fx.realistic_findings()))
    assert (
        "5 files · 210,142 records read (13,623 normalized, 196,517 skipped, 1 rejected)" in plain
    )
    assert "findings 2024-03-11 09:13:58 → 12:05:09 UTC on 3 hosts" in plain
    assert "logs/dc01/PowerShell.evtx: 1 error(s), first at record 7790" in plain


def test_overview_span_and_hosts_in_header():
    plain = _plain(
        _render(
            fx.realistic_findings(),
            overview={"first": "2024-03-10T00:00:00Z", "last": "2024-03-12T00:00:00Z",
                      "hosts": ["a", "b"], "hosts_count": 7},
        )
    )  # fmt: skip
    assert "events 2024-03-10 00:00:00 → 2024-03-12 00:00:00 UTC · 7 hosts" in plain


def test_findings_grouped_by_host_highest_risk_first():
    plain = _plain(_render(fx.realistic_findings()))
    dc = plain.index("dc01.corp.example  3 findings · risk 193")
    srv = plain.index("srv02.corp.example  4 findings · risk 190")
    ws = plain.index("ws01.corp.example  2 findings · risk 98")
    assert dc < srv < ws
    # rows of a host are under its title, before the next host
    assert dc < plain.index("Invoke-WMIExec") < srv
    assert srv < plain.index("payload.xsl") < ws


def test_footer_counts_per_detection_and_top_entities():
    plain = _plain(_render(fx.realistic_findings()))
    counts = plain[plain.index("findings per detection") :]
    assert re.search(r"Process Execution via WMI\s+TTP\s+49\s+2\s+1", counts)
    assert re.search(r"Windows WMI Process Call Create\s+Hunting\s+25\s+1\s+1", counts)
    top = plain[plain.index("top entities by risk") :]
    assert re.search(r"CORP\\adm\.jdoe\s+user\s+312\s+5\s+T1047, T1220\s+flagged", top)
    assert top.index("adm.jdoe") < top.index("srv02") < top.index("dc01") < top.index("ws01")
    assert "9 findings on 3 hosts · ATT&CK T1047, T1220, T1546.003" in plain
    assert "3 entities over the risk threshold" in plain


def test_summary_counts_override_and_risk_module_rows():
    rows = [{"object_type": "dest", "object": "SRV9", "total_risk": 150, "detections": 2,
             "detection_names": ["a", "b"], "techniques": 1, "technique_ids": ["T1047"],
             "flagged": True}]  # fmt: skip
    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system=None)
    render_scan(console, None, fx.realistic_findings()[:1], {fx.D5[0]: 7, "Not fired": 0}, rows)
    plain = buf.getvalue()
    assert "Not fired" not in plain
    assert re.search(r"Remote WMI Command Attempt\s+TTP\s+36\s+7\s+1", plain)
    assert re.search(r"SRV9\s+host\s+150\s+2\s+T1047\s+flagged", plain)


def test_row_cap_per_host():
    findings = [fx.realistic_findings()[0] | {"time": f"2024-03-11T10:00:{i:02d}Z"}
                for i in range(12)]  # fmt: skip
    plain = _plain(_render(findings, max_rows_per_host=5))
    assert "… 7 more on this host" in plain
    assert len(re.findall(r"^\s*2024-03-11 10:00:\d\d ", plain, re.MULTILINE)) == 5


def test_quiet_prints_nothing_and_empty_scan_says_so():
    assert _render(fx.realistic_findings(), quiet=True) == ""
    plain = _plain(_render([], entities=[]))
    assert "no findings" in plain and "0 findings on 0 hosts" in plain


def test_bad_values_do_not_raise():
    odd = {"detection": None, "risk_score": "high", "time": "yesterday", "dest": None,
           "mitre": None, "evidence": "x", "process": 12345}  # fmt: skip
    plain = _plain(_render([odd], entities=[{"entity": None, "risk_total": "?"}], accounting={}))
    assert "(no host)" in plain and "yesterday" in plain and "12345" in plain


def test_no_escape_byte_at_all_without_colours():
    """With colours off, rich writes no ESC of its own: any ESC would be the event's."""
    findings = fx.realistic_findings()
    findings[0]["process"] = ANSI_CMD
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, color_system=None, width=160)
    render_scan(console, fx.realistic_accounting(), findings, None, fx.realistic_entities())
    out = buf.getvalue()
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[31mred\\x1b]0;title\\x07" in out


def test_header_says_how_many_inputs_were_already_in_the_case(tmp_path) -> None:
    """A re-run with --db reads nothing: the header says why instead of '0 records'."""
    from pathlib import Path

    from wmihunt import ingest, store

    logs = Path(__file__).parents[1] / "samples" / "logs"
    con = store.connect(tmp_path / "case.duckdb")
    ingest.ingest_paths([str(logs)], con, workers=1)
    again = ingest.ingest_paths([str(logs)], con, workers=1).to_dict()
    con.close()
    assert again["totals"]["duplicates"] == again["totals"]["files"] == 8
    plain = _plain(_render([], accounting=again))
    assert "8 files · 8 already in the case (same content, not read again) · 0 records" in plain
    first = _plain(_render([], accounting=fx.realistic_accounting()))
    assert "already in the case" not in first
