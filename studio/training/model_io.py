"""File → Save Trained Model… and File → Export Trained Model… (ONNX, PyTorch code, NumPy code).

The weights are the training controller's (a finished, stopped or loaded model; never one a
run is still updating). Writing is the engine's: ``engine.modelfile.save_model`` and
``engine.export.export_loaded`` write atomically, so a failure leaves no half-written file
or folder; their messages (a node that cannot be exported, onnx not installed, a folder that
is not ours) are shown as they are. A ``.bpmodel`` opened with File → Open arrives here
through ``FileController.modelLoaded`` and becomes the trained weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import BackpropError
from engine.export import FORMATS

NO_WEIGHTS = ("There are no trained weights for this network yet (or the network changed since they "
              "were trained). Train it first (F5), or open a trained .bpmodel file.")


class ExportDialog(QDialog):
    """Choose a format and where to write it; the path follows the format's file/folder kind."""

    def __init__(self, default_stem: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Trained Model")
        self.default_stem = default_stem
        self.format = QComboBox()
        for key, spec in FORMATS.items():
            self.format.addItem(spec["title"], key)
        self.path = QLineEdit()
        self.path.setMinimumWidth(360)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setEnabled(False)  # greyed explanatory text
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Write to", row)
        ok, cancel = QDialogButtonBox.StandardButton.Ok, QDialogButtonBox.StandardButton.Cancel
        buttons = QDialogButtonBox(ok | cancel)
        buttons.button(ok).setText("Export")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(buttons)
        self.format.currentIndexChanged.connect(self._format_changed)
        self._format_changed()

    def chosen(self) -> tuple[str, str]:
        return self.format.currentData(), self.path.text().strip()

    def select(self, fmt: str, path: str | Path) -> None:
        self.format.setCurrentIndex(self.format.findData(fmt))
        self.path.setText(str(path))

    def _format_changed(self) -> None:
        fmt = self.format.currentData()
        spec = FORMATS[fmt]
        folder = spec["target"] == "folder"
        stem = self.default_stem
        target = stem.parent / f"{stem.name}_{fmt}" if folder else stem.with_suffix(spec["suffix"])
        self.path.setText(str(target))
        self.note.setText({
            "onnx": "One .onnx file (opset 17, float32), input normalisation folded in; runs in onnxruntime, "
                    "opens in Netron. Needs the onnx package (pip install 'backprop-studio[export]').",
            "torch": "A folder: model.py (an nn.Module named after your nodes), state_dict.pt, weights.npz, "
                     "train.py (continues training; runs under torchrun) and a README.",
            "numpy": "A folder: model.py (NumPy only: python model.py INPUT.npz -o OUTPUT.npy), weights.npz "
                     "and a README.",
        }.get(fmt, ""))

    def _browse(self) -> None:
        fmt = self.format.currentData()
        if FORMATS[fmt]["target"] == "folder":
            start = str(Path(self.path.text()).parent)
            chosen = QFileDialog.getExistingDirectory(self, "Export into folder", start)
            if chosen:
                self.path.setText(str(Path(chosen) / Path(self.path.text()).name))
        else:
            chosen, _ = QFileDialog.getSaveFileName(self, "Export ONNX model", self.path.text(),
                                                    "ONNX (*.onnx)")
            if chosen:
                self.path.setText(chosen)

    def _accept(self) -> None:
        if not self.chosen()[1]:
            self.note.setText("Choose where to write the export.")
            return
        self.accept()


class ModelActions(QObject):
    """Save/export the trained weights of one window; adopt weights from an opened model file."""

    def __init__(self, window: Any, controller: Any) -> None:
        super().__init__(window)
        self.window, self.controller = window, controller
        self.save_action = QAction("Save &Trained Model…", window)
        self.save_action.setStatusTip("Write the trained weights with the graph to a .bpmodel file")
        self.save_action.triggered.connect(lambda: self.save_model())
        self.export_action = QAction("&Export Trained Model…", window)
        self.export_action.setShortcut("Ctrl+E")
        self.export_action.setStatusTip("Export the trained model to ONNX, PyTorch code or NumPy code")
        self.export_action.triggered.connect(lambda: self.export())
        window.addAction(self.save_action)
        window.addAction(self.export_action)
        self._add_to_file_menu()
        window.files.modelLoaded.connect(self._adopt)

    def _add_to_file_menu(self) -> None:
        menu = self.window.menus.get("file")
        if menu is None:
            return
        close = self.window.actions.get("close")
        before = close if close in menu.actions() else None
        menu.insertAction(before, self.save_action)
        menu.insertAction(before, self.export_action)
        menu.insertSeparator(before)

    def _default_stem(self) -> Path:
        doc = self.window.document
        name = (doc.path.stem if doc.path else "") or doc.graph.name or "model"
        folder = doc.path.parent if doc.path else Path.cwd()
        return folder / name

    def _trained(self) -> tuple[Any, dict[str, Any]] | None:
        trained = self.controller.trained()
        if trained is None:
            reason = ("Stop the run first (Shift+F5): its weights are still changing."
                      if self.controller.busy else NO_WEIGHTS)
            QMessageBox.information(self.window, "No trained model", reason)
        return trained

    def save_model(self, path: str | Path | None = None) -> bool:
        trained = self._trained()
        if trained is None:
            return False
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self.window, "Save Trained Model",
                                                  str(self._default_stem().with_suffix(".bpmodel")),
                                                  "Trained models (*.bpmodel)")
            if not path:
                return False
        from engine.modelfile import save_model

        model, meta = trained
        try:
            save_model(path, model, meta)
        except (BackpropError, OSError) as err:
            QMessageBox.warning(self.window, "Cannot save the trained model", str(err))
            return False
        self.window.show_status(f"Saved the trained model to {path}", 8000)
        return True

    def export(self, fmt: str | None = None, path: str | Path | None = None) -> bool:
        """Export (asking with :class:`ExportDialog` unless ``fmt`` and ``path`` are given)."""
        trained = self._trained()
        if trained is None:
            return False
        if fmt is None or path is None:
            dialog = ExportDialog(self._default_stem(), self.window)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return False
            fmt, path = dialog.chosen()
        from engine.export import export_loaded
        from engine.modelfile import LoadedModel

        model, meta = trained
        try:
            written = export_loaded(LoadedModel(model.graph, model, meta), fmt, path,
                                    source_name=self.window.document.graph.name or "")
        except (BackpropError, OSError) as err:
            QMessageBox.warning(self.window, "Cannot export the model", str(err))
            return False
        self.window.show_status(f"Exported {FORMATS[fmt]['title'].split(' (')[0]} to {written}", 10000)
        return True

    def _adopt(self, loaded: Any) -> None:
        try:
            self.controller.adopt(loaded.model, loaded.meta, self.window.document.graph)
        except BackpropError as err:
            QMessageBox.warning(self.window, "Cannot use the trained weights", str(err))
