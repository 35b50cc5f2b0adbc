"""Activation statistics per layer: saturation, dead units, and the spread of outputs.

Why gradients vanish is visible in the activations: a saturated sigmoid/tanh unit has
σ' ≈ 0, a dead ReLU unit passes no gradient at all. The trainer samples these every
``stats_every`` steps; this panel shows the latest sample by depth:

* saturated fraction (sigmoid/tanh family) and dead fraction (ReLU) per activation layer;
* mean ± standard deviation of every layer's output (collapsing spreads also starve the
  gradient).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

from studio.plots.common import (
    NamesAxis,
    PlotPanel,
    depth_colors,
    legend_row,
    palette_colors,
    readable_axes,
    style_legend,
    style_plot,
)
from studio.training.history import RunRecord

SATURATED = QColor("#e07a3f")
DEAD = QColor("#d9453d")


class ActivationPanel(PlotPanel):
    """Latest activation statistics by depth (see module docstring)."""

    title = "Activations"

    def _build(self) -> None:
        frac_cell, spread_cell = self.add_cell(), self.add_cell()
        self.frac_axis = NamesAxis("bottom")
        self.frac_plot: pg.PlotItem = frac_cell.addPlot(row=0, col=0,
                                                        axisItems=readable_axes(bottom=self.frac_axis))
        self.frac_legend = legend_row(self.frac_plot)
        self.frac_plot.setYRange(0, 1.0, padding=0.02)
        self.sat_bars = pg.BarGraphItem(x=[], height=[], width=0.38, brush=SATURATED)
        self.dead_bars = pg.BarGraphItem(x=[], height=[], width=0.38, brush=DEAD)
        self.frac_plot.addItem(self.sat_bars)
        self.frac_plot.addItem(self.dead_bars)
        self.frac_legend.addItem(self.sat_bars, "saturated (σ′ ≈ 0)")
        self.frac_legend.addItem(self.dead_bars, "dead ReLU units")
        self.empty_note = pg.TextItem("", anchor=(0, 0))
        self.empty_note.setParentItem(self.frac_plot.getViewBox())
        self.empty_note.setPos(8, 8)
        self.spread_axis = NamesAxis("bottom")
        self.spread_plot: pg.PlotItem = spread_cell.addPlot(row=0, col=0,
                                                            axisItems=readable_axes(bottom=self.spread_axis))
        self.errors = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0), beam=0.25)
        self.spread_plot.addItem(self.errors)
        self.means = pg.ScatterPlotItem(size=7)
        self.spread_plot.addItem(self.means)
        self._names: tuple[list[str], list[str]] = ([], [])
        self._brushes: list = []
        self.latest: dict[str, tuple[float, float, float, float]] = {}

    def _style(self) -> None:
        style_plot(self.frac_plot, "Saturated / dead units by layer (latest sample)", "fraction of units")
        style_plot(self.spread_plot, "Layer outputs by layer: mean ± std (latest sample)", "value")
        style_legend(self.frac_legend)
        _, fg, dim = palette_colors()
        self.empty_note.setColor(fg)
        self.errors.setData(pen=pg.mkPen(dim, width=1.4))

    def content_version(self, record: RunRecord | None) -> int:
        """Only new activation samples change this panel, not every step."""
        return len(record.stats_steps) if record is not None else -1

    def _draw(self) -> None:
        rec = self.record
        if rec is None or not len(rec.stats_steps):
            self.latest = {}
            self.sat_bars.setOpts(x=[], height=[])
            self.dead_bars.setOpts(x=[], height=[])
            self.errors.setData(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0))
            self.means.setData([], [])
            self.empty_note.setText("no activation statistics yet (sampled every stats_every steps)"
                                    if rec is not None else "")
            return
        self.empty_note.setText("")
        _, values = rec.stats_table()
        last = values[-1]  # (nodes, 4): mean, std, saturated, dead
        nodes = rec.stats_nodes
        self.latest = {n: tuple(map(float, last[i])) for i, n in enumerate(nodes)}  # type: ignore[misc]
        act = [i for i, _ in enumerate(nodes) if np.isfinite(last[i, 2]) or np.isfinite(last[i, 3])]
        act_names = [nodes[i] for i in act]
        if (act_names, nodes) != self._names:
            self._names = (act_names, list(nodes))
            self.frac_axis.set_names(act_names)
            self.spread_axis.set_names(nodes)
            self.frac_plot.setXRange(-0.6, max(0, len(act) - 1) + 0.6, padding=0)
            self.spread_plot.setXRange(-0.6, max(0, len(nodes) - 1) + 0.6, padding=0)
            self._brushes = [pg.mkBrush(c) for c in depth_colors(len(nodes))]
        xs = np.arange(len(act), dtype=float)
        sat = np.nan_to_num(last[act, 2]) if act else np.zeros(0)
        dead = np.nan_to_num(last[act, 3]) if act else np.zeros(0)
        has_sat = np.isfinite(last[act, 2]) if act else np.zeros(0, bool)
        self.sat_bars.setOpts(x=xs[has_sat], height=sat[has_sat], width=0.7)
        self.dead_bars.setOpts(x=xs[~has_sat], height=dead[~has_sat], width=0.7)
        if not act:
            self.empty_note.setText("no sigmoid/tanh/ReLU layers: nothing can saturate or die")
        x = np.arange(len(nodes), dtype=float)
        mean, std = np.nan_to_num(last[:, 0]), np.nan_to_num(last[:, 1])
        self.errors.setData(x=x, y=mean, height=2 * std)
        self.means.setData(x, mean, brush=self._brushes, pen=None)
