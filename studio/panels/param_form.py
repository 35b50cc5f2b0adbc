"""A form generated from ParamSpec declarations (datasets, optimizers, schedules).

The same declarations the engine validates with produce the widgets here: int → spin box
with the declared range, float → spin box (adaptive steps for log-scale values such as a
learning rate), bool → check box, choice → combo box, anything else → line edit. Help texts
become tooltips; ``enabled_when`` greys out what does not apply. The form only reports
edits (``edited``); the caller turns them into undoable document commands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLineEdit, QSpinBox, QWidget

from engine.layers.base import ParamSpec
from studio.panels.inspector import FloatSpinBox
from studio.text import readable

INT_LIMIT = 2**31 - 1
FLOAT_LIMIT = 1e12


def make_editor(spec: ParamSpec, commit: Callable[[Any], None]) -> tuple[QWidget, Callable[[Any], None]]:
    """A widget for ``spec`` calling ``commit(value)`` on edits, and its value setter."""
    if spec.kind == "int":
        w = QSpinBox()
        w.setRange(int(spec.min) if spec.min is not None else -INT_LIMIT,
                   int(min(spec.max, INT_LIMIT)) if spec.max is not None else INT_LIMIT)
        w.setKeyboardTracking(False)
        w.valueChanged.connect(commit)
        return w, lambda v: w.setValue(int(v))
    if spec.kind == "float":
        f = FloatSpinBox()
        f.setRange(spec.min if spec.min is not None else -FLOAT_LIMIT,
                   spec.max if spec.max is not None else FLOAT_LIMIT)
        f.setKeyboardTracking(False)
        if spec.log_scale:
            f.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        else:
            f.setSingleStep(0.1 if (spec.max or 1.0) > 1 else 0.01)
        f.valueChanged.connect(commit)
        return f, lambda v: f.setValue(float(v))
    if spec.kind == "bool":
        c = QCheckBox()
        c.toggled.connect(commit)
        return c, lambda v: c.setChecked(bool(v))
    if spec.kind == "choice":
        box = QComboBox()
        box.addItems(list(spec.choices))
        box.currentTextChanged.connect(commit)
        return box, lambda v: box.setCurrentText(str(v))
    line = QLineEdit()
    line.editingFinished.connect(lambda: commit(line.text()))
    return line, lambda v: line.setText("" if v is None else str(v))


class ParamForm(QWidget):
    """Rows for a list of ParamSpecs; ``edited(name, value)`` on every user edit."""

    edited = Signal(str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.specs: dict[str, ParamSpec] = {}
        self.editors: dict[str, QWidget] = {}
        self.setters: dict[str, Callable[[Any], None]] = {}

    def set_specs(self, specs: Sequence[ParamSpec], skip: Sequence[str] = ()) -> None:
        """Rebuild the rows (only when the declaration changes, e.g. another optimizer)."""
        wanted = [s for s in specs if s.name not in skip]
        if [s.name for s in wanted] == list(self.specs) and all(self.specs[s.name] == s for s in wanted):
            return
        while self.form.rowCount():
            self.form.removeRow(0)
        self.specs, self.editors, self.setters = {}, {}, {}
        for spec in wanted:
            editor, setter = make_editor(spec, lambda v, n=spec.name: self.edited.emit(n, v))
            tip = f"{readable(spec.help)}\nallowed: {spec.describe_range()}"
            editor.setToolTip(tip)
            self.form.addRow(spec.name.replace("_", " "), editor)
            label = self.form.labelForField(editor)
            if label is not None:
                label.setToolTip(tip)
            self.specs[spec.name], self.editors[spec.name], self.setters[spec.name] = spec, editor, setter

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Show ``values`` (defaults for missing keys) without emitting ``edited``."""
        full = {name: values.get(name, spec.default) for name, spec in self.specs.items()}
        for name, setter in self.setters.items():
            editor = self.editors[name]
            editor.blockSignals(True)
            try:
                if full[name] is not None:
                    setter(full[name])
            finally:
                editor.blockSignals(False)
            editor.setEnabled(self.specs[name].is_enabled(full))
