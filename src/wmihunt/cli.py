"""Command line: parses arguments and hands each verb to its module in ``commands/``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__

#: Exit codes: like grep, 1 means "found something", 2 means trouble.
EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


#: Command name -> its module in ``commands/``.
COMMANDS = {"scan": "scan", "investigate": "investigate", "report": "report", "rules": "rules_cmd"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with a known ``command``, only that command's module is imported (a
    scan starts reading sooner), else all of them (``--help`` lists every command)."""
    names = [command] if command in COMMANDS else list(COMMANDS)
    parser = argparse.ArgumentParser(
        prog="wmihunt",
        description="Hunt suspicious WMI use in Windows logs (EVTX, XML, JSON, CrowdStrike).",
    )
    parser.add_argument("--version", action="version", version=f"wmihunt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in names:
        importlib.import_module(f".commands.{COMMANDS[name]}", __package__).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("wmihunt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_CLEAN


def run() -> NoReturn:
    """The program (``wmihunt``, ``python -m wmihunt``): ``main``, then exit without the
    interpreter's teardown. Every output file is closed and the case committed by then;
    freeing each object of DuckDB, Arrow and the case one by one only delays the prompt
    (about 0.1 s of a 2.5 s scan). An exception still ends the normal way, traceback
    included."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away (``| head``): nothing left to tell
        pass
    os._exit(code)


if __name__ == "__main__":
    run()
