"""Gradient flow: per-layer gradient norms over time, by depth, and as a heat map.

Three views of the same numbers — the L2 norm of each layer's parameter gradient, every
step — which together show vanishing (or exploding) gradients at a glance:

* **over time**: one log-scale curve per layer, coloured by depth (blue = first layer,
  red = last), with a legend;
* **by depth**: bars of the current norms from input to output (the vanishing picture: in a
  deep sigmoid network the first bar is orders of magnitude below the last), with an
  earlier run as a dashed ghost for comparison;
* **heat map**: layer × time image of log10 norms with a colour bar.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor

from studio.plots.common import (
    GRADIENT_MAP,
    MAX_POINTS,
    LogAxis,
    NamesAxis,
    PlotPanel,
    PowerAxis,
    SteadyRange,
    depth_colors,
    ghost_pen,
    legend_row,
    log_range,
    palette_colors,
    positive,
    readable_axes,
    style_legend,
    style_plot,
    superscript,
)
from studio.training.history import RunRecord

HEAT_INTERVAL = 0.25  # seconds between heat-map renders while a run streams
RECENT = 20  # bars and tints show the geometric mean of this many recent steps
LEGEND_LAYERS = 5  # the curves' legend names this many layers, first to last (colour = depth)


def legend_sample(n: int, k: int = LEGEND_LAYERS) -> list[int]:
    """Indices of ``k`` layers spread from the first to the last (all of them if n ≤ k): the
    colours run along depth, so a few named ones read the whole scale."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def ratio_text(first: float, last: float) -> str:
    """'first layer gets 10⁻⁴·³ × the last layer's gradient' in words a student reads."""
    if not (first > 0 and last > 0 and math.isfinite(first) and math.isfinite(last)):
        return ""
    r = first / last
    if 0.2 <= r <= 5:
        return f"first ÷ last layer gradient: {r:.2g}× (healthy flow)"
    exp = math.log10(r)
    return f"first ÷ last layer gradient: 10{superscript(round(exp))} ({r:.1e}×)"


def flow_text(rec: RunRecord, norms: np.ndarray) -> str:
    """The bars' headline: the first ÷ last ratio, or that the run diverged (its norms are no
    picture of healthy flow then)."""
    if rec.diverged is not None:
        where = f" in {rec.diverged.node}" if rec.diverged.node else ""
        return f"diverged at step {rec.diverged.step:,}{where}: no flow to read"
    return ratio_text(norms[0], norms[-1]) if len(norms) > 1 else ""


class GradientPanel(PlotPanel):
    """Per-layer gradient norms: curves (log), bars by depth, heat map (see module docstring)."""

    title = "Gradient flow"

    def _build(self) -> None:
        curves_cell, bars_cell, heat_cell = self.add_cell(), self.add_cell(), self.add_cell()
        self.curves_plot: pg.PlotItem = curves_cell.addPlot(row=0, col=0,
                                                            axisItems=readable_axes(left=LogAxis("left")))
        self.legend = legend_row(self.curves_plot, columns=LEGEND_LAYERS)
        self.curves_plot.setLogMode(y=True)
        self.curves_plot.setClipToView(True)
        self.bar_axis = NamesAxis("bottom")
        self.bars_plot: pg.PlotItem = bars_cell.addPlot(row=0, col=0, axisItems={"left": PowerAxis("left"),
                                                                                  "bottom": self.bar_axis})
        self.ratio_label = pg.LabelItem("", size="8pt", justify="left")
        self.bars_legend = legend_row(self.bars_plot, columns=1, lead=self.ratio_label)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, y0=0)
        self.bars_plot.addItem(self.bars)
        self.ghost_bars = pg.PlotDataItem([], [], symbol="o", symbolSize=6)
        self.bars_plot.addItem(self.ghost_bars)
        self.heat_axis = NamesAxis("left")
        self.heat_plot: pg.PlotItem = heat_cell.addPlot(row=0, col=0,
                                                        axisItems=readable_axes(left=self.heat_axis))
        self.heat = pg.ImageItem(axisOrder="col-major")
        self.heat_plot.addItem(self.heat)
        self.colorbar = pg.ColorBarItem(values=(-6, 0), colorMap=GRADIENT_MAP, label="log₁₀ ‖∇‖",
                                        interactive=False, width=14, colorMapMenu=False)
        self.colorbar.setImageItem(self.heat, insert_in=self.heat_plot)
        self.curves: list[pg.PlotDataItem] = []
        self.ghost_curves: list[pg.PlotDataItem] = []
        self._nodes: list[str] = []
        self._ghost_key: tuple[int, int] | None = None
        self._ghost_last = 0.0
        self._ghost_norms = self._ghost_values = np.zeros(0)
        self._heat_at = 0.0
        self.values = np.zeros(0)
        self.curves_range = SteadyRange(self.curves_plot)
        self.heat_range = SteadyRange(self.heat_plot)
        self._range_owner: tuple[int, int] | None = None
        self._levels: tuple[float, float] | None = None

    def _style(self) -> None:
        style_plot(self.curves_plot, "Gradient norm per layer over time (by step)", "‖∇W‖ (log)")
        style_plot(self.bars_plot, f"Gradient norm by depth, input → output (last {RECENT} steps)", "‖∇W‖ (log)")
        style_plot(self.heat_plot, "Layer × step: log₁₀ gradient norm", "layer")
        self.heat_plot.showGrid(x=False, y=False)
        for legend in (self.legend, self.bars_legend):
            style_legend(legend)
            legend.setBrush(pg.mkBrush(None))
            legend.setPen(pg.mkPen(None))
        _, fg, dim = palette_colors()
        self.ratio_label.setText(self.ratio_label.text, color=fg.name())
        for name in ("left", "right", "top", "bottom"):
            axis = self.colorbar.getAxis(name)
            axis.setPen(pg.mkPen(dim))
            axis.setTextPen(pg.mkPen(fg))
        self.colorbar.getAxis("left").setLabel("log₁₀ ‖∇‖", color=fg.name())

    # -- construction per run ---------------------------------------------------------------
    def _ensure_curves(self, nodes: list[str]) -> None:
        """Create one curve per layer (once per run: later frames only call setData)."""
        if nodes == self._nodes:
            return
        for curve in self.curves:
            self.curves_plot.removeItem(curve)
        self.legend.clear()
        self._nodes = list(nodes)
        colors = depth_colors(len(nodes))
        self.curves = []
        for nid, color in zip(nodes, colors, strict=True):
            curve = pg.PlotDataItem([], [], pen=pg.mkPen(color, width=1.6), name=nid,
                                    antialias=False)  # one curve per layer, redrawn live
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            self.curves_plot.addItem(curve)
            self.curves.append(curve)
        for i in legend_sample(len(nodes)):
            self.legend.addItem(self.curves[i], nodes[i])
        self.bar_axis.set_names(nodes)
        self.heat_axis.set_names(nodes)
        if colors:  # (pyqtgraph 0.14 fails on an empty pens list)
            self.bars.setOpts(x=[], height=[], brushes=[pg.mkBrush(c) for c in colors],
                              pens=[pg.mkPen(c.darker(130)) for c in colors])
        self.bars_plot.setXRange(-0.6, max(0, len(nodes) - 1) + 0.6, padding=0)
        self._ghost_key = None

    # -- drawing ----------------------------------------------------------------------------
    def bar_values(self) -> np.ndarray:
        """The norms the bars show (first layer first): what the tests check."""
        return self.values.copy()

    def _set_ratio(self, text: str) -> None:
        if text != self.ratio_label.text:
            self.ratio_label.setText(text, color=palette_colors()[1].name())

    def _draw(self) -> None:
        rec = self.record
        self._ensure_curves(rec.nodes if rec is not None else [])
        self._draw_ghost()
        if rec is None or not rec.nodes or not rec.n_steps:
            self.values = np.zeros(len(rec.nodes) if rec is not None else 0)
            for curve in self.curves:
                curve.setData([], [])
            self.bars.setOpts(x=[], height=[])
            self.heat.clear()
            self._set_ratio("")
            if len(self._ghost_values):  # only the ghost: its own scale
                lo, hi = log_range(self._ghost_values)
                self._place_ghost_bars(lo)
                self.bars_plot.setYRange(lo, hi + 0.3, padding=0)
                self.curves_range.update(0.0, self._ghost_last, (lo, hi), exact=True)
            return
        owner = (id(rec), id(self.ghost))
        if owner != self._range_owner:  # a new run or ghost: views start over
            self._range_owner = owner
            self.curves_range.reset()
            self.heat_range.reset()
            self._heat_at = 0.0
        steps, _, grads = rec.step_view(MAX_POINTS)
        for i, curve in enumerate(self.curves):
            curve.setData(steps, positive(grads[:, i]))
        self.values = rec.recent_norms(RECENT)
        lo, hi = log_range(np.concatenate([self.values, grads.ravel()]))
        if len(self._ghost_values):  # the comparison must stay on the axes (a vanishing ghost sits decades lower)
            lo, hi = min(lo, log_range(self._ghost_values)[0]), max(hi, log_range(self._ghost_values)[1])
        with np.errstate(divide="ignore"):
            logs = np.log10(np.where(self.values > 0, self.values, 10.0 ** lo))
        self.bars.setOpts(x=np.arange(len(logs)), height=logs - lo, y0=lo)
        self.bars_plot.setYRange(lo, hi + 0.3, padding=0)
        self._place_ghost_bars(lo)
        self._set_ratio(flow_text(rec, self.values))
        now = time.perf_counter()
        if now - self._heat_at >= HEAT_INTERVAL or rec.finish is not None:
            self._heat_at = now  # the long view changes slowly; re-rendering it each frame cost the trainer
            self._draw_heat(rec, steps, grads, lo, hi)
        self._fit_ranges(rec, float(steps[-1]), lo, hi)

    def _draw_heat(self, rec: RunRecord, steps: np.ndarray, grads: np.ndarray, lo: float, hi: float) -> None:
        with np.errstate(divide="ignore", invalid="ignore"):
            image = np.log10(np.where(grads > 0, grads, 10.0 ** lo))
        image = np.where(np.isfinite(image), image, lo)
        self.heat.setImage(image, autoLevels=False, levels=(lo, hi))
        x0, x1 = float(steps[0]), float(steps[-1])
        self.heat.setRect(QRectF(x0, -0.5, max(x1 - x0, 1.0), len(rec.nodes)))
        self.heat_range.update(0.0, x1, (-0.5, len(rec.nodes) - 0.5), exact=rec.finish is not None)
        if (lo, hi) != self._levels:
            self._levels = (lo, hi)
            self.colorbar.setLevels((lo, hi))

    def _fit_ranges(self, rec: RunRecord, last_step: float, lo: float, hi: float) -> None:
        """Views grow in steps (x) and whole decades (y) instead of moving every frame. The x
        axis follows the shown run: a longer ghost is cut at its end, not stretching it."""
        done = rec.finish is not None
        self.curves_range.update(0.0, last_step, (lo, hi), exact=done)

    def _draw_ghost(self) -> None:
        """The ghost's curves (once per ghost); its bars are placed by :meth:`_place_ghost_bars`."""
        ghost = self.ghost
        key = (id(ghost), ghost.version) if ghost is not None else None
        if key == self._ghost_key:
            return
        self._ghost_key = key
        for curve in self.ghost_curves:
            self.curves_plot.removeItem(curve)
        self.ghost_curves = []
        self.bars_legend.clear()
        self._ghost_last = 0.0
        self._ghost_norms = self._ghost_values = np.zeros(0)
        if ghost is None or not ghost.n_steps or not ghost.nodes:
            self.ghost_bars.setData([], [])
            return
        steps, _, grads = ghost.step_view(MAX_POINTS // 2)
        self._ghost_last = float(steps[-1]) if len(steps) else 0.0
        colors = depth_colors(len(ghost.nodes))
        for i, color in enumerate(colors):
            curve = pg.PlotDataItem(steps, positive(grads[:, i]), pen=ghost_pen(color, 1.0))
            curve.setZValue(-10)
            self.curves_plot.addItem(curve)
            self.ghost_curves.append(curve)
        self._ghost_norms = ghost.recent_norms(RECENT)
        self._ghost_values = np.concatenate([self._ghost_norms, grads.ravel()])
        _, fg, _ = palette_colors()
        self.ghost_bars.setData([], [], pen=ghost_pen(QColor(fg), 1.6), symbolBrush=None,
                                symbolPen=pg.mkPen(QColor(fg)), name=f"ghost {ghost.label}")
        self.ghost_bars.setZValue(10)
        self.bars_legend.addItem(self.ghost_bars, f"ghost: {ghost.label}")

    def _place_ghost_bars(self, lo: float) -> None:
        """The ghost's recent norms by relative depth over this run's layers (zeros at the floor)."""
        values = self._ghost_norms
        if not len(values):
            return
        n, m = max(len(self._nodes), 1), len(values)
        xs = np.arange(m) * ((n - 1) / (m - 1) if m > 1 else 0.0)
        with np.errstate(divide="ignore"):
            logs = np.log10(np.where(values > 0, values, 10.0 ** lo))
        self.ghost_bars.setData(xs, np.maximum(logs, lo))
