"""The layer palette, generated from the engine's layer registry.

Categories come from ``REGISTRY.categories()`` in the order of ``CATEGORY_TITLES`` (a new
category, e.g. convolution, appears by itself when its layers register). A layer with
presets (Activation: Sigmoid, Tanh, ReLU...) is offered as one entry per preset. Entries
carry the layer's help text as tooltip; drag one onto the canvas or double-click it (or
press Enter) to add it at the centre of the view.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.layers import REGISTRY
from engine.layers.base import CATEGORY_TITLES, LayerType
from studio import theme
from studio.canvas.view import MIME_LAYER
from studio.text import readable

ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class PaletteEntry:
    """One thing the palette can add: a layer type with preset parameters."""

    title: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    base: str = ""

    def to_mime(self) -> bytes:
        return json.dumps({"type": self.type, "params": self.params, "base": self.base}).encode()


def entries_for(layer: LayerType) -> list[PaletteEntry]:
    if not layer.presets:
        return [PaletteEntry(layer.name, layer.name, {}, layer.name.lower())]
    return [PaletteEntry(title, layer.name, dict(params), _base_name(title))
            for title, params in layer.presets.items()]


def _base_name(title: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in title.lower()).strip("_") or "node"


def palette_entries() -> dict[str, list[PaletteEntry]]:
    """Category → entries, categories in the canonical order, then any new ones."""
    cats = REGISTRY.categories()
    order = [c for c in CATEGORY_TITLES if c in cats] + [c for c in cats if c not in CATEGORY_TITLES]
    return {c: [e for layer in cats[c] for e in entries_for(layer)] for c in order}


def category_icon(category: str, size: int = 14) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(theme.category_color(category))
    p.drawRoundedRect(1, 1, size - 2, size - 2, 3, 3)
    p.end()
    return QIcon(pix)


def entry_tooltip(entry: PaletteEntry) -> str:
    layer = REGISTRY[entry.type]
    preset = ", ".join(f"{k}={v}" for k, v in entry.params.items())
    head = f"<b>{html.escape(entry.title)}</b>"
    if entry.title != entry.type:
        head += f" — {entry.type}" + (f"({html.escape(preset)})" if preset else "")
    return f"<p style='white-space:normal'>{head}<br>{html.escape(readable(layer.help))}</p>"


def match_rank(entry: PaletteEntry, category: str, words: list[str]) -> int | None:
    """How well ``entry`` matches the search words (lower is better), None if it does not:
    0 the title is the search, 1 the title starts with it, 2 title or type contain every word,
    3 the category, parameters or help text do (Sigmoid's help mentions ReLU, and must not
    win a search for "relu")."""
    query = " ".join(words)
    title = entry.title.lower()
    if not words:
        return 2
    if title == query or entry.type.lower() == query:
        return 0
    if title.startswith(query):
        return 1
    names = f"{title} {entry.type.lower()}"
    if all(w in names for w in words):
        return 2
    hay = " ".join([names, category, REGISTRY[entry.type].help, json.dumps(entry.params)]).lower()
    return 3 if all(w in hay for w in words) else None


class _Tree(QTreeWidget):
    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:  # noqa: N802 (Qt name)
        data = QMimeData()
        entries = [it.data(0, ENTRY_ROLE) for it in items if it.data(0, ENTRY_ROLE) is not None]
        if entries:
            data.setData(MIME_LAYER, entries[0].to_mime())
            data.setText(entries[0].title)
        return data

    def mimeTypes(self) -> list[str]:  # noqa: N802
        return [MIME_LAYER]


class PalettePanel(QWidget):
    """Search box plus a tree of categories and layer entries."""

    addRequested = Signal(str, dict, str)  # type, params, base name

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit(placeholderText="Search layers…")
        self.search.setClearButtonEnabled(True)
        self.tree = _Tree()
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(False)
        self.tree.setIndentation(10)
        self.tree.setIconSize(QSize(12, 12))
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setUniformRowHeights(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        self.no_match = QLabel()
        self.no_match.setWordWrap(True)
        self.no_match.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.no_match.hide()
        layout.addWidget(self.search)
        layout.addWidget(self.no_match)
        layout.addWidget(self.tree)
        self.search.textChanged.connect(self._on_search)
        self.search.returnPressed.connect(self._on_return)
        self.tree.itemActivated.connect(self._on_activated)
        self.rebuild()

    def rebuild(self) -> None:
        """(Re)generate the tree from the registry."""
        self.tree.clear()
        for category, entries in palette_entries().items():
            top = QTreeWidgetItem([CATEGORY_TITLES.get(category, category.title())])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            self.tree.addTopLevelItem(top)
            for entry in entries:
                child = QTreeWidgetItem([entry.title])
                child.setData(0, ENTRY_ROLE, entry)
                child.setIcon(0, category_icon(category))
                child.setToolTip(0, entry_tooltip(entry))
                child.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                               | Qt.ItemFlag.ItemIsDragEnabled)
                top.addChild(child)
            top.setExpanded(True)
        self._on_search(self.search.text())

    def entry_items(self) -> list[QTreeWidgetItem]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            out.extend(top.child(j) for j in range(top.childCount()))
        return out

    def find_item(self, title: str) -> QTreeWidgetItem | None:
        for item in self.entry_items():
            if item.text(0) == title:
                return item
        return None

    def _on_search(self, text: str) -> None:
        """Show the entries that mention every word — only those named so when there are any
        (Sigmoid's help mentions ReLU); the best match becomes current, so Enter adds it; no
        match says so."""
        words = text.lower().split()
        ranked = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                child = top.child(j)
                ranked.append((match_rank(child.data(0, ENTRY_ROLE), top.text(0), words), len(ranked), child))
        found = [r for r in ranked if r[0] is not None]
        cutoff = 2 if any(r[0] <= 2 for r in found) else 3
        for rank, _, child in ranked:
            child.setHidden(rank is None or rank > cutoff)
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            top.setHidden(all(top.child(j).isHidden() for j in range(top.childCount())))
        self.no_match.setVisible(bool(words) and not found)
        if words and not found:
            self.no_match.setText(f"No layer matches “{html.escape(text.strip())}”. "
                                  "Clear the search to see every layer.")
        if words and found:
            self.tree.setCurrentItem(min(found, key=lambda r: r[:2])[2])

    def _on_return(self) -> None:
        item = self.tree.currentItem()
        if item is not None and not item.isHidden():
            self._on_activated(item)

    def _on_activated(self, item: QTreeWidgetItem, column: int = 0) -> None:
        entry = item.data(0, ENTRY_ROLE)
        if entry is not None:
            self.addRequested.emit(entry.type, dict(entry.params), entry.base)
