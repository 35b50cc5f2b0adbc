"""Live size arithmetic of a convolution or pooling node, under the inspector's form.

The engine computes everything (:class:`engine.layers.conv_geometry.Arithmetic`, declared
by the layer as ``LayerType.arithmetic``): this box shows the output-size formula of every
axis filled in with the node's current numbers, e.g. ``height: (28 − 5 + 2·2)/1 + 1 = 28``,
the weight count ``(5·5·1 + 1)·6 = 156``, and, when a division is not exact, what happens
(which rows or columns are dropped) and one button per nearby padding or stride that makes
it divide. A button is an ordinary parameter edit (``studio.edits.set_param``, one
QUndoCommand), so Undo puts the old value back.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.errors import BackpropError
from engine.layers.conv_geometry import Arithmetic, Axis
from studio import edits
from studio.document import Document

WARNING_COLOR = "#c98a12"
MAX_FIXES = 4


@dataclass(frozen=True)
class Fix:
    """One parameter edit that makes the size division exact."""

    param: str  # "padding" or "stride"
    value: Any  # the new value as the inspector would enter it: [ph, pw], or an int for 1-D
    label: str  # "padding 1 → 6×15×15"


def arithmetic_of(doc: Document, node_id: str) -> Arithmetic | str | None:
    """The node's size arithmetic; None for layers without it; a reason string when the
    input shape is not known yet (unconnected, or a problem upstream) or does not fit."""
    node = doc.graph.node(node_id)
    if node.layer.arithmetic is None:
        return None
    in_shapes = doc.report.in_shapes.get(node_id) or []
    if not in_shapes or any(s is None for s in in_shapes):
        return "The formula appears once the input shape is known (connect the input)."
    try:
        return node.layer.arithmetic(node.params, in_shapes)
    except BackpropError as err:
        return str(err)


def _current(axes: tuple[Axis, ...], param: str) -> list[int]:
    return [a.before for a in axes] if param == "padding" else [a.stride for a in axes]


def _options(axis: Axis, param: str) -> tuple[int, ...]:
    return axis.padding_fixes() if param == "padding" else axis.stride_fixes()


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def fixes_for(doc: Document, node_id: str, arithmetic: Arithmetic) -> list[Fix]:
    """Paddings, then strides, nearest to the current ones that make every axis they touch
    divide exactly; each labelled with the output shape it gives."""
    node = doc.graph.node(node_id)
    in_shapes = doc.report.in_shapes.get(node_id) or []
    out: list[Fix] = []
    for param in ("padding", "stride"):
        if param not in {s.name for s in node.layer.params}:
            continue
        spec = node.layer.param_spec(param)
        values = sorted({v for a in arithmetic.axes if not a.exact for v in _options(a, param)})
        for v in values:
            new = _current(arithmetic.axes, param)
            changed = [i for i, a in enumerate(arithmetic.axes) if not a.exact and v in _options(a, param)]
            for i in changed:
                new[i] = v
            value: Any = new[0] if spec.kind == "int" else new
            try:
                trial = node.layer.validate_params({**node.params, param: value}, where=f"node '{node_id}'")
                result = node.layer.arithmetic(trial, in_shapes)  # type: ignore[misc]
            except BackpropError:
                continue
            where = ""
            if len(arithmetic.axes) > 1 and len(changed) < len(arithmetic.axes):
                where = " on the " + " and ".join(arithmetic.axes[i].name for i in changed)
            shown = v if len(set(new)) == 1 else ", ".join(map(str, new))
            out.append(Fix(param, value, f"{param} {shown}{where} → {_shape_text(result.out_shape)}"))
    return out[:MAX_FIXES]


class SizeArithmeticBox(QGroupBox):
    """The formula, weight count, warning and fixes of one node (hidden for other layers)."""

    refused = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__("Size arithmetic", parent)
        self.document = document
        self.node_id: str | None = None
        self.fixes: list[Fix] = []
        self.fix_buttons: list[QPushButton] = []
        col = QVBoxLayout(self)
        col.setContentsMargins(8, 6, 8, 8)
        col.setSpacing(4)
        self.formula = QLabel()
        self.formula.setTextFormat(Qt.TextFormat.RichText)
        self.formula.setWordWrap(True)
        self.formula.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setTextFormat(Qt.TextFormat.RichText)
        col.addWidget(self.formula)
        col.addWidget(self.warning)
        self._buttons = QVBoxLayout()
        self._buttons.setSpacing(3)
        col.addLayout(self._buttons)
        self.hide()

    def show_node(self, node_id: str | None) -> None:
        """Fill in the formulas for ``node_id`` (hide the box when it has no size arithmetic)."""
        self.node_id = node_id
        found = arithmetic_of(self.document, node_id) if node_id is not None else None
        if found is None:
            self.hide()
            return
        self.show()
        if isinstance(found, str):
            self.formula.setText(f"<i>{html.escape(found)}</i>")
            self._show_warning(None)
            return
        self.formula.setText(self._formula_html(found))
        self._show_warning(found)

    @staticmethod
    def _formula_html(a: Arithmetic) -> str:
        rows = ["<span style='opacity:0.75'>I₂ = (I − F + 2P)/S + 1</span>"]
        for axis in a.axes:
            mark = "" if axis.exact else f" <span style='color:{WARNING_COLOR}'>⚠</span>"
            rows.append(f"{axis.name}: <b>{html.escape(axis.formula)}</b>{mark}")
        rows.append(f"{_shape_text(a.in_shape)} → <b>{_shape_text(a.out_shape)}</b>")
        if a.weights_formula:
            rows.append(f"weights: <b>{html.escape(a.weights_formula)}</b>")
        return "<br>".join(rows)

    def _show_warning(self, a: Arithmetic | None) -> None:
        while self.fix_buttons:
            button = self.fix_buttons.pop()
            self._buttons.removeWidget(button)
            button.deleteLater()
        if a is None or a.exact:
            self.fixes = []
            self.warning.hide()
            return
        text = "<br>".join(html.escape(w) for w in a.warnings())
        self.warning.setText(f"<span style='color:{WARNING_COLOR}'>⚠</span> {text}")
        self.warning.show()
        assert self.node_id is not None
        self.fixes = fixes_for(self.document, self.node_id, a)
        for fix in self.fixes:
            button = QPushButton(f"Use {fix.label}")
            button.setToolTip(f"Set {fix.param} so that the division is exact (undoable)")
            button.clicked.connect(lambda _=False, f=fix: self.apply(f))
            button.setEnabled(self.document.editable)
            self._buttons.addWidget(button)
            self.fix_buttons.append(button)

    def apply(self, fix: Fix) -> None:
        """Make the edit (one undo step); a refusal (locked document) is reported."""
        if self.node_id is None:
            return
        try:
            edits.set_param(self.document, self.node_id, fix.param, fix.value,
                            text=f"Fix size of '{self.node_id}': {fix.label}")
        except BackpropError as err:
            self.refused.emit(str(err))
