"""dlopt.book.explorers: the data a page holds are dlopt.run's runs, serialised within rounding.

The grid of every book explorer is precomputed once here (as the book build does); sampled grid
points are compared with fresh dlopt.run calls written out in this file, and the page's JSON is
parsed back and compared with the precomputed arrays. The browser side is
tests/test_explorers_browser.py.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import dlopt
from dlopt import functions, rules
from dlopt.book import explorers


# the noisy explorers with fewer runs per grid point (same code; keeps this module fast)
FEWER_RUNS = {"schedule-basin": 20, "sgd-noise-floor": 20, "langevin-escape": 40}


@pytest.fixture(scope="module")
def book():
    return {name: builder(**({"runs": FEWER_RUNS[name]} if name in FEWER_RUNS else {}))
            for name, (builder, _) in explorers.BOOK.items()}


def close_to_page(page, fresh, what):
    """``page`` holds ``fresh`` rounded to explorers.DIGITS significant digits."""
    fresh = np.asarray(fresh, dtype=float)
    page = np.asarray([np.nan if v is None else v for v in page], dtype=float)
    assert page.shape == fresh.shape, what
    tol = 0.51 * 10.0 ** (1 - explorers.DIGITS) * np.abs(fresh) + 1e-300
    assert np.all(np.abs(page - fresh) <= tol), what


def page_data(ex) -> dict:
    html = ex.html(uid="t")
    text = re.search(r'<script type="application/json">(.*?)</script>', html, re.S).group(1)
    return json.loads(text.replace("<\\/", "</"))


def test_every_book_explorer_is_on_its_page_and_has_a_grid(book):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assert len(book) >= 8
    for name, (builder, page) in explorers.BOOK.items():
        assert f"explorers.{builder.__name__}(" in (root / page).read_text(), (name, page)
        assert book[name].name == name
        assert all(len(c.values) >= 3 for c in book[name].controls), name


@pytest.mark.parametrize("name", ["momentum-quadratic", "momentum-rosenbrock", "gd-step-size", "overshoot",
                                  "adaptive-learning-rate"])
def test_path_explorers_hold_the_paths_of_dlopt_run(book, name):
    ex = book[name]
    data = page_data(ex)
    rng = np.random.default_rng(0)
    n = int(np.prod([len(c.values) for c in ex.controls]))
    for i in rng.choice(n, size=4, replace=False):
        params = ex.params_at(int(i))
        f = ex._objective(params)
        for label, (rule, fixed, accepted) in ex.methods.items():
            kw = {k: v for k, v in params.items() if accepted is None or k in accepted}
            kw.update(fixed)
            t = dlopt.run(rule, f, ex.x0, ex.steps, **kw)  # a fresh run, written out here
            xs = t.xs[: ex.path_steps + 1: ex.path_every]
            px, py = data["data"][f"path:{label}"][int(i)]
            close_to_page(px, xs[:, 0], (name, params, label, "x₁"))
            close_to_page(py, xs[:, 1], (name, params, label, "x₂"))
            stride, gaps = data["data"][f"loss:{label}"][int(i)]
            k = np.arange(0, len(t.values), ex.loss_every)
            if len(k) > 1:
                assert stride == ex.loss_every
            close_to_page(gaps, np.maximum(t.values[k] - ex._f_star(f), 1e-300), (name, params, label, "loss"))


def test_momentum_explorer_grid_point_by_hand(book):
    """One grid point of the momentum explorer against a run spelled out without the explorer."""
    ex = book["momentum-quadratic"]
    i = ex.index_of(lr=1.0, beta=0.8)
    assert ex.params_at(i) == {"lr": 1.0, "beta": 0.8}
    f = functions.Quadratic.from_eigenvalues([0.04, 1.0], seed=2)
    t = dlopt.run(rules.heavy_ball, f, [-2.0, 1.5], 150, lr=1.0, beta=0.8)
    px, py = page_data(ex)["data"]["path:heavy ball"][i]
    close_to_page(px, t.xs[:81, 0], "heavy ball x₁")
    close_to_page(py, t.xs[:81, 1], "heavy ball x₂")


@pytest.mark.parametrize("name", ["momentum-rate-map", "adam-betas", "schedule-basin", "sgd-noise-floor",
                                  "langevin-escape"])
def test_other_explorers_hold_fresh_computations(book, name):
    """The page's arrays are what a fresh compute (dlopt.run inside) gives at sampled grid points:
    noisy explorers draw from a generator seeded by the grid point, so they repeat exactly."""
    ex = book[name]
    data = page_data(ex)
    n = int(np.prod([len(c.values) for c in ex.controls]))
    for i in np.random.default_rng(1).choice(n, size=1 if name in FEWER_RUNS else 2, replace=False):
        out = ex.compute(**ex.params_at(int(i)))
        for t in ex.traces:
            x, y = out[t.name]
            py = data["data"][t.name][int(i)][1]
            close_to_page(py, y, (name, int(i), t.name))
        assert data["text"][int(i)] == out.get("text", "")


def test_adam_explorer_is_adam_on_the_sequence(book):
    ex = book["adam-betas"]
    T = 80
    g = np.ones((T, 2))
    g[4, 0] = 10.0
    g[:, 1] = (-1.0) ** np.arange(T)
    i = ex.index_of(beta1=0.9, beta2=0.999, eps=1e-8)
    t = dlopt.run(rules.adam, lambda x, k, rng: g[k], np.zeros(2), T, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    steps = -np.diff(t.xs, axis=0) / 0.1
    data = page_data(ex)["data"]
    close_to_page(data["adam1"][i][1], steps[:, 0], "coordinate 1")
    close_to_page(data["adam2"][i][1], steps[:, 1], "coordinate 2")
    assert data["adam1"][i][0] == {"o": 1, "s": 1}  # steps t = 1, 2, ...


def test_page_html_controls_are_labelled_ranges():
    ex = explorers.momentum_quadratic()
    html = ex.html(uid="q")
    for c in ex.controls:
        assert f'<label for="q-{c.name}" data-readout="{c.name}">{c.symbol} = ' in html
        assert re.search(rf'<input type="range" id="q-{c.name}" data-control="{c.name}" min="0" '
                         rf'max="{len(c.values) - 1}" step="1" value="\d+" aria-valuetext="{c.symbol} = ', html)
    assert 'value="5"' in html  # α = 1.0 is the sixth grid value: the initial setting
    assert "Plotly.react" in html and "function (param" not in html


def test_mimebundle_has_html_and_a_png_snapshot():
    ex = explorers.momentum_rate_map()
    bundle = ex._repr_mimebundle_()
    assert bundle["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert 'class="dlopt-explorer"' in bundle["text/html"]


def test_labels():
    c = explorers.Control("eps", (1e-8, 2.5e-5, 0.01, 1.0), "ε", "g")
    assert [c.label(v) for v in c.values] == ["10⁻⁸", "2.5·10⁻⁵", "0.01", "1"]
    assert explorers.Control("shape", ("cosine", "step")).label("step") == "step"


def test_rounding_and_strides():
    assert explorers._fmt_array([1.23456, np.inf, -0.000123456, np.nan]) == "[1.235,null,-0.0001235,null]"
    assert explorers._fmt_x(np.arange(0, 30, 3)) == "3"
    assert explorers._fmt_x(np.arange(1, 11)) == '{"o":1,"s":1}'
    assert explorers._fmt_x([0.5, 2.0]) == "[0.5,2]"


def test_bad_arguments():
    f = functions.Rosenbrock()
    c = [explorers.Control("lr", (1e-3, 2e-3, 3e-3))]
    with pytest.raises(ValueError, match="2-D"):
        explorers.PathExplorer(functions.Rosenbrock(n=3), np.zeros(3), {"GD": rules.gd}, c)
    with pytest.raises(ValueError, match="at least one method"):
        explorers.PathExplorer(f, np.zeros(2), {}, c)
    with pytest.raises(ValueError, match="unknown parameters"):
        explorers.PathExplorer(f, np.zeros(2), {"GD": rules.gd}, c, value={"beta": 0.5})
    with pytest.raises(ValueError, match="at least one value"):
        explorers.Control("lr", ())
    with pytest.raises(ValueError, match="must be one of"):
        explorers.Control("shape", ("cosine", "step")).nearest("linear")


def test_live_update_runs_off_the_grid():
    ex = explorers.momentum_rosenbrock()
    ex.update(lr=1.234e-3, beta=0.9)  # not a grid value: computed live
    t = dlopt.run(rules.heavy_ball, functions.Rosenbrock(), [-1.5, 2.0], 500, lr=1.234e-3, beta=0.9)
    np.testing.assert_array_equal(ex.trajectories["heavy ball"].xs, t.xs)
    assert ex.snapshot().axes  # the static figure of that setting


def test_widget_is_live():
    pytest.importorskip("ipywidgets")
    ex = explorers.adaptive_learning_rate()
    box = ex.widget()
    slider = box.children[0].children[0]
    image = box.children[1]
    before = image.value
    slider.value = 0.0123
    assert ex.params["lr"] == pytest.approx(0.0123)
    assert image.value != before
