"""The canvas driven with the mouse and keyboard: wires, refusals, badges, zoom, selection."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from engine.graph import Edge, Graph
from studio import edits
from studio.canvas.node_item import GRID, WIDTH
from tests.studio.helpers import connect_by_drag, drag, port_pos, settle_layout

XOR = {
    "format": "backprop-studio.graph", "version": 1, "name": "xor",
    "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [2]}, "ui": {"x": 0, "y": 0}},
        {"id": "h", "type": "Dense", "params": {"units": 2}, "ui": {"x": 280, "y": 0}},
        {"id": "a", "type": "Activation", "params": {"function": "tanh"}, "ui": {"x": 560, "y": 0}},
        {"id": "o", "type": "Dense", "params": {"units": 1}, "ui": {"x": 840, "y": 0}},
    ],
    "edges": [{"from": "x.out", "to": "h.in"}, {"from": "h.out", "to": "a.in"},
              {"from": "a.out", "to": "o.in"}],
}


@pytest.fixture
def xor(window):
    window.document.reset(Graph.from_dict(json.loads(json.dumps(XOR))))
    settle_layout(window)  # the start view deferred by opening runs before the test's own view
    window.view.set_zoom(0.8)
    window.view.centerOn(QPointF(500, 40))
    return window


def status(window) -> str:
    return window.status_text()


def test_a_refused_connection_shows_the_engine_reason_and_changes_nothing(xor):
    doc = xor.document
    before, count = doc.graph.to_dict(), doc.undo_stack.count()
    reason = doc.graph.connection_problem("x", "a", "in")  # a.in is fed by h already
    connect_by_drag(xor, "x", "a")
    assert reason and reason in status(xor)
    assert doc.graph.to_dict() == before and doc.undo_stack.count() == count


def test_a_cycle_drawn_with_the_mouse_is_refused(xor):
    doc = xor.document
    edits.disconnect(doc, Edge("x", "out", "h", "in"))
    before = doc.graph.to_dict()
    connect_by_drag(xor, "o", "h")
    assert "cycle" in status(xor) and doc.graph.to_dict() == before


def test_picking_a_wire_up_from_its_input_and_dropping_it_on_the_canvas_removes_it(xor):
    doc = xor.document
    drag(xor.view, port_pos(xor, "a", "in"), port_pos(xor, "a", "in") + QPointF(0, 160))
    assert Edge("h", "out", "a", "in") not in doc.graph.edges
    assert Edge("h", "out", "a", "in") not in xor.scene.item_for_edge
    xor.actions["undo"].trigger()
    assert Edge("h", "out", "a", "in") in doc.graph.edges


def test_dragging_a_card_snaps_to_the_grid_and_is_one_undo_step(xor):
    doc = xor.document
    item = xor.scene.node_item("h")
    grip = item.pos() + QPointF(60, 12)
    drag(xor.view, grip, grip + QPointF(33, 71))
    x, y = doc.position("h")
    assert (x % GRID, y % GRID) == (0, 0) and (x, y) != (280, 0)
    assert xor.scene.node_item("h").pos() == QPointF(x, y)
    xor.actions["undo"].trigger()
    assert doc.position("h") == (280.0, 0.0) and item.pos() == QPointF(280, 0)


def test_rubber_band_selects_the_cards_it_touches(xor):
    a, b = QPointF(-40, -60), QPointF(280 + WIDTH / 2, 110)  # around x and the left half of h
    drag(xor.view, a, b)
    assert sorted(xor.scene.selected_node_ids()) == ["h", "x"]


def test_keyboard_select_all_and_delete_then_undo(xor):
    xor.activateWindow()
    xor.view.setFocus()
    QTest.keyClick(xor.view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert len(xor.scene.selected_node_ids()) == 4
    QTest.keyClick(xor.view, Qt.Key.Key_Delete)
    assert xor.document.graph.nodes == {} and xor.scene.items() == []
    QTest.keyClick(xor.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert set(xor.document.graph.nodes) == {"x", "h", "a", "o"} and len(xor.scene.item_for_edge) == 3


def test_a_node_with_a_problem_shows_a_badge_whose_tooltip_is_the_engine_message(xor):
    doc = xor.document
    edits.add_node(doc, "Add", {}, (560, 240))
    edits.connect(doc, "x", "add1", "in0")
    badge = xor.scene.node_item("add1").badge
    expected = doc.graph.infer_shapes().problems_for("add1")[0].message
    assert badge.isVisible() and badge.toolTip() == expected
    assert not xor.scene.node_item("h").badge.isVisible()
    edits.connect(doc, "x", "add1", "in1")
    assert not badge.isVisible()


def test_wheel_zooms_around_the_cursor(xor):
    view = xor.view
    spot = QPoint(200, 150)
    before = view.mapToScene(spot)
    zoom = view.zoom_level()
    event = QWheelEvent(QPointF(spot), QPointF(view.viewport().mapToGlobal(spot)), QPoint(0, 0),
                        QPoint(0, 240), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), event)
    assert view.zoom_level() == pytest.approx(zoom * 1.15 ** 2)
    after = view.mapToScene(spot)
    assert abs(after.x() - before.x()) < 2 and abs(after.y() - before.y()) < 2
    assert xor.zoom_label.text() == f"{view.zoom_level() * 100:.0f}%"


def test_fit_to_view_shows_every_card(xor):
    edits.move(xor.document, {"o": (3000.0, 1500.0)})
    xor.actions["fit"].trigger()
    visible = xor.view.mapToScene(xor.view.viewport().rect()).boundingRect()
    for item in xor.scene.item_for_node.values():
        assert visible.contains(item.sceneBoundingRect())


def test_dropping_a_palette_entry_adds_that_layer_under_the_cursor(xor):
    panel = xor.palette_panel
    item = panel.find_item("ReLU")
    mime = panel.tree.mimeData([item])
    data = QMimeData()
    for fmt in mime.formats():
        data.setData(fmt, mime.data(fmt))
    spot = xor.view.mapFromScene(QPointF(400, 300))
    args = (Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(spot, *args)
    QApplication.sendEvent(xor.view.viewport(), enter)
    assert enter.isAccepted()
    QApplication.sendEvent(xor.view.viewport(), QDropEvent(QPointF(spot), *args))
    node = xor.document.graph.node("relu1")
    assert node.params["function"] == "relu"
    assert xor.scene.node_item("relu1").sceneBoundingRect().contains(QPointF(400, 300))


def test_palette_search_and_tooltips_come_from_the_registry(xor):
    panel = xor.palette_panel
    QTest.keyClicks(panel.search, "fully connected")
    visible = [it.text(0) for it in panel.entry_items() if not it.isHidden()]
    assert visible == ["Dense"]
    assert "Fully connected layer" in panel.find_item("Dense").toolTip(0)


def test_copy_in_one_window_paste_in_another(xor, qtbot):
    other = xor.new_window()
    qtbot.waitExposed(other)
    try:
        xor.scene.select_nodes(["h", "a"])
        xor.actions["copy"].trigger()
        other.actions["paste"].trigger()
        g = other.document.graph
        assert set(g.nodes) == {"h", "a"} and g.edges == [Edge("h", "out", "a", "in")]
        assert sorted(other.scene.selected_node_ids()) == ["a", "h"]
        other.actions["paste"].trigger()  # again: ids clash now and are renamed
        assert set(g.nodes) == {"h", "a", "h1", "a1"}
        other.actions["undo"].trigger()
        assert set(g.nodes) == {"h", "a"}
    finally:
        other.document.undo_stack.setClean()
        other.close()


def test_duplicate_and_cut(xor):
    xor.scene.select_nodes(["h"])
    xor.actions["duplicate"].trigger()
    assert "h1" in xor.document.graph.nodes and xor.scene.selected_node_ids() == ["h1"]
    xor.actions["cut"].trigger()
    assert "h1" not in xor.document.graph.nodes
    xor.actions["paste"].trigger()
    assert "h1" in xor.document.graph.nodes


def test_a_locked_document_refuses_canvas_edits_with_the_reason(xor):
    doc = xor.document
    doc.lock("a training run is using this graph")
    before = doc.graph.to_dict()
    connect_by_drag(xor, "x", "o")
    xor.scene.select_nodes(["h"])
    xor.actions["delete"].trigger()
    assert doc.graph.to_dict() == before
    assert "a training run is using this graph" in status(xor)
    doc.unlock()
    xor.actions["delete"].trigger()
    assert "h" not in doc.graph.nodes


def test_set_tint_is_an_overlay_hook(xor):
    from PySide6.QtGui import QColor

    item = xor.scene.node_item("h")
    item.set_tint(QColor(255, 0, 0, 80))
    assert item.tint == QColor(255, 0, 0, 80)
    xor.view.viewport().grab()  # paints with the tint
    item.set_tint(None)
    assert item.tint is None


def test_middle_button_drag_pans_the_view(xor):
    vp = xor.view.viewport()
    before = xor.view.mapToScene(QPoint(300, 200))
    QTest.mousePress(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(300, 200))
    QTest.mouseMove(vp, QPoint(360, 240))
    QTest.mouseRelease(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(360, 240))
    after = xor.view.mapToScene(QPoint(360, 240))
    zoom = xor.view.zoom_level()
    # the content followed the mouse
    assert abs(after.x() - before.x()) < 2 / zoom and abs(after.y() - before.y()) < 2 / zoom
    assert xor.document.undo_stack.count() == 0  # panning is not an edit
