"""Every registered layer type, run the same way (cases and references in layer_harness.py).

For each case: forward against an independent NumPy reference, backward against central
finite differences in float64, parameter count against a hand formula, the graph-file round
trip, and float32 staying float32. Then the behaviour the table cannot express: evaluation
mode, BatchNorm's running statistics, and the shape errors people see on the canvas.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from layer_harness import (
    CASES,
    PARAM_COUNTS,
    REFERENCES,
    Case,
    backward_ports,
    finite_difference,
    forward,
    forward_ports,
    gradient_target,
    make_runtime,
    output_ports,
    reference_ports,
    sample_inputs,
)

from engine.compiler import compile_graph
from engine.errors import ParamError, ShapeError
from engine.graph import Graph
from engine.layers import REGISTRY

by_id = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])


# ---- the table covers everything ----------------------------------------------------
def test_every_registered_type_has_cases_a_reference_and_a_count():
    covered = {c.type for c in CASES}
    for name in REGISTRY:
        where = "add it to tests/engine/layer_harness.py"
        assert name in covered, f"layer type {name} has no test case; {where}"
        assert name in REFERENCES, f"layer type {name} has no reference forward; {where}"
        assert name in PARAM_COUNTS, f"layer type {name} has no parameter-count formula; {where}"
        if not _accepts_flat_inputs(REGISTRY[name]):
            continue
        flat = 2 if REGISTRY[name].category == "recurrent" else 1  # recurrent layers read (time, features)
        assert any(all(len(s) == flat for s in c.in_shapes) for c in CASES if c.type == name), \
            f"layer type {name} has no case with flat (F,) inputs (sequence layers: (T, F))"


def _accepts_flat_inputs(layer) -> bool:
    """Whether flat (F,) inputs are valid for the layer (convolutions and pools refuse them;
    recurrent layers are checked for (T, F) instead)."""
    if layer.category == "recurrent":
        return True
    p = layer.default_params()
    try:
        layer.shape(p, [(8,)] * len(layer.inputs(p)))
    except ShapeError:
        return False
    return True


def test_every_activation_function_and_preset_is_a_case():
    layer = REGISTRY["Activation"]
    tested = [c.p() for c in CASES if c.type == "Activation"]
    assert {p["function"] for p in tested} == set(layer.param_spec("function").choices)
    for name, preset in layer.presets.items():
        assert any(all(p[k] == v for k, v in preset.items()) for p in tested), f"preset {name} untested"


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


# ---- per case -------------------------------------------------------------------------
@by_id
def test_forward_matches_reference(case: Case):
    rt = make_runtime(case)
    xs = sample_inputs(case)
    ys = forward_ports(rt, xs)
    refs = reference_ports(case, rt, xs)
    shapes = case.layer.port_shapes(rt.p, list(case.in_shapes))
    for port, y, ref in zip(output_ports(rt), ys, refs, strict=True):
        assert y.shape == (case.batch,) + shapes[port], f"output '{port}' has the wrong shape"
        np.testing.assert_allclose(y, ref, rtol=1e-9, atol=1e-12, err_msg=f"output '{port}'")


@by_id
def test_backward_matches_finite_differences(case: Case):
    rt = make_runtime(case)
    xs = sample_inputs(case)
    ports = case.layer.inputs(rt.p)
    rng = np.random.default_rng(7)
    gs = [rng.normal(size=y.shape) for y in forward_ports(rt, xs)]
    gs_before = [g.copy() for g in gs]
    dxs = backward_ports(rt, gs)
    for g, before in zip(gs, gs_before, strict=True):
        np.testing.assert_array_equal(g, before, err_msg="backward modified dy in place")
    assert len(dxs) == len(ports)
    analytic = {k: v.copy() for k, v in rt.G.items()}
    target = gradient_target(case, rt, xs)

    def loss() -> float:
        return float(sum(np.sum(y * g) for y, g in zip(target(), gs, strict=True)))

    for port, x, dx in zip(ports, xs[:len(ports)], dxs, strict=True):
        assert dx.shape == x.shape, f"gradient for input '{port}' has the wrong shape"
        np.testing.assert_allclose(dx, finite_difference(loss, x), rtol=1e-6, atol=1e-7,
                                   err_msg=f"∂L/∂{port}")
    for name in list(rt.W):
        np.testing.assert_allclose(analytic[name], finite_difference(loss, rt.W[name]), rtol=1e-6,
                                   atol=1e-7, err_msg=f"∂L/∂{name}")


@by_id
def test_parameter_gradients_do_not_depend_on_input_gradients(case: Case):
    """With need_input_grad False (layer fed by data) the weight gradients are the same."""
    a, b = make_runtime(case), make_runtime(case)
    b.need_input_grad = False
    xs = sample_inputs(case)
    rng = np.random.default_rng(7)
    gs = [rng.normal(size=y.shape) for y in forward_ports(a, xs)]
    forward(b, xs)
    backward_ports(a, gs)
    backward_ports(b, gs)
    for name in a.G:
        np.testing.assert_allclose(b.G[name], a.G[name], rtol=1e-12)


@by_id
def test_parameter_count_matches_hand_formula_and_forward(case: Case):
    rt = make_runtime(case)
    forward(rt, sample_inputs(case))
    used = set(rt.W.read)
    shapes = list(case.in_shapes)
    count = case.layer.param_count(rt.p, shapes)
    assert count == PARAM_COUNTS[case.type](rt.p, shapes)
    assert used == set(rt.W), f"declared weights {set(rt.W)} but forward read {used}"
    assert count == sum(rt.W[k].size for k in used)


@by_id
def test_graph_file_round_trip_keeps_the_layer(case: Case):
    g = Graph("round_trip")
    if case.type == "Input":
        node = g.add_node("Input", case.params, "x")
    else:
        g.add_node("Input", {"shape": list(case.in_shapes[0])}, "x")
        node = g.add_node(case.type, case.params, "n")
        for port in node.input_ports():
            g.connect("x", "n", port)
    text = g.to_json()
    again = Graph.from_json(text)
    assert again == g
    assert again.nodes[node.id].params == case.p()
    assert json.loads(text)["nodes"][-1]["type"] == case.type
    if all(s == case.in_shapes[0] for s in case.in_shapes):
        report = again.infer_shapes()
        assert report.problems == []
        expected = case.layer.port_shapes(case.p(), list(case.in_shapes))
        assert {port: report.port_shapes[(node.id, port)] for port in node.output_ports()} == expected
        assert report.shapes[node.id] == expected[node.output_ports()[0]]


@by_id
def test_float32_stays_float32(case: Case):
    rt = make_runtime(case, np.float32)
    xs = sample_inputs(case, np.float32)
    ys = forward_ports(rt, xs)
    for y, ref in zip(ys, reference_ports(case, rt, xs), strict=True):
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, ref, rtol=2e-4, atol=2e-5)
    dxs = backward_ports(rt, [np.ones_like(y) for y in ys])
    assert all(dx.dtype == np.float32 for dx in dxs)
    assert all(v.dtype == np.float32 for v in list(rt.G.values()) + list(rt.B.values()))
    assert all(np.all(np.isfinite(v)) for v in list(dxs) + list(rt.G.values()))


# ---- evaluation mode ----------------------------------------------------------------
def test_dropout_is_the_identity_when_evaluating():
    rt = make_runtime(Case("Dropout", {"rate": 0.5}, ((10,),)), np.float32)
    x = np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32)
    np.testing.assert_array_equal(forward(rt, [x]), x)
    np.testing.assert_array_equal(rt.type.backward(rt, x)[0], x)


def test_dropout_drops_the_rate_and_keeps_the_mean_while_training():
    rate = 0.3
    rt = make_runtime(Case("Dropout", {"rate": rate}, ((1000,),), training=True), np.float32)
    x = np.ones((20, 1000), np.float32)
    y = forward(rt, [x])
    dropped = np.mean(y == 0)
    assert abs(dropped - rate) < 0.02  # 20,000 draws: σ ≈ 0.003
    np.testing.assert_allclose(y[y != 0], 1 / (1 - rate), rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.03
    other = forward(rt, [x], seed=99)
    assert not np.array_equal(other, y), "a different rng state must give a different mask"


def _bn_batches(shape, n, count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(2.0, 3.0, size=(n,) + shape) for _ in range(count)]


@pytest.mark.parametrize("shape", [(4,), (3, 2, 2), (3, 4)], ids=str)
def test_batchnorm_running_statistics_follow_pytorch_convention(shape):
    momentum, n = 0.2, 5
    rt = make_runtime(Case("BatchNorm", {"momentum": momentum}, (shape,), training=True))
    axes = (0, 2, 3) if len(shape) == 3 else tuple(range(len(shape)))
    running_mean, running_var = np.zeros(rt.B["running_mean"].shape), np.ones(rt.B["running_var"].shape)
    for x in _bn_batches(shape, n, 3):
        forward(rt, [x])
        count = x.size // running_mean.size
        running_mean = (1 - momentum) * running_mean + momentum * x.mean(axis=axes)
        running_var = (1 - momentum) * running_var + momentum * x.var(axis=axes) * count / (count - 1)
    np.testing.assert_allclose(rt.B["running_mean"], running_mean, rtol=1e-12)
    np.testing.assert_allclose(rt.B["running_var"], running_var, rtol=1e-12)

    rt.training = False
    x = _bn_batches(shape, n, 1, seed=5)[0]
    frozen = {k: v.copy() for k, v in rt.B.items()}
    y = forward(rt, [x])
    for k in frozen:
        np.testing.assert_array_equal(rt.B[k], frozen[k], err_msg="evaluation must not update " + k)
    bshape = (1, -1, 1, 1) if len(shape) == 3 else (-1,)
    expected = (rt.W["gamma"].reshape(bshape) * (x - running_mean.reshape(bshape))
                / np.sqrt(running_var.reshape(bshape) + 1e-5) + rt.W["beta"].reshape(bshape))
    np.testing.assert_allclose(y, expected, rtol=1e-10)


def test_batchnorm_training_output_is_normalised_per_channel():
    rt = make_runtime(Case("BatchNorm", {}, ((3, 4, 4),), training=True))
    rt.W["gamma"][...], rt.W["beta"][...] = 1.0, 0.0
    x = _bn_batches((3, 4, 4), 8, 1)[0] * np.array([1.0, 10.0, 0.1]).reshape(1, 3, 1, 1)
    y = forward(rt, [x])
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0, rtol=1e-3)


def test_batchnorm_matches_pytorch_over_several_steps():
    torch = pytest.importorskip("torch")
    shape, n, momentum = (3, 2, 2), 4, 0.3
    rt = make_runtime(Case("BatchNorm", {"momentum": momentum}, (shape,), training=True))
    ref = torch.nn.BatchNorm2d(3, momentum=momentum, eps=1e-5).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(rt.W["gamma"]))
        ref.bias.copy_(torch.from_numpy(rt.W["beta"]))
    g = np.random.default_rng(3).normal(size=(n,) + shape)
    for x in _bn_batches(shape, n, 3):
        y = forward(rt, [x])
        dx = rt.type.backward(rt, g)[0]
        xt = torch.from_numpy(x).requires_grad_(True)
        ref.zero_grad()
        yt = ref(xt)
        (yt * torch.from_numpy(g)).sum().backward()
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(rt.G["gamma"], ref.weight.grad.numpy(), rtol=1e-8)
        np.testing.assert_allclose(rt.G["beta"], ref.bias.grad.numpy(), rtol=1e-8)
    np.testing.assert_allclose(rt.B["running_mean"], ref.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rt.B["running_var"], ref.running_var.numpy(), rtol=1e-12)
    rt.training = False
    ref.eval()
    x = _bn_batches(shape, n, 1, seed=9)[0]
    np.testing.assert_allclose(forward(rt, [x]), ref(torch.from_numpy(x)).detach().numpy(), rtol=1e-10)


# ---- shape errors and parameter refusals ---------------------------------------------
def _problems(nodes, edges) -> dict[str, str]:
    g = Graph.from_dict({
        "format": "backprop-studio.graph", "version": 1,
        "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
        "edges": [{"from": a, "to": b} for a, b in edges],
    })
    return {p.node: p.message for p in g.infer_shapes().problems}


def test_add_mismatch_names_both_shapes_and_suggests_a_dense():
    msgs = _problems([("x", "Input", {"shape": [32]}), ("d", "Dense", {"units": 16}), ("a", "Add", {})],
                     [("x", "d"), ("x", "a.in0"), ("d", "a.in1")])
    msg = msgs["a"]
    assert msg.startswith("Add 'a'")
    assert "(32,)" in msg and "(16,)" in msg and "Dense(32)" in msg and "in1" in msg


def test_maxout_needs_a_divisible_input():
    msgs = _problems([("x", "Input", {"shape": [5]}),
                      ("m", "Activation", {"function": "maxout", "pieces": 2})], [("x", "m")])
    assert "divisible by 2" in msgs["m"] and "4 or 6" in msgs["m"]


def test_reshape_size_mismatch_says_the_sizes_and_suggests_a_shape():
    msgs = _problems([("x", "Input", {"shape": [10]}), ("r", "Reshape", {"shape": [3, 3]}),
                      ("q", "Reshape", {"shape": [3, -1]})], [("x", "r"), ("x", "q")])
    assert "9" in msgs["r"] and "10" in msgs["r"] and "(10,)" in msgs["r"]
    assert "does not divide" in msgs["q"] and "(10,)" in msgs["q"]


@pytest.mark.parametrize("shape, words", [([0, 4], "below 1"), ([-1, -1], "more than one -1")])
def test_reshape_refuses_zero_and_two_inferred_sizes(shape, words):
    msgs = _problems([("x", "Input", {"shape": [8]}), ("r", "Reshape", {"shape": shape})], [("x", "r")])
    assert words in msgs["r"]


def test_dense_on_images_suggests_flatten():
    msgs = _problems([("x", "Input", {"shape": [1, 4, 4]}), ("d", "Dense", {"units": 3})], [("x", "d")])
    assert "Flatten" in msgs["d"]


def test_concat_says_which_axis_disagrees():
    msgs = _problems([("x", "Input", {"shape": [3, 4]}), ("d", "Dense", {"units": 5}),
                      ("c", "Concat", {"axis": 0})], [("x", "d"), ("x", "c.in0"), ("d", "c.in1")])
    assert "axis 1: 5 vs 4" in msgs["c"] and "set axis to 1" in msgs["c"]
    msgs = _problems([("x", "Input", {"shape": [3, 4]}), ("f", "Flatten", {}), ("c", "Concat", {})],
                     [("x", "f"), ("x", "c.in0"), ("f", "c.in1")])
    assert "Flatten" in msgs["c"] and "(12,)" in msgs["c"]
    msgs = _problems([("x", "Input", {"shape": [3]}), ("c", "Concat", {"axis": 1})],
                     [("x", "c.in0"), ("x", "c.in1")])
    assert "axis 1" in msgs["c"]


def test_batchnorm_refuses_four_axes():
    msgs = _problems([("x", "Input", {"shape": [1, 2, 3, 4]}), ("b", "BatchNorm", {})], [("x", "b")])
    assert "Flatten" in msgs["b"]


@pytest.mark.parametrize("type_name, params", [
    ("Dropout", {"rate": 1.0}), ("Dropout", {"rate": -0.1}), ("Add", {"inputs": 9}),
    ("Concat", {"inputs": 1}), ("Reshape", {"shape": [-2]}), ("BatchNorm", {"momentum": 1.5}),
])
def test_out_of_range_parameters_are_refused(type_name, params):
    with pytest.raises(ParamError, match=next(iter(params))):
        Graph().add_node(type_name, params, "n")


# ---- in a compiled model ------------------------------------------------------------
def test_merge_reshape_and_regularisation_layers_backpropagate_in_a_model():
    """Skip connection, concat, reshape, batch norm and dropout together, through the compiler."""
    g = Graph.from_dict({
        "format": "backprop-studio.graph", "version": 1,
        "nodes": [{"id": "x", "type": "Input", "params": {"shape": [12]}},
                  {"id": "r", "type": "Reshape", "params": {"shape": [3, 4]}},
                  {"id": "bn", "type": "BatchNorm", "params": {}},
                  {"id": "f", "type": "Flatten", "params": {}},
                  {"id": "d1", "type": "Dense", "params": {"units": 6}},
                  {"id": "d2", "type": "Dense", "params": {"units": 6}},
                  {"id": "add", "type": "Add", "params": {}},
                  {"id": "cat", "type": "Concat", "params": {}},
                  {"id": "drop", "type": "Dropout", "params": {"rate": 0.25}},
                  {"id": "o", "type": "Dense", "params": {"units": 1}}],
        "edges": [{"from": a, "to": b} for a, b in [
            ("x", "r"), ("r", "bn"), ("bn", "f"), ("f", "d1"), ("x", "d2"), ("d1", "add.in0"),
            ("d2", "add.in1"), ("add", "cat.in0"), ("d2", "cat.in1"), ("cat", "drop"), ("drop", "o")]],
        "training": {"loss": "mse"},
    })
    model = compile_graph(g, dtype="float64", seed=3)
    assert model.param_count() == 2 * 4 + 2 * (12 * 6 + 6) + 13
    assert {"bn.running_mean", "bn.running_var"} <= set(model.state_dict())
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(8, 12)), rng.normal(size=(8, 1))

    def loss() -> float:
        for rt in model.runtimes.values():
            rt.rng = np.random.default_rng(11)
        return model.loss_and_grads(X, T)

    loss()
    analytic = model.grads.copy()
    numeric = finite_difference(loss, model.params)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
    assert not np.allclose(model.runtimes["bn"].B["running_mean"], 0.0)
