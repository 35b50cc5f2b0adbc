"""Class report: the confusion matrix and a gallery of misclassified examples.

Computed by :func:`engine.inspection.class_report` on the preview model over the run's test
split (else validation, else training data): rows are true classes, columns predicted,
each cell's colour its share of the row. Below, the misclassified examples, the most
confident mistakes first, each captioned "true → predicted (confidence)"; clicking one
shows it in the Feature maps view (``exampleChosen``).

It is computed after training, and while a run goes on once per epoch, but only when one
computation was cheap (≤ :data:`LIVE_BUDGET_MS`: a predict of the whole split runs on the
GUI thread) and only while the panel is on screen.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QIcon
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QSplitter, QVBoxLayout, QWidget

from engine.inspection import ClassReport, class_report
from studio.plots.common import palette_colors, style_plot
from studio.views.images import to_pixmap
from studio.views.live import Examples, LivePanel, examples_of

LIVE_BUDGET_MS = 25.0
GALLERY = 48
THUMB = 48
MAX_CELL_TEXT = 20  # classes up to which every cell shows its count
MIN_MATRIX_PANE = 160  # px: the matrix's pane is never made narrower than this


class ClassReportPanel(LivePanel):
    """Confusion matrix + misclassified gallery (see module docstring)."""

    title = "Class report"
    empty_hint = ("After training a classifier, its confusion matrix on the held-out data and the examples it "
                  "gets wrong appear here; click one to see its feature maps.")
    max_hz = 1.0
    exampleChosen = Signal(int)  # index into the examples (the same split the Feature maps show)

    def _build(self) -> None:
        self.report: ClassReport | None = None
        self.examples: Examples | None = None
        self.cost_ms = 0.0
        self._texts: list[pg.TextItem] = []
        self.plot: pg.PlotItem = self.glw.addPlot()
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.matrix = pg.ImageItem(axisOrder="row-major")
        self.matrix.setColorMap(pg.colormap.get("viridis"))
        self.plot.addItem(self.matrix)
        self.heading = QLabel()
        self.heading.setContentsMargins(8, 2, 8, 2)
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListWidget.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(THUMB, THUMB))
        self.gallery.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.gallery.setMovement(QListWidget.Movement.Static)
        self.gallery.setSpacing(4)
        self.gallery.setToolTip("misclassified examples, the most confident mistakes first; click one to see "
                                "its feature maps")
        self.gallery.itemClicked.connect(self._on_clicked)
        self.heading.setWordWrap(True)
        self.heading.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)  # also with no gallery
        right = QWidget()
        col = QVBoxLayout(right)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.heading)
        col.addWidget(self.gallery, 1)
        # the dock is wide and short: matrix on the left, the gallery beside it
        split = QSplitter(Qt.Orientation.Horizontal)
        self.layout().removeWidget(self.scroll)  # the plot area (glw inside its scroll area) goes left
        split.addWidget(self.scroll)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        self.layout().addWidget(split)
        self.plot.getViewBox().sigResized.connect(self._fit_square)

    def _fit_square(self) -> None:
        """Keep the matrix's pane as wide as the square matrix and its row labels need, and give
        the rest to the gallery: with the aspect locked, a wider pane (a wide, short dock at
        1280×800) only centres the matrix between empty margins, far from its row labels."""
        box = self.plot.getViewBox()
        side = box.height()
        if side < 1:
            return
        labels = self.plot.width() - box.width()  # the left axis and the plot's margins
        margins = self.glw.width() - self.plot.width()
        want = max(MIN_MATRIX_PANE, int(side + labels + margins + 2))
        if self.scroll.maximumWidth() != want:
            self.scroll.setMaximumWidth(want)

    def has_content(self) -> bool:
        return self.report is not None

    def _key(self) -> tuple:
        rec, c = self.record, self.controller
        epochs = len(rec.epochs) if rec is not None else -1
        return (self._weights_version, id(rec), epochs, c.busy)

    def _draw(self) -> None:
        c = self.controller
        if c.busy and self.cost_ms > LIVE_BUDGET_MS:
            return  # too dear to repeat every epoch: the report follows at the end of the run
        model = self.preview()
        ex = examples_of(c.run, images_only=False)
        if model is None or ex is None or c.run.dataset.task != "classification" or ex.y.ndim != 1:
            return
        t0 = time.perf_counter()
        report = class_report(model, ex.X, ex.y, max(2, len(ex.class_names)))
        self.cost_ms = 1000 * (time.perf_counter() - t0)
        self.report, self.examples = report, ex
        self._show_matrix(report, ex)
        self._show_gallery(report, ex)
        self._update_hint()
        self.frames += 1

    def _show_matrix(self, report: ClassReport, ex: Examples) -> None:
        counts = report.confusion
        k = len(counts)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        self.matrix.setImage(share, autoLevels=False, levels=(0.0, 1.0))
        for item in self._texts:
            self.plot.removeItem(item)
        self._texts = []
        box = self.plot.getViewBox()
        cell = min(box.width(), box.height()) / max(k, 1)
        font = QFont()
        font.setPixelSize(int(max(7, min(13, cell * 0.4))))
        if k <= MAX_CELL_TEXT and cell >= 12:
            for r in range(k):
                for col in range(k):
                    color = "#202020" if share[r, col] > 0.6 else "#f0f0f0"
                    text = pg.TextItem(str(counts[r, col]), color=color, anchor=(0.5, 0.5))
                    text.setFont(font)
                    text.setPos(col + 0.5, r + 0.5)
                    self.plot.addItem(text)
                    self._texts.append(text)
        names = [(i + 0.5, ex.label(i)) for i in range(k)]
        self.plot.getAxis("bottom").setTicks([names])
        self.plot.getAxis("left").setTicks([names])
        self.plot.setRange(xRange=(0, k), yRange=(0, k), padding=0.02)
        correct = int(np.trace(counts))
        total = int(counts.sum())
        self.heading.setText(f"{ex.split.capitalize()} data: <b>{correct:,} of {total:,}</b> correct "
                             f"({100 * correct / max(total, 1):.1f} %) · {total - correct:,} misclassified"
                             + (" (first shown below)" if total - correct and _pictures(ex) else ""))

    def _show_gallery(self, report: ClassReport, ex: Examples) -> None:
        self.gallery.clear()
        self.gallery.setVisible(_pictures(ex))
        if not _pictures(ex):
            return
        for i in report.misclassified(GALLERY):
            true, pred = int(report.y[i]), int(report.predicted[i])
            caption = f"{ex.label(true)} → {ex.label(pred)}"
            item = QListWidgetItem(QIcon(to_pixmap(ex.X[i], THUMB)), caption)
            item.setData(Qt.ItemDataRole.UserRole, int(i))
            item.setToolTip(f"example {int(i)}: label {ex.label(true)}, predicted {ex.label(pred)} "
                            f"({100 * report.confidence[i]:.0f} %)")
            self.gallery.addItem(item)

    def _on_clicked(self, item: QListWidgetItem) -> None:
        self.exampleChosen.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _style(self) -> None:
        style_plot(self.plot, "Confusion matrix", "true class", "predicted class")
        self.plot.showGrid(x=False, y=False)
        _, fg, _ = palette_colors()
        self.heading.setStyleSheet(f"color: {fg.name()};")


def _pictures(ex: Examples) -> bool:
    """Whether the examples are images the gallery can show (a row of table features is none)."""
    return ex.X.ndim >= 3
