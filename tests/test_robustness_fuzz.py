"""The bounded fuzz session (CI) and the fuzz tooling itself.

``test_fuzz_session`` runs every target of ``fuzz/`` for a few seconds through the real
runner (``fuzz/run.py``, random engine: deterministic, no native instrumentation), so a
regression in any reader or normalizer that the mutators can reach fails CI. Set
``WMIHUNT_FUZZ_SECONDS`` for a longer session; long runs are made by hand (see
docs/robustness.md). Marked ``fuzz``: ``pytest -m "not fuzz"`` leaves it out.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from test_robustness_helpers import ROOT, SAMPLES

from fuzz import TARGETS, mutators, seeds, targets

SECONDS = float(os.environ.get("WMIHUNT_FUZZ_SECONDS", "3"))


@pytest.mark.fuzz
def test_fuzz_session(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    cmd = [sys.executable, str(ROOT / "fuzz" / "run.py"), "--engine", "random",
           "--seconds", str(SECONDS), "--timeout", "10", "--work", str(tmp_path / "work"),
           "--report", str(report), "--seed", "20261128"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    results = {r["target"]: r for r in json.loads(report.read_text())["targets"]}
    summary = proc.stdout + proc.stderr
    assert set(results) == set(TARGETS), summary
    for name, result in results.items():
        failures = result.get("failures", {})
        assert not failures and not result.get("hard_hangs"), f"{name}: {failures}\n{summary}"
        assert result["execs"] >= 20, f"{name} barely ran: {result}"
    assert proc.returncode == 0, summary


def test_seed_generator_makes_every_target_from_the_samples_alone(tmp_path: Path) -> None:
    counts = seeds.generate(tmp_path, corpus=None)
    assert set(counts) == set(TARGETS)
    assert all(counts[t] >= 5 for t in TARGETS), counts
    again = tmp_path / "again"
    seeds.generate(again, corpus=None)  # deterministic: the same files
    assert sorted(p.name for p in (tmp_path / "evtx").iterdir()) == sorted(
        p.name for p in (again / "evtx").iterdir()
    )
    assert (tmp_path / "evtx").glob("*")
    assert SAMPLES.is_dir()


def test_seeds_pass_every_invariant(tmp_path: Path) -> None:
    seeds.generate(tmp_path, corpus=None)
    for target in TARGETS:
        run = targets.make(target)
        outcomes = [run(data) for data in seeds.load(tmp_path, target)]
        assert sum(o.read + o.normalized for o in outcomes) > 0, target
        if target in ("evtx", "xml", "jsonl", "crowdstrike"):  # valid inputs: nothing lost
            assert sum(o.rejected for o in outcomes) == 0, target


def test_invariants_catch_what_they_claim(tmp_path: Path) -> None:
    """The checker itself: an unbalanced entry, a reason without position, an internal
    error caught by a safety net, rows that do not match the count."""
    from wmihunt.accounting import FileStats

    bad = FileStats("x")
    bad.read = 2
    with pytest.raises(targets.InvariantError, match="unbalanced"):
        targets.check_entries([bad], 0)
    silent = FileStats("x")
    silent.error("", "lost")
    with pytest.raises(targets.InvariantError, match="without position"):
        targets.check_entries([silent], 0)
    caught = FileStats("x")
    caught.reject("line 1", "internal error: KeyError: 'x'")
    with pytest.raises(targets.InvariantError, match="safety net"):
        targets.check_entries([caught], 0)
    ok = FileStats("x")
    ok.accepted()
    with pytest.raises(targets.InvariantError, match="rows stored"):
        targets.check_entries([ok], 0)
    with pytest.raises(targets.InvariantError, match="no file entry"):
        targets.check_entries([], 0)


def test_mutators_never_raise_and_stay_bounded(tmp_path: Path) -> None:
    seeds.generate(tmp_path, corpus=None)
    rng = random.Random(5)
    pool = {t: seeds.load(tmp_path, t) for t in TARGETS}
    for _ in range(300):
        target = rng.choice(TARGETS)
        data = mutators.mutate(target, rng.choice(pool[target]), rng, pool[target])
        assert isinstance(data, bytes) and len(data) <= mutators.MAX_INPUT
