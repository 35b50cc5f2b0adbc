"""A node card: coloured header (category) with name and type, key parameters, output
shape and parameter count, typed ports, and a problem badge showing the engine's message.

Ports follow the layer's declaration: one input port per ``Node.input_ports()`` on the left
edge and one output port per ``Node.output_ports()`` on the right (Split's ``out0``,
``out1``, …; a recurrent layer's ``out`` and ``state``), labelled when there is more than
one; the card grows to fit the longer side.

The card reads everything from the Document in :meth:`NodeItem.sync`; it never computes a
shape or validates anything itself. ``set_tint`` is the hook for overlays (e.g. a later
gradient-norm heat map): a colour washes the card body, None removes it.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QApplication, QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from engine.graph import Edge, Node
from studio import theme
from studio.canvas.port_item import PortItem
from studio.text import readable

if TYPE_CHECKING:
    from studio.canvas.edge_item import EdgeItem
    from studio.document import Document

WIDTH = 188.0
HEADER = 26.0
ROW = 18.0
PORT_GAP = 22.0
RADIUS = 7.0
MIN_HEIGHT = 74.0
GRID = 20.0
LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
WARNING = QColor("#d99a1e")  # amber: works, but probably not what was meant (a size that does not divide)


def card_size(node: Node) -> tuple[float, float]:
    """Width and height of a node's card: tall enough for its longer side of ports."""
    ports = max(len(node.input_ports()), len(node.output_ports()))
    return WIDTH, max(MIN_HEIGHT, HEADER + 10 + ports * PORT_GAP)


def port_offsets(count: int, height: float) -> list[float]:
    """The y of ``count`` ports stacked PORT_GAP apart, centred on the card's body."""
    body_mid = HEADER + (height - HEADER) / 2
    first = body_mid - (count - 1) * PORT_GAP / 2
    return [first + i * PORT_GAP for i in range(count)]


def format_port_shapes(shapes: list[tuple[int, ...] | None]) -> str:
    """The card's output text: one shape, or each port's (``24 · 24`` for a Split)."""
    if all(s is None for s in shapes):
        return "?"
    return " · ".join(format_shape(s) for s in shapes)


def format_shape(shape: tuple[int, ...] | None) -> str:
    """``(32,)`` → ``32``; ``(1, 28, 28)`` → ``1×28×28``; unknown → ``?``."""
    if shape is None:
        return "?"
    return "×".join(str(s) for s in shape) if shape else "scalar"


def format_count(n: int) -> str:
    if n < 10_000:
        return f"{n:,} params" if n != 1 else "1 param"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k params"
    return f"{n / 1e6:.2f}M params"


def footer_texts(fm: QFontMetricsF, shapes: str, count: str, width: float) -> tuple[str, str]:
    """The card's second row, output shapes on the left and the weight count on the right,
    fitted to ``width`` without overprinting: the count first takes a shorter form
    ("1.5k params", then "1.5k"), then the shapes are elided (the Inspector shows them whole)."""
    gap = 8.0
    if not count:
        return shapes, count
    number = count.split()[0].replace(",", "")
    forms = [count]
    if number.isdigit() and int(number) >= 1000:
        short = f"{int(number) / 1000:.1f}k"
        forms += [f"{short} params", short]
    elif not number.isdigit():  # already "150.5k" or "1.25M"
        forms.append(number)
    for form in forms:
        if fm.horizontalAdvance(shapes) + gap + fm.horizontalAdvance(form) <= width:
            return shapes, form
    room = width - gap - fm.horizontalAdvance(forms[-1])
    return fm.elidedText(shapes, Qt.TextElideMode.ElideRight, max(room, 0.0)), forms[-1]


def time_steps(category: str, in_shapes: list | None) -> int | None:
    """T of a recurrent layer from the shape report (its input is (T, F)); None otherwise."""
    if category != "recurrent" or not in_shapes or in_shapes[0] is None or len(in_shapes[0]) != 2:
        return None
    return int(in_shapes[0][0])


class Wiring:
    """Who feeds whom and each node's first problem, computed once per refresh."""

    def __init__(self, doc: "Document") -> None:
        self.into: dict[str, dict[str, Edge]] = {}
        self.feeding: set[tuple[str, str]] = set()  # (node, output port) that feed a wire
        for e in doc.graph.edges:
            self.into.setdefault(e.dst, {})[e.dst_port] = e
            self.feeding.add((e.src, e.src_port))
        self.problems: dict[str, str] = {}
        for problem in doc.report.problems:
            if problem.node is not None:
                self.problems.setdefault(problem.node, problem.message)
        self.warnings: dict[str, list[str]] = {}
        for warning in doc.report.warnings:
            if warning.node is not None:
                self.warnings.setdefault(warning.node, []).append(warning.message)


class _Fonts:
    """Card fonts, made once the application exists (sizes relative to the UI font)."""

    title: QFont
    small: QFont
    body: QFont
    ready = False

    @classmethod
    def get(cls) -> "type[_Fonts]":
        if not cls.ready:
            base = QApplication.font()
            size = base.pointSizeF() if base.pointSizeF() > 0 else 9.0
            cls.title = QFont(base)
            cls.title.setPointSizeF(size)
            cls.title.setWeight(QFont.Weight.DemiBold)
            cls.body = QFont(base)
            cls.body.setPointSizeF(size)
            cls.small = QFont(base)
            cls.small.setPointSizeF(size * 0.9)
            cls.ready = True
        return cls


class BadgeItem(QGraphicsItem):
    """The "!" on a card: red for a validation problem, amber for a warning (``kind``);
    its tooltip is the engine's message."""

    R = 8.0

    def __init__(self, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setAcceptHoverEvents(True)
        self.setZValue(3)
        self.kind = "error"

    def boundingRect(self) -> QRectF:
        return QRectF(-self.R - 1, -self.R - 1, 2 * self.R + 2, 2 * self.R + 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        c = theme.colors()
        painter.setPen(QPen(c.card, 1.5))
        painter.setBrush(c.error if self.kind == "error" else WARNING)
        painter.drawEllipse(QPointF(0, 0), self.R, self.R)
        painter.setPen(QColor("#ffffff"))
        font = QFont(_Fonts.get().title)
        font.setWeight(QFont.Weight.Bold)
        painter.setFont(font)
        painter.drawText(self.boundingRect(), Qt.AlignmentFlag.AlignCenter, "!")


class NodeItem(QGraphicsItem):
    """The view of one graph node. Positions are the card's top-left corner."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node_id = node.id
        self.type_name = node.type
        self.category = node.layer.category
        self.key_text = ""
        self.shape_text = "?"
        self.count_text = ""
        self.time_text = ""  # "× T" on recurrent layers: the card stands for T steps of the cell
        self.problem: str | None = None
        self.warnings: list[str] = []
        self.tint: QColor | None = None
        self.edges: set["EdgeItem"] = set()
        self.inputs: dict[str, PortItem] = {}
        self.outputs: dict[str, PortItem] = {}
        self.badge = BadgeItem(self)
        self.badge.setVisible(False)
        self._size = card_size(node)
        self._path = QPainterPath()
        self._header = QPainterPath()
        self.setFlags(
            QGraphicsItem.GraphicsItemFlag.ItemIsMovable
            | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
            | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges
        )
        self.setAcceptHoverEvents(True)
        self._build_ports(node.input_ports(), node.output_ports())

    # -- geometry ------------------------------------------------------------------------
    def _build_ports(self, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> None:
        self.prepareGeometryChange()
        for port in (*self.inputs.values(), *self.outputs.values()):
            port.setParentItem(None)
            if port.scene() is not None:
                port.scene().removeItem(port)
        w, h = self._size
        self.inputs = {name: PortItem(self, "in", name) for name in inputs}
        self.outputs = {name: PortItem(self, "out", name) for name in outputs}
        for port, y in zip(self.inputs.values(), port_offsets(len(inputs), h), strict=True):
            port.setPos(0.0, y)
        for port, y in zip(self.outputs.values(), port_offsets(len(outputs), h), strict=True):
            port.setPos(w, y)
        self.badge.setPos(w - 2, 2)
        self._path = QPainterPath()
        self._path.addRoundedRect(QRectF(0, 0, w, h), RADIUS, RADIUS)
        clip = QPainterPath()
        clip.addRect(QRectF(0, 0, w, HEADER))
        self._header = self._path.intersected(clip)

    @property
    def size(self) -> tuple[float, float]:
        return self._size

    def input_port(self, name: str) -> PortItem | None:
        return self.inputs.get(name)

    def output_port(self, name: str) -> PortItem | None:
        return self.outputs.get(name)

    @property
    def output(self) -> PortItem:
        """The primary output port (the first declared)."""
        return next(iter(self.outputs.values()))

    def boundingRect(self) -> QRectF:
        w, h = self._size
        return QRectF(-4, -4, w + 8, h + 10)

    def shape(self) -> QPainterPath:
        return self._path

    # -- state from the document ---------------------------------------------------------
    def sync(self, doc: "Document", wiring: "Wiring | None" = None) -> None:
        """Refresh text, ports, badge and port states from the document's graph and report.

        ``wiring`` is the graph's connectivity computed once for a whole refresh, so that
        refreshing every card stays linear in the size of the graph.
        """
        wiring = wiring or Wiring(doc)
        node = doc.graph.node(self.node_id)
        self.rebuild_ports(node)
        report = doc.report
        shape = report.shapes.get(self.node_id)
        in_shapes = report.in_shapes.get(self.node_id, [])
        count = 0
        if shape is not None and in_shapes is not None and all(s is not None for s in in_shapes):
            count = node.layer.param_count(node.params, in_shapes)  # type: ignore[arg-type]
        self.type_name = node.type
        self.key_text = node.layer.summary_text(node.params)
        port_shapes = [report.port_shapes.get((self.node_id, p)) for p in self.outputs]
        self.shape_text = format_shape(shape) if len(port_shapes) < 2 else format_port_shapes(port_shapes)
        self.count_text = format_count(count) if count else ""
        steps = time_steps(node.layer.category, in_shapes)
        self.time_text = f"× {steps}" if steps else ""
        self.problem = wiring.problems.get(self.node_id)
        self.warnings = wiring.warnings.get(self.node_id, [])
        self.badge.kind = "error" if self.problem else "warning"
        self.badge.setVisible(self.problem is not None or bool(self.warnings))
        self.badge.setToolTip(self.problem or "<br>".join(html.escape(w) for w in self.warnings)
                              + ("<br><i>Select the node: the Inspector offers a fix.</i>" if self.warnings else ""))
        self.badge.update()
        unrolled = f"<br>Unrolled over T = {steps} time steps (× {steps})." if steps else ""
        self.setToolTip(f"<b>{self.node_id}</b> — {node.type}<br>{html.escape(readable(node.layer.help))}{unrolled}")
        sources = wiring.into.get(self.node_id, {})
        for i, (name, port) in enumerate(self.inputs.items()):
            edge = sources.get(name)
            got = in_shapes[i] if i < len(in_shapes) else None
            tip = f"input '{name}'" + (f" ← {edge.src} ({format_shape(got)})" if edge else " (not connected)")
            port.set_state(len(got) if got else None, edge is not None, tip)
        for (name, port), got in zip(self.outputs.items(), port_shapes, strict=True):
            what = f"output '{name}' {format_shape(got)}" if len(self.outputs) > 1 else f"output {format_shape(got)}"
            port.set_state(len(got) if got else None, (self.node_id, name) in wiring.feeding,
                           f"{what}; drag to an input port to connect")
        self.update()

    def rebuild_ports(self, node: Node) -> None:
        """Match the ports (and card size) to the node's current parameters (Add's
        ``inputs``, Split's ``parts``); wires find their ports again by name."""
        inputs, outputs = node.input_ports(), node.output_ports()
        if (tuple(self.inputs), tuple(self.outputs)) != (inputs, outputs) or card_size(node) != self._size:
            self._size = card_size(node)
            self._build_ports(inputs, outputs)

    def set_tint(self, color: QColor | None) -> None:
        """Overlay hook: wash the card body with ``color`` (its alpha is respected)."""
        self.tint = QColor(color) if color is not None else None
        self.update()

    # -- painting ----------------------------------------------------------------------------
    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        c = theme.colors()
        w, h = self._size
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        head = theme.category_color(self.category)
        if lod > 0.4:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 60 if theme.is_dark() else 28))
            painter.drawRoundedRect(QRectF(1.5, 3, w, h), RADIUS, RADIUS)
        painter.setBrush(c.card)
        border = c.error if self.problem else c.card_border
        painter.setPen(QPen(border, 1.2 if not self.problem else 1.6))
        painter.drawPath(self._path)
        if self.tint is not None:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self.tint)
            painter.drawPath(self._path)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(head)
        painter.drawPath(self._header)
        if self.isSelected():
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(c.selection, 2.2))
            painter.drawRoundedRect(QRectF(-1.5, -1.5, w + 3, h + 3), RADIUS + 1.5, RADIUS + 1.5)
        if lod < 0.35:
            return
        self._paint_text(painter, c, w, h)

    def _paint_text(self, painter: QPainter, c: theme.CanvasColors, w: float, h: float) -> None:
        fonts = _Fonts.get()
        pad = 10.0
        painter.setFont(fonts.small)
        fm_small = QFontMetricsF(fonts.small)
        type_w = fm_small.horizontalAdvance(self.type_name)
        header_text = QColor(c.header_text)
        header_text.setAlpha(205)
        painter.setPen(header_text)
        painter.drawText(QRectF(w - pad - type_w - 6, 0, type_w + 4, HEADER),
                         RIGHT, self.type_name)
        painter.setFont(fonts.title)
        painter.setPen(c.header_text)
        fm = QFontMetricsF(fonts.title)
        name = fm.elidedText(self.node_id, Qt.TextElideMode.ElideRight, w - 2 * pad - type_w - 8)
        painter.drawText(QRectF(pad, 0, w - 2 * pad, HEADER), LEFT, name)
        left = pad + 2.0 + self._paint_port_labels(painter, c, self.inputs, 8.0, LEFT)
        right = pad + self._paint_port_labels(painter, c, self.outputs, w - 8.0, RIGHT)
        painter.setFont(fonts.body)
        painter.setPen(c.text)
        fmb = QFontMetricsF(fonts.body)
        inner = w - left - right
        top = HEADER + 6
        time_w = fmb.horizontalAdvance(self.time_text) + 8 if self.time_text else 0.0
        key = fmb.elidedText(self.key_text or "—", Qt.TextElideMode.ElideRight, inner - time_w)
        painter.drawText(QRectF(left, top, inner, ROW), LEFT, key)
        if self.time_text:
            painter.drawText(QRectF(left, top, inner, ROW), RIGHT, self.time_text)
        painter.setPen(c.text_dim)
        painter.setFont(fonts.small)
        row2 = QRectF(left, top + ROW + 2, inner, ROW)
        shapes, count = footer_texts(fm_small, f"→ {self.shape_text}", self.count_text, inner)
        painter.drawText(row2, LEFT, shapes)
        if count:
            painter.drawText(row2, RIGHT, count)

    @staticmethod
    def _paint_port_labels(painter: QPainter, c: theme.CanvasColors, ports: dict[str, PortItem],
                           edge_x: float, align: Qt.AlignmentFlag) -> float:
        """Names beside the ports when a side has several; returns the width they take."""
        if len(ports) < 2:
            return 0.0
        font = _Fonts.get().small
        width = max(QFontMetricsF(font).horizontalAdvance(name) for name in ports) + 4
        painter.setFont(font)
        painter.setPen(c.text_dim)
        x = edge_x if align == LEFT else edge_x - width
        for name, port in ports.items():
            painter.drawText(QRectF(x, port.pos().y() - 8, width, 16), align, name)
        return width + 6.0

    # -- movement --------------------------------------------------------------------------
    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value):  # noqa: N802 (Qt name)
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionChange:
            scene = self.scene()
            if scene is not None and getattr(scene, "snapping_now", False):
                p = QPointF(value)
                return QPointF(round(p.x() / GRID) * GRID, round(p.y() / GRID) * GRID)
        elif change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for edge in self.edges:
                edge.update_path()
        elif change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self.setZValue(1.0 if self.isSelected() else 0.0)
        return super().itemChange(change, value)


def snap(value: float) -> float:
    return math.floor(value / GRID + 0.5) * GRID
