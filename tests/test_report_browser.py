"""The HTML report in a real browser (Debian's headless Chromium driven by Selenium).

A report whose hosts, users, command lines and context hold HTML/JS payloads must run no
injected script, show the payloads as text, request nothing over the network, and its
filters must work. The run also saves the screenshot in docs/img/report.png.
"""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import report_fixtures as fx
from report_pipeline import SAMPLES, scan_paths

from wmihunt.report.html import write_html

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "img" / "report.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")

if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
    pytest.skip(
        f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): "
        "apt-get install chromium chromium-driver",
        allow_module_level=True,
    )

#: Payloads that would set the sentinel directly if they ever ran.
SENTINELS = (
    "<script>window.__xss='script'</script>",
    "<img src=x onerror=\"window.__xss='img'\">",
    "'><svg/onload=window.__xss='svg'>",
)

#: Installed before any page script (CDP bypasses the page's CSP): records any alert() and
#: any CSP violation, so a payload that ran, or one the CSP had to stop, is visible.
_WATCH = """
window.__alerts = [];
window.__csp = [];
window.alert = function (m) { window.__alerts.push(String(m)); window.__xss = 'alert'; };
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chrome-profile")
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--window-size=1280,1600",
    ):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(20)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _WATCH})
    try:
        yield driver
    finally:
        driver.quit()


def _requests(driver) -> list[str]:
    """URLs the browser asked for since the last call (Chrome performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _open(driver, path: Path) -> str:
    _requests(driver)  # drain what came before
    url = path.resolve().as_uri()
    driver.get(url)
    assert driver.execute_script("return document.body.dataset.js") == "ready"
    return url


def _visible_findings(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('details.finding'))"
        ".filter(function (d) { return !d.hidden && d.offsetParent !== null; })"
        ".map(function (d) { return d.dataset.host; });"
    )


@pytest.fixture(scope="module")
def hostile_page(tmp_path_factory) -> Path:
    findings = fx.hostile_findings()
    for i, f in enumerate(findings):
        if "process" in f:
            f["process"] += " " + SENTINELS[i % len(SENTINELS)]
        f["message"] += " " + SENTINELS[(i + 1) % len(SENTINELS)]
    path = tmp_path_factory.mktemp("report") / "hostile.html"
    write_html(path, findings, fx.realistic_summary(), fx.hostile_entities(),
               fx.realistic_accounting(), title="hostile " + fx.XSS_SCRIPT)  # fmt: skip
    return path


def test_no_script_runs_and_text_is_literal(browser, hostile_page):
    url = _open(browser, hostile_page)
    state = browser.execute_script(
        "return {xss: window.__xss === undefined ? null : String(window.__xss),"
        " alerts: window.__alerts, csp: window.__csp,"
        " scripts: document.scripts.length, imgs: document.images.length,"
        " svgs: document.querySelectorAll('svg').length,"
        " handlers: Array.from(document.querySelectorAll('*')).filter(function (el) {"
        "   return Array.from(el.attributes).some(function (a) { return /^on/i.test(a.name); });"
        " }).length,"
        " text: document.body.textContent, visible: document.body.innerText,"
        " title: document.title};"
    )
    assert state["xss"] is None and state["alerts"] == []
    assert state["csp"] == []  # escaping alone stopped everything: the CSP had nothing to block
    assert state["scripts"] == 1 and state["imgs"] == 0 and state["svgs"] == 1
    assert state["handlers"] == 0
    for payload in (fx.XSS_SCRIPT, fx.XSS_IMG, fx.XSS_SVG, *SENTINELS):
        assert payload in state["text"], payload
    # host names with payloads are on screen, literally
    for host in ("ws01" + fx.XSS_SCRIPT, "srv02" + fx.XSS_SVG, "dc01" + fx.XSS_IMG):
        assert host in state["visible"]
    assert state["title"] == "hostile " + fx.XSS_SCRIPT
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    # the page itself is the only request
    assert _requests(browser) == [url]
    resources = browser.execute_script("return performance.getEntriesByType('resource').length")
    assert resources == 0


def test_filters_by_host_detection_and_type(browser, hostile_page):
    url = _open(browser, hostile_page)
    assert len(_visible_findings(browser)) == 9
    srv = "srv02" + fx.XSS_SVG
    hosts = browser.find_elements(By.CSS_SELECTOR, "#summary button.host-filter")
    button = next(b for b in hosts if b.get_attribute("data-filter-host") == srv)
    assert button.text == srv
    button.click()
    assert _visible_findings(browser) == [srv] * 4
    count = browser.find_element(By.ID, "f-count").text
    assert count == "4 of 9 findings shown"
    assert Select(browser.find_element(By.ID, "f-host")).first_selected_option.text == srv

    detection = Select(browser.find_element(By.ID, "f-detection"))
    remote = next(o for o in detection.options if o.text.startswith("Remote WMI Command Attempt"))
    detection.select_by_value(remote.get_attribute("value"))  # detection names hold payloads too
    assert _visible_findings(browser) == [srv]
    detection.select_by_index(0)
    Select(browser.find_element(By.ID, "f-type")).select_by_value("Hunting")
    assert _visible_findings(browser) == [srv]
    assert browser.find_element(By.ID, "f-count").text == "1 of 9 findings shown"

    browser.find_element(By.ID, "f-clear").click()
    assert len(_visible_findings(browser)) == 9

    # a host name in a finding row filters too, and clicking it again clears the filter
    ws = "ws01" + fx.XSS_SCRIPT
    row_button = browser.find_element(
        By.CSS_SELECTOR, "details.finding:not([hidden]) button.host-filter"
    )
    first_host = row_button.get_attribute("data-filter-host")
    row_button.click()
    assert set(_visible_findings(browser)) == {first_host}
    row_button.click()
    assert len(_visible_findings(browser)) == 9

    # the timeline's lane label filters; a dot opens its finding (same document, no request)
    lane = next(
        el
        for el in browser.find_elements(By.CSS_SELECTOR, "svg .lane-label.host-filter")
        if el.get_attribute("data-filter-host") == ws
    )
    lane.click()
    assert _visible_findings(browser) == [ws] * 2
    browser.find_element(By.ID, "f-clear").click()
    dot = browser.find_elements(By.CSS_SELECTOR, "svg a.dot-link")[-1]
    target = dot.get_dom_attribute("href")
    assert target.startswith("#f-")
    browser.execute_script("arguments[0].scrollIntoView()", dot)
    dot.find_element(By.CSS_SELECTOR, "circle").click()
    assert browser.execute_script("return location.hash") == target
    assert browser.execute_script(f"return document.getElementById('{target[1:]}').open")
    assert [u for u in _requests(browser) if u.split("#")[0] != url] == []
    assert browser.execute_script("return window.__xss === undefined && !window.__alerts.length")


def _screenshot_data() -> tuple[list, list, list, dict | None, dict | None, str]:
    """The bundled samples through the real pipeline (what a new user sees first)."""
    case, accounting = scan_paths([SAMPLES])
    assert case.findings, "the bundled samples must produce findings"
    return (case.findings, case.summary, case.entities, accounting, case.overview,
            "wmihunt report: samples/logs")  # fmt: skip


def test_screenshot_for_the_docs(browser, tmp_path):
    findings, summary, entities, accounting, overview, title = _screenshot_data()
    # a fixed "generated" time keeps the picture stable from run to run
    latest = max((f.get("time") or "" for f in findings), default="")
    generated = datetime.fromisoformat(latest.replace("Z", "+00:00")) if latest else None
    page = tmp_path / "report.html"
    generated = generated or datetime(2024, 1, 1, tzinfo=UTC)
    write_html(page, findings, summary, entities, accounting, title=title,
               overview=overview, generated=generated)  # fmt: skip
    url = _open(browser, page)
    # open the first finding that has a process tree, so the picture shows context
    browser.execute_script(
        "var d = document.querySelector('details.finding .ctx-tree');"
        "if (d) { d.closest('details.finding').open = true; }"
    )
    height = browser.execute_script("return document.documentElement.scrollHeight")
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True,
         "clip": {"x": 0, "y": 0, "width": 1280, "height": min(height, 3400), "scale": 1}},
    )  # fmt: skip
    data = base64.b64decode(shot["data"])
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    if not SCREENSHOT.exists() or SCREENSHOT.read_bytes() != data:
        SCREENSHOT.write_bytes(data)
    assert _requests(browser) == [url]
