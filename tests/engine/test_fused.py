"""The fused whole-step path (engine/fused.py, engine/kernels/mlp.py) computes what the general path computes.

Every comparison builds two models of the same graph with the same weights: one on the
fused path, one forced onto the general node-by-node path (``fused=False``), and checks
the loss, every parameter gradient and every node's output. A central finite-difference
check pins the fused gradient on its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from engine.compiler import Model, compile_graph
from engine.graph import Graph
from engine.kernels.activations import CODES
from engine.kernels.blas import gemm_address, matmul
from engine.layers.base import REGISTRY

RTOL = {np.float64: 1e-12, np.float32: 2e-5}


def chain(layers: list[tuple[str, dict[str, Any]]], inputs: int = 2, loss: str = "mse",
          input_shape: list[int] | None = None) -> Graph:
    g = Graph()
    g.add_node("Input", {"shape": input_shape or [inputs]}, "x")
    prev = "x"
    for i, (kind, params) in enumerate(layers):
        g.add_node(kind, params, f"n{i}")
        g.connect(prev, f"n{i}")
        prev = f"n{i}"
    g.training["loss"] = loss
    return g


def dense(units: int, bias: bool = True, init: str = "xavier_uniform") -> tuple[str, dict[str, Any]]:
    return ("Dense", {"units": units, "bias": bias, "init": init})


def act(function: str, alpha: float | None = None) -> tuple[str, dict[str, Any]]:
    return ("Activation", {"function": function} if alpha is None else {"function": function, "alpha": alpha})


XOR = chain([dense(8), act("tanh"), dense(1), act("tanh")])
DEEP_SIGMOID = chain([p for _ in range(6) for p in (dense(16), act("sigmoid"))] + [dense(1), act("sigmoid")],
                     loss="bce_logits")
MLP_SOFTMAX = chain([dense(32), act("relu"), dense(32), act("relu"), dense(5), ("Softmax", {})],
                    inputs=20, loss="cross_entropy")


def pair(graph: Graph, dtype: Any) -> tuple[Model, Model]:
    fused = compile_graph(graph, dtype=dtype, seed=3)
    general = compile_graph(graph, dtype=dtype, seed=3, fused=False)
    assert fused.fused is not None and general.fused is None
    general.params[:] = fused.params
    # non-zero biases, so a bias that were skipped or misplaced shows
    fused.params[:] += np.random.default_rng(9).normal(0, 0.1, fused.params.size).astype(dtype)
    general.params[:] = fused.params
    return fused, general


def batch(model: Model, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets of the right kind for the model's loss."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1.5, (n,) + model.shapes[model.input_id]).astype(model.dtype)
    width = model.loss_shape[0]
    if model.loss == "cross_entropy":
        T = np.eye(width)[rng.integers(0, width, n)]
    elif model.loss == "bce_logits":
        T = rng.integers(0, 2, (n, width))
    else:
        T = rng.normal(0, 1, (n, width))
    return X, T.astype(model.dtype)


def assert_same_step(fused: Model, general: Model, X: np.ndarray, T: np.ndarray) -> None:
    rtol = RTOL[fused.dtype.type]
    fused.grads[:] = np.nan  # every gradient entry must be written by the step
    loss_f = fused.loss_and_grads(X, T)
    loss_g = general.loss_and_grads(X, T)
    assert np.isfinite(loss_f)
    assert loss_f == pytest.approx(loss_g, rel=rtol, abs=0)
    for nid in general.param_nodes:
        a, b = general.slices[nid]
        g = general.grads[a:b].astype(np.float64)
        f = fused.grads[a:b].astype(np.float64)
        scale = float(np.abs(g).max())
        assert scale > 0, nid
        np.testing.assert_allclose(f, g, rtol=0, atol=rtol * scale, err_msg=f"gradient of {nid}")
    outs = fused.fused.outputs()
    assert set(outs) == {(nid, "out") for nid in general.order}
    for nid in general.order:
        ref = general.outputs[(nid, "out")].astype(np.float64)
        np.testing.assert_allclose(outs[(nid, "out")], ref, rtol=0, atol=rtol * max(1.0, float(np.abs(ref).max())),
                                   err_msg=f"output of {nid}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("graph", [XOR, DEEP_SIGMOID, MLP_SOFTMAX], ids=["xor_tanh_mse", "deep_sigmoid_bce",
                                                                        "mlp_relu_softmax_ce"])
def test_fused_step_equals_general_path_across_batch_sizes(graph, dtype):
    fused, general = pair(graph, dtype)
    for step, n in enumerate([4, 33, 1, 33, 4]):  # grows, shrinks (partial batches), grows back
        X, T = batch(general, n, seed=step)
        assert_same_step(fused, general, X, T)
        # an update between steps: the fused path must read the current weights
        general.params -= (0.5 * general.grads).astype(dtype)
        fused.params[:] = general.params


def test_terminal_softmax_and_sigmoid_are_fused_into_the_loss():
    for graph in (DEEP_SIGMOID, MLP_SOFTMAX):
        model = compile_graph(graph, dtype=np.float64)
        assert model.loss_from != model.output_ref
        assert model.output_id not in model.fused.ids
    mlp = compile_graph(MLP_SOFTMAX, dtype=np.float64)
    X, T = batch(mlp, 7, seed=1)
    mlp.loss_and_grads(X, T)
    probs = mlp.fused.outputs()[mlp.output_ref]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("function", sorted(CODES))
def test_every_elementwise_activation_matches(function, dtype):
    alpha = 0.2 if function in ("leaky_relu", "prelu", "elu") else None
    layers = [dense(6), act(function, alpha), dense(4, bias=False), act(function, alpha), dense(3)]
    graph = chain(layers, inputs=3)
    fused, general = pair(graph, dtype)
    if function == "prelu":
        assert sum(1 for nid in general.param_nodes if nid in ("n1", "n3")) == 2  # α is learned
    for n in (5, 40):
        X, T = batch(general, n, seed=n)
        assert_same_step(fused, general, X, T)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("graph", [
    chain([dense(4, bias=False), act("elu", 1.0), dense(2, bias=False)], inputs=3, loss="mae"),
    chain([act("prelu", 0.3), dense(5), act("gelu"), dense(3)], inputs=4, loss="cross_entropy"),
    chain([act("tanh"), dense(5), act("softplus")], inputs=4, loss="mse"),
    chain([dense(3), dense(2), act("sigmoid")], inputs=2, loss="mse"),
], ids=["no_bias_mae", "prelu_first_ce_logits", "activation_first", "dense_dense"])
def test_other_chains_match(graph, dtype):
    fused, general = pair(graph, dtype)
    for n in (1, 4, 33):
        X, T = batch(general, n, seed=n)
        assert_same_step(fused, general, X, T)


def test_fused_gradient_matches_central_finite_differences():
    graph = chain([dense(5), act("tanh"), dense(4), act("prelu", 0.25), dense(3), ("Softmax", {})],
                  inputs=3, loss="cross_entropy")
    model = compile_graph(graph, dtype=np.float64, seed=1)
    assert model.fused is not None
    X, T = batch(model, 6, seed=2)
    model.params[:] += np.random.default_rng(5).normal(0, 0.2, model.params.size)
    model.loss_and_grads(X, T)
    analytic = model.grads.copy()
    eps = 1e-6
    numeric = np.empty_like(analytic)
    for i in range(model.params.size):
        keep = model.params[i]
        model.params[i] = keep + eps
        up = model.loss_and_grads(X, T)
        model.params[i] = keep - eps
        down = model.loss_and_grads(X, T)
        model.params[i] = keep
        numeric[i] = (up - down) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_inputs_do_not_crash_and_the_general_path_locates_them(bad):
    model = compile_graph(DEEP_SIGMOID, dtype=np.float32)
    X, T = batch(model, 8, seed=0)
    X[3, 1] = bad
    loss = model.loss_and_grads(X, T)
    assert not (np.isfinite(loss) and np.all(np.isfinite(model.grads)))  # the trainer's divergence test
    model.forward(X, training=True)  # what the trainer does on divergence
    assert model.first_non_finite() == "x"


def test_fused_path_leaves_no_stale_general_outputs():
    model = compile_graph(XOR, dtype=np.float64)
    X, T = batch(model, 4, seed=0)
    model.forward(X)
    model.loss_and_grads(X, T)
    assert model.outputs == {}
    assert set(model.fused.outputs()) == {(nid, "out") for nid in model.order}


def test_fused_false_forces_the_general_path():
    assert compile_graph(XOR, fused=False).fused is None
    assert Model(XOR, fused=False).fused is None
    assert compile_graph(XOR).fused is not None


def _maybe(type_name: str) -> None:
    if type_name not in REGISTRY:
        pytest.skip(f"{type_name} is not registered in this build")


def _merge_graph() -> Graph:
    _maybe("Add")
    g = chain([dense(4)], inputs=3)
    g.add_node("Dense", {"units": 4}, "side")
    g.connect("x", "side")
    g.add_node("Add", {}, "sum")
    g.connect("n0", "sum", "in0")
    g.connect("side", "sum", "in1")
    g.add_node("Dense", {"units": 1}, "out")
    g.connect("sum", "out")
    return g


def _batchnorm_graph() -> Graph:
    _maybe("BatchNorm")
    return chain([dense(4), ("BatchNorm", {}), act("relu"), dense(1)], inputs=3)


@pytest.mark.parametrize("make", [
    lambda: chain([dense(4), act("maxout"), dense(1)], inputs=3),
    lambda: chain([dense(4), ("Softmax", {}), dense(2)], inputs=3),
    lambda: chain([dense(4), ("Softmax", {})], inputs=3, loss="mse"),
    lambda: chain([dense(4), dense(2)], input_shape=[3, 5]),
    _merge_graph,
    _batchnorm_graph,
], ids=["maxout", "softmax_inside", "softmax_with_mse", "sequence_input", "add_merge", "batchnorm"])
def test_ineligible_graphs_use_the_general_path(make):
    model = compile_graph(make(), dtype=np.float64)
    assert model.fused is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("numpy_blas", [True, False], ids=["numpy_blas", "np_dot"])
def test_matmul_matches_numpy_for_each_transpose(dtype, numpy_blas):
    addr = gemm_address(dtype) if numpy_blas else 0
    if numpy_blas and addr == 0:
        pytest.skip("this NumPy bundles no OpenBLAS; the np.dot path is the one in use")
    rng = np.random.default_rng(0)
    a, b, d = (rng.normal(size=s).astype(dtype) for s in ((37, 19), (19, 23), (37, 23)))
    rtol = RTOL[dtype]
    for x, tx, y, ty, expected in ((a, False, b, False, a @ b), (a, True, d, False, a.T @ d),
                                   (d, False, b, True, d @ b.T)):
        out = np.full(expected.shape, np.nan, dtype)
        matmul(addr, x, tx, y, ty, out)
        np.testing.assert_allclose(out, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def test_the_np_dot_fallback_gives_the_same_step():
    fused, general = pair(MLP_SOFTMAX, np.float64)
    fused.fused.gemm = 0
    X, T = batch(general, 33, seed=5)
    assert_same_step(fused, general, X, T)


def _declared_copy(base: str, name: str, **changes: Any) -> str:
    REGISTRY.register(dataclasses.replace(REGISTRY[base], name=name, **changes))
    return name


def test_fusion_is_declared_by_the_layer_types_not_their_names():
    """A layer type the fused path has never heard of joins it by declaring ``fuse``, and a
    terminal layer is absorbed by the loss because it declares ``absorbed_by``."""
    names = [_declared_copy("Dense", "TestDense"), _declared_copy("Softmax", "TestSoftmax"),
             _declared_copy("Dense", "TestDenseNoFuse", fuse=None)]
    try:
        graph = chain([("TestDense", {"units": 6}), act("tanh"), ("TestDense", {"units": 3}),
                       ("TestSoftmax", {})], inputs=4, loss="cross_entropy")
        fused, general = pair(graph, np.float64)
        assert fused.loss_from == ("n2", "out") and general.loss_from == ("n2", "out")
        assert fused.fused.ids == ["n0", "n1", "n2"]
        assert_same_step(fused, general, *batch(general, 9, seed=1))
        undeclared = chain([("TestDenseNoFuse", {"units": 3}), act("tanh")], inputs=2)
        assert compile_graph(undeclared, dtype=np.float64).fused is None
        not_absorbed = chain([dense(3), ("TestSoftmax", {})], inputs=2, loss="mse")
        model = compile_graph(not_absorbed, dtype=np.float64)
        assert model.loss_from == model.output_ref and model.fused is None
    finally:
        for name in names:
            del REGISTRY[name]
