"""Recurrent layers beyond the shared harness: long sequences against a NumPy BPTT
reference, the float32 gate functions, ports, initialisation, a training step against
PyTorch, the gradient-through-time event, the hidden-state trace and the exports' operators."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from layer_harness import Case, make_runtime, run_recurrent
from recurrent_reference import bptt

from engine.compiler import compile_graph
from engine.errors import GraphError, TrainingError
from engine.events import TimeGradsEvent
from engine.export import export_model
from engine.graph import Graph
from engine.kernels.strided_gemm import ONE_BLAS_THREAD
from engine.kernels.vecmath import ACTIVATIONS, activate
from engine.layers.recurrent import time_gradient_norms, trace
from engine.modelfile import save_model
from engine.through_time import hidden_trace, sigma_max
from engine.training import TrainConfig, Trainer

LONG = [
    Case("SimpleRNN", {"units": 6, "return_sequences": True}, ((50, 3),)),
    Case("SimpleRNN", {"units": 6, "activation": "relu", "recurrent_scale": 0.9, "truncate": 7}, ((50, 3),)),
    Case("LSTM", {"units": 6, "return_sequences": True}, ((50, 3),)),
    Case("LSTM", {"units": 5, "activation": "sigmoid", "truncate": 10, "bias": False}, ((50, 3),)),
    Case("GRU", {"units": 6, "return_sequences": True}, ((50, 3),)),
    Case("GRU", {"units": 6, "reset_after": False, "truncate": 5}, ((50, 3),)),
]


def port_gradients(rt, rng, n):
    T, H = rt.in_shapes[0][0], rt.p["units"]
    dseq = rng.normal(size=(n, T, H)) if rt.p["return_sequences"] else None
    return dseq, rng.normal(size=(n, H))


# ---- long sequences against the NumPy reference -------------------------------------------------
@pytest.mark.parametrize("case", LONG, ids=[c.id for c in LONG])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("threads", [1, 2], ids=["one-chunk", "two-halves"])
def test_kernels_match_the_numpy_bptt_reference_on_50_steps(case, dtype, threads, monkeypatch):
    """With a BLAS budget of two threads a batch of 17 runs as halves of 9 and 8 on two threads."""
    monkeypatch.setattr(ONE_BLAS_THREAD, "budget", lambda: threads)
    rt = make_runtime(case, dtype)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(17, 50, 3)).astype(dtype)
    dseq, dlast = port_gradients(rt, rng, 17)
    out, state = rt.type.forward(rt, [x])
    assert sum(key.endswith(":xh") for key in rt.scratch) == threads
    dys = (dlast if dseq is None else dseq, None if dseq is None else dlast)
    (dx,) = rt.type.backward(rt, tuple(np.asarray(d, dtype) if d is not None else None for d in dys))
    want_out, grads, want_dx, norms = bptt(case.type, rt.p, x, dict(rt.W), dseq, dlast)
    rtol = 1e-9 if dtype == np.float64 else 2e-4

    def close(got, want, what):
        scale = float(np.max(np.abs(want)))
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)

    close(out, want_out[0], "out")
    close(state, want_out[1], "state")
    close(dx, want_dx, "∂L/∂x")
    for name in rt.G:
        close(rt.G[name], grads[name], f"∂L/∂{name}")
    close(time_gradient_norms(rt), norms, "‖∂L/∂h_t‖")
    if rt.p["truncate"]:
        assert norms[0] == 0.0  # a last-state gradient does not reach across the cut
    assert trace(rt, 12)["hidden"].shape == (rt.p["units"], 50)
    np.testing.assert_allclose(trace(rt, 12)["hidden"][:, -1], want_out[1][12], rtol=rtol, atol=rtol)


def test_float32_gate_functions_are_accurate_and_keep_non_finite_values():
    # a grid, and every 97th float32 of [−10, 10] (subnormals and the tanh clamp at ±7.9 included)
    dense = np.arange(0, np.float32(10).view(np.int32), 97, dtype=np.int32).view(np.float32)
    x = np.concatenate([np.linspace(-30, 30, 600_001), np.geomspace(1e-8, 1, 20_001),
                        -np.geomspace(1e-8, 1, 20_001), dense, -dense]).astype(np.float32)
    exact = {"tanh": np.tanh(x.astype(np.float64)), "sigmoid": 1 / (1 + np.exp(-x.astype(np.float64)))}
    for name, want in exact.items():
        got = x.copy()
        activate(ACTIVATIONS[name], got)
        assert got.dtype == np.float32
        big = np.abs(want) > 1e-30
        assert np.max(np.abs(got - want)[big] / np.abs(want)[big]) < 4e-7, name
    special = np.array([np.nan, np.inf, -np.inf, 0.0], np.float32)
    for name in ("tanh", "sigmoid", "relu"):
        v = special.copy()
        activate(ACTIVATIONS[name], v)
        assert np.isnan(v[:3]).all(), f"{name}: a non-finite pre-activation must give NaN (divergence)"
        assert v[3] == {"tanh": 0.0, "sigmoid": 0.5, "relu": 0.0}[name]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_tanh_lstm_cell_equals_the_pass_by_pass_cell(dtype):
    """The one-pass c, φ(c), h loop of lstm_cell_tanh gives the reference passes' bits."""
    from engine.kernels.recurrent import lstm_cell, lstm_cell_tanh

    M = 37 * 5  # not a multiple of the vector width: the loops' remainders run too
    rng = np.random.default_rng(3)
    z0, cp = (rng.normal(0, 3, size=4 * M).astype(dtype), rng.normal(size=M).astype(dtype))
    z0[[0, 7]] = np.nan, np.inf
    got = [z0.copy(), np.empty(M, dtype), np.empty(M, dtype), np.empty(M, dtype)]
    want = [z0.copy(), np.empty(M, dtype), np.empty(M, dtype), np.empty(M, dtype)]
    lstm_cell_tanh(got[0], cp, got[1], got[2], got[3], M)
    lstm_cell(ACTIVATIONS["tanh"], want[0], cp, want[1], want[2], want[3], M)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T", [1, 4])
def test_transposed_weight_gradient_equals_the_direct_one(dtype, T):
    """LSTM's ∂L/∂Wᵀ accumulation (δ_t xh[t]ᵀ) sums the same products as the SimpleRNN's
    xh[t] δ_tᵀ, the first step's h rows (h_{−1} = 0) left out in both."""
    from engine.kernels.recurrent import accumulate_weight_gradient, accumulate_weight_gradient_transposed

    F, H, N, G = 3, 5, 7, 20
    K = F + 1 + H
    rng = np.random.default_rng(4)
    xh, dg = rng.normal(size=(T, K, N)).astype(dtype), rng.normal(size=(T, G, N)).astype(dtype)
    dW, dWt = np.full((K, G), np.nan, dtype), np.full((G, K), np.nan, dtype)
    for t in range(T - 1, -1, -1):
        accumulate_weight_gradient(xh[t], dg[t], dW, F, t, T)
        accumulate_weight_gradient_transposed(xh[t], dg[t], dWt, F, t, T)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(dWt.T, dW, rtol=tol, atol=tol)
    want = sum(xh[t] @ dg[t].T for t in range(1, T)) + np.vstack([xh[0][:F + 1] @ dg[0].T, np.zeros((H, G))])
    np.testing.assert_allclose(dWt.T, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(7, 20), (20, 7)], ids=["wide", "tall"])
def test_transpose_kernel_transposes_either_way_round(shape):
    from engine.kernels.recurrent import transpose

    W = np.random.default_rng(6).normal(size=shape).astype(np.float32)
    Wt = np.empty(shape[::-1], np.float32)
    transpose(W, Wt)
    np.testing.assert_array_equal(Wt, W.T)


# ---- ports --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_out_is_the_last_state_without_sequences_and_port_gradients_add(kind):
    rt = make_runtime(Case(kind, {"units": 4}, ((9, 2),)))
    x = np.random.default_rng(0).normal(size=(3, 9, 2))
    out, state = rt.type.forward(rt, [x])
    np.testing.assert_array_equal(out, state)
    a, b = np.random.default_rng(1).normal(size=(2, 3, 4))
    both = rt.type.backward(rt, (a, b))[0]
    grads = {k: v.copy() for k, v in rt.G.items()}
    summed = rt.type.backward(rt, (a + b, None))[0]
    np.testing.assert_allclose(both, summed, rtol=1e-12)
    for k, v in rt.G.items():
        np.testing.assert_allclose(grads[k], v, rtol=1e-12)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_an_unused_port_is_none_and_counts_as_zero(kind):
    rt = make_runtime(Case(kind, {"units": 4, "return_sequences": True}, ((6, 2),)))
    x = np.random.default_rng(0).normal(size=(3, 6, 2))
    seq, state = rt.type.forward(rt, [x])
    np.testing.assert_array_equal(seq[:, -1], state)
    dseq = np.random.default_rng(1).normal(size=seq.shape)
    for dys in [(dseq, None), (None, state * 0 + 1.0)]:
        got = rt.type.backward(rt, dys)[0]
        zeros = tuple(np.zeros_like(v) if d is None else d for d, v in zip(dys, (seq, state), strict=True))
        np.testing.assert_allclose(got, rt.type.backward(rt, zeros)[0], rtol=1e-12)


# ---- initialisation -----------------------------------------------------------------------------
def test_initialisation_follows_the_parameters():
    def weights(kind, **params):
        g = Graph("init")
        g.add_node("Input", {"shape": [5, 3]}, "x")
        g.add_node(kind, {"units": 6, **params}, "r")
        g.connect("x", "r")
        return compile_graph(g, dtype="float64").runtimes["r"].W

    W = weights("LSTM", recurrent_scale=0.5, forget_bias=2.5)
    for k in range(4):
        np.testing.assert_allclose(np.linalg.svd(W["Wh"][:, 6 * k:6 * (k + 1)], compute_uv=False), 0.5)
    np.testing.assert_array_equal(W["b"], np.r_[np.zeros(6), np.full(6, 2.5), np.zeros(12)])
    W = weights("SimpleRNN", recurrent_init="identity", recurrent_scale=1.1, activation="relu")
    np.testing.assert_array_equal(W["Wh"], 1.1 * np.eye(6))
    W = weights("GRU", recurrent_init="normal", recurrent_scale=0.2)
    assert set(W) == {"Wx", "Wh", "bx", "bh"} and not W["bx"].any() and not W["bh"].any()
    assert 0.15 < W["Wh"].std() < 0.25
    assert set(weights("GRU", bias=False)) == {"Wx", "Wh"}


def test_a_flat_input_is_refused_with_the_reshape_that_fixes_it():
    g = Graph("flat")
    g.add_node("Input", {"shape": [32]}, "x")
    g.add_node("LSTM", {}, "lstm")
    with pytest.raises(GraphError, match=r"LSTM 'lstm': LSTM needs a \(time, features\) sequence, got \(32,\); "
                                         r"insert a Reshape to \[32, 1\]"):
        g.connect("x", "lstm")


# ---- a training step against PyTorch ------------------------------------------------------------
def _network(kind: str) -> Graph:
    g = Graph(kind)
    g.add_node("Input", {"shape": [12, 3]}, "x")
    g.add_node(kind, {"units": 8}, "rnn")
    g.add_node("Dense", {"units": 2}, "head")
    g.connect("x", "rnn")
    g.connect("rnn", "head")
    g.training = {"loss": "mse", "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}}
    return g


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_training_steps_equal_pytorch(kind):
    """Same weights, same batch, SGD with momentum: two steps of the engine equal torch's."""
    model = compile_graph(_network(kind), seed=3)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(16, 12, 3)).astype(np.float32), rng.normal(size=(16, 2)).astype(np.float32)
    trainer = Trainer(model, X, Y, TrainConfig.from_training(model.graph.training), task="regression")
    rnn_w, head_w = model.runtimes["rnn"].W, model.runtimes["head"].W

    cell = getattr(torch.nn, kind)(3, 8, batch_first=True)
    head = torch.nn.Linear(8, 2)
    with torch.no_grad():
        cell.weight_ih_l0.copy_(torch.from_numpy(rnn_w["Wx"].T.copy()))
        cell.weight_hh_l0.copy_(torch.from_numpy(rnn_w["Wh"].T.copy()))
        if kind == "LSTM":  # one bias b: torch's b_ih takes it, b_hh stays 0 and untrained
            cell.bias_ih_l0.copy_(torch.from_numpy(rnn_w["b"]))
            cell.bias_hh_l0.zero_()
            cell.bias_hh_l0.requires_grad_(False)
        else:
            cell.bias_ih_l0.copy_(torch.from_numpy(rnn_w["bx"]))
            cell.bias_hh_l0.copy_(torch.from_numpy(rnn_w["bh"]))
        head.weight.copy_(torch.from_numpy(head_w["W"].T.copy()))
        head.bias.copy_(torch.from_numpy(head_w["b"]))
    params = [q for q in list(cell.parameters()) + list(head.parameters()) if q.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    for _ in range(2):
        want = trainer.train_step(trainer.X, trainer.T, 0.1)
        opt.zero_grad()
        h = cell(torch.from_numpy(X))[1]
        h = (h[0] if kind == "LSTM" else h)[0]
        loss = torch.nn.functional.mse_loss(head(h), torch.from_numpy(Y))
        loss.backward()
        opt.step()
        assert loss.item() == pytest.approx(want, rel=1e-5)
    bias = (cell.bias_ih_l0 + cell.bias_hh_l0) if kind == "LSTM" else cell.bias_ih_l0
    pairs = [("Wx", cell.weight_ih_l0.T), ("Wh", cell.weight_hh_l0.T), ("b" if kind == "LSTM" else "bx", bias)]
    for name, value in pairs:
        want = value.detach().numpy()
        np.testing.assert_allclose(rnn_w[name], want, rtol=1e-5, atol=1e-6 * np.abs(want).max(), err_msg=name)
    np.testing.assert_allclose(head_w["W"], head.weight.detach().numpy().T, rtol=1e-5, atol=1e-6)


# ---- the gradient-through-time event ------------------------------------------------------------
def test_time_grads_events_carry_autograd_norms_and_sigma_max():
    g = _network("LSTM")
    g.training["stats_every"] = 3
    model = compile_graph(g, dtype="float64", seed=1)
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(8, 12, 3)), rng.normal(size=(8, 2))
    W0 = {k: v.copy() for k, v in model.runtimes["rnn"].W.items()}
    head0 = {k: v.copy() for k, v in model.runtimes["head"].W.items()}
    events = []
    config = TrainConfig.from_training({**g.training, "epochs": 7, "batch_size": 8, "shuffle": False})
    Trainer(model, X, Y, config, task="regression", listener=events.append).run()
    timed = [e for e in events if isinstance(e, TimeGradsEvent)]
    assert [e.step for e in timed] == [1, 4, 7] and {e.node for e in timed} == {"rnn"}

    # step 1's norms against autograd at the initial weights: ‖∂L/∂h_t‖ of every h_t
    cell = torch.nn.LSTMCell(3, 8).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(W0["Wx"].T))
        cell.weight_hh.copy_(torch.from_numpy(W0["Wh"].T))
        cell.bias_ih.copy_(torch.from_numpy(W0["b"]))
        cell.bias_hh.zero_()
    h, c, hs = torch.zeros(8, 8, dtype=torch.float64), torch.zeros(8, 8, dtype=torch.float64), []
    for t in range(12):
        h, c = cell(torch.from_numpy(X[:, t]), (h, c))
        h.retain_grad()
        hs.append(h)
    out = h @ torch.from_numpy(head0["W"]) + torch.from_numpy(head0["b"])
    torch.nn.functional.mse_loss(out, torch.from_numpy(Y)).backward()
    want = [float(torch.linalg.vector_norm(v.grad)) for v in hs]
    np.testing.assert_allclose(timed[0].norms, want, rtol=1e-9)
    assert timed[-1].sigma_max == pytest.approx(np.linalg.norm(model.runtimes["rnn"].W["Wh"], 2), rel=1e-9)
    record = json.loads(json.dumps(timed[0].to_json()))
    assert {"event", "step", "node", "norms", "sigma_max"} <= set(record) and record["event"] == "time_grads"
    assert record["first_last_ratio"] == pytest.approx(want[0] / want[-1])
    assert record["layer"] == "LSTM" and record["gamma"] is None


def test_simple_rnn_events_name_the_slope_bound_and_sigma_max_is_exact():
    g = _network("SimpleRNN")
    g.nodes["rnn"].params.update(activation="sigmoid")
    model = compile_graph(g, seed=0)
    events = []
    X, Y = np.zeros((4, 12, 3), np.float32), np.zeros((4, 2), np.float32)
    Trainer(model, X, Y, TrainConfig.from_training({**g.training, "epochs": 1}), task="regression",
            listener=events.append).run()
    (event,) = [e for e in events if isinstance(e, TimeGradsEvent)]
    assert event.gamma == 0.25
    W = np.random.default_rng(0).normal(size=(8, 32))
    assert sigma_max(W) == pytest.approx(np.linalg.svd(W, compute_uv=False)[0], rel=1e-12)


def test_no_time_grads_without_recurrent_layers_or_statistics():
    g = _network("LSTM")
    model = compile_graph(g)
    X, Y = np.zeros((4, 12, 3), np.float32), np.zeros((4, 2), np.float32)
    events = []
    config = TrainConfig.from_training({**g.training, "epochs": 3, "stats_every": 0})
    Trainer(model, X, Y, config, task="regression", listener=events.append).run()
    assert not [e for e in events if isinstance(e, TimeGradsEvent)]


# ---- the hidden-state trace ---------------------------------------------------------------------
def test_hidden_trace_gives_states_and_the_forget_gate_of_one_sequence():
    g = _network("LSTM")
    g.nodes["rnn"].params["forget_bias"] = 1.5
    model = compile_graph(g, dtype="float64", seed=4)
    x = np.random.default_rng(3).normal(size=(12, 3))
    traces = hidden_trace(model, x)
    tr = traces["rnn"]
    rt = model.runtimes["rnn"]
    hs, _ = run_recurrent("LSTM", rt.p, x[None], dict(rt.W))
    np.testing.assert_allclose(tr.hidden, np.stack(hs, axis=1)[0].T, rtol=1e-12)
    assert tr.hidden.shape == (8, 12) and set(tr.gates) == {"i", "f", "g", "o"}
    h_prev = np.vstack([np.zeros(8), np.stack(hs, axis=1)[0][:-1]])
    z_f = x @ rt.W["Wx"][:, 8:16] + h_prev @ rt.W["Wh"][:, 8:16] + rt.W["b"][8:16]
    np.testing.assert_allclose(tr.gates["f"], (1 / (1 + np.exp(-z_f))).T, rtol=1e-12)
    np.testing.assert_allclose(tr.forget_mean, tr.gates["f"].mean(axis=0))
    with pytest.raises(TrainingError, match="node 'head' is not a recurrent layer; recurrent nodes: rnn"):
        hidden_trace(model, x, node="head")
    with pytest.raises(TrainingError, match=r"shape \(12, 4\).*expects \(12, 3\)"):
        hidden_trace(model, np.zeros((12, 4)))


def test_simple_rnn_trace_has_no_forget_gate():
    model = compile_graph(_network("SimpleRNN"))
    tr = hidden_trace(model, np.ones((12, 3)))["rnn"]
    assert tr.forget_mean is None and tr.gates == {} and tr.hidden.shape == (8, 12)


# ---- speed-related behaviour --------------------------------------------------------------------
def test_scratch_is_allocated_once_per_batch_size():
    model = compile_graph(_network("GRU"))
    X, Y = np.ones((16, 12, 3), np.float32), np.ones((16, 2), np.float32)
    trainer = Trainer(model, X, Y, TrainConfig.from_training(model.graph.training), task="regression")
    trainer.train_step(trainer.X, trainer.T, 0.01)
    first = {k: id(v) for k, v in model.runtimes["rnn"].scratch.items()}
    trainer.train_step(trainer.X, trainer.T, 0.01)
    assert {k: id(v) for k, v in model.runtimes["rnn"].scratch.items()} == first


def test_one_blas_thread_lowers_the_kernels_blas_and_restores_it():
    ONE_BLAS_THREAD._find()
    libraries = ONE_BLAS_THREAD._libraries
    assert libraries, "the BLAS the kernels call should be found"
    before = [lc.get_num_threads() for lc in libraries]
    with ONE_BLAS_THREAD:
        with ONE_BLAS_THREAD:
            assert all(lc.get_num_threads() == 1 for lc in libraries)
        assert all(lc.get_num_threads() == 1 for lc in libraries)
    assert [lc.get_num_threads() for lc in libraries] == before


# ---- exports use the recurrent operators --------------------------------------------------------
@pytest.mark.parametrize("kind,params,op,module", [
    ("LSTM", {}, "LSTM", "LSTMLayer"),
    ("GRU", {"reset_after": False}, "GRU", "RecurrentLoop"),
    ("SimpleRNN", {"activation": "relu"}, "RNN", "SimpleRNNLayer"),
])
def test_exports_use_the_recurrent_operators(kind, params, op, module, tmp_path):
    import onnx

    g = _network(kind)
    g.nodes["rnn"].params.update(params)
    model = compile_graph(g)
    save_model(tmp_path / "m.bpmodel", model, {"training": g.training})
    proto = onnx.load(str(export_model(tmp_path / "m.bpmodel", "onnx", tmp_path / "m.onnx")))
    (node,) = [n for n in proto.graph.node if n.op_type == op]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["hidden_size"] == 8
    if kind == "GRU":
        assert attrs["linear_before_reset"] == 0
    source = (export_model(tmp_path / "m.bpmodel", "torch", tmp_path / "torch") / "model.py").read_text()
    assert f"self.rnn = {module}(" in source  # the node itself is named after the node; its ports rnn_out, rnn_state
    if module != "RecurrentLoop":
        assert "batch_first=True" in source and f"(nn.{ {'LSTMLayer': 'LSTM', 'SimpleRNNLayer': 'RNN'}[module]})" \
            in source


# ---- the per-step bookkeeping -----------------------------------------------------------------
def test_a_training_step_sets_the_blas_thread_count_once_not_per_pass(monkeypatch):
    """The model holds BLAS to one thread around the whole step of a recurrent graph, so the
    LSTM's forward and backward holds only count up: two thread-count changes a step (to one
    and back), not two per pass, and the batch still runs as two halves."""
    if not ONE_BLAS_THREAD._find():
        pytest.skip("the kernels' BLAS is not an OpenBLAS that threadpoolctl controls")
    model = compile_graph(_network("LSTM"), seed=0)
    X, Y = np.random.default_rng(0).normal(size=(32, 12, 3)), np.zeros((32, 2))
    controllers = ONE_BLAS_THREAD._find()
    before = [lc.get_num_threads() for lc in controllers]
    for lc in controllers:
        lc.set_num_threads(2)
    changes = []
    try:
        for lc in controllers:
            original = lc.set_num_threads
            monkeypatch.setattr(lc, "set_num_threads", lambda n, original=original: (changes.append(n), original(n)))
        model.loss_and_grads(X.astype(np.float32), Y.astype(np.float32))
        assert changes == [1] * len(controllers) + [2] * len(controllers)
        assert sum(key.endswith(":xh") for key in model.runtimes["rnn"].scratch) == 2  # halves
    finally:
        monkeypatch.undo()
        for lc, n in zip(controllers, before, strict=True):
            lc.set_num_threads(n)


def test_remembered_chunks_follow_the_batch_size_and_the_thread_budget(monkeypatch):
    """One runtime, batches of 17 (two halves), 6 (one chunk: below MIN_SPLIT), 17 again, then
    17 with a one-thread budget: each pass gives a fresh runtime's numbers."""
    case = Case("LSTM", {"units": 5, "return_sequences": True}, ((9, 3),))
    rt = make_runtime(case, np.float64)
    rng = np.random.default_rng(8)
    for n, budget in ((17, 2), (6, 2), (17, 2), (17, 1)):
        monkeypatch.setattr(ONE_BLAS_THREAD, "budget", lambda budget=budget: budget)
        x = rng.normal(size=(n, 9, 3))
        dseq, dlast = rng.normal(size=(n, 9, 5)), rng.normal(size=(n, 5))
        fresh = make_runtime(case, np.float64)
        fresh.W.update({k: v.copy() for k, v in rt.W.items()})
        results = []
        for r in (rt, fresh):
            out, state = r.type.forward(r, [x])
            (dx,) = r.type.backward(r, (dseq, dlast))
            results.append((out.copy(), state.copy(), dx.copy(), {k: g.copy() for k, g in r.G.items()}))
        assert sum(key.endswith(":xh") for key in rt.scratch) == (2 if n >= 16 and budget == 2 else 1)
        got, want = results
        for g, w in zip(got[:3], want[:3], strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
        for name in rt.G:
            np.testing.assert_allclose(got[3][name], want[3][name], rtol=1e-12, atol=1e-12)
