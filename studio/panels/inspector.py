"""The inspector: an editor for the selected node, generated from its ParamSpecs.

The widgets come from the one factory for every parameter kind (:mod:`studio.panels.editors`:
spin boxes, check box, combo box, a row of bounded spin boxes for a fixed-length list, a
combo plus numbers for "a word or numbers"); help texts become tooltips and
``enabled_when`` greys out what does not apply. Values go through
``studio.edits.set_param``, so the layer declaration is the only judge: a refused value is
reverted and the engine's reason is shown under the form. The name field renames the node.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.errors import BackpropError
from engine.layers.base import ParamSpec
from studio import edits, theme
from studio.document import Document
from studio.panels.editors import make_editor
from studio.panels.size_arithmetic import SizeArithmeticBox
from studio.status import dot
from studio.text import brief, readable


class InspectorPanel(QWidget):
    """Shows and edits the node whose id is set with :meth:`set_node`."""

    refused = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.node_id: str | None = None
        self.editors: dict[str, QWidget] = {}
        self._setters: dict[str, Callable[[Any], None]] = {}
        self._specs: dict[str, ParamSpec] = {}
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._body = QWidget()
        scroll.setWidget(self._body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._layout = QVBoxLayout(self._body)
        self._layout.setContentsMargins(10, 10, 10, 10)
        self._layout.setSpacing(8)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.help = QLabel()
        self.help.setWordWrap(True)
        self.help.setTextFormat(Qt.TextFormat.RichText)
        self.help.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.help.linkActivated.connect(self._on_help_link)
        self._help_text = ""
        self.form = QFormLayout()
        # a label goes above its editor when both do not fit side by side (a narrow dock)
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip("The node's id: letters, digits and _, not starting with a digit. "
                                  "Used for weight names (h.W) and exports.")
        self.name_edit.editingFinished.connect(self._on_name_edited)
        self.form.addRow("Name", self.name_edit)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {theme.colors().error.name()};")
        self.arithmetic = SizeArithmeticBox(document)  # conv/pool: the output-size formula, live
        self.arithmetic.refused.connect(self._refuse)
        for w in (self.title, self.help):
            self._layout.addWidget(w)
        self._layout.addLayout(self.form)  # parameters first: in view at 1280x800 (help is cut short)
        self._layout.addWidget(self.arithmetic)
        self._layout.addWidget(self.problem)
        self._layout.addWidget(self.error)
        self._layout.addStretch(1)
        document.changed.connect(self._on_changed)
        document.nodeRenamed.connect(self._on_renamed)
        document.graphReset.connect(lambda: self.set_node(None))
        document.lockChanged.connect(lambda reason: self._body.setEnabled(not reason))
        self.set_node(None)

    # -- building ------------------------------------------------------------------------
    def set_node(self, node_id: str | None, count: int = 1) -> None:
        """Edit ``node_id`` (None: nothing selected; ``count`` > 1: a multi-selection)."""
        if node_id is not None and node_id not in self.document.graph.nodes:
            node_id = None
        self.node_id = node_id
        while self.form.rowCount() > 1:  # row 0 is the name field, kept
            self.form.removeRow(1)
        self.editors.clear()
        self._setters.clear()
        self._specs.clear()
        self.error.clear()
        if node_id is None:
            self.arithmetic.show_node(None)
            self._show_empty(count)
            return
        node = self.document.graph.node(node_id)
        layer = node.layer
        color = theme.category_color(layer.category).name()
        self.title.setText(f"<span style='color:{color}; font-size:large'>■</span> "
                           f"<b style='font-size:large'>{html.escape(node.type)}</b>")
        self._show_help(readable(layer.help), full=False)
        self.form.setRowVisible(0, True)
        for spec in layer.params:
            editor, setter = make_editor(spec, lambda value, name=spec.name: self._commit(name, value))
            editor.setToolTip(f"<p style='white-space:normal'>{html.escape(readable(spec.help))}<br>"
                              f"<i>{html.escape(spec.describe_range())}</i></p>")
            label = QLabel(spec.name.replace("_", " ").capitalize())
            label.setToolTip(editor.toolTip())
            self.form.addRow(label, editor)
            self.editors[spec.name] = editor
            self._setters[spec.name] = setter
            self._specs[spec.name] = spec
        if not layer.params:
            self.form.addRow(QLabel("<i>No parameters.</i>"))
        self._load_values()

    def _show_help(self, text: str, full: bool) -> None:
        """The layer's help, cut to its opening (with a link to the rest) so that the
        parameters stay in view; a convolution's help alone fills a small dock."""
        self._help_text = text
        short = brief(text)
        if full or short == text:
            self.help.setText(html.escape(text) + ("" if short == text else " <a href='less'>Less</a>"))
        else:
            self.help.setText(html.escape(short) + " <a href='more'>More…</a>")
        self.help.setToolTip("" if full else f"<p style='white-space:normal'>{html.escape(text)}</p>")

    def _on_help_link(self, link: str) -> None:
        self._show_help(self._help_text, full=link == "more")

    def _show_empty(self, count: int) -> None:
        g = self.document.graph
        if count > 1:
            self.title.setText(f"<b>{count} nodes selected</b>")
        else:
            self.title.setText("<b>No selection</b>")
        self.help.setText(f"Graph <b>{html.escape(g.name)}</b>: {len(g.nodes)} nodes, {len(g.edges)} wires."
                          "<br>Select a node to edit its name and parameters.")
        self.form.setRowVisible(0, False)
        self.problem.clear()

    # -- values ---------------------------------------------------------------------------
    def _load_values(self) -> None:
        """Show the node's current values without triggering edits."""
        if self.node_id is None:
            return
        node = self.document.graph.node(self.node_id)
        if self.name_edit.text() != node.id:
            self.name_edit.setText(node.id)
        for name, setter in self._setters.items():
            setter(node.params[name])  # the factory's setters never commit
            self.editors[name].setEnabled(self._specs[name].is_enabled(node.params))
        self.arithmetic.show_node(self.node_id)
        problem = self.document.problem_for(self.node_id)
        if problem:
            color = theme.colors().error.name()
            self.problem.setText(dot(color, problem))
        else:
            self.problem.clear()

    def _commit(self, name: str, value: Any) -> None:
        if self.node_id is None:
            return
        node = self.document.graph.node(self.node_id)
        if name in node.params and value == node.layer.params_to_json({name: node.params[name]}).get(name):
            return
        try:
            edits.set_param(self.document, self.node_id, name, value)
        except BackpropError as err:
            self._refuse(str(err))
            return
        self.error.clear()

    def _on_name_edited(self) -> None:
        if self.node_id is None:
            return
        new = self.name_edit.text().strip()
        if new == self.node_id:
            return
        try:
            edits.rename(self.document, self.node_id, new)
        except BackpropError as err:
            self._refuse(str(err))
            return
        self.error.clear()

    def _refuse(self, message: str) -> None:
        self.error.setText(message)
        self.refused.emit(message)
        self._load_values()

    # -- document signals -------------------------------------------------------------------
    def _on_renamed(self, old: str, new: str) -> None:
        if self.node_id == old:
            self.node_id = new

    def _on_changed(self) -> None:
        if self.node_id is not None and self.node_id not in self.document.graph.nodes:
            self.set_node(None)
        elif self.node_id is None:
            self._show_empty(0)
        else:
            self._load_values()
