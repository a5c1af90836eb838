"""Fuzz runner: run targets for a time / execution budget, save crashes, write a report.

    python fuzz/run.py                          # every target, 60 s each, best engine
    python fuzz/run.py evtx xml --seconds 600   # chosen targets, longer
    python fuzz/run.py --runs 1000000 --engine atheris --report fuzz/work/long.json
    python fuzz/run.py --replay fuzz/work/crashes/xml/3f2a... xml   # re-run one input

Engines: ``atheris`` (coverage-guided libFuzzer over instrumented wmihunt code, with the
format-aware mutators of ``mutators`` mixed into libFuzzer's own) when it is installed,
else ``random`` (the same mutators, blind, in a plain loop). Each target runs in its own
child process, so a hard crash or a memory blow-up of one target is recorded, not fatal.
In the child, every input is checked by ``targets`` (the invariants are listed there),
and an input that takes longer than ``--timeout`` seconds counts as a hang.

Seeds are generated into ``--work``/seeds by ``seeds.py`` on first use (``--fresh-seeds``
regenerates them). Failing inputs are saved under ``--work``/crashes/<target>/, one per
distinct failure, and the JSON report lists per target: engine, executions, seconds,
distinct failures, hangs and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run as a script: make ``fuzz`` importable
    sys.path.insert(0, str(ROOT))

from fuzz import TARGETS  # noqa: E402

DEFAULT_WORK = HERE / "work"
#: Largest input atheris may grow (EVTX seeds are 1-4 chunks of 64 KiB).
MAX_LEN = 300_000


class Hang(Exception):
    """An input ran longer than the per-input timeout."""


# -- child: one target, one engine ----------------------------------------------------
def _targets() -> Any:
    """``fuzz.targets`` imported on first use (it imports wmihunt: see child_atheris)."""
    from fuzz import targets

    return targets


def _seeds() -> Any:
    from fuzz import seeds

    return seeds


class _Recorder:
    """Counts executions, keeps one saved input per distinct failure, writes stats."""

    def __init__(self, target: str, work: Path, stats_file: Path, engine: str) -> None:
        self.target = target
        self.crash_dir = work / "crashes" / target
        self.stats_file = stats_file
        self.started = time.monotonic()
        self.last_write = 0.0
        self.stats: dict[str, Any] = {
            "target": target, "engine": engine, "execs": 0, "failing_inputs": 0,
            "distinct_failures": 0, "hangs": 0, "failures": {}, "records_read": 0,
            "records_rejected": 0, "slowest_input_s": 0.0,
        }  # fmt: skip

    def ran(self, seconds: float, outcome: Any) -> None:
        s = self.stats
        s["execs"] += 1
        s["slowest_input_s"] = max(s["slowest_input_s"], round(seconds, 3))
        if outcome is not None:
            s["records_read"] += outcome.read
            s["records_rejected"] += outcome.rejected
        self.flush()

    def failed(self, data: bytes, exc: BaseException) -> None:
        s = self.stats
        s["failing_inputs"] += 1
        if isinstance(exc, Hang):
            s["hangs"] += 1
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
        first = (str(exc).splitlines() or [""])[0]
        key = f"{type(exc).__name__} at {where}: {first[:160]}"
        if key not in s["failures"]:
            self.crash_dir.mkdir(parents=True, exist_ok=True)
            name = hashlib.sha1(data).hexdigest()
            (self.crash_dir / name).write_bytes(data)
            (self.crash_dir / f"{name}.txt").write_text(
                key + "\n\n" + "".join(traceback.format_exception(exc))
            )
            s["failures"][key] = {"count": 0, "input": str(self.crash_dir / name)}
            s["distinct_failures"] = len(s["failures"])
            print(f"[{self.target}] new failure: {key}", file=sys.stderr, flush=True)
        s["failures"][key]["count"] += 1
        self.flush(force=True)

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_write < 2.0:
            return
        self.last_write = now
        self.stats["seconds"] = round(now - self.started, 1)
        self.stats["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        tmp = self.stats_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.stats, indent=1))
        tmp.replace(self.stats_file)


def _alarm(_signum: int, _frame: Any) -> None:
    raise Hang("input took longer than the per-input timeout")


def _run_one(run: Any, data: bytes, rec: _Recorder, timeout: float) -> None:
    """One execution. ``timeout`` > 0 arms SIGALRM (Python code only: a hang inside
    the Rust parser is caught by the parent, which kills the child)."""
    if timeout:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    start = time.monotonic()
    outcome = None
    try:
        outcome = run(data)
    except (Exception, Hang) as exc:  # every failure is a finding, never fatal
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
        rec.failed(data, exc)
    finally:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
    rec.ran(time.monotonic() - start, outcome)


def child_random(args: argparse.Namespace, rec: _Recorder, corpus: list[bytes]) -> None:
    from fuzz.mutators import mutate

    run = _targets().make(args.target)
    rec.stats["scratch"] = getattr(run, "path", None)
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.seconds
    for data in corpus:  # every seed once, unmutated
        _run_one(run, data, rec, args.timeout)
    while time.monotonic() < deadline and (not args.runs or rec.stats["execs"] < args.runs):
        data = mutate(args.target, rng.choice(corpus), rng, corpus)
        _run_one(run, data, rec, args.timeout)


def child_atheris(args: argparse.Namespace, rec: _Recorder, corpus_dir: Path) -> None:
    import atheris

    if "wmihunt" in sys.modules:
        raise RuntimeError("wmihunt imported before instrumentation: no coverage feedback")
    with atheris.instrument_imports(include=["wmihunt"]):
        import wmihunt.ingest
        import wmihunt.normalize
        import wmihunt.readers  # noqa: F401
    from fuzz.mutators import mutate

    targets = _targets()
    targets.use_fuzz_limits()
    run = targets.make(args.target)
    rec.stats["scratch"] = getattr(run, "path", None)
    rng = random.Random(args.seed)
    pool = _seeds().load(args.work / "seeds", args.target)

    def one(data: bytes) -> None:
        _run_one(run, data, rec, 0)  # libFuzzer's -timeout owns SIGALRM here

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng.seed(seed)
        if rng.random() < 0.5:
            return mutate(args.target, data, rng, pool)[:max_size]
        return atheris.Mutate(data, max_size)

    libfuzzer = [
        sys.argv[0], str(corpus_dir), f"-max_total_time={int(args.seconds)}",
        f"-timeout={int(args.timeout) + 5}", f"-max_len={MAX_LEN}", f"-rss_limit_mb={args.rss_mb}",
        f"-seed={args.seed}", "-print_final_stats=1",
        f"-artifact_prefix={args.work / 'crashes' / args.target}/",
    ]  # fmt: skip
    if args.runs:
        libfuzzer.append(f"-runs={args.runs}")
    atheris.Setup(libfuzzer, one, custom_mutator=mutator)
    atheris.Fuzz()


def child_main(args: argparse.Namespace) -> int:
    stats_file = args.work / "stats" / f"{args.target}.json"
    stats_file.parent.mkdir(parents=True, exist_ok=True)
    rec = _Recorder(args.target, args.work, stats_file, args.engine)
    if args.engine == "atheris":
        (args.work / "crashes" / args.target).mkdir(parents=True, exist_ok=True)
        corpus_dir = args.work / "corpus" / args.target  # libFuzzer adds what it finds
        corpus_dir.mkdir(parents=True, exist_ok=True)
        for data in _seeds().load(args.work / "seeds", args.target):
            path = corpus_dir / hashlib.sha1(data).hexdigest()
            if not path.exists():
                path.write_bytes(data)
        child_atheris(args, rec, corpus_dir)
    else:
        signal.signal(signal.SIGALRM, _alarm)
        _targets().use_fuzz_limits()
        child_random(args, rec, _seeds().load(args.work / "seeds", args.target))
    rec.flush(force=True)
    return 0


# -- parent: seeds, children, report --------------------------------------------------
def _engine(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "random"
    return "atheris"


def run_target(target: str, args: argparse.Namespace, engine: str) -> dict[str, Any]:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--child", target, "--engine", engine,
        "--seconds", str(args.seconds), "--runs", str(args.runs), "--timeout", str(args.timeout),
        "--work", str(args.work), "--seed", str(args.seed), "--rss-mb", str(args.rss_mb),
    ]  # fmt: skip
    stats_file = args.work / "stats" / f"{target}.json"
    stats_file.unlink(missing_ok=True)
    log = args.work / "logs" / f"{target}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    limit = args.seconds + 3 * args.timeout + 120  # beyond this the child is stuck
    hung = False
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:  # stuck in native code: SIGALRM cannot help
            hung = True
            proc.kill()
            proc.wait()
    result: dict[str, Any] = {"target": target, "engine": engine, "execs": 0}
    if stats_file.exists():
        result = json.loads(stats_file.read_text())
    scratch_dir = Path(result["scratch"]).parent if result.get("scratch") else None
    if hung:
        result["hard_hangs"] = 1
        scratch = result.get("scratch")
        if scratch and Path(scratch).exists():
            data = Path(scratch).read_bytes()
            keep = args.work / "crashes" / target / f"hang-{hashlib.sha1(data).hexdigest()}"
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_bytes(data)
            result["hang_input"] = str(keep)
    if scratch_dir is not None and scratch_dir.name.startswith("wmihunt-fuzz-"):
        shutil.rmtree(scratch_dir, ignore_errors=True)  # libFuzzer exits without cleanup
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    result["exit_code"] = proc.returncode
    if engine == "atheris":
        text = log.read_text(errors="replace")
        # libFuzzer's own verdict on the child: a crash it saw itself (signal, OOM, leak).
        for marker in ("==ERROR: libFuzzer", "ERROR: AddressSanitizer", "out-of-memory"):
            if marker in text:
                result.setdefault("libfuzzer_errors", []).append(marker)
    elif proc.returncode not in (0,) and not hung:
        result.setdefault("libfuzzer_errors", []).append(f"child exit code {proc.returncode}")
    result["log"] = str(log)
    return result


def _commit() -> str | None:
    """The checked-out commit (the code under test), if this is a git clone."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def replay(path: Path, target: str) -> int:
    targets = _targets()
    targets.use_fuzz_limits()
    run = targets.make(target)
    outcome = run(path.read_bytes())
    print(json.dumps(outcome.__dict__, indent=1))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Run wmihunt's fuzz targets (see module doc).")
    p.add_argument("targets", nargs="*", help=f"targets (default: all): {' '.join(TARGETS)}")
    p.add_argument("--seconds", type=float, default=60.0, help="time budget per target")
    p.add_argument("--runs", type=int, default=0, help="execution budget per target (0: none)")
    p.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds before an input hangs")
    p.add_argument("--rss-mb", type=int, default=3072, help="memory limit of a child (atheris)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="seeds, corpus, crashes")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random engine's seed (default: a fresh one, printed and kept in the report; "
        "runs with the same seed repeat the same inputs)",
    )
    p.add_argument("--fresh-seeds", action="store_true", help="regenerate the seed corpus")
    p.add_argument("--no-corpus", action="store_true", help="seeds from samples/ only")
    p.add_argument("--report", type=Path, help="write the JSON report here")
    p.add_argument("--replay", type=Path, help="run one saved input and print its outcome")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work = args.work.resolve()
    if args.child:
        args.target = args.child
        return child_main(args)
    chosen = args.targets or list(TARGETS)
    unknown = [t for t in chosen if t not in TARGETS]
    if unknown:
        print(f"unknown target(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.replay:
        return replay(args.replay, chosen[0])
    seeds_dir = args.work / "seeds"
    if args.fresh_seeds or not seeds_dir.is_dir():
        seeds = _seeds()
        seeds.generate(seeds_dir, corpus=None if args.no_corpus else seeds.CORPUS)
    engine = _engine(args.engine)
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "big")
    print(f"seed {args.seed}", flush=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results = []
    for target in chosen:
        res = run_target(target, args, engine)
        results.append(res)
        hangs = res.get("hangs", 0) + res.get("hard_hangs", 0)
        print(
            f"{target:12} {res.get('engine'):8} {res.get('execs', 0):>10,} execs "
            f"{res.get('seconds', 0):>7}s  failures {res.get('distinct_failures', 0)}  "
            f"hangs {hangs}  rss {res.get('peak_rss_mb', '?')} MB",
            flush=True,
        )
    report = {
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "budget": {"seconds": args.seconds, "runs": args.runs, "timeout": args.timeout},
        "seed": args.seed,
        "commit": _commit(),
        "targets": results,
    }
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=1))
    bad = any(
        r.get("distinct_failures") or r.get("libfuzzer_errors") or r.get("hard_hangs")
        for r in results
    )
    return 1 if bad else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
