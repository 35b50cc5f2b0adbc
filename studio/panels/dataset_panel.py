"""Choose the data: a built-in generator with its parameters, or a CSV/NPZ file; see it first.

The choice is the ``dataset`` entry of the graph's training block (plus ``val_split`` and
``test_split``), edited through the same undoable command as the training panel. A preview
is generated from exactly that entry by the engine (``make_dataset``): a scatter for 2-D
data, the curve for 1-D regression, a table of the first rows for a file, the class balance,
and a check that the graph's Input layer matches the examples' shape. A file that cannot be
read shows the engine's message; the entry stays as typed (nothing is lost).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.data import GENERATORS, class_balance, make_dataset, read_table_preview
from engine.errors import BackpropError
from studio.panels.editors import FloatSpinBox, format_ints, parse_ints
from studio.panels.image_samples import FILE_FILTER, ImageSampleGrid, file_spec
from studio.panels.param_form import ParamForm
from studio.panels.training_panel import commit_training
from studio.plots.boundary import class_color
from studio.plots.common import palette_colors, theme_plot_widget
from studio.text import readable

PREVIEW_POINTS = 1500


class DatasetPanel(QWidget):
    """Editor and preview of the document's dataset (see module docstring)."""

    def __init__(self, document: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self._loading = False
        self.dataset: Any = None
        self.preview_error = ""
        self._previewed: dict[str, Any] | None = None
        inner = QWidget()
        col = QVBoxLayout(inner)
        col.setContentsMargins(6, 6, 6, 6)
        self.lock_note = QLabel()
        self.lock_note.setWordWrap(True)
        self.lock_note.hide()
        col.addWidget(self.lock_note)
        col.addLayout(self._build_source())
        col.addWidget(self._build_builtin())
        col.addWidget(self._build_file())
        col.addWidget(self._build_split())
        col.addWidget(self._build_preview(), 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self.body = inner
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(120)
        self._preview_timer.timeout.connect(self.update_preview)
        document.changed.connect(self.load)
        document.graphReset.connect(self.load)
        document.lockChanged.connect(self._on_lock)
        self.load()

    # -- construction ---------------------------------------------------------------------------
    def _build_source(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.src_builtin = QRadioButton("Built-in")
        self.src_file = QRadioButton("File or image folder")
        self.src_group = QButtonGroup(self)
        self.src_group.addButton(self.src_builtin)
        self.src_group.addButton(self.src_file)
        self.src_builtin.toggled.connect(lambda on: self._switch_source(on))
        row.addWidget(self.src_builtin)
        row.addWidget(self.src_file)
        row.addStretch(1)
        return row

    def _build_builtin(self) -> QGroupBox:
        box = QGroupBox("Built-in dataset")
        form = QFormLayout(box)
        self.generator = QComboBox()
        for name, spec in GENERATORS.items():
            self.generator.addItem(name, name)
            self.generator.setItemData(self.generator.count() - 1, readable(spec.help), 3)  # tooltip role
        self.generator.currentIndexChanged.connect(
            lambda _: self._set_generator(self.generator.currentData()))
        self.gen_help = QLabel()
        self.gen_help.setWordWrap(True)
        self.gen_form = ParamForm()
        self.gen_form.edited.connect(self._set_generator_param)
        form.addRow("dataset", self.generator)
        form.addRow(self.gen_help)
        form.addRow(self.gen_form)
        self.builtin_box = box
        return box

    def _build_file(self) -> QGroupBox:
        box = QGroupBox("Data file")
        form = QFormLayout(box)
        self.path = QLineEdit()
        self.path.setPlaceholderText("data.csv (relative to the graph file)")
        self.path.editingFinished.connect(lambda: self._set_file("path", self.path.text().strip()))
        browse = QPushButton("File…")
        browse.setToolTip("a CSV/TSV table, an NPZ (X, y), or MNIST-style IDX images")
        browse.clicked.connect(self._browse)
        folder = QPushButton("Folder…")
        folder.setToolTip("a folder of PNG/JPEG images with one sub-folder per class")
        folder.clicked.connect(self._browse_folder)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        row.addWidget(folder)
        self.labels = QLineEdit()
        self.labels.setPlaceholderText("train-labels-idx1-ubyte")
        self.labels.setToolTip("the IDX label file that belongs to the IDX images")
        self.labels.editingFinished.connect(lambda: self._set_file("labels", self.labels.text().strip()))
        self.image_size = QLineEdit()
        self.image_size.setPlaceholderText("as the images are, or e.g. 28, 28")
        self.image_size.setToolTip("resize every image to height, width (needed when their sizes differ)")
        self.image_size.editingFinished.connect(
            lambda: self._set_file("size", parse_ints(self.image_size.text()) if self.image_size.text().strip()
                                   else None))
        self.target = QComboBox()
        self.target.setToolTip("the column the network predicts; the other columns are its inputs")
        self.target.activated.connect(lambda _: self._set_file("target", self.target.currentText() or None))
        self.task = QComboBox()
        for label, value in (("auto", None), ("classification", "classification"),
                             ("regression", "regression")):
            self.task.addItem(label, value)
        self.task.setToolTip("auto: integer or text targets with few values are classes, "
                             "anything else regression")
        self.task.activated.connect(lambda _: self._set_file("task", self.task.currentData()))
        self.table = QTableWidget(0, 0)
        self.table.setMinimumHeight(120)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        form.addRow("file", row)
        form.addRow("labels file", self.labels)
        form.addRow("image size", self.image_size)
        form.addRow("target column", self.target)
        form.addRow("task", self.task)
        form.addRow(self.table)
        self.file_box = box
        self.file_form = form
        return box

    def _build_split(self) -> QGroupBox:
        box = QGroupBox("Held-out data")
        form = QFormLayout(box)
        self.val = FloatSpinBox()
        self.val.setRange(0.0, 0.9)
        self.val.setSingleStep(0.05)
        self.val.setKeyboardTracking(False)
        self.val.setToolTip("fraction held out for validation (validation loss and accuracy per epoch)")
        self.val.valueChanged.connect(lambda v: self._set_split("val_split", v))
        self.test = FloatSpinBox()
        self.test.setRange(0.0, 0.9)
        self.test.setSingleStep(0.05)
        self.test.setKeyboardTracking(False)
        self.test.setToolTip("fraction held out for a final test score (never seen during training)")
        self.test.valueChanged.connect(lambda v: self._set_split("test_split", v))
        form.addRow("validation split", self.val)
        form.addRow("test split", self.test)
        return box

    def _build_preview(self) -> QGroupBox:
        box = QGroupBox("Preview")
        col = QVBoxLayout(box)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(180)
        self.plot.setMenuEnabled(False)
        theme_plot_widget(self.plot)
        self.scatter = pg.ScatterPlotItem(size=5)
        self.plot.addItem(self.scatter)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.RichText)  # the messages are HTML-escaped
        self.error.setStyleSheet("color: #e5484d")
        self.fix_input = QPushButton("Set the Input shape to match")
        self.fix_input.clicked.connect(self._match_input)
        self.fix_input.hide()
        self.samples = ImageSampleGrid()  # image datasets: samples with their labels, instead of the scatter
        self.samples.hide()
        col.addWidget(self.plot, 1)
        col.addWidget(self.samples)
        col.addWidget(self.summary)
        col.addWidget(self.error)
        col.addWidget(self.fix_input)
        return box

    # -- edits ----------------------------------------------------------------------------------
    def _spec(self) -> dict[str, Any]:
        spec = self.document.graph.training.get("dataset") or {}
        return dict(spec) if isinstance(spec, dict) else {}

    def _commit(self, mutate: Any, label: str) -> None:
        if self._loading:
            return
        problem = commit_training(self.document, mutate, label)
        if problem:
            self.error.setText(html.escape(problem))
            self.document.editRefused.emit(problem)
            self.load()

    def _set_dataset(self, spec: dict[str, Any], label: str = "dataset") -> None:
        def mutate(b: dict[str, Any]) -> None:
            b["dataset"] = spec
        self._commit(mutate, label)

    def _switch_source(self, builtin: bool) -> None:
        if self._loading:
            return
        spec = self._spec()
        if builtin and "name" not in spec:
            self._set_dataset({"name": self.generator.currentData() or "xor"}, "dataset source")
        elif not builtin and "path" not in spec:
            self.builtin_box.setVisible(False)
            self.file_box.setVisible(True)
            self.path.setFocus()

    def _set_generator(self, name: str) -> None:
        spec = self._spec()
        if spec.get("name") != name:
            keep = {k: v for k, v in spec.items() if k in ("n", "noise", "seed")}
            names = {p.name for p in GENERATORS[name].params}
            self._set_dataset({"name": name, **{k: v for k, v in keep.items() if k in names}})

    def _set_generator_param(self, key: str, value: Any) -> None:
        spec = self._spec()
        spec[key] = value
        self._set_dataset(spec, f"dataset {key}")

    def _set_file(self, key: str, value: Any) -> None:
        spec = self._spec()
        if "path" not in spec:
            spec = {"path": ""}
        if value in (None, ""):
            spec.pop(key, None)
            if key == "path":
                spec["path"] = ""
        else:
            spec[key] = value
        if key == "path":
            spec = {k: v for k, v in spec.items() if k == "task"}
            full = Path(value) if Path(value).is_absolute() else self._base_dir() / value
            spec.update(file_spec(value, full, lambda p: self._relative(p)))
        self._set_dataset(spec, f"dataset {key}")

    def _set_split(self, key: str, value: float) -> None:
        def mutate(b: dict[str, Any]) -> None:
            if value:
                b[key] = value
            else:
                b.pop(key, None)
        self._commit(mutate, key.replace("_", " "))

    def _browse(self) -> None:
        start = str(self._base_dir())
        chosen, _ = QFileDialog.getOpenFileName(self, "Choose a data file", start, FILE_FILTER)
        if chosen:
            self._set_file("path", self._relative(Path(chosen)))

    def _browse_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Choose an image folder (one sub-folder per class)",
                                                  str(self._base_dir()))
        if chosen:
            self._set_file("path", self._relative(Path(chosen)))

    def _base_dir(self) -> Path:
        path = self.document.path
        return Path(path).resolve().parent if path else Path.cwd()

    def _relative(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self._base_dir()))
        except ValueError:
            return str(path.resolve())

    def _match_input(self) -> None:
        from studio import edits

        graph = self.document.graph
        inputs = graph.input_nodes()
        if self.dataset is None or not inputs:
            return
        shape = list(self.dataset.feature_shape)
        self.document.attempt(edits.set_param, self.document, inputs[0], "shape", shape)

    # -- showing the document -------------------------------------------------------------------
    def load(self) -> None:
        self._loading = True
        try:
            self._load()
        finally:
            self._loading = False
        if self._spec() != self._previewed:
            self.dataset = None  # stale until the (debounced) preview of the new entry
        self._preview_timer.start()

    def _load(self) -> None:
        b = self.document.graph.training
        spec = self._spec()
        is_file = "path" in spec
        quiet = (self.src_builtin, self.src_file, self.generator, self.val, self.test, self.path, self.target,
                 self.task, self.labels, self.image_size)
        for w in quiet:
            w.blockSignals(True)
        try:
            self.src_file.setChecked(is_file)
            self.src_builtin.setChecked(not is_file)
            self.builtin_box.setVisible(not is_file)
            self.file_box.setVisible(is_file)
            if not is_file:
                name = spec.get("name", "xor")
                self.generator.setCurrentIndex(max(0, self.generator.findData(name)))
                if name in GENERATORS:
                    self.gen_help.setText(readable(GENERATORS[name].help))
                    self.gen_form.set_specs(GENERATORS[name].params)
                    self.gen_form.set_values(spec)
            else:
                self.path.setText(str(spec.get("path", "")))
                self.labels.setText(str(spec.get("labels", "")))
                self.image_size.setText(format_ints(spec["size"]) if "size" in spec else "")
                self._show_file_rows(spec)
                self.task.setCurrentIndex(max(0, self.task.findData(spec.get("task"))))
            self.val.setValue(float(b.get("val_split", 0.0) or 0.0))
            self.test.setValue(float(b.get("test_split", 0.0) or 0.0))
        finally:
            for w in quiet:
                w.blockSignals(False)

    def update_preview(self) -> None:
        """Build the dataset from the document's entry and show it (or the engine's reason)."""
        spec = self._spec()
        self._previewed = spec
        self.error.clear()
        self.fix_input.hide()
        if "path" in spec:
            self._load_table(spec)
        try:
            ds = make_dataset(spec, self._base_dir())
        except BackpropError as err:
            self.dataset = None
            self.preview_error = str(err)
            self.error.setText(html.escape(str(err)))
            self.summary.clear()
            self.scatter.setData([], [])
            self.samples.set_dataset(None)
            return
        self.dataset, self.preview_error = ds, ""
        self._show(ds)

    def _load_table(self, spec: dict[str, Any]) -> None:
        path = spec.get("path") or ""
        self.target.blockSignals(True)
        self.target.clear()
        self.table.clear()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        try:
            if not path:
                return
            full = Path(path) if Path(path).is_absolute() else self._base_dir() / path
            header, rows = read_table_preview(full, max_rows=20)
        except BackpropError:
            return  # make_dataset reports the same problem with its own message
        finally:
            self.target.blockSignals(False)
        self.target.blockSignals(True)
        self.target.addItems(header)
        target = spec.get("target")
        if target in header:
            self.target.setCurrentText(target)
        elif header:
            self.target.setCurrentIndex(len(header) - 1)
        self.target.blockSignals(False)
        self.table.setColumnCount(len(header))
        self.table.setHorizontalHeaderLabels(header)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(cell))

    def _show(self, ds: Any) -> None:
        X = np.asarray(ds.X, np.float64).reshape(len(ds), -1)
        idx = np.linspace(0, len(ds) - 1, min(len(ds), PREVIEW_POINTS)).astype(int)
        shape = "×".join(map(str, ds.feature_shape))
        parts = [f"<b>{len(ds):,}</b> examples", f"features {shape}", ds.task]
        balance = class_balance(ds)
        if balance:
            counts = ", ".join(f"{html.escape(str(k))}: {v}" for k, v in balance.items())
            parts.append(f"classes — {counts}")
        self.summary.setText(" · ".join(parts))
        image = ds.layout == "image"
        self.plot.setVisible(not image)
        self.samples.set_dataset(ds if image else None)
        if image:
            self._check_input(ds)
            return
        _, fg, _ = palette_colors()
        if ds.task == "classification" and X.shape[1] >= 2:
            y = np.asarray(ds.y).reshape(-1).astype(int)
            brushes = [pg.mkBrush(class_color(c)) for c in range(max(ds.n_classes, 1))]
            self.scatter.setData(X[idx, 0], X[idx, 1], brush=[brushes[c] for c in y[idx]], pen=None, size=5)
        elif X.shape[1] == 1:
            t = np.asarray(ds.y, np.float64).reshape(len(ds), -1)[:, 0]
            self.scatter.setData(X[idx, 0], t[idx], brush=pg.mkBrush(fg), pen=None, size=4)
        else:
            self.scatter.setData([], [])
            self.summary.setText(self.summary.text() + " · (no 2-D picture: more than two features)")
        self.plot.autoRange()
        self._check_input(ds)

    def _show_file_rows(self, spec: dict[str, Any]) -> None:
        """Labels for IDX images, a size for image folders, a target column for tables."""
        from engine.data.image_files import looks_like_idx

        raw = str(spec.get("path") or "")
        full = Path(raw) if Path(raw).is_absolute() else self._base_dir() / raw
        folder = bool(raw) and full.is_dir()
        idx = "labels" in spec or (bool(raw) and looks_like_idx(full))
        table = not folder and not idx and full.suffix.lower() != ".npz"
        self.file_form.setRowVisible(self.labels, idx)
        self.file_form.setRowVisible(self.image_size, folder)
        self.file_form.setRowVisible(self.target, table)
        self.file_form.setRowVisible(self.table, table)

    def _check_input(self, ds: Any) -> None:
        graph = self.document.graph
        inputs = graph.input_nodes()
        if not inputs:
            return
        declared = tuple(graph.nodes[inputs[0]].params.get("shape", ()))
        if declared != tuple(ds.feature_shape):
            name = html.escape(inputs[0])
            self.error.setText(f"Input '{name}' expects examples of shape {declared} but this dataset has "
                               f"{tuple(ds.feature_shape)}.")
            self.fix_input.setVisible(self.document.editable)

    def _on_lock(self, reason: str) -> None:
        self.body.setEnabled(not reason)
        self.lock_note.setVisible(bool(reason))
        self.lock_note.setText(f"Locked: {reason}" if reason else "")
