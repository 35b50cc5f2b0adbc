"""A port: the small circle on a node card where a wire starts (output) or ends (input).

Ports are typed by the tensor they carry: the colour says the rank of the shape (flat
features, sequence, image) once shape inference knows it; a filled port is connected.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from studio import theme

RADIUS = 5.0
HIT_RADIUS = 9.0


class PortItem(QGraphicsItem):
    """An input (``kind == "in"``) or output (``"out"``) port of a node card."""

    def __init__(self, parent: QGraphicsItem, kind: str, name: str) -> None:
        super().__init__(parent)
        self.kind = kind
        self.name = name
        self.rank: int | None = None
        self.connected = False
        self.hovered = False
        self.candidate: bool | None = None  # during a link drag: True ok, False refused
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setZValue(2)

    @property
    def node_id(self) -> str:
        return self.parentItem().node_id  # type: ignore[attr-defined]

    def scene_center(self) -> QPointF:
        return self.mapToScene(QPointF(0.0, 0.0))

    def set_state(self, rank: int | None, connected: bool, tooltip: str) -> None:
        if (rank, connected) != (self.rank, self.connected):
            self.rank, self.connected = rank, connected
            self.update()
        self.setToolTip(tooltip)

    def set_candidate(self, ok: bool | None) -> None:
        if ok != self.candidate:
            self.candidate = ok
            self.update()

    def boundingRect(self) -> QRectF:
        r = HIT_RADIUS
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        c = theme.colors()
        color = theme.rank_color(self.rank)
        r = RADIUS + (1.5 if self.hovered or self.candidate is not None else 0.0)
        if self.candidate is not None:
            ring = c.ok if self.candidate else c.error
            painter.setPen(QPen(ring, 2.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(QPointF(0, 0), r + 3, r + 3)
        painter.setPen(QPen(color.darker(130) if self.connected else color, 1.6))
        painter.setBrush(QBrush(color if self.connected else QColor(c.card)))
        painter.drawEllipse(QPointF(0, 0), r, r)

    def hoverEnterEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.hovered = True
        self.update()
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event) -> None:  # noqa: N802
        self.hovered = False
        self.update()
        super().hoverLeaveEvent(event)
