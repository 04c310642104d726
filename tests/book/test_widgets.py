"""dlopt.widgets.PathExplorer: same iterates as dlopt.run, in-place redraw, working sliders."""

from __future__ import annotations

import numpy as np
import pytest

import dlopt
from dlopt import functions, rules, widgets


def make(**kw):
    f = functions.Rosenbrock()
    return widgets.PathExplorer(f, [-1.5, 2.0], {"GD": rules.gd, "heavy ball": rules.heavy_ball,
                                                  "NAG b=0.5": (rules.nesterov, {"beta": 0.5})},
                                steps=200, xlim=(-2, 2), ylim=(-1, 3), **kw)


def test_paths_are_those_of_dlopt_run():
    ex = make(lr=1e-3, beta=0.9)
    f = ex.objective
    ref = {"GD": dlopt.run(rules.gd, f, ex.x0, 200, lr=1e-3),
           "heavy ball": dlopt.run(rules.heavy_ball, f, ex.x0, 200, lr=1e-3, beta=0.9),
           "NAG b=0.5": dlopt.run(rules.nesterov, f, ex.x0, 200, lr=1e-3, beta=0.5)}
    for label, t in ex.trajectories.items():
        np.testing.assert_allclose(t.xs, ref[label].xs, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(t.values, ref[label].values, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(t.grad_norms, ref[label].grad_norms, rtol=1e-10, atol=1e-12)
        line = ex.lines[label]
        np.testing.assert_array_equal(np.c_[line.get_xdata(), line.get_ydata()], t.xs)


def test_update_moves_the_same_artists_and_flags_divergence():
    ex = make(lr=1e-3, beta=0.9)
    lines = dict(ex.lines)
    before = ex.lines["heavy ball"].get_xdata().copy()
    ex.update(lr=2e-3)
    assert ex.lines == lines  # no new artists: the lines were moved with set_data
    assert not np.array_equal(before, ex.lines["heavy ball"].get_xdata())
    assert set(ex.timings) == {"compute", "draw", "encode", "total"}
    ex.update(lr=0.05)  # far beyond 2/L on Rosenbrock: every path blows up
    ref = dlopt.run(rules.gd, ex.objective, ex.x0, 200, lr=0.05)
    t = ex.trajectories["GD"]
    assert t.diverged and ref.diverged and t.steps == ref.steps
    assert "diverged" in ex.status.get_text()


def test_static_figure_renders_the_paths():
    ex = make(lr=1e-3, beta=0.9)
    png = ex._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_widget_sliders_redraw():
    pytest.importorskip("ipywidgets")
    ex = make(lr=1e-3, beta=0.9)
    box = ex.widget(lr=(1e-4, 1e-2, "log"), beta=(0.0, 0.99))
    sliders = box.children[0].children
    image = box.children[1]
    assert [s.description for s in sliders] == ["lr", "beta"]
    first = image.value
    assert first[:2] == b"\xff\xd8"  # JPEG
    sliders[1].value = 0.5
    assert ex.params["beta"] == pytest.approx(0.5, abs=0.01)
    assert image.value != first


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        widgets.PathExplorer(functions.Rosenbrock(n=3), np.zeros(3), {"GD": rules.gd})
    with pytest.raises(ValueError):
        widgets.PathExplorer(functions.Rosenbrock(), np.zeros(2), {})
