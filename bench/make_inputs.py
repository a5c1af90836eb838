#!/usr/bin/env python3
"""Build the benchmark inputs under bench/data/ (gitignored) from ../shared/corpus.

Sets (each a folder of several files, so worker processes can spread them):

* ``evtx``  — the corpus EVTX files, copied round-robin until ~300 MB.
* ``otrf``  — the OTRF archives unpacked (~105 MB of JSON lines), repeated to ~440 MB.
* ``gen``   — generated Winlogbeat JSON lines, Sysmon 1/3/7/10/13 + 4688 + 4104
  (``gen_events``), 2 million events in 4 files by default.
* ``evtx_x4``, ``otrf_x4`` — the same at four times the size (``--x4``), for the
  memory-scaling check. They take ~3 GB: delete them when done (``--clean``).

Every copy differs from the others by a few bytes the readers ignore (the unused tail of
the EVTX header block; a leading blank line of N spaces in JSON lines), so a scan that
identifies files by content hash still reads every copy.

    python bench/make_inputs.py                 # evtx, otrf, gen
    python bench/make_inputs.py --x4            # also the 4x sets
    python bench/make_inputs.py --clean x4      # delete the 4x sets
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
CORPUS = BENCH.parents[1] / "shared" / "corpus"
MB = 1_000_000

#: The EVTX header block is 4096 bytes; only its first 128 are the header (the CRC covers
#: 120). The copy marker goes in the unused rest.
_EVTX_MARK_AT = 3072


def corpus_evtx() -> list[Path]:
    return sorted(CORPUS.rglob("*.evtx"))


def otrf_json() -> list[tuple[str, bytes]]:
    """(name, content) of every JSON file inside the OTRF archives."""
    out: list[tuple[str, bytes]] = []
    for archive in sorted((CORPUS / "OTRF__Security-Datasets").rglob("*")):
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as z:
                out += [(Path(n).name, z.read(n)) for n in z.namelist() if n.endswith(".json")]
        elif archive.name.endswith(".tar.gz"):
            # some lack the gzip trailer: decompress what is there, then read the tar
            raw = zlib.decompressobj(31).decompress(archive.read_bytes())
            with tarfile.open(fileobj=io.BytesIO(raw)) as t:
                for m in t.getmembers():
                    f = t.extractfile(m)
                    if m.isfile() and f is not None and m.name.endswith(".json"):
                        out.append((Path(m.name).name, f.read()))
    return out


def _fresh(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def build_evtx(folder: Path, target_mb: float) -> tuple[int, int]:
    """Copies of the corpus EVTX files, round-robin, until ``target_mb``."""
    _fresh(folder)
    sources = [(p, p.read_bytes()) for p in corpus_evtx()]
    if not sources:
        sys.exit(f"no EVTX files under {CORPUS}")
    total = n = 0
    while total < target_mb * MB:
        for path, content in sources:
            mark = f"wmihunt-bench copy {n}".encode()
            body = content[:_EVTX_MARK_AT] + mark + content[_EVTX_MARK_AT + len(mark) :]
            (folder / f"{n:05d}_{path.name}").write_bytes(body)
            total += len(body)
            n += 1
            if total >= target_mb * MB:
                break
    return n, total


def build_otrf(folder: Path, target_mb: float) -> tuple[int, int]:
    """The unpacked OTRF JSON lines, repeated (largest first each round) to ``target_mb``."""
    _fresh(folder)
    sources = sorted(otrf_json(), key=lambda x: -len(x[1]))
    target = target_mb * MB
    total = n = 0
    while total < target * 0.99:
        for name, content in sources:
            if total + len(content) > target * 1.01:
                continue  # the last round: only what still fits
            with open(folder / f"{n:04d}_{name}", "wb") as f:
                f.write(b" " * (n + 1) + b"\n")  # a blank line that makes each copy unique
                f.write(content)
            total += len(content) + n + 2
            n += 1
        if all(total + len(c) > target * 1.01 for _, c in sources):
            break
    return n, total


def build_gen(folder: Path, events: int, files: int) -> tuple[int, int]:
    """Generated Winlogbeat JSON lines, ``events`` in ``files`` files."""
    sys.path.insert(0, str(BENCH))
    from gen_events import Generator

    _fresh(folder)
    gen = Generator()
    total = 0
    per_file = -(-events // files)
    for i in range(files):
        n = min(per_file, events - i * per_file)
        with open(folder / f"winlogbeat_{i:02d}.jsonl", "wb", buffering=1 << 20) as f:
            for line in gen.events(n):
                f.write(line)
            total += f.tell()
    return files, total


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "sets",
        nargs="*",
        default=["evtx", "otrf", "gen"],
        help="sets to build: evtx otrf gen evtx_x4 otrf_x4 (default: the first three)",
    )
    ap.add_argument("--x4", action="store_true", help="also build evtx_x4 and otrf_x4")
    ap.add_argument("--evtx-mb", type=float, default=300)
    ap.add_argument("--otrf-mb", type=float, default=440)
    ap.add_argument("--gen-events", type=int, default=2_000_000)
    ap.add_argument("--gen-files", type=int, default=4)
    ap.add_argument(
        "--clean",
        action="store_true",
        help="delete the named sets (x4 = both 4x sets) instead of building",
    )
    args = ap.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus not present: {CORPUS}", file=sys.stderr)
        return 2
    sets = list(args.sets) + (["evtx_x4", "otrf_x4"] if args.x4 else [])
    if args.clean:
        for name in sets:
            for s in ["evtx_x4", "otrf_x4"] if name == "x4" else [name]:
                shutil.rmtree(DATA / s, ignore_errors=True)
                print(f"deleted {DATA / s}")
        return 0
    free = shutil.disk_usage(BENCH).free
    print(f"free disk: {free / 1e9:.1f} GB")
    builders = {
        "evtx": lambda d: build_evtx(d, args.evtx_mb),
        "otrf": lambda d: build_otrf(d, args.otrf_mb),
        "gen": lambda d: build_gen(d, args.gen_events, args.gen_files),
        "evtx_x4": lambda d: build_evtx(d, 4 * args.evtx_mb),
        "otrf_x4": lambda d: build_otrf(d, 4 * args.otrf_mb),
    }
    for name in sets:
        if name not in builders:
            ap.error(f"unknown set {name!r}")
        files, size = builders[name](DATA / name)
        print(f"{name}: {files} files, {size / MB:.1f} MB -> {os.path.relpath(DATA / name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
