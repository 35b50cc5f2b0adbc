"""Through time: how the error signal of a recurrent layer survives the way back through time.

Back through time a SimpleRNN multiplies the gradient at every step by diag(φ′) Whᵀ, so
‖∂L/∂h_t‖ falls (or grows) geometrically with the distance from the loss; an LSTM's cell is
only multiplied by its forget gate. Four views of the run's ``time_grads`` samples (every
``stats_every`` steps, see docs/cli.md) and of one chosen sequence:

* **‖∂L/∂h_t‖ against t** (log): the latest sample of every recurrent layer, its first sample
  (the initial weights) faint, and an earlier run as a dashed ghost: the RNN beside the LSTM;
* **σ_max(Wh) over training** with the line 1/γ of Pascanu et al. (2013) for SimpleRNN
  layers (γ bounds |φ′|: 1 for tanh and ReLU, 1/4 for sigmoid): below it the gradient through
  time must vanish;
* **hidden state** of the chosen layer for one training sequence, units × time;
* **mean forget gate** f̄_t of an LSTM (GRU: mean update gate z̄_t) for that sequence.

Cost stays bounded whatever the run: the panel redraws only when a new sample arrived (at
most :data:`MAX_HZ`, never per event), what did not change is not set again (a
repaint of the plots is what costs the GUI thread), curves are not antialiased (as the other
live plots) and decimated to
:data:`~studio.plots.common.MAX_POINTS`, and the hidden-state trace (one forward of one
sequence on the studio's preview model, never the training model) is recomputed at most
every :data:`TRACE_INTERVAL` seconds, longer if it is slow, on at most
:data:`MAX_CELLS` image cells.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox

from engine.through_time import Trace, hidden_trace
from studio.plots.common import (
    MAX_POINTS,
    LogAxis,
    PlotPanel,
    SteadyRange,
    depth_colors,
    ghost_pen,
    log_range,
    nice_above,
    palette_colors,
    positive,
    style_plot,
    superscript,
)
from studio.training.history import RunRecord, stride_index
from studio.training.time_history import TimeGradsSeries

MAX_HZ = 5.0  # redraws a second at most: samples come every stats_every steps, a slow signal
TRACE_INTERVAL = 0.5  # seconds between two hidden-state traces while a run streams
TRACE_BUDGET = 0.05  # a trace may take at most this share of the GUI's time
SQUARE_MIN_HEIGHT = 400  # below this the four plots stand in one row
MAX_CELLS = (256, 600)  # units × time cells of the heat map at most (strided beyond)
HIDDEN_MAP = pg.colormap.get("CET-D1")  # diverging: negative blue, zero white, positive red
GATE_LABEL = {"LSTM": ("f", "Mean forget gate f̄_t"), "GRU": ("z", "Mean update gate z̄_t")}
GAMMA_TIP = ("Pascanu et al. (2013): back through time each step multiplies the gradient by "
             "diag(φ′(z_t)) Whᵀ. With |φ′| ≤ γ its size shrinks at least by σ_max(Wh)·γ per step, so "
             "while σ_max(Wh) < 1/γ the gradient through time must vanish (exponentially in the "
             "distance). Above the line it may explode, or still vanish. γ = 1 for tanh and ReLU, "
             "1/4 for sigmoid; LSTM and GRU gates break the bound.")


def subscript(n: int) -> str:
    return str(n).translate(str.maketrans("-0123456789", "₋₀₁₂₃₄₅₆₇₈₉"))


def ratio_value_text(r: float) -> str:
    """0.32× as '0.32×', 2.1·10⁻⁴ as '10⁻⁴ (2.1e-04×)'."""
    if not (r > 0 and math.isfinite(r)):
        return "—"
    if 1e-2 <= r < 100:
        return f"{r:.2g}×"
    return f"10{superscript(round(math.log10(r)))} ({r:.1e}×)"


def series_ratio_text(series: TimeGradsSeries) -> str:
    """'‖∂L/∂h₁‖ ÷ ‖∂L/∂h₅₀‖ = 10⁻⁴ (2.1e-04×)' of the latest sample."""
    return (f"‖∂L/∂h₁‖ ÷ ‖∂L/∂h{subscript(series.length)}‖ = "
            f"{ratio_value_text(series.first_last_ratio())}")


def time_ratio_tooltip(record: RunRecord | None, node: str) -> str:
    """The hover line of a recurrent node's card: first ÷ last time-step gradient ('' if none)."""
    series = record.time_grads.series.get(node) if record is not None else None
    if series is None or not len(series):
        return ""
    return (f"gradient through time: {series_ratio_text(series)}<br>"
            f"(T = {series.length} steps; sampled at step {series.latest_step})")


STEADY_TOPS = (1.0, 1.5, 2.0, 3.0, 5.0, 7.5)
"""The steps (× a power of ten) in which the σ_max plot's top grows while a run goes on."""


def steady_top(shown: float | None, needed: float, done: bool) -> float:
    """The top of the σ_max plot: while a run goes on, kept until σ_max passes it and then the
    next of 1, 1.5, 2, 3, 5, 7.5 × 10ᵏ above it (σ_max grew 2 → 8 in lstm_temporal_order: 4
    range changes instead of 14, each of which repaints both axes, 5 ms); a finished run
    fits to the next half."""
    if done or not needed > 0:
        return math.ceil(needed * 2) / 2 if needed > 0 else 1.0
    if shown is not None and needed <= shown:
        return shown
    return nice_above(needed, STEADY_TOPS)


def inverse_gamma_lines(records: list[RunRecord | None]) -> dict[float, str]:
    """{1/γ: label} for the SimpleRNN layers of ``records``, e.g. {1.0: '1/γ = 1 (tanh)'}."""
    out: dict[float, list[str]] = {}
    for rec in records:
        if rec is None:
            continue
        params = {n.get("id"): n.get("params", {}) for n in rec.graph.get("nodes", [])}
        for s in rec.time_grads.series.values():
            if s.gamma:
                act = str(params.get(s.node, {}).get("activation", ""))
                names = out.setdefault(1.0 / s.gamma, [])
                if act and act not in names:
                    names.append(act)
    return {v: f"1/γ = {v:g}" + (f" ({', '.join(names)})" if names else "") for v, names in sorted(out.items())}


def bounded_image(values: np.ndarray) -> np.ndarray:
    """``values`` (units × time) strided down to at most :data:`MAX_CELLS` cells."""
    rows = stride_index(values.shape[0], MAX_CELLS[0])
    cols = stride_index(values.shape[1], MAX_CELLS[1])
    return values[np.ix_(rows, cols)]


class ThroughTimePanel(PlotPanel):
    """Gradients through time of the recurrent layers (see the module docstring)."""

    title = "Through time"
    empty_hint = ("Train a network with a recurrent layer (SimpleRNN, LSTM, GRU): the gradient "
                  "through time ‖∂L/∂h_t‖, σ_max(Wh) and the hidden state of a sequence appear here "
                  "(sampled every stats_every steps).")

    # -- construction --------------------------------------------------------------------
    def _build(self) -> None:
        self._build_controls()
        glw = self.glw
        self.time_plot: pg.PlotItem = glw.addPlot(row=0, col=0, axisItems={"left": LogAxis("left")})
        self.time_plot.setLogMode(y=True)
        self.sigma_plot: pg.PlotItem = glw.addPlot(row=0, col=1)
        self.heat_plot: pg.PlotItem = glw.addPlot(row=1, col=0)
        self.heat_plot.setToolTip("The hidden state h_t of the chosen layer (units × time) while the chosen "
                                  "training sequence runs through the current weights (blue < 0 < red).")
        self.heat = pg.ImageItem(axisOrder="row-major")
        self.heat_plot.addItem(self.heat)
        self.colorbar = pg.ColorBarItem(values=(-1, 1), colorMap=HIDDEN_MAP, label="h", interactive=False,
                                        width=14, colorMapMenu=False)
        self.colorbar.setImageItem(self.heat, insert_in=self.heat_plot)
        self.gate_plot: pg.PlotItem = glw.addPlot(row=1, col=1)
        self.gate_plot.setYRange(0.0, 1.0, padding=0.04)
        self.gate_plot.setToolTip("LSTM: the forget gate f_t averaged over the units (thin lines: the lowest and "
                                  "highest unit). Back through time the cell's gradient is multiplied by f at "
                                  "every step: near 1 it survives, near 0 it is cut. GRU: the update gate z, "
                                  "where z ≈ 1 the state and its gradient pass unchanged.")
        self.gate_curve = self.gate_plot.plot([], [], pen=pg.mkPen("#3f9e55", width=2.0))
        self.gate_low = self.gate_plot.plot([], [], pen=pg.mkPen(QColor(63, 158, 85, 90), width=1.0))
        self.gate_high = self.gate_plot.plot([], [], pen=pg.mkPen(QColor(63, 158, 85, 90), width=1.0))
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.timeout.connect(self.refresh)
        self.titles = {"time": "‖∂L/∂h_t‖ through time (faint: step 1)", "sigma": "σ_max(Wh) over training",
                       "heat": "Hidden state h_t", "gate": "Mean gate"}
        self.grid = ""
        self.arrange_grid("square")
        self.time_range = SteadyRange(self.time_plot)
        self.sigma_range = SteadyRange(self.sigma_plot)
        self.model_source: Callable[[], Any] | None = None
        self.X: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.task = ""
        self.trace: Trace | None = None
        self.trace_ms = 0.0
        self._trace_at = -math.inf
        self._trace_key: tuple[Any, ...] | None = None
        self._heat_frame: tuple[int, int, float] | None = None
        self._weights_version = 0
        self._nodes: list[str] = []
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.colors: dict[str, QColor] = {}
        self.first_curves: dict[str, pg.PlotDataItem] = {}
        self.sigma_curves: dict[str, pg.PlotDataItem] = {}
        self.ghost_curves: dict[str, pg.PlotDataItem] = {}
        self.ghost_sigma: dict[str, pg.PlotDataItem] = {}
        self.ghost_first: dict[str, pg.PlotDataItem] = {}
        self.gamma_lines: dict[float, pg.InfiniteLine] = {}
        self._ghost_key: tuple[int, int] | None = None
        self._range_owner: tuple[int, int] | None = None

    def _build_controls(self) -> None:
        row = QHBoxLayout()
        row.setContentsMargins(8, 4, 8, 0)
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("The recurrent layer whose hidden state and gates are shown below")
        self.example_box = QSpinBox()
        self.example_box.setRange(0, 0)
        self.example_box.setToolTip("Which training sequence runs through the network for the heat map")
        self.example_info = QLabel("")
        self.ratio_label = QLabel("")
        self.ratio_label.setToolTip("‖∂L/∂h₁‖ ÷ ‖∂L/∂h_T‖ of the latest sample: how much of the error signal "
                                    "at the last step reaches the first one (1 = all of it). Curves: solid "
                                    "the latest sample, faint the first (initial weights), dashed the ghost run.")
        row.addWidget(QLabel("Layer"))
        row.addWidget(self.layer_box)
        row.addSpacing(12)
        row.addWidget(QLabel("Sequence #"))
        row.addWidget(self.example_box)
        row.addWidget(self.example_info)
        row.addSpacing(16)
        row.addWidget(self.ratio_label, 1)
        self.layout().insertLayout(0, row)
        self.layer_box.currentTextChanged.connect(self._on_choice)
        self.example_box.valueChanged.connect(self._on_choice)

    def _style(self) -> None:
        style_plot(self.time_plot, "", "‖∂L/∂h_t‖ (log)", "time step t")
        style_plot(self.sigma_plot, "", "σ_max(Wh)", "step")
        style_plot(self.heat_plot, "", "unit", "time step t")
        style_plot(self.gate_plot, "", "gate", "time step t")
        self.heat_plot.showGrid(x=False, y=False)
        for key, text in list(self.titles.items()):
            self._title(key, text, force=True)
        _, fg, dim = palette_colors()
        for name in ("left", "right", "top", "bottom"):
            axis = self.colorbar.getAxis(name)
            axis.setPen(pg.mkPen(dim))
            axis.setTextPen(pg.mkPen(fg))
        for value, line in self.gamma_lines.items():
            self._style_gamma_line(line, value)

    def _title(self, key: str, text: str, force: bool = False) -> None:
        """Set a plot's title only when it changes (a title change re-lays out the plot)."""
        if text == self.titles.get(key) and not force:
            return
        self.titles[key] = text
        plot = {"time": self.time_plot, "sigma": self.sigma_plot, "heat": self.heat_plot,
                "gate": self.gate_plot}[key]
        _, fg, _ = palette_colors()
        plot.setTitle(text, color=fg.name(), size="9pt")

    def arrange(self) -> None:
        """PlotPanel's layout hook (called on resizes): this view lays out its own four plots."""
        if hasattr(self, "gate_plot"):
            self.arrange_grid("square" if self.glw.height() >= SQUARE_MIN_HEIGHT else "row")

    def arrange_grid(self, grid: str) -> None:
        """'square': 2 × 2 plots; 'row': the four side by side (a low dock)."""
        if grid == self.grid:
            return
        self.grid = grid
        ci = self.glw.ci
        plots = (self.time_plot, self.sigma_plot, self.heat_plot, self.gate_plot)
        for plot in plots:
            if plot in ci.items:
                ci.removeItem(plot)
        square = grid == "square"
        places = ((0, 0), (0, 1), (1, 0), (1, 1)) if square else ((0, 0), (0, 1), (0, 2), (0, 3))
        for plot, (row, col) in zip(plots, places, strict=True):
            ci.addItem(plot, row=row, col=col)
        for col, factor in enumerate((3, 2, 0, 0) if square else (3, 2, 3, 2)):
            ci.layout.setColumnStretchFactor(col, factor)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self.arrange()

    # -- inputs ------------------------------------------------------------------------------
    def set_data(self, X: np.ndarray | None, y: np.ndarray | None = None, task: str = "") -> None:
        """The training sequences (n, T, F) as the model sees them (after preprocessing)."""
        self.X = None if X is None or np.ndim(X) != 3 else np.asarray(X)
        self.y = None if y is None else np.asarray(y)
        self.task = task
        n = 0 if self.X is None else len(self.X)
        self.example_box.blockSignals(True)
        self.example_box.setRange(0, max(0, n - 1))
        self.example_box.blockSignals(False)
        self.weights_changed()

    def weights_changed(self) -> None:
        """The model's weights moved outside a run (reset, new model): trace again."""
        self._weights_version += 1
        self._trace_at = -math.inf
        self._drawn = None
        self.refresh()

    def _on_choice(self, *_: Any) -> None:
        self._trace_at = -math.inf
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> bool:
        """As every plot panel, but a run that streams is redrawn at most MAX_HZ (a skipped frame is
        drawn a little later); a new run or ghost is drawn at once."""
        streaming = self._drawn is not None and self.draw_times
        wait = 1.0 / MAX_HZ - (time.perf_counter() - self.draw_times[-1]) if streaming else 0.0
        if wait > 0 and not force:
            if not self._later.isActive():
                self._later.start(int(wait * 1000) + 1)
            return False
        return super().refresh(force)

    def content_version(self, record: RunRecord | None) -> int:
        """New time_grads samples (and the end of the run) change this panel, not every step."""
        if record is None:
            return -1
        return 2 * record.time_grads.count + (record.finish is not None)

    def has_content(self) -> bool:
        return any(r is not None and bool(r.time_grads) for r in (self.record, self.ghost))

    # -- drawing -----------------------------------------------------------------------------
    def _draw(self) -> None:
        self._update_hint()
        rec = self.record
        owner = (id(rec), id(self.ghost))
        if owner != self._range_owner:
            self._range_owner = owner
            self.time_range.reset()
            self.sigma_range.reset()
        series = list(rec.time_grads.series.values()) if rec is not None else []
        self._ensure_curves(series)
        self._draw_ghost()
        for s in series:
            t, latest = self._time_points(s.latest(), s.length)
            self.curves[s.node].setData(t, positive(latest))
            first = self.first_curves[s.node]
            if first.property("samples") != min(len(s), 2):  # drawn once, when a second sample exists
                first.setProperty("samples", min(len(s), 2))
                first.setData(*self._time_first(s))
            idx = stride_index(len(s), MAX_POINTS)
            self.sigma_curves[s.node].setData(s.steps[idx].astype(np.float64), s.sigma[idx])
        self._draw_ratio(series)
        self._draw_gamma_lines()
        self._fit_ranges(series)
        self._draw_trace(rec)

    @staticmethod
    def _time_points(norms: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
        """t = 1 … T and the norms, strided to at most MAX_POINTS (long sequences)."""
        idx = stride_index(length, MAX_POINTS)
        return (idx + 1).astype(np.float64), norms[idx]

    def _time_first(self, s: TimeGradsSeries) -> tuple[np.ndarray, np.ndarray]:
        if s.first is None or len(s) < 2:
            return np.zeros(0), np.zeros(0)
        t, first = self._time_points(s.first, s.length)
        return t, positive(first)

    def _ensure_curves(self, series: list[TimeGradsSeries]) -> None:
        """One solid + one faint curve per recurrent layer, made once per run (then only setData)."""
        nodes = [s.node for s in series]
        if nodes == self._nodes:
            return
        for curve in [*self.curves.values(), *self.first_curves.values()]:
            self.time_plot.removeItem(curve)
        for curve in self.sigma_curves.values():
            self.sigma_plot.removeItem(curve)
        self.curves, self.first_curves, self.sigma_curves = {}, {}, {}
        self._nodes = nodes
        for s, color in zip(series, depth_colors(len(series)), strict=True):
            self.colors[s.node] = color
            self.curves[s.node] = self.time_plot.plot([], [], pen=pg.mkPen(color, width=2.0), antialias=False)
            faint = QColor(color)
            faint.setAlpha(110)
            self.first_curves[s.node] = self.time_plot.plot([], [], pen=pg.mkPen(faint, width=1.0), antialias=False)
            self.sigma_curves[s.node] = self.sigma_plot.plot([], [], pen=pg.mkPen(color, width=1.8), antialias=False)
        self.layer_box.blockSignals(True)
        current = self.layer_box.currentText()
        self.layer_box.clear()
        self.layer_box.addItems(nodes)
        if current in nodes:
            self.layer_box.setCurrentText(current)
        self.layer_box.blockSignals(False)

    def _draw_ghost(self) -> None:
        ghost = self.ghost
        key = (id(ghost), ghost.time_grads.count) if ghost is not None else None
        if key == self._ghost_key:
            return
        self._ghost_key = key
        for curve in [*self.ghost_curves.values(), *self.ghost_first.values()]:
            self.time_plot.removeItem(curve)
        for curve in self.ghost_sigma.values():
            self.sigma_plot.removeItem(curve)
        self.ghost_curves, self.ghost_first, self.ghost_sigma = {}, {}, {}
        if ghost is None:
            return
        _, fg, _ = palette_colors()  # one colour for the ghost: the lesson's RNN and LSTM share node names
        for s in ghost.time_grads.series.values():
            t, latest = self._time_points(s.latest(), s.length)
            curve = self.time_plot.plot(t, positive(latest), pen=ghost_pen(fg, 1.6), antialias=False)
            curve.setZValue(-10)
            self.ghost_curves[s.node] = curve
            faint = QColor(fg)
            faint.setAlpha(90)
            first = self.time_plot.plot(*self._time_first(s), pen=ghost_pen(faint, 1.0), antialias=False)
            first.setZValue(-11)
            self.ghost_first[s.node] = first  # the ghost at its initial weights
            idx = stride_index(len(s), MAX_POINTS)
            sig = self.sigma_plot.plot(s.steps[idx].astype(np.float64), s.sigma[idx], pen=ghost_pen(fg, 1.4),
                                       antialias=False)
            sig.setZValue(-10)
            self.ghost_sigma[s.node] = sig

    def _draw_ratio(self, series: list[TimeGradsSeries]) -> None:
        """The legend of the curves, with each one's first ÷ last ratio (a line above the plots)."""
        _, fg, _ = palette_colors()
        parts = [f"<span style='color:{self.colors[s.node].name()}'>━━</span> <b>{s.node}</b> ({s.layer}) "
                 f"{ratio_value_text(s.first_last_ratio())}" for s in series if s.node in self.colors]
        if self.ghost is not None:
            parts += [f"<span style='color:{fg.name()}'>╍╍</span> ghost {self.ghost.label}: {s.node} "
                      f"({s.layer}) {ratio_value_text(s.first_last_ratio())}"
                      for s in self.ghost.time_grads.series.values()]
        length = next((s.length for s in series), 0) or next(
            (s.length for s in (self.ghost.time_grads.series.values() if self.ghost else ())), 0)
        head = f"‖∂L/∂h₁‖ ÷ ‖∂L/∂h{subscript(length)}‖:&nbsp; " if parts else ""
        self.ratio_label.setText(head + " &nbsp; ".join(parts))

    def _style_gamma_line(self, line: pg.InfiniteLine, value: float) -> None:
        bg, fg, _ = palette_colors()
        line.setPen(pg.mkPen(QColor("#d9453d"), width=1.4, style=Qt.PenStyle.DashLine))
        if line.label is not None:
            line.label.setColor(fg)
            fill = QColor(bg)
            fill.setAlpha(200)
            line.label.fill = pg.mkBrush(fill)  # readable over the curves it crosses

    def _draw_gamma_lines(self) -> None:
        """A horizontal line at 1/γ for each SimpleRNN activation of this run or its ghost."""
        wanted = inverse_gamma_lines([self.record, self.ghost])
        for value in list(self.gamma_lines):
            if value not in wanted:
                self.sigma_plot.removeItem(self.gamma_lines.pop(value))
        for value, text in wanted.items():
            line = self.gamma_lines.get(value)
            if line is None:
                line = pg.InfiniteLine(pos=value, angle=0, movable=False, label=f"{text}: vanishing below",
                                       labelOpts={"position": 0.98, "anchors": [(1, 1), (1, 1)]})
                line.setToolTip(GAMMA_TIP)
                line.setZValue(5)
                self._style_gamma_line(line, value)
                self.sigma_plot.addItem(line)
                self.gamma_lines[value] = line
            elif line.label is not None:
                line.label.setFormat(f"{text}: vanishing below")
        gated = [s.layer for r in (self.record, self.ghost) if r is not None
                 for s in r.time_grads.series.values() if s.gamma is None]
        self._title("sigma", "σ_max(Wh) over training" if wanted or not gated else
                    f"σ_max(Wh) ({', '.join(sorted(set(gated)))}: no 1/γ bound)")
        self.sigma_plot.setToolTip(GAMMA_TIP)

    def _fit_ranges(self, series: list[TimeGradsSeries]) -> None:
        everything = [s for r in (self.record, self.ghost) if r is not None for s in r.time_grads.series.values()]
        if not everything:
            return
        length = max(s.length for s in everything)
        values = np.concatenate([s.latest() for s in everything]
                                + [s.first for s in everything if s.first is not None])
        self.time_range.update(1.0, float(length), log_range(values, span=1.0), exact=True)
        done = self.record is None or self.record.finish is not None
        last = max(float(s.latest_step) for s in everything)
        top = max([float(np.max(s.sigma)) for s in everything if len(s)] + list(self.gamma_lines))
        shown = self.sigma_range.y[1] if self.sigma_range.y is not None else None
        top = steady_top(shown, 1.15 * top if math.isfinite(top) else 1.0, done)
        self.sigma_range.update(0.0, last, (0.0, max(top, 0.5)), exact=done)

    # -- the chosen sequence -------------------------------------------------------------------
    def _draw_trace(self, rec: RunRecord | None) -> None:
        """Hidden state and gate mean of the chosen sequence; traced at most every TRACE_INTERVAL."""
        node = self.layer_box.currentText()
        model = self.model_source() if self.model_source is not None and self._trace_due(rec, node) else None
        if model is not None and self._trace(model, node) and self.trace is not None:
            self._show_trace(self.trace)  # only a new trace touches the heat map (a repaint costs ms)
        elif self.trace is None:
            self._show_trace_note(rec, node)

    def _trace_due(self, rec: RunRecord | None, node: str) -> bool:
        if not node or self.X is None or rec is None:
            return False
        key = (node, self.example_box.value(), self._weights_version, rec.time_grads.count,
               rec.finish is not None)
        if key == self._trace_key:
            return False
        interval = max(TRACE_INTERVAL, self.trace_ms / 1000 / TRACE_BUDGET)
        if time.perf_counter() - self._trace_at < interval and rec.finish is None:
            return False
        self._trace_key = key
        return True

    def _trace(self, model: Any, node: str) -> bool:
        assert self.X is not None
        i = min(self.example_box.value(), len(self.X) - 1)
        t0 = time.perf_counter()
        try:
            self.trace = hidden_trace(model, self.X[i], node)[node]
        except Exception as err:  # a preview must never take the window down
            self.trace = None
            self._title("heat", f"hidden state unavailable: {err}")
            return False
        self._trace_at = time.perf_counter()
        self.trace_ms = 1000 * (self._trace_at - t0)
        self.example_info.setText(self._example_text(i))
        return True

    def _example_text(self, i: int) -> str:
        n = len(self.X) if self.X is not None else 0
        text = f"of {n} training sequences"
        if self.y is not None and len(self.y) > i and np.ndim(self.y) <= 2:
            target = np.asarray(self.y[i]).reshape(-1)
            if target.size == 1:
                text += f" · class {int(target[0])}" if self.task == "classification" else f" · target {target[0]:.4g}"
            elif self.task == "classification" and np.all((target == 0) | (target == 1)) and target.sum() == 1:
                text += f" · class {int(np.argmax(target))}"
        return text

    def _show_trace_note(self, rec: RunRecord | None, node: str) -> None:
        if rec is not None and node and self.X is None:
            self._title("heat", "The hidden state appears once the run's data is loaded")

    def _show_trace(self, tr: Trace) -> None:
        image = bounded_image(tr.hidden)
        units, steps = tr.hidden.shape
        peak = float(np.max(np.abs(image))) if image.size else 1.0
        level = 1.0 if peak <= 1.0 else math.ceil(peak)
        self.heat.setImage(image, autoLevels=False, levels=(-level, level))
        frame = (units, steps, level)
        if frame != self._heat_frame:  # ranges and levels change rarely: setting them repaints axes
            self._heat_frame = frame
            self.heat.setRect(QRectF(0.5, -0.5, float(steps), float(units)))
            self.colorbar.setLevels((-level, level))
            self.heat_plot.setRange(xRange=(0.5, steps + 0.5), yRange=(-0.5, units - 0.5), padding=0)
            self.gate_plot.setXRange(0.5, steps + 0.5, padding=0)
        layer = next((s.layer for r in (self.record,) if r is not None
                      for s in r.time_grads.series.values() if s.node == tr.node), "")
        gate, title = GATE_LABEL.get(layer, ("", ""))
        values = tr.gates.get(gate) if gate else None
        t = np.arange(1, steps + 1, dtype=np.float64)
        if values is None:
            for curve in (self.gate_curve, self.gate_low, self.gate_high):
                curve.setData([], [])
            self._title("gate", f"{layer or 'This layer'}: no gates")
            return
        self.gate_curve.setData(t, values.mean(axis=0))
        self.gate_low.setData(t, values.min(axis=0))
        self.gate_high.setData(t, values.max(axis=0))
        self._title("gate", title)
