"""The book's kernel-free explorers (dlopt.book.explorers) in headless Chromium.

For every explorer of ``dlopt.book.explorers.BOOK``: the time its precomputation takes (the grid
of dlopt.run calls, added to the book build), the weight of a page holding it alone (its HTML with
the data, plus Plotly), the time to the first figure, and the time of a redraw after a slider
move (median of 10 moves, from the input event until Plotly.react has drawn), at 1400 px. The first
figure is measured twice: cold (a fresh browser: Plotly is fetched, parsed and compiled, as on a
reader's first explorer page) and warm (Plotly in the browser's cache, as on the next pages).

Budget (issue 12): page weight <= 2 MB, first figure <= 1 s, redraw <= 50 ms, all precomputation
together <= 20 s. ``python bench/bench_explorers.py --shots DIR`` also saves screenshots at 1400
and 390 px, before and after a slider move. Needs Debian's chromium and chromedriver and selenium.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PLOTLY = ROOT / "_ext" / "vendor" / "plotly" / "plotly-basic.min.js"

from dlopt.book import explorers  # noqa: E402

BUDGET = {"weight_mb": 2.0, "first_ms": 1000.0, "redraw_ms": 50.0, "precompute_s": 20.0}


def write_pages(names, folder: Path) -> dict[str, tuple[Path, float, float]]:
    """One standalone page per explorer, Plotly beside them as the book serves it; returns
    ``{name: (page, precompute wall seconds, precompute CPU seconds)}``."""
    target = folder / "_static" / explorers.PLOTLY_JS
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PLOTLY, target)
    out = {}
    display = 0.0
    for name in names:
        builder, _ = explorers.BOOK[name]
        ex = builder()
        t0 = time.perf_counter()
        ex._repr_mimebundle_()  # what a page's cell does: the grid, the JSON, the PNG snapshot
        display += time.perf_counter() - t0
        page = folder / f"{name}.html"
        page.write_text(explorers.standalone_page([ex], f"_static/{explorers.PLOTLY_JS}", title=name))
        out[name] = (page, ex.precompute_seconds or 0.0, ex.precompute_cpu_seconds or 0.0)
    write_pages.display_seconds = display  # type: ignore[attr-defined]
    return out


def serve(folder: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def chromium(width: int, profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                "--disable-background-networking", "--hide-scrollbars", "--force-device-scale-factor=1",
                f"--user-data-dir={profile}", f"--window-size={width},1000"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=opts)
    driver.set_window_size(width, 1000)
    driver.set_script_timeout(30)
    return driver


def wait_drawn(driver, timeout: float = 10.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if driver.execute_script("return document.querySelector('.dlopt-explorer').getAttribute('data-drawn')"):
            return
        time.sleep(0.02)
    raise TimeoutError("the explorer did not draw")


# Moves the first control one grid step and resolves with the redraw time the page measured.
MOVE = r"""
const done = arguments[arguments.length - 1];
const root = document.querySelector('.dlopt-explorer');
const input = root.querySelector('[data-control]');
const n = input.tagName === 'SELECT' ? input.options.length : Number(input.max) + 1;
const before = root.getAttribute('data-draws');
input.value = String((Number(input.value) + 1) % n);
const t0 = performance.now();
input.dispatchEvent(new Event('input', {bubbles: true}));
const poll = () => {
  if (root.getAttribute('data-draws') !== before)
    done({page: Number(root.getAttribute('data-redraw-ms')), outer: performance.now() - t0});
  else setTimeout(poll, 1);
};
poll();
"""


def measure(driver, url: str) -> dict:
    driver.get(url)
    wait_drawn(driver)
    first = float(driver.execute_script(
        "return Number(document.querySelector('.dlopt-explorer').getAttribute('data-first-paint-ms'))"))
    requested = driver.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name).concat([location.href])")
    redraws = [driver.execute_async_script(MOVE)["page"] for _ in range(10)]
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return {"first_ms": first, "redraw_ms": statistics.median(redraws), "redraw_max_ms": max(redraws),
            "requested": requested, "errors": errors}


def screenshots(names, base: str, shots: Path, profile: Path) -> list[Path]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    shots.mkdir(parents=True, exist_ok=True)
    saved = []
    for width in (1400, 390):
        driver = chromium(width, profile / f"shots-{width}")
        try:
            for name in names:
                driver.get(f"{base}/{name}.html")
                wait_drawn(driver)
                for _ in range(2):  # the layout changes with the viewport: size it twice
                    height = driver.execute_script("return document.documentElement.scrollHeight")
                    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                        "width": width, "height": min(height + 20, 2400), "deviceScaleFactor": 1,
                        "mobile": False})
                    time.sleep(0.4)
                saved.append(shots / f"{name}-{width}-before.png")
                driver.save_screenshot(str(saved[-1]))
                control = driver.find_element(By.CSS_SELECTOR, "[data-control]")
                if control.tag_name == "select":
                    driver.execute_script("arguments[0].selectedIndex = 1;"
                                          "arguments[0].dispatchEvent(new Event('change'))", control)
                else:
                    control.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
                time.sleep(0.3)
                saved.append(shots / f"{name}-{width}-after.png")
                driver.save_screenshot(str(saved[-1]))
        finally:
            driver.quit()
    return saved


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="explorers to measure (default: all)")
    parser.add_argument("--shots", type=Path, help="save screenshots into this folder")
    args = parser.parse_args(argv)
    names = args.names or list(explorers.BOOK)
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which("chromedriver"):
        print("skipped: headless Chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pages = write_pages(names, folder / "site")
        server, base = serve(folder / "site")
        driver = chromium(1400, folder / "profile")
        rows = []
        try:
            for k, name in enumerate(names):
                # cold: a fresh browser (empty cache), as a reader's first explorer page
                cold = chromium(1400, folder / f"cold-{k}")
                try:
                    cold.get(f"{base}/{name}.html")
                    wait_drawn(cold)
                    cold_ms = float(cold.execute_script("return Number(document.querySelector("
                                                        "'.dlopt-explorer').getAttribute('data-first-paint-ms'))"))
                finally:
                    cold.quit()
                m = measure(driver, f"{base}/{name}.html")
                m["cold_ms"] = cold_ms
                # page weight: every file the page requested (uncompressed bytes on disk)
                site = folder / "site"
                files = [site / url[len(base) + 1:] for url in m["requested"] if url.startswith(base + "/")]
                m["weight_mb"] = sum(f.stat().st_size for f in files if f.is_file()) / 1e6
                outside = [url for url in m["requested"] if not url.startswith(base + "/")]
                if outside:
                    m["errors"].append(f"requests outside the page's folder: {outside}")
                rows.append((name, pages[name][1], pages[name][2], m))
        finally:
            driver.quit()
        total = sum(p for _, p, _, _ in rows)
        total_cpu = sum(c for _, _, c, _ in rows)
        print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"{'explorer':24s} {'precompute (wall/CPU)':>21s} {'page weight':>12s} "
              f"{'first figure (cold/warm)':>25s} {'redraw (median/max)':>20s}  within budget")
        ok_all = True
        for name, pre, cpu, m in rows:
            ok = (m["weight_mb"] <= BUDGET["weight_mb"] and max(m["first_ms"], m["cold_ms"]) <= BUDGET["first_ms"]
                  and m["redraw_ms"] <= BUDGET["redraw_ms"] and not m["errors"])
            ok_all &= ok
            print(f"{name:24s} {pre:9.2f}s / {cpu:6.2f}s {m['weight_mb']:9.2f} MB "
                  f"{m['cold_ms']:11.0f} / {m['first_ms']:5.0f} ms "
                  f"{m['redraw_ms']:9.1f} / {m['redraw_max_ms']:5.1f} ms  {'yes' if ok else 'NO'}"
                  + (f"  console errors: {m['errors']}" if m["errors"] else ""))
        print(f"{'displaying them in pages':24s} {write_pages.display_seconds:9.2f}s  (grid + JSON + PNG snapshot, "
              "what the cells cost the build)")
        within = "yes" if total <= BUDGET["precompute_s"] else "NO"
        print(f"{'all precomputation':24s} {total:9.2f}s / {total_cpu:6.2f}s  "
              f"(budget {BUDGET['precompute_s']:.0f} s of build time: {within})")
        if args.shots:
            saved = screenshots(names, base, args.shots, folder / "profile")
            print(f"{len(saved)} screenshots in {args.shots}")
        server.shutdown()
    return 0 if ok_all else 1


if __name__ == "__main__":
    if sys.argv[0].endswith("bench_explorers.py"):
        sys.exit(main())
    main([])  # from bench/run.py: its arguments select scripts, not explorers
