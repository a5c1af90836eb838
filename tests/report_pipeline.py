"""Run the real pipeline (ingest -> parents -> detect -> context/risk) for the report tests.

The report tests use hand-made findings; where the real pipeline is importable and works,
some of them also check (or picture) the findings it produces from real logs. When a part
is missing, ``scan_paths`` returns the reason as a string, and callers skip or fall back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
SAMPLES = REPO / "samples" / "logs"


def scan_paths(paths: list[Path]) -> tuple[Any, dict[str, Any]] | str:
    """``(CaseData, accounting)`` for a scan of ``paths``, or the reason it cannot run."""
    try:
        from wmihunt import detect, ingest, store
        from wmihunt.context import infer_parents
        from wmihunt.case import load_case
        from wmihunt.rules.loader import load_story
    except ImportError as exc:
        return f"pipeline not available: {exc}"
    con = store.connect()
    try:
        stats = ingest.ingest_paths([str(p) for p in paths], con, workers=1)
        infer_parents(con)
        detect.run_detections(con, load_story())
        case = load_case(con)
    except Exception as exc:  # the pipeline is other modules' work in progress
        return f"pipeline failed: {type(exc).__name__}: {exc}"
    finally:
        con.close()
    return case, stats.to_dict()
