"""Node cards draw every declared output port (Split's out0, out1, …; a sequence layer's
"out" and "state"): stacked on the right edge, labelled, with that port's shape; wires start
at the port they come from, and changing the number of ports rebuilds them, undoably."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QImage, QPainter

from engine.graph import Edge, Graph
from engine.layers import REGISTRY
from engine.layers.base import LayerType
from studio import edits, theme
from studio.canvas.node_item import HEADER, PORT_GAP, WIDTH
from tests.studio.helpers import connect_by_drag, drag, port_pos


def split_graph(parts: int = 3) -> Graph:
    g = Graph("split")
    g.add_node("Input", {"shape": [12]}, "x", ui={"x": 0, "y": 0})
    g.add_node("Split", {"parts": parts}, "s", ui={"x": 260, "y": 0})
    for i in range(parts):
        g.add_node("Dense", {"units": 2}, f"d{i}", ui={"x": 540, "y": -140 + 140 * i})
    g.connect("x", "s", "in")
    return g


@pytest.fixture
def split(window):
    window.document.reset(split_graph())
    window.view.set_zoom(1.0)
    window.view.centerOn(QPointF(450, 60))
    return window


@pytest.fixture
def sequence_layer(monkeypatch):
    """A test-only layer with two outputs of different shapes: (T, F) → out (T, F), state (F,)."""
    layer = LayerType(name="SeqStateTest", category="recurrent", help="Test: a sequence and its last step.",
                      shape=lambda p, s: [s[0], s[0][1:]], outputs=("out", "state"),
                      forward=lambda rt, xs: (xs[0], xs[0][:, -1]), backward=lambda rt, dy: [dy[0]])
    monkeypatch.setitem(REGISTRY, layer.name, layer)
    yield layer


def ports_on_right_edge(item) -> list[float]:
    w, h = item.size
    ys = [p.pos().y() for p in item.outputs.values()]
    assert all(p.pos().x() == w for p in item.outputs.values())
    assert all(HEADER < y < h for y in ys), (ys, h)
    return ys


def test_a_split_card_has_one_output_port_per_part_stacked_on_the_right(split):
    item = split.scene.node_item("s")
    assert list(item.outputs) == ["out0", "out1", "out2"] == list(split.document.graph.node("s").output_ports())
    ys = ports_on_right_edge(item)
    assert ys == sorted(ys) and min(b - a for a, b in zip(ys, ys[1:], strict=False)) >= PORT_GAP - 0.5
    assert [p.name for p in item.outputs.values()] == ["out0", "out1", "out2"]
    assert item.shape_text == "4 · 4 · 4"
    dense = split.scene.node_item("d0")
    assert list(dense.outputs) == ["out"] and dense.output is dense.outputs["out"]


def test_card_height_fits_the_longer_side_of_ports(split):
    doc = split.document
    edits.set_param(doc, "s", "parts", 6)
    item = split.scene.node_item("s")
    assert item.size[1] >= HEADER + 6 * PORT_GAP
    ports_on_right_edge(item)
    edits.add_node(doc, "Add", {"inputs": 6}, pos=(0, 400), base_name="add")
    assert split.scene.node_item("add1").size == item.size  # 6 inputs or 6 outputs: same card
    assert split.scene.node_item("d0").size[1] < item.size[1]


def ink_in(item, rect: QRectF) -> int:
    """Pixels of the card's texts inside ``rect`` (card coordinates): those that differ
    clearly from the card's background."""
    w, h = item.size
    card = QColor(theme.colors().card)
    image = QImage(int(w), int(h), QImage.Format.Format_ARGB32)
    image.fill(card)
    painter = QPainter(image)
    item._paint_text(painter, theme.colors(), w, h)
    painter.end()
    count = 0
    for x in range(int(rect.left()), int(rect.right())):
        for y in range(int(rect.top()), int(rect.bottom())):
            c = QColor(image.pixel(x, y))
            if abs(c.red() - card.red()) + abs(c.green() - card.green()) + abs(c.blue() - card.blue()) > 90:
                count += 1
    return count


def test_output_ports_are_labelled_only_when_there_are_several(split):
    item, dense = split.scene.node_item("s"), split.scene.node_item("d0")
    for port in item.outputs.values():
        y = port.pos().y()
        assert ink_in(item, QRectF(WIDTH - 40, y - 7, 32, 14)) > 10, f"no label beside {port.name}"
    y = dense.output.pos().y()
    assert ink_in(dense, QRectF(WIDTH - 40, y - 7, 32, 14)) == 0  # the single port of a Dense: no label


def test_each_output_port_tooltip_shows_that_ports_shape(window, sequence_layer):
    g = Graph("seq")
    g.add_node("Input", {"shape": [10, 3]}, "x", ui={"x": 0, "y": 0})
    g.add_node("SeqStateTest", {}, "r", ui={"x": 260, "y": 0})
    g.connect("x", "r", "in")
    g.add_node("Dense", {"units": 2}, "d", ui={"x": 540, "y": 0})
    g.connect("r", "d", "in", src_port="state")
    window.document.reset(g)
    item = window.scene.node_item("r")
    assert list(item.outputs) == ["out", "state"]
    assert "output 'out' 10×3" in item.outputs["out"].toolTip()
    assert "output 'state' 3;" in item.outputs["state"].toolTip()
    assert item.outputs["out"].rank == 2 and item.outputs["state"].rank == 1  # coloured by rank
    assert item.outputs["state"].connected and not item.outputs["out"].connected
    wire = window.scene.item_for_edge[Edge("r", "state", "d", "in")]
    assert wire.label == "3"  # the wire carries the state's shape, not the sequence's
    assert wire.path().pointAtPercent(0) == item.outputs["state"].scene_center()
    window.document.undo_stack.setClean()


def test_wiring_from_a_second_output_port_by_mouse_is_one_undo_step(split):
    doc = split.document
    count = doc.undo_stack.count()
    connect_by_drag(split, "s", "d1", src_port="out1")
    edge = Edge("s", "out1", "d1", "in")
    assert edge in doc.graph.edges and doc.undo_stack.count() == count + 1
    wire = split.scene.item_for_edge[edge]
    out1 = split.scene.node_item("s").outputs["out1"]
    assert wire.path().pointAtPercent(0) == out1.scene_center()
    assert out1.connected and not split.scene.node_item("s").outputs["out0"].connected
    assert wire.label == "4"
    split.actions["undo"].trigger()
    assert edge not in doc.graph.edges and edge not in split.scene.item_for_edge


def test_a_picked_up_wire_keeps_its_source_port(split):
    doc = split.document
    edits.connect(doc, "s", "d1", "in", "out2")
    drag(split.view, port_pos(split, "d1", "in"), port_pos(split, "d2", "in"))
    assert Edge("s", "out2", "d2", "in") in doc.graph.edges
    assert Edge("s", "out2", "d1", "in") not in doc.graph.edges
    split.actions["undo"].trigger()
    assert Edge("s", "out2", "d1", "in") in doc.graph.edges


def test_fewer_parts_drop_the_removed_ports_wires_and_undo_restores_them(split):
    doc = split.document
    for i in range(3):
        edits.connect(doc, "s", f"d{i}", "in", f"out{i}")
    edits.set_param(doc, "s", "parts", 2)
    item = split.scene.node_item("s")
    gone = Edge("s", "out2", "d2", "in")
    assert list(item.outputs) == ["out0", "out1"]
    assert gone not in doc.graph.edges and gone not in split.scene.item_for_edge
    assert all(p.scene() is split.scene for p in item.outputs.values())
    assert not any(getattr(p, "name", None) == "out2" for p in split.scene.items() if p.parentItem() is item)
    assert item.shape_text == "6 · 6"
    split.actions["undo"].trigger()
    assert doc.graph.node("s").params["parts"] == 3 and list(item.outputs) == ["out0", "out1", "out2"]
    assert gone in doc.graph.edges and gone in split.scene.item_for_edge
    assert split.scene.item_for_edge[gone].path().pointAtPercent(0) == item.outputs["out2"].scene_center()
    split.actions["redo"].trigger()
    assert gone not in doc.graph.edges and list(item.outputs) == ["out0", "out1"]


def test_more_parts_through_the_inspector_add_ports(split):
    split.scene.select_nodes(["s"])
    spin = split.inspector.editors["parts"]
    spin.setValue(4)
    item = split.scene.node_item("s")
    assert list(item.outputs) == ["out0", "out1", "out2", "out3"]
    assert "output 'out3' 3;" in item.outputs["out3"].toolTip()
    split.actions["undo"].trigger()
    assert list(item.outputs) == ["out0", "out1", "out2"]
