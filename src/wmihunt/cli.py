"""Command line: parses arguments and hands each verb to its module in ``commands/``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

#: Exit codes: like grep, 1 means "found something", 2 means trouble.
EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    from .commands import investigate, report, rules_cmd, scan

    parser = argparse.ArgumentParser(
        prog="wmihunt",
        description="Hunt suspicious WMI use in Windows logs (EVTX, XML, JSON, CrowdStrike).",
    )
    parser.add_argument("--version", action="version", version=f"wmihunt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (scan, investigate, report, rules_cmd):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("wmihunt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_CLEAN


if __name__ == "__main__":
    sys.exit(main())
