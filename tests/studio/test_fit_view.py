"""Fit to View and the first view of an opened file: the whole graph, readable, with a margin."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRectF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QToolBar

from studio.canvas.view import READABLE_ZOOM

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def nodes_in_viewport(window) -> QRectF:
    """The graph's bounding box in viewport pixels."""
    rect = window.scene.nodes_rect()
    return window.view.mapFromScene(rect).boundingRect().toRectF()


def open_at(window, qtbot, name: str, size: tuple[int, int]) -> None:
    window.resize(*size)
    qtbot.wait(20)
    assert window.files.open(EXAMPLES / f"{name}.json")
    qtbot.wait(20)


@pytest.mark.parametrize("size", [(1280, 800), (1600, 1000)])
@pytest.mark.parametrize("name", ["moons_mlp", "deep_sigmoid"])
def test_fit_to_view_action_fits_the_graph_with_a_margin(window, qtbot, name, size):
    open_at(window, qtbot, name, size)
    window.view.set_zoom(2.0)
    window.actions["fit"].trigger()  # the toolbar button / Home: triggered(bool) reaches the slot
    viewport = QRectF(window.view.viewport().rect())
    graph = nodes_in_viewport(window)
    assert viewport.adjusted(8, 8, -8, -8).contains(graph), (graph, viewport)
    cover = max(graph.width() / viewport.width(), graph.height() / viewport.height())
    assert cover >= 0.8, f"the graph fills only {cover:.0%} of the canvas"
    assert window.view.zoom_level() > 0.2
    assert window.zoom_label.text() == f"{window.view.zoom_level() * 100:.0f}%"


def test_fit_and_actual_size_are_one_key_away(window, qtbot):
    open_at(window, qtbot, "moons_mlp", (1280, 800))
    window.activateWindow()
    window.view.setFocus()
    qtbot.waitUntil(window.view.hasFocus)
    window.view.set_zoom(3.0)
    QTest.keyClick(window.view, Qt.Key.Key_Home)
    fitted = window.view.zoom_level()
    assert 0.2 < fitted < 1.0
    QTest.keyClick(window.view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert window.view.zoom_level() == pytest.approx(1.0)
    toolbar = window.findChild(QToolBar, "toolbar_main")
    assert window.actions["zoom_reset"] in toolbar.actions() and window.actions["fit"] in toolbar.actions()


def test_first_view_shows_a_small_graph_whole(window, qtbot):
    open_at(window, qtbot, "xor", (1280, 800))
    window.view.show_start()
    viewport = QRectF(window.view.viewport().rect())
    assert viewport.contains(nodes_in_viewport(window))
    assert window.view.zoom_level() >= READABLE_ZOOM


def test_first_view_of_a_long_graph_shows_its_start_readable(window, qtbot):
    open_at(window, qtbot, "deep_sigmoid", (1280, 800))
    window.view.show_start()
    view = window.view
    assert view.zoom_level() >= READABLE_ZOOM
    first = window.scene.node_item("x").sceneBoundingRect()
    assert QRectF(view.viewport().rect()).contains(view.mapFromScene(first).boundingRect().toRectF())
