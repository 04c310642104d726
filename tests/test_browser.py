"""Every page of the built book in headless Chromium, at desktop (1400 px) and phone (390 px) widths.

Per page and width: no MathJax error, no formula cut off by its box, no raw TeX outside code,
every image loads, no console error, every figure shown at a scale that keeps its text at least as
large as the page's smallest text (desktop), no page-level sideways scroll (phone). Once: the ☰
button opens the navigation and "On this page" opens the page's contents at 390 px, ☰ hides the
sidebar on a desktop, the header has one search box, and search finds "Adam" and "条件数". A
screenshot of every page and width is kept under ``_build/screenshots/``.

Uses Debian's ``chromium`` and ``chromium-driver`` through Selenium, and the book build of
tests/conftest.py (``build_log``). Without Chromium the module is skipped with a message, except
when running as root, where ``make test`` installs it and its absence is an error. The book is
served by a local HTTP server on a port the operating system picks (bound to port 0, then read
back), so two runs never race for a port.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
sys.path.insert(0, str(ROOT / "tools"))
from execute_pages import toc_files  # noqa: E402  (the page list the executor also uses)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
DESKTOP, PHONE = 1400, 390
FIGURE_TEXT_PX = 10 / 72 * 110  # dlopt.plots: 10 pt text in figures saved at 110 dpi
INSTALL = "apt-get install -y chromium chromium-driver && pip install selenium"

if not (CHROMIUM and DRIVER):
    msg = f"headless Chromium and chromedriver are needed for the browser test ({INSTALL})"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        raise RuntimeError(msg + "; `make test` installs them when it runs as root")
    pytest.skip(msg, allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason=f"selenium is missing ({INSTALL})")


@pytest.fixture(scope="module")
def base_url(build_log):
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: the OS picks
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _browser(tmp_path_factory, width):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                f"--window-size={width},900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_window_size(width, 900)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = _browser(tmp_path_factory, DESKTOP)
    yield driver
    driver.quit()


# Runs in the page once it has loaded: waits for MathJax to finish, then measures everything.
PAGE_CHECKS = r"""
const done = arguments[arguments.length - 1];
const ready = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
const imgs = Array.from(document.images);
Promise.all([ready, ...imgs.map(i => i.complete ? null : i.decode().catch(() => null))]).then(() => {
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight, .math, .MathJax";
  const article = document.querySelector(".bd-article") || document.body;
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  const tex = [];
  const texRe = /\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\\frac|\\mathbb|\\lVert|\\nabla|\\alpha|\\beta/;
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (n.parentElement.closest(skip)) continue;
    if (texRe.test(n.nodeValue)) tex.push(n.nodeValue.trim().slice(0, 80));
  }
  // formulas cut off by a box that hides what does not fit (rather than scrolling it)
  const clipped = [];
  for (const box of document.querySelectorAll("mjx-container")) {
    const svg = box.querySelector("svg");
    if (!svg) continue;
    let e = box;
    while (e && e !== document.body && getComputedStyle(e).overflowX === "visible") e = e.parentElement;
    if (!e || e === document.body || getComputedStyle(e).overflowX !== "hidden") continue;
    if (svg.getBoundingClientRect().right > e.getBoundingClientRect().right + 1)
      clipped.push((box.querySelector("mjx-assistive-mml, title") || box).textContent.slice(0, 60));
  }
  const visible = el => el.offsetParent !== null;
  const sizes = Array.from(article.querySelectorAll(
      "p, li, td, dd, figcaption, .caption-text, pre, code, .cell_output"))
    .filter(visible).map(el => parseFloat(getComputedStyle(el).fontSize)).filter(x => x > 0);
  const figures = Array.from(article.querySelectorAll(".cell_output img, figure img"))
    .filter(i => visible(i) && i.naturalWidth > 0 && /\.png$/.test(i.src))
    .map(i => ({src: i.src.split("/").pop(), scale: i.getBoundingClientRect().width / i.naturalWidth}));
  done({
    mathErrors: document.querySelectorAll("mjx-merror, [data-mjx-error]").length,
    tex: tex.slice(0, 5),
    clipped: clipped.slice(0, 5),
    brokenImages: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    pageScroll: document.documentElement.scrollWidth - window.innerWidth,
    smallestText: sizes.length ? Math.min(...sizes) : 16,
    figures: figures,
  });
});
"""


def _check(driver, shot):
    result = driver.execute_async_script(PAGE_CHECKS)
    result["console"] = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    shot.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(shot))
    return result


def _crawl_pages(driver, base_url, pages):
    results = {}
    for page in pages:
        driver.set_window_size(DESKTOP, 900)
        driver.get(f"{base_url}/{page}.html")
        results[page, DESKTOP] = _check(driver, SHOTS / f"{DESKTOP}" / f"{page}.png")
        driver.set_window_size(PHONE, 900)
        time.sleep(0.25)  # book.js re-measures wide formulas and tables 150 ms after a resize
        results[page, PHONE] = _check(driver, SHOTS / f"{PHONE}" / f"{page}.png")
    driver.set_window_size(DESKTOP, 900)
    return results


@pytest.fixture(scope="module")
def crawl(browser, base_url, tmp_path_factory):
    """Each page loaded once: checked at desktop width, then resized to a phone's and checked
    again. Two browsers share the pages (MathJax typesetting is most of the time)."""
    from concurrent.futures import ThreadPoolExecutor

    pages = toc_files()
    second = _browser(tmp_path_factory, DESKTOP)
    try:
        with ThreadPoolExecutor(2) as pool:
            parts = [pool.submit(_crawl_pages, driver, base_url, pages[i::2])
                     for i, driver in enumerate((browser, second))]
            results = {}
            for part in parts:
                results.update(part.result())
    finally:
        second.quit()
    return results


def _problems(crawl, width):
    problems = []
    for (page, w), r in crawl.items():
        if w != width:
            continue
        where = f"{page} @ {width}px"
        if r["mathErrors"]:
            problems.append(f"{where}: {r['mathErrors']} MathJax error(s)")
        if r["clipped"]:
            problems.append(f"{where}: formulas cut off (not scrollable): {r['clipped']}")
        if r["tex"]:
            problems.append(f"{where}: raw TeX outside code: {r['tex']}")
        if r["brokenImages"]:
            problems.append(f"{where}: images that did not load: {r['brokenImages']}")
        if r["console"]:
            problems.append(f"{where}: console errors: {r['console'][:3]}")
        if width == PHONE and r["pageScroll"] > 0:
            problems.append(f"{where}: the page scrolls sideways by {r['pageScroll']} px")
        if width == DESKTOP:
            for fig in r["figures"]:
                px = FIGURE_TEXT_PX * fig["scale"]
                if px < r["smallestText"] - 0.05:
                    problems.append(f"{where}: figure {fig['src']} shown at {fig['scale']:.0%}: its "
                                    f"text is {px:.1f} px, the page's smallest text "
                                    f"{r['smallestText']:.1f} px")
    return problems


def test_every_page_on_a_desktop(crawl):
    problems = _problems(crawl, DESKTOP)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:60])


def test_every_page_on_a_phone(crawl):
    problems = _problems(crawl, PHONE)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:60])


def _visible(driver, selector):
    return driver.execute_script(
        "const el = document.querySelector(arguments[0]); if (!el) return false;"
        "const r = el.getBoundingClientRect(); const s = getComputedStyle(el);"
        "return r.width > 0 && r.height > 0 && r.right > 0 && r.left < window.innerWidth"
        " && s.visibility !== 'hidden' && s.display !== 'none';", selector)


def _click_visible(driver, selector):
    """Click the first element matching ``selector`` that is visible (themes draw hidden copies)."""
    ok = driver.execute_script(
        "for (const el of document.querySelectorAll(arguments[0])) {"
        "  const r = el.getBoundingClientRect();"
        "  if (r.width > 0 && r.height > 0) { el.click(); return true; } } return false;", selector)
    assert ok, f"no visible {selector}"


def _wait(driver, condition, timeout=5):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition())


SIDEBAR = "#pst-primary-sidebar, .bd-sidebar-primary"
TOC = "#pst-secondary-sidebar, .bd-sidebar-secondary"


def test_phone_sidebar_and_page_contents_toggles(browser, base_url):
    phone = browser
    phone.set_window_size(PHONE, 900)
    phone.get(f"{base_url}/chapters/adaptive/adam.html")
    assert not _visible(phone, SIDEBAR), "the navigation is open before ☰ is pressed"
    _click_visible(phone, ".primary-toggle, label.sidebar-toggle.primary-toggle")
    _wait(phone, lambda: _visible(phone, SIDEBAR))
    assert "Adam" in phone.find_element("css selector", SIDEBAR).text
    phone.get(f"{base_url}/chapters/adaptive/adam.html")
    _click_visible(phone, ".secondary-toggle, label.sidebar-toggle.secondary-toggle")
    _wait(phone, lambda: _visible(phone, TOC))


def test_desktop_sidebar_toggle_hides_the_navigation(browser, base_url):
    desktop = browser
    desktop.set_window_size(DESKTOP, 900)
    desktop.get(f"{base_url}/chapters/adaptive/adam.html")
    assert _visible(desktop, SIDEBAR)
    _click_visible(desktop, ".primary-toggle, label.sidebar-toggle.primary-toggle")
    _wait(desktop, lambda: not _visible(desktop, SIDEBAR))


def test_one_search_box(browser, base_url):
    driver = browser
    for width in (DESKTOP, PHONE):
        driver.set_window_size(width, 900)
        driver.get(f"{base_url}/intro.html")
        boxes = driver.execute_script(
            "return Array.from(document.querySelectorAll('.search-button-field, form.bd-search,"
            " .search-button__button, .navbar-persistent--container .search-button'))"
            ".filter(el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; }).length")
        assert boxes == 1, f"{boxes} visible search boxes at {width} px"


@pytest.mark.parametrize("word", ["Adam", "条件数"])
def test_search_finds(browser, base_url, word):
    from urllib.parse import quote

    desktop = browser
    desktop.set_window_size(DESKTOP, 900)
    desktop.get(f"{base_url}/search.html?q={quote(word)}")
    _wait(desktop, lambda: desktop.execute_script(
        "const r = document.querySelectorAll('#search-results ul.search li'); return r.length > 0;"), 20)
    snippets = desktop.execute_script(
        "return Array.from(document.querySelectorAll('#search-results p.context')).map(p => p.textContent)")
    assert not [s for s in snippets if "\\(" in s or "\\[" in s], "raw TeX in search snippets"
    errors = [e["message"] for e in desktop.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


# Per explorer of the page: its name, whether it drew, the plotted arrays' fingerprint.
EXPLORERS = r"""
return Array.from(document.querySelectorAll('.dlopt-explorer')).map(root => ({
  name: root.dataset.name, draws: Number(root.getAttribute('data-draws') || 0),
  error: root.getAttribute('data-error'), svg: !!root.querySelector('.dlopt-explorer-plot svg'),
  fingerprint: JSON.stringify((root.querySelector('.dlopt-explorer-plot').data || [])
    .filter(t => t.meta).map(t => t.y))}));
"""


def test_explorers_work_offline(browser, base_url):
    """Every page holding an explorer draws it from the book's own files (Plotly from
    _static/vendor/plotly/, no request leaves the book), a slider moved with the keyboard redraws
    it, and the pages without explorers do not load Plotly."""
    from selenium.webdriver.common.keys import Keys

    from dlopt.book.explorers import BOOK, PLOTLY_JS

    driver = browser
    driver.set_window_size(DESKTOP, 900)
    expected: dict[str, set] = {}
    for name, (_, page) in BOOK.items():
        expected.setdefault(page.removesuffix(".md"), set()).add(name)
    found = {page for page in toc_files() if 'class="dlopt-explorer"' in (HTML / f"{page}.html").read_text()}
    assert found == set(expected), f"pages with explorers {sorted(found)}, expected {sorted(expected)}"
    for page in sorted(found):
        driver.get(f"{base_url}/{page}.html")
        _wait(driver, lambda: all(e["draws"] > 0 or e["error"] for e in driver.execute_script(EXPLORERS)), 20)
        state = driver.execute_script(EXPLORERS)
        assert {e["name"] for e in state} == expected[page], page
        assert all(e["svg"] and not e["error"] for e in state), (page, state)
        requested = driver.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
        outside = [url for url in requested if not url.startswith(base_url + "/")]
        assert not outside, f"{page}: requests outside the book: {outside}"
        assert any(url.endswith("_static/" + PLOTLY_JS) for url in requested), page
        for k, before in enumerate(state):
            slider = driver.find_elements("css selector", ".dlopt-explorer")[k].find_elements(
                "css selector", "input[type=range]")[0]
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
            at_end = slider.get_attribute("value") == slider.get_attribute("max")
            slider.send_keys(Keys.ARROW_LEFT if at_end else Keys.ARROW_RIGHT)
            _wait(driver, lambda k=k, n=before["draws"]: driver.execute_script(EXPLORERS)[k]["draws"] > n)
            assert driver.execute_script(EXPLORERS)[k]["fingerprint"] != before["fingerprint"], (page, k)
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, (page, errors)
    driver.get(f"{base_url}/intro.html")
    assert not driver.execute_script("return !!window.Plotly"), "Plotly loaded on a page without explorers"
