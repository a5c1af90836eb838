"""Generate the fuzz seed corpus: small valid inputs per target, made by the project.

Seeds come from the project's own sample logs (``samples/logs``: XML, Winlogbeat, NXLog
and CrowdStrike JSON), turned into every format the readers take: XML slices, EVTX
written by ``evtxgen``, JSON lines and documents in each dialect, archives (gzip, bzip2,
xz, zip, tar, nested, damaged), and RawEvent records for the normalizer target. When the
shared corpus of real logs is present (``../shared/corpus``), seeds are also cut from it
at run time (one-chunk EVTX extracts, the first lines of the OTRF archives, the SigmaHQ
regression JSON); those land in the output folder, never in the repository.

    python -m fuzz.seeds OUT [--no-corpus]

Output: ``OUT/<target>/<sha1 prefix>-<label>``; the same inputs give the same files.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import io
import lzma
import re
import struct
import sys
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import evtx as pyevtx
import orjson

from .evtxgen import CHUNK, FILE_HEADER, evtx_from_xml
from .mutators import _tar, _zip

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "logs"
CORPUS = ROOT.parent / "shared" / "corpus"
TARGETS = ("evtx", "xml", "jsonl", "json", "crowdstrike", "archive", "normalize")

_EVENT = re.compile(rb"<Event[\s>].*?</Event>", re.DOTALL)


class _Writer:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.counts: Counter[str] = Counter()

    def add(self, target: str, label: str, data: bytes) -> None:
        folder = self.out / target
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(data).hexdigest()[:12]
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:60]
        path = folder / f"{digest}-{safe}"
        if not path.exists():
            path.write_bytes(data)
            self.counts[target] += 1


def _groups(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- from the project's samples -------------------------------------------------------
def _xml_seeds(w: _Writer, samples: Path) -> list[bytes]:
    all_events: list[bytes] = []
    for path in sorted(samples.glob("*.xml")):
        text = path.read_bytes()
        events = _EVENT.findall(text)
        all_events.extend(events)
        w.add("xml", path.name, text)
        for n, group in enumerate(_groups(events, 3)):
            label = f"{path.stem}-{n}"
            w.add("xml", f"{label}-export", b"<Events>\n" + b"\n".join(group) + b"\n</Events>")
            if n % 4 == 0:
                w.add("xml", f"{label}-bare", b"\n".join(group) + b"\n")
            w.add("evtx", f"{path.stem}-{n}", evtx_from_xml(b"".join(group[:4]), 1000 + n))
        if path.name == "ws01_security.xml":  # one multi-chunk file
            w.add("evtx", f"{path.stem}-whole", evtx_from_xml(text, 201000))
    return all_events


def _lines(data: bytes) -> list[bytes]:
    return [line for line in data.splitlines() if line.strip()]


def _json_seeds(w: _Writer, samples: Path, xml_events: list[bytes]) -> None:
    dialects: dict[str, list[bytes]] = {}
    for path in sorted(samples.glob("*.json*")):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        lines = _lines(data)
        target = "crowdstrike" if b'"event_simpleName"' in data[:2000] else "jsonl"
        dialects[path.stem] = lines
        for n, group in enumerate(_groups(lines, 5)):
            w.add(target, f"{path.stem}-{n}", b"\n".join(group) + b"\n")
    # EVTX-as-JSON lines, as evtx_dump writes them.
    rendered = _evtx_json(evtx_from_xml(b"".join(xml_events[:40])))
    dialects["evtx_json"] = rendered
    for n, group in enumerate(_groups(rendered, 5)):
        w.add("jsonl", f"evtx_json-{n}", b"\n".join(group) + b"\n")
    for name, lines in dialects.items():
        objects = [orjson.loads(line) for line in lines[:3]]
        w.add("json", f"{name}-array", orjson.dumps(objects, option=orjson.OPT_INDENT_2))
        w.add("json", f"{name}-object", orjson.dumps(objects[0], option=orjson.OPT_INDENT_2))
        w.add("json", f"{name}-concatenated", b"\n".join(orjson.dumps(o) for o in objects))


def _evtx_json(data: bytes) -> list[bytes]:
    parser = pyevtx.PyEvtxParser(io.BytesIO(data))
    return [record["data"].encode() for record in parser.records_json()]


def _normalize_seeds(w: _Writer, samples: Path) -> None:
    """One RawEvent per (channel, event id) seen in the samples, as a JSON object."""
    from wmihunt.normalize import is_relevant
    from wmihunt.readers import read_path

    seen: Counter[tuple[str, object]] = Counter()
    for path in sorted(samples.iterdir()):
        for event in read_path(str(path), is_relevant, lambda _stats: None):
            key = (event.channel, event.event_id)
            seen[key] += 1
            if seen[key] > 2:
                continue
            record = {
                "channel": event.channel, "event_id": event.event_id, "data": event.data,
                "provider": event.provider, "computer": event.computer, "time": event.time,
                "record_id": event.record_id, "user_sid": event.user_sid,
                "message": event.message, "userdata_element": event.userdata_element,
                "extra": event.extra,
            }  # fmt: skip
            w.add("normalize", f"{event.channel}-{event.event_id}", orjson.dumps(record))


def _archive_seeds(w: _Writer) -> None:
    """Containers around the other seeds, some damaged on purpose."""
    kinds = ("xml", "jsonl", "evtx", "crowdstrike")
    xml, jsonl, ev, cs = (sorted((w.out / t).iterdir())[0].read_bytes() for t in kinds)
    gz = gzip.compress(jsonl, mtime=0)
    w.add("archive", "jsonl.gz", gz)
    w.add("archive", "jsonl-no-trailer.gz", gz[:-8])
    w.add("archive", "jsonl-cut.gz", gz[: len(gz) // 2])
    w.add("archive", "jsonl-two-members.gz", gz + gzip.compress(cs, mtime=0))
    w.add("archive", "xml.bz2", bz2.compress(xml))
    w.add("archive", "cs.xz", lzma.compress(cs))
    w.add("archive", "evtx.gz", gzip.compress(ev, mtime=0))
    w.add("archive", "mixed.zip", _zip([("a/sec.xml", xml), ("b/x.jsonl", jsonl),
                                        ("c/log.evtx", ev)]))  # fmt: skip
    tar = _tar([("logs/a.json", jsonl), ("logs/b.xml", xml)])
    w.add("archive", "logs.tar", tar)
    w.add("archive", "logs.tar.gz", gzip.compress(tar, mtime=0))
    w.add("archive", "logs-no-trailer.tar.gz", gzip.compress(tar, mtime=0)[:-8])
    w.add("archive", "evil-names.tar", _tar([("/etc/passwd", jsonl), ("../../x.xml", xml),
                                             ("a/../../../y.json", cs)]))  # fmt: skip
    w.add("archive", "zip-in-tar.tar", _tar([("inner.zip", _zip([("x.xml", xml)]))]))
    w.add("archive", "gz-in-gz.gz", gzip.compress(gzip.compress(jsonl, mtime=0), mtime=0))
    # a small expansion "bomb": one JSON line start and a megabyte of spaces
    w.add("archive", "spaces.gz", gzip.compress(b'{"EventID": 1, "x": "' + b" " * (1 << 20)))
    utf16 = b"\xff\xfe" + xml.decode("utf-8").encode("utf-16-le")
    w.add("archive", "xml-utf16.gz", gzip.compress(utf16, mtime=0))


# -- from the shared corpus (read at run time, never committed) -----------------------
def _evtx_chunks(data: bytes, most: int) -> Iterator[bytes]:
    """One-chunk EVTX files cut from a real file (header patched, checksum recomputed)."""
    if len(data) < FILE_HEADER + CHUNK or data[:8] != b"ElfFile\x00":
        return
    header = bytearray(data[:FILE_HEADER])
    struct.pack_into("<QQ", header, 8, 0, 0)
    struct.pack_into("<H", header, 42, 1)
    struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120])))
    for i in range(most):
        chunk = data[FILE_HEADER + i * CHUNK : FILE_HEADER + (i + 1) * CHUNK]
        if len(chunk) < CHUNK or chunk[:8] != b"ElfChnk\x00":
            return
        yield bytes(header) + chunk


def _archive_lines(path: Path, most: int) -> Iterator[tuple[str, list[bytes]]]:
    """(member, first lines) of each member of a zip or tar.gz of JSON lines."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for info in z.infolist()[:3]:
                    with z.open(info) as f:
                        yield info.filename, [f.readline() for _ in range(most)]
        else:
            with tarfile.open(path, "r|*") as tar:
                for member in tar:
                    f = tar.extractfile(member) if member.isreg() else None
                    if f is not None:
                        yield member.name, [f.readline() for _ in range(most)]
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError):
        return


def _corpus_seeds(w: _Writer, corpus: Path) -> None:
    for path in sorted(corpus.rglob("*.evtx")):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for n, seed in enumerate(_evtx_chunks(data, 2)):
            w.add("evtx", f"corpus-{path.stem}-{n}", seed)
    for path in sorted(corpus.rglob("*.json")):
        data = path.read_bytes()[: 256 << 10]
        w.add("json" if data.lstrip()[:1] == b"[" or b"\n  " in data[:200] else "jsonl",
              f"corpus-{path.stem}", data)  # fmt: skip
    for path in sorted([*corpus.rglob("*.zip"), *corpus.rglob("*.tar.gz")]):
        for member, lines in _archive_lines(path, 40):
            lines = [line for line in lines if line.strip()]
            for n, group in enumerate(_groups(lines, 10)):
                w.add("jsonl", f"corpus-{Path(member).stem}-{n}", b"".join(group))
            if lines:
                w.add("archive", f"corpus-{Path(member).stem}.gz",
                      gzip.compress(b"".join(lines), mtime=0))  # fmt: skip


def generate(out: Path, *, samples: Path = SAMPLES, corpus: Path | None = CORPUS) -> Counter[str]:
    """Write the seed corpus under ``out``; return the number of new seeds per target."""
    w = _Writer(out)
    xml_events = _xml_seeds(w, samples)
    _json_seeds(w, samples, xml_events)
    _normalize_seeds(w, samples)
    _archive_seeds(w)
    if corpus is not None and corpus.is_dir():
        _corpus_seeds(w, corpus)
    return w.counts


def load(folder: Path, target: str) -> list[bytes]:
    """The seeds of one target, in a stable order."""
    return [p.read_bytes() for p in sorted((folder / target).glob("*")) if p.is_file()]


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--no-corpus", action="store_true", help="samples only")
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    args = parser.parse_args(list(argv) if argv is not None else None)
    counts = generate(args.out, samples=args.samples, corpus=None if args.no_corpus else CORPUS)
    for target in TARGETS:
        total = len(list((args.out / target).glob("*")))
        print(f"{target:12} {total:5} seeds ({counts[target]} new)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
