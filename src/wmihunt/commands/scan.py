"""``wmihunt scan PATH...``: read logs, run the story (and user) rules, report findings."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cli import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS
from . import add_context_rows

if TYPE_CHECKING:
    from rich.console import Console

    from ..ingest import Reading
    from ..rules.loader import RuleSet

#: --format choices. "table" is the terminal view; the others are machine formats.
FORMATS = ("table", "jsonl", "json", "csv", "timesketch")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "scan",
        help="scan logs for suspicious WMI use",
        description="Read EVTX, Windows XML, JSON/JSONL (Winlogbeat, NXLog, EVTX-JSON) and "
        "CrowdStrike files (also inside .gz/.zip/.tar.gz, or folders, or - for stdin), "
        "run the 'Suspicious WMI Use' rules and report the findings with their context.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="file, folder, archive, or -")
    p.add_argument("--db", metavar="FILE", help="keep the case in this DuckDB file")
    p.add_argument(
        "--stats",
        metavar="FILE",
        help="write the read/normalized/skipped/rejected accounting as JSON",
    )
    p.add_argument(
        "--rules",
        metavar="DIR",
        action="append",
        default=[],
        help="also run the Sigma rules in DIR (repeatable)",
    )
    p.add_argument("--no-story", action="store_true", help="run only the --rules rules")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="output format (default: table on the terminal)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write findings to FILE (default: stdout)"
    )
    p.add_argument(
        "--summary",
        metavar="FILE",
        help="write the upstream-style summary (count, firstTime, lastTime) as CSV",
    )
    p.add_argument("--html", metavar="FILE", help="also write the HTML report")
    p.add_argument(
        "--detection",
        action="append",
        metavar="NAME",
        help="only this detection (name, upstream id or number; repeatable)",
    )
    p.add_argument(
        "--type",
        dest="types",
        action="append",
        choices=("TTP", "Hunting"),
        help="only detections of this type (repeatable)",
    )
    p.add_argument("--min-risk", type=int, metavar="N", help="only detections with risk >= N")
    p.add_argument(
        "--from",
        dest="since",
        type=_utc_time,
        metavar="TIME",
        help="only events at or after TIME (ISO 8601, UTC unless an offset is given)",
    )
    p.add_argument(
        "--to", dest="until", type=_utc_time, metavar="TIME", help="only events before TIME"
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes for reading (default: one per core)",
    )
    p.add_argument(
        "--no-context",
        action="store_true",
        help="leave the per-finding context (process tree, origin, subscription, "
        "script, activity) out of the JSON/CSV/HTML outputs (faster on huge "
        "finding sets); the terminal view never computes it",
    )
    add_context_rows(p)
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print nothing but errors (exit code still tells)",
    )
    p.set_defaults(run=run)
    return p


def _utc_time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _load_rules(args: argparse.Namespace, err: Console) -> RuleSet:
    from ..rules.loader import RuleSet, load_rules_dir, load_story

    rules = RuleSet()
    if not args.no_story:
        rules.compiled.extend(load_story())
    for directory in args.rules:
        rules.extend(load_rules_dir(directory))
    _report_rejected(rules, err)
    return rules


def _report_rejected(rules: RuleSet, err: Console, limit: int = 20) -> None:
    """One short line per rule that cannot run (capped), then the counts by reason.

    The full reason (e.g. the list of known fields) is shown by ``wmihunt rules list
    --rules DIR``.
    """
    for rejected in rules.rejected[:limit]:
        detail = rejected.detail.split("; known fields")[0].splitlines()[0][:160]
        err.print(f"wmihunt scan: rule not used: {rejected.path}: {rejected.category}: "
                  f"{detail}", markup=False, highlight=False)  # fmt: skip
    if rules.rejected:
        counts = ", ".join(f"{n} {why}" for why, n in rules.rejected_by_reason().most_common())
        more = f" ({len(rules.rejected) - limit} not listed above)" if (
            len(rules.rejected) > limit) else ""  # fmt: skip
        err.print(f"wmihunt scan: {len(rules.rejected)} rules not used{more}: {counts}; "
                  "`wmihunt rules list --rules DIR` gives every reason",
                  markup=False, highlight=False)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    problem = _argument_problem(args)
    if problem:
        from rich.console import Console

        Console(stderr=True, soft_wrap=True).print(f"wmihunt scan: {problem}", markup=False)
        return EXIT_ERROR
    # Reading starts first: the workers parse while this process imports the rest (rich,
    # DuckDB: about 0.4 s) and loads the rules. A case that already exists is opened
    # first, so that its content is not read again.
    from .. import ingest

    new_case = args.db is None or not os.path.exists(args.db)
    started = time.perf_counter()  # the read phase counts from here: workers start now
    reading = ingest.start(args.paths, workers=args.workers) if new_case else None
    con = None
    try:
        from .. import store

        con = store.connect(args.db)
        if reading is None:
            started = time.perf_counter()
            reading = ingest.start(args.paths, con, workers=args.workers)
        return _scan(args, con, reading, started)
    finally:
        if reading is not None:
            reading.close()
        if con is not None:
            con.close()


def _argument_problem(args: argparse.Namespace) -> str | None:
    for directory in args.rules:
        if not Path(directory).is_dir():
            return f"--rules {directory!r} is not a folder"
    if args.no_story and not args.rules:
        return "no rules to run"
    return None


def _scan(args: argparse.Namespace, con: Any, reading: Reading, started: float) -> int:
    from rich.console import Console

    from ..case import iter_findings_json, load_case
    from ..context.parents import infer_parents
    from ..detect import run_detections
    from ..findings import count_findings
    from ..report import csv_out, terminal
    from ..report.progress import scan_progress
    from ..textpath import text_path

    err = Console(stderr=True, soft_wrap=True)  # messages stay one line each (grep-able)
    machine = args.format != "table"
    to_stdout = machine and args.output in (None, "-")
    quiet = args.quiet or to_stdout
    out = Console(file=sys.stderr if to_stdout else sys.stdout, quiet=quiet)

    rules = _load_rules(args, err)
    if not rules.compiled:
        err.print("wmihunt scan: no rules to run")
        return EXIT_ERROR

    missing = [p for p in args.paths if p != "-" and not Path(p).exists()]
    for path in missing:
        err.print(f"wmihunt scan: no such file or folder: {text_path(path)}", markup=False)
    with scan_progress(err, reading.n_inputs, enabled=not args.quiet) as progress:
        stats = reading.finish(on_done=progress, con=con)
    read_seconds = time.perf_counter() - started
    infer_parents(con)

    try:
        result = run_detections(
            con,
            rules.compiled,
            detections=args.detection,
            since=args.since,
            until=args.until,
            types=args.types,
            min_risk=args.min_risk,
            summaries=False,  # the summary of the story rules comes from the case
        )
    except ValueError as exc:  # unknown --detection name
        err.print(f"wmihunt scan: {exc}", markup=False)
        return EXIT_ERROR

    # the terminal view shows no per-finding context: compute it only for outputs that do
    wants_context = bool(args.html or args.output or machine)
    with_context = wants_context and not args.no_context
    # Nothing but a stream of findings to write (a quiet scan to JSON lines): one finding
    # at a time goes from the case to the file, instead of all of them held in memory.
    stream = quiet and not (args.html or args.summary) and args.format != "csv"
    case = load_case(
        con,
        with_findings=not stream,
        with_context=with_context,
        context_rows=args.context_rows,
        with_accounting=False,
        with_summary=bool(args.summary or args.html),
        with_overview=bool(args.html) or not quiet,  # the risk ranking and header
    )
    accounting = stats.to_dict()
    accounting["seconds"] = {
        "read": round(read_seconds, 3),
        "match": round(result.match_seconds, 3),
    }
    if args.stats:
        import orjson

        Path(args.stats).write_bytes(orjson.dumps(accounting, option=orjson.OPT_INDENT_2))
    if stream:
        findings = iter_findings_json(
            con, case.notes, with_context=with_context, context_rows=args.context_rows
        )
        found = _write_findings(args, findings, count=lambda: count_findings(con))
    else:
        found = _write_findings(args, case.findings, count=lambda: len(case.findings))
    for note in case.notes:
        err.print(f"wmihunt scan: {note}", markup=False, highlight=False)
    if args.summary:
        csv_out.write_summary_csv(case.summary, args.summary)
    if args.html:
        from ..report import html  # Jinja2: imported only for the HTML report

        html.write_html(
            args.html,
            case.findings,
            case.summary,
            case.entities,
            accounting,
            overview=case.overview,
        )
    terminal.render_scan(
        out,
        accounting,
        case.findings,
        result.counts,
        case.entities,
        overview=case.overview,
        quiet=quiet,
    )
    for problem in _input_problems(stats.to_dict()):
        err.print(f"wmihunt scan: {problem}", markup=False, highlight=False)
    if missing or stats.has_errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if found else EXIT_CLEAN


def _write_findings(
    args: argparse.Namespace, findings: Iterable[dict[str, Any]], count: Callable[[], int]
) -> int:
    """Write the findings in the chosen format; return how many there are (``count``
    when no output takes them). ``findings`` may be a stream, read once; CSV, whose
    columns come from every finding, needs a list."""
    from ..report import csv_out, jsonl, timesketch
    from ..report._io import open_binary

    target = args.output or "-"
    if args.format == "table":
        if args.output:  # a table on the terminal, and JSON lines in the file
            return jsonl.write_jsonl(findings, target)
        return count()
    if args.format == "jsonl":
        return jsonl.write_jsonl(findings, target)
    if args.format == "json":
        # one JSON array, written as it comes: the same bytes as dumping the whole list
        written = 0
        with open_binary(target) as out:
            out.write(b"[")
            for finding in findings:
                out.write((b"," if written else b"") + jsonl.dumps(jsonl.ordered_finding(finding)))
                written += 1
            out.write(b"]\n")
        return written
    if args.format == "csv":
        rows = list(findings)
        csv_out.write_csv(rows, target)
        return len(rows)
    return timesketch.write_timesketch(findings, target)


def _input_problems(accounting: dict[str, Any], limit: int = 20) -> list[str]:
    """One line per input error (file and position), capped, with a count of the rest."""
    lines = []
    total = 0
    for entry in accounting["files"]:
        for error in entry["errors"]:
            total += 1
            if len(lines) < limit:
                lines.append(f"{entry['path']}: {error['position']}: {error['reason']}")
    if total > limit:
        lines.append(f"... and {total - limit} more input errors (see --stats)")
    return lines
