"""Open a Snakemake report as a reader does and check every result in it.

    python tests/report_check.py results/report.html [--shots DIR]

A headless Chromium at 1280x800 CSS pixels (tests/browser.py) opens the report and checks its
front page: it opens at its heading, its text is not empty, and every table on it (the claims
table among them) keeps to the text's column with no cell's content spilling out of its cell.
Then it visits every category of the report's menu and every result in it, and opens each result
as the result's eye button does:

- a figure must load inside the report's content box and must not be blank (nearly one colour);
- an HTML page (a table rendered as a page, a 3-D view) must hold text, and neither the page nor
  any table on it may be wider than the report's frame (a reader would have to scroll sideways);
- any other file (a CSV, offered for download) must carry data.

Every result must also have a caption. One line per result, `ok` or `FAIL` with the reason; the
exit status is 1 when anything failed. `--shots DIR` saves what the window showed for each view
(PNG), for a reader who wants to look without a browser.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from browser import Browser, BrowserError

WIDTH, HEIGHT = 1280, 800
# A figure whose most common colour covers more than this share of it, or that has fewer
# distinct colours than MIN_COLOURS, is blank: a figure that drew nothing.
BLANK_SHARE = 0.995
MIN_COLOURS = 3
# The menu beside a result must leave it at least this much of the window's width.
MIN_FRAME = 700


@dataclass
class Check:
    """What one visit found: `name` says where (category / subcategory / file)."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


FRONT_PAGE = """(() => {
  const prose = document.querySelector('div.prose');
  const heading = prose.querySelector('h1');
  const box = heading.getBoundingClientRect();
  const hit = document.elementFromPoint(box.left + 5, box.top + box.height / 2);
  const scroller = prose.closest('.overflow-auto');
  const column = prose.getBoundingClientRect();
  const tables = [...prose.querySelectorAll('table')].map(t => {
    const b = t.getBoundingClientRect();
    const cells = [...t.querySelectorAll('td, th')];
    const spilling = cells.filter(c => c.scrollWidth > c.clientWidth + 1).length;
    // a cell whose longest word is wider than the cell has that word broken inside it
    cells.forEach(c => { c.dataset.wrap = c.style.overflowWrap; c.style.overflowWrap = 'normal'; });
    const broken = cells.filter(c => c.scrollWidth > c.clientWidth + 1).length;
    cells.forEach(c => { c.style.overflowWrap = c.dataset.wrap; delete c.dataset.wrap; });
    const head = t.querySelector('tr') ? t.querySelector('tr').innerText : '';
    return {right: b.right, width: b.width, scroll: t.scrollWidth, client: t.clientWidth, spilling: spilling,
            broken: broken, claims: t.classList.contains('claims') || /Verdict on the part|Part verdict/.test(head)};
  });
  return {top: box.top, bottom: box.bottom, hit: heading.contains(hit), scrolled: scroller ? scroller.scrollTop : 0,
          right: column.right, width: column.width, text: prose.innerText.trim().length, tables: tables};
})()"""

# The figure shown: the image whose source is the result's data URL (the menu's logo is one too).
SHOWN = "[...document.images].find(i => i.src === results[{path!r}].data_uri)"

IMAGE = """(async () => {
  const img = %s;
  const box = img.getBoundingClientRect();
  const frame = img.closest('.overflow-auto').getBoundingClientRect();
  const scale = Math.min(1, 400 / img.naturalWidth);
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
  canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0, canvas.width, canvas.height);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const counts = new Map();
  for (let k = 0; k < data.length; k += 4) {
    const key = (data[k] >> 4) << 8 | (data[k + 1] >> 4) << 4 | (data[k + 2] >> 4);
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const top = Math.max(...counts.values());
  return {natural: [img.naturalWidth, img.naturalHeight], shown: [box.width, box.height], left: box.left,
          right: box.right, top: box.top, frameRight: frame.right, frameWidth: frame.width, colours: counts.size,
          share: top / (canvas.width * canvas.height)};
})()"""

PAGE = """(() => {
  const root = document.documentElement;
  const tables = [...document.querySelectorAll('table')].map(t => Math.round(t.getBoundingClientRect().right));
  return {text: (document.body ? document.body.innerText : '').trim().length, width: root.clientWidth,
          scroll: root.scrollWidth, tables: tables};
})()"""


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html or "").strip()


def open_report(browser: Browser, report: Path) -> None:
    browser.open(report.resolve().as_uri())
    browser.wait_for("typeof app !== 'undefined' && document.querySelector('div.prose h1') !== null")


def check_front_page(browser: Browser) -> Check:
    time.sleep(1)  # the rule graph beside the text lays itself out after load
    page = browser.evaluate(FRONT_PAGE)
    problems = []
    if not (0 <= page["top"] and page["bottom"] <= HEIGHT and page["hit"] and page["scrolled"] == 0):
        problems.append(f"does not open at its heading (heading at {page['top']:.0f}-{page['bottom']:.0f} px)")
    if page["text"] == 0:
        problems.append("no text")
    claims = [t for t in page["tables"] if t["claims"]]
    if not claims:
        problems.append("no claims table")
    for k, table in enumerate(page["tables"]):
        which = "claims table" if table["claims"] else f"table {k + 1}"
        if table["right"] > page["right"] + 1 or table["scroll"] > table["client"] + 1:
            problems.append(f"{which} is {max(table['width'], table['scroll']):.0f} px wide in a "
                            f"{page['width']:.0f} px column")
        if table["spilling"]:
            problems.append(f"{which}: {table['spilling']} cells spill out of their column")
        if table["broken"]:
            problems.append(f"{which}: {table['broken']} cells break a word in two")
    widths = ", ".join(f"{t['width']:.0f}" for t in page["tables"])
    detail = "; ".join(problems) or (f"opens at its heading; text column {page['width']:.0f} px, tables "
                                     f"{widths} px, the claims table fits")
    return Check("front page", not problems, detail)


def _show(browser: Browser, path: str, content: str) -> None:
    browser.evaluate(f"app.setView({{content: '{content}', contentPath: results[{path!r}].data_uri, "
                     f"resultPath: {path!r}}})")


def check_image(browser: Browser, path: str) -> tuple[list[str], str]:
    """(what is wrong, what was seen) of one figure."""
    _show(browser, path, "img")
    shown = SHOWN.format(path=path)
    browser.wait_for(f"(() => {{ const i = {shown}; return i && i.complete && i.naturalWidth > 0; }})()")
    shown = browser.evaluate(IMAGE % shown)
    problems = []
    if shown["colours"] < MIN_COLOURS or shown["share"] > BLANK_SHARE:
        problems.append(f"blank ({shown['colours']} colours, {100 * shown['share']:.1f}% one colour)")
    if shown["right"] > shown["frameRight"] + 1:
        problems.append(f"wider than the frame ({shown['shown'][0]:.0f} px)")
    if shown["top"] < 0:
        problems.append("does not open at its top")
    if shown["frameWidth"] < MIN_FRAME:
        problems.append(f"the menu leaves it {shown['frameWidth']:.0f} px of the window")
    scale = shown["shown"][0] / shown["natural"][0]
    return problems, f"figure {shown['natural'][0]}x{shown['natural'][1]} shown {shown['shown'][0]:.0f} px wide ({scale:.2f}x)"


def check_page(browser: Browser, path: str) -> tuple[list[str], str]:
    """(what is wrong, what was seen) of one HTML page, in the report's frame."""
    _show(browser, path, "html")
    browser.wait_for(f"(() => {{ const f = document.querySelector('iframe');"
                     f" return f && f.src === results[{path!r}].data_uri; }})()")
    deadline = time.monotonic() + 60
    while True:
        try:  # the frame may still be replacing its first, empty document
            state = browser.frame_evaluate("location.protocol + ' ' + document.readyState")
            if state == "data: complete":
                page = browser.frame_evaluate(PAGE)
                break
        except BrowserError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise BrowserError(f"the page {path} did not load ({state})")
        time.sleep(0.2)
    problems = []
    if page["text"] == 0:
        problems.append("no text")
    if page["scroll"] > page["width"] + 1:
        problems.append(f"page is {page['scroll']} px wide in a {page['width']} px frame")
    if page["width"] < MIN_FRAME:
        problems.append(f"the menu leaves it {page['width']} px of the window")
    wide = [right for right in page["tables"] if right > page["width"] + 1]
    if wide:
        problems.append(f"{len(wide)} of {len(page['tables'])} tables wider than the {page['width']} px frame "
                        f"(to {max(wide)} px)")
    tables = f", {len(page['tables'])} tables" if page["tables"] else ""
    return problems, f"page{tables}, {page['scroll']} px wide in a {page['width']} px frame"


def check_result(browser: Browser, path: str, entry: dict) -> tuple[bool, str]:
    """(ok, detail) of one result, opened as its eye button opens it."""
    mime = entry["mime_type"]
    if mime in ("image/png", "image/jpeg", "image/svg+xml"):
        problems, seen = check_image(browser, path)
    elif mime == "text/html":
        problems, seen = check_page(browser, path)
    else:  # the eye button downloads it
        problems = [] if entry["data_uri"].partition(",")[2] else ["no data"]
        seen = f"download ({mime}, {entry['size']})"
    if not _text(entry.get("caption")):
        problems.append("no caption")
    return not problems, "; ".join(problems) + f" [{seen}]" if problems else seen


def check_report(report: Path, shots: Path | None = None) -> Iterator[Check]:
    """Every check of the report at `report`, the front page first, each as it is made;
    screenshots into `shots`."""
    with Browser(WIDTH, HEIGHT) as browser:
        open_report(browser, report)
        yield check_front_page(browser)
        _shoot(browser, shots, "front page")
        categories = browser.evaluate("categories")
        for category in sorted(categories, key=str.lower):
            for subcategory in sorted(categories[category], key=str.lower):
                # as a reader goes: the menu, a category, one of its subcategories
                browser.evaluate("app.setView({navbarMode: 'menu'})")
                browser.evaluate(f"app.showCategory({category!r})")
                browser.evaluate(f"app.setView({{navbarMode: 'subcategory', category: {category!r}, "
                                 f"subcategory: {subcategory!r}}})")
                listed = browser.wait_for("document.querySelectorAll('table.table-auto tbody tr').length")
                for path in categories[category][subcategory]:
                    entry = browser.evaluate(f"(() => {{ const r = results[{path!r}]; return {{mime_type: "
                                             f"r.mime_type, size: r.size, caption: r.caption, data_uri: "
                                             f"r.data_uri.slice(0, 100)}}; }})()")
                    where = " / ".join([category] + ([subcategory] if subcategory != "Other" else []))
                    name = f"{where} / {path}"
                    try:
                        ok, detail = check_result(browser, path, entry)
                    except BrowserError as error:
                        ok, detail = False, f"did not open: {error}"
                    if not listed:
                        ok, detail = False, f"the menu lists nothing here; {detail}"
                    _shoot(browser, shots, path)
                    yield Check(name, ok, detail)


def _shoot(browser: Browser, shots: Path | None, name: str) -> None:
    if shots is None:
        return
    from PIL import Image

    shots.mkdir(parents=True, exist_ok=True)
    file = re.sub(r"[^A-Za-z0-9._-]+", "_", name.removeprefix("results/")) + ".png"
    Image.fromarray(browser.screenshot().astype("uint8")).save(shots / file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the report's HTML file (snakemake --report results/report.html)")
    parser.add_argument("--shots", type=Path, help="save a screenshot of every view into this folder")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        parser.error(f"no report at {args.report}")
    checks = failed = 0
    for check in check_report(args.report, args.shots):
        print(check.line(), flush=True)
        checks += 1
        failed += not check.ok
    print(f"{checks} checks, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
