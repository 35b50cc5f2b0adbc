"""Mouse interactions as small state objects (not branches in one big event handler).

The scene starts an interaction on a press, forwards moves to it, and lets it finish on the
release. Each interaction talks to the document only through ``studio.edits``:

- :class:`NewLink`: drag from a port to a port. Hovering a candidate port asks the engine
  (``Graph.connection_problem``) and shows its reason at the cursor; releasing connects or
  reports the refusal. Dragging from an input port that is already wired picks that wire
  up: drop it on another input to move it, on empty canvas to remove it.
- :class:`MoveNodes`: Qt moves the selected cards (with grid snapping); on release the new
  positions become one undoable Move.
- Rubber-band selection is QGraphicsView's own (``RubberBandDrag``), and panning is the
  view's :class:`Pan` state (middle button, or Space + drag).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QGraphicsSceneMouseEvent, QGraphicsView, QToolTip

from engine.errors import BackpropError
from engine.graph import Edge
from studio import edits
from studio.canvas.edge_item import TempLinkItem
from studio.canvas.port_item import PortItem

if TYPE_CHECKING:
    from studio.canvas.node_item import NodeItem
    from studio.canvas.scene import EditorScene


class Interaction:
    """Base: a press started it; ``move`` and ``release`` follow; ``cancel`` undoes visuals."""

    def __init__(self, scene: "EditorScene") -> None:
        self.scene = scene

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        pass

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        pass

    def cancel(self) -> None:
        pass


class NewLink(Interaction):
    """Drawing a wire from ``port`` (either end); see the module docstring."""

    def __init__(self, scene: "EditorScene", port: PortItem) -> None:
        super().__init__(scene)
        self.picked: Edge | None = None
        if port.kind == "in":
            edge = scene.document.graph.edge_into_port(port.node_id, port.name)
            if edge is not None:  # pick the existing wire up from its loose end
                self.picked = edge
                scene.item_for_edge[edge].setVisible(False)
                port = scene.item_for_node[edge.src].output_port(edge.src_port) or port
        self.anchor = port
        self.target: PortItem | None = None
        self.problem: str | None = None
        self.temp = TempLinkItem()
        scene.addItem(self.temp)
        self._draw(port.scene_center())

    def _draw(self, cursor: QPointF) -> None:
        a = self.anchor.scene_center()
        if self.anchor.kind == "out":
            self.temp.set_ends(a, cursor)
        else:
            self.temp.set_ends(cursor, a)

    def _ends(self, other: PortItem) -> tuple[str, str, str, str] | None:
        """(src, src_port, dst, dst_port) when ``other`` is the right kind of port."""
        if other.kind == self.anchor.kind:
            return None
        out, inp = (self.anchor, other) if self.anchor.kind == "out" else (other, self.anchor)
        return out.node_id, out.name, inp.node_id, inp.name

    def check(self, other: PortItem) -> str | None:
        """The engine's reason to refuse anchor ↔ other, or None if it would connect."""
        ends = self._ends(other)
        if ends is None:
            kind = "an input" if self.anchor.kind == "out" else "an output"
            return f"connect to {kind} port"
        src, sp, dst, dp = ends
        graph = self.scene.document.graph
        if self.picked is not None:
            if (dst, dp) == (self.picked.dst, self.picked.dst_port):
                return None  # dropped back where it was
            graph = graph.copy()
            graph.disconnect(self.picked)
        return graph.connection_problem(src, dst, dp, sp)

    def move(self, event: QGraphicsSceneMouseEvent) -> None:
        pos = event.scenePos()
        port = self.scene.port_at(pos, exclude=self.anchor)
        if port is not self.target:
            if self.target is not None:
                self.target.set_candidate(None)
            self.target = port
            self.problem = self.check(port) if port is not None else None
            if port is not None:
                port.set_candidate(self.problem is None)
            self.temp.ok = None if port is None else self.problem is None
            if self.problem:
                self.scene.message.emit(self.problem)
                QToolTip.showText(event.screenPos(), self.problem)
            else:
                QToolTip.hideText()
        self._draw(port.scene_center() if port is not None and self.problem is None else pos)
        self.temp.update()

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        self.move(event)
        port, problem = self.target, self.problem
        self._cleanup()
        doc = self.scene.document
        if port is None:
            if self.picked is not None:
                doc.attempt(edits.disconnect, doc, self.picked)
            return
        if problem:
            self._refuse(problem, event.screenPos())
            return
        ends = self._ends(port)
        assert ends is not None
        src, sp, dst, dp = ends
        try:
            if self.picked is None:
                edits.connect(doc, src, dst, dp, sp)
            elif (dst, dp) != (self.picked.dst, self.picked.dst_port):
                edits.reconnect(doc, self.picked, Edge(src, sp, dst, dp))
        except BackpropError as err:
            self._refuse(str(err), event.screenPos())

    def _refuse(self, message: str, screen_pos: QPoint) -> None:
        self.scene.document.editRefused.emit(message)
        QToolTip.showText(screen_pos, message)

    def _cleanup(self) -> None:
        if self.target is not None:
            self.target.set_candidate(None)
        if self.picked is not None and self.picked in self.scene.item_for_edge:
            self.scene.item_for_edge[self.picked].setVisible(True)
        if self.temp.scene() is not None:
            self.scene.removeItem(self.temp)

    def cancel(self) -> None:
        self._cleanup()


class MoveNodes(Interaction):
    """Remembers where the selected cards started; one Move command on release."""

    def __init__(self, scene: "EditorScene", items: list["NodeItem"]) -> None:
        super().__init__(scene)
        self.items = items
        self.start = {it.node_id: it.pos() for it in items}
        scene.snapping_now = scene.snap_to_grid

    def release(self, event: QGraphicsSceneMouseEvent) -> None:
        self.scene.snapping_now = False
        moved = {it.node_id: (it.pos().x(), it.pos().y()) for it in self.items
                 if it.pos() != self.start.get(it.node_id)}
        if not moved:
            return
        doc = self.scene.document
        if doc.attempt(edits.move, doc, moved) is None and not doc.editable:
            self.cancel()

    def cancel(self) -> None:
        self.scene.snapping_now = False
        for it in self.items:
            if it.node_id in self.start:
                it.setPos(self.start[it.node_id])


class Pan:
    """Dragging the canvas with the middle button (or Space + left button)."""

    def __init__(self, view: QGraphicsView, start: QPoint) -> None:
        self.view = view
        self.last = start
        view.viewport().setCursor(QCursor(Qt.CursorShape.ClosedHandCursor))

    def move(self, pos: QPoint) -> None:
        delta = pos - self.last
        self.last = pos
        h, v = self.view.horizontalScrollBar(), self.view.verticalScrollBar()
        h.setValue(h.value() - delta.x())
        v.setValue(v.value() - delta.y())

    def release(self) -> None:
        self.view.viewport().unsetCursor()
