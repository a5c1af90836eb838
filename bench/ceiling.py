#!/usr/bin/env python3
"""The parser ceilings of issue 6: bare loops that read every record and do nothing else.

    python bench/ceiling.py evtx DIR      # for every file: PyEvtxParser(path).records_json()
    python bench/ceiling.py jsonl DIR     # for every line of every file: orjson.loads(line)
    python bench/ceiling.py evtx2 DIR     # the EVTX loop split over 2 processes (reference)
    python bench/ceiling.py evtx-peek DIR # EVTX loop + the reader's channel/EventID slice

Prints one JSON object: records, bytes, files, seconds (the loop only, imports excluded).
One process, as the issue defines them (except evtx2, a reference for two cores).
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def files_under(folder: str) -> list[str]:
    out = []
    for root, _dirs, names in os.walk(folder):
        out += [os.path.join(root, n) for n in names if not n.startswith(".")]
    return sorted(out)


def evtx_loop(paths: list[str]) -> int:
    from evtx import PyEvtxParser

    n = 0
    for path in paths:
        for _record in PyEvtxParser(path).records_json():
            n += 1
    return n


def evtx_peek_loop(paths: list[str]) -> int:
    """The bare loop plus the EVTX reader's per-record key slice (no decoding)."""
    from evtx import PyEvtxParser

    n = 0
    for path in paths:
        for record in PyEvtxParser(path).records_json():
            text = record["data"]
            i = text.find('"EventID":') + 10
            j = text.find(",", i)
            k = text.find('"Channel":"', j) + 11
            _key = text[k : text.find('"', k)], text[i:j]
            n += 1
    return n


def jsonl_loop(paths: list[str]) -> int:
    import orjson

    loads = orjson.loads
    n = 0
    for path in paths:
        with open(path, "rb") as f:
            for line in f:
                try:
                    loads(line)
                except orjson.JSONDecodeError:  # the blank first line of a bench copy
                    continue
                n += 1
    return n


def evtx_parallel(paths: list[str], workers: int = 2) -> int:
    by_size = sorted(paths, key=os.path.getsize, reverse=True)
    shares: list[list[str]] = [[] for _ in range(workers)]
    sizes = [0] * workers
    for p in by_size:  # greedy balance by bytes
        i = sizes.index(min(sizes))
        shares[i].append(p)
        sizes[i] += os.path.getsize(p)
    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(evtx_loop, shares))


LOOPS = {
    "evtx": evtx_loop,
    "jsonl": jsonl_loop,
    "evtx2": evtx_parallel,
    "evtx-peek": evtx_peek_loop,
}


def main() -> int:
    kind, folder = sys.argv[1], sys.argv[2]
    paths = files_under(folder)
    if kind in ("evtx", "evtx2", "evtx-peek"):
        import evtx  # noqa: F401  (import outside the timed loop)
    else:
        import orjson  # noqa: F401
    start = time.perf_counter()
    records = LOOPS[kind](paths)
    seconds = time.perf_counter() - start
    size = sum(os.path.getsize(p) for p in paths)
    print(json.dumps({"records": records, "bytes": size, "files": len(paths), "seconds": seconds}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
