"""One small QUndoCommand per kind of edit. Commands touch only the Document.

Each command stores just enough to do and undo itself; validation happens before a command
is built (``studio.edits`` asks the engine), so ``redo`` replays a change the engine already
accepted. Compound edits (delete a selection, paste, cut, auto-layout) are :class:`Macro`
commands with children, which batch the document's ``changed`` notification.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from PySide6.QtGui import QUndoCommand

from engine.graph import Edge, Node
from studio.document import Document, Removed

Point = tuple[float, float]
MOVE_ID = 1001
PARAM_ID = 1002


class Command(QUndoCommand):
    """Base of the commands (text shown in the history view)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)


class Macro(Command):
    """A compound edit: parts run in order (undo in reverse), one ``changed`` at the end.

    The parts are kept in a Python list rather than as Qt child commands, so Python owns
    them outright and Qt never deletes an object Python still references.
    """

    def __init__(self, doc: Document, text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.parts: list[QUndoCommand] = []

    def add(self, part: QUndoCommand) -> QUndoCommand:
        self.parts.append(part)
        return part

    def redo(self) -> None:
        with self.doc.batch():
            for part in self.parts:
                part.redo()

    def undo(self) -> None:
        with self.doc.batch():
            for part in reversed(self.parts):
                part.undo()


class AddNode(Command):
    def __init__(self, doc: Document, node: Node) -> None:
        super().__init__(f"Add {node.type} '{node.id}'")
        self.doc = doc
        self.snapshot = copy.deepcopy(node)

    def redo(self) -> None:
        n = self.snapshot
        self.doc.add_node(n.type, n.params, n.id, n.ui)

    def undo(self) -> None:
        self.doc.remove_node(self.snapshot.id)


class RemoveNode(Command):
    def __init__(self, doc: Document, node_id: str) -> None:
        super().__init__(f"Delete '{node_id}'")
        self.doc = doc
        self.node_id = node_id
        self.removed: Removed | None = None

    def redo(self) -> None:
        self.removed = self.doc.remove_node(self.node_id)

    def undo(self) -> None:
        assert self.removed is not None
        self.doc.insert_node(self.removed)


class Connect(Command):
    """Add a wire. ``check=False`` for wires read from a file (paste), which the engine
    accepted structurally but which may carry a shape problem, as a loaded file may."""

    def __init__(self, doc: Document, edge: Edge, check: bool = True) -> None:
        super().__init__(f"Connect {edge.source} → {edge.target}")
        self.doc = doc
        self.edge = edge
        self.check = check

    def redo(self) -> None:
        self.doc.connect(self.edge, check=self.check)

    def undo(self) -> None:
        self.doc.disconnect(self.edge)


class Disconnect(Command):
    def __init__(self, doc: Document, edge: Edge) -> None:
        super().__init__(f"Disconnect {edge.source} → {edge.target}")
        self.doc = doc
        self.edge = edge
        self.index = -1

    def redo(self) -> None:
        self.index = self.doc.disconnect(self.edge)

    def undo(self) -> None:
        self.doc.connect(self.edge, check=False, index=self.index)


class Rename(Command):
    def __init__(self, doc: Document, old: str, new: str) -> None:
        super().__init__(f"Rename '{old}' to '{new}'")
        self.doc = doc
        self.old, self.new = old, new

    def redo(self) -> None:
        self.doc.rename_node(self.old, self.new)

    def undo(self) -> None:
        self.doc.rename_node(self.new, self.old)


class SetParams(Command):
    """Change parameters of one node. Consecutive changes of the same parameter merge
    (spin-box arrows), so one undo returns to the value before the first click."""

    def __init__(self, doc: Document, node_id: str, new: Mapping[str, Any], old: Mapping[str, Any],
                 label: str) -> None:
        super().__init__(f"Set {label} of '{node_id}'")
        self.doc = doc
        self.node_id = node_id
        self.new, self.old = dict(new), dict(old)
        self.label = label
        self.dropped: list[tuple[int, Edge]] = []

    def id(self) -> int:
        return PARAM_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetParams) or (other.node_id, other.label) != (self.node_id, self.label):
            return False
        if other.dropped:
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        _, self.dropped = self.doc.set_params(self.node_id, self.new)

    def undo(self) -> None:
        with self.doc.batch():
            self.doc.set_params(self.node_id, self.old)
            for index, edge in self.dropped:
                self.doc.connect(edge, check=False, index=index)


class Move(Command):
    """Move nodes: ``moves`` maps node id to (old position, new position).

    Consecutive moves of the same set of nodes merge into one step (Qt's mergeWith).
    """

    def __init__(self, doc: Document, moves: Mapping[str, tuple[Point | None, Point]],
                 text: str = "", mergeable: bool = True) -> None:
        label = text or (f"Move '{next(iter(moves))}'" if len(moves) == 1 else f"Move {len(moves)} nodes")
        super().__init__(label)
        self.doc = doc
        self.moves = dict(moves)
        self.mergeable = mergeable

    def id(self) -> int:
        return MOVE_ID if self.mergeable else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, Move) or not other.mergeable or set(other.moves) != set(self.moves):
            return False
        self.moves = {k: (self.moves[k][0], other.moves[k][1]) for k in self.moves}
        return True

    def redo(self) -> None:
        for node_id, (_, new) in self.moves.items():
            self.doc.set_position(node_id, new)

    def undo(self) -> None:
        for node_id, (old, _) in self.moves.items():
            self.doc.set_position(node_id, old)


TRAINING_ID = 1003


class SetTraining(QUndoCommand):
    """Replace the training block (dataset, loss, optimizer, ...). Consecutive edits of the
    same field merge (spin-box arrows), so one undo returns to the value before the first."""

    def __init__(self, doc: Document, new: Mapping[str, Any], old: Mapping[str, Any], label: str,
                 parent: QUndoCommand | None = None) -> None:
        super().__init__(f"Set training {label}", parent)
        self.doc = doc
        self.new, self.old = copy.deepcopy(dict(new)), copy.deepcopy(dict(old))
        self.label = label

    def id(self) -> int:
        return TRAINING_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetTraining) or other.label != self.label:
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.doc.set_training(self.new)

    def undo(self) -> None:
        self.doc.set_training(self.old)
