"""Canvas overlay: every layer card tinted by its current log gradient norm, with a colour scale.

While a run records steps, each node with parameters is washed with the colour of
log10 ‖∇W‖ (the mean of the last few steps) on the same colour map as the heat map, and its
tooltip shows the value (a recurrent layer's also its first ÷ last time-step
gradient). A small legend in the canvas corner gives the scale. Tints stay
after the run ends (the last picture) and are cleared by the next edit or a weight reset.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QWidget

from studio.plots.common import GRADIENT_MAP, grad_color, log_range, superscript
from studio.plots.gradients import RECENT
from studio.training.history import RunRecord
from studio.views.through_time import time_ratio_tooltip

TINT_ALPHA = 150
TINT_INTERVAL = 0.2  # seconds between re-tints while a run streams
TINT_LEVELS = 32  # colour steps along the scale


def fmt_norm(v: float) -> str:
    return "0" if v == 0 else f"{v:.3g}" if 1e-3 <= abs(v) < 1e4 else f"{v:.2e}"


class ScaleLegend(QWidget):
    """The colour scale of the canvas tint: a gradient bar labelled in powers of ten."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.lo, self.hi = -6.0, 0.0
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.title = f"gradient norm ‖∇W‖ (mean of last {RECENT} steps)"
        width = self.fontMetrics().horizontalAdvance(self.title)
        self.setFixedSize(max(230, int(width * 0.9) + 28), 52)
        self.hide()

    def set_range(self, lo: float, hi: float) -> None:
        if (lo, hi) != (self.lo, self.hi):
            self.lo, self.hi = lo, hi
            self.update()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        bg = QColor(pal.color(pal.ColorRole.Base))
        bg.setAlpha(225)
        fg = pal.color(pal.ColorRole.Text)
        p.setPen(QPen(QColor(fg.red(), fg.green(), fg.blue(), 60)))
        p.setBrush(bg)
        p.drawRoundedRect(QRectF(0.5, 0.5, self.width() - 1, self.height() - 1), 6, 6)
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        p.setFont(font)
        p.setPen(fg)
        p.drawText(QRectF(10, 3, self.width() - 20, 16), Qt.AlignmentFlag.AlignLeft, self.title)
        bar = QRectF(10, 21, self.width() - 20, 10)
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        for t in np.linspace(0, 1, 9):
            grad.setColorAt(float(t), GRADIENT_MAP.map(float(t), mode="qcolor"))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(grad)
        p.drawRect(bar)
        p.setPen(fg)
        span = max(1.0, self.hi - self.lo)
        every = max(1, math.ceil(span / 6))
        last_x = bar.left() + (int(self.hi) - self.lo) / span * bar.width()
        for k in range(int(self.lo), int(self.hi) + 1):
            x = bar.left() + (k - self.lo) / span * bar.width()
            if k != int(self.hi) and ((k - int(self.lo)) % every or last_x - x < 40):
                continue  # the last label is always drawn; one too close to it is left out
            p.drawLine(QPointF(x, bar.bottom()), QPointF(x, bar.bottom() + 3))
            p.drawText(QRectF(x - 20, bar.bottom() + 3, 40, 14), Qt.AlignmentFlag.AlignHCenter,
                       f"10{superscript(k)}")
        p.end()


class GradientOverlay(QObject):
    """Tints the scene's node cards from a RunRecord (see module docstring)."""

    def __init__(self, scene: Any, view: QWidget, document: Any) -> None:
        super().__init__(view)
        self.scene = scene
        self.view = view
        self.document = document
        self.legend = ScaleLegend(view)
        self.enabled = True
        self.values: dict[str, float] = {}
        self.colors: dict[str, QColor] = {}
        self._tinted: set[str] = set()
        self._drawn: tuple[int, int] | None = None
        self._drawn_record: RunRecord | None = None
        self._tinted_at = 0.0
        view.installEventFilter(self)
        document.changed.connect(self.clear)
        document.graphReset.connect(self.clear)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if obj is self.view and event.type() == QEvent.Type.Resize:
            self._place_legend()
        return False

    def _place_legend(self) -> None:
        self.legend.move(12, self.view.height() - self.legend.height() - 12)

    def set_enabled(self, on: bool) -> None:
        self.enabled = on
        if not on:
            self.clear()

    def update_from(self, record: RunRecord | None, force: bool = False) -> None:
        """Tint cards from the record's latest norms (skipped if nothing new, at most 5 Hz unless forced)."""
        if not self.enabled or record is None or not record.n_steps or not record.nodes:
            return
        key = (id(record), record.version)
        now = time.perf_counter()
        recent = now - self._tinted_at < TINT_INTERVAL and self._drawn_record is record
        if key == self._drawn or (recent and not force):
            return  # tints move slowly; repainting every card 30 times a second costs the UI ~8 ms a frame
        self._drawn, self._tinted_at, self._drawn_record = key, now, record
        norms = record.recent_norms(RECENT)
        lo, hi = log_range(norms, span=2.0)
        self.values = dict(zip(record.nodes, norms.tolist(), strict=True))
        self.colors = {}
        for nid, v in self.values.items():
            item = self.scene.node_item(nid)
            if item is None:
                continue
            t = ((math.log10(v) - lo) / (hi - lo)) if v > 0 and math.isfinite(v) else 0.0
            t = round(t * TINT_LEVELS) / TINT_LEVELS  # a card repaints only when its colour visibly changes
            color = grad_color(t, TINT_ALPHA)
            self.colors[nid] = color
            if item.tint is None or item.tint != color:
                item.set_tint(color)
            through_time = time_ratio_tooltip(record, nid)  # recurrent layers: first ÷ last time step
            item.setToolTip(f"<b>{nid}</b> — gradient norm ‖∇W‖ = {fmt_norm(v)}<br>"
                            f"(mean of the last {RECENT} steps; step {record.last_step})"
                            + (f"<br>{through_time}" if through_time else ""))
            self._tinted.add(nid)
        self.legend.set_range(lo, hi)
        if not self.legend.isVisible():
            self._place_legend()
            self.legend.show()
            self.legend.raise_()

    def clear(self) -> None:
        """Remove tints and restore the cards' own tooltips."""
        for nid in self._tinted:
            item = self.scene.node_item(nid)
            if item is not None:
                item.set_tint(None)
                if nid in self.document.graph.nodes:
                    item.sync(self.document)
        self._tinted.clear()
        self.values, self.colors = {}, {}
        self._drawn = None
        self.legend.hide()
