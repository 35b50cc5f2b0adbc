"""Backprop Studio's GUI: a node editor and (later) live training views over the engine.

The studio is a view and controller: the engine's :class:`engine.graph.Graph` is the model,
:class:`studio.document.Document` wraps it with undo and file state, and everything on screen
listens to the document's signals.
"""

__version__ = "0.1.0"
