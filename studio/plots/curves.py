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

from studio.plots.common import LogAxis, PlotPanel, ghost_pen, positive, style_legend, style_plot

TRAIN = QColor("#3d7fd9")
VAL = QColor("#e07a3f")
STEP_POINTS = 1000


def _pen(color: QColor, width: float = 1.8) -> object:
    return pg.mkPen(color, width=width)


class CurvesPanel(PlotPanel):
    """Loss per step (train), loss per epoch (train/val), accuracy per epoch (train/val)."""

    title = "Loss and accuracy"

    def _build(self) -> None:
        glw = self.glw
        self.step_plot: pg.PlotItem = glw.addPlot(row=0, col=0, colspan=2,
                                                  axisItems={"left": LogAxis("left")})
        self.step_plot.setLogMode(y=True)
        self.step_plot.setClipToView(True)
        self.step_legend = self.step_plot.addLegend(offset=(-8, 8), labelTextSize="8pt")
        light = QColor(TRAIN)
        light.setAlpha(170)
        self.step_curve = self.step_plot.plot([], [], pen=_pen(light, 1.2), name="train loss (per step)")
        self.step_curve.setDownsampling(auto=True, method="peak")
        self.step_curve.setClipToView(True)
        self.step_ghost = self.step_plot.plot([], [], pen=ghost_pen(TRAIN))
        self.loss_plot: pg.PlotItem = glw.addPlot(row=1, col=0, axisItems={"left": LogAxis("left")})
        self.loss_plot.setLogMode(y=True)
        self.loss_legend = self.loss_plot.addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.loss_train = self.loss_plot.plot([], [], pen=_pen(TRAIN), name="train")
        self.loss_val = self.loss_plot.plot([], [], pen=_pen(VAL), name="validation")
        self.loss_ghost_train = self.loss_plot.plot([], [], pen=ghost_pen(TRAIN))
        self.loss_ghost_val = self.loss_plot.plot([], [], pen=ghost_pen(VAL))
        self.acc_plot: pg.PlotItem = glw.addPlot(row=1, col=1)
        self.acc_plot.setYRange(0, 1.02, padding=0)
        self.acc_legend = self.acc_plot.addLegend(offset=(-8, -8), labelTextSize="8pt")
        self.acc_train = self.acc_plot.plot([], [], pen=_pen(TRAIN), name="train")
        self.acc_val = self.acc_plot.plot([], [], pen=_pen(VAL), name="validation")
        self.acc_ghost_train = self.acc_plot.plot([], [], pen=ghost_pen(TRAIN))
        self.acc_ghost_val = self.acc_plot.plot([], [], pen=ghost_pen(VAL))
        self.acc_note = pg.TextItem("", anchor=(0.5, 0.5))
        self.acc_note.setParentItem(self.acc_plot.getViewBox())
        glw.ci.layout.setRowStretchFactor(0, 3)
        glw.ci.layout.setRowStretchFactor(1, 2)
        self._ghost_key: tuple[int, int] | None = None

    def _style(self) -> None:
        style_plot(self.step_plot, "Training loss per step", "loss (log)", "step")
        style_plot(self.loss_plot, "Loss per epoch", "loss (log)", "epoch")
        style_plot(self.acc_plot, "Accuracy per epoch", "accuracy", "epoch")
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
        rec = self.record
        if rec is None:
            for c in (self.step_curve, self.loss_train, self.loss_val, self.acc_train, self.acc_val):
                c.setData([], [])
        else:
            steps, loss, _ = rec.step_view(STEP_POINTS)
            self.step_curve.setData(steps, positive(loss))
            table = rec.epoch_table()
            self._set_epoch_curve(self.loss_train, *self._epoch_data(table, "train_loss"), log=True)
            self._set_epoch_curve(self.loss_val, *self._epoch_data(table, "val_loss"), log=True)
            self._set_epoch_curve(self.acc_train, *self._epoch_data(table, "train_acc"), log=False)
            self._set_epoch_curve(self.acc_val, *self._epoch_data(table, "val_acc"), log=False)
            regression = rec.task != "classification"
            self.acc_note.setText("regression: no accuracy" if regression else "")
            if regression:
                vb = self.acc_plot.getViewBox()
                self.acc_note.setPos(vb.width() / 2, vb.height() / 2)
        self._draw_ghost()

    def _draw_ghost(self) -> None:
        ghost = self.ghost
        key = (id(ghost), ghost.version) if ghost is not None else None
        if key == self._ghost_key:
            return
        self._ghost_key = key
        curves = (self.step_ghost, self.loss_ghost_train, self.loss_ghost_val, self.acc_ghost_train,
                  self.acc_ghost_val)
        if ghost is None:
            for c in curves:
                c.setData([], [])
            return
        steps, loss, _ = ghost.step_view(STEP_POINTS // 2)
        self.step_ghost.setData(steps, positive(loss))
        table = ghost.epoch_table()
        pairs = ((self.loss_ghost_train, "train_loss", True), (self.loss_ghost_val, "val_loss", True),
                 (self.acc_ghost_train, "train_acc", False), (self.acc_ghost_val, "val_acc", False))
        for curve, name, log in pairs:
            x, y = self._epoch_data(table, name)
            curve.setData(x, positive(y) if log else y)
