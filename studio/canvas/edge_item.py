"""A wire: a horizontal-tangent Bézier from an output port to an input port, labelled with
the shape of the tensor it carries (taken from the engine's shape inference)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QFontMetricsF, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyleOptionGraphicsItem, QWidget

from engine.graph import Edge
from studio import theme
from studio.canvas.node_item import _Fonts

if TYPE_CHECKING:
    from studio.canvas.node_item import NodeItem


def wire_path(a: QPointF, b: QPointF) -> QPainterPath:
    """The route of a wire from output ``a`` to input ``b``.

    Forwards: a cubic leaving and entering horizontally. Backwards (the target is left of the
    source, e.g. the next band of a wrapped layout): a U-turn out of the source, a run back
    through the space between rows, and a U-turn into the target, so the wire never cuts
    through the cards it passes.
    """
    dx = b.x() - a.x()
    path = QPainterPath(a)
    if dx > -10.0:
        reach = max(40.0, abs(dx) * 0.5)
        path.cubicTo(QPointF(a.x() + reach, a.y()), QPointF(b.x() - reach, b.y()), b)
        return path
    if abs(b.y() - a.y()) < 140.0:
        mid_y = max(a.y(), b.y()) + 70.0  # same row: run underneath the cards
    else:
        mid_y = (a.y() + b.y()) / 2.0
    bulge = 56.0
    path.cubicTo(QPointF(a.x() + bulge, a.y()), QPointF(a.x() + bulge, mid_y), QPointF(a.x(), mid_y))
    path.lineTo(QPointF(b.x(), mid_y))
    path.cubicTo(QPointF(b.x() - bulge, mid_y), QPointF(b.x() - bulge, b.y()), b)
    return path


class EdgeItem(QGraphicsPathItem):
    """The view of one :class:`~engine.graph.Edge` between two node cards."""

    def __init__(self, edge: Edge, src: "NodeItem", dst: "NodeItem") -> None:
        super().__init__()
        self.edge = edge
        self.src = src
        self.dst = dst
        self.label = ""
        self._label_rect = QRectF()
        self._hover = False
        self.setZValue(-1.0)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        src.edges.add(self)
        dst.edges.add(self)
        self.update_path()

    def detach(self) -> None:
        self.src.edges.discard(self)
        self.dst.edges.discard(self)

    def set_label(self, text: str) -> None:
        if text != self.label:
            self.label = text
            self.update_path()
        self.setToolTip(f"{self.edge.source} → {self.edge.target}: {text}")

    def endpoints(self) -> tuple[QPointF, QPointF]:
        out = self.src.output_port(self.edge.src_port)
        a = out.scene_center() if out is not None else self.src.scenePos()
        port = self.dst.input_port(self.edge.dst_port)
        b = port.scene_center() if port is not None else self.dst.scenePos()
        return a, b

    def update_path(self) -> None:
        self.prepareGeometryChange()
        a, b = self.endpoints()
        path = wire_path(a, b)
        self.setPath(path)
        if self.label:
            fm = QFontMetricsF(_Fonts.get().small)
            tw, th = fm.horizontalAdvance(self.label) + 12, fm.height() + 4
            mid = path.pointAtPercent(0.5)
            self._label_rect = QRectF(mid.x() - tw / 2, mid.y() - th / 2, tw, th)
        else:
            self._label_rect = QRectF()

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-4, -4, 4, 4).united(self._label_rect)

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(10.0)
        out = stroker.createStroke(self.path())
        if not self._label_rect.isNull():
            out.addRect(self._label_rect)
        return out

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        c = theme.colors()
        selected = self.isSelected()
        color = c.wire_selected if selected or self._hover else c.wire
        painter.setPen(QPen(color, 2.6 if selected else 1.8, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path())
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if self.label and lod > 0.45:
            painter.setPen(QPen(color, 1.0))
            painter.setBrush(c.label_bg)
            r = self._label_rect
            painter.drawRoundedRect(r, r.height() / 2, r.height() / 2)
            painter.setPen(c.label_text)
            painter.setFont(_Fonts.get().small)
            painter.drawText(r, Qt.AlignmentFlag.AlignCenter, self.label)

    def hoverEnterEvent(self, event) -> None:  # noqa: N802
        self._hover = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:  # noqa: N802
        self._hover = False
        self.update()


class TempLinkItem(QGraphicsPathItem):
    """The dashed wire that follows the cursor while a connection is being drawn."""

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(5.0)
        self.ok: bool | None = None

    def set_ends(self, a: QPointF, b: QPointF) -> None:
        self.setPath(wire_path(a, b))

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        c = theme.colors()
        color = c.wire_selected if self.ok is None else (c.ok if self.ok else c.error)
        painter.setPen(QPen(color, 2.0, Qt.PenStyle.DashLine, Qt.PenCapStyle.RoundCap))
        painter.drawPath(self.path())
