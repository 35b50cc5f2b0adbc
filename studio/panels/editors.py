"""One widget factory for every parameter kind of a :class:`~engine.layers.base.ParamSpec`.

The inspector (layer parameters) and the parameter forms (datasets, optimizers, schedules)
both build their editors here, so a kind looks and behaves the same everywhere:

- ``int`` / ``float``: a spin box with the declared range (adaptive steps for log-scale
  floats such as a learning rate);
- ``bool`` / ``choice`` / ``str``: a check box / a combo box of the choices / a line edit;
- ``ints`` with a ``length``: :class:`IntsRow`, one spin box per element, each bounded by
  ``spec.element_range(i)`` and named by ``spec.labels``; a link button lets one number set
  every element (a square kernel);
- ``ints`` without a length: a line edit, ``1, 28, 28`` (or ``1×28×28``);
- ``choice_or_ints``: :class:`ChoiceOrInts`, a combo of the choices plus "custom", which
  enables the numbers (a padding of ``valid``, ``same`` or [ph, pw]).

:func:`make_editor` returns the widget and a setter. Edits call ``commit(value)``; the setter
shows a value without calling it. The widgets never judge a value: the caller hands it to the
engine (``studio.edits.set_param``), whose declaration accepts or refuses it with its message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.layers.base import ParamSpec

INT_LIMIT = 2**31 - 1
FLOAT_LIMIT = 1e12
CUSTOM = "custom"

Commit = Callable[[Any], None]
Setter = Callable[[Any], None]
Editor = tuple[QWidget, Setter]


@contextmanager
def silently(*widgets: QWidget) -> Iterator[None]:
    """Change widgets without their signals (showing a value is not an edit)."""
    before = [w.blockSignals(True) for w in widgets]
    try:
        yield
    finally:
        for w, was in zip(widgets, before, strict=True):
            w.blockSignals(was)


class FloatSpinBox(QDoubleSpinBox):
    """A double spin box that shows ``0.01`` rather than ``0.010000``."""

    def __init__(self) -> None:
        super().__init__()
        self.setDecimals(20)  # tiny bounds such as ε = 1e-12 must survive rounding

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt name)
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):  # noqa: D102
        if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d*)?([eE][-+]?\d*)?", text.strip()):
            ok = QValidator.State.Acceptable if _is_float(text) else QValidator.State.Intermediate
            return ok, text, pos
        return QValidator.State.Invalid, text, pos


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def parse_ints(text: str, spec: ParamSpec | None = None) -> Any:
    """``"1, 28, 28"`` or ``"1×28×28"`` → ``[1, 28, 28]``; anything else is passed through
    unchanged so the engine's declaration refuses it with its own message. With ``spec``:
    one of its choices (``same``) is kept as text, and one number for a fixed-length list
    stays a number (``5`` → kernel 5×5)."""
    word = text.strip().strip("\"'")
    if spec is not None and word in spec.choices:
        return word
    parts = [p for p in re.split(r"[\s,×x*()\[\]]+", text.strip()) if p]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        return text
    if not values:
        return text
    return values[0] if spec is not None and spec.length and len(values) == 1 else values


def format_ints(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def _int_range(lo: float | None, hi: float | None) -> tuple[int, int]:
    return (-INT_LIMIT if lo is None else max(int(lo), -INT_LIMIT),
            INT_LIMIT if hi is None else min(int(hi), INT_LIMIT))


def int_spin(lo: float | None, hi: float | None) -> QSpinBox:
    """A spin box over [lo, hi] (None: unbounded) that reports a value once it is entered."""
    spin = QSpinBox()
    spin.setRange(*_int_range(lo, hi))
    spin.setKeyboardTracking(False)
    return spin


class IntsRow(QWidget):
    """A fixed-length list of integers: one spin box per element, bounded per element and
    labelled by the declaration. While :attr:`link` is checked (offered when every element
    has the same bounds, and checked when the shown values are all equal) one number sets
    them all: ``5`` on a (3, 3) kernel gives (5, 5), as ``kernel_size=5`` does in PyTorch."""

    edited = Signal(tuple)

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        assert spec.length, f"{spec.name}: IntsRow needs a fixed length"
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        self.spins: list[QSpinBox] = []
        self.labels: list[QLabel] = []
        ranges = [spec.element_range(i) for i in range(spec.length)]
        for i, (lo, hi) in enumerate(ranges):
            name = spec.labels[i] if spec.labels else ""
            if name or i:
                label = QLabel(name or "×")
                row.addWidget(label)
                self.labels.append(label)
            spin = int_spin(lo, hi)
            spin.setAccessibleName(name or f"{spec.name} {i + 1}")
            spin.setToolTip(f"{name or f'element {i + 1}'}: {lo} to {'∞' if hi is None else hi}")
            spin.valueChanged.connect(lambda value, i=i: self._on_spin(i, value))
            row.addWidget(spin, 1)
            self.spins.append(spin)
            if name:
                label.setBuddy(spin)
        self.linkable = len(ranges) > 1 and len(set(ranges)) == 1
        self.link = QToolButton()
        self.link.setText("=")
        self.link.setCheckable(True)
        what = " and ".join(spec.labels) if spec.labels else "every element"
        self.link.setToolTip(f"Linked: one number sets {what}. Unlink to give each its own value.")
        self.link.setVisible(self.linkable)
        row.addWidget(self.link)

    def value(self) -> tuple[int, ...]:
        return tuple(spin.value() for spin in self.spins)

    def set_value(self, value: Any) -> None:
        """Show ``value`` (a list, or one integer for every element) without an edit."""
        values = [int(value)] * len(self.spins) if isinstance(value, int) else [int(v) for v in value]
        with silently(*self.spins, self.link):
            for spin, v in zip(self.spins, values, strict=False):
                spin.setValue(v)
            self.link.setChecked(self.linkable and len(set(values)) == 1)

    def _on_spin(self, index: int, value: int) -> None:
        if self.linkable and self.link.isChecked():
            with silently(*self.spins):
                for spin in self.spins:
                    spin.setValue(value)
        self.edited.emit(self.value())


class ChoiceOrInts(QWidget):
    """One of the declared words or numbers: a combo of the choices plus "custom"; the
    numbers (an :class:`IntsRow`, or a line edit for a list of any length) are enabled only
    for "custom". Choosing "custom" commits the numbers shown (the lower bounds at first)."""

    edited = Signal(object)

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.custom = CUSTOM if CUSTOM not in spec.choices else "numbers"
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(3)
        self.combo = QComboBox()
        self.combo.addItems([*spec.choices, self.custom])
        self.combo.currentTextChanged.connect(self._on_choice)
        column.addWidget(self.combo)
        self.numbers: IntsRow | QLineEdit
        if spec.length:
            self.numbers = IntsRow(spec)
            self.numbers.set_value([spec.element_range(i)[0] for i in range(spec.length)])
            self.numbers.edited.connect(lambda value: self.edited.emit(list(value)))
        else:
            self.numbers = QLineEdit()
            self.numbers.setPlaceholderText("e.g. 1, 28, 28")
            self.numbers.setText(str(spec.element_range(0)[0]))
            self.numbers.editingFinished.connect(lambda: self.edited.emit(self._numbers()))
        self.numbers.setEnabled(False)
        column.addWidget(self.numbers)

    def _numbers(self) -> Any:
        if isinstance(self.numbers, IntsRow):
            return list(self.numbers.value())
        return parse_ints(self.numbers.text(), self.spec)

    def set_value(self, value: Any) -> None:
        """Show a word (numbers disabled, keeping the last ones) or numbers, without an edit."""
        word = isinstance(value, str)
        with silently(self.combo, self.numbers):
            self.combo.setCurrentText(value if word else self.custom)
            if not word:
                if isinstance(self.numbers, IntsRow):
                    self.numbers.set_value(value)
                else:
                    self.numbers.setText(format_ints(value))
        self.numbers.setEnabled(not word)

    def _on_choice(self, text: str) -> None:
        custom = text == self.custom
        self.numbers.setEnabled(custom)
        self.edited.emit(self._numbers() if custom else text)


# ---- the factory, one function per kind --------------------------------------------------------
def _silent(widget: QWidget, apply: Setter) -> Setter:
    """A setter that shows a value in ``widget`` without emitting its edit signal."""
    def show(value: Any) -> None:
        with silently(widget):
            apply(value)
    return show


def _int_editor(spec: ParamSpec, commit: Commit) -> Editor:
    spin = int_spin(spec.min, spec.max)  # type: ignore[arg-type]
    spin.valueChanged.connect(commit)
    return spin, _silent(spin, lambda v: spin.setValue(int(v)))


def _float_editor(spec: ParamSpec, commit: Commit) -> Editor:
    box = FloatSpinBox()
    box.setRange(spec.min if spec.min is not None else -FLOAT_LIMIT,  # type: ignore[arg-type]
                 spec.max if spec.max is not None else FLOAT_LIMIT)  # type: ignore[arg-type]
    box.setKeyboardTracking(False)
    if spec.log_scale:
        box.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
    else:
        box.setSingleStep(0.1 if (spec.max or 1.0) > 1 else 0.01)  # type: ignore[operator]
    box.valueChanged.connect(commit)
    return box, _silent(box, lambda v: box.setValue(float(v)))


def _bool_editor(spec: ParamSpec, commit: Commit) -> Editor:
    check = QCheckBox()
    check.toggled.connect(commit)
    return check, _silent(check, lambda v: check.setChecked(bool(v)))


def _choice_editor(spec: ParamSpec, commit: Commit) -> Editor:
    combo = QComboBox()
    combo.addItems(list(spec.choices))
    combo.currentTextChanged.connect(commit)
    return combo, _silent(combo, lambda v: combo.setCurrentText(str(v)))


def _line_editor(commit: Commit, parse: Callable[[str], Any], text: Callable[[Any], str],
                 hint: str = "") -> Editor:
    line = QLineEdit()
    line.setPlaceholderText(hint)
    line.editingFinished.connect(lambda: commit(parse(line.text())))
    return line, _silent(line, lambda v: line.setText("" if v is None else text(v)))


def _ints_editor(spec: ParamSpec, commit: Commit) -> Editor:
    if not spec.length:
        return _line_editor(commit, lambda text: parse_ints(text, spec), format_ints, "e.g. 1, 28, 28")
    row = IntsRow(spec)
    row.edited.connect(lambda value: commit(list(value)))
    return row, row.set_value


def _choice_or_ints_editor(spec: ParamSpec, commit: Commit) -> Editor:
    widget = ChoiceOrInts(spec)
    widget.edited.connect(commit)
    return widget, widget.set_value


FACTORIES: dict[str, Callable[[ParamSpec, Commit], Editor]] = {
    "int": _int_editor,
    "float": _float_editor,
    "bool": _bool_editor,
    "choice": _choice_editor,
    "str": lambda spec, commit: _line_editor(commit, str, str),
    "ints": _ints_editor,
    "choice_or_ints": _choice_or_ints_editor,
}


def make_editor(spec: ParamSpec, commit: Commit) -> Editor:
    """The widget for ``spec`` (calling ``commit(value)`` on each edit) and its setter."""
    return FACTORIES[spec.kind](spec, commit)
