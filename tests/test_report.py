"""The Snakemake report of the smoke run, opened as a reader opens it: in Chromium at 1280x800."""

import base64
import json
import re
import time

import numpy as np
import pytest
from browser import Browser
from report_check import check_report
from test_report_pages import table_with, tables_of

from unetscape.plots.surface_viewer import DATA_URL_LIMIT

pytestmark = pytest.mark.workflow

WIDTH, HEIGHT = 1280, 800


def embedded_results(report) -> dict:
    """The report's results as it embeds them: path -> entry with its data URL."""
    text = report.read_text()
    match = re.search(r"var results = (\{.*?\});\s*</script>", text, re.S)
    assert match, "no results in the report"
    return json.loads(match.group(1))


def decoded(entry) -> str:
    header, _, payload = entry["data_uri"].partition(",")
    assert header.endswith(";base64")
    return base64.b64decode(payload).decode()


def test_every_embedded_result_is_under_the_data_url_limit(smoke_report):
    results = embedded_results(smoke_report)
    assert any("_3d/" in path for path in results)
    sizes = {path: len(entry["data_uri"]) for path, entry in results.items()}
    too_large = {path: size for path, size in sizes.items() if size >= DATA_URL_LIMIT}
    assert not too_large, f"Chromium opens no data URL of {DATA_URL_LIMIT} characters or more: {too_large}"


def test_every_table_is_an_html_page_beside_its_csv(smoke_report):
    results = embedded_results(smoke_report)
    findings = results["results/report/findings.html"]
    assert findings["mime_type"] == "text/html"  # opens in the report's frame, not as a download
    tables = tables_of(decoded(findings))
    assert tables and all(len(table) >= 2 for table in tables)  # a header and at least one row each
    conditions = tables_of(decoded(results["results/report/conditions_seeds.html"]))
    assert len(table_with(conditions, "held-out hard Dice")) >= 2
    pages = {path for path, entry in results.items() if entry["mime_type"] == "text/html"}
    for csv in [path for path in results if path.endswith(".csv")]:  # the CSVs are still there to download
        name = csv.rsplit("/", 1)[1].removesuffix(".csv")
        page = {"landscape": "runs"}.get(name.split("_")[0], name.split("_")[0]) + name[len(name.split("_")[0]):]
        assert f"results/report/{page}.html" in pages, f"{csv} has no page"
    # nothing of the report is a reStructuredText download: the front page's parts are pages
    assert not [path for path in results if path.endswith(".rst")]


def viridis_columns(pixels: np.ndarray, left: int) -> int:
    """How many pixel columns right of `left` hold viridis colours (a drawn surface)."""
    r, g, b = (pixels[:, left:, k] for k in range(3))
    viridis = (b > r + 30) & (g > r) | (g > 150) & (r < 220) & (b < 120)
    return int((viridis.sum(axis=0) >= 3).sum())


@pytest.fixture(scope="module")
def browser():
    with Browser(WIDTH, HEIGHT) as opened:
        yield opened


def open_report(browser, report):
    browser.open(report.as_uri())
    browser.wait_for("typeof app !== 'undefined' && document.querySelector('div.prose h1') !== null")


def test_front_page_opens_at_its_heading(browser, smoke_report):
    open_report(browser, smoke_report)
    time.sleep(1)  # the rule graph lays itself out after load
    box = browser.evaluate(
        "(() => { const h = document.querySelector('div.prose h1'); const r = h.getBoundingClientRect();"
        " const hit = document.elementFromPoint(r.left + 5, r.top + r.height / 2);"
        " return {top: r.top, bottom: r.bottom, text: h.textContent, hit: h.contains(hit)}; })()"
    )
    assert box["text"].startswith("unetscape")
    assert 0 <= box["top"] and box["bottom"] <= HEIGHT and box["hit"], box
    # the claims are a table on the front page
    claims = browser.evaluate("[...document.querySelectorAll('div.prose table')].map(t => t.innerText).join(' ')")
    assert "Batch norm gives normal behaviour" in claims
    # every table keeps to the text's column, clear of the rule graph beside it
    edges = browser.evaluate(
        "(() => { const p = document.querySelector('div.prose'); const right = p.getBoundingClientRect().right;"
        " return [...p.querySelectorAll('table')].map(t => [t.getBoundingClientRect().right, right]); })()"
    )
    assert edges and all(table <= column + 1 for table, column in edges), edges


def test_3d_view_draws_inside_the_report(browser, smoke_report):
    open_report(browser, smoke_report)
    page = next(path for path in embedded_results(smoke_report) if "seeds_3d/" in path)
    # what the eye button of the entry does: open the embedded data URL in the report's frame
    browser.evaluate(f"app.setView({{content: 'html', contentPath: results['{page}'].data_uri, resultPath: '{page}'}})")
    navbar = browser.evaluate("document.querySelector('iframe').getBoundingClientRect().left")
    assert navbar > 0
    deadline, drawn = time.monotonic() + 60, 0
    while time.monotonic() < deadline:
        drawn = viridis_columns(browser.screenshot(), int(navbar))
        if drawn > 300:
            break
        time.sleep(1)
    # two planes, each a few hundred pixels wide; a refused data URL or a failed WebGL draws none
    assert drawn > 300, "no WebGL surface drawn in the report's 3-D view"


def test_a_figure_taller_than_the_window_opens_at_its_top(browser, smoke_report):
    open_report(browser, smoke_report)
    figure = "results/figures/seeds_landscape.png"
    browser.evaluate(f"app.setView({{content: 'img', contentPath: results['{figure}'].data_uri, resultPath: '{figure}'}})")
    box = browser.wait_for("(() => { const i = document.querySelector('img[src^=\"data:image/png\"]');"
                           " return i && i.complete && i.naturalHeight > 0 && i.getBoundingClientRect().toJSON(); })()")
    assert box["height"] > 0 and box["top"] >= 0, box


def test_the_browser_check_passes_on_the_smoke_report(smoke_report, capsys):
    """tests/report_check.py as a reader (or CI) runs it: every result opened, every check met."""
    checks = list(check_report(smoke_report))
    failed = [c.line() for c in checks if not c.ok]
    assert not failed, "\n".join(failed)
    results = embedded_results(smoke_report)
    assert len(checks) == 1 + len(results)  # the front page, then every result once
    assert {c.name.rsplit(" / ", 1)[1] for c in checks[1:]} == set(results)
