"""Run the real pipeline (ingest -> parents -> detect -> context/risk) for the report tests.

The report tests use hand-made findings; some also check (or picture) the findings the
real pipeline produces from real logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wmihunt import detect, ingest, store
from wmihunt.case import load_case
from wmihunt.context import infer_parents
from wmihunt.rules.loader import load_story

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
SAMPLES = REPO / "samples" / "logs"


def scan_paths(paths: list[Path]) -> tuple[Any, dict[str, Any]]:
    """``(CaseData, accounting)`` for a scan of ``paths`` through the real pipeline."""
    con = store.connect()
    try:
        stats = ingest.ingest_paths([str(p) for p in paths], con, workers=1)
        infer_parents(con)
        detect.run_detections(con, load_story())
        case = load_case(con)
    finally:
        con.close()
    return case, stats.to_dict()
