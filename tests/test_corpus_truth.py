"""Ground truth: on ../shared/corpus the twelve predicates literally match exactly the
``literal_match=yes`` rows of ``ground_truth.csv`` (1x6, 3x17, 4x2, 5x8, 6x1, 7x4, 8x1,
9x6, 11x3; none for 2, 10, 12) and none of the ``literal_match=no`` rows.

An event is keyed by (file without its extension, record id). SigmaHQ's regression data
ships each event twice, as ``<id>.evtx`` and as ``<id>.json`` (an export of the same
record: same EventRecordID and time); ``ground_truth.csv`` names the EVTX copy, so the
JSON copy counts as the same event (checked below, not assumed).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

import pytest

from wmihunt import store
from wmihunt.detect import run_detections
from wmihunt.ingest import ingest_paths
from wmihunt.rules import load_story

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
EXPECTED_COUNTS = {1: 6, 2: 0, 3: 17, 4: 2, 5: 8, 6: 1, 7: 4, 8: 1, 9: 6, 10: 0, 11: 3, 12: 0}

Key = tuple[str, int]


def _key(path: str, record: int) -> Key:
    return (str(Path(path).with_suffix("")), int(record))


def _ground_truth() -> tuple[dict[int, set[Key]], set[Key]]:
    yes: dict[int, set[Key]] = defaultdict(set)
    no: set[Key] = set()
    with open(CORPUS / "ground_truth.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            record = re.search(r"rec=(\d+)", row["event"])
            assert record, row
            key = _key(row["file"], int(record.group(1)))
            if row["literal_match"] == "yes":
                numbers = [int(n) for n in re.findall(r"#(\d+)", row["detections"])]
                assert numbers, row
                for n in numbers:
                    yes[n].add(key)
            else:
                no.add(key)
    return yes, no


@pytest.fixture(scope="module")
def scan() -> dict[int, set[Key]]:
    if not (CORPUS / "ground_truth.csv").is_file():
        pytest.skip(f"corpus not present: {CORPUS}")
    con = store.connect()
    ingest_paths([str(CORPUS)], con)
    result = run_detections(con, load_story())
    assert not result.errors
    found: dict[int, set[Key]] = defaultdict(set)
    suffixes: dict[tuple[int, str, int], set[str]] = defaultdict(set)
    rows = con.execute("SELECT detection_number, ev_file, ev_record_id FROM findings").fetchall()
    missing = con.execute("SELECT count(*) FROM findings WHERE ev_record_id IS NULL").fetchall()
    assert missing == [(0,)], "every corpus finding should carry a record id"
    for number, ev_file, record in rows:
        rel = str(Path(ev_file).resolve().relative_to(CORPUS.resolve()))
        key = _key(rel, record)
        found[number].add(key)
        suffixes[(number, *key)].add(Path(rel).suffix)
    for (_, path, _), seen in suffixes.items():
        if ".json" in seen and path.startswith("SigmaHQ__sigma/regression_data/"):
            assert ".evtx" in seen, f"{path}.json matched but its .evtx twin did not"
    return found


@pytest.mark.parametrize("number", sorted(EXPECTED_COUNTS))
def test_story_detection_matches_exactly_the_ground_truth(
    number: int, scan: dict[int, set[Key]]
) -> None:
    yes, no = _ground_truth()
    assert len(yes[number]) == EXPECTED_COUNTS[number]
    assert scan[number] == yes[number]
    assert not scan[number] & no


def test_no_ground_truth_negative_is_matched_by_any_detection(scan: dict[int, set[Key]]) -> None:
    _, no = _ground_truth()
    assert len(no) == 11
    assert not set().union(*scan.values()) & no
