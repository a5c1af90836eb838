"""Hostile or broken user rules: a catastrophic regex runs in linear time (DuckDB's RE2),
an invalid rule is reported with its file and reason, an unknown field with the list of
fields the rule could use."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from wmihunt import store
from wmihunt.detect import run_detections
from wmihunt.models import MODELS
from wmihunt.rules.loader import load_rules_dir

HEADER = """title: {title}
id: 3f1e2d4c-0000-4000-8000-00000000000{n}
logsource:
    product: windows
    category: process_creation
"""
REDOS = (
    HEADER.format(title="Catastrophic regex", n=1)
    + """detection:
    selection:
        CommandLine|re: '(a+)+$'
    condition: selection
level: high
"""
)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _starts(*commands: str) -> pa.Table:
    rows = []
    for i, command in enumerate(commands):
        row = dict.fromkeys(MODELS["process_start"].column_names)
        row.update(uid=f"f|L{i}", dest="ws01", data_source="sysmon", process=command)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=MODELS["process_start"].arrow_schema)


@pytest.mark.parametrize("length", [100_000, 4_000_000])
def test_catastrophic_regex_runs_in_linear_time(tmp_path: Path, length: int) -> None:
    """``(a+)+$`` on 'aaa...ab' backtracks exponentially in Python's re (22 characters
    already take about half a second); through the SQL backend it runs on RE2, so a 4 MB
    value costs a fraction of a second."""
    rules = load_rules_dir(_write(tmp_path, "redos.yml", REDOS))
    assert rules.rejected == []
    (rule,) = rules.compiled
    assert rule.where == "regexp_matches(\"process\", '(a+)+$')"
    con = store.connect()
    store.load_batch(con, "process_start", _starts("a" * length + "b", "aaaa", "b" + "a" * length))
    started = time.perf_counter()
    result = run_detections(con, rules.compiled)
    seconds = time.perf_counter() - started
    assert result.errors == []
    assert result.counts == {"Catastrophic regex": 2}  # 'aaaa' and 'baaa...a'
    assert seconds < 5  # exponential backtracking would never finish
    con.close()


def test_invalid_rules_are_reported_by_file_and_reason(tmp_path: Path) -> None:
    process = HEADER.format(title="{title}", n=2)
    files = {
        "a_bad_yaml.yml": "title: [unclosed\ndetection: {\n",
        "b_no_condition.yml": process.format(title="No condition")
        + "detection:\n    selection:\n        Image|endswith: '\\wmic.exe'\n",
        "c_bad_modifier.yml": process.format(title="Unknown modifier")
        + "detection:\n    selection:\n        Image|frobnicate: x\n    condition: selection\n",
        "d_bad_regex.yml": process.format(title="Broken regex")
        + "detection:\n    selection:\n        CommandLine|re: '(unclosed'\n"
        "    condition: selection\n",
        "e_linux.yml": "title: Unmodelled\nlogsource:\n    product: linux\n"
        "    category: process_creation\ndetection:\n    selection:\n        Image: x\n"
        "    condition: selection\n",
        "f_ok.yml": REDOS,
    }
    for name, text in files.items():
        _write(tmp_path, name, text)
    rules = load_rules_dir(tmp_path)
    assert [Path(r.path).name for r in rules.compiled] == ["f_ok.yml"]
    got = [(Path(r.path).name, r.title, r.category, r.detail) for r in rules.rejected]
    assert sorted(got) == [
        ("a_bad_yaml.yml", None, "invalid rule",
         "invalid YAML: did not find expected ',' or ']' (line 2, column 10)"),
        ("b_no_condition.yml", "No condition", "invalid rule",
         "Sigma rule must contain at least one condition"),
        ("c_bad_modifier.yml", "Unknown modifier", "invalid rule",
         "Unknown modifier 'frobnicate'"),
        ("d_bad_regex.yml", "Broken regex", "invalid rule",
         "Regular expression '(unclosed' is invalid: missing ), unterminated subpattern at "
         "position 0"),
        ("e_linux.yml", "Unmodelled", "log source not modelled",
         "product=linux, category=process_creation"),
    ]  # fmt: skip
    for rejected in rules.rejected:  # every one names its file, as given
        assert Path(rejected.path).parent == tmp_path


def test_unknown_field_lists_the_known_fields(tmp_path: Path) -> None:
    text = HEADER.format(title="Unknown field", n=3) + (
        "detection:\n    selection:\n        Frobnicate: x\n    condition: selection\n"
    )
    rules = load_rules_dir(_write(tmp_path, "unknown.yml", text))
    (rejected,) = rules.rejected
    assert (rejected.category, rejected.title) == ("unknown field", "Unknown field")
    detail = rejected.detail
    assert detail.startswith("'Frobnicate' on process_creation (table process_start); known "
                             "fields: Channel, CommandLine, Computer, ")  # fmt: skip
    known = detail.split("known fields: ", 1)[1].split("; model columns: ")[0].split(", ")
    assert {"Image", "ParentImage", "OriginalFileName", "User", "CommandLine"} <= set(known)
    columns = detail.split("; model columns: ", 1)[1].split(", ")
    assert columns == MODELS["process_start"].column_names
