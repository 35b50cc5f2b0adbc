"""The compiled model's plumbing: output ports, the state store and snapshots, per-batch
scratch, memory-aware evaluation and batching, and the last-axis loss rule.

Each test pins a behaviour a later layer family (convolution, recurrence) relies on.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from layer_harness import finite_difference

from engine.compiler import SCRATCH_SIZES, compile_graph
from engine.errors import GraphError, TrainingError
from engine.graph import Graph
from engine.layers.base import REGISTRY, LayerType, ParamSpec
from engine.losses import loss_and_grad, prepare_targets, reference_loss
from engine.training import TrainConfig, Trainer


def graph(nodes, edges, loss="mse", **training) -> Graph:
    return Graph.from_dict({
        "format": "backprop-studio.graph", "version": 1,
        "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
        "edges": [{"from": a, "to": b} for a, b in edges],
        "training": {"loss": loss, **training},
    })


def two_head_graph(use_second: bool = True) -> Graph:
    """x(6) → Split → out0 → Dense(3) ┐
                       → out1 → Dense(3) ┴ Add → Dense(1): both ports on the way to the loss."""
    nodes = [("x", "Input", {"shape": [6]}), ("s", "Split", {}), ("a", "Dense", {"units": 3}),
             ("b", "Dense", {"units": 3}), ("add", "Add", {}), ("o", "Dense", {"units": 1})]
    edges = [("x", "s"), ("s.out0", "a"), ("a", "add.in0"), ("add", "o")]
    edges += [("s.out1", "b"), ("b", "add.in1")] if use_second else [("x", "b"), ("b", "add.in1")]
    return graph(nodes, edges)


# ---- ports ------------------------------------------------------------------------------------
def test_each_output_port_is_wired_and_shaped_on_its_own():
    g = two_head_graph()
    assert g.inputs_of("a") == [("s", "out0")] and g.inputs_of("b") == [("s", "out1")]
    report = g.infer_shapes()
    assert report.port_shapes[("s", "out0")] == (3,) and report.port_shapes[("s", "out1")] == (3,)
    with pytest.raises(GraphError, match="no output port 'state'"):
        g.connect("s", "o", "in", src_port="state")
    model = compile_graph(g, dtype=np.float64, seed=1)
    X = np.random.default_rng(0).normal(size=(5, 6))
    model.forward(X)
    np.testing.assert_array_equal(model.outputs[("s", "out0")], X[:, :3])
    np.testing.assert_array_equal(model.outputs[("s", "out1")], X[:, 3:])
    assert model.output_of("s") is model.outputs[("s", "out0")]


@pytest.mark.parametrize("use_second", [True, False], ids=["both-ports", "one-port-unused"])
def test_gradients_through_a_two_output_layer_match_finite_differences(use_second):
    model = compile_graph(two_head_graph(use_second), dtype=np.float64, seed=2)
    rng = np.random.default_rng(3)
    X, T = rng.normal(size=(7, 6)), rng.normal(size=(7, 1))

    def loss() -> float:
        return model.loss_and_grads(X, T)

    loss()
    analytic = model.grads.copy()
    np.testing.assert_allclose(analytic, finite_difference(loss, model.params), rtol=1e-6, atol=1e-8)
    assert np.all(analytic != 0)


def test_a_two_output_layer_trains():
    g = two_head_graph()
    g.training.update({"batch_size": 16, "epochs": 60, "optimizer": {"name": "adam", "lr": 0.02}})
    model = compile_graph(g, dtype=np.float32, seed=0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(128, 6)).astype(np.float32)
    y = (X[:, :3].sum(1) - 2 * X[:, 3:].sum(1)).reshape(-1, 1)  # needs both halves
    tr = Trainer(model, X, y, TrainConfig.from_training(g.training), task="regression")
    tr.run()
    assert tr.history[-1].train_loss < 0.02 * float(np.var(y))


def test_changing_the_number_of_output_ports_drops_the_wires_of_removed_ports():
    g = graph([("x", "Input", {"shape": [6]}), ("s", "Split", {"parts": 3}), ("a", "Dense", {"units": 1})],
              [("x", "s"), ("s.out2", "a")])
    g.set_param("s", "parts", 2)
    assert g.edges_from("s") == []


# ---- state store and snapshots -----------------------------------------------------------------
BN_DROPOUT = [("x", "Input", {"shape": [4]}), ("d", "Dense", {"units": 8}), ("bn", "BatchNorm", {}),
              ("drop", "Dropout", {"rate": 0.3}), ("o", "Dense", {"units": 1})]
BN_EDGES = [("x", "d"), ("d", "bn"), ("bn", "drop"), ("drop", "o")]


def test_layer_state_lives_in_one_store_beside_the_parameters():
    model = compile_graph(graph(BN_DROPOUT, BN_EDGES), dtype=np.float64)
    rt = model.runtimes["bn"]
    assert model.state.size == 16
    assert np.shares_memory(rt.B["running_mean"], model.state)
    assert np.shares_memory(rt.B["running_var"], model.state)
    assert set(model.state_dict()) >= {"bn.running_mean", "bn.running_var"}


def test_snapshot_and_restore_cover_parameters_state_and_the_random_generator():
    model = compile_graph(graph(BN_DROPOUT, BN_EDGES), dtype=np.float64, seed=4)
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(8, 4)), rng.normal(size=(8, 1))
    snap = model.snapshot(rng=True)
    first = model.loss_and_grads(X, T)
    model.params -= 0.1 * model.grads
    assert not np.array_equal(model.state, snap.state)
    model.restore(snap)
    np.testing.assert_array_equal(model.params, snap.params)
    np.testing.assert_array_equal(model.state, snap.state)
    assert model.loss_and_grads(X, T) == first  # same dropout masks again
    other = compile_graph(graph(BN_DROPOUT, BN_EDGES), dtype=np.float64, seed=9)
    other.restore(model.snapshot())
    np.testing.assert_array_equal(other.state, model.state)


def test_early_stopping_restores_the_best_epochs_batchnorm_statistics(monkeypatch):
    g = graph(BN_DROPOUT, BN_EDGES, batch_size=8, epochs=10, early_stopping={"patience": 2},
              optimizer={"name": "sgd", "lr": 0.01})
    model = compile_graph(g, dtype=np.float64)
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(32, 4)), rng.normal(size=(32, 1))
    val_losses = iter([1.0, 0.5, 0.7, 0.9, 1.1, 1.3])
    seen: dict[int, np.ndarray] = {}
    tr = Trainer(model, X, y, TrainConfig.from_training(g.training), task="regression", val=(X[:8], y[:8]),
                 listener=lambda e: seen.__setitem__(e.epoch, model.state.copy()) if e.event == "epoch" else None)
    monkeypatch.setattr(tr, "evaluate", lambda *a, **k: (next(val_losses), None))
    finish = tr.run()
    assert finish.reason == "early_stopping" and finish.best_epoch == 2
    np.testing.assert_array_equal(model.state, seen[2])
    assert not np.array_equal(model.state, seen[4])


def test_locating_a_divergence_changes_no_state():
    g = graph(BN_DROPOUT, BN_EDGES, batch_size=8)
    model = compile_graph(g, dtype=np.float64)
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(16, 4)), rng.normal(size=(16, 1))
    tr = Trainer(model, X, y, TrainConfig.from_training(g.training), task="regression")
    tr.train_step(tr.X[:8], tr.T[:8], 0.01)
    before = model.snapshot(rng=True)
    finish = tr._diverged(tr.X[:8], float("nan"))
    assert finish.reason == "diverged"
    np.testing.assert_array_equal(model.params, before.params)
    np.testing.assert_array_equal(model.state, before.state)
    assert model.rng.bit_generator.state == before.rng


# ---- BatchNorm and tiny batches ---------------------------------------------------------------
def test_a_last_batch_of_one_is_dropped_for_batchnorm_and_the_variance_stays_sane():
    g = graph(BN_DROPOUT, BN_EDGES, batch_size=4, epochs=30, optimizer={"name": "sgd", "lr": 0.01})
    model = compile_graph(g, dtype=np.float64)
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(9, 4)), rng.normal(size=(9, 1))  # 4 + 4 + 1
    sizes = []
    tr = Trainer(model, X, y, TrainConfig.from_training(g.training), task="regression")
    step = tr.train_step
    tr.train_step = lambda xb, tb, lr: (sizes.append(len(xb)), step(xb, tb, lr))[1]
    assert tr.steps_per_epoch() == 2
    tr.run()
    assert set(sizes) == {4}
    assert model.runtimes["bn"].B["running_var"].min() > 0.05


def test_batch_size_one_with_batchnorm_is_refused_naming_the_node():
    g = graph(BN_DROPOUT, BN_EDGES, batch_size=1)
    model = compile_graph(g)
    with pytest.raises(TrainingError, match=r"BatchNorm 'bn' needs at least 2 examples per batch"):
        Trainer(model, np.zeros((5, 4)), np.zeros((5, 1)), TrainConfig.from_training(g.training),
                task="regression")


def test_a_partial_last_batch_is_kept_without_batchnorm():
    g = graph([("x", "Input", {"shape": [4]}), ("o", "Dense", {"units": 1})], [("x", "o")], batch_size=4)
    tr = Trainer(compile_graph(g), np.zeros((9, 4)), np.zeros((9, 1)), TrainConfig.from_training(g.training),
                 task="regression")
    assert tr.steps_per_epoch() == 3


# ---- scratch ----------------------------------------------------------------------------------
@pytest.fixture
def scratch_layer():
    """A test-only layer y = 2x that keeps its output in declared scratch space."""
    def forward(rt, xs):
        out = rt.scratch["y"]
        np.multiply(xs[0], 2.0, out=out)
        return out

    layer = LayerType(name="ScratchDouble", category="reshape", help="test only",
                      shape=lambda p, s: s[0], forward=forward,
                      backward=lambda rt, dy: [2.0 * dy],
                      scratch=lambda p, in_shapes, n: {"y": (n,) + tuple(in_shapes[0])})
    REGISTRY.register(layer)
    yield layer
    del REGISTRY["ScratchDouble"]


def test_scratch_is_allocated_once_per_batch_size_and_reused(scratch_layer):
    g = graph([("x", "Input", {"shape": [3]}), ("s", "ScratchDouble", {}), ("o", "Dense", {"units": 1})],
              [("x", "s"), ("s", "o")])
    model = compile_graph(g, dtype=np.float64)
    X = np.ones((5, 3))
    model.forward(X)
    first = model.runtimes["s"].scratch["y"]
    assert first.shape == (5, 3)
    model.forward(2 * X)
    assert model.runtimes["s"].scratch["y"] is first
    np.testing.assert_array_equal(first, 4 * X)
    model.forward(np.ones((2, 3)))
    assert model.runtimes["s"].scratch["y"].shape == (2, 3)
    model.forward(X)
    assert model.runtimes["s"].scratch["y"] is first  # still kept: recently used
    for n in range(10, 10 + SCRATCH_SIZES):
        model.forward(np.ones((n, 3)))
    model.forward(X)
    assert model.runtimes["s"].scratch["y"] is not first  # evicted, then made again
    assert model.example_bytes() >= 3 * 8


# ---- memory-aware evaluation and batching --------------------------------------------------------
def test_evaluation_chunks_come_from_the_bytes_an_example_needs(monkeypatch):
    wide = graph([("x", "Input", {"shape": [64]}), ("h", "Dense", {"units": 2048}), ("o", "Dense", {"units": 2})],
                 [("x", "h"), ("h", "o")])
    narrow = graph([("x", "Input", {"shape": [64]}), ("o", "Dense", {"units": 2})], [("x", "o")])
    wide_model, narrow_model = compile_graph(wide), compile_graph(narrow)
    assert wide_model.example_bytes() > 10 * narrow_model.example_bytes()
    budget = 1 << 20
    chunk = wide_model.eval_chunk(budget)
    assert chunk * wide_model.example_bytes() <= budget < (chunk + 1) * wide_model.example_bytes()
    X = np.random.default_rng(0).normal(size=(1000, 64)).astype(np.float32)
    whole = wide_model.predict(X, batch_size=1000)
    calls = []
    forward = wide_model.forward
    monkeypatch.setattr(wide_model, "forward", lambda x, training=False: (calls.append(len(x)), forward(x))[1])
    monkeypatch.setattr(wide_model, "eval_chunk", lambda budget=budget: chunk)
    np.testing.assert_allclose(wide_model.predict(X), whole, rtol=1e-5, atol=1e-6)  # BLAS blocks differ
    assert max(calls) == chunk and len(calls) == -(-1000 // chunk)


def test_shuffled_batches_are_gathered_through_the_permutation():
    g = graph([("x", "Input", {"shape": [2]}), ("o", "Dense", {"units": 1})], [("x", "o")], batch_size=3,
              epochs=2, seed=5)
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10, dtype=np.float32).reshape(10, 1)
    tr = Trainer(compile_graph(g), X, y, TrainConfig.from_training(g.training), task="regression")
    batches = []
    tr.train_step = lambda xb, tb, lr: (batches.append((xb.copy(), tb.copy())), 0.0)[1]
    tr.run()
    perms = np.random.default_rng(5)
    for epoch in range(2):
        perm = perms.permutation(10)
        got = batches[epoch * 4:(epoch + 1) * 4]
        for b, (xb, tb) in enumerate(got):
            np.testing.assert_array_equal(xb, X[perm[b * 3:(b + 1) * 3]])
            np.testing.assert_array_equal(tb, y[perm[b * 3:(b + 1) * 3]])


def test_an_epoch_on_a_large_dataset_makes_no_copy_of_it():
    g = graph([("x", "Input", {"shape": [784]}), ("o", "Dense", {"units": 10})], [("x", "o")],
              loss="cross_entropy", batch_size=64, epochs=1, stats_every=0)
    rng = np.random.default_rng(0)
    X = rng.random((20000, 784), dtype=np.float32)  # 62.7 MB
    y = rng.integers(0, 10, 20000)
    tr = Trainer(compile_graph(g), X, y, TrainConfig.from_training(g.training), task="classification", n_classes=10)
    assert tr.X is X  # float32 C-contiguous data is used as it is
    tr.train_step = lambda xb, tb, lr: 0.0  # the batching and evaluation only
    tracemalloc.start()
    tr.run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < X.nbytes / 4, f"peak {peak / 1e6:.1f} MB while the data is {X.nbytes / 1e6:.1f} MB"


# ---- losses over the last axis ----------------------------------------------------------------------
def test_cross_entropy_averages_over_every_leading_axis_like_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 5, 3))
    y = rng.integers(0, 3, (4, 5))
    T = prepare_targets("cross_entropy", y, "classification", 3, (5, 3), np.float64)
    dz = np.empty_like(z)
    loss = loss_and_grad("cross_entropy", z, T, dz)
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt.reshape(-1, 3), torch.tensor(y).reshape(-1))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    assert loss == pytest.approx(reference_loss("cross_entropy", z, T), rel=1e-12)
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["mse", "mae", "bce_logits"])
def test_element_wise_losses_average_over_every_element(name):
    rng = np.random.default_rng(1)
    z, t = rng.normal(size=(3, 4, 2)), rng.integers(0, 2, (3, 4, 2)).astype(float)
    assert loss_and_grad(name, z, t, np.empty_like(z)) == pytest.approx(reference_loss(name, z, t), rel=1e-12)


def test_per_step_targets_are_checked_against_the_output_shape():
    with pytest.raises(TrainingError, match=r"\(5, 3\) per example.*shape \(n, 5\).*\(4,\)"):
        prepare_targets("cross_entropy", np.zeros(4, int), "classification", 3, (5, 3), np.float32)
    with pytest.raises(TrainingError, match="regression targets have"):
        prepare_targets("mse", np.zeros((4, 5, 2)), "regression", 0, (5, 1), np.float32)
    T = prepare_targets("mse", np.ones((4, 5, 1)), "regression", 0, (5, 1), np.float32)
    assert T.shape == (4, 5, 1)


def test_many_to_many_classification_trains_with_one_class_per_step():
    """Input (T, F) → Dense acting on the last axis → Softmax over K: a class per time step."""
    g = graph([("x", "Input", {"shape": [6, 3]}), ("h", "Dense", {"units": 16}),
               ("t", "Activation", {"function": "tanh"}), ("o", "Dense", {"units": 4}), ("p", "Softmax", {})],
              [("x", "h"), ("h", "t"), ("t", "o"), ("o", "p")], loss="cross_entropy", batch_size=32, epochs=40,
              optimizer={"name": "adam", "lr": 0.02})
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 6, 3)).astype(np.float32)
    y = np.argmax(X, axis=-1) + (X.sum(-1) > 1.5)  # classes 0..3, one per step
    model = compile_graph(g, dtype=np.float32)
    assert model.loss_shape == (6, 4)
    tr = Trainer(model, X, y, TrainConfig.from_training(g.training), task="classification", n_classes=4)
    tr.run()
    loss, acc = tr.evaluate(tr.X, y, tr.T)
    probs = model.predict(X[:10])
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    expected = float(np.mean(np.argmax(model.predict(X), -1) == y))
    assert acc == pytest.approx(expected) and acc > 0.9


def test_parameter_kind_declarations_reach_the_docs():
    from engine.docs import layers_markdown

    spec = ParamSpec("k", "ints", (3, 3), "kernel", length=2)
    assert spec.describe_range() == "2 positive integers"
    assert "Outputs: `out0`, `out1`" in layers_markdown()
