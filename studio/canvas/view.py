"""The canvas view: zoom around the cursor, pan, fit, rubber-band selection, drops from the
palette. Scroll bars are hidden: the canvas is navigated like a node editor, not a page."""

from __future__ import annotations

import json

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsView, QWidget

from studio.canvas.interactions import Pan
from studio.canvas.scene import EditorScene

MIME_LAYER = "application/x-backprop-studio-layer"
MIN_ZOOM, MAX_ZOOM = 0.05, 4.0
FIT_MARGIN = 40.0  # scene units left around the graph by Fit to View
FIT_MAX_ZOOM = 1.25  # Fit never magnifies a small graph beyond this
READABLE_ZOOM = 0.5  # below this, card texts are too small to read: the first view shows the start instead


class EditorView(QGraphicsView):
    """Shows an EditorScene. ``layerDropped(type, params, base_name, scene_pos)`` on drops."""

    zoomChanged = Signal(float)
    layerDropped = Signal(str, dict, str, QPointF)

    def __init__(self, scene: EditorScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing
                            | QPainter.RenderHint.SmoothPixmapTransform)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        # The grid is redrawn from a pixmap: live gradient tints repaint cards several times a
        # second while training, and re-stroking hundreds of grid lines each time cost the UI.
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._pan: Pan | None = None
        self._space = False

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt name)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.resetCachedContent()  # the cached grid has the old theme's colours
        super().changeEvent(event)

    @property
    def editor_scene(self) -> EditorScene:
        return self.scene()  # type: ignore[return-value]

    # -- zoom and fit --------------------------------------------------------------------
    def zoom_level(self) -> float:
        return self.transform().m11()

    def set_zoom(self, level: float, anchor: QPoint | None = None) -> None:
        """Zoom to ``level`` (1.0 = 100 %), keeping the scene point under ``anchor`` fixed."""
        level = max(MIN_ZOOM, min(MAX_ZOOM, level))
        factor = level / self.zoom_level()
        if abs(factor - 1.0) < 1e-9:
            return
        if anchor is None:
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
            self.scale(factor, factor)
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        else:
            before = self.mapToScene(anchor)
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
            self.scale(factor, factor)
            after = self.mapToScene(anchor)
            delta = after - before
            self.translate(delta.x(), delta.y())
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.zoomChanged.emit(self.zoom_level())

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom_level() * 1.25)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom_level() / 1.25)

    def reset_zoom(self) -> None:
        self.set_zoom(1.0)

    def fit_all(self, *, max_zoom: float = FIT_MAX_ZOOM) -> None:
        """Show every node (or the selection, if any) with a margin, never magnified beyond
        ``max_zoom``. Keyword-only: a QAction's ``triggered(bool)`` passed positionally once
        made this ``max_zoom=False`` and zoomed every graph down to a speck."""
        scene = self.editor_scene
        selected = [scene.item_for_node[n] for n in scene.selected_node_ids()]
        rect = QRectF()
        for item in selected or scene.item_for_node.values():
            rect = rect.united(item.sceneBoundingRect())
        if rect.isNull():
            self.resetTransform()
            self.centerOn(0, 0)
            self.zoomChanged.emit(1.0)
            return
        m = FIT_MARGIN
        rect = rect.adjusted(-m, -m, m, m)
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom_level() > max_zoom:
            self.set_zoom(max_zoom)
        self.centerOn(rect.center())
        self.zoomChanged.emit(self.zoom_level())

    def show_start(self, min_zoom: float = READABLE_ZOOM, zoom: float = 0.85) -> None:
        """Fit everything if that stays readable; otherwise show the inputs' end of the
        graph at a readable zoom (a 200-layer network fitted whole is a grey line)."""
        self.fit_all()
        if self.zoom_level() >= min_zoom:
            return
        scene = self.editor_scene
        doc = scene.document
        starts = [scene.item_for_node[n] for n in doc.graph.nodes
                  if n in scene.item_for_node and not doc.graph.edges_into(n)]
        rect = QRectF()
        for item in starts or list(scene.item_for_node.values())[:1]:
            rect = rect.united(item.sceneBoundingRect())
        self.set_zoom(zoom)
        view_w = self.viewport().width() / zoom
        self.centerOn(QPointF(rect.left() - FIT_MARGIN + view_w / 2, rect.center().y()))
        self.zoomChanged.emit(self.zoom_level())

    def center_scene_pos(self) -> QPointF:
        return self.mapToScene(self.viewport().rect().center())

    # -- events ------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        pixel = event.pixelDelta()
        if not pixel.isNull() and not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()  # trackpad: pan
            h.setValue(h.value() - pixel.x())
            v.setValue(v.value() - pixel.y())
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.set_zoom(self.zoom_level() * (1.15 ** steps), event.position().toPoint())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.MiddleButton or (
                self._space and event.button() == Qt.MouseButton.LeftButton):
            self._pan = Pan(self, event.position().toPoint())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan is not None:
            self._pan.move(event.position().toPoint())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan is not None:
            self._pan.release()
            self._pan = None
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.setDragMode(QGraphicsView.DragMode.NoDrag)
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if event.key() == Qt.Key.Key_Escape:
            self.editor_scene.cancel_interaction()
            self.editor_scene.clearSelection()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
            self.viewport().unsetCursor()
            return
        super().keyReleaseEvent(event)

    # -- drops from the palette ------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasFormat(MIME_LAYER):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasFormat(MIME_LAYER):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        data = event.mimeData()
        if not data.hasFormat(MIME_LAYER):
            super().dropEvent(event)
            return
        spec = json.loads(bytes(data.data(MIME_LAYER)).decode("utf-8"))
        pos = self.mapToScene(event.position().toPoint())
        self.layerDropped.emit(spec["type"], spec.get("params", {}), spec.get("base", ""), pos)
        event.acceptProposedAction()
