"""File → Import ONNX…: a model from PyTorch (through ``torch.onnx.export``) or any ONNX file
opens as a new, untitled document holding its weights.

The engine does the import (``engine.importers.import_model``): all or nothing, with a message
naming the ONNX node and why when something has no Backprop Studio layer; the current
document stays as it was then. An imported graph is laid out with the auto-layout, and its
weights arrive through ``FileController.modelLoaded`` exactly like a ``.bpmodel`` opened with
File → Open: evaluation and previews use them, Train (F5) continues from them, File → Export
writes them. Saving asks for a graph file name.

A model from elsewhere has no training setup of ours: choosing its dataset (or loss, or
optimizer) would, for any other document, mean a fresh start. For an imported document the
weights are kept through such changes as long as its layers stay as they are: fine-tuning
is what importing is for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from engine.errors import BackpropError
from studio import edits
from studio.canvas.node_item import card_size

IMPORT_FILTER = "ONNX models (*.onnx);;All files (*)"


class ImportActions(QObject):
    """The File → Import ONNX… action of one window."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.action = QAction("&Import ONNX…", window)
        self.action.setShortcut("Ctrl+I")
        self.action.setStatusTip("Open an ONNX model (e.g. from torch.onnx.export) as a graph with its weights")
        self.action.triggered.connect(lambda: self.import_onnx())
        window.addAction(self.action)
        window.actions["import_onnx"] = self.action
        self._add_to_file_menu()
        self.imported: Any = None  # the LoadedModel of the document, while it is an imported one
        window.document.graphReset.connect(self._on_graph_reset)
        window.document.changed.connect(self._on_document_changed)

    def _add_to_file_menu(self) -> None:
        menu = self.window.menus.get("file")
        if menu is None:
            return
        actions = menu.actions()
        recent = self.window.menus.get("recent")
        anchor = recent.menuAction() if recent is not None else self.window.actions.get("open")
        index = actions.index(anchor) + 1 if anchor in actions else len(actions)
        menu.insertAction(actions[index] if index < len(actions) else None, self.action)

    def import_onnx(self, path: str | Path | None = None) -> bool:
        """Import ``path`` (asks for one if None); False when refused, cancelled or failed."""
        window, files = self.window, self.window.files
        document = window.document
        if not document.editable:
            QMessageBox.warning(window, "Document locked", f"cannot replace the document now: "
                                f"{document.locked_reason}")
            return False
        if not files.maybe_save():
            return False
        if path is None:
            start = str(document.path.parent) if document.path else str(Path.cwd())
            chosen, _ = QFileDialog.getOpenFileName(window, "Import ONNX model", start, IMPORT_FILTER)
            if not chosen:
                return False
            path = chosen
        loaded = self._load(Path(path))
        if loaded is None:
            return False
        graph = loaded.graph.copy()
        if edits.needs_layout(graph):
            edits.apply_layout_in_place(graph, card_size)
        document.reset(graph, None)
        self.imported = loaded
        files.modelLoaded.emit(loaded)
        window.show_status(f"Imported {Path(path).name}: {len(graph.nodes)} layers with their weights", 10000)
        files.opened.emit()
        return True

    # -- fine-tuning: the weights stay through changes of the training setup ----------------------
    def _on_graph_reset(self) -> None:
        self.imported = None  # another document (import_onnx sets it again for its own)

    def _on_document_changed(self) -> None:
        controller = self.window.training.controller
        if self.imported is None or controller.busy or controller.model is None or controller.trained() is not None:
            return
        model, graph = controller.model, self.window.document.graph
        if _layers(graph) != _layers(model.graph):
            return  # the network itself was edited: its weights no longer fit
        from engine.compiler import compile_graph

        try:
            kept = compile_graph(graph.copy(), dtype=graph.training.get("dtype", "float32"))
            kept.restore(model.snapshot())
            controller.adopt(kept, self.imported.meta, graph)
        except BackpropError:
            return
        self.window.show_status("The imported weights stay: Continue Training (Ctrl+F5) fine-tunes them", 8000)

    def _load(self, path: Path) -> Any:
        from engine.importers import import_model

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            return import_model(path)
        except BackpropError as err:
            failure = str(err)
        finally:
            QApplication.restoreOverrideCursor()
        QMessageBox.warning(self.window, "Cannot import the model", failure)
        self.window.show_status(failure)
        return None


def _layers(graph: Any) -> dict[str, Any]:
    """The network without its training setup, names or positions: what the weights fit."""
    d = graph.to_dict(ui=False, sort=True)
    for key in ("training", "name", "description"):
        d.pop(key, None)
    return d
