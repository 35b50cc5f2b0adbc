"""A form generated from ParamSpec declarations (datasets, optimizers, schedules).

The same declarations the engine validates with produce the widgets here, from the factory
the inspector uses too (:mod:`studio.panels.editors`: int → spin box with the declared
range, float → spin box with adaptive steps for log-scale values such as a learning rate,
bool → check box, choice → combo box, lists → spin boxes or a line edit). Help texts
become tooltips; ``enabled_when`` greys out what does not apply. The form only reports
edits (``edited``); the caller turns them into undoable document commands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QWidget

from engine.layers.base import ParamSpec
from studio.panels.editors import make_editor
from studio.text import readable


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
            if full[name] is not None:
                setter(full[name])  # the factory's setters never emit
            self.editors[name].setEnabled(self.specs[name].is_enabled(full))
