"""dlopt.plots sizes figures for the book's column (text never smaller than the page's)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from dlopt import plots


def _geometry(ax):
    return ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start


def test_subplots_fits_the_column_and_wraps_long_rows():
    fig, ax = plots.subplots(1, 3, sharey=True)
    assert fig.get_size_inches()[0] == pytest.approx(plots.COLUMN_WIDTH)
    assert ax.shape == (3,)
    assert [_geometry(a) for a in ax] == [(0, 0), (0, 2), (1, 1)]  # 2 + 1, last line centred
    assert ax[2].get_shared_y_axes().joined(ax[0], ax[2])
    fig2, grid = plots.subplots(2, 3)
    assert grid.shape == (2, 3) and fig2.get_size_inches()[1] == pytest.approx(3 * plots.PANEL_HEIGHT)
    plt.close("all")


def test_subplots_keeps_short_rows_and_rejects_bad_arguments():
    fig, ax = plots.subplots(1, 2, width_ratios=[1.3, 1], width=20)
    assert fig.get_size_inches()[0] == pytest.approx(plots.COLUMN_WIDTH)
    assert [_geometry(a) for a in ax] == [(0, 0), (0, 2)]
    with pytest.raises(ValueError, match="sharex"):
        plots.subplots(1, 2, sharex="diagonal")
    with pytest.raises(ValueError, match="nrows"):
        plots.subplots(0, 2)
    plt.close("all")


def test_fit_to_column_wraps_narrows_and_enlarges_small_text():
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.4), layout="constrained", sharey=True)
    for a in ax:
        a.plot([0, 1], [0, 1], label="x")
        a.legend(fontsize=8)
        a.tick_params(labelsize=7)
    plots.fit_to_column(fig)
    w, _ = fig.get_size_inches()
    assert w <= plots.COLUMN_WIDTH + 1e-9
    assert [_geometry(a) for a in ax] == [(0, 0), (0, 2), (1, 1)]
    fig.canvas.draw()
    small = [t.get_text() for t in fig.findobj(matplotlib.text.Text)
             if t.get_visible() and t.get_text() and t.get_fontsize() < 10]
    assert not small
    assert any(t.get_visible() and t.get_text() for t in ax[2].get_yticklabels())  # line start
    fig2, _ = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    plots.fit_to_column(fig2)
    assert fig2.get_size_inches()[0] == pytest.approx(plots.COLUMN_WIDTH)
    assert fig2.get_size_inches()[1] >= 0.42 * plots.COLUMN_WIDTH - 1e-9
    plt.close("all")


def test_figures_shown_in_ipython_go_through_fit_to_column():
    shell = pytest.importorskip("IPython.core.interactiveshell").InteractiveShell.instance()
    try:
        import importlib

        from IPython.core.pylabtools import select_figure_formats

        select_figure_formats(shell, {"png"})  # what the inline backend of a kernel registers
        importlib.reload(plots)  # installs the hook now that a shell exists
        fig, _ = plt.subplots(1, 3, figsize=(13, 3.4), layout="constrained")
        data, _ = shell.display_formatter.format(fig)
        assert "image/png" in data
        assert fig.get_size_inches()[0] <= plots.COLUMN_WIDTH + 1e-9
    finally:
        plt.close("all")
        type(shell).clear_instance()
