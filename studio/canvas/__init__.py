"""The node-editor canvas: scene (items kept in step with the Document), view (zoom, pan,
fit, drops), items (node cards, ports, wires) and mouse interactions."""

from studio.canvas.node_item import NodeItem, card_size
from studio.canvas.scene import EditorScene
from studio.canvas.view import MIME_LAYER, EditorView

__all__ = ["EditorScene", "EditorView", "MIME_LAYER", "NodeItem", "card_size"]
