"""The HTML report: one self-contained file, readable offline, safe with hostile event text.

Safety, in layers:
- Jinja2 with autoescape on for every template; event text only ever reaches the page
  as escaped text (no ``|safe``, no ``Markup()`` of event data: only our own CSS/JS files
  are marked safe, to be inlined).
- A Content-Security-Policy meta tag: nothing may load from anywhere
  (``default-src 'none'``), and only our one inline ``<style>`` and ``<script>`` run,
  allowed by their SHA-256 hashes; no ``'unsafe-inline'``. An injected ``<script>`` or
  ``onerror=`` would be refused by the browser even if escaping failed.
- The timeline is SVG drawn server-side by the template (labels escaped like any text);
  the script only filters, by ``data-*`` attributes and the ``hidden`` property.
Control and bidi characters are made visible (``\\x1b``) as in the terminal.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from .. import __version__
from .context_view import context_sections
from .fields import (
    as_int,
    entity_fields,
    evidence_of,
    mitre_list,
    output_fields,
    parse_time,
    risk_band,
    subject,
    time_span,
)
from .safe_text import visible
from .timeline import build_timeline

#: Longest text shown for one value; the JSONL output has the rest.
TEXT_LIMIT = 20_000
#: Output fields shown as multi-line blocks (their newlines kept).
BLOCK_FIELDS = frozenset({"script_block_text", "destination", "possible_cause", "query"})
NO_HOST = "(no host)"


def _vis(value: object, limit: int = TEXT_LIMIT, *, block: bool = False) -> str:
    """Event text for the page: control/bidi characters visible, length bounded.

    Returns plain ``str``: the template escapes it.
    """
    text = visible(value, keep_newlines=block)
    if len(text) > limit:
        text = text[:limit] + f" … ({len(text) - limit:,} more characters in the JSONL output)"
    return text


def _static(name: str) -> str:
    return (resources.files("wmihunt.report") / "static" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def content_security_policy(css: str, js: str) -> str:
    """The page's CSP: nothing loads; only the inline style and script with these hashes."""
    return "; ".join(
        (
            "default-src 'none'",
            f"style-src '{_sha256(css)}'",
            f"script-src '{_sha256(js)}'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("wmihunt.report", "templates"),
        autoescape=True,  # every template, whatever its name
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["vis"] = _vis
    return env


def _fmt_time(value: object) -> str:
    parsed = parse_time(value)
    if parsed is None:
        return _vis(value, 40) if value else "no time"
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def _finding_view(i: int, f: Mapping[str, Any]) -> dict[str, Any]:
    host = str(f.get("dest") or NO_HOST)
    fields = []
    for key in output_fields(f):
        value = f.get(key)
        if isinstance(value, bool):
            value = "true" if value else "false"
        block = key in BLOCK_FIELDS
        fields.append({"key": key, "value": _vis(value, block=block), "block": block})
    ev = evidence_of(f)
    evidence = [{"key": k, "value": _vis(v, 2000)} for k, v in ev.items() if v not in (None, "")]
    return {
        "anchor": f"f-{i}",
        "id": _vis(f.get("finding_id"), 80) if f.get("finding_id") is not None else "",
        "time": _fmt_time(f.get("time")),
        "risk": as_int(f.get("risk_score")),
        "band": risk_band(f.get("risk_score")),
        "detection": str(f.get("detection") or "?"),
        "detection_id": str(f.get("detection_id") or ""),
        "type": str(f.get("type") or "?"),
        "mitre": mitre_list(f.get("mitre")),
        "host": host,
        "user": str(f.get("user") or ""),
        "data_source": str(f.get("data_source") or ""),
        "message": _vis(f.get("message"), 2000),
        "subject": _vis(subject(f), 240),
        "fields": fields,
        "evidence": evidence,
        "context": context_sections(f.get("context")),
    }


def _summary_groups(summary: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Upstream-style rows grouped per detection, each group with its own columns."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in summary:
        groups[str(row.get("detection") or "?")].append(row)
    out = []
    for name, rows in groups.items():
        columns: dict[str, None] = {}
        for row in rows:
            for key in row:
                if key not in ("detection", "detection_id"):
                    columns.setdefault(str(key), None)
        cols = list(columns)
        out.append(
            {
                "detection": name,
                "columns": cols,
                "rows": [[_vis(row.get(c), 500) for c in cols] for row in rows[:1000]],
                "more": max(0, len(rows) - 1000),
            }
        )
    return out


def _accounting_view(accounting: Mapping[str, Any] | None) -> dict[str, Any]:
    accounting = accounting or {}
    totals = accounting.get("totals") or {}
    problems = []
    for entry in accounting.get("files") or []:
        for error in (entry.get("errors") or [])[:20]:
            error = error if isinstance(error, Mapping) else {"reason": error}
            problems.append(
                {
                    "path": _vis(entry.get("path"), 500),
                    "position": _vis(error.get("position"), 200),
                    "reason": _vis(error.get("reason"), 1000),
                }
            )
    return {
        "files": as_int(totals.get("files"), len(accounting.get("files") or [])),
        "read": as_int(totals.get("read")),
        "normalized": as_int(totals.get("normalized")),
        "skipped": as_int(totals.get("skipped")),
        "rejected": as_int(totals.get("rejected")),
        "problems": problems[:200],
        "present": bool(accounting),
    }


def _entity_view(raw: Mapping[str, Any]) -> dict[str, Any]:
    e = entity_fields(raw)

    def listing(value: object) -> str:
        if isinstance(value, list | tuple | set):
            return ", ".join(str(v) for v in value)
        return "" if value is None else str(value)

    detections = e["detections"]
    return {
        "entity": _vis(e["entity"], 500),
        "raw": str(e["entity"] or ""),
        "type": e["entity_type"],
        "risk": e["risk_total"],
        "band": risk_band(e["risk_total"] if e["flagged"] else 0),
        "detections": e["detection_count"],
        "detection_names": _vis(listing(detections), 2000)
        if isinstance(detections, list | tuple)
        else "",
        "techniques": listing(e["techniques"]) if not isinstance(e["techniques"], int) else "",
        "flagged": e["flagged"],
    }


def build_view(
    findings: Sequence[Mapping[str, Any]],
    summary: Sequence[Mapping[str, Any]] | None,
    entities: Sequence[Mapping[str, Any]] | None,
    accounting: Mapping[str, Any] | None,
    *,
    title: str,
    overview: Mapping[str, Any] | None = None,
    generated: datetime | None = None,
) -> dict[str, Any]:
    """Everything the template shows, as plain data (event text still unescaped)."""
    ordered = sorted(
        findings, key=lambda f: (str(f.get("time") or "~"), -as_int(f.get("risk_score")))
    )
    views = [_finding_view(i, f) for i, f in enumerate(ordered, 1)]
    host_stats: dict[str, dict[str, Any]] = {}
    for v in views:
        h = host_stats.setdefault(v["host"], {"name": v["host"], "count": 0, "risk": 0})
        h["count"] += 1
        h["risk"] += v["risk"]
    hosts = sorted(host_stats.values(), key=lambda h: (-h["risk"], h["name"]))
    users = Counter(v["user"] for v in views if v["user"])
    det_stats: dict[str, dict[str, Any]] = {}
    for v in views:
        d = det_stats.setdefault(
            v["detection"],
            {
                "name": v["detection"],
                "id": v["detection_id"],
                "type": v["type"],
                "risk": v["risk"],
                "band": v["band"],
                "mitre": v["mitre"],
                "count": 0,
                "hosts": set(),
            },
        )
        d["count"] += 1
        d["hosts"].add(v["host"])
    detections = sorted(det_stats.values(), key=lambda d: (-d["risk"], d["name"]))
    for d in detections:
        d["hosts"] = len(d["hosts"])
    techniques = Counter(t for v in views for t in v["mitre"])
    first, last = time_span(ordered)
    data_first = parse_time((overview or {}).get("first"))
    data_last = parse_time((overview or {}).get("last"))
    return {
        "title": title,
        "version": __version__,
        "generated": (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "findings": views,
        "hosts": hosts,
        "users": [{"name": u, "count": n} for u, n in users.most_common()],
        "detections": detections,
        "types": sorted({v["type"] for v in views}),
        "techniques": sorted(techniques.items()),
        "span": {
            "first": f"{first:%Y-%m-%d %H:%M:%S}" if first else "",
            "last": f"{last:%Y-%m-%d %H:%M:%S}" if last else "",
            "data_first": f"{data_first:%Y-%m-%d %H:%M:%S}" if data_first else "",
            "data_last": f"{data_last:%Y-%m-%d %H:%M:%S}" if data_last else "",
            "data_hosts": as_int(
                (overview or {}).get("hosts_count"), len((overview or {}).get("hosts") or ())
            ),
        },
        "timeline": build_timeline(ordered, [v["anchor"] for v in views]),
        "entities": [
            _entity_view(e)
            for e in sorted(entities or [], key=lambda e: -entity_fields(e)["risk_total"])
        ],
        "summary": _summary_groups(summary or []),
        "accounting": _accounting_view(accounting),
    }


def render_html(
    findings: Sequence[Mapping[str, Any]],
    summary: Sequence[Mapping[str, Any]] | None,
    entities: Sequence[Mapping[str, Any]] | None,
    accounting: Mapping[str, Any] | None,
    *,
    title: str = "wmihunt report",
    overview: Mapping[str, Any] | None = None,
    generated: datetime | None = None,
) -> str:
    """The report as one HTML document (str).

    ``findings``: finding dicts (JSONL shape, optional ``finding_id`` and ``context``);
    ``summary``: upstream-style summary rows; ``entities``: risk rows; ``accounting``:
    ``ScanStats.to_dict()``; ``overview``: optional ``first``/``last`` event time and
    ``hosts`` of all the data read.
    """
    css = _static("report.css")
    js = _static("report.js")
    view = build_view(
        findings,
        summary,
        entities,
        accounting,
        title=title,
        overview=overview,
        generated=generated,
    )
    template = _environment().get_template("report.html.j2")
    # Our own files, not event data: inlined as is, allowed by their hashes in the CSP.
    return template.render(
        view=view,
        css=Markup(css),
        js=Markup(js),
        csp=content_security_policy(css, js),
    )


def write_html(
    path: str | Path,
    findings: Sequence[Mapping[str, Any]],
    summary: Sequence[Mapping[str, Any]] | None,
    entities: Sequence[Mapping[str, Any]] | None,
    accounting: Mapping[str, Any] | None,
    **kwargs: Any,
) -> Path:
    """Render the report and write it to ``path`` (UTF-8); return the path."""
    out = Path(path)
    out.write_text(render_html(findings, summary, entities, accounting, **kwargs), encoding="utf-8")
    return out
