"""Document + commands + edits, without a window: every edit is one undo step that undoes
exactly; refused edits change nothing and carry the engine's reason; the lock refuses."""

from __future__ import annotations

import json

import pytest

from engine.errors import GraphError, ParamError
from engine.graph import Edge, Graph
from studio import edits
from studio.canvas.node_item import card_size
from studio.document import Document, DocumentLocked

XOR = {
    "format": "backprop-studio.graph", "version": 1, "name": "xor",
    "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [2]}, "ui": {"x": 0, "y": 0}},
        {"id": "h", "type": "Dense", "params": {"units": 2}, "ui": {"x": 260, "y": 0}},
        {"id": "a", "type": "Activation", "params": {"function": "tanh"}, "ui": {"x": 520, "y": 0}},
        {"id": "o", "type": "Dense", "params": {"units": 1}, "ui": {"x": 780, "y": 0}},
    ],
    "edges": [{"from": "x.out", "to": "h.in"}, {"from": "h.out", "to": "a.in"},
              {"from": "a.out", "to": "o.in"}],
}


@pytest.fixture
def doc(qapp):
    return Document(Graph.from_dict(json.loads(json.dumps(XOR))))


def snapshot(doc: Document) -> dict:
    return json.loads(json.dumps(doc.graph.to_dict(), sort_keys=True))


EDITS = {
    "add": lambda d: edits.add_node(d, "Dense", {"units": 7}, (100, 200)),
    "delete": lambda d: edits.delete(d, ["h"]),
    "delete_wire": lambda d: edits.delete(d, [], [Edge("h", "out", "a", "in")]),
    "move": lambda d: edits.move(d, {"h": (300.0, 80.0), "a": (560.0, 80.0)}),
    "connect": lambda d: (edits.disconnect(d, Edge("a", "out", "o", "in")), edits.connect(d, "h", "o")),
    "disconnect": lambda d: edits.disconnect(d, Edge("x", "out", "h", "in")),
    "rename": lambda d: edits.rename(d, "h", "hidden"),
    "param": lambda d: edits.set_param(d, "h", "units", 5),
    "paste": lambda d: edits.paste(d, edits.copy_text(d, ["h", "a"]), card_size),
    "cut": lambda d: edits.cut(d, ["a", "o"]),
    "layout": lambda d: edits.auto_layout(d, card_size),
}


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_each_edit_undoes_and_redoes_exactly(doc, kind):
    before = snapshot(doc)
    n = doc.undo_stack.count()
    EDITS[kind](doc)
    after = snapshot(doc)
    assert after != before
    steps = doc.undo_stack.count() - n
    assert steps == (2 if kind == "connect" else 1)
    assert doc.modified
    for _ in range(steps):
        doc.undo()
    assert snapshot(doc) == before
    assert not doc.modified
    for _ in range(steps):
        doc.redo()
    assert snapshot(doc) == after


def test_rename_keeps_wires_and_changes_only_the_id(doc):
    edits.rename(doc, "h", "hidden")
    assert [e.to_json() for e in doc.graph.edges_into("a")] == [{"from": "hidden.out", "to": "a.in"}]
    assert "h" not in doc.graph.nodes


REFUSED = {
    "port taken": ("x", "a", "in"),
    "cycle": ("o", "h", "in"),
    "self": ("h", "h", "in"),
    "no such port": ("x", "h", "in3"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_connections_change_nothing_and_carry_the_engine_reason(doc, case):
    src, dst, port = REFUSED[case]
    if case == "cycle":
        edits.disconnect(doc, Edge("x", "out", "h", "in"))  # free h.in so only the cycle is wrong
    before, count = snapshot(doc), doc.undo_stack.count()
    reason = doc.graph.connection_problem(src, dst, port)
    assert reason
    with pytest.raises(GraphError) as err:
        edits.connect(doc, src, dst, port)
    assert str(err.value) == reason
    assert snapshot(doc) == before and doc.undo_stack.count() == count


def test_shape_mismatch_is_refused_with_the_engine_message(doc):
    edits.add_node(doc, "Add", {}, (0, 300))
    edits.connect(doc, "x", "add1", "in0")  # (2,)
    edits.add_node(doc, "Dense", {"units": 3}, (0, 500))
    edits.connect(doc, "x", "dense1")
    before = snapshot(doc)
    with pytest.raises(GraphError) as err:
        edits.connect(doc, "dense1", "add1", "in1")  # (3,) into an Add fed (2,)
    assert str(err.value) == doc.graph.connection_problem("dense1", "add1", "in1")
    assert snapshot(doc) == before


def test_bad_parameter_and_bad_name_are_refused_by_the_declarations(doc):
    before = snapshot(doc)
    with pytest.raises(ParamError, match="units"):
        edits.set_param(doc, "h", "units", 0)
    with pytest.raises(GraphError, match="invalid node id"):
        edits.rename(doc, "h", "2bad")
    with pytest.raises(GraphError, match="already exists"):
        edits.rename(doc, "h", "a")
    assert snapshot(doc) == before and doc.undo_stack.count() == 0


def test_consecutive_moves_of_the_same_nodes_merge_into_one_step(doc):
    edits.move(doc, {"h": (300.0, 0.0)})
    edits.move(doc, {"h": (340.0, 40.0)})
    assert doc.undo_stack.count() == 1
    doc.undo()
    assert doc.position("h") == (260.0, 0.0)


def test_spin_box_clicks_on_one_parameter_merge_into_one_step(doc):
    for units in (3, 4, 5):
        edits.set_param(doc, "h", "units", units)
    assert doc.undo_stack.count() == 1
    doc.undo()
    assert doc.graph.node("h").params["units"] == 2


def test_fewer_ports_drop_their_wires_and_undo_brings_them_back(doc):
    add = edits.add_node(doc, "Add", {"inputs": 3}, (0, 300))
    for port in ("in0", "in1", "in2"):
        edits.connect(doc, "x", add, port)
    edits.set_param(doc, add, "inputs", 2)
    assert doc.graph.edge_into_port(add, "in2") is None
    doc.undo()
    assert doc.graph.edge_into_port(add, "in2") == Edge("x", "out", add, "in2")


def test_paste_renames_clashing_ids_keeps_inner_wires_and_offsets_positions(doc):
    text = edits.copy_text(doc, ["h", "a"])
    new = edits.paste(doc, text, card_size)
    assert new == ["h1", "a1"]
    assert Edge("h1", "out", "a1", "in") in doc.graph.edges
    assert doc.graph.edges_into("h1") == []  # the wire from x was outside the selection
    hx, hy = doc.position("h1")
    assert hx == 260.0 and hy > 0.0  # below the originals, never on top of them
    assert doc.undo_stack.count() == 1
    doc.undo()
    assert set(doc.graph.nodes) == {"x", "h", "a", "o"}


def test_paste_of_garbage_is_refused_with_the_engine_message(doc):
    before = snapshot(doc)
    with pytest.raises(GraphError, match="not valid JSON"):
        edits.paste(doc, "{nope", card_size)
    with pytest.raises(GraphError, match="unknown layer type"):
        bad = dict(XOR, nodes=[{"id": "q", "type": "Quantum", "params": {}}], edges=[])
        edits.paste(doc, json.dumps(bad), card_size)
    assert snapshot(doc) == before


def test_a_locked_document_refuses_every_edit_and_undo(doc):
    edits.set_param(doc, "h", "units", 4)
    doc.lock("training is running")
    before = snapshot(doc)
    for fn in EDITS.values():
        with pytest.raises(DocumentLocked, match="training is running"):
            fn(doc)
    with pytest.raises(DocumentLocked):
        doc.undo()
    assert snapshot(doc) == before
    refused = []
    doc.editRefused.connect(refused.append)
    assert doc.attempt(edits.add_node, doc, "Dense") is None
    assert refused == ["cannot edit now: training is running"]
    doc.unlock()
    doc.undo()
    assert doc.graph.node("h").params["units"] == 2


def test_changed_is_emitted_once_per_compound_edit(doc):
    seen = []
    doc.changed.connect(lambda: seen.append(1))
    edits.delete(doc, ["h", "a", "o"])
    assert seen == [1]
    doc.undo()
    assert seen == [1, 1]


def test_report_is_fresh_after_each_edit(doc):
    assert doc.report.shapes["o"] == (1,)
    edits.set_param(doc, "o", "units", 3)
    assert doc.report.shapes["o"] == (3,)
    edits.disconnect(doc, Edge("a", "out", "o", "in"))
    assert doc.problem_for("o") == doc.graph.infer_shapes().problems_for("o")[0].message
