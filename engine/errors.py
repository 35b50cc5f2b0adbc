"""Every error a user can cause, as one family of exceptions.

The CLI and the studio catch :class:`BackpropError` and show its message; anything
else escaping is a bug. Messages name the node (or file, or column) and say how to fix it.
"""

from __future__ import annotations


class BackpropError(Exception):
    """Base of every user-facing error: ``str(err)`` is the message to show."""

    def __init__(self, message: str, node: str | None = None) -> None:
        super().__init__(message)
        self.node = node


class GraphError(BackpropError):
    """The graph is malformed: unknown type, dangling edge, cycle, taken port..."""


class ParamError(GraphError):
    """A layer parameter has a bad value (wrong kind, out of range, not a choice)."""


class ShapeError(GraphError):
    """Input shapes do not fit a layer; the message says what to insert or change."""


class DataError(BackpropError):
    """A dataset cannot be made or read (bad file, missing column, wrong arrays)."""


class ModelFileError(BackpropError):
    """A ``.bpmodel`` file is corrupt, truncated, of an unknown version or inconsistent."""


class TrainingError(BackpropError):
    """Training cannot start or continue (bad configuration, incompatible data)."""


class ExportError(BackpropError):
    """A model cannot be exported to the requested format; names node and reason."""


class LessonError(BackpropError):
    """A lesson file is malformed or names something that does not exist (run, node, measure)."""
