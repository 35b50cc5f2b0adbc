"""The canvas scene: one NodeItem per node and one EdgeItem per wire, kept in step with the
Document through its signals (``item_for_node`` / ``item_for_edge`` maps, as in
orange-canvas-core). The scene never edits the graph itself: interactions call
``studio.edits``, and the resulting document signals update the items.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPainter, QPen, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsSceneMouseEvent

from engine.graph import Edge
from studio import theme
from studio.canvas.edge_item import EdgeItem
from studio.canvas.interactions import Interaction, MoveNodes, NewLink
from studio.canvas.node_item import GRID, NodeItem, Wiring, format_shape
from studio.canvas.port_item import HIT_RADIUS, PortItem
from studio.document import Document

SCENE_EXTENT = 200_000.0


class EditorScene(QGraphicsScene):
    """Views of a Document's nodes and wires. ``message`` carries text for the status bar."""

    message = Signal(str)
    nodeActivated = Signal(str)  # double-click on a card
    contextMenuRequested = Signal(object, object)  # (screen QPoint, scene QPointF)

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.item_for_node: dict[str, NodeItem] = {}
        self.item_for_edge: dict[Edge, EdgeItem] = {}
        self.snap_to_grid = True
        self.snapping_now = False
        self._interaction: Interaction | None = None
        half = SCENE_EXTENT / 2
        self.setSceneRect(QRectF(-half, -half, SCENE_EXTENT, SCENE_EXTENT))
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        d = document
        d.nodeAdded.connect(self._on_node_added)
        d.nodeRemoved.connect(self._on_node_removed)
        d.nodeMoved.connect(self._on_node_moved)
        d.nodeRenamed.connect(self._on_node_renamed)
        d.nodeChanged.connect(self._on_node_changed)
        d.edgeAdded.connect(self._on_edge_added)
        d.edgeRemoved.connect(self._on_edge_removed)
        d.graphReset.connect(self.rebuild)
        d.changed.connect(self.refresh)
        d.lockChanged.connect(self._on_lock_changed)
        self.rebuild()

    # -- building ---------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Recreate every item from the document's graph (new or opened document)."""
        self.cancel_interaction()
        self.clear()
        self.item_for_node.clear()
        self.item_for_edge.clear()
        for node_id in self.document.graph.nodes:
            self._on_node_added(node_id)
        for edge in self.document.graph.edges:
            self._on_edge_added(edge)
        self.refresh()

    def _on_node_added(self, node_id: str) -> None:
        """A card for a new node; its texts are filled by :meth:`refresh` (``changed``)."""
        node = self.document.graph.node(node_id)
        item = NodeItem(node)
        pos = self.document.position(node_id)
        item.setPos(QPointF(*pos) if pos else QPointF(0, 0))
        item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, self.document.editable)
        self.addItem(item)
        self.item_for_node[node_id] = item

    def _on_node_removed(self, node_id: str) -> None:
        item = self.item_for_node.pop(node_id, None)
        if item is not None:
            for edge_item in list(item.edges):
                self._on_edge_removed(edge_item.edge)
            self.removeItem(item)

    def _on_node_moved(self, node_id: str) -> None:
        item = self.item_for_node.get(node_id)
        pos = self.document.position(node_id)
        if item is not None and pos is not None and item.pos() != QPointF(*pos):
            item.setPos(QPointF(*pos))

    def _on_node_renamed(self, old: str, new: str) -> None:
        item = self.item_for_node.pop(old)
        item.node_id = new
        self.item_for_node[new] = item
        for edge_item in list(item.edges):
            e = edge_item.edge
            del self.item_for_edge[e]
            edge_item.edge = Edge(new if e.src == old else e.src, e.src_port, new if e.dst == old else e.dst,
                                  e.dst_port)
            self.item_for_edge[edge_item.edge] = edge_item

    def _on_node_changed(self, node_id: str) -> None:
        """Parameters changed; ports may have come or gone: rebuild them before wires move."""
        item = self.item_for_node.get(node_id)
        if item is not None:
            item.rebuild_ports(self.document.graph.node(node_id))
            for edge_item in item.edges:
                edge_item.update_path()

    def _on_edge_added(self, edge: Edge) -> None:
        src, dst = self.item_for_node.get(edge.src), self.item_for_node.get(edge.dst)
        if src is None or dst is None or edge in self.item_for_edge:
            return
        item = EdgeItem(edge, src, dst)
        self.addItem(item)
        self.item_for_edge[edge] = item

    def _on_edge_removed(self, edge: Edge) -> None:
        item = self.item_for_edge.pop(edge, None)
        if item is not None:
            item.detach()
            self.removeItem(item)

    def refresh(self) -> None:
        """Re-read shapes, counts, problems and labels after an edit (one shape inference)."""
        doc = self.document
        shapes = doc.report.port_shapes
        wiring = Wiring(doc)
        for item in self.item_for_node.values():
            item.sync(doc, wiring)
        for edge, item in self.item_for_edge.items():
            item.set_label(format_shape(shapes.get((edge.src, edge.src_port))))

    def _on_lock_changed(self, reason: str) -> None:
        for item in self.item_for_node.values():
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, not reason)

    # -- queries ----------------------------------------------------------------------------
    def node_item(self, node_id: str) -> NodeItem | None:
        return self.item_for_node.get(node_id)

    def selected_node_ids(self) -> list[str]:
        return [it.node_id for it in self.selectedItems() if isinstance(it, NodeItem)]

    def selected_edges(self) -> list[Edge]:
        return [it.edge for it in self.selectedItems() if isinstance(it, EdgeItem)]

    def select_nodes(self, node_ids: list[str]) -> None:
        self.clearSelection()
        for node_id in node_ids:
            item = self.item_for_node.get(node_id)
            if item is not None:
                item.setSelected(True)

    def nodes_rect(self) -> QRectF:
        rect = QRectF()
        for item in self.item_for_node.values():
            rect = rect.united(item.sceneBoundingRect())
        return rect

    def port_at(self, pos: QPointF, exclude: PortItem | None = None) -> PortItem | None:
        """The port under ``pos``; over a card, its nearest port (easier to hit)."""
        r = HIT_RADIUS
        best: PortItem | None = None
        best_d = math.inf
        for item in self.items(QRectF(pos.x() - r, pos.y() - r, 2 * r, 2 * r)):
            if isinstance(item, PortItem) and item is not exclude:
                d = QLineF(item.scene_center(), pos).length()
                if d < best_d:
                    best, best_d = item, d
        if best is not None:
            return best
        for item in self.items(pos):
            if isinstance(item, NodeItem) and (exclude is None or item is not exclude.parentItem()):
                want = "in" if exclude is None or exclude.kind == "out" else "out"
                ports = list((item.inputs if want == "in" else item.outputs).values())
                if ports:
                    return min(ports, key=lambda p: QLineF(p.scene_center(), pos).length())
        return None

    def exact_port_at(self, pos: QPointF) -> PortItem | None:
        for item in self.items(pos, deviceTransform=QTransform()):
            if isinstance(item, PortItem):
                return item
        return None

    # -- mouse ------------------------------------------------------------------------------
    def cancel_interaction(self) -> None:
        if self._interaction is not None:
            self._interaction.cancel()
            self._interaction = None

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        if self._interaction is not None:
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton:
            port = self.exact_port_at(event.scenePos())
            if port is not None:
                if not self.document.editable:
                    self.document.editRefused.emit(f"cannot edit now: {self.document.locked_reason}")
                else:
                    self._interaction = NewLink(self, port)
                event.accept()
                return
        super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self.document.editable:
            items = [it for it in self.selectedItems() if isinstance(it, NodeItem)]
            grabbed = self.mouseGrabberItem()
            if items and isinstance(grabbed, NodeItem):
                self._interaction = MoveNodes(self, items)

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        if isinstance(self._interaction, NewLink):
            self._interaction.move(event)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        interaction, self._interaction = self._interaction, None
        if isinstance(interaction, NewLink):
            interaction.release(event)
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if interaction is not None:
            interaction.release(event)

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        for item in self.items(event.scenePos()):
            if isinstance(item, NodeItem):
                self.nodeActivated.emit(item.node_id)
                event.accept()
                return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event) -> None:  # noqa: N802
        under = [it for it in self.items(event.scenePos()) if isinstance(it, (NodeItem, EdgeItem))]
        if under and not under[0].isSelected():
            self.clearSelection()
            under[0].setSelected(True)
        self.contextMenuRequested.emit(event.screenPos(), event.scenePos())
        event.accept()

    # -- background -------------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        """A subtle two-level grid (minor lines hidden when zoomed far out)."""
        c = theme.colors()
        painter.fillRect(rect, c.background)
        scale = painter.worldTransform().m11()
        step = GRID
        while step * scale < 9:
            step *= 5
        left = math.floor(rect.left() / step) * step
        top = math.floor(rect.top() / step) * step
        minor, major = [], []
        x = left
        while x < rect.right():
            (major if round(x / step) % 5 == 0 else minor).append(QLineF(x, rect.top(), x, rect.bottom()))
            x += step
        y = top
        while y < rect.bottom():
            (major if round(y / step) % 5 == 0 else minor).append(QLineF(rect.left(), y, rect.right(), y))
            y += step
        pen = QPen(c.grid_minor, 0)
        painter.setPen(pen)
        painter.drawLines(minor)
        pen.setColor(c.grid_major)
        painter.setPen(pen)
        painter.drawLines(major)
