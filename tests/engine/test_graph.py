"""Graph file loading, refusals with messages, shape inference and the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import BackpropError, GraphError
from engine.graph import FORMAT, Graph

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def xor_dict() -> dict:
    return {
        "format": FORMAT, "version": 1, "name": "xor",
        "nodes": [
            {"id": "x", "type": "Input", "params": {"shape": [2]}},
            {"id": "h", "type": "Dense", "params": {"units": 2}},
            {"id": "a", "type": "Activation", "params": {"function": "tanh"}},
            {"id": "o", "type": "Dense", "params": {"units": 1}},
        ],
        "edges": [{"from": "x.out", "to": "h.in"}, {"from": "h.out", "to": "a.in"},
                  {"from": "a.out", "to": "o.in"}],
        "training": {"dataset": {"name": "xor"}, "loss": "mse"},
    }


def test_round_trip_keeps_everything():
    g = Graph.from_dict(xor_dict())
    g.nodes["h"].ui = {"x": 10.0, "y": 20.0}
    again = Graph.from_json(g.to_json())
    assert again == g
    assert again.nodes["h"].ui == {"x": 10.0, "y": 20.0}
    assert again.nodes["h"].params["units"] == 2
    assert again.to_dict() == g.to_dict()


def test_equality_ignores_positions_but_not_params():
    a, b = Graph.from_dict(xor_dict()), Graph.from_dict(xor_dict())
    b.nodes["o"].ui = {"x": 500, "y": 3}
    assert a == b
    b.set_param("h", "units", 3)
    assert a != b


def test_save_is_atomic_and_loadable(tmp_path):
    g = Graph.from_dict(xor_dict())
    path = tmp_path / "g.json"
    g.save(path)
    assert Graph.load(path) == g
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.update(format="something"), "not a Backprop Studio graph"),
        (lambda d: d.update(version=99), "version 99 is not supported"),
        (lambda d: d.update(version="1"), "'version' must be an integer"),
        (lambda d: d["nodes"][1].update(type="Dnse"), "unknown layer type 'Dnse'"),
        (lambda d: d["nodes"][1]["params"].update(units=0), "'units' = 0 is invalid"),
        (lambda d: d["nodes"][1]["params"].update(units="many"), "'units'"),
        (lambda d: d["nodes"][2]["params"].update(function="swish2"), "'function'"),
        (lambda d: d["nodes"][1]["params"].update(colour=3), "has no parameter 'colour'"),
        (lambda d: d["nodes"][3].update(id="h"), "duplicate node id 'h'"),
        (lambda d: d["nodes"][3].update(id="3bad"), "invalid node id"),
        (lambda d: d["edges"].append({"from": "zz.out", "to": "o.in"}), "missing node 'zz'"),
        (lambda d: d["edges"].append({"from": "x.out", "to": "o.in"}), "connected twice"),
        (lambda d: d["edges"].append({"from": "o.out", "to": "x.foo"}), "no input port 'foo'"),
        (lambda d: d.update(nodes="x"), "'nodes' must be a list"),
        (lambda d: d.update(training=[]), "'training' must be an object"),
    ],
)
def test_malformed_graph_is_refused_with_reason(mutate, expected):
    d = xor_dict()
    mutate(d)
    with pytest.raises(GraphError) as info:
        Graph.from_dict(d)
    assert expected in str(info.value)


def test_cycle_is_refused_naming_a_node():
    d = xor_dict()
    d["nodes"].append({"id": "m", "type": "Dense", "params": {"units": 2}})
    d["edges"] = [{"from": "x.out", "to": "h.in"}, {"from": "h.out", "to": "a.in"},
                  {"from": "a.out", "to": "m.in"}, {"from": "m.out", "to": "h.in"}]
    with pytest.raises(GraphError):
        Graph.from_dict(d)
    g = Graph.from_dict(xor_dict())
    problem = g.connection_problem("o", "h", "in")
    assert "already fed" in problem
    g.disconnect(g.edge_into_port("h", "in"))
    problem = g.connection_problem("o", "h", "in")
    assert "cycle" in problem
    with pytest.raises(GraphError):
        g.connect("o", "h")


def test_not_json_says_where():
    with pytest.raises(GraphError, match="not valid JSON .* line 1"):
        Graph.from_json("{nope", "bad.json")


def test_missing_file():
    with pytest.raises(GraphError, match="no such file"):
        Graph.load("/nonexistent/graph.json")


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                    max_leaves=20))
def test_fuzzed_json_only_raises_graph_errors(value):
    try:
        Graph.from_dict(value)
    except BackpropError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "type", "params", "ui"]),
                       st.one_of(st.text(max_size=5), st.integers(), st.dictionaries(
                           st.sampled_from(["units", "shape", "function", "bias"]),
                           st.one_of(st.integers(-3, 5), st.text(max_size=3), st.lists(st.integers(-2, 4)),
                                     st.booleans()))), max_size=4))
def test_fuzzed_nodes_only_raise_graph_errors(node):
    d = xor_dict()
    d["nodes"].append(node)
    try:
        Graph.from_dict(d)
    except BackpropError:
        pass


def test_shape_inference_and_counts():
    g = Graph.from_dict(xor_dict())
    report = g.infer_shapes()
    assert report.shapes == {"x": (2,), "h": (2,), "a": (2,), "o": (1,)}
    rows, total = g.summary()
    assert [r.params for r in rows] == [0, 2 * 2 + 2, 0, 2 * 1 + 1]
    assert total == 9


def test_unconnected_port_is_reported_per_node():
    g = Graph.from_dict(xor_dict())
    g.disconnect(g.edge_into_port("a", "in"))
    problems = g.problems()
    assert any(p.node == "a" and "not connected" in p.message for p in problems)
    assert any(p.node is None and "several outputs" in p.message for p in problems)


def test_dense_after_image_shape_suggests_flatten():
    g = Graph()
    g.add_node("Input", {"shape": [1, 28, 28]}, "img")
    g.add_node("Dense", {"units": 10}, "d")
    problem = g.connection_problem("img", "d", "in")
    assert problem is not None and "Flatten" in problem


def test_maxout_mismatch_is_refused_with_fix():
    g = Graph()
    g.add_node("Input", {"shape": [2]}, "x")
    g.add_node("Dense", {"units": 32}, "d")
    g.add_node("Activation", {"function": "maxout", "pieces": 3}, "m")
    g.connect("x", "d")
    problem = g.connection_problem("d", "m", "in")
    assert "divisible by 3" in problem and "33" in problem
    assert g.edge_into_port("m", "in") is None


def test_rename_moves_edges():
    g = Graph.from_dict(xor_dict())
    g.rename_node("h", "hidden")
    assert g.inputs_of("a") == [("hidden", "out")]
    assert g.inputs_of("hidden") == [("x", "out")]
    with pytest.raises(GraphError, match="already exists"):
        g.rename_node("hidden", "o")


def test_remove_and_insert_node_restores_graph():
    g = Graph.from_dict(xor_dict())
    before = g.copy()
    node, edges = g.remove_node("a")
    assert len(g.edges) == 1
    g.insert_node(node, edges)
    assert g == before


def test_missing_loss_is_a_problem():
    g = Graph.from_dict(xor_dict())
    g.training["loss"] = "hinge"
    assert any("loss" in p.message for p in g.problems())


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_examples_are_valid(path):
    g = Graph.load(path)
    assert g.problems() == []
    assert json.loads(path.read_text())["format"] == FORMAT
