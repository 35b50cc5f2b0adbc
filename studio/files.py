"""File handling for a window: new, open, templates, save, save as, recent files, and the
"save changes?" question.

Loading and writing are the engine's (``Graph.load``, ``Graph.save`` which writes atomically:
temporary file, fsync, rename). A file that fails to load shows the engine's message and the
current document stays as it was. Dialogs are the static QMessageBox / QFileDialog calls so
tests can replace them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from engine import resources
from engine.errors import BackpropError
from engine.graph import Graph
from studio import edits
from studio.canvas.node_item import card_size
from studio.document import Document

FILE_FILTER = "Backprop Studio graphs (*.json);;All files (*)"
OPEN_FILTER = ("Graphs and trained models (*.json *.bpmodel);;Graphs (*.json);;Trained models (*.bpmodel);;"
               "All files (*)")
MODEL_SUFFIX = ".bpmodel"
MAX_RECENT = 10
RECENT_KEY = "files/recent"


def examples_dir() -> Path:
    """Where "New from template" looks: ``$BACKPROP_EXAMPLES`` or the program's examples/
    (the checkout's, or the installed wheel's: :mod:`engine.resources`)."""
    env = os.environ.get("BACKPROP_EXAMPLES")
    if env:
        return Path(env)
    return resources.examples_dir()


def templates() -> list[tuple[Path, str, str]]:
    """(path, title, description) of every graph file in :func:`examples_dir`, sorted."""
    folder = examples_dir()
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        title, description = path.stem.replace("_", " "), ""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            description = str(data.get("description", ""))
        except (OSError, ValueError, AttributeError):
            pass
        out.append((path, title, description))
    return out


def recent_files() -> list[str]:
    value = QSettings().value(RECENT_KEY, [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or [])]


def remember_recent(path: Path) -> None:
    path_s = str(Path(path).resolve())
    items = [p for p in recent_files() if p != path_s]
    QSettings().setValue(RECENT_KEY, [path_s] + items[: MAX_RECENT - 1])


def forget_recent(path: str | None = None) -> None:
    QSettings().setValue(RECENT_KEY, [] if path is None else [p for p in recent_files() if p != path])


def load_for_display(path: Path) -> Graph:
    """Load with the engine and lay out a graph saved without positions."""
    graph = Graph.load(path)
    if edits.needs_layout(graph):
        edits.apply_layout_in_place(graph, card_size)
    return graph


class FileController(QObject):
    """The file commands of one window, operating on its Document."""

    opened = Signal()  # a document was opened or created (the view fits it)
    modelLoaded = Signal(object)  # engine.modelfile.LoadedModel: a .bpmodel was opened

    def __init__(self, document: Document, parent_widget: QWidget,
                 status: Callable[[str], None] = lambda text: None) -> None:
        super().__init__(parent_widget)
        self.document = document
        self.widget = parent_widget
        self.status = status

    # -- the question --------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """True when it is fine to drop the current document (saved, discarded)."""
        if not self.document.modified:
            return True
        answer = QMessageBox.question(
            self.widget, "Unsaved changes",
            f"Save the changes to “{self.document.display_name}” before closing it?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def _error(self, title: str, message: str) -> None:
        QMessageBox.warning(self.widget, title, message)
        self.status(message)

    # -- commands ----------------------------------------------------------------------------
    def new(self) -> bool:
        if not self._can_replace():
            return False
        self.document.reset(Graph())
        self.opened.emit()
        return True

    def open(self, path: str | Path | None = None) -> bool:
        """Open ``path`` (asks for one if None). On failure the current document is untouched."""
        if not self._can_replace():
            return False
        if path is None:
            start = str(self.document.path.parent) if self.document.path else str(examples_dir())
            chosen, _ = QFileDialog.getOpenFileName(self.widget, "Open graph or trained model", start,
                                                    OPEN_FILTER)
            if not chosen:
                return False
            path = chosen
        path = Path(path)
        if path.suffix.lower() == MODEL_SUFFIX:
            return self._open_model(path)
        try:
            graph = load_for_display(path)
        except BackpropError as err:
            self._error("Cannot open graph", str(err))
            return False
        self.document.reset(graph, path)
        remember_recent(path)
        self.status(f"Opened {path.name}: {len(graph.nodes)} nodes")
        self.opened.emit()
        return True

    def _open_model(self, path: Path) -> bool:
        """A trained model: its graph becomes an untitled document, its weights the trained ones."""
        from engine.modelfile import load_model

        try:
            loaded = load_model(path)
        except BackpropError as err:
            self._error("Cannot open trained model", str(err))
            return False
        graph = loaded.graph.copy()
        if edits.needs_layout(graph):
            edits.apply_layout_in_place(graph, card_size)
        self.document.reset(graph, None, origin=path.name)  # saving asks for a graph file name
        remember_recent(path)
        self.modelLoaded.emit(loaded)
        self.status(f"Opened trained model {path.name}: {len(graph.nodes)} nodes; "
                    "Continue Training (Ctrl+F5) trains on from its weights, File → Export writes them")
        self.opened.emit()
        return True

    def open_template(self, path: str | Path) -> bool:
        """Start an untitled document from an example file (saving asks for a name)."""
        if not self._can_replace():
            return False
        try:
            graph = load_for_display(Path(path))
        except BackpropError as err:
            self._error("Cannot open template", str(err))
            return False
        self.document.reset(graph, None)
        self.status(f"New document from template {Path(path).name}")
        self.opened.emit()
        return True

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self._write(self.document.path)

    def save_as(self) -> bool:
        doc = self.document
        start = str(doc.path) if doc.path else str(Path.cwd() / f"{doc.graph.name or 'untitled'}.json")
        chosen, _ = QFileDialog.getSaveFileName(self.widget, "Save graph as", start, FILE_FILTER)
        if not chosen:
            return False
        path = Path(chosen)
        if not path.suffix:
            path = path.with_suffix(".json")
        return self._write(path)

    def _write(self, path: Path) -> bool:
        try:
            self.document.save(path)
        except (BackpropError, OSError) as err:
            self._error("Cannot save graph", f"{path}: {err}")
            return False
        remember_recent(path)
        self.status(f"Saved {path.name}")
        return True

    def _can_replace(self) -> bool:
        if not self.document.editable:
            self._error("Document locked", f"cannot replace the document now: {self.document.locked_reason}")
            return False
        return self.maybe_save()
