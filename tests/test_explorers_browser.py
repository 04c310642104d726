"""The book's explorers in headless Chromium, without building the book.

Every explorer of ``dlopt.book.explorers.BOOK`` is written into a standalone page with the
vendored Plotly (``_ext/vendor/plotly/``) at the path the book serves it from, and served from a
temporary folder. For each one: the figure is drawn with no console error and no request outside
that folder; a slider moved with the keyboard (→) and a control set by value plus an ``input`` /
``change`` event both redraw the figure and update the label ("α = 0.7"); and the arrays the page
plots for the new setting are those of fresh ``dlopt.run`` calls for the same hyperparameters
(read back from Plotly's data, within the four significant digits a page stores).

The same check on the pages of the built book is in tests/test_browser.py.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dlopt.book import explorers

ROOT = Path(__file__).resolve().parents[1]
PLOTLY = ROOT / "_ext" / "vendor" / "plotly" / "plotly-basic.min.js"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("headless Chromium and chromedriver are needed (apt-get install -y chromium chromium-driver)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing (pip install selenium)")

# fewer noisy runs per grid point than the book (the same code path; keeps this test fast)
FEWER_RUNS = {"schedule-basin": 20, "sgd-noise-floor": 20, "langevin-escape": 40}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explorers")
    target = folder / "_static" / explorers.PLOTLY_JS
    target.parent.mkdir(parents=True)
    shutil.copyfile(PLOTLY, target)
    book = {}
    for name, (builder, _) in explorers.BOOK.items():
        ex = builder(**({"runs": FEWER_RUNS[name]} if name in FEWER_RUNS else {}))
        (folder / f"{name}.html").write_text(
            explorers.standalone_page([ex], f"_static/{explorers.PLOTLY_JS}", title=name))
        book[name] = ex
    # two explorers on one page, as on the momentum chapter's explorer page
    (folder / "two.html").write_text(explorers.standalone_page(
        [book["momentum-quadratic"], book["momentum-rosenbrock"]], f"_static/{explorers.PLOTLY_JS}"))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", book
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                "--disable-background-networking", "--force-device-scale-factor=1",
                f"--user-data-dir={tmp_path_factory.mktemp('profile')}", "--window-size=1000,900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    d.set_script_timeout(20)
    yield d
    d.quit()


def wait_for(driver, script, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for: {script}")


DRAWS = "return document.querySelector('.dlopt-explorer').getAttribute('data-draws')"
PLOTTED = """
return document.querySelector('.dlopt-explorer-plot').data
  .filter(t => t.meta).map(t => [t.meta, Array.from(t.x), Array.from(t.y)]);
"""


def plotted(driver) -> dict:
    return {name: (np.array(x, dtype=float), np.array(y, dtype=float))
            for name, x, y in driver.execute_script(PLOTTED)}


def check_page_matches(ex, page_traces, index, what):
    """The plotted arrays are fresh computations (dlopt.run) at the grid point ``index``; for path
    explorers the paths are compared with dlopt.run called here directly."""
    params = ex.params_at(index)
    fresh = ex.compute(**params)
    for t in ex.traces:
        x, y = fresh[t.name]
        y = np.asarray(y, dtype=float)
        x = np.arange(len(y)) if x is None else np.asarray(x, dtype=float)
        px, py = page_traces[t.name]
        for a, b, axis in ((px, x, "x"), (py, y, "y")):
            assert a.shape == b.shape, (what, t.name, axis)
            tol = 0.51 * 10.0 ** (1 - explorers.DIGITS) * np.abs(b)
            ok = np.isfinite(b)
            assert np.all(np.abs(a[ok] - b[ok]) <= tol[ok]), (what, t.name, axis)
    if isinstance(ex, explorers.PathExplorer):
        import dlopt

        f = ex._objective(params)
        for label, (rule, fixed, accepted) in ex.methods.items():
            kw = {k: v for k, v in params.items() if accepted is None or k in accepted}
            kw.update(fixed)
            xs = dlopt.run(rule, f, ex.x0, ex.steps, **kw).xs[: ex.path_steps + 1: ex.path_every]
            px, py = page_traces[f"path:{label}"]
            np.testing.assert_allclose(px, xs[:, 0], rtol=6e-4, atol=1e-300, err_msg=f"{what} {label}")
            np.testing.assert_allclose(py, xs[:, 1], rtol=6e-4, atol=1e-300, err_msg=f"{what} {label}")


@pytest.mark.parametrize("name", list(explorers.BOOK))
def test_explorer_moves_and_plots_dlopt_runs(site, driver, name):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, book = site
    ex = book[name]
    driver.get(f"{base}/{name}.html")
    wait_for(driver, DRAWS)
    first = plotted(driver)
    index0 = int(driver.execute_script("return document.querySelector('.dlopt-explorer').dataset.index"))
    assert index0 == ex.index_of(**ex.params)  # the initial setting
    check_page_matches(ex, first, index0, f"{name} initial")

    # 1. the keyboard: → on the first slider (← if it sits at its last value)
    controls = driver.find_elements(By.CSS_SELECTOR, "[data-control]")
    ranges = [c for c in controls if c.tag_name == "input"]
    if ranges:
        slider = ranges[0]
        c = next(c for c in ex.controls if c.name == slider.get_attribute("data-control"))
        at_end = int(slider.get_attribute("value")) == len(c.values) - 1
        before = driver.execute_script(DRAWS)
        slider.send_keys(Keys.ARROW_LEFT if at_end else Keys.ARROW_RIGHT)
        wait_for(driver, f"return document.querySelector('.dlopt-explorer').getAttribute('data-draws') !== '{before}'")
        j = int(slider.get_attribute("value"))
        label = driver.find_element(By.CSS_SELECTOR, f"[data-readout='{c.name}']").text
        assert label == f"{c.symbol} = {c.label(c.values[j])}"
        assert slider.get_attribute("aria-valuetext") == label
    # 2. setting a value and dispatching the event, on the last control
    last = controls[-1]
    c = next(c for c in ex.controls if c.name == last.get_attribute("data-control"))
    j = (int(last.get_attribute("value")) + 2) % len(c.values)
    before = driver.execute_script(DRAWS)
    event = "change" if last.tag_name == "select" else "input"
    driver.execute_script(f"arguments[0].value = '{j}'; arguments[0].dispatchEvent(new Event('{event}'))", last)
    wait_for(driver, f"return document.querySelector('.dlopt-explorer').getAttribute('data-draws') !== '{before}'")

    after = plotted(driver)
    index = int(driver.execute_script("return document.querySelector('.dlopt-explorer').dataset.index"))
    assert index != index0
    changed = [t for t in after if after[t][1].shape != first[t][1].shape
               or not np.allclose(after[t][1], first[t][1], equal_nan=True)]
    assert changed, f"{name}: the figure did not change"
    check_page_matches(ex, after, index, f"{name} after the move")
    text = driver.find_element(By.CSS_SELECTOR, ".dlopt-explorer-text").text
    assert text == ex.precompute()["text"][index].strip()

    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    requested = driver.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    assert all(url.startswith(base + "/") for url in requested), requested


def test_two_explorers_on_one_page(site, driver):
    base, _ = site
    driver.get(f"{base}/two.html")
    drawn = wait_for(driver, "const d = Array.from(document.querySelectorAll('.dlopt-explorer'))"
                             ".map(r => r.getAttribute('data-draws')); return d.every(Boolean) && d;")
    assert len(drawn) == 2
    assert not driver.execute_script("return document.querySelector('[data-error]')")
