#!/usr/bin/env python3
"""Time the parser ceilings and ``wmihunt scan`` side by side; write JSON and a markdown table.

Every case runs as a subprocess measured as a whole process tree (``proctree``). Cases
alternate within each round (ceiling, scan, scan with context, ...; the order rotates
from round to round), several rounds; the tables give medians, and each ratio is the
median over rounds of (case / its ceiling in the same round), because the machine may be
shared and noisy.

    python bench/make_inputs.py                     # once: builds bench/data/
    python bench/run.py                             # evtx, otrf, gen sets; 3 rounds
    python bench/run.py --sets evtx --runs 5
    python bench/run.py --only rules,match,startup  # the rule-count and matching cases
    python bench/make_inputs.py --x4 evtx_x4 otrf_x4 && python bench/run.py --sets evtx_x4,otrf_x4

Results: bench/out/results-<timestamp>.json and .md (bench/out is gitignored; paste the
markdown into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / "data"
OUT = BENCH / "out"
CORPUS = ROOT.parent / "shared" / "corpus"
SIGMA_PC = ROOT.parent / "shared" / "sigma" / "rules" / "windows" / "process_creation"
sys.path.insert(0, str(BENCH))

from proctree import Measured, measure  # noqa: E402

#: set name -> ceiling kind (bench/ceiling.py)
SETS = {"evtx": "evtx", "otrf": "jsonl", "gen": "jsonl", "evtx_x4": "evtx", "otrf_x4": "jsonl"}


@dataclass
class Case:
    name: str  # e.g. "evtx/scan"
    group: str  # the set, or "rules", "match", "startup"
    kind: str  # ceiling | scan | scan-context | scan-rules | ...
    argv: list[str]
    stats: str | None = None  # the --stats file the scan writes
    env: dict[str, str] | None = None  # extra environment variables
    variant: str = ""  # which wmihunt command (--variant), "" for the default


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def scan_argv(wmihunt: list[str], target: str, out: str, stats: str, *extra: str) -> list[str]:
    return [
        *wmihunt,
        "scan",
        target,
        "--format",
        "jsonl",
        "-o",
        out,
        "-q",
        "--stats",
        stats,
        *extra,
    ]


def build_cases(
    args: argparse.Namespace, tmp: Path, wmihunt: list[str], variant: str = ""
) -> list[Case]:
    """The cases of one wmihunt command; ceilings only for the first (default) variant."""
    py = python()
    tmp = tmp / (variant or "default")
    tmp.mkdir(exist_ok=True)
    cases: list[Case] = []
    only = set(args.only.split(",")) if args.only else None

    def want(kind: str) -> bool:
        return only is None or kind in only

    for name in args.sets.split(","):
        folder = DATA / name
        if not folder.is_dir():
            print(f"skip {name}: {folder} missing (bench/make_inputs.py)", file=sys.stderr)
            continue
        d = str(folder)
        if want("ceiling") and not variant:
            cases.append(
                Case(
                    f"{name}/ceiling",
                    name,
                    "ceiling",
                    [py, str(BENCH / "ceiling.py"), SETS[name], d],
                )
            )
        if want("ceiling2") and SETS[name] == "evtx" and not variant:
            cases.append(
                Case(
                    f"{name}/ceiling-2proc",
                    name,
                    "ceiling2",
                    [py, str(BENCH / "ceiling.py"), "evtx2", d],
                )
            )
        if want("scan"):
            st = str(tmp / f"{name}-nc.json")
            cases.append(
                Case(
                    f"{name}/scan --no-context",
                    name,
                    "scan",
                    scan_argv(wmihunt, d, str(tmp / "f.jsonl"), st, "--no-context"),
                    st,
                )
            )
        if want("context"):
            st = str(tmp / f"{name}-ctx.json")
            cases.append(
                Case(
                    f"{name}/scan (context)",
                    name,
                    "context",
                    scan_argv(wmihunt, d, str(tmp / "f.jsonl"), st),
                    st,
                )
            )
        if want("rules-cold") and SIGMA_PC.is_dir():
            st = str(tmp / f"{name}-rules-cold.json")
            argv = scan_argv(wmihunt, d, str(tmp / "f.jsonl"), st, "--no-context", "--rules",
                             str(SIGMA_PC))  # fmt: skip
            cases.append(Case(f"{name}/scan --no-context +SigmaHQ, rule cache off", name,
                              "rules-cold", argv, st, {"WMIHUNT_CACHE_DIR": "off"}))  # fmt: skip
        if want("rules") and SIGMA_PC.is_dir():
            st = str(tmp / f"{name}-rules.json")
            cases.append(
                Case(
                    f"{name}/scan --no-context +SigmaHQ process_creation",
                    name,
                    "rules",
                    scan_argv(
                        wmihunt,
                        d,
                        str(tmp / "f.jsonl"),
                        st,
                        "--no-context",
                        "--rules",
                        str(SIGMA_PC),
                    ),
                    st,
                )
            )
    if want("match") and CORPUS.is_dir():
        st = str(tmp / "corpus.json")
        cases.append(
            Case(
                "corpus/scan --no-context",
                "corpus",
                "match",
                scan_argv(wmihunt, str(CORPUS), str(tmp / "f.jsonl"), st, "--no-context"),
                st,
            )
        )
        st = str(tmp / "corpus-ctx.json")
        cases.append(
            Case(
                "corpus/scan (context)",
                "corpus",
                "match-context",
                scan_argv(wmihunt, str(CORPUS), str(tmp / "f.jsonl"), st),
                st,
            )
        )
    if want("startup"):
        empty = tmp / "empty.jsonl"
        empty.write_bytes(b"")
        st = str(tmp / "empty.json")
        cases.append(
            Case(
                "empty file/scan --no-context",
                "startup",
                "startup",
                scan_argv(wmihunt, str(empty), str(tmp / "f.jsonl"), st, "--no-context"),
                st,
            )
        )
        if SIGMA_PC.is_dir():
            st = str(tmp / "empty-rules.json")
            cases.append(
                Case(
                    "empty file/scan --no-context +SigmaHQ process_creation",
                    "startup",
                    "startup-rules",
                    scan_argv(
                        wmihunt,
                        str(empty),
                        str(tmp / "f.jsonl"),
                        st,
                        "--no-context",
                        "--rules",
                        str(SIGMA_PC),
                    ),
                    st,
                )
            )
    if variant:
        for c in cases:
            c.name, c.variant = f"{c.name} [{variant}]", variant
    return cases


def run_case(case: Case) -> dict:
    if case.stats and os.path.exists(case.stats):
        os.unlink(case.stats)
    # Bytecode caching on, as for an installed package (pip compiles it): an environment
    # with PYTHONDONTWRITEBYTECODE would have every run compile wmihunt's modules anew.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(case.env or {})
    m: Measured = measure(case.argv, cwd=ROOT, interval=0.05, env=env)
    rec = m.to_dict()
    if case.kind.startswith("ceiling"):
        try:
            rec["ceiling"] = json.loads(m.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            rec["ceiling"] = None
    elif case.stats and os.path.exists(case.stats):
        stats = json.loads(Path(case.stats).read_text())
        rec["totals"] = stats.get("totals")
        rec["seconds"] = stats.get("seconds")
    # exit codes: 0 clean, 1 findings; anything else is a failed run. A scan that wrote no
    # statistics failed too, whatever its code: Python's "No module named wmihunt" (a
    # variant run by the wrong interpreter) also exits 1.
    rec["ok"] = m.returncode in (0, 1) or (case.kind.startswith("match") and m.returncode == 2)
    if case.stats and "totals" not in rec:
        rec["ok"] = False
    if not rec["ok"]:
        print(f"  FAILED run of {case.name} (exit {m.returncode}): {m.stderr.strip()[-300:]}",
              file=sys.stderr)
    return rec


def input_bytes(group: str) -> int:
    folder = DATA / group
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def summarize(cases: list[Case], runs: dict[str, list[dict]]) -> list[dict]:
    ceilings = {c.group: c.name for c in cases if c.kind == "ceiling"}
    scans12 = {(c.group, c.variant): c.name for c in cases if c.kind == "scan"}
    rows = []
    for case in cases:
        rs = [r for r in runs[case.name] if r["ok"]]
        if not rs:
            rows.append(
                {
                    "case": case.name,
                    "group": case.group,
                    "kind": case.kind,
                    "failed": runs[case.name][-1]["stderr"][-500:],
                }
            )
            continue
        walls = [r["wall"] for r in rs]
        row = {
            "case": case.name,
            "group": case.group,
            "kind": case.kind,
            "n": len(rs),
            "wall_median": statistics.median(walls),
            "wall_min": min(walls),
            "cpu_median": statistics.median(r["cpu"] for r in rs),
            "peak_rss_tree": max(r["peak_rss_tree"] for r in rs),
            "peak_pss_tree": max(r["peak_pss_tree"] for r in rs),
            "max_rss_process": max(r["max_rss_process"] for r in rs),
        }
        first = rs[0]
        records = None
        if first.get("ceiling"):
            records = first["ceiling"]["records"]
            row["loop_median"] = statistics.median(r["ceiling"]["seconds"] for r in rs)
        elif first.get("totals"):
            records = first["totals"]["read"]
            row["totals"] = first["totals"]
            secs = [r["seconds"] for r in rs if r.get("seconds")]
            if secs:
                row["read_median"] = statistics.median(s["read"] for s in secs)
                row["match_median"] = statistics.median(s["match"] for s in secs)
        size = input_bytes(case.group)
        if records:
            row["records"] = records
            row["records_per_s"] = records / row["wall_median"]
        if size:
            row["bytes"] = size
            row["mb_per_s"] = size / 1e6 / row["wall_median"]
        for label, ref in (
            ("x_ceiling", ceilings.get(case.group)),
            (
                "x_scan12",
                scans12.get((case.group, case.variant)) if case.kind.startswith("rules") else None,
            ),
        ):
            if ref and ref != case.name:
                ratios = [
                    a["wall"] / b["wall"]
                    for a, b in zip(runs[case.name], runs[ref], strict=True)
                    if a["ok"] and b["ok"]
                ]
                if ratios:
                    row[label] = statistics.median(ratios)
        rows.append(row)
    return rows


def machine() -> dict:
    def version(mod: str) -> str:
        try:
            out = subprocess.run(
                [python(), "-c", f"import {mod}; print({mod}.__version__)"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            return out or "?"
        except OSError:
            return "?"

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{int(mem) / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        ram = "?"
    evtx_v = subprocess.run(
        [python(), "-c", "import importlib.metadata as m;print(m.version('evtx'))"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram": ram,
        "kernel": platform.release(),
        "python": subprocess.run(
            [python(), "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "duckdb": version("duckdb"),
        "evtx": evtx_v,
        "orjson": version("orjson"),
        "pyarrow": version("pyarrow"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "dirty": bool(
            subprocess.run(
                ["git", "status", "--porcelain", "src"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
        ),
    }


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def markdown(rows: list[dict], info: dict) -> str:
    out = [
        f"Machine: {info['nproc']} cores ({info['cpu']}), {info['ram']} RAM, Linux "
        f"{info['kernel']}; Python {info['python']}, duckdb {info['duckdb']}, evtx "
        f"{info['evtx']}, orjson {info['orjson']}, pyarrow {info['pyarrow']}; commit "
        f"{info['commit']}{' (+ uncommitted src changes)' if info['dirty'] else ''}.",
        f"Load average before/after: {info['load_before']} / {info['load_after']}; "
        f"{info['rounds']} rounds, medians.",
        "",
        "| case | wall s (median) | × ceiling | records/s | MB/s | CPU s | peak PSS tree MiB "
        "| peak RSS tree MiB | max RSS process MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "failed" in r:
            out.append(f"| {r['case']} | failed | | | | | | | |")
            continue
        ratio = f"{r['x_ceiling']:.2f}" if "x_ceiling" in r else ""
        if "x_scan12" in r:
            ratio += f" ({r['x_scan12']:.2f}× 12 rules)"
        out.append(
            f"| {r['case']} | {r['wall_median']:.2f} | {ratio} | "
            f"{r.get('records_per_s', 0):,.0f} | {r.get('mb_per_s', 0):,.0f} | "
            f"{r['cpu_median']:.2f} | {_mib(r['peak_pss_tree'])} | {_mib(r['peak_rss_tree'])} | "
            f"{_mib(r['max_rss_process'])} |"
        )
    extra = [r for r in rows if "read_median" in r]
    if extra:
        out += [
            "",
            "| scan | records read | normalized | read phase s | match s |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in extra:
            t = r["totals"]
            out.append(
                f"| {r['case']} | {t['read']:,} | {t['normalized']:,} | "
                f"{r['read_median']:.2f} | {r['match_median']:.3f} |"
            )
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sets", default="evtx,otrf,gen", help="comma-separated bench/data sets")
    ap.add_argument("--runs", type=int, default=3, help="rounds (default 3)")
    ap.add_argument(
        "--only", help="case kinds: ceiling,ceiling2,scan,context,rules,rules-cold,match,startup"
    )
    ap.add_argument("--wmihunt", help="command that runs wmihunt (default: python -m wmihunt)")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="also run the scans with this wmihunt command (e.g. a patched tree), "
        "side by side with the default, in the same rounds",
    )
    ap.add_argument("--tag", default="", help="suffix of the result file names")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wmihunt-bench-") as tmpdir:
        default = shlex.split(args.wmihunt) if args.wmihunt else [python(), "-m", "wmihunt"]
        cases = build_cases(args, Path(tmpdir), default)
        for spec in args.variant:
            label, _, command = spec.partition("=")
            cases += build_cases(args, Path(tmpdir), shlex.split(command), label)
        if not cases:
            print("nothing to run", file=sys.stderr)
            return 2
        info = machine()
        info["load_before"] = load()
        runs: dict[str, list[dict]] = {c.name: [] for c in cases}
        for round_no in range(args.runs):
            shift = round_no % len(cases)
            for case in cases[shift:] + cases[:shift]:
                rec = run_case(case)
                runs[case.name].append(rec)
                print(
                    f"round {round_no + 1}: {case.name}: {rec['wall']:.2f}s "
                    f"pss {_mib(rec['peak_pss_tree'])} MiB rc={rec['returncode']}",
                    file=sys.stderr,
                    flush=True,
                )
        # keep each case's runs in round order for the per-round ratios
        info["load_after"] = load()
        info["rounds"] = args.runs
        info["commands"] = {c.name: shlex.join(c.argv) for c in cases}
    rows = summarize(cases, runs)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S") + (f"-{args.tag}" if args.tag else "")
    result = {"machine": info, "summary": rows, "runs": runs}
    (OUT / f"results-{stamp}.json").write_text(json.dumps(result, indent=1))
    md = markdown(rows, info)
    (OUT / f"results-{stamp}.md").write_text(md)
    print(md)
    print(f"wrote {OUT}/results-{stamp}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
