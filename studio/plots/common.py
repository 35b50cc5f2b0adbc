"""What every plot panel shares: theme-aware styling, depth colours, redraw policy, export.

A :class:`PlotPanel` owns one ``pyqtgraph.GraphicsLayoutWidget`` whose items are created
once; :meth:`PlotPanel.refresh` is called on every drain of the training buffer and redraws
(``setData``) only when the panel is on screen and its run recorded something new since the
last draw. Hidden docks and tabs cost nothing; showing one redraws it at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QFrame, QGraphicsItem, QLabel, QScrollArea, QVBoxLayout, QWidget

from studio.training.history import RunRecord

pg.setConfigOptions(antialias=True, useOpenGL=False)

#: Input side → output side. Mid-lightness hues that read on light and dark backgrounds.
DEPTH_STOPS = ("#3f6fd8", "#1fa2b4", "#49a84b", "#dca126", "#d9453d")
#: Log gradient norms (heat map, canvas tint): dark = vanishing, bright = strong.
GRADIENT_MAP = pg.colormap.get("viridis")
MAX_POINTS = 600  # decimated points per curve (the full history stays in the RunRecord)
FLOOR = 1e-30  # log axes: exact zeros are drawn at this value
#: A plot cell (title, legend row, axes and the plot) is never squeezed below this: a panel
#: too small for its cells lays them side by side or scrolls instead (≥ 120 px of plot).
MIN_CELL_W, MIN_CELL_H = 330, 205
CELL_ASPECT = 1.8  # preferred width ÷ height of a cell when several grids fit
LABEL_PX_V = 26  # vertical room per tick label (a label's height and a gap)


def grid_for(n: int, width: float, height: float) -> tuple[int, int]:
    """(columns, rows) for ``n`` plot cells in a ``width`` × ``height`` panel.

    Grids whose cells keep at least :data:`MIN_CELL_W` × :data:`MIN_CELL_H` win, the one
    closest to :data:`CELL_ASPECT`; if none fits, the grid with the fewest rows whose cells
    are wide enough (the panel then scrolls): a wide, short dock gets its plots side by
    side, a tall, narrow one stacks them.
    """
    if n <= 1:
        return 1, max(n, 1)
    options = []
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        if cols > 1 and math.ceil(n / (cols - 1)) == rows:
            continue  # an empty column gains nothing
        cell_w, cell_h = width / cols, height / rows
        options.append((cols, rows, cell_w, cell_h))
    wide = [o for o in options if o[2] >= MIN_CELL_W] or options[:1]
    fitting = [o for o in wide if o[3] >= MIN_CELL_H]
    if fitting:
        best = min(fitting, key=lambda o: abs(math.log(o[2] / o[3] / CELL_ASPECT)))
    else:
        best = min(wide, key=lambda o: o[1])
    return best[0], best[1]


def nice_step(span: float, max_ticks: int) -> float:
    """The smallest 1-2-5 step that labels ``span`` with at most ``max_ticks`` intervals."""
    raw = max(span, 1e-12) / max(1, max_ticks)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))


class ReadableAxis(pg.AxisItem):
    """An axis with only as many labelled ticks as its length holds without overlap.

    pyqtgraph's default spacing assumes room it may not have: a 30 px high axis printed
    10⁻⁵ over 10⁻¹⁰. One tick level, a 1-2-5 step sized from the axis length; ``decades``
    (log axes, values that are powers of ten) keeps steps whole.
    """

    decades = False

    def __init__(self, orientation: str, **kw: Any) -> None:
        super().__init__(orientation, **kw)
        self.enableAutoSIPrefix(False)

    def label_room(self, min_val: float, max_val: float) -> float:
        """Pixels one label needs along the axis."""
        if self.orientation in ("left", "right"):
            return LABEL_PX_V
        chars = max(len(f"{v:.4g}") for v in (min_val, max_val))
        return 7.5 * (4 if self.decades or self.logMode else chars) + 26

    def tickStrings(self, values: Sequence[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        """Each value as it is (0.25 stays 0.25: pyqtgraph rounds it to the step's decade, "0.2")."""
        if self.logMode:
            return self.logTickStrings(values, scale, spacing)
        return [f"{float(f'{v * scale:.10g}'):g}" for v in values]

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:  # noqa: N802,N803
        span = max(maxVal - minVal, 1e-12)
        room = max(1, int(size / self.label_room(minVal, maxVal)))
        step = nice_step(span, room)
        if self.decades or self.logMode:
            step = float(max(1, math.ceil(span / room)))
        return [(step, 0.0)]


def depth_colors(n: int) -> list[QColor]:
    """``n`` colours along the depth scale (first layer blue … last layer red)."""
    cmap = pg.ColorMap(np.linspace(0.0, 1.0, len(DEPTH_STOPS)), [QColor(c) for c in DEPTH_STOPS])
    if n <= 1:
        return [QColor(DEPTH_STOPS[0])] * n
    return [cmap.map(i / (n - 1), mode="qcolor") for i in range(n)]


def grad_color(t: float, alpha: int = 255) -> QColor:
    """Colour of a normalised log gradient norm ``t`` in [0, 1] on :data:`GRADIENT_MAP`."""
    c = GRADIENT_MAP.map(float(min(1.0, max(0.0, t))), mode="qcolor")
    c.setAlpha(alpha)
    return c


def log_range(values: np.ndarray, span: float = 1.0) -> tuple[float, float]:
    """A (lo, hi) range of log10 of the finite positive ``values``, at least ``span`` wide."""
    v = values[np.isfinite(values) & (values > 0)]
    if not v.size:
        return -6.0, 0.0
    lo, hi = float(np.log10(v.min())), float(np.log10(v.max()))
    if hi - lo < span:
        mid = (hi + lo) / 2
        lo, hi = mid - span / 2, mid + span / 2
    return math.floor(lo), math.ceil(hi)


def superscript(n: int) -> str:
    return str(n).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


class PowerAxis(ReadableAxis):
    """An axis over log10 values that labels ticks as powers of ten (10⁻⁶ … 10⁰)."""

    decades = True

    def tickStrings(self, values: Sequence[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        return [f"10{superscript(int(round(v)))}" if abs(v - round(v)) < 1e-6 else "" for v in values]


class LogAxis(ReadableAxis):
    """A log-mode axis labelled 10⁻⁶ … 10⁰ throughout (pyqtgraph mixes 0.001 and 10⁻⁶)."""

    def logTickValues(self, minVal: float, maxVal: float, size: float, stdTicks: Any) -> Any:  # noqa: N802,N803
        """Whole decades only while two fit; pyqtgraph's unlabelled 2…9 minor ticks otherwise."""
        whole = [(s, t) for s, t in stdTicks if s >= 1.0]
        if sum(1 for _, t in whole for v in t if minVal <= v <= maxVal) >= 2:
            return whole
        return super().logTickValues(minVal, maxVal, size, stdTicks)

    def logTickStrings(self, values: Sequence[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        whole = [abs(v - round(v)) < 1e-6 for v in values]
        if sum(whole) >= 2:
            pairs = zip(values, whole, strict=True)
            return [f"10{superscript(int(round(v)))}" if w else "" for v, w in pairs]
        return [f"{10.0 ** v:.2g}" for v in values]


def readable_axes(**special: pg.AxisItem) -> dict[str, pg.AxisItem]:
    """``axisItems`` for a PlotItem: :class:`ReadableAxis` on the left and bottom unless given."""
    axes = {"left": ReadableAxis("left"), "bottom": ReadableAxis("bottom")}
    axes.update(special)
    return axes


class NamesAxis(pg.AxisItem):
    """An axis whose integer ticks are names (layers by depth), thinned to what fits."""

    def __init__(self, orientation: str, **kw: Any) -> None:
        super().__init__(orientation, **kw)
        self.names: list[str] = []

    def set_names(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.picture = None
        self.update()

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:  # noqa: N802,N803
        n = len(self.names)
        if not n:
            return []
        lo, hi = max(0, math.ceil(minVal)), min(n - 1, math.floor(maxVal))
        if hi < lo:
            return []
        if self.orientation in ("left", "right"):
            per = 15.0
        else:
            per = 7.0 * max(len(name) for name in self.names) + 10.0
        every = max(1, math.ceil((hi - lo + 1) / max(1.0, size / per)))
        return [(float(every), [float(i) for i in range(lo, hi + 1) if (i - lo) % every == 0])]

    def tickStrings(self, values: Sequence[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        out = []
        for v in values:
            i = int(round(v))
            out.append(self.names[i] if 0 <= i < len(self.names) else "")
        return out


def palette_colors() -> tuple[QColor, QColor, QColor]:
    """(background, foreground, dim foreground) of the current application palette."""
    pal = QGuiApplication.palette()
    bg = pal.color(QPalette.ColorRole.Base)
    fg = pal.color(QPalette.ColorRole.Text)
    dim = QColor(fg)
    dim.setAlpha(140)
    return bg, fg, dim


def is_dark() -> bool:
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def style_plot(plot: pg.PlotItem, title: str, left: str = "", bottom: str = "") -> None:
    """Axis pens, labels and title in the palette's colours; a faint grid."""
    _, fg, dim = palette_colors()
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(dim))
        axis.setTextPen(pg.mkPen(fg))
        # pyqtgraph 0.14 rescales unit-less axes spanning < 1 to "×0.001" ticks: plot the true values.
        axis.setSIPrefixEnableRanges(())
        axis.updateAutoSIPrefix()
    plot.setTitle(title or None, color=fg.name(), size="10pt")
    if left:
        plot.setLabel("left", left, color=fg.name())
    if bottom:
        plot.setLabel("bottom", bottom, color=fg.name())
    plot.showGrid(x=True, y=True, alpha=0.18)


def theme_plot_widget(widget: pg.PlotWidget) -> None:
    """A stand-alone PlotWidget (not a PlotPanel) in the palette's colours, now and after
    every theme change (pyqtgraph's own default is a black background)."""

    def restyle() -> None:
        bg, _, _ = palette_colors()
        widget.setBackground(bg)
        style_plot(widget.getPlotItem(), "")

    class Follow(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
            if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
                restyle()
            return False

    widget._theme_follower = Follow(widget)  # kept alive with the widget
    widget.installEventFilter(widget._theme_follower)
    restyle()


def style_legend(legend: pg.LegendItem | None) -> None:
    if legend is None:
        return
    bg, fg, dim = palette_colors()
    fill = QColor(bg)
    fill.setAlpha(200)
    row = getattr(legend, "is_row", False)  # a legend row needs no frame: it covers nothing
    legend.setBrush(pg.mkBrush(None if row else fill))
    legend.setPen(pg.mkPen(None if row else dim))
    legend.setLabelTextColor(fg)
    for _, label in legend.items:
        label.setText(label.text)


def ghost_pen(color: QColor, width: float = 1.4) -> Any:
    c = QColor(color)
    c.setAlpha(150)
    pen = pg.mkPen(c, width=width)
    pen.setDashPattern([4.0, 3.0])
    return pen


def positive(values: np.ndarray) -> np.ndarray:
    """For log axes: NaN stays NaN (a gap), zero and negatives become :data:`FLOOR`."""
    out = np.array(values, dtype=np.float64, copy=True)
    with np.errstate(invalid="ignore"):
        out[out <= 0] = FLOOR
    return out


def nice_above(value: float, steps: tuple[float, ...] = (1.0, 2.0, 5.0)) -> float:
    """The smallest ``step × 10ᵏ`` ≥ ``value`` (> 0), steps taken from ``steps`` (in [1, 10))."""
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (*steps, 10.0) if m * magnitude >= value)


def grown_end(current: float, needed: float) -> float:
    """The right end of a live x range: kept until the data passes it, then the next 1-2-5 value
    ≥ 1.25 × the data.

    Moving the range every frame makes pyqtgraph rebuild both axes and every curve's path
    each frame; growing in steps keeps most frames to a plain repaint.
    """
    if needed <= current:
        return current
    return nice_above(max(needed * 1.25, 10.0))


class SteadyRange:
    """Sets a plot's view range only when it really changes (x grows in steps, log y in decades)."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        plot.disableAutoRange()
        self._x: tuple[float, float] | None = None
        self._y: tuple[float, float] | None = None

    def reset(self) -> None:
        self._x = self._y = None

    @property
    def y(self) -> tuple[float, float] | None:
        """The y range last set (None before the first)."""
        return self._y

    def update(self, x0: float, x1: float, y: tuple[float, float] | None = None, exact: bool = False) -> None:
        """``exact``: fit ``x1`` itself (a finished run no longer grows)."""
        grown_from = self._x[1] if self._x and self._x[0] == x0 else x0
        end = max(x1, x0 + 1.0) if exact else grown_end(grown_from, x1)
        if (x0, end) != self._x:
            self._x = (x0, end)
            self.plot.setXRange(x0, end, padding=0.02)
        if y is not None and y != self._y:
            self._y = y
            self.plot.setYRange(*y, padding=0.02)


def cache_axes(plot: pg.PlotItem) -> None:
    """Paint axes from a cached pixmap: repainted curves then do not replay every tick label."""
    for name in ("left", "bottom", "right", "top"):
        plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def legend_row(plot: pg.PlotItem, columns: int = 4, lead: pg.LabelItem | None = None) -> pg.LegendItem:
    """A legend in its own row between the plot's title and its view box (where the hidden top
    axis sits): never clipped by a short plot, never covering a curve. ``lead`` (a label)
    comes first in the row."""
    legend = pg.LegendItem(colCount=columns, labelTextSize="8pt", verSpacing=-6, horSpacing=16)
    legend.layout.setContentsMargins(2, 0, 2, 0)
    legend.is_row = True
    top = plot.getAxis("top")
    plot.layout.removeItem(top)
    top.hide()
    row = pg.GraphicsLayout()
    row.setContentsMargins(0, 0, 0, 0)
    if lead is not None:
        row.addItem(lead, 0, 0)
    row.addItem(legend, 0, 1)
    row.layout.setColumnStretchFactor(1 if lead is None else 0, 1)
    plot.layout.addItem(row, 1, 1)
    return legend


class PlotPanel(QWidget):
    """Base of the plot panels: one layout widget of plot cells, redraw on change while visible.

    A subclass builds its plots in cells (:meth:`add_cell`); the panel lays the cells out in a
    grid that suits its shape (:func:`grid_for`) and scrolls rather than squeezing a cell
    below :data:`MIN_CELL_H`.
    """

    title = "Plot"
    empty_hint = "Press Train (F5) to start a run; its curves appear here as it trains."

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.ci.setContentsMargins(4, 4, 4, 4)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.glw)
        self.cells: list[pg.GraphicsLayout] = []
        self.cell_grid = (0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll)
        # Empty axes look broken; until a run exists the panel says what will appear.
        self.hint = QLabel(self.empty_hint, self)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setAutoFillBackground(True)
        self.hint.setObjectName("plotEmptyHint")
        self.record: RunRecord | None = None
        self.ghost: RunRecord | None = None
        self._drawn: tuple[int, int, int, int] | None = None
        self.draw_count = 0
        self.draw_times: list[float] = []
        self._build()
        for item in self.plot_items():
            cache_axes(item)
        self.restyle()
        self._update_hint()
        self.arrange()

    # -- cells ------------------------------------------------------------------------------
    def add_cell(self) -> pg.GraphicsLayout:
        """A new cell (a sub-layout: legend row, plot, colour bar...) for :meth:`arrange`."""
        cell = pg.GraphicsLayout()
        cell.setContentsMargins(2, 2, 2, 2)
        self.glw.ci.addItem(cell, row=0, col=len(self.cells))
        self.cells.append(cell)
        return cell

    def plot_items(self) -> list[pg.PlotItem]:
        """Every plot of the panel: those in its cells and those a panel placed in the layout
        itself (the Through-time view's grid, the class report's matrix)."""
        layouts = [self.glw.ci, *self.cells]
        return [item for layout in layouts for item in layout.items if isinstance(item, pg.PlotItem)]

    def arrange(self) -> None:
        """Lay the cells out for the panel's current size (see :func:`grid_for`)."""
        viewport = self.scroll.viewport()
        width, height = max(1, viewport.width()), max(1, viewport.height())
        cols, rows = grid_for(len(self.cells), width, height)
        self.glw.setMinimumHeight(rows * MIN_CELL_H if rows * MIN_CELL_H > height else 0)
        if (cols, rows) == self.cell_grid:
            return
        self.cell_grid = (cols, rows)
        ci = self.glw.ci
        for cell in self.cells:
            ci.removeItem(cell)
        for i, cell in enumerate(self.cells):
            ci.addItem(cell, row=i // cols, col=i % cols)
            ci.layout.setAlignment(cell, Qt.AlignmentFlag.AlignCenter)  # a cell kept narrower stays centred
        grid_layout = ci.layout
        for r in range(grid_layout.rowCount()):
            grid_layout.setRowStretchFactor(r, 1 if r < rows else 0)
        for c in range(grid_layout.columnCount()):
            grid_layout.setColumnStretchFactor(c, 1 if c < cols else 0)

    # -- subclasses -------------------------------------------------------------------------
    def _build(self) -> None:
        raise NotImplementedError

    def _draw(self) -> None:
        raise NotImplementedError

    def _style(self) -> None:
        """Re-apply palette colours to titles, axes and legends."""

    # -- policy ----------------------------------------------------------------------------
    def set_record(self, record: RunRecord | None) -> None:
        self.record = record
        self._drawn = None
        self._update_hint()
        self.refresh()

    def content_version(self, record: RunRecord | None) -> int:
        """Changes whenever what this panel shows of ``record`` changes (default: any new event)."""
        return record.version if record is not None else -1

    def has_content(self) -> bool:
        """Whether there is anything to draw (otherwise the empty hint shows)."""
        return self.record is not None or self.ghost is not None

    def _update_hint(self) -> None:
        self.hint.setVisible(not self.has_content())
        self.hint.raise_()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self.hint.setGeometry(self.rect())
        QTimer.singleShot(0, self.arrange)  # once the scroll area has its new viewport size

    def set_ghost(self, record: RunRecord | None) -> None:
        self.ghost = record if record is not self.record else None
        self._drawn = None
        self._update_hint()
        self.refresh()

    def on_screen(self) -> bool:
        return self.isVisible() and not self.glw.viewport().visibleRegion().isEmpty()

    def refresh(self, force: bool = False) -> bool:
        """Redraw if visible and something changed (or ``force``); True if it drew."""
        if not force and not self.on_screen():
            return False
        key = (id(self.record), self.content_version(self.record),
               id(self.ghost), self.content_version(self.ghost))
        if not force and key == self._drawn:
            return False
        self._drawn = key
        self._draw()
        self.draw_count += 1
        self.draw_times.append(time.perf_counter())
        if len(self.draw_times) > 512:
            del self.draw_times[:256]
        return True

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        QTimer.singleShot(0, self.refresh)  # once the layout has given the viewport its size

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt name)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.restyle()
        super().changeEvent(event)

    def restyle(self) -> None:
        bg, _, dim = palette_colors()
        self.glw.setBackground(bg)
        self.hint.setStyleSheet(f"background: {bg.name()}; color: {dim.name(QColor.NameFormat.HexArgb)};"
                                " font-size: 13px; padding: 24px;")
        self._style()
        self._drawn = None
        if self.record is not None or self.ghost is not None:
            self.refresh(force=True)

    def export_png(self, path: str | Path) -> None:
        """Save what the panel shows (at its current size) as a PNG."""
        if self.record is not None or self.ghost is not None:
            self.refresh(force=True)
        image = self.glw.grab()
        if not image.save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
