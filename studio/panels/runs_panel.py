"""The session's run history: every run with its result; show one, ghost one, export one.

Runs live as long as the window (they are :class:`~studio.training.history.RunRecord`
objects kept by the training controller). Selecting a run and pressing **Show** puts it in
the plots; **Ghost** overlays it, dashed, behind whatever the plots show — e.g. the sigmoid
run behind the ReLU run. Export writes the metrics stream (JSON lines, the format of
``backprop train --metrics``) or a CSV table.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.training.history import RunRecord

COLUMNS = ("run", "steps", "loss", "accuracy", "status")


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "—"
    return f"{100 * v:.1f} %" if pct else f"{v:.4g}"


class RunsPanel(QWidget):
    """List of runs + ghost choice + export buttons."""

    showRequested = Signal(object)  # RunRecord
    ghostChanged = Signal(object)  # RunRecord | None
    exportRequested = Signal(object, str)  # RunRecord, "csv" | "jsonl"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs: list[RunRecord] = []
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemDoubleClicked.connect(lambda *_: self._show())
        self.ghost = QComboBox()
        self.ghost.setToolTip("Overlay an earlier run, dashed, on the loss and gradient plots")
        self.ghost.currentIndexChanged.connect(self._on_ghost)
        show = QPushButton("Show")
        show.setToolTip("Show the selected run in the plots (double-click does the same)")
        show.clicked.connect(self._show)
        csv = QPushButton("Export CSV…")
        csv.clicked.connect(lambda: self._export("csv"))
        jsonl = QPushButton("Export JSONL…")
        jsonl.setToolTip("The metrics stream, one JSON object per line (as backprop train --metrics)")
        jsonl.clicked.connect(lambda: self._export("jsonl"))
        row = QHBoxLayout()
        row.addWidget(QLabel("Ghost:"))
        row.addWidget(self.ghost, 1)
        buttons = QHBoxLayout()
        for b in (show, csv, jsonl):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addLayout(row)
        layout.addLayout(buttons)
        self._fill_ghosts()

    # -- model ---------------------------------------------------------------------------------
    def set_runs(self, runs: list[RunRecord]) -> None:
        self.runs = runs
        self.refresh()

    def selected(self) -> RunRecord | None:
        items = self.tree.selectedItems()
        if items:
            return items[0].data(0, Qt.ItemDataRole.UserRole)
        return self.runs[-1] if self.runs else None

    def refresh(self) -> None:
        """Rebuild rows from the runs (cheap: called after each run and at ~1 Hz while training)."""
        chosen = self.selected()
        self.tree.clear()
        for rec in self.runs:
            s = rec.summary()
            acc = s.get("val_acc", s.get("train_acc"))
            item = QTreeWidgetItem([rec.label, str(s["steps"]), _fmt(s.get("loss")), _fmt(acc, pct=True),
                                    s["reason"]])
            item.setData(0, Qt.ItemDataRole.UserRole, rec)
            if rec.diverged is not None:
                item.setToolTip(4, rec.diverged.message)
            elif rec.finish is not None:
                item.setToolTip(4, rec.finish.message)
            self.tree.addTopLevelItem(item)
            if rec is chosen:
                item.setSelected(True)
        self._fill_ghosts()

    def _fill_ghosts(self) -> None:
        current = self.ghost.currentData()
        self.ghost.blockSignals(True)
        self.ghost.clear()
        self.ghost.addItem("none", None)
        for rec in self.runs:
            self.ghost.addItem(rec.label, rec)
        index = self.ghost.findData(current) if current is not None else 0
        self.ghost.setCurrentIndex(max(0, index))
        self.ghost.blockSignals(False)
        if current is not None and index < 0:
            self.ghostChanged.emit(None)

    def set_ghost(self, record: RunRecord | None) -> None:
        index = self.ghost.findData(record) if record is not None else 0
        self.ghost.setCurrentIndex(max(0, index))

    # -- slots ---------------------------------------------------------------------------------
    def _on_ghost(self, _index: int) -> None:
        self.ghostChanged.emit(self.ghost.currentData())

    def _show(self) -> None:
        rec = self.selected()
        if rec is not None:
            self.showRequested.emit(rec)

    def _export(self, kind: str) -> None:
        rec = self.selected()
        if rec is not None:
            self.exportRequested.emit(rec, kind)
