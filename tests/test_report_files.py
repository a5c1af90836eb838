"""Golden tests of the file outputs: JSONL, CSV, summary CSV, Timesketch, and the schema."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
import report_fixtures as fx
from report_pipeline import CORPUS, scan_paths

from wmihunt.report import csv_out, jsonl, timesketch
from wmihunt.report.fields import OUTPUT_FIELD_TYPES
from wmihunt.report.schema import build_finding_schema, load_finding_schema, schema_text

REPO = Path(__file__).resolve().parents[1]
TIME_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

GOLDEN_JSONL_KEYS = [
    "finding_id", "detection", "detection_id", "type", "risk_score", "mitre", "message",
    "time", "dest", "user", "data_source",
    "process", "process_name", "process_id", "process_guid", "parent_process_name",
    "parent_process_id", "evidence", "context",
]  # fmt: skip
GOLDEN_JSONL_TYPES = {
    "finding_id": int, "detection": str, "detection_id": str, "type": str, "risk_score": int,
    "mitre": list, "message": str, "time": str, "dest": str, "user": str, "data_source": str,
    "process": str, "process_name": str, "process_id": int, "process_guid": str,
    "parent_process_name": str, "parent_process_id": int, "evidence": dict, "context": dict,
}  # fmt: skip
GOLDEN_EVIDENCE = {
    "file": "logs/ws01/Sysmon.evtx", "member": None, "record_id": 301877, "line": None,
    "channel": "Microsoft-Windows-Sysmon/Operational", "event_id": "1",
}  # fmt: skip
GOLDEN_CSV_HEADER = [
    "finding_id", "detection", "detection_id", "type", "risk_score", "mitre", "message",
    "time", "dest", "user", "data_source",
    "message_upstream", "rule_id", "rule_title", "rule_source",
    "process", "process_name", "process_path", "original_file_name", "process_id",
    "process_guid", "parent_process", "parent_process_name", "parent_process_path",
    "parent_process_id", "parent_process_guid", "parent_inferred", "user_id", "logon_id",
    "integrity_level", "kind", "operation", "name", "namespace", "query", "consumer_type",
    "consumer", "destination", "filter", "script_block_text", "script_block_id",
    "message_number", "message_total", "path",
    "evidence_file", "evidence_member", "evidence_record_id", "evidence_line",
    "evidence_channel", "evidence_event_id",
]  # fmt: skip


def _lines(findings: list[dict], **kw) -> list[dict]:
    buf = io.BytesIO()
    assert jsonl.write_jsonl(findings, buf, **kw) == len(findings)
    text = buf.getvalue().decode("utf-8")
    assert text.endswith("\n") and text.count("\n") == len(findings)
    return [json.loads(line) for line in text.splitlines()]


def _validator() -> jsonschema.Draft202012Validator:
    schema = load_finding_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# --- JSONL -------------------------------------------------------------------------------


def test_jsonl_golden_field_names_order_and_types():
    lines = _lines(fx.realistic_findings())
    assert len(lines) == 9
    line = lines[3]  # the WmiPrvSE -> cmd finding, with context
    assert list(line) == GOLDEN_JSONL_KEYS
    for key, typ in GOLDEN_JSONL_TYPES.items():
        assert type(line[key]) is typ, key
    assert line["evidence"] == GOLDEN_EVIDENCE
    assert list(line["evidence"]) == list(GOLDEN_EVIDENCE)
    assert TIME_Z.match(line["time"])
    assert line["mitre"] == ["T1047"] and line["risk_score"] == 49
    assert set(line["context"]) == {"tree", "origin"}
    assert line["context"]["tree"]["process"]["process_id"] == 4404


def test_jsonl_every_line_has_core_and_full_evidence():
    for line in _lines(fx.realistic_findings()):
        assert list(line)[:11] == GOLDEN_JSONL_KEYS[:11]
        assert list(line["evidence"]) == list(GOLDEN_EVIDENCE)
        assert list(line)[-1] in ("evidence", "context")


def test_jsonl_without_context_and_without_finding_id():
    findings = fx.realistic_findings()
    for f in findings:
        del f["finding_id"]
    lines = _lines(findings, include_context=False)
    assert all("context" not in line and "finding_id" not in line for line in lines)
    assert next(iter(lines[0])) == "detection"


def test_jsonl_escapes_control_characters_and_keeps_text():
    f = fx.realistic_findings()[0]
    f["process"] = "wmic " + fx.ANSI + " \u202e"
    raw = jsonl.finding_line(f)
    assert b"\x1b" not in raw and b"\x07" not in raw
    assert json.loads(raw)["process"] == f["process"]  # lossless


def test_jsonl_bad_values_do_not_raise():
    f = fx.realistic_findings()[0]
    f["time"] = datetime(2024, 3, 11, 9, 13, 58, 123000)  # naive UTC from DuckDB
    f["huge"] = 1 << 70  # beyond orjson's 64-bit ints
    f["when"] = {datetime(2024, 1, 1)}
    f["evidence"] = None
    f["mitre"] = "T1047"
    line = json.loads(jsonl.finding_line(f))
    assert line["time"] == "2024-03-11T09:13:58.123000Z"
    assert line["huge"] == 1 << 70
    assert line["evidence"] == dict.fromkeys(GOLDEN_EVIDENCE)
    assert line["mitre"] == ["T1047"]


# --- JSON Schema -------------------------------------------------------------------------


def test_schema_file_is_generated_from_models():
    path = REPO / "src" / "wmihunt" / "schemas" / "finding.schema.json"
    assert path.read_text(encoding="utf-8") == schema_text(), (
        "regenerate: python -m wmihunt.report.schema > src/wmihunt/schemas/finding.schema.json"
    )
    assert load_finding_schema() == build_finding_schema()
    for name in ("process", "script_block_text", "consumer", "query", "parent_inferred"):
        assert name in load_finding_schema()["properties"]


def test_schema_validates_every_fixture_line():
    validator = _validator()
    for line in _lines(fx.realistic_findings()) + _lines(fx.hostile_findings()):
        errors = [e.message for e in validator.iter_errors(line)]
        assert not errors, errors


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"risk_score": "49"}, "risk_score"),
        ({"time": "2024-03-11 09:14:05"}, "time"),
        ({"mitre": ["1047"]}, "mitre"),
        ({"data_source": "winlogbeat"}, "data_source"),
        ({"process_id": "4404"}, "process_id"),
        ({"unknown_field": 1}, ""),
    ],
)
def test_schema_rejects_wrong_types(change, path):
    line = _lines(fx.realistic_findings())[3] | change
    errors = list(_validator().iter_errors(line))
    assert errors, change
    assert any(path in "/".join(map(str, e.absolute_path)) or not path for e in errors)


def test_schema_rejects_incomplete_evidence():
    line = _lines(fx.realistic_findings())[3]
    del line["evidence"]["record_id"]
    assert list(_validator().iter_errors(line))


def test_schema_accepts_the_detection_engines_shape():
    """A row of the engine's ``findings`` table through its own ``finding_to_json``."""
    findings_mod = pytest.importorskip("wmihunt.findings")
    row = {c: None for c in findings_mod.COLUMN_NAMES} | {
        "finding_id": "5d41402abc4b2a76b9719d911017c592",
        "detection": fx.D3[0], "detection_id": fx.D3[1], "detection_number": 3,
        "rule_id": "d2bda81e-b2e5-5903-bfd3-4a10813a11ed", "rule_title": fx.D3[0],
        "rule_source": "story", "type": "TTP", "risk_score": 49, "mitre": ["T1047"],
        "message": "WmiPrvSE.exe started cmd.exe on ws01", "time": datetime(2024, 3, 11, 9, 14, 5),
        "dest": fx.WS, "user": fx.ADMIN, "data_source": "security",
        "fields": json.dumps({"process": "cmd.exe /c whoami", "process_id": 4404,
                              "parent_process_name": "WmiPrvSE.exe"}),
        "parent_inferred": True, "channel": "Security", "event_id": "4688",
        "ev_file": "logs/Security.evtx", "ev_record_id": 912004,
    }  # fmt: skip
    finding = findings_mod.finding_to_json(row)
    line = json.loads(jsonl.finding_line(finding))
    assert not [e.message for e in _validator().iter_errors(line)]
    flat = csv_out.flatten_finding(finding)
    assert flat["rule_source"] == "story" and flat["evidence_record_id"] == 912004


def test_docs_output_md_documents_every_field():
    doc = (REPO / "docs" / "output.md").read_text(encoding="utf-8")
    schema = load_finding_schema()
    names = [*schema["properties"], *schema["$defs"]["evidence"]["properties"]]
    names += [c for c in GOLDEN_CSV_HEADER]
    names += ["datetime", "timestamp_desc", "timestamp", "detection_message", "firstTime"]
    missing = [n for n in names if f"`{n}`" not in doc]
    assert not missing, f"docs/output.md does not document: {missing}"


def test_corpus_scan_lines_validate():
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not present: {CORPUS}")
    case, _ = scan_paths([CORPUS])
    lines = _lines(case.findings)
    assert lines, "the corpus scan produced no findings"
    validator = _validator()
    bad = {}
    for line in lines:
        for error in validator.iter_errors(line):
            bad.setdefault(error.message, line.get("detection"))
    assert not bad, (
        "findings the schema rejects (document new fields in docs/output.md and "
        f"wmihunt/report/fields.py, then regenerate the schema): {bad}"
    )


# --- CSV ---------------------------------------------------------------------------------


def _csv(findings: list[dict], **kw) -> list[dict[str, str]]:
    buf = io.StringIO()
    assert csv_out.write_csv(findings, buf, **kw) == len(findings)
    text = buf.getvalue()
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    rows = [dict(zip(header, r, strict=True)) for r in reader]
    return [{"__header__": header}, *rows]  # type: ignore[list-item]


def test_csv_golden_header_and_types():
    header, *rows = _csv(fx.realistic_findings())
    assert header["__header__"] == GOLDEN_CSV_HEADER
    assert len(rows) == 9
    for row in rows:
        assert int(row["risk_score"]) in (25, 30, 36, 49, 63, 80, 100)
        assert TIME_Z.match(row["time"])
        assert re.fullmatch(r"T\d{4}(\.\d{3})?(;T\d{4}(\.\d{3})?)*", row["mitre"])
        assert row["evidence_file"]
        assert row["evidence_record_id"] == "" or int(row["evidence_record_id"]) > 0
        assert row["evidence_line"] == "" or int(row["evidence_line"]) > 0
        assert row["parent_inferred"] in ("", "true", "false")
        for key in ("process_id", "parent_process_id", "message_number", "message_total"):
            assert row[key] == "" or int(row[key]) >= 0, key
    assert rows[4]["parent_inferred"] == "true"
    assert rows[7]["evidence_member"] == "falcon.json" and rows[7]["evidence_line"] == "4411"
    assert rows[8]["script_block_text"].startswith("function Invoke-WMIExec {\n")


def test_csv_extra_fields_and_nested_objects_get_columns():
    f = fx.realistic_findings()[0] | {"rule": {"id": "r1", "title": "t", "source": "user"},
                                      "hashes": "SHA256=AB", "zz_new": 3}  # fmt: skip
    header, row = _csv([f])
    cols = header["__header__"]
    assert cols.index("hashes") < cols.index("zz_new") < cols.index("evidence_file")
    assert row["rule_id"] == "r1" and row["rule_source"] == "user" and row["zz_new"] == "3"
    assert "context" not in cols


def test_csv_neutralizes_formulas_unless_asked_not_to():
    f = fx.realistic_findings()[0] | {"process": '=HYPERLINK("http://x","a")', "user": "@u"}
    _, row = _csv([f])
    assert row["process"] == '\'=HYPERLINK("http://x","a")' and row["user"] == "'@u"
    _, raw = _csv([f], excel_safe=False)
    assert raw["process"] == f["process"] and raw["user"] == "@u"


def test_csv_keeps_multiline_text_in_one_cell():
    _, *rows = _csv(fx.realistic_findings())
    assert rows[8]["script_block_text"] == fx.realistic_findings()[8]["script_block_text"]


def test_summary_csv_union_of_grouping_columns():
    buf = io.StringIO()
    assert csv_out.write_summary_csv(fx.realistic_summary(), buf) == 3
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert list(rows[0])[:5] == ["detection", "detection_id", "count", "firstTime", "lastTime"]
    assert "destination" in rows[0] and rows[0]["destination"] == ""
    assert rows[1]["count"] == "2" and rows[1]["parent_process_name"] == "WmiPrvSE.exe"
    assert rows[2]["destination"].startswith("powershell.exe")


def test_csv_to_file_path(tmp_path):
    out = tmp_path / "f.csv"
    csv_out.write_csv(fx.realistic_findings(), out)
    data = out.read_bytes()
    assert data.startswith(b"finding_id,detection,") and data.count(b"\r\n") >= 10


# --- Timesketch ---------------------------------------------------------------------------


def test_timesketch_lines():
    buf = io.BytesIO()
    assert timesketch.write_timesketch(fx.realistic_findings(), buf) == 9
    events = [json.loads(x) for x in buf.getvalue().splitlines()]
    first = events[3]
    assert list(first)[:4] == ["message", "datetime", "timestamp", "timestamp_desc"]
    assert first["datetime"] == "2024-03-11T09:14:05+00:00"
    assert first["timestamp"] == 1710148445_000000
    assert first["timestamp_desc"] == "Event Time"
    assert first["message"] == (
        "[TTP 49] Process Execution via WMI: WmiPrvSE.exe started cmd.exe on ws01.corp.example"
    )
    assert first["detection_message"].startswith("WmiPrvSE.exe started")
    assert first["mitre"] == "T1047" and first["evidence_record_id"] == 301877
    assert first["dest"] == fx.WS and "context" not in first and "evidence" not in first
    for e in events:
        assert isinstance(e["message"], str) and e["datetime"] and e["timestamp_desc"]


def test_timesketch_finding_without_time_is_kept():
    f = fx.realistic_findings()[0] | {"time": None}
    event = timesketch.to_timesketch(f)
    assert event["datetime"] == "1970-01-01T00:00:00+00:00"
    assert event["timestamp"] == 0 and event["timestamp_desc"] == "No Event Time"


def test_output_field_types_come_from_models():
    assert OUTPUT_FIELD_TYPES["process_id"] == "BIGINT"
    assert OUTPUT_FIELD_TYPES["parent_inferred"] == "BOOLEAN"
    assert "ev_file" not in OUTPUT_FIELD_TYPES and "message" not in OUTPUT_FIELD_TYPES
