"""``wmihunt report --db FILE -o report.html``: write a report from a case database.

The case database is the one ``scan --db FILE`` keeps; it is opened read-only. The HTML
report is the default; the same findings can be written as JSONL, CSV, Timesketch JSONL
or the upstream-style summary CSV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import duckdb

from . import add_context_rows

#: --format choices -> what is written.
FORMATS = ("html", "jsonl", "csv", "timesketch", "summary-csv")
_BY_SUFFIX = {".html": "html", ".htm": "html", ".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}

EXIT_OK = 0
EXIT_ERROR = 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report",
        help="write the HTML report (or JSONL/CSV/Timesketch) from a case database",
        description="Write a report of the findings kept in a case database "
        "(made by `wmihunt scan --db FILE`). The HTML report is one self-contained file "
        "that loads nothing from the network.",
    )
    parser.add_argument("--db", required=True, metavar="FILE", help="case database (DuckDB)")
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="output file; - for stdout"
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="default: from the output file's extension (.html, .jsonl, .csv), else html",
    )
    parser.add_argument("--title", default=None, help="HTML report title")
    add_context_rows(parser)
    parser.set_defaults(run=run)
    return parser


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    return _BY_SUFFIX.get(Path(args.output).suffix.lower(), "html")


def run(args: argparse.Namespace) -> int:
    from ..case import load_case
    from ..store import connect

    db = Path(args.db)
    if not db.is_file():
        print(f"wmihunt report: no such case database: {db}", file=sys.stderr)
        return EXIT_ERROR
    try:
        con = connect(db, read_only=True)
    except duckdb.Error as exc:
        print(f"wmihunt report: cannot open {db}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        case = load_case(con, context_rows=args.context_rows)
    finally:
        con.close()
    for note in case.notes:
        print(f"wmihunt report: {note}", file=sys.stderr)
    fmt = output_format(args)
    try:
        count = _write(fmt, args, case)
    except OSError as exc:
        print(f"wmihunt report: cannot write {args.output}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    what = "summary rows" if fmt == "summary-csv" else "findings"
    print(f"wmihunt report: wrote {count} {what} to {args.output} ({fmt})", file=sys.stderr)
    return EXIT_OK


def _write(fmt: str, args: argparse.Namespace, case: Any) -> int:
    from ..report import csv_out, html, jsonl, timesketch

    if fmt == "html":
        title = args.title or f"wmihunt report: {Path(args.db).name}"
        text = html.render_html(
            case.findings,
            case.summary,
            case.entities,
            case.accounting,
            title=title,
            overview=case.overview,
        )
        if args.output == "-":
            sys.stdout.write(text)
        else:
            Path(args.output).write_text(text, encoding="utf-8")
        return len(case.findings)
    if fmt == "jsonl":
        return jsonl.write_jsonl(case.findings, args.output)
    if fmt == "csv":
        return csv_out.write_csv(case.findings, args.output)
    if fmt == "timesketch":
        return timesketch.write_timesketch(case.findings, args.output)
    return csv_out.write_summary_csv(case.summary, args.output)
