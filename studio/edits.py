"""The editing vocabulary: validate with the engine, then push one undo command.

Widgets (canvas, palette, inspector, menus) call these functions, never the commands or the
graph directly. Every refusal is an engine error (:class:`engine.errors.BackpropError`)
carrying the engine's own message, or :class:`studio.document.DocumentLocked` while a
training run holds the document; callers show ``str(err)``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine.errors import GraphError
from engine.graph import Edge, Graph, Node
from engine.layers import REGISTRY
from studio import commands as cmd
from studio.document import Document
from studio.layout import layered_layout

Point = tuple[float, float]
MIME_GRAPH = "application/x-backprop-studio-graph"
PASTE_GAP = 40.0  # between a pasted group and the cards it would otherwise cover
PASTE_GRID = 20.0  # pasted positions stay on the canvas grid


def add_node(doc: Document, type_name: str, params: Mapping[str, Any] | None = None,
             pos: Point | None = None, base_name: str | None = None) -> str:
    """Add a layer at ``pos`` (top-left of its card); returns the new node's id."""
    doc.check_editable()
    layer = REGISTRY.get_type(type_name)
    node_id = doc.graph.unique_id(base_name or layer.name.lower())
    valid = layer.validate_params(dict(params or {}), where=f"node '{node_id}'")
    ui = {"x": float(pos[0]), "y": float(pos[1])} if pos is not None else {}
    doc.push(cmd.AddNode(doc, Node(node_id, layer.name, valid, ui)))
    return node_id


def connect(doc: Document, src: str, dst: str, dst_port: str = "in", src_port: str = "out") -> Edge:
    """Wire ``src.src_port → dst.dst_port``; the engine's reason if it refuses."""
    doc.check_editable()
    problem = doc.graph.connection_problem(src, dst, dst_port, src_port)
    if problem:
        raise GraphError(problem, node=dst)
    edge = Edge(src, src_port, dst, dst_port)
    doc.push(cmd.Connect(doc, edge))
    return edge


def reconnect(doc: Document, old: Edge, new: Edge) -> None:
    """Move a wire's end (one undo step); checked by the engine as if ``old`` were gone."""
    doc.check_editable()
    trial = doc.graph.copy()
    trial.disconnect(old)
    problem = trial.connection_problem(new.src, new.dst, new.dst_port, new.src_port)
    if problem:
        raise GraphError(problem, node=new.dst)
    macro = cmd.Macro(doc, f"Reconnect {new.source} → {new.target}")
    macro.add(cmd.Disconnect(doc, old))
    macro.add(cmd.Connect(doc, new))
    doc.push(macro)


def disconnect(doc: Document, edge: Edge) -> None:
    doc.check_editable()
    if edge not in doc.graph.edges:
        raise GraphError(f"no wire {edge.source} → {edge.target}")
    doc.push(cmd.Disconnect(doc, edge))


def delete(doc: Document, node_ids: Iterable[str] = (), edges: Iterable[Edge] = (),
           text: str = "") -> None:
    """Delete nodes (with their wires) and wires, as one undo step."""
    doc.check_editable()
    nodes = [n for n in dict.fromkeys(node_ids) if n in doc.graph.nodes]
    wires = [e for e in dict.fromkeys(edges) if e in doc.graph.edges and e.src not in nodes
             and e.dst not in nodes]
    if not nodes and not wires:
        return
    macro = cmd.Macro(doc, text or _delete_text(nodes, wires))
    for e in wires:
        macro.add(cmd.Disconnect(doc, e))
    for n in nodes:
        macro.add(cmd.RemoveNode(doc, n))
    doc.push(macro)


def _delete_text(nodes: list[str], wires: list[Edge]) -> str:
    if len(nodes) == 1 and not wires:
        return f"Delete '{nodes[0]}'"
    if not nodes and len(wires) == 1:
        return f"Disconnect {wires[0].source} → {wires[0].target}"
    return f"Delete {len(nodes) + len(wires)} items"


def rename(doc: Document, old: str, new: str) -> None:
    """Rename a node; the engine checks the id on a copy first, so a refusal changes nothing."""
    doc.check_editable()
    if old == new:
        return
    trial = doc.graph.copy()
    trial.rename_node(old, new)
    doc.push(cmd.Rename(doc, old, new))


def set_param(doc: Document, node_id: str, name: str, value: Any, text: str = "") -> None:
    """Set one parameter; the layer's declaration refuses bad values (ParamError).

    Consecutive edits of one parameter merge into one undo step (spin-box arrows); with
    ``text`` the edit is a step of its own under that name (a one-click fix)."""
    doc.check_editable()
    node = doc.graph.node(node_id)
    node.layer.param_spec(name)
    wanted = dict(node.params)
    wanted[name] = value
    valid = node.layer.validate_params(wanted, where=f"node '{node_id}'")
    if valid == node.params:
        return
    change = cmd.SetParams(doc, node_id, valid, dict(node.params), name)
    if text:
        step = cmd.Macro(doc, text)
        step.add(change)
        doc.push(step)
    else:
        doc.push(change)


def move(doc: Document, positions: Mapping[str, Point], text: str = "", mergeable: bool = True) -> None:
    """Record new positions (already shown by the canvas) as one undo step."""
    doc.check_editable()
    moves = {}
    for node_id, (x, y) in positions.items():
        old = doc.position(node_id)
        if old is None or abs(old[0] - x) > 1e-6 or abs(old[1] - y) > 1e-6:
            moves[node_id] = (old, (float(x), float(y)))
    if moves:
        doc.push(cmd.Move(doc, moves, text, mergeable=mergeable))


# -- layout -----------------------------------------------------------------------------------
SizeFn = Callable[[Node], Point]


def layout_positions(graph: Graph, size_of: SizeFn, origin: Point = (0.0, 0.0)) -> dict[str, Point]:
    """Auto-layout of a whole graph (columns left to right, few crossings)."""
    nodes = list(graph.nodes)
    edges = []
    for e in graph.edges:
        ports = graph.nodes[e.dst].input_ports()
        edges.append((e.src, e.dst, ports.index(e.dst_port) / len(ports)))
    sizes = {n: size_of(graph.nodes[n]) for n in nodes}
    return layered_layout(nodes, edges, sizes, origin=origin)


def needs_layout(graph: Graph) -> bool:
    """True when some node has no stored position (a hand-written or generated file)."""
    return any(not (isinstance(n.ui.get("x"), (int, float)) and isinstance(n.ui.get("y"), (int, float)))
               for n in graph.nodes.values())


def apply_layout_in_place(graph: Graph, size_of: SizeFn) -> None:
    """Give every node a position before the graph is shown (opening a file: not an edit)."""
    for node_id, (x, y) in layout_positions(graph, size_of).items():
        graph.nodes[node_id].ui.update({"x": x, "y": y})


def auto_layout(doc: Document, size_of: SizeFn) -> None:
    """Lay out the current graph as one undoable step."""
    move(doc, layout_positions(doc.graph, size_of), text="Auto-layout", mergeable=False)


# -- clipboard ----------------------------------------------------------------------------------
def copy_text(doc: Document, node_ids: Iterable[str]) -> str:
    """The selected nodes and the wires between them, as a graph-file JSON document."""
    keep = [n for n in dict.fromkeys(node_ids) if n in doc.graph.nodes]
    data = doc.graph.to_dict()
    wanted = set(keep)
    data["nodes"] = [n for n in data["nodes"] if n["id"] in wanted]
    data["edges"] = [e for e in data["edges"]
                     if e["from"].split(".")[0] in wanted and e["to"].split(".")[0] in wanted]
    data["name"] = "clipboard"
    data.pop("description", None)
    return json.dumps(data, indent=2)


def _free_id(wanted: str, taken: set[str]) -> str:
    if wanted not in taken:
        return wanted
    stem = wanted.rstrip("0123456789") or wanted
    i = 1
    while f"{stem}{i}" in taken:
        i += 1
    return f"{stem}{i}"


def paste(doc: Document, text: str, size_of: SizeFn, at: Point | None = None,
          label: str = "Paste") -> list[str]:
    """Insert a graph-file JSON sub-graph; ids that clash are renamed; returns new ids.

    The sub-graph is checked by the engine (``Graph.from_json``) before anything changes.
    ``at`` puts the group's top-left corner there (the cursor), else it stays where it was
    copied; either way, if that place is taken the group moves down below the cards it would
    cover (a paste never lands on top of a card, its original included).
    """
    doc.check_editable()
    sub = Graph.from_json(text, source="clipboard")
    if not sub.nodes:
        return []
    if needs_layout(sub):
        apply_layout_in_place(sub, size_of)
    xs = [float(n.ui["x"]) for n in sub.nodes.values()]
    ys = [float(n.ui["y"]) for n in sub.nodes.values()]
    start = (at[0] - min(xs), at[1] - min(ys)) if at is not None else (0.0, 0.0)
    dx, dy = _free_offset(doc, sub, size_of, start)
    taken = set(doc.graph.nodes)
    rename: dict[str, str] = {}
    for old in sub.nodes:
        rename[old] = _free_id(old, taken)
        taken.add(rename[old])
    macro = cmd.Macro(doc, f"{label} {len(sub.nodes)} node{'s' if len(sub.nodes) != 1 else ''}")
    for node in sub.nodes.values():
        ui = dict(node.ui)
        ui.update({"x": float(node.ui["x"]) + dx, "y": float(node.ui["y"]) + dy})
        macro.add(cmd.AddNode(doc, Node(rename[node.id], node.type, copy.deepcopy(node.params), ui)))
    for e in sub.edges:
        macro.add(cmd.Connect(doc, Edge(rename[e.src], e.src_port, rename[e.dst], e.dst_port), check=False))
    doc.push(macro)
    return [rename[n] for n in sub.nodes]


def _card_rects(graph: Graph, size_of: SizeFn) -> list[tuple[float, float, float, float]]:
    out = []
    for node in graph.nodes.values():
        x, y = node.ui.get("x"), node.ui.get("y")
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            w, h = size_of(node)
            out.append((float(x), float(y), float(w), float(h)))
    return out


def _free_offset(doc: Document, sub: Graph, size_of: SizeFn, start: Point = (0.0, 0.0)) -> Point:
    """``start`` moved down by the smallest step, in whole group heights, where no pasted card
    covers a card."""
    pasted = [(x + start[0], y + start[1], w, h) for x, y, w, h in _card_rects(sub, size_of)]
    taken = _card_rects(doc.graph, size_of)
    top = min(y for _, y, _, _ in pasted)
    bottom = max(y + h for _, y, _, h in pasted)
    step = -(-(bottom - top + PASTE_GAP) // PASTE_GRID) * PASTE_GRID

    def clear(dy: float) -> bool:
        g = PASTE_GAP / 2
        return not any(px < tx + tw + g and tx < px + pw + g and py + dy < ty + th + g and ty < py + dy + ph + g
                       for px, py, pw, ph in pasted for tx, ty, tw, th in taken)

    dy = 0.0
    while not clear(dy) and dy < 1000 * step:
        dy += step
    return start[0], start[1] + dy


def duplicate(doc: Document, node_ids: Iterable[str], size_of: SizeFn) -> list[str]:
    return paste(doc, copy_text(doc, node_ids), size_of, label="Duplicate")


def cut(doc: Document, node_ids: Iterable[str]) -> str:
    """Copy, then delete as one step named "Cut"; returns the clipboard text."""
    ids = list(node_ids)
    text = copy_text(doc, ids)
    delete(doc, ids, text=f"Cut {len(ids)} node{'s' if len(ids) != 1 else ''}")
    return text
