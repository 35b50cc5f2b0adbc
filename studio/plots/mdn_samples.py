"""Samples of a mixture density network over its 1-D data (lesson 7, the MDN's output view).

A model ending in ``MixtureDensity`` outputs mixing weights, means and spreads, not a y, so
the fitted-curve view of a 1-D regression would draw a meaningless line. Instead this layer
of the output view draws, for a grid of x, samples of y from p(y | x)
(:func:`engine.layers.mixture.sample_mdn`): where one x has several y, the samples follow
every branch, where the MSE curve runs between them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

SAMPLE_X = 240  # grid points along x
SAMPLES_PER_X = 6
SAMPLE_COLOR = "#d9453d"


def is_mdn(model: Any) -> bool:
    graph = getattr(model, "graph", None)
    out = getattr(model, "output_id", None)
    return graph is not None and out in graph.nodes and graph.nodes[out].type == "MixtureDensity"


def mdn_samples(model: Any, lo: float, hi: float, n_x: int = SAMPLE_X,
                per_x: int = SAMPLES_PER_X, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) points: ``per_x`` samples of p(y | x) at ``n_x`` evenly spaced x in [lo, hi].

    A fixed seed, so a redraw while the weights move shows the density changing, not noise.
    """
    from engine.layers.mixture import sample_mdn

    xs = np.linspace(lo, hi, n_x)
    ys = np.asarray(sample_mdn(model, xs[:, None], samples=per_x, seed=seed), np.float64).reshape(n_x, per_x)
    return np.repeat(xs, per_x), ys.ravel()


class MdnSampleLayer:
    """The samples scatter of an output plot; empty unless the model is an MDN."""

    def __init__(self, plot: pg.PlotItem) -> None:
        color = QColor(SAMPLE_COLOR)
        color.setAlpha(120)
        self.scatter = pg.ScatterPlotItem(size=3.5, pen=None, brush=pg.mkBrush(color))
        self.scatter.setZValue(-5)  # under the data points, so both stay visible
        plot.addItem(self.scatter)
        self.shown = False

    def draw(self, model: Any, lo: float, hi: float) -> bool:
        """Draw samples if ``model`` is an MDN (True), else clear (False: draw the curve instead)."""
        if not is_mdn(model):
            self.clear()
            return False
        x, y = mdn_samples(model, lo, hi)
        self.scatter.setData(x, y)
        self.shown = True
        return True

    def clear(self) -> None:
        if self.shown:
            self.scatter.setData([], [])
            self.shown = False
