"""One widget factory for every parameter kind, used by the inspector and the parameter forms.

The layer below exists only in these tests (registered by a fixture, removed afterwards): a
declaration with each list kind, as convolution and pooling layers declare them.
"""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QScrollArea, QSpinBox

from engine.layers import REGISTRY
from engine.layers.base import PARAM_KINDS, LayerType, ParamSpec
from studio import edits
from studio.panels.editors import FACTORIES, ChoiceOrInts, IntsRow, make_editor
from studio.panels.param_form import ParamForm
from tests.studio.helpers import set_editor

HW = ("height", "width")
SPECS = (
    ParamSpec("kernel_size", "ints", (3, 3), "Kernel height and width.", length=2, min=1, max=9, labels=HW),
    ParamSpec("window", "ints", (4, 2), "A window with other bounds per axis.", length=2, min=(2, 1),
              max=(16, 8), labels=HW),
    ParamSpec("shape", "ints", (1, 4), "A shape of any length; one size may be -1.", min=-1),
    ParamSpec("padding", "choice_or_ints", "valid", "Zeros on each side.", choices=("valid", "same"),
              length=2, min=0, max=8, labels=HW),
    ParamSpec("stride", "choice_or_ints", "pool_size", "Step between windows.", choices=("pool_size",),
              length=2, min=1, max=6, labels=HW),
    ParamSpec("dims", "choice_or_ints", "auto", "Sizes, any number of them.", choices=("auto",), min=1),
    ParamSpec("rate", "float", 0.5, "A probability.", min=0.0, max=1.0),
    ParamSpec("on", "bool", True, "A switch."),
)


@pytest.fixture
def editors_layer(monkeypatch):
    layer = LayerType(name="EditorsTest", category="reshape", help="Test: one parameter of each list kind.",
                      params=SPECS, shape=lambda p, s: s[0], forward=lambda rt, xs: xs[0],
                      backward=lambda rt, dy: [dy])
    monkeypatch.setitem(REGISTRY, layer.name, layer)
    yield layer
    assert layer.name in REGISTRY


@pytest.fixture
def insp(window, editors_layer):
    node_id = edits.add_node(window.document, "EditorsTest", pos=(0, 0))
    window.scene.select_nodes([node_id])
    assert window.inspector.node_id == node_id
    yield window.inspector
    window.document.undo_stack.setClean()


def params(insp) -> dict:
    return insp.document.graph.node(insp.node_id).params


def test_the_factory_covers_every_parameter_kind():
    assert set(FACTORIES) == set(PARAM_KINDS)


def test_a_fixed_length_list_is_a_row_of_spin_boxes_bounded_per_element_and_labelled(insp):
    row = insp.editors["window"]
    assert isinstance(row, IntsRow) and len(row.spins) == 2
    assert [(s.minimum(), s.maximum()) for s in row.spins] == [(2, 16), (1, 8)]
    assert [label.text() for label in row.labels] == ["height", "width"]
    assert not row.link.isVisibleTo(row)  # different bounds per axis: never linked
    assert [s.value() for s in row.spins] == [4, 2]
    before = insp.document.undo_stack.index()
    row.spins[1].setValue(7)
    assert params(insp)["window"] == (4, 7)
    row.spins[0].setValue(99)  # beyond the height's bound: the spin box stops at 16
    assert params(insp)["window"] == (16, 7)
    assert insp.document.undo_stack.index() == before + 1  # edits of one parameter merge
    insp.document.undo()
    assert params(insp)["window"] == (4, 2) and [s.value() for s in row.spins] == [4, 2]


def test_one_number_sets_a_linked_square_kernel(insp):
    row = insp.editors["kernel_size"]
    assert row.link.isVisibleTo(row) and row.link.isChecked()  # (3, 3): linked
    row.spins[1].setValue(5)
    assert params(insp)["kernel_size"] == (5, 5)
    assert [s.value() for s in row.spins] == [5, 5]
    row.link.click()
    row.spins[0].setValue(2)
    assert params(insp)["kernel_size"] == (2, 5) and not row.link.isChecked()


def test_a_list_of_any_length_is_a_line_edit_and_a_refusal_shows_the_engine_message(insp):
    line = insp.editors["shape"]
    assert isinstance(line, QLineEdit) and line.text() == "1, 4"
    set_editor(line, "2×3×4")
    assert params(insp)["shape"] == (2, 3, 4)
    before = insp.document.graph.to_dict()
    set_editor(line, "2, -3")
    reason = insp.error.text()
    assert "parameter 'shape'" in reason and "[2, -3]" in reason and "each ≥ -1" in reason
    assert insp.document.graph.to_dict() == before and line.text() == "2, 3, 4"  # reverted
    assert insp.window().status_text().endswith(reason)


def test_a_word_or_numbers_is_a_combo_whose_custom_entry_enables_bounded_numbers(insp):
    editor = insp.editors["padding"]
    assert isinstance(editor, ChoiceOrInts)
    combo, numbers = editor.combo, editor.numbers
    assert [combo.itemText(i) for i in range(combo.count())] == ["valid", "same", "custom"]
    assert combo.currentText() == "valid" and not numbers.isEnabled()
    assert isinstance(numbers, IntsRow) and [(s.minimum(), s.maximum()) for s in numbers.spins] == [(0, 8)] * 2
    combo.setCurrentText("same")
    assert params(insp)["padding"] == "same"
    combo.setCurrentText("custom")
    assert numbers.isEnabled() and params(insp)["padding"] == (0, 0)
    numbers.link.click()
    numbers.spins[0].setValue(2)
    numbers.spins[1].setValue(1)
    assert params(insp)["padding"] == (2, 1)
    insp.document.undo()  # the padding edits merged into one step
    assert params(insp)["padding"] == "valid"
    assert combo.currentText() == "valid" and not numbers.isEnabled()


def test_a_word_or_a_list_of_any_length_and_its_refusal(insp):
    editor = insp.editors["dims"]
    assert isinstance(editor.numbers, QLineEdit) and not editor.numbers.isEnabled()
    set_editor(editor, [3, 4, 5])
    assert params(insp)["dims"] == (3, 4, 5) and editor.numbers.isEnabled()
    set_editor(editor.numbers, "3, 0")
    assert 'expected one of "auto" or a list of positive integers' in insp.error.text()
    assert params(insp)["dims"] == (3, 4, 5) and editor.numbers.text() == "3, 4, 5"
    set_editor(editor.numbers, "4")  # one number of a list of any length is a list
    assert params(insp)["dims"] == (4,)
    set_editor(editor.numbers, ' "auto" ')  # a word typed among the numbers is the word
    assert params(insp)["dims"] == "auto" and editor.combo.currentText() == "auto"
    assert not editor.numbers.isEnabled()
    set_editor(editor, [2, 2])
    set_editor(editor, "auto")
    assert params(insp)["dims"] == "auto" and not editor.numbers.isEnabled()


def test_inspector_and_parameter_forms_build_the_same_editors(insp, qtbot):
    form = ParamForm()
    qtbot.addWidget(form)
    form.set_specs(SPECS)
    edited = []
    form.edited.connect(lambda name, value: edited.append((name, value)))
    for spec in SPECS:
        assert type(form.editors[spec.name]) is type(insp.editors[spec.name]), spec.name
    form.set_values({"kernel_size": (2, 2), "padding": [1, 3]})
    assert not edited  # showing values is not an edit
    assert form.editors["padding"].numbers.value() == (1, 3) and form.editors["kernel_size"].link.isChecked()
    form.editors["kernel_size"].spins[0].setValue(4)
    set_editor(form.editors["stride"], (1, 2))
    assert edited == [("kernel_size", [4, 4]), ("stride", [1, 1]), ("stride", [1, 2])]


@pytest.mark.parametrize("spec, widget", [
    (ParamSpec("n", "int", 3, "n", min=1, max=2**40), QSpinBox),
    (ParamSpec("x", "float", 0.1, "x", min=1e-12, log_scale=True), QDoubleSpinBox),
    (ParamSpec("b", "bool", False, "b"), QCheckBox),
    (ParamSpec("c", "choice", "a", "c", choices=("a", "b")), QComboBox),
    (ParamSpec("s", "str", "hi", "s"), QLineEdit),
])
def test_scalar_kinds_commit_edits_and_setters_stay_silent(qtbot, spec, widget):
    got = []
    editor, show = make_editor(spec, got.append)
    qtbot.addWidget(editor)
    assert isinstance(editor, widget)
    show(spec.default)
    assert got == []
    other = {"int": 2, "float": 0.5, "bool": True, "choice": "b", "str": "ho"}[spec.kind]
    set_editor(editor, other)
    assert got == [other]
    if spec.kind == "int":
        assert editor.maximum() == 2**31 - 1  # a huge declared bound is clamped, not overflowed


@pytest.mark.parametrize("size", [(1280, 800), (1600, 1000)])
def test_a_convolutions_parameters_are_in_view_at_the_default_window_sizes(window, qtbot, size):
    """The Inspector has the right column to itself (History is a bottom tab), the layer's
    long help is cut to its opening with a More link, and nothing scrolls sideways."""
    window.resize(*size)
    window.default_dock_sizes()
    node_id = edits.add_node(window.document, "Conv2D", pos=(0, 0))
    window.scene.select_nodes([node_id])
    insp = window.inspector
    qtbot.wait(60)
    assert window.tabifiedDockWidgets(window.docks["dock_history"])  # not split below the Inspector
    scroll = insp.findChild(QScrollArea)
    assert scroll.horizontalScrollBar().maximum() == 0
    viewport = scroll.viewport()
    for name in ("filters", "kernel_size", "stride", "padding"):
        editor = insp.editors[name]
        bottom = editor.mapTo(viewport, editor.rect().bottomRight()).y()
        assert bottom <= viewport.height(), f"{name} is below the fold at {size}"
    assert "More" in insp.help.text() and len(insp.help.text()) < len(REGISTRY["Conv2D"].help)
    insp.help.linkActivated.emit("more")
    assert "at every position" in insp.help.text() and "Less" in insp.help.text()
    insp.help.linkActivated.emit("less")
    assert "More" in insp.help.text()
    window.document.undo_stack.setClean()


def test_brief_keeps_whole_sentences_and_cuts_a_long_one_at_a_word():
    from studio.text import brief

    short = "Fully connected layer y = xW + b: every unit sees every input."
    assert brief(short) == short
    text = "One sentence, e.g. a short one. " + "Another " * 40
    assert brief(text, limit=60) == "One sentence, e.g. a short one."
    long = "word " * 60
    cut = brief(long.strip(), limit=50)
    assert cut.endswith("…") and len(cut) <= 51 and not cut[:-1].endswith(" ")
