"""Driving the canvas the way a person does: mouse presses, moves and releases on the view."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QWidget

from studio.canvas.view import EditorView
from studio.panels.editors import ChoiceOrInts, IntsRow


def view_point(view: EditorView, scene_pos: QPointF) -> QPoint:
    return view.mapFromScene(scene_pos)


def drag(view: EditorView, start: QPointF, end: QPointF, steps: int = 6,
         modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    """Press at ``start``, move in steps, release at ``end`` (scene coordinates)."""
    QTest.qWait(20)  # as a person would: deferred refreshes (inspector, cards) have run before a drag
    vp = view.viewport()
    a, b = view_point(view, start), view_point(view, end)
    QTest.mouseMove(vp, a)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, modifier, a)
    for i in range(1, steps + 1):
        p = QPoint(a.x() + (b.x() - a.x()) * i // steps, a.y() + (b.y() - a.y()) * i // steps)
        QTest.mouseMove(vp, p)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, modifier, b)


def port_pos(window, node_id: str, port: str = "out", kind: str = "") -> QPointF:
    """Scene position of a port: ``kind`` "out" or "in"; by default an input port, except
    ``"out"``, the primary output."""
    item = window.scene.node_item(node_id)
    if not kind:
        kind = "out" if port == "out" else "in"
    port_item = item.output_port(port) if kind == "out" else item.input_port(port)
    assert port_item is not None, f"'{node_id}' has no {kind}put port {port!r}"
    return port_item.scene_center()


def connect_by_drag(window, src: str, dst: str, dst_port: str = "in", src_port: str = "out") -> None:
    drag(window.view, port_pos(window, src, src_port, "out"), port_pos(window, dst, dst_port, "in"))


def add_from_palette(window, title: str) -> str:
    """Double-click an entry of the layer palette; the new node becomes the selection."""
    tree = window.palette_panel.tree
    item = window.palette_panel.find_item(title)
    assert item is not None, f"palette has no entry {title!r}"
    tree.scrollToItem(item)
    where = tree.visualItemRect(item).center()
    QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=where)  # a real double-click
    QTest.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=where)  # starts with a click
    selected = window.scene.selected_node_ids()
    assert len(selected) == 1
    return selected[0]


def set_editor(widget: QWidget, value: Any) -> None:
    """Enter ``value`` in a parameter editor the way a person does: type into a spin box,
    tick, pick from a combo, type a line and leave it; for a list row, each element (with
    the link undone when the elements differ); for a word-or-numbers editor, pick the word
    or "custom" and then the numbers."""
    if isinstance(widget, ChoiceOrInts):
        if isinstance(value, str):
            widget.combo.setCurrentText(value)
            return
        widget.combo.setCurrentText(widget.custom)
        set_editor(widget.numbers, value)
    elif isinstance(widget, IntsRow):
        values = [value] * len(widget.spins) if isinstance(value, int) else list(value)
        if widget.link.isChecked() and len(set(values)) > 1:
            widget.link.click()
        for spin, v in zip(widget.spins, values, strict=True):
            spin.setValue(v)
    elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        widget.setValue(value)
    elif isinstance(widget, QCheckBox):
        widget.setChecked(value)
    elif isinstance(widget, QComboBox):
        widget.setCurrentText(value)
    elif isinstance(widget, QLineEdit):
        widget.setText(", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value))
        widget.editingFinished.emit()
    else:
        raise AssertionError(f"no way to edit a {type(widget).__name__}")


def settle_layout(win, quiet_ms: int = 60, timeout_ms: int = 3000) -> None:
    """Run the event loop until the canvas view stops changing (size, zoom, scroll).

    Showing the window and opening a document defer work to the event loop (first dock sizes,
    the start view once the window has its final size); under load it can still be pending when
    a test maps scene points to the screen, and a drag then presses beside its target."""
    def state():
        view = win.view
        return (view.viewport().size().toTuple(), view.transform(), view.horizontalScrollBar().value(),
                view.verticalScrollBar().value())

    last, quiet, waited = state(), 0, 0
    while quiet < quiet_ms and waited < timeout_ms:
        QTest.qWait(10)
        waited += 10
        now = state()
        quiet = quiet + 10 if now == last else 0
        last = now

