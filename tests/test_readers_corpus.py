"""Every corpus file reads completely: nothing lost, nothing rejected, problems named."""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib
from pathlib import Path

import evtx
import pytest
from test_readers_helpers import CORPUS, collect, one

EVTX_FILES = sorted(CORPUS.glob("**/*.evtx")) if CORPUS.is_dir() else []
OTRF = CORPUS / "OTRF__Security-Datasets"
OTRF_ARCHIVES = sorted([*OTRF.glob("**/*.zip"), *OTRF.glob("**/*.tar.gz")]) if OTRF.is_dir() else []
SIGMA_JSON = sorted((CORPUS / "SigmaHQ__sigma").glob("**/*.json")) if CORPUS.is_dir() else []


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(CORPUS)) for p in paths]


def _skip_without_corpus(paths: list[Path]) -> None:
    if not paths:
        pytest.skip(f"corpus not present: {CORPUS}")


@pytest.mark.parametrize("path", EVTX_FILES or [None], ids=_ids(EVTX_FILES) or ["none"])
def test_evtx_reads_every_record(path: Path | None) -> None:
    _skip_without_corpus(EVTX_FILES)
    assert path is not None
    expected = sum(1 for _ in evtx.PyEvtxParser(str(path)).records_json())
    events, entries = collect(path)
    stats = one(entries)
    assert (stats.format, stats.read, stats.normalized) == ("evtx", expected, expected)
    assert (stats.rejected, stats.errors, stats.warnings) == (0, [], [])
    assert len(events) == expected


def _lines_in_archive(path: Path) -> int:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            return sum(
                sum(1 for line in z.open(info) if line.strip())
                for info in z.infolist()
                if not info.is_dir()
            )
    raw = zlib.decompressobj(31).decompress(path.read_bytes())  # ignores trailing bytes
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return sum(
            sum(1 for line in tar.extractfile(m) if line.strip())  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isreg()
        )


@pytest.mark.parametrize("path", OTRF_ARCHIVES or [None], ids=_ids(OTRF_ARCHIVES) or ["none"])
def test_otrf_archives_read_completely(path: Path | None) -> None:
    _skip_without_corpus(OTRF_ARCHIVES)
    assert path is not None
    _, entries = collect(path, want=lambda c, e: False)
    stats = one(entries)
    assert stats.path.startswith(f"{path}!")
    assert stats.format == "jsonl"
    assert stats.read == stats.skipped == _lines_in_archive(path)
    assert (stats.rejected, stats.errors) == (0, [])
    if path.name == "covenant_persistwmi.tar.gz":  # the archive with a stray byte after gzip
        assert len(stats.warnings) == 1
        assert "1 byte of trailing data after the end" in stats.warnings[0]["reason"]
    else:
        assert stats.warnings == []


def test_otrf_relevant_events_fields() -> None:
    path = OTRF / "datasets/atomic/windows/persistence/host/covenant_persistwmi.tar.gz"
    if not path.is_file():
        pytest.skip(f"corpus not present: {path}")
    events, _ = collect(path, want=lambda c, e: e in (19, 20, 21, 5861))
    binding = next(e for e in events if e.event_id == 21)
    assert binding.channel == "Microsoft-Windows-Sysmon/Operational"
    assert binding.computer == "IT001.shire.com"
    assert binding.member == "covenant_persistwmi_2019-12-05044734.json"
    assert binding.file == str(path)
    assert isinstance(binding.record_id, int) and binding.line is not None
    assert "Evil Persistence" in str(binding.data.get("Consumer"))


def test_sigma_json_matches_its_evtx_twin() -> None:
    _skip_without_corpus(SIGMA_JSON)
    for path in SIGMA_JSON:
        twin = path.with_suffix(".evtx")
        (from_json,), entries = collect(path)
        assert (one(entries).format, one(entries).read) == ("json", 1)
        (from_evtx,), _ = collect(twin)
        assert (from_json.channel, from_json.event_id, from_json.record_id) == (
            from_evtx.channel,
            from_evtx.event_id,
            from_evtx.record_id,
        )
        assert from_json.data == from_evtx.data
        assert from_json.userdata_element == from_evtx.userdata_element


def test_whole_corpus_walk_only_flags_non_log_files() -> None:
    _skip_without_corpus(EVTX_FILES)
    _, entries = collect(CORPUS, want=lambda c, e: False)
    flagged = {Path(s.path.split("!")[0]).suffix for s in entries if s.errors}
    assert flagged <= {".yml", ".md", ".csv"}
    assert sum(s.rejected for s in entries) == 0
