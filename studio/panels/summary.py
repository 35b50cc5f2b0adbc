"""The summary panel: the engine's table of layers, output shapes, parameter counts and the
total (``Graph.summary``), refreshed after every edit; problem rows carry the engine's
message. Clicking a row selects that node on the canvas."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import QHeaderView, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from studio import theme
from studio.canvas.node_item import format_shape
from studio.document import Document

COLUMNS = ("Layer", "Type", "Output", "Params", "Details")


class SummaryPanel(QWidget):
    nodeClicked = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.table = QTreeWidget()
        self.table.setColumnCount(len(COLUMNS))
        self.table.setHeaderLabels(list(COLUMNS))
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.setAlternatingRowColors(True)
        header = self.table.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.total = QLabel()
        self.total.setContentsMargins(6, 2, 6, 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.table)
        layout.addWidget(self.total)
        self.table.itemClicked.connect(lambda item, _col: self.nodeClicked.emit(item.text(0)))
        document.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        rows, total = self.document.graph.summary()
        problems = self.document.report.problems
        by_node = {p.node: p.message for p in problems if p.node}
        self.table.setUpdatesEnabled(False)
        self.table.clear()
        error = QBrush(theme.colors().error)
        items = []
        for row in rows:
            item = QTreeWidgetItem([row.node, row.type, format_shape(row.output_shape), f"{row.params:,}",
                                    row.details])
            item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            message = by_node.get(row.node)
            if message:
                for col in range(len(COLUMNS)):
                    item.setForeground(col, error)
                    item.setToolTip(col, message)
            items.append(item)
        self.table.addTopLevelItems(items)
        self.table.setUpdatesEnabled(True)
        text = f"<b>{total:,}</b> trainable parameters in {len(rows)} layer{'s' if len(rows) != 1 else ''}"
        if problems:
            text += f" · <span style='color:{theme.colors().error.name()}'>{len(problems)} problem" \
                    f"{'s' if len(problems) != 1 else ''}</span>"
        self.total.setText(text)

    def row_texts(self) -> list[list[str]]:
        """The table as text (what a person reads; used by tests)."""
        return [[self.table.topLevelItem(i).text(c) for c in range(len(COLUMNS))]
                for i in range(self.table.topLevelItemCount())]
