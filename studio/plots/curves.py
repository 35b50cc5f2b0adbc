"""Loss and accuracy curves: training loss per step, train/validation loss and accuracy per epoch.

Per-step loss is drawn from a decimated view of the run's history (at most
:data:`~studio.plots.common.MAX_POINTS` points, pyqtgraph's peak downsampling on top), on a
log axis because a loss falls over orders of magnitude. An earlier run can be overlaid as a
dashed ghost on all three plots.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

from studio.plots.common import (
    LogAxis,
    PlotPanel,
    SteadyRange,
    ghost_pen,
    legend_row,
    log_range,
    positive,
    readable_axes,
    style_legend,
    style_plot,
)
from studio.training.history import RunRecord

TRAIN = QColor("#3d7fd9")
VAL = QColor("#e07a3f")
STEP_POINTS = 1000


def _pen(color: QColor, width: float = 1.8) -> object:
    return pg.mkPen(color, width=width)


class CurvesPanel(PlotPanel):
    """Loss per step (train), loss per epoch (train/val), accuracy per epoch (train/val)."""

    title = "Loss and accuracy"

    def _build(self) -> None:
        step_cell, loss_cell, acc_cell = self.add_cell(), self.add_cell(), self.add_cell()
        self.step_plot: pg.PlotItem = step_cell.addPlot(row=0, col=0, axisItems=readable_axes(left=LogAxis("left")))
        self.step_legend = legend_row(self.step_plot)
        self.step_plot.setLogMode(y=True)
        self.step_plot.setClipToView(True)
        light = QColor(TRAIN)
        light.setAlpha(170)
        self.step_curve = self.step_plot.plot([], [], pen=_pen(light, 1.2), antialias=False)  # redrawn live
        self.step_curve.setDownsampling(auto=True, method="peak")
        self.step_curve.setClipToView(True)
        self.step_ghost = self.step_plot.plot([], [], pen=ghost_pen(TRAIN))
        self.step_legend.addItem(self.step_curve, "train loss")
        self.loss_plot: pg.PlotItem = loss_cell.addPlot(row=0, col=0, axisItems=readable_axes(left=LogAxis("left")))
        self.loss_legend = legend_row(self.loss_plot)
        self.loss_plot.setLogMode(y=True)
        self.loss_train = self.loss_plot.plot([], [], pen=_pen(TRAIN))
        self.loss_val = self.loss_plot.plot([], [], pen=_pen(VAL))
        self.loss_ghost_train = self.loss_plot.plot([], [], pen=ghost_pen(TRAIN))
        self.loss_ghost_val = self.loss_plot.plot([], [], pen=ghost_pen(VAL))
        self.acc_plot: pg.PlotItem = acc_cell.addPlot(row=0, col=0, axisItems=readable_axes())
        self.acc_legend = legend_row(self.acc_plot)
        self.acc_train = self.acc_plot.plot([], [], pen=_pen(TRAIN))
        self.acc_val = self.acc_plot.plot([], [], pen=_pen(VAL))
        self.acc_ghost_train = self.acc_plot.plot([], [], pen=ghost_pen(TRAIN))
        self.acc_ghost_val = self.acc_plot.plot([], [], pen=ghost_pen(VAL))
        for legend, train, val in ((self.loss_legend, self.loss_train, self.loss_val),
                                   (self.acc_legend, self.acc_train, self.acc_val)):
            legend.addItem(train, "train")
            legend.addItem(val, "validation")
        self.acc_note = pg.TextItem("", anchor=(0.5, 0.5))
        self.acc_note.setParentItem(self.acc_plot.getViewBox())
        self._ghost_key: tuple[int, int] | None = None
        self._ghost_steps: tuple[np.ndarray, np.ndarray] | None = None
        self._ghost_losses = np.zeros(0)
        self._epochs_key: tuple[int, int] | None = None
        self._range_owner: tuple[int, int] | None = None
        self.step_range = SteadyRange(self.step_plot)
        self.loss_range = SteadyRange(self.loss_plot)
        self.acc_range = SteadyRange(self.acc_plot)

    def _style(self) -> None:
        style_plot(self.step_plot, "Training loss per step", "loss (log)")
        style_plot(self.loss_plot, "Loss per epoch", "loss (log)")
        style_plot(self.acc_plot, "Accuracy per epoch", "accuracy")
        for legend in (self.step_legend, self.loss_legend, self.acc_legend):
            style_legend(legend)
        self.acc_note.setColor(pg.mkColor(self.palette().color(self.foregroundRole())))

    def _epoch_data(self, table: dict[str, np.ndarray], key: str) -> tuple[np.ndarray, np.ndarray]:
        x, y = table["epoch"], table[key]
        ok = np.isfinite(y)
        return x[ok], y[ok]

    def _set_epoch_curve(self, curve: pg.PlotDataItem, x: np.ndarray, y: np.ndarray, log: bool) -> None:
        symbol = "o" if 0 < len(x) <= 40 else None
        curve.setData(x, positive(y) if log else y, symbol=symbol, symbolSize=5,
                      symbolBrush=curve.opts["pen"].color() if symbol else None, symbolPen=None)

    def _draw(self) -> None:
        self._draw_ghost()
        rec = self.record
        if rec is None:
            for c in (self.step_curve, self.loss_train, self.loss_val, self.acc_train, self.acc_val):
                c.setData([], [])
            self._epochs_key = None
            steps = loss = np.zeros(0)
        else:
            steps, loss, _ = rec.step_view(STEP_POINTS)
            self.step_curve.setData(steps, positive(loss))
            self._draw_epochs(rec)
        self._fit_step_range(rec, steps, loss)

    def _fit_step_range(self, rec: RunRecord | None, steps: np.ndarray, loss: np.ndarray) -> None:
        """Per-step view, x growing in steps, y in whole decades: x follows the shown run (a
        longer ghost is cut, not stretching a short run), y covers the run and the ghost."""
        owner = (id(rec), id(self.ghost))
        if owner != self._range_owner:
            self._range_owner = owner
            for steady in (self.step_range, self.loss_range, self.acc_range):
                steady.reset()
        if self._ghost_steps is not None:
            if not len(steps):
                steps = self._ghost_steps[0]
            loss = np.concatenate([loss, self._ghost_steps[1]])
        if len(steps):
            done = rec is None or rec.finish is not None
            self.step_range.update(0.0, float(np.max(steps)), log_range(loss, span=0.5), exact=done)

    def _draw_epochs(self, rec: RunRecord) -> None:
        """Epoch curves change once an epoch: leave them (and their axes) alone in between."""
        table = rec.epoch_table()
        key = (id(rec), len(table["epoch"]))
        if key == self._epochs_key:
            return
        self._epochs_key = key
        self._set_epoch_curve(self.loss_train, *self._epoch_data(table, "train_loss"), log=True)
        self._set_epoch_curve(self.loss_val, *self._epoch_data(table, "val_loss"), log=True)
        self._set_epoch_curve(self.acc_train, *self._epoch_data(table, "train_acc"), log=False)
        self._set_epoch_curve(self.acc_val, *self._epoch_data(table, "val_acc"), log=False)
        epochs = table["epoch"]
        if len(epochs):
            losses = np.concatenate([table["train_loss"], table["val_loss"], self._ghost_losses])
            done = rec.finish is not None
            self.loss_range.update(0.5, float(epochs[-1]) + 0.5, log_range(losses, span=0.5), exact=done)
            self.acc_range.update(0.5, float(epochs[-1]) + 0.5, (0.0, 1.02), exact=done)
        regression = rec.task != "classification"
        self.acc_note.setText("regression: no accuracy" if regression else "")
        if regression:
            vb = self.acc_plot.getViewBox()
            self.acc_note.setPos(vb.width() / 2, vb.height() / 2)

    def _draw_ghost(self) -> None:
        ghost = self.ghost
        key = (id(ghost), ghost.version) if ghost is not None else None
        if key == self._ghost_key:
            return
        self._ghost_key = key
        curves = (self.step_ghost, self.loss_ghost_train, self.loss_ghost_val, self.acc_ghost_train,
                  self.acc_ghost_val)
        self._ghost_steps = None
        self._ghost_losses = np.zeros(0)
        self._epochs_key = None  # the epoch axes take the ghost's losses into account
        self.step_legend.removeItem(self.step_ghost)
        if ghost is None:
            for c in curves:
                c.setData([], [])
            return
        self.step_legend.addItem(self.step_ghost, f"ghost: {ghost.label}")
        steps, loss, _ = ghost.step_view(STEP_POINTS // 2)
        self._ghost_steps = (steps, loss)
        self.step_ghost.setData(steps, positive(loss))
        table = ghost.epoch_table()
        pairs = ((self.loss_ghost_train, "train_loss", True), (self.loss_ghost_val, "val_loss", True),
                 (self.acc_ghost_train, "train_acc", False), (self.acc_ghost_val, "val_acc", False))
        for curve, name, log in pairs:
            x, y = self._epoch_data(table, name)
            curve.setData(x, positive(y) if log else y)
        self._ghost_losses = np.concatenate([table["train_loss"], table["val_loss"]])
