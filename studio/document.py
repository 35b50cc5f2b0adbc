"""The open design: the engine Graph, its undo stack, its file and whether it is saved.

:class:`Document` is the only object that mutates the :class:`~engine.graph.Graph` of a
window. Its mutating methods are called by undo commands (``studio.commands``), never by
widgets; each emits a fine-grained signal (node added, edge removed, ...) and then
``changed`` once, after which :attr:`Document.report` holds fresh shape inference. Canvas
items, the inspector and the summary are views that listen.

A running training locks the document (:meth:`Document.lock`): every edit and every
undo/redo is then refused with the lock's reason, so nothing races the trainer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.errors import BackpropError, GraphError
from engine.graph import Edge, Graph, Node, ShapeReport

T = TypeVar("T")


@dataclass
class Removed:
    """A node taken out of the graph with its wires and their places (to undo exactly)."""

    node: Node
    edges: list[tuple[int, Edge]]
    index: int


class DocumentLocked(BackpropError):
    """An edit was attempted while the document is locked (e.g. a training run)."""


class Document(QObject):
    """A Graph plus undo history, file path and saved state. See the module docstring."""

    nodeAdded = Signal(str)
    nodeRemoved = Signal(str)
    nodeChanged = Signal(str)  # parameters changed (its ports may have changed too)
    nodeMoved = Signal(str)
    nodeRenamed = Signal(str, str)
    edgeAdded = Signal(object)
    edgeRemoved = Signal(object)
    graphReset = Signal()  # a different graph altogether (new, open): rebuild every view
    changed = Signal()  # after every edit (once per batch); report is fresh
    pathChanged = Signal()
    modifiedChanged = Signal(bool)
    lockChanged = Signal(str)  # the reason, or "" when unlocked
    editRefused = Signal(str)  # an edit was refused: the engine's (or the lock's) reason

    def __init__(self, graph: Graph | None = None, path: str | Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._graph = graph if graph is not None else Graph()
        self._path = Path(path) if path else None
        self._origin = ""
        self._report: ShapeReport | None = None
        self._batch_depth = 0
        self._pending = False
        self._lock_reason = ""
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)

    def _on_clean_changed(self, clean: bool) -> None:
        self.modifiedChanged.emit(not clean)

    # -- state ---------------------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The engine graph. Read it freely; change it only through commands."""
        return self._graph

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def modified(self) -> bool:
        return not self.undo_stack.isClean()

    @property
    def display_name(self) -> str:
        return self._path.name if self._path else (self._origin or "Untitled")

    @property
    def report(self) -> ShapeReport:
        """Shape inference of the current graph, cached; every mutation drops the cache
        before it emits anything, so signal handlers never read a stale report."""
        if self._report is None:
            self._report = self._graph.infer_shapes()
        return self._report

    def problem_for(self, node_id: str) -> str | None:
        """The engine's message for this node's first problem, or None."""
        found = self.report.problems_for(node_id)
        return found[0].message if found else None

    # -- lock ----------------------------------------------------------------------------
    @property
    def locked_reason(self) -> str:
        return self._lock_reason

    @property
    def editable(self) -> bool:
        return not self._lock_reason

    def lock(self, reason: str) -> None:
        """Refuse every edit with ``reason`` until :meth:`unlock` (training uses this)."""
        self._lock_reason = reason or "the document is locked"
        self.lockChanged.emit(self._lock_reason)

    def unlock(self) -> None:
        self._lock_reason = ""
        self.lockChanged.emit("")

    def check_editable(self) -> None:
        if self._lock_reason:
            raise DocumentLocked(f"cannot edit now: {self._lock_reason}")

    # -- undo stack ----------------------------------------------------------------------
    def push(self, command: QUndoCommand) -> None:
        """Apply ``command`` and record it (refused while locked)."""
        self.check_editable()
        self.undo_stack.push(command)

    def undo(self) -> None:
        self.check_editable()
        self.undo_stack.undo()

    def redo(self) -> None:
        self.check_editable()
        self.undo_stack.redo()

    def attempt(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run an edit; a refusal is announced through ``editRefused`` instead of raised."""
        try:
            return fn(*args, **kwargs)
        except BackpropError as err:
            self.editRefused.emit(str(err))
            return None

    # -- notification batching -------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group several mutations: ``changed`` is emitted once, at the end."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0 and self._pending:
                self._pending = False
                self.changed.emit()

    def _touched(self) -> None:
        """After a mutation: drop the cached report and announce ``changed`` (or defer it)."""
        self._report = None
        if self._batch_depth:
            self._pending = True
        else:
            self.changed.emit()

    # -- mutations (for commands only) -----------------------------------------------------
    def add_node(self, type_name: str, params: Mapping[str, Any] | None, node_id: str,
                 ui: Mapping[str, Any] | None = None) -> Node:
        node = self._graph.add_node(type_name, params, node_id, ui)
        self._report = None
        self.nodeAdded.emit(node.id)
        self._touched()
        return node

    def insert_node(self, removed: "Removed") -> None:
        """Put back a removed node and its wires where they were (undo of a delete)."""
        node = removed.node
        self._graph.insert_node(node, [])
        self._report = None
        order = [n for n in self._graph.nodes if n != node.id]
        order.insert(min(removed.index, len(order)), node.id)
        self._graph.nodes = {n: self._graph.nodes[n] for n in order}
        self.nodeAdded.emit(node.id)
        for index, edge in sorted(removed.edges):
            self._graph.edges.insert(index, edge)
            self._report = None
            self.edgeAdded.emit(edge)
        self._touched()

    def remove_node(self, node_id: str) -> "Removed":
        """Remove a node and its wires; the result restores them exactly."""
        index = list(self._graph.nodes).index(node_id)
        edges = [(i, e) for i, e in enumerate(self._graph.edges) if node_id in (e.src, e.dst)]
        for _, edge in reversed(edges):
            self._graph.disconnect(edge)
            self._report = None
            self.edgeRemoved.emit(edge)
        node, _ = self._graph.remove_node(node_id)
        self._report = None
        self.nodeRemoved.emit(node_id)
        self._touched()
        return Removed(node, edges, index)

    def connect(self, edge: Edge, check: bool = True, index: int | None = None) -> Edge:
        """Add a wire; the engine refuses it (GraphError) if it is not allowed.

        ``check=False`` restores a wire the engine accepted before (undo) or one read from
        a graph file (paste), which, like a loaded file, may carry a shape problem.
        ``index`` puts it back at its old place in the edge list (undo).
        """
        if check:
            edge = self._graph.connect(edge.src, edge.dst, edge.dst_port, edge.src_port)
            self._report = None
        else:
            taken = self._graph.edge_into_port(edge.dst, edge.dst_port)
            if taken is not None:
                raise GraphError(f"input '{edge.target}' is already fed by '{taken.src}'", node=edge.dst)
            self._graph.edges.append(edge)
            self._report = None
        if index is not None and 0 <= index < len(self._graph.edges) - 1:
            self._graph.edges.remove(edge)
            self._graph.edges.insert(index, edge)
            self._report = None
        self.edgeAdded.emit(edge)
        self._touched()
        return edge

    def disconnect(self, edge: Edge) -> int:
        """Remove a wire; returns its index in the edge list (for an exact undo)."""
        index = self._graph.edges.index(edge) if edge in self._graph.edges else -1
        self._graph.disconnect(edge)
        self._report = None
        self.edgeRemoved.emit(edge)
        self._touched()
        return index

    def rename_node(self, old: str, new: str) -> None:
        self._graph.rename_node(old, new)
        self._report = None
        self.nodeRenamed.emit(old, new)
        self._touched()

    def set_params(self, node_id: str,
                   params: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[int, Edge]]]:
        """Replace a node's parameters; returns the old ones and the wires dropped with
        their ports, with their indices in the edge list."""
        before = [(i, e) for i, e in enumerate(self._graph.edges) if node_id in (e.src, e.dst)]
        old = self._graph.set_params(node_id, params)
        self._report = None
        dropped = [(i, e) for i, e in before if e not in self._graph.edges]
        for _, edge in dropped:
            self.edgeRemoved.emit(edge)
        self.nodeChanged.emit(node_id)
        self._touched()
        return old, dropped

    def set_position(self, node_id: str, pos: tuple[float, float] | None) -> None:
        """Move a node (None: forget its position); shapes do not change, so only
        ``nodeMoved`` is emitted."""
        ui = self._graph.node(node_id).ui
        if pos is None:
            ui.pop("x", None)
            ui.pop("y", None)
        else:
            ui.update({"x": float(pos[0]), "y": float(pos[1])})
        self.nodeMoved.emit(node_id)

    def position(self, node_id: str) -> tuple[float, float] | None:
        ui = self._graph.node(node_id).ui
        if isinstance(ui.get("x"), (int, float)) and isinstance(ui.get("y"), (int, float)):
            return float(ui["x"]), float(ui["y"])
        return None

    # -- whole-document changes --------------------------------------------------------------
    def reset(self, graph: Graph, path: str | Path | None = None, origin: str = "") -> None:
        """Show a different graph (new/open): history cleared, document clean.

        ``origin`` names where a graph without a file of its own came from (the ``.bpmodel``
        it was read from), for the window title; saving still asks for a graph file name.
        """
        self.check_editable()
        self._graph = graph
        self._path = Path(path) if path else None
        self._origin = origin
        self._report = None
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.graphReset.emit()
        self.pathChanged.emit()
        self.modifiedChanged.emit(False)
        self.changed.emit()

    def save(self, path: str | Path | None = None) -> None:
        """Write the graph atomically (engine's writer) and mark the document clean."""
        target = Path(path) if path else self._path
        if target is None:
            raise BackpropError("the document has no file name yet; use Save As")
        self._graph.save(target)
        if target != self._path:
            self._path = target
            self.pathChanged.emit()
        self.undo_stack.setClean()

    def set_training(self, block: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the training block (for the SetTraining command); returns the old one."""
        import copy

        old = copy.deepcopy(self._graph.training)
        self._graph.training = copy.deepcopy(dict(block))
        self._touched()
        return old
