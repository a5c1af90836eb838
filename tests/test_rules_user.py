"""User rules (``--rules DIR``): SigmaHQ's Windows rules compile or say why, and real ones match."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from test_detect_helpers import insert, process_row, script_row, story, wmi_row

from wmihunt import store
from wmihunt.backend.errors import (
    INVALID,
    KEYWORDS,
    LOGSOURCE_NOT_MODELLED,
    RULE_TYPE,
    UNKNOWN_FIELD,
)
from wmihunt.detect import run_detections
from wmihunt.findings import fetch_findings
from wmihunt.rules import USER, load_files, load_rules_dir

SIGMA = Path(__file__).resolve().parents[1].parent / "shared" / "sigma" / "rules" / "windows"
FOLDERS = ("process_creation", "wmi_event", "builtin/wmi", "powershell/powershell_script")
#: SigmaHQ @8eaafff (the copy in ../shared/sigma): compiled, and rejected by reason
EXPECTED = {
    "process_creation": (1088, {UNKNOWN_FIELD: 95}),
    "wmi_event": (3, {}),
    "builtin/wmi": (1, {KEYWORDS: 1}),
    "powershell/powershell_script": (162, {}),
}


def _sigma(folder: str = "") -> Path:
    path = SIGMA / folder
    if not path.is_dir():
        pytest.skip(f"SigmaHQ rules not present: {path}")
    return path


@pytest.fixture(scope="module")
def sigmahq() -> dict[str, object]:
    return {folder: load_rules_dir(_sigma(folder)) for folder in FOLDERS}


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_sigmahq_rule_compiles_or_is_listed_with_its_reason(folder: str, sigmahq) -> None:
    ruleset = sigmahq[folder]
    files = sorted(str(p) for p in _sigma(folder).rglob("*.yml"))
    seen = sorted([r.path for r in ruleset.compiled] + [r.path for r in ruleset.rejected])
    assert seen == files  # one outcome per file: nothing dropped silently
    compiled, rejected = EXPECTED[folder]
    assert len(ruleset.compiled) == compiled
    assert dict(ruleset.rejected_by_reason()) == rejected
    assert all(r.detail for r in ruleset.rejected)


def test_unknown_field_reasons_name_the_field_and_the_known_ones(sigmahq) -> None:
    rejected = sigmahq["process_creation"].rejected
    fields = Counter(r.detail.split("'")[1] for r in rejected)
    assert set(fields) == {"Description", "Product", "Company", "ParentUser"}
    assert all("known fields: " in r.detail and "CommandLine" in r.detail for r in rejected)


def test_other_log_sources_are_reported_as_not_modelled() -> None:
    ruleset = load_rules_dir(_sigma("registry"))
    assert not ruleset.compiled
    assert set(ruleset.rejected_by_reason()) == {LOGSOURCE_NOT_MODELLED}


def test_compiled_sigmahq_sql_runs_and_all_rules_run_in_one_pass(sigmahq) -> None:
    con = store.connect()
    rules = [r for folder in FOLDERS for r in sigmahq[folder].compiled]
    for rule in rules[::50]:  # the standalone form too (all of them: see the combined run)
        con.execute(rule.sql()).fetchall()
    insert(con, "process_start", [process_row("sysmon", "C:\\x\\a.exe", "a")])
    insert(con, "wmi_activity", [wmi_row(event_id="20")])
    insert(con, "script_block", [script_row("Get-Date")])
    result = run_detections(con, rules)
    assert not result.errors  # a rule that failed would have been run alone and listed here
    # the Sysmon 19/20/21 rule of SigmaHQ fires on the one consumer event
    assert result.counts["WMI Event Subscription"] == 1


def _pick(*names: str) -> list:
    files = [p for name in names for p in _sigma().rglob(name)]
    assert len(files) == len(names)
    ruleset = load_files(files, source=USER)
    assert not ruleset.rejected
    return ruleset.compiled


def test_real_sigmahq_rules_match_the_rows_they_were_written_for() -> None:
    rules = _pick(
        "proc_creation_win_wmic_remote_execution.yml",
        "proc_creation_win_wmiprvse_susp_child_processes.yml",
        "proc_creation_win_wmic_xsl_script_processing.yml",
        "sysmon_wmi_event_subscription.yml",
        "posh_ps_malicious_commandlets.yml",
    )
    wmic = "C:\\Windows\\System32\\wbem\\WMIC.exe"
    prvse = "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe"
    rows = {
        "remote": process_row("sysmon", wmic, "wmic /node:10.0.0.5 process call create x"),
        "local": process_row("sysmon", wmic, "wmic /node:localhost process call create x"),
        "dash": process_row("sysmon", wmic, "wmic -node:10.0.0.5 os get"),
        "child": process_row("sysmon", "C:\\Windows\\System32\\rundll32.exe", "rundll32 x", prvse),
        "wer": process_row("sysmon", "C:\\Windows\\System32\\WerFault.exe", "werfault", prvse),
        "xsl": process_row("sysmon", wmic, 'wmic process list /format:"evil.xsl"'),
        "csv": process_row("sysmon", wmic, "wmic process list /format:csv"),
    }
    wmi = {"c20": wmi_row(event_id="20"), "wa": wmi_row(data_source="wmi_activity", event_id="20")}
    ps = {"ps": script_row("Invoke-WMIExec -Target 10.0.0.1"), "benign": script_row("Get-Date")}
    con = store.connect()
    insert(con, "process_start", rows.values())
    insert(con, "wmi_activity", wmi.values())
    insert(con, "script_block", ps.values())
    run_detections(con, [*story(), *rules])
    uid_name = {v["uid"]: k for d in (rows, wmi, ps) for k, v in d.items()}
    user = {
        (f["detection"], uid_name[f["uid"]])
        for f in fetch_findings(con)
        if f["rule_source"] == "user"
    }
    assert user == {
        ("WMIC Remote Command Execution", "remote"),
        ("WMIC Remote Command Execution", "dash"),
        ("Suspicious WmiPrvSE Child Process", "child"),
        ("XSL Script Execution Via WMIC.EXE", "xsl"),
        ("WMI Event Subscription", "c20"),
        ("Malicious PowerShell Commandlets - ScriptBlock", "ps"),
    }


def test_user_rule_metadata_comes_from_sigma_level_and_tags() -> None:
    (rule,) = _pick("proc_creation_win_wmic_remote_execution.yml")
    assert rule.source == USER and rule.meta.number is None
    assert (rule.meta.type, rule.meta.risk_score) == ("Hunting", 50)  # level: medium
    assert rule.meta.mitre == ("T1047",)
    assert rule.meta.detection_id == rule.rule_id == "7773b877-5abb-4a3e-b9c9-fd0369b59b00"
    con = store.connect()
    insert(con, "process_start", [process_row("sysmon", "C:\\x\\wmic.exe", "wmic /node:h x")])
    run_detections(con, [rule])
    (f,) = fetch_findings(con)
    assert f["message"] == (
        "Sigma rule 'WMIC Remote Command Execution' matched on ws01.corp.example (user CORP\\alice)"
    )
    assert f["message_upstream"] is None


def test_a_user_folder_with_broken_files(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(
        "title: wmihunt block honoured\nid: 11111111-1111-1111-1111-111111111111\n"
        "logsource: {category: process_creation, product: windows}\n"
        "detection: {s: {Image|endswith: '\\\\calc.exe'}, condition: s}\nlevel: low\n"
        "wmihunt: {type: TTP, risk_score: 90, message: 'calc on $dest$'}\n"
    )
    (tmp_path / "syntax.yml").write_text("title: x\ndetection: [unclosed\n")
    (tmp_path / "nocondition.yaml").write_text(
        "title: n\nlogsource: {category: process_creation}\ndetection: {s: {Image: x}}\n"
    )
    (tmp_path / "corr.yml").write_text(
        "title: c\ncorrelation: {type: event_count, rules: [a], group-by: [User], "
        "timespan: 1h, condition: {gte: 2}}\n"
    )
    (tmp_path / "badmeta.yml").write_text(
        "title: m\nlogsource: {category: process_creation}\n"
        "detection: {s: {Image: x}, condition: s}\n"
        "wmihunt: {type: Nope, risk_score: 1, message: x}\n"
    )
    ruleset = load_rules_dir(tmp_path)
    (ok,) = ruleset.compiled
    assert (ok.meta.type, ok.meta.risk_score, ok.meta.message) == ("TTP", 90, "calc on $dest$")
    reasons = {Path(r.path).name: r.category for r in ruleset.rejected}
    assert reasons == {
        "syntax.yml": INVALID,
        "nocondition.yaml": INVALID,
        "corr.yml": RULE_TYPE,
        "badmeta.yml": INVALID,
    }
    syntax = next(r for r in ruleset.rejected if r.path.endswith("syntax.yml"))
    assert "line" in syntax.detail
