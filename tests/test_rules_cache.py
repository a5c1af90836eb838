"""The compiled-rule cache: an identical compile is reused, anything else recompiles."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from wmihunt.rules import cache, loader

RULE = """title: Wmic Remote Node {n}
id: 5a1c3b2e-0000-4000-8000-00000000000{n}
status: test
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    Image|endswith: '\\\\wmic.exe'
    CommandLine|contains: '/node:'
  condition: selection
level: medium
"""
BROKEN = "title: broken\ndetection: [unclosed\n"


@pytest.fixture
def rules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "a.yml").write_text(RULE.format(n=1))
    (folder / "b.yml").write_text(RULE.format(n=2))
    (folder / "c.yml").write_text(BROKEN)
    return folder


def _no_compile(*_a: object, **_k: object) -> loader.RuleSet:
    raise AssertionError("compiled again instead of using the cache")


def test_second_load_comes_from_the_cache(rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = loader.load_rules_dir(rules_dir)
    assert [r.title for r in first.compiled] == ["Wmic Remote Node 1", "Wmic Remote Node 2"]
    assert [Path(r.path).name for r in first.rejected] == ["c.yml"]
    monkeypatch.setattr(loader, "_compile_files", _no_compile)
    second = loader.load_rules_dir(rules_dir)
    assert second.compiled == first.compiled
    assert [r.meta.extra for r in second.compiled] == [r.meta.extra for r in first.compiled]
    assert second.rejected == first.rejected and second.filters == first.filters
    assert "wmic.exe" in second.compiled[0].where


def test_changed_file_is_compiled_again(rules_dir: Path) -> None:
    loader.load_rules_dir(rules_dir)
    (rules_dir / "b.yml").write_text(RULE.format(n=2).replace("/node:", "/user:"))
    again = loader.load_rules_dir(rules_dir)
    assert "/user:" in again.compiled[1].where
    assert "/node:" not in again.compiled[1].where


def test_damaged_entry_is_ignored_and_rewritten(rules_dir: Path) -> None:
    first = loader.load_rules_dir(rules_dir)
    (entry,) = (Path(cache.cache_dir() or "") / "").glob("rules-*.json")
    entry.write_bytes(b'{"__dataclass__": "RuleSet", "compiled": [')
    assert loader.load_rules_dir(rules_dir).compiled == first.compiled
    assert cache.load(entry.stem.removeprefix("rules-")) is not None


def test_off_writes_nothing(
    tmp_path: Path, rules_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.ENV, "off")
    assert cache.cache_dir() is None
    assert len(loader.load_rules_dir(rules_dir).compiled) == 2
    assert not (tmp_path / "cache").exists()


def test_story_rules_are_cached_too(rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    story = loader.load_story()
    monkeypatch.setattr(loader, "_compile_files", _no_compile)
    assert loader.load_story() == story


def test_values_json_cannot_hold_exactly_are_not_cached(
    rules_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TypeError):
        cache._encode({"when": dt.date(2024, 3, 12)})
    with pytest.raises(TypeError):
        cache._encode(float("nan"))
    ruleset = loader.load_rules_dir(rules_dir)
    ruleset.compiled[0].meta.extra["when"] = dt.date(2024, 3, 12)
    cache.store("x" * 64, ruleset)  # silently not stored
    assert cache.load("x" * 64) is None
