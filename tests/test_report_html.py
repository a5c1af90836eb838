"""The HTML report without a browser: escaping, CSP, self-containment, content, the command."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
import report_fixtures as fx
from markupsafe import escape

from wmihunt.commands import report as report_cmd
from wmihunt.report.context_view import context_sections, tree_rows
from wmihunt.report.html import build_view, render_html
from wmihunt.report.timeline import build_timeline

REPO = Path(__file__).resolve().parents[1]
PAYLOADS = (fx.XSS_SCRIPT, fx.XSS_IMG, fx.XSS_SVG)


class Page(HTMLParser):
    """Tags, attributes, inline script/style bodies and text of a page."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._in = tag
            (self.scripts if tag == "script" else self.styles).append("")

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in == "style":
            self.styles[-1] += data
        else:
            self.text.append(data)


def _sha(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@pytest.fixture(scope="module")
def hostile_html() -> str:
    return render_html(
        fx.hostile_findings(),
        fx.realistic_summary(),
        fx.hostile_entities(),
        fx.realistic_accounting(),
        title="report " + fx.XSS_SCRIPT,
    )


@pytest.fixture(scope="module")
def real_html() -> str:
    return render_html(
        fx.realistic_findings(),
        fx.realistic_summary(),
        fx.realistic_entities(),
        fx.realistic_accounting(),
        title="wmihunt report",
    )


def test_payloads_never_appear_as_markup(hostile_html):
    for payload in PAYLOADS:
        assert payload not in hostile_html
        assert str(escape(payload)) in hostile_html  # Jinja's escaping: &lt; &gt; &#34;
    page = Page(hostile_html)
    tags = [t for t, _ in page.tags]
    assert tags.count("script") == 1 and tags.count("style") == 1
    assert "img" not in tags
    assert tags.count("svg") == 1  # the timeline, nothing injected
    assert not [a for _, attrs in page.tags for a in attrs if a.startswith("on")]
    text = "".join(page.text)
    for payload in PAYLOADS:
        assert payload in text  # shown literally as text


def test_csp_allows_only_the_inline_script_and_style_by_hash(hostile_html):
    page = Page(hostile_html)
    metas = [a for t, a in page.tags if t == "meta" and a.get("http-equiv")]
    assert metas[0]["http-equiv"] == "Content-Security-Policy"
    csp = metas[0]["content"]
    assert [t for t, _ in page.tags[:4]] == ["html", "head", "meta", "meta"]
    assert page.tags[2][1] == {"charset": "utf-8"} and page.tags[3][1] is metas[0]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == f"'{_sha(page.scripts[0])}'"
    assert directives["style-src"] == f"'{_sha(page.styles[0])}'"
    assert directives["img-src"] == "data:"
    assert directives["base-uri"] == "'none'" and directives["form-action"] == "'none'"
    assert "unsafe" not in csp and "nonce" not in csp


def test_page_references_nothing_outside_itself(real_html):
    page = Page(real_html)
    for tag, attrs in page.tags:
        for name in ("src", "href", "action", "xlink:href", "data", "poster", "srcset"):
            value = attrs.get(name)
            if value is None:
                continue
            assert value.startswith(("#", "data:")), (tag, name, value)
    css = page.styles[0]
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    js = page.scripts[0]
    for forbidden in ("fetch(", "XMLHttpRequest", "innerHTML", "outerHTML", "insertAdjacentHTML",
                      "document.write", "eval(", "new Function", "http"):  # fmt: skip
        assert forbidden not in js, forbidden


def test_templates_never_mark_event_data_safe():
    root = REPO / "src" / "wmihunt" / "report"
    for template in (root / "templates").iterdir():
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe\b", text), template
        assert "autoescape false" not in text and "Markup" not in text
    source = (root / "html.py").read_text(encoding="utf-8")
    assert re.findall(r"Markup\((\w+)\)", source) == ["css", "js"]
    assert "autoescape=True" in source


def test_filters_carry_raw_values_in_attributes(hostile_html):
    page = Page(hostile_html)
    hosts = {a["data-host"] for t, a in page.tags if "data-host" in a}
    assert hosts == {"ws01" + fx.XSS_SCRIPT, "srv02" + fx.XSS_SVG, "dc01" + fx.XSS_IMG}
    options = [a.get("value") for t, a in page.tags if t == "option"]
    assert hosts <= set(options)
    buttons = {a["data-filter-host"] for t, a in page.tags if "data-filter-host" in a}
    assert hosts <= buttons


def test_summary_sections_show_counts(real_html):
    view = build_view(fx.realistic_findings(), fx.realistic_summary(), fx.realistic_entities(),
                      fx.realistic_accounting(), title="t")  # fmt: skip
    assert [h["name"] for h in view["hosts"]] == [fx.DC, fx.SRV, fx.WS]
    assert [h["count"] for h in view["hosts"]] == [3, 4, 2]
    assert view["types"] == ["Hunting", "TTP"]
    assert view["techniques"] == [("T1047", 6), ("T1220", 1), ("T1546.003", 2)]
    assert view["span"]["first"] == "2024-03-11 09:13:58"
    assert view["span"]["last"] == "2024-03-11 12:05:09"
    assert len(view["users"]) == 3 and view["users"][0] == {"name": fx.ADMIN, "count": 6}
    assert [d["name"] for d in view["detections"]][:2] == [fx.D2[0], fx.D11[0]]
    assert view["entities"][0]["risk"] == 312 and view["entities"][0]["flagged"]
    text = "".join(Page(real_html).text)
    assert "9 of 9" not in text  # the count is written by the script, not the server
    assert "1 Hunting · 8 TTP" in text
    assert "ScriptBlockText missing" in text  # the accounting's error
    assert "Upstream-style summary" in text


def test_finding_context_is_rendered(real_html):
    text = " ".join(Page(real_html).text)
    assert "Process tree" in text and "this finding" in text and "Remote origin" in text
    assert "10.10.20.15" in text  # origin src_ip
    assert "Win32_PerfFormattedData_PerfOS_System" in text  # subscription query
    assert "Invoke-WMIExec -Target 10.10.20.31" in text  # reassembled script
    rows = tree_rows(fx.realistic_findings()[3]["context"]["tree"])
    assert [(r["name"], r["depth"], r["role"]) for r in rows] == [
        ("svchost.exe", 0, "ancestor"), ("WmiPrvSE.exe", 1, "ancestor"),
        ("cmd.exe", 2, "self"), ("whoami.exe", 3, "descendant"), ("conhost.exe", 4, "descendant"),
    ]  # fmt: skip


def test_context_layer_tree_shape_and_notes():
    """The shape ``wmihunt.context.tree.process_tree`` returns: ancestors root first,
    an unlogged root stub, pid links."""
    tree = {
        "process": {"process_name": "calc.exe", "process_id": 1060, "time": "2019-03-18T22:15:49Z",
                    "parent_inferred": True, "logged": True},
        "ancestors": [
            {"process_name": "svchost.exe", "logged": False, "depth": 2},
            {"process_name": "WmiPrvSE.exe", "linked_by": "pid", "depth": 1,
             "time": "2019-03-18T22:15:40Z"},
        ],
        "descendants": [],
    }  # fmt: skip
    rows = tree_rows(tree)
    assert [r["name"] for r in rows] == ["svchost.exe", "WmiPrvSE.exe", "calc.exe"]
    assert rows[0]["note"] == "start not logged" and rows[1]["note"] == "linked by pid"
    assert rows[2]["note"] == "parent inferred" and rows[2]["role"] == "self"


@pytest.mark.parametrize(
    "context",
    [
        "just text",
        [1, 2, 3],
        {"tree": "not a tree", "origin": [1, {"a": None}], "script": {"no_text": 1}},
        {"tree": [{"name": "a", "depth": "x"}], "activity": {"events": [{"a": {"deep": 1}}]}},
        {"weird": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}, "risk": {"error": "boom"}},
        {"subscription": {"error": "CatalogException: no table"}, "tree": None},
    ],
)
def test_unexpected_context_shapes_render(context):
    f = fx.realistic_findings()[0] | {"context": context}
    page = render_html([f], [], [], None, title="t")
    assert "Remote WMI Command Attempt" in page
    sections = context_sections(context)
    assert all("kind" in s and "title" in s for s in sections)


def test_timeline_geometry():
    findings = fx.realistic_findings()
    tl = build_timeline(findings, [f"f-{i}" for i in range(len(findings))])
    assert [lane["host"] for lane in tl["lanes"]] == [fx.SRV, fx.WS, fx.DC]  # by first finding
    assert len(tl["dots"]) == 9 and tl["untimed"] == 0
    xs = [d["x"] for d in tl["dots"]]
    assert min(xs) == tl["label_w"] and max(xs) == tl["plot_right"]
    assert {d["band"] for d in tl["dots"]} == {"critical", "high", "medium", "low"}
    assert len(tl["ticks"]) == 5 and tl["ticks"][0]["label"] == "09:13"
    one = build_timeline([findings[0], findings[0] | {"time": None}], ["a", "b"])
    assert len(one["dots"]) == 1 and one["untimed"] == 1 and len(one["ticks"]) == 1
    assert build_timeline([findings[0] | {"time": None}], ["a"]) is None


def test_many_hosts_share_an_overflow_lane():
    base = fx.realistic_findings()[0]
    findings = [base | {"dest": f"h{i:03d}", "time": f"2024-03-11T10:{i % 60:02d}:00Z"}
                for i in range(55)]  # fmt: skip
    tl = build_timeline(findings, [str(i) for i in range(55)])
    assert len(tl["lanes"]) == 40 and tl["lanes"][-1]["label"] == "16 other hosts"
    assert len(tl["dots"]) == 55


def test_long_values_are_cut_in_the_page_only():
    f = fx.realistic_findings()[8]
    f["script_block_text"] = "A" * 50_000
    page = render_html([f], [], [], None, title="t")
    assert "A" * 20_000 in page and "A" * 20_001 not in page
    assert "30,000 more characters in the JSONL output" in page


def test_long_context_tables_are_cut_in_the_page_only():
    """A window's tables show their first 25 rows and how many more there are; the JSON
    lines output (not the page) keeps all of them."""
    f = fx.realistic_findings()[0]
    children = [{"uid": f"u{i}", "process_name": f"child{i:02d}.exe", "time": None}
                for i in range(30)]
    f["context"] = {"activity": {"dest": "H", "wmiprvse_children": children}}
    page = render_html([f], [], [], None, title="t")
    assert "child24.exe" in page and "child25.exe" not in page
    assert "5 more rows" in page


def test_empty_report_renders():
    page = render_html([], None, None, None, title="nothing")
    text = "".join(Page(page).text)
    assert "No findings." in text and "No risk ranking in this report." in text


# --- wmihunt report --db ----------------------------------------------------------------


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    report_cmd.add_parser(parser.add_subparsers())
    argv = ["report"] + [x for k, v in kw.items() if v is not None
                         for x in (f"--{k.replace('_', '-')}", str(v))]  # fmt: skip
    return parser.parse_args(argv)


def test_report_command_missing_db(tmp_path, capsys):
    args = _args(db=tmp_path / "nope.duckdb", output=tmp_path / "r.html")
    assert args.run(args) == 2
    assert "no such case database" in capsys.readouterr().err


def test_report_command_writes_html_and_jsonl_from_a_case_db(tmp_path, capsys):
    findings_mod = pytest.importorskip("wmihunt.findings")
    from wmihunt.store import connect

    db = tmp_path / "case.duckdb"
    con = connect(db)
    findings_mod.create_table(con)
    row = {c: None for c in findings_mod.COLUMN_NAMES} | {
        "finding_id": "f1", "detection": fx.D5[0], "detection_id": fx.D5[1], "type": "TTP",
        "risk_score": 36, "mitre": ["T1047"], "message": "wmic " + fx.XSS_SCRIPT,
        "dest": "srv02", "user": fx.ADMIN, "data_source": "sysmon",
        "fields": json.dumps({"process": "wmic /node:ws01 " + fx.XSS_IMG}),
        "rule_id": "r", "rule_title": fx.D5[0], "rule_source": "story",
        "ev_file": "logs/sysmon.evtx", "ev_record_id": 5, "event_id": "1",
    }  # fmt: skip
    cols = ", ".join(f'"{c}"' for c in row)
    con.execute(f"INSERT INTO findings ({cols}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()))  # fmt: skip
    con.execute("UPDATE findings SET time = TIMESTAMP '2024-03-11 09:13:58'")
    con.close()

    out = tmp_path / "r.html"
    args = _args(db=db, output=out, title="case " + fx.XSS_SVG)
    assert args.run(args) == 0
    page = out.read_text(encoding="utf-8")
    assert "Remote WMI Command Attempt" in page and fx.XSS_IMG not in page
    assert str(escape("wmic /node:ws01 " + fx.XSS_IMG)) in page
    err = capsys.readouterr().err
    assert f"wrote 1 findings to {out} (html)" in err

    jl = tmp_path / "r.jsonl"
    args = _args(db=db, output=jl)
    assert args.run(args) == 0
    line = json.loads(jl.read_text(encoding="utf-8"))
    assert line["finding_id"] == "f1" and line["time"] == "2024-03-11T09:13:58Z"
    with duckdb.connect(str(db), read_only=True) as check:  # the case file is untouched
        assert check.execute("SELECT count(*) FROM findings").fetchone()[0] == 1


def test_bad_values_do_not_raise():
    odd = [
        {"detection": None, "risk_score": "high", "time": "yesterday", "dest": None,
         "mitre": None, "evidence": "x", "process": 12345, "context": 5},
        {"detection": 3, "risk_score": None, "time": 17, "dest": ["a"], "user": {"x": 1},
         "mitre": [None, 5], "evidence": {"file": None, "extra": [1]}, "type": None},
    ]  # fmt: skip
    page = render_html(
        odd,
        [{"x": 1}, {"detection": None}],
        [{"entity": None}, {"object": 5, "total_risk": "x"}],
        {"files": [{"path": None, "errors": ["boom"]}], "totals": {"files": "?"}},
        title="odd",
    )
    text = "".join(Page(page).text)
    assert "yesterday" in text and "12345" in text and "boom" in text
