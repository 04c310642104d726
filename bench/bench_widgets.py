"""Redraw time of the book's trajectory explorer (dlopt.widgets.PathExplorer).

Target (issue "Chapters: SGD, momentum, adaptive"): a redraw of a 500-step 2-D trajectory takes at
most 50 ms. A redraw = run the rule for 500 steps + move the line artists (set_data) + blit onto the
cached background + encode the PNG the ipywidgets.Image shows. For comparison, the naive redraw
that re-plots the whole figure (contours included) and saves it is timed in the same run.
Printed, not asserted (timings depend on the machine).
"""

from __future__ import annotations

import io
import time

import numpy as np

from dlopt import functions, rules, widgets


def median_ms(fn, repeat: int = 15) -> float:
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    f = functions.Rosenbrock()
    cases = {
        "1 path  (heavy ball)": {"heavy ball": rules.heavy_ball},
        "2 paths (GD + heavy ball)": {"GD": rules.gd, "heavy ball": rules.heavy_ball},
    }
    print(f"{'explorer, 500 steps':28s} {'compute':>8s} {'draw':>7s} {'encode':>7s} {'total':>7s}"
          f" {'full re-plot':>13s} {'speed-up':>9s}")
    for name, methods in cases.items():
        ex = widgets.PathExplorer(f, [-1.5, 2.0], methods, steps=500, xlim=(-2, 2), ylim=(-1, 3),
                                  lr=1e-3, beta=0.9)
        ex._image = type("Sink", (), {"value": None})()  # encode as the widget does, no Jupyter
        lrs = np.geomspace(5e-4, 2e-3, 15)
        parts = []

        def redraw(i):
            ex.update(lr=float(lrs[i % 15]), beta=0.8 + 0.01 * (i % 15))
            parts.append(ex.timings)

        total = median_ms(redraw)
        med = {k: 1e3 * float(np.median([p[k] for p in parts])) for k in ("compute", "draw", "encode")}

        def replot(i):  # the naive way: a new figure with contours and paths, saved as PNG
            ex2 = widgets.PathExplorer(f, [-1.5, 2.0], methods, steps=500, xlim=(-2, 2), ylim=(-1, 3))
            for label, t in ex.trajectories.items():
                ex2.lines[label].set_data(t.xs[:, 0], t.xs[:, 1])
            ex2.figure.savefig(io.BytesIO(), format="png")

        naive = median_ms(replot, repeat=5)
        print(f"{name:28s} {med['compute']:7.1f}ms {med['draw']:6.1f}ms {med['encode']:6.1f}ms"
              f" {total:6.1f}ms {naive:11.1f}ms {naive / total:8.1f}x")
    print("target: total <= 50 ms per redraw")


if __name__ == "__main__":
    main()
