"""What the network computes: a decision boundary (2-D classification) or fitted curve (1-D regression).

Predictions come from :meth:`TrainingController.preview_model` — a second model holding a
copy of the trainer's weights — never from the training model itself, whose layer caches
the worker thread is using. Redrawn at most :data:`MAX_HZ` times a second; the grid
resolution adapts so one redraw stays a few milliseconds even for deep networks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QTimer
from PySide6.QtGui import QColor

from studio.plots.common import PlotPanel, palette_colors, readable_axes, style_plot
from studio.plots.mdn_samples import MdnSampleLayer

CLASS_COLORS = ("#3d7fd9", "#e07a3f", "#3f9e55", "#8e6bbf", "#d0497a", "#c29b1c", "#2a9d8f", "#9a8450")
MAX_HZ = 4.0
BUDGET_MS = 12.0  # one redraw's prediction time the grid resolution adapts to
MIN_GRID, MAX_GRID = 32, 160
MAX_SCATTER = 2000
MDN_TITLE = "Samples of p(y | x) over the data (mixture density output)"
BOX_ROOM = 1.35  # how much wider (or taller) than the data's own shape the locked view may be


def class_color(i: int) -> QColor:
    return QColor(CLASS_COLORS[i % len(CLASS_COLORS)])


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def probabilities(model: Any, X: np.ndarray) -> np.ndarray:
    """Class probabilities (n, k) of ``model`` on ``X`` (k = 1: probability of class 1).

    The graph's output is a probability when it ends in a softmax/sigmoid (or the loss is
    MSE on 0/1 targets); otherwise it is logits and the matching squashing is applied here.
    """
    out = np.asarray(model.predict(X), np.float64).reshape(len(X), -1)
    if getattr(model, "outputs_probabilities", True):
        return np.clip(out, 0.0, 1.0) if out.shape[1] == 1 else out
    if out.shape[1] == 1:
        return 1.0 / (1.0 + np.exp(-out))
    return _softmax(out)


def grid_shape(n: int, width: float, height: float) -> tuple[int, int]:
    """(columns, rows) of square grid cells, ``n`` along the longer side of the region."""
    if width >= height:
        return n, max(8, round(n * height / max(width, 1e-12)))
    return max(8, round(n * width / max(height, 1e-12))), n


def mode_for(X: np.ndarray | None, task: str) -> str:
    """'class2d', 'reg1d', or '' when no picture fits this data."""
    if X is None or X.ndim != 2:
        return ""
    if X.shape[1] == 2 and task == "classification":
        return "class2d"
    if X.shape[1] == 1 and task == "regression":
        return "reg1d"
    return ""


class BoundaryPanel(PlotPanel):
    """Decision regions + data for 2-D classification; data + fitted curve for 1-D regression."""

    title = "Decision boundary"
    empty_hint = ("The training data and, once trained, the decision regions (2-D classification) "
                  "or the fitted curve (1-D regression) appear here.")

    def has_content(self) -> bool:
        return self.X is not None or super().has_content()

    def _build(self) -> None:
        cell = self.add_cell()
        self.plot: pg.PlotItem = cell.addPlot(row=0, col=0, axisItems=readable_axes())
        self.plot.setAspectLocked(False)
        # with a locked aspect the view is wider (or taller) than the data: the regions follow it
        self.plot.getViewBox().sigRangeChanged.connect(lambda *_: self._on_range_changed())
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(-20)
        self.plot.addItem(self.image)
        self.isocurve = pg.IsocurveItem(level=0.5)
        self.isocurve.setParentItem(self.image)
        self.scatter = pg.ScatterPlotItem(size=6)
        self.plot.addItem(self.scatter)
        self.fit = self.plot.plot([], [], pen=pg.mkPen("#d9453d", width=2.4))
        self.samples = MdnSampleLayer(self.plot)  # a mixture density head: samples instead of a curve
        self.note = pg.TextItem("", anchor=(0, 0))
        self.note.setParentItem(self.plot.getViewBox())
        self.note.setPos(8, 8)
        self.model_source: Callable[[], Any] | None = None
        self.X: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.task = "classification"
        self.n_classes = 2
        self.mode = ""
        self.grid = 64
        self.predict_ms = 0.0
        self._last = 0.0
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.timeout.connect(lambda: self.refresh(force=True))
        self._weights_version = 0
        self.frames = 0
        self._adapt = True

    def _style(self) -> None:
        two = self.n_classes <= 2
        titles = {"class2d": ("Decision boundary (colour = predicted class, line = 50 %)" if two
                              else "Decision regions (colour = predicted class)", "x₂", "x₁"),
                  "reg1d": ("Fitted curve over the data", "y", "x")}
        title, left, bottom = titles.get(self.mode, ("Decision boundary / fitted curve", "", ""))
        style_plot(self.plot, title, left, bottom)
        self.plot.showGrid(x=False, y=False)
        _, fg, _ = palette_colors()
        self.note.setColor(fg)
        self.isocurve.setPen(pg.mkPen(fg, width=1.6))

    def restyle(self) -> None:
        """The scatter's edges and the regions' background follow the theme too."""
        super().restyle()
        if getattr(self, "X", None) is not None:
            self._draw_data()
            self.refresh(force=True)

    # -- inputs -----------------------------------------------------------------------------
    def set_data(self, X: np.ndarray | None, y: np.ndarray | None, task: str, n_classes: int) -> None:
        """The (training split of the) dataset, in the coordinates the model sees."""
        self.X = None if X is None else np.asarray(X, np.float64).reshape(len(X), -1)
        self.y = None if y is None else np.asarray(y)
        self.task, self.n_classes = task, max(1, int(n_classes))
        self.mode = mode_for(self.X, task)
        self._style()
        self._draw_data()
        self._update_hint()
        self.weights_changed()

    def settle(self) -> None:
        """The weights stopped moving (run over): one sharp redraw at full resolution."""
        self.grid = MAX_GRID
        self._weights_version += 1
        self._adapt = False  # this one frame may take longer than a live frame's budget
        try:
            self.refresh(force=True)
        finally:
            self._adapt = True

    def weights_changed(self) -> None:
        """The model's weights moved (a step, a reset): redraw soon, at most MAX_HZ."""
        self._weights_version += 1
        self._drawn = None
        self.refresh()

    def refresh(self, force: bool = False) -> bool:
        if not self.on_screen() and not force:
            return False
        wait = 1.0 / MAX_HZ - (time.perf_counter() - self._last)
        if wait > 0 and not force:
            if not self._later.isActive():
                self._later.start(int(wait * 1000) + 1)
            return False
        key = (self._weights_version, id(self.record), self.record.version if self.record else -1)
        if key == self._drawn and not force:
            return False
        self._drawn = key  # type: ignore[assignment]
        self._last = time.perf_counter()
        self._draw()
        self.draw_count += 1
        return True

    # -- drawing ----------------------------------------------------------------------------
    def _draw_data(self) -> None:
        X, y = self.X, self.y
        if not self.mode or X is None or y is None:
            self.scatter.setData([], [])
            self.fit.setData([], [])
            self.image.clear()
            self.isocurve.setData(None)
            self.note.setText("" if X is None else
                              "A decision boundary needs 2 input features and classes; a fitted curve "
                              f"needs 1 input feature and a regression target (this data: {X.shape[1]} "
                              f"features, {self.task})")
            return
        self.note.setText("")
        idx = np.linspace(0, len(X) - 1, min(len(X), MAX_SCATTER)).astype(int)
        _, fg, _ = palette_colors()
        edge = pg.mkPen(QColor(fg).darker(110) if fg.lightness() < 128 else QColor("#202020"), width=0.8)
        self.plot.setAspectLocked(self.mode == "class2d", ratio=1.0)  # x₁ and x₂ on one scale
        if self.mode == "class2d":
            labels = y.reshape(-1)[idx].astype(int)
            brushes = [pg.mkBrush(class_color(c)) for c in range(max(self.n_classes, 2))]
            self.scatter.setData(X[idx, 0], X[idx, 1], brush=[brushes[c] for c in labels], pen=edge, size=6)
            (x0, x1), (y0, y1) = self._bounds(X[:, 0]), self._bounds(X[:, 1])
            self.plot.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
            self.fit.setData([], [])
        else:
            t = y.reshape(len(y), -1)[:, 0]
            dot = QColor("#3d7fd9")
            dot.setAlpha(170)
            self.scatter.setData(X[idx, 0], t[idx], brush=pg.mkBrush(dot), pen=None, size=5)
            self.image.clear()
            self.isocurve.setData(None)

    @staticmethod
    def _bounds(v: np.ndarray) -> tuple[float, float]:
        lo, hi = float(np.min(v)), float(np.max(v))
        pad = 0.1 * (hi - lo or 1.0)
        return lo - pad, hi + pad

    def _draw(self) -> None:
        model = self.model_source() if self.model_source else None
        if model is None or not self.mode or self.X is None:
            return
        t0 = time.perf_counter()
        try:
            if self.mode == "class2d":
                self._draw_regions(model)
            else:
                self._draw_curve(model)
        except Exception as err:  # a preview must never take the window down
            self.note.setText(f"preview unavailable: {err}")
            return
        self.predict_ms = 1000 * (time.perf_counter() - t0)
        if not self._adapt:
            pass
        elif self.predict_ms > BUDGET_MS and self.grid > MIN_GRID:
            self.grid = max(MIN_GRID, int(self.grid * 0.75))
        elif self.predict_ms < BUDGET_MS / 3 and self.grid < MAX_GRID:
            self.grid = min(MAX_GRID, int(self.grid * 1.2) + 1)
        self.frames += 1

    def _on_range_changed(self) -> None:
        self._fit_box()
        if self.mode == "class2d" and self.image.image is not None:
            self._later.start(60)  # one sharp redraw once resizing or zooming pauses

    def _fit_box(self) -> None:
        """With the aspect locked, a wide and short (or tall and narrow) dock would show a strip
        of extrapolated regions around a small picture of the data: the plot keeps to about the
        data's shape instead (centred), plus a margin of :data:`BOX_ROOM`."""
        unbounded = 16_777_215.0
        cell = self.cells[0]
        if self.mode != "class2d" or self.X is None:
            self.plot.setMaximumSize(unbounded, unbounded)
            cell.setContentsMargins(2, 2, 2, 2)
            return
        (x0, x1), (y0, y1) = self._bounds(self.X[:, 0]), self._bounds(self.X[:, 1])
        aspect = (x1 - x0) / max(y1 - y0, 1e-12)
        vb = self.plot.getViewBox()
        extra_w, extra_h = self.plot.width() - vb.width(), self.plot.height() - vb.height()
        max_w = vb.height() * aspect * BOX_ROOM + extra_w
        max_h = vb.width() / aspect * BOX_ROOM + extra_h
        room_w, room_h = cell.width() - 4, cell.height() - 4
        pad_x = max(0.0, (room_w - max(max_w, 160.0)) / 2)
        pad_y = 0.0 if pad_x else max(0.0, (room_h - max(max_h, 120.0)) / 2)
        margins = (round(2 + pad_x), round(2 + pad_y))
        if margins != getattr(self, "_box_margins", None):  # (margins move the view: settle once)
            self._box_margins = margins
            cell.setContentsMargins(margins[0], margins[1], margins[0], margins[1])

    def _region_bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """What the regions cover: the visible view (wider than the data once the aspect is
        locked), or the data's bounds while the view is not laid out yet."""
        X = self.X
        assert X is not None
        data = self._bounds(X[:, 0]), self._bounds(X[:, 1])
        (vx0, vx1), (vy0, vy1) = self.plot.viewRange()
        (dx0, dx1), (dy0, dy1) = data
        if vx0 <= dx0 and vx1 >= dx1 and vy0 <= dy0 and vy1 >= dy1 and (vx1 - vx0) < 50 * (dx1 - dx0) \
                and (vy1 - vy0) < 50 * (dy1 - dy0):
            return (vx0, vx1), (vy0, vy1)
        return data

    def _draw_regions(self, model: Any) -> None:
        (x0, x1), (y0, y1) = self._region_bounds()
        nx, ny = grid_shape(self.grid, x1 - x0, y1 - y0)
        gx, gy = np.meshgrid(np.linspace(x0, x1, nx), np.linspace(y0, y1, ny))
        grid = np.column_stack([gx.ravel(), gy.ravel()])
        p = probabilities(model, grid)
        bg, _, _ = palette_colors()
        base = np.array([bg.red(), bg.green(), bg.blue()], np.float64)
        probs = np.column_stack([1 - p[:, 0], p[:, 0]]) if p.shape[1] == 1 else p
        if probs.shape[1] == 2:  # two classes (a sigmoid or a 2-way softmax): the 50 % line
            self.isocurve.setData(probs[:, 1].reshape(ny, nx).T)  # isocurve data is indexed [x, y]
        else:
            self.isocurve.setData(None)
        k = probs.shape[1]
        colors = np.array([[class_color(c).red(), class_color(c).green(), class_color(c).blue()]
                           for c in range(k)], np.float64)
        mix = probs @ colors
        conf = (probs.max(axis=1) - 1.0 / k) / (1.0 - 1.0 / k)
        alpha = (0.15 + 0.55 * conf)[:, None]
        rgb = (base * (1 - alpha) + mix * alpha).clip(0, 255).astype(np.uint8).reshape(ny, nx, 3)
        self.image.setImage(rgb, autoLevels=False, levels=(0, 255))
        self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))

    def _draw_curve(self, model: Any) -> None:
        X = self.X
        assert X is not None
        lo, hi = self._bounds(X[:, 0])
        if self.samples.draw(model, lo, hi):
            self.fit.setData([], [])
            if self.plot.titleLabel.text != MDN_TITLE:
                style_plot(self.plot, MDN_TITLE, "y", "x")
            return
        xs = np.linspace(lo, hi, 400)
        out = np.asarray(model.predict(xs[:, None]), np.float64).reshape(len(xs), -1)[:, 0]
        self.fit.setData(xs, out)
