"""Every registered layer type can be added from the palette, is drawn, is inspected with
widgets generated from its declaration, can be edited there, and can be removed."""

from __future__ import annotations

import html

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

from engine.layers import REGISTRY
from engine.layers.base import ParamSpec
from studio.panels.editors import ChoiceOrInts, IntsRow
from studio.panels.palette import ENTRY_ROLE
from studio.text import readable
from tests.studio.helpers import add_from_palette, set_editor

WIDGET = {"int": QSpinBox, "float": QDoubleSpinBox, "bool": QCheckBox, "choice": QComboBox,
          "ints": QLineEdit, "choice_or_ints": ChoiceOrInts, "str": QLineEdit}


def widget_class(spec: ParamSpec) -> type:
    return IntsRow if spec.kind == "ints" and spec.length else WIDGET[spec.kind]


def palette_title(window, type_name: str) -> str:
    for item in window.palette_panel.entry_items():
        if item.data(0, ENTRY_ROLE).type == type_name:
            return item.text(0)
    raise AssertionError(f"{type_name} is not in the palette")


def another_value(spec: ParamSpec, value):
    """A different valid value, chosen from the declaration."""
    if spec.kind == "bool":
        return not value
    if spec.kind == "choice":
        return next(c for c in spec.choices if c != value)
    if spec.kind == "int":
        return value + 1 if spec.max is None or value + 1 <= spec.max else value - 1
    if spec.kind == "float":
        hi = spec.max if spec.max is not None else value + 1.0
        lo = spec.min if spec.min is not None else value - 1.0
        return (value + hi) / 2 if hi > value else (value + lo) / 2
    if spec.is_list:
        if isinstance(value, str):
            words = [c for c in spec.choices if c != value]
            return words[0] if words else [spec.element_range(0)[0]] * (spec.length or 1)
        if spec.length is None:
            return [3] if list(value) != [3] else [4]
        lo, hi = spec.element_range(0)
        return [value[0] + 1 if hi is None or value[0] < hi else value[0] - 1, *value[1:]]
    return str(value) + "x"


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_layer_can_be_added_shown_inspected_edited_and_removed(window, type_name):
    layer = REGISTRY[type_name]
    node_id = add_from_palette(window, palette_title(window, type_name))
    doc = window.document
    node = doc.graph.node(node_id)
    assert node.type == type_name
    item = window.scene.node_item(node_id)
    assert item.type_name == type_name and item.key_text == layer.summary_text(node.params)
    assert list(item.inputs) == list(node.input_ports()) and list(item.outputs) == list(node.output_ports())
    window.view.fit_all()
    assert not window.view.viewport().grab().isNull()  # paints without error
    insp = window.inspector
    assert insp.node_id == node_id and insp.name_edit.text() == node_id
    assert list(insp.editors) == [s.name for s in layer.params]
    for spec in layer.params:
        widget = insp.editors[spec.name]
        assert isinstance(widget, widget_class(spec)), spec.name
        assert html.escape(readable(spec.help)) in widget.toolTip()
        if spec.kind in ("int", "float"):
            if spec.min is not None:
                assert widget.minimum() == spec.min
            if spec.max is not None:
                assert widget.maximum() == spec.max
        if spec.kind == "choice":
            assert [widget.itemText(i) for i in range(widget.count())] == list(spec.choices)
    for spec in layer.params:
        old = doc.graph.node(node_id).params[spec.name]
        new = another_value(spec, old)
        index = doc.undo_stack.index()
        set_editor(insp.editors[spec.name], new)
        got = doc.graph.node(node_id).params[spec.name]
        assert got == spec.coerce(new), spec.name
        assert doc.undo_stack.index() == index + 1  # one undo step per change
        doc.undo()
        assert doc.graph.node(node_id).params[spec.name] == old
    window.scene.select_nodes([node_id])
    window.actions["delete"].trigger()
    assert node_id not in doc.graph.nodes and window.scene.node_item(node_id) is None
    window.actions["undo"].trigger()
    assert doc.graph.node(node_id).type == type_name and window.scene.node_item(node_id) is not None


def test_inspector_refuses_an_invalid_value_with_the_engine_reason(window):
    node_id = add_from_palette(window, "Input")
    insp = window.inspector
    before = window.document.graph.to_dict()
    insp.editors["shape"].setText("two, three")
    insp.editors["shape"].editingFinished.emit()
    message = insp.error.text()
    assert "parameter 'shape'" in message and "expected a list of positive integers" in message
    assert window.document.graph.to_dict() == before
    assert insp.editors["shape"].text() == "2"  # the widget shows the value that is in force
    insp.name_edit.setText("9lives")
    insp.name_edit.editingFinished.emit()
    assert "invalid node id" in insp.error.text() and node_id in window.document.graph.nodes
    assert window.status_text().endswith(insp.error.text())


def test_a_new_category_appears_in_the_palette_by_itself(window, monkeypatch):
    from engine.layers.base import LayerType

    fake = LayerType(name="Conv2DTest", category="conv", help="A test convolution.",
                     shape=lambda p, s: s[0], forward=lambda rt, xs: xs[0], backward=lambda rt, dy: [dy])
    monkeypatch.setitem(REGISTRY, fake.name, fake)
    window.palette_panel.rebuild()
    tree = window.palette_panel.tree
    titles = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
    assert "Convolution" in titles
    assert window.palette_panel.find_item("Conv2DTest").toolTip(0).count("A test convolution.") == 1
    node_id = add_from_palette(window, "Conv2DTest")
    assert window.document.graph.node(node_id).type == "Conv2DTest"
    window.document.undo_stack.setClean()


def test_window_parameters_take_one_number_for_both_axes_or_a_word(window):
    """Conv2D's kernel 5 → 5×5 (the linked row), padding "same" or (2, 1), stride (2, 3);
    MaxPool2D's stride "pool_size" or numbers."""
    insp = window.inspector
    conv = add_from_palette(window, palette_title(window, "Conv2D"))
    for name, value, expected in [("kernel_size", 5, (5, 5)), ("padding", "same", "same"),
                                  ("padding", (2, 1), (2, 1)), ("stride", (2, 3), (2, 3))]:
        set_editor(insp.editors[name], value)
        assert window.document.graph.node(conv).params[name] == expected, name
    assert insp.editors["padding"].numbers.value() == (2, 1)
    assert insp.editors["kernel_size"].link.isChecked() and not insp.editors["stride"].link.isChecked()
    pool = add_from_palette(window, palette_title(window, "MaxPool2D"))
    assert insp.node_id == pool and insp.editors["stride"].combo.currentText() == "pool_size"
    for value in [(1, 2), "pool_size"]:
        set_editor(insp.editors["stride"], value)
        assert window.document.graph.node(pool).params["stride"] == value
    window.document.undo_stack.setClean()
