"""The scan's terminal view: what was read, findings per host coloured by risk, totals.

Every event field goes through ``safe_text.visible`` and into a ``rich.text.Text`` (which
never parses markup), so an ANSI escape or ``[red]`` in a command line is shown, not
interpreted. The CLI decides where this goes: in quiet or machine modes it does not call
``render_scan`` or passes a ``Console(stderr=True)``; nothing here prints anywhere else.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .fields import (
    as_int,
    entity_fields,
    mitre_list,
    parse_time,
    risk_band,
    subject,
    time_span,
)
from .safe_text import visible

#: Style per risk band.
RISK_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
}
#: Longest event text shown in a table cell (the files and the HTML report have it all).
CELL_LIMIT = 200


def _t(value: object, style: str = "", limit: int | None = CELL_LIMIT) -> Text:
    """Event text made safe: control characters visible, no markup, length bounded."""
    text = visible(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return Text(text, style=style)


def _fmt_time(value: object) -> str:
    parsed = parse_time(value)
    if parsed is None:
        return visible(value) if value else "-"
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def _fmt_span(first: datetime | None, last: datetime | None) -> str:
    if first is None or last is None:
        return "no time"
    if first.date() == last.date():
        return f"{first:%Y-%m-%d %H:%M:%S} → {last:%H:%M:%S} UTC"
    return f"{first:%Y-%m-%d %H:%M:%S} → {last:%Y-%m-%d %H:%M:%S} UTC"


def _host_key(finding: Mapping[str, Any]) -> str:
    return str(finding.get("dest") or "(no host)")


def header(
    accounting: Mapping[str, Any] | None,
    findings: Sequence[Mapping[str, Any]],
    overview: Mapping[str, Any] | None = None,
) -> Group:
    """What was read: files, records and their fate, time span, hosts; then file errors."""
    totals = (accounting or {}).get("totals") or {}
    files = as_int(totals.get("files"))
    line = Text()
    line.append("wmihunt  ", style="bold")
    line.append(f"{files:,} file{'s' if files != 1 else ''} · ")
    duplicates = as_int(totals.get("duplicates"))
    if duplicates:
        line.append(f"{duplicates:,} already in the case (same content, not read again) · ",
                    style="dim")  # fmt: skip
    line.append(f"{as_int(totals.get('read')):,} records read ")
    line.append(
        f"({as_int(totals.get('normalized')):,} normalized, "
        f"{as_int(totals.get('skipped')):,} skipped, ",
        style="dim",
    )
    rejected = as_int(totals.get("rejected"))
    line.append(f"{rejected:,} rejected", style="bold yellow" if rejected else "dim")
    line.append(")", style="dim")

    span = Text()
    if overview and (overview.get("first") or overview.get("last")):
        span.append("events ")
        span.append(_fmt_span(parse_time(overview.get("first")), parse_time(overview.get("last"))))
        hosts = as_int(overview.get("hosts_count", len(overview.get("hosts") or ())))
        span.append(f" · {hosts:,} host{'s' if hosts != 1 else ''}")
        span.append(" · ")
    first, last = time_span(findings)
    finding_hosts = {_host_key(f) for f in findings}
    span.append(f"findings {_fmt_span(first, last) if findings else 'none'}")
    if findings:
        span.append(f" on {len(finding_hosts)} host{'s' if len(finding_hosts) != 1 else ''}")

    parts: list[Any] = [line, span]
    for entry in (accounting or {}).get("files") or []:
        errors = entry.get("errors") or []
        if not errors:
            continue
        warn = Text("  ! ", style="bold yellow")
        warn.append_text(_t(entry.get("path"), "yellow", limit=120))
        first_error = errors[0] if isinstance(errors[0], Mapping) else {"reason": errors[0]}
        warn.append(f": {len(errors) + as_int(entry.get('errors_not_listed'))} error(s), first at ")
        warn.append_text(_t(first_error.get("position"), limit=60))
        warn.append(": ")
        warn.append_text(_t(first_error.get("reason"), limit=120))
        parts.append(warn)
    return Group(*parts)


def host_tables(
    findings: Sequence[Mapping[str, Any]], *, max_rows_per_host: int | None = 50
) -> list[Table]:
    """One table per host, hosts by total risk (highest first), rows by time."""
    by_host: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for finding in findings:
        by_host[_host_key(finding)].append(finding)

    def host_risk(host: str) -> tuple[int, str]:
        return (-sum(as_int(f.get("risk_score")) for f in by_host[host]), host)

    tables = []
    for host in sorted(by_host, key=host_risk):
        rows = sorted(
            by_host[host], key=lambda f: (str(f.get("time") or ""), -as_int(f.get("risk_score")))
        )
        total = sum(as_int(f.get("risk_score")) for f in rows)
        title = Text("")
        title.append_text(_t(host, "bold", limit=100))
        title.append(f"  {len(rows)} finding{'s' if len(rows) != 1 else ''} · risk {total}")
        table = Table(
            title=title,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            expand=True,
            show_edge=False,
        )
        table.add_column("time (UTC)", no_wrap=True, style="dim")
        table.add_column("risk", justify="right", no_wrap=True)
        table.add_column("detection", ratio=2, min_width=14, overflow="fold")
        table.add_column("user", ratio=1, min_width=14, overflow="fold")
        table.add_column("what", ratio=4, min_width=20, overflow="fold")
        shown = rows if max_rows_per_host is None else rows[:max_rows_per_host]
        for f in shown:
            style = RISK_STYLE[risk_band(f.get("risk_score"))]
            detection = _t(f.get("detection"), limit=80)
            if f.get("type") and f.get("type") != "TTP":
                detection.append_text(_t(f" ({f.get('type')})", "dim", limit=20))
            table.add_row(
                _fmt_time(f.get("time")),
                Text(str(as_int(f.get("risk_score"))), style=style),
                detection,
                _t(f.get("user") or "-", limit=60),
                _t(subject(f) or f.get("message") or ""),
            )
        if len(rows) > len(shown):
            table.add_row(
                "", "", Text(f"… {len(rows) - len(shown)} more on this host", "dim"), "", ""
            )
        tables.append(table)
    return tables


def detection_counts(
    findings: Sequence[Mapping[str, Any]], summary_counts: Mapping[str, int] | None = None
) -> Table:
    """Findings per detection (from ``summary_counts`` when given), with type, risk, hosts."""
    meta: dict[str, Mapping[str, Any]] = {}
    hosts: dict[str, set[str]] = defaultdict(set)
    counts: Counter[str] = Counter()
    for f in findings:
        name = str(f.get("detection") or "?")
        meta.setdefault(name, f)
        hosts[name].add(_host_key(f))
        counts[name] += 1
    if summary_counts is not None:
        counts = Counter({str(k): as_int(v) for k, v in summary_counts.items()})
    table = Table(title="findings per detection", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("detection", overflow="fold")
    table.add_column("type")
    table.add_column("risk", justify="right")
    table.add_column("findings", justify="right")
    table.add_column("hosts", justify="right")
    shown = [n for n in counts if counts[n] > 0]  # the engine also counts rules that did not fire
    order = sorted(shown, key=lambda n: (-as_int(meta.get(n, {}).get("risk_score")), n))
    for name in order:
        m = meta.get(name, {})
        table.add_row(
            _t(name, limit=80),
            _t(m.get("type") or "", limit=20),
            Text(str(as_int(m.get("risk_score"))), style=RISK_STYLE[risk_band(m.get("risk_score"))])
            if m
            else Text("-"),
            str(counts[name]),
            str(len(hosts.get(name, ()))),
        )
    return table


def _count_or_list(value: object) -> str:
    if isinstance(value, list | tuple | set):
        return ", ".join(sorted(str(v) for v in value))
    return str(value) if value not in (None, "") else "-"


def entity_table(entities: Iterable[Mapping[str, Any]], *, top: int = 10) -> Table | None:
    """The ``top`` entities by total risk; None when there are none."""
    rows = sorted((entity_fields(e) for e in entities), key=lambda e: -e["risk_total"])[:top]
    if not rows:
        return None
    table = Table(title="top entities by risk", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("entity", min_width=22, overflow="fold")
    table.add_column("type")
    table.add_column("risk", justify="right")
    table.add_column("rules", justify="right")
    table.add_column("ATT&CK", max_width=18, overflow="fold")
    table.add_column("", min_width=7, no_wrap=True)
    for e in rows:
        table.add_row(
            _t(e["entity"], limit=80),
            _t(e["entity_type"], limit=10),
            Text(str(e["risk_total"]), style="bold red" if e["flagged"] else ""),
            str(e["detection_count"]),
            _t(_count_or_list(e["techniques"]), limit=80),
            Text("flagged", style="bold red") if e["flagged"] else Text(""),
        )
    return table


def footer_line(
    findings: Sequence[Mapping[str, Any]], entities: Sequence[Mapping[str, Any]]
) -> Text:
    """One closing line: findings, hosts, techniques, flagged entities."""
    hosts = {_host_key(f) for f in findings}
    techniques = sorted({t for f in findings for t in mitre_list(f.get("mitre"))})
    flagged = sum(1 for e in entities if e.get("flagged"))
    line = Text()
    line.append(f"{len(findings)} finding{'s' if len(findings) != 1 else ''}", style="bold")
    line.append(f" on {len(hosts)} host{'s' if len(hosts) != 1 else ''}")
    if techniques:
        line.append(" · ATT&CK " + ", ".join(techniques))
    if flagged:
        line.append(
            f" · {flagged} entit{'ies' if flagged != 1 else 'y'} over the risk threshold",
            style="bold red",
        )
    return line


def render_scan(
    console: Console,
    accounting: Mapping[str, Any] | None,
    findings: Sequence[Mapping[str, Any]],
    summary_counts: Mapping[str, int] | None = None,
    entities: Sequence[Mapping[str, Any]] | None = None,
    *,
    overview: Mapping[str, Any] | None = None,
    max_rows_per_host: int | None = 50,
    top_entities: int = 10,
    quiet: bool = False,
) -> None:
    """Print the whole scan view on ``console``.

    ``accounting`` is ``ScanStats.to_dict()``; ``summary_counts`` maps detection -> findings
    (computed from ``findings`` when None); ``entities`` are risk rows (entity, entity_type,
    risk_total, detections, techniques, flagged); ``overview`` may give the data's
    ``first``/``last`` event time and ``hosts`` (all hosts seen, not only those with
    findings). ``quiet`` prints nothing.
    """
    if quiet:
        return
    entities = list(entities or [])
    console.print(header(accounting, findings, overview))
    console.print()
    if not findings:
        console.print(Text("no findings", style="bold green"))
    for table in host_tables(findings, max_rows_per_host=max_rows_per_host):
        console.print(table)
    if findings:
        console.print(detection_counts(findings, summary_counts))
    ranking = entity_table(entities, top=top_entities)
    if ranking is not None:
        console.print(ranking)
    console.print(footer_line(findings, entities))
