"""The verbs of the command line, one module each: ``add_parser(subparsers)`` and ``run(args)``."""

from __future__ import annotations

import argparse


def add_context_rows(parser: argparse.ArgumentParser) -> None:
    """``--context-rows N``, for the commands that write findings with their context."""
    parser.add_argument(
        "--context-rows",
        type=_positive_int,
        default=None,
        metavar="N",
        help="rows of each list in a finding's host activity (WMI events, WmiPrvSE "
        "children, wmic runs; earlier findings at most 50); default 100; fewer for a "
        "SIEM that cuts long events",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {value}")
    return value
