"""Build the XOR network the way a person does and compare it with examples/xor.json."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from engine.graph import Graph
from tests.studio.helpers import add_from_palette, connect_by_drag, drag

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "xor.json"
XOR_DICT = {
    "format": "backprop-studio.graph", "version": 1, "name": "xor",
    "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [2]}},
        {"id": "h", "type": "Dense", "params": {"units": 2}},
        {"id": "a", "type": "Activation", "params": {"function": "tanh"}},
        {"id": "o", "type": "Dense", "params": {"units": 1}},
    ],
    "edges": [{"from": "x.out", "to": "h.in"}, {"from": "h.out", "to": "a.in"},
              {"from": "a.out", "to": "o.in"}],
}


def expected_xor() -> Graph:
    return Graph.load(EXAMPLE) if EXAMPLE.exists() else Graph.from_dict(XOR_DICT)


def same_design(built: Graph, expected: Graph) -> bool:
    """Graph equality (positions ignored) on the network itself: the training block and
    the name are not edited in the canvas, so they are taken from the expected graph."""
    other = built.copy()
    other.name, other.description, other.training = expected.name, expected.description, expected.training
    return other == expected


def type_into(widget, text: str) -> None:
    widget.setFocus()
    widget.selectAll() if hasattr(widget, "selectAll") else None
    QTest.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(widget, text)
    QTest.keyClick(widget, Qt.Key.Key_Return)


def move_card(window, node_id: str, x: float, y: float) -> None:
    """Drag a card by its header so its top-left corner lands at (x, y)."""
    item = window.scene.node_item(node_id)
    grip = item.pos() + QPointF(70, 12)
    drag(window.view, grip, QPointF(x + 70, y + 12))


def build_xor(window) -> None:
    window.view.set_zoom(0.6)
    window.view.centerOn(QPointF(420, 60))
    insp = window.inspector
    names = []
    for i, (entry, name, units) in enumerate(
            [("Input", "x", None), ("Dense", "h", 2), ("Tanh", "a", None), ("Dense", "o", 1)]):
        node_id = add_from_palette(window, entry)
        move_card(window, node_id, i * 280.0, 0.0)
        window.scene.select_nodes([node_id])
        type_into(insp.name_edit, name)
        if units is not None:
            type_into(insp.editors["units"].lineEdit(), str(units))
        names.append(name)
    connect_by_drag(window, "x", "h")
    connect_by_drag(window, "h", "a")
    connect_by_drag(window, "a", "o")


def test_xor_built_with_palette_drags_and_inspector_equals_the_example(window):
    build_xor(window)
    graph = window.document.graph
    assert same_design(graph, expected_xor()), graph.to_dict(ui=False)
    # the canvas shows what the engine infers: wires labelled with the shape they carry
    labels = {(e.src, e.dst): item.label for e, item in window.scene.item_for_edge.items()}
    assert labels == {("x", "h"): "2", ("h", "a"): "2", ("a", "o"): "2"}
    assert window.scene.node_item("o").shape_text == "1"
    assert window.scene.node_item("h").count_text == "6 params"  # 2×2 weights + 2 biases
    positions = [window.document.position(n) for n in ("x", "h", "a", "o")]
    assert [p[0] for p in positions] == sorted(p[0] for p in positions)  # moved apart left to right


def test_undo_everything_back_to_empty_then_redo_to_the_same_graph(window):
    build_xor(window)
    built = window.document.graph.to_dict()
    stack = window.document.undo_stack
    assert stack.count() >= 4 + 4 + 3  # adds, renames/edits, connects (moves too)
    while stack.canUndo():
        window.actions["undo"].trigger()
    assert window.document.graph.nodes == {} and window.document.graph.edges == []
    assert window.scene.item_for_node == {} and window.scene.item_for_edge == {}
    assert not window.document.modified
    while stack.canRedo():
        window.actions["redo"].trigger()
    assert window.document.graph.to_dict() == built  # positions included
    assert same_design(window.document.graph, expected_xor())
    assert set(window.scene.item_for_node) == {"x", "h", "a", "o"}
    assert len(window.scene.item_for_edge) == 3
