"""The pySigma backend and model pipeline: SQL semantics, executed on DuckDB rows."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule
from test_detect_helpers import insert, process_row, story

from wmihunt import store
from wmihunt.backend import DUCKDB, SPARK, SparkSqlBackend, SqlBackend
from wmihunt.backend.errors import (
    KEYWORDS,
    LOGSOURCE_NOT_MODELLED,
    REGEX,
    UNKNOWN_FIELD,
    UNSUPPORTED,
)
from wmihunt.pipeline import model_pipeline
from wmihunt.rules import CompiledRule, Rejected, compile_rule

PROC = {"product": "windows", "category": "process_creation"}


def compile_detection(
    detection: dict[str, Any], logsource: dict[str, str] | None = None, **extra: Any
) -> CompiledRule | Rejected:
    doc = {"title": "t", "logsource": logsource or PROC, "detection": detection, **extra}
    rule = SigmaRule.from_dict(doc)
    return compile_rule(rule, path="t.yml", source="user", backend=SqlBackend(model_pipeline()))


def compiled(detection: dict[str, Any], **kw: Any) -> CompiledRule:
    result = compile_detection(detection, **kw)
    assert isinstance(result, CompiledRule), result
    return result


def matches(rule: CompiledRule, rows: list[dict[str, Any]], table: str = "process_start") -> set:
    """uids of ``rows`` the rule's standalone SQL selects."""
    con = store.connect()
    insert(con, table, rows)
    return {r[0] for r in con.execute(f"SELECT uid FROM ({rule.sql()})").fetchall()}


def cmd_rows(*cmdlines: str | None, **kw: Any) -> list[dict[str, Any]]:
    return [
        process_row("sysmon", "C:\\x\\p.exe", c, uid=f"u{i}", **kw) for i, c in enumerate(cmdlines)
    ]


def sel(**items: Any) -> dict[str, Any]:
    return {"selection": items, "condition": "selection"}


# --- strings ----------------------------------------------------------------------------------
def test_contains_is_case_insensitive() -> None:
    rule = compiled(sel(**{"CommandLine|contains": "WMIC /Node:"}))
    assert matches(rule, cmd_rows("wmic /node:x", "WMIC /NODE:y", "wmic node", None)) == {
        "u0",
        "u1",
    }


def test_like_metacharacters_in_values_are_literal() -> None:
    rows = cmd_rows("50%_off", "50Xaoff", "a\\b", "ab", "it's", "C:\\x_yQQz", "C:\\xAyQQz")
    assert matches(compiled(sel(CommandLine="50%_off")), rows) == {"u0"}
    assert matches(compiled(sel(**{"CommandLine|contains": "%_"})), rows) == {"u0"}
    assert matches(compiled(sel(**{"CommandLine|contains": "\\"})), rows) == {"u2", "u5", "u6"}
    assert matches(compiled(sel(CommandLine="it's")), rows) == {"u4"}
    # a wildcard inside the value takes the LIKE path: '_' must stay a literal there too
    assert matches(compiled(sel(CommandLine="C:\\x_y*z")), rows) == {"u5"}


def test_wildcards_star_and_question_mark() -> None:
    rows = cmd_rows("abc", "aXc", "abbc", "ac", "xabc")
    assert matches(compiled(sel(CommandLine="a?c")), rows) == {"u0", "u1"}
    assert matches(compiled(sel(CommandLine="a*c")), rows) == {"u0", "u1", "u2", "u3"}
    assert matches(compiled(sel(**{"CommandLine|startswith": "AB"})), rows) == {"u0", "u2"}
    assert matches(compiled(sel(**{"CommandLine|endswith": "BC"})), rows) == {"u0", "u2", "u4"}
    assert matches(compiled(sel(CommandLine="*")), [*rows, *cmd_rows(None)]) >= {"u0"}


def test_escaped_wildcard_is_literal() -> None:
    rows = cmd_rows("a*c", "abc")
    assert matches(compiled(sel(CommandLine="a\\*c")), rows) == {"u0"}


def test_multiline_values_match_across_newlines() -> None:
    rows = cmd_rows("powershell\n-enc AAAA", "powershell -nop")
    assert matches(compiled(sel(CommandLine="powershell*enc*")), rows) == {"u0"}
    many = compiled(sel(**{"CommandLine|contains": ["x1", "x2", "-ENC A"]}))
    assert matches(many, rows) == {"u0"}


def test_or_list_on_one_field_is_one_regex_with_the_same_meaning() -> None:
    pad = [f"zz{i}zz" for i in range(SqlBackend.merge_or_threshold)]  # long enough to merge
    values = ["a.b", "(x)", "C:\\Temp\\"]
    rows = cmd_rows("A.B", "axb", "(X)", "x", "c:\\temp\\y", "c:temp")
    short = 1 if len(values) >= SqlBackend.merge_or_threshold else 0  # else contains()
    for vals, regexes in ((values + pad, 1), (values, short)):
        rule = compiled(sel(**{"CommandLine|contains": vals}))
        assert rule.where.count("regexp_matches") == regexes
        assert matches(rule, rows) == {"u0", "u2", "u4"}
    rows = cmd_rows("AB", "xab", "cdx", "xcd", "xEF", "efx")
    for extra in (pad, []):
        anchored = compiled(sel(CommandLine=["ab", "cd*", "*ef", *extra]))
        assert matches(anchored, rows) == {"u0", "u2", "u4"}


def test_all_modifier() -> None:
    rule = compiled(sel(**{"CommandLine|contains|all": ["/node:", "create"]}))
    assert matches(rule, cmd_rows("/node:x create", "/node:x", "create")) == {"u0"}


def test_cased_modifier() -> None:
    rule = compiled(sel(**{"CommandLine|cased": "Abc"}))
    assert matches(rule, cmd_rows("Abc", "abc", "ABC")) == {"u0"}


def test_windash_modifier_expands_dashes_and_slashes() -> None:
    rule = compiled(sel(**{"CommandLine|windash|contains": " -enc "}))
    rows = cmd_rows("ps -enc x", "ps /enc x", "ps \u2013enc x", "ps \u2014enc x", "ps enc x")
    assert matches(rule, rows) == {"u0", "u1", "u2", "u3"}


def test_base64offset_modifier() -> None:
    rule = compiled(sel(**{"CommandLine|base64offset|contains": "Invoke-Mimikatz"}))
    encoded = base64.b64encode(b"xxInvoke-Mimikatz -Dump").decode()
    assert matches(rule, cmd_rows(f"powershell -e {encoded}", "powershell -e AAAA")) == {"u0"}


def test_regex_is_case_sensitive_unless_i_flag() -> None:
    rows = cmd_rows("ABC123", "abc123", "abc")
    assert matches(compiled(sel(**{"CommandLine|re": "abc\\d+"})), rows) == {"u1"}
    assert matches(compiled(sel(**{"CommandLine|re|i": "abc\\d+"})), rows) == {"u0", "u1"}


def test_regex_rejected_when_re2_cannot_run_it() -> None:
    result = compile_detection(sel(**{"CommandLine|re": "a(?=b)"}))
    assert isinstance(result, Rejected) and result.category == REGEX


# --- null semantics ---------------------------------------------------------------------------
def test_not_keeps_rows_where_the_field_is_missing() -> None:
    """Spec §3.2: NOT contains keeps a missing field - the backend's general NOT semantics."""
    rule = compiled(
        {
            "selection": {"Image|endswith": "\\p.exe"},
            "filter": {"CommandLine|contains": "benign"},
            "condition": "selection and not filter",
        }
    )
    assert "coalesce" in rule.where
    assert matches(rule, cmd_rows("evil", "benign thing", None)) == {"u0", "u2"}


def test_not_over_an_or_group_and_over_equality_keeps_null() -> None:
    rule = compiled(
        {
            "selection": {"Image|endswith": "\\p.exe"},
            "filter": [{"CommandLine": "a"}, {"CurrentDirectory|startswith": "C:\\Win"}],
            "condition": "selection and not filter",
        }
    )
    rows = cmd_rows("a", "b", None)
    rows[1]["current_directory"] = "C:\\Windows\\"
    assert matches(rule, rows) == {"u2"}


def test_not_equal_drops_missing_when_the_rule_requires_the_field() -> None:
    rule = compiled(
        {
            "present": {"CommandLine|exists": True},
            "filter": {"CommandLine": "x"},
            "condition": "present and not filter",
        }
    )
    assert matches(rule, cmd_rows("x", "y", None)) == {"u1"}


def test_exists_and_null() -> None:
    rows = cmd_rows("x", None)
    assert matches(compiled(sel(**{"CommandLine|exists": False})), rows) == {"u1"}
    assert matches(compiled(sel(CommandLine=None)), rows) == {"u1"}


# --- numbers and other types ------------------------------------------------------------------
def test_numbers_on_text_and_integer_columns() -> None:
    rows = [
        process_row("sysmon", "C:\\a.exe", "x", uid="s"),
        process_row("security", "C:\\a.exe", "x", uid="w"),
        process_row("crowdstrike", "C:\\a.exe", "x", uid="c"),
    ]
    assert matches(compiled(sel(EventID=4688)), rows) == {"w"}
    assert matches(compiled(sel(ProcessId=4242)), rows) == {"s"}
    assert matches(compiled(sel(**{"ProcessId|gt": 5000})), rows) == {"c"}
    # a comparison on text: 'ProcessRollup2' is not a number and must not raise
    assert matches(compiled(sel(**{"EventID|gte": 1000})), rows) == {"w"}


def test_fieldref_modifier() -> None:
    a = process_row("sysmon", "C:\\x\\same.exe", "x", "C:\\X\\SAME.EXE", uid="a")
    b = process_row("sysmon", "C:\\x\\one.exe", "x", "C:\\x\\two.exe", uid="b")
    assert matches(compiled(sel(**{"ParentImage|fieldref": "Image"})), [a, b]) == {"a"}


def test_cidr_modifier_on_a_text_column() -> None:
    rows = cmd_rows("x", "y")
    rows[0]["dest"], rows[1]["dest"] = "192.168.1.7", "192.168.2.7"
    assert matches(compiled(sel(**{"dest|cidr": "192.168.1.0/24"})), rows) == {"u0"}


# --- the pipeline -----------------------------------------------------------------------------
def test_image_endswith_backslash_name_is_a_basename_test() -> None:
    rule = compiled(sel(**{"ParentImage|endswith": "\\WmiPrvSE.exe"}))
    assert '"_lc_parent_process_name" = ' in rule.where
    falcon = process_row("crowdstrike", "C:\\calc.exe", "calc", "C:\\W\\WmiPrvSE.exe", uid="cs")
    bare = process_row("sysmon", "C:\\calc.exe", "calc", "WMIPRVSE.EXE", uid="bare")
    other = process_row("sysmon", "C:\\calc.exe", "calc", "C:\\T\\xWmiPrvSE.exe", uid="x")
    assert "parent_process_path" not in falcon
    assert matches(rule, [falcon, bare, other]) == {"cs", "bare"}


def test_basename_rewrite_keeps_other_values_on_the_path() -> None:
    rule = compiled(sel(**{"Image|endswith": ["\\a.exe", "\\Temp\\b.exe", "c.exe"]}))
    rows = [
        process_row("sysmon", "C:\\x\\A.EXE", "x", uid="a"),
        process_row("sysmon", "C:\\Temp\\b.exe", "x", uid="b"),
        process_row("sysmon", "C:\\x\\b.exe", "x", uid="nb"),
        process_row("sysmon", "C:\\x\\abc.exe", "x", uid="c"),
    ]
    assert matches(rule, rows) == {"a", "b", "c"}


def test_cim_column_names_pass_through() -> None:
    rule = compiled(sel(process_name="p.exe", **{"process|contains": "evil"}))
    assert matches(rule, cmd_rows("evil", "good")) == {"u0"}


def test_wmi_event_and_wmi_service_rules_see_only_their_source() -> None:
    rows = [
        {"uid": "sy", "data_source": "sysmon", "event_id": "20", "destination": "calc"},
        {"uid": "wa", "data_source": "wmi_activity", "event_id": "20", "destination": "calc"},
    ]
    sysmon = compiled(sel(EventID=20), logsource={"product": "windows", "category": "wmi_event"})
    service = compiled(sel(EventID=20), logsource={"product": "windows", "service": "wmi"})
    assert matches(sysmon, rows, "wmi_activity") == {"sy"}
    assert matches(service, rows, "wmi_activity") == {"wa"}
    assert sysmon.table == service.table == "wmi_activity"


def test_ps_script_rules_run_on_script_blocks() -> None:
    rule = compiled(
        sel(**{"ScriptBlockText|contains": "Get-WmiObject"}),
        logsource={"product": "windows", "category": "ps_script"},
    )
    rows = [{"uid": "p1", "script_block_text": "get-wmiobject win32_process"}, {"uid": "p2"}]
    assert rule.table == "script_block" and matches(rule, rows, "script_block") == {"p1"}


# --- rejections with reasons ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("detection", "logsource", "category", "detail"),
    [
        (sel(Description="x"), PROC, UNKNOWN_FIELD, "known fields: Channel, CommandLine"),
        (sel(Description="x"), PROC, UNKNOWN_FIELD, "model columns: uid, time"),
        ({"keywords": ["evil"], "condition": "keywords"}, PROC, KEYWORDS, "keywords"),
        (
            sel(TargetObject="x"),
            {"product": "windows", "category": "registry_set"},
            LOGSOURCE_NOT_MODELLED,
            "category=registry_set",
        ),
        (
            sel(Image="x"),
            {"product": "linux", "category": "process_creation"},
            LOGSOURCE_NOT_MODELLED,
            "product=linux",
        ),
        (sel(**{"CommandLine|expand": "%evil%"}), PROC, UNSUPPORTED, "placeholder"),
        (sel(**{"ProcessId|minute": 5}), PROC, UNSUPPORTED, "timestamp"),
    ],
)
def test_rules_that_cannot_run_say_why(
    detection: dict, logsource: dict, category: str, detail: str
) -> None:
    result = compile_detection(detection, logsource)
    assert isinstance(result, Rejected), result
    assert result.category == category
    assert detail in result.detail


def test_multiple_conditions_are_or_ed() -> None:
    rule = compiled({"a": {"CommandLine": "x"}, "b": {"CommandLine": "y"}, "condition": ["a", "b"]})
    assert matches(rule, cmd_rows("x", "y", "z")) == {"u0", "u1"}


# --- dialects ---------------------------------------------------------------------------------
def test_spark_backend_differs_only_by_its_dialect() -> None:
    own = {k for k in vars(SparkSqlBackend) if not k.startswith("_")}
    assert own == {"name", "identifier", "dialect"}
    spark_fields = {k for k, v in vars(type(SPARK)).items() if not k.startswith("__")}
    assert spark_fields <= set(vars(type(DUCKDB))) | {"__annotations__"}


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_story_rules_compile_for_spark() -> None:
    for rule in story():
        collection = SigmaCollection.from_yaml(_read(rule.path))
        (where,) = SparkSqlBackend(model_pipeline()).convert(collection, "where")
        assert "`" in where and '"_lc_' not in where
    three = next(r for r in story() if r.meta.number == 3)
    collection = SigmaCollection.from_yaml(_read(three.path))
    (spark,) = SparkSqlBackend(model_pipeline()).convert(collection, "where")
    assert spark == (
        "`_lc_parent_process_name` = 'wmiprvse.exe' AND "
        "NOT coalesce(contains(`_lc_process`, '\\\\dismhost.exe'), false)"
    )
    assert three.where == (
        "\"_lc_parent_process_name\" = 'wmiprvse.exe' AND "
        "NOT coalesce(contains(\"_lc_process\", '\\dismhost.exe'), false)"
    )


def test_spark_literals_escape_backslashes_and_quotes() -> None:
    assert SPARK.string("a\\b'c") == "'a\\\\b\\'c'"
    assert DUCKDB.string("a\\b'c") == "'a\\b''c'"
    assert SPARK.ident("user") == "`user`" and DUCKDB.ident("user") == '"user"'


def test_story_yaml_is_valid_sigma() -> None:
    for rule in story():
        doc = yaml.safe_load(_read(rule.path))
        parsed = SigmaRule.from_dict(doc)
        assert not parsed.errors and parsed.custom_attributes["wmihunt"]["number"] > 0
