"""``wmihunt rules list`` and ``wmihunt rules export --target splunk|sigma``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..rules import CompiledRule, RuleSet, load_rules_dir, load_story, story_files

EXIT_OK = 0
EXIT_ERROR = 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "rules",
        help="list the detection rules or export them (Splunk SPL, Sigma)",
        description="List the story's twelve detections (and your own Sigma rules), or "
        "export them through pySigma.",
    )
    sub = p.add_subparsers(dest="rules_action", metavar="ACTION", required=True)
    lp = sub.add_parser("list", help="show the rules: name, type, risk, data sources, ATT&CK")
    lp.add_argument(
        "--rules",
        metavar="DIR",
        action="append",
        default=[],
        help="also list the Sigma rules in DIR, and why any of them cannot run (repeatable)",
    )
    lp.set_defaults(run=run)
    ep = sub.add_parser("export", help="write the story rules as Splunk SPL or Sigma YAML")
    ep.add_argument("--target", choices=("splunk", "sigma"), required=True)
    ep.add_argument(
        "-o", "--output", metavar="DIR", help="write one file per rule into DIR (default: stdout)"
    )
    ep.set_defaults(run=run)
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    if args.rules_action == "list":
        return list_rules(args.rules, out, err)
    return export_rules(args.target, args.output, err)


# --- list -------------------------------------------------------------------------------
def rules_table(rules: list[CompiledRule], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name, kw in (
        ("#", {"justify": "right"}),
        ("detection", {}),
        ("type", {}),
        ("risk", {"justify": "right"}),
        ("data sources", {}),
        ("ATT&CK", {}),
    ):
        table.add_column(name, **kw)
    for r in rules:
        m = r.meta
        sources = ", ".join(m.data_sources) or r.logsource
        table.add_row(
            str(m.number) if m.number is not None else "",
            Text(m.detection),  # Text: rule titles are data, never console markup
            m.type,
            str(m.risk_score),
            Text(sources),
            Text(", ".join(m.mitre)),
        )
    return table


def list_rules(dirs: list[str], out: Console, err: Console) -> int:
    out.print(rules_table(load_story(), "Suspicious WMI Use (Splunk ESCU analytic story)"))
    status = EXIT_OK
    for directory in dirs:
        if not Path(directory).exists():
            err.print(Text(f"wmihunt rules list: {directory!r} does not exist"))
            status = EXIT_ERROR
            continue
        ruleset = load_rules_dir(directory)
        out.print(rules_table(ruleset.compiled, f"Sigma rules in {directory}"))
        _print_rejected(ruleset, directory, out)
    return status


def _print_rejected(ruleset: RuleSet, directory: str, out: Console) -> None:
    n_ok, n_bad = len(ruleset.compiled), len(ruleset.rejected)
    out.print(Text(f"{directory}: compiled: {n_ok}, cannot run: {n_bad}"), soft_wrap=True)
    if not n_bad:
        return
    for reason, count in ruleset.rejected_by_reason().most_common():
        out.print(Text(f"  {count:5d}  {reason}"))
    table = Table(title="Rules that cannot run", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("reason")
    table.add_column("detail", overflow="fold")
    for r in ruleset.rejected:
        table.add_row(Text(_relative(r.path, directory)), Text(r.category), Text(r.detail[:300]))
    out.print(table)


def _relative(path: str, directory: str) -> str:
    try:
        return str(Path(path).relative_to(directory))
    except ValueError:
        return path


# --- export -----------------------------------------------------------------------------
def splunk_queries() -> list[tuple[Path, str]]:
    """(story file, SPL) for every story rule, through pySigma's Splunk backend.

    Process rules go through the CIM data model (``tstats`` over ``Endpoint.Processes``, as
    upstream's own searches do); the others through the Windows pipeline, with the source
    of the category added (Sysmon for ``wmi_event``, PowerShell for ``ps_script``).
    """
    from sigma.backends.splunk import SplunkBackend
    from sigma.collection import SigmaCollection
    from sigma.pipelines.splunk import splunk_cim_data_model, splunk_windows_pipeline

    out: list[tuple[Path, str]] = []
    for path in story_files():
        collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"))
        rule = collection.rules[0]
        if rule.logsource.category == "process_creation":
            backend = SplunkBackend(splunk_cim_data_model())
            queries = backend.convert(collection, "data_model")
        else:
            backend = SplunkBackend(_category_sources() + splunk_windows_pipeline())
            queries = backend.convert(collection)
        out.append((path, "\n".join(str(q) for q in queries)))
    return out


def _category_sources() -> Any:
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import AddConditionTransformation

    sources = {
        "wmi_event": "WinEventLog:Microsoft-Windows-Sysmon/Operational",
        "ps_script": "WinEventLog:Microsoft-Windows-PowerShell/Operational",
    }
    return ProcessingPipeline(
        name="wmihunt category sources",
        priority=15,
        items=[
            ProcessingItem(
                AddConditionTransformation({"source": source}),
                rule_conditions=[LogsourceCondition(category=category)],
                identifier=f"wmihunt_splunk_source_{category}",
            )
            for category, source in sources.items()
        ],
    )


def export_rules(target: str, output: str | None, err: Console) -> int:
    if target == "sigma":
        items = [(p, p.read_text(encoding="utf-8")) for p in story_files()]
        suffix = ".yml"
    else:
        try:
            items = splunk_queries()
        except Exception as exc:  # pySigma or its Splunk backend refused a rule
            err.print(Text(f"wmihunt rules export: {type(exc).__name__}: {exc}"))
            return EXIT_ERROR
        suffix = ".spl"
    if output is None:
        for path, text in items:
            if target == "splunk":
                sys.stdout.write(f"# {path.stem}\n{text}\n\n")
            else:
                sys.stdout.write(f"---\n{text}" if not text.startswith("---") else text)
        return EXIT_OK
    folder = Path(output)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, text in items:
            (folder / (path.stem + suffix)).write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    except OSError as exc:
        err.print(Text(f"wmihunt rules export: cannot write to {output!r}: {exc}"))
        return EXIT_ERROR
    err.print(Text(f"wrote {len(items)} {target} files to {folder}"))
    return EXIT_OK
