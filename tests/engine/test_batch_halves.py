"""The halves of a batch on two threads (engine/layers/batch_halves.py): when a batch is split,
that both halves run at once on two threads with NumPy's BLAS held to one, which layers split,
and that a split convolution gives the numbers of the unsplit layer (float64, and
finite differences through a small CNN trained on a split batch)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from layer_harness import finite_difference

import engine.layers.conv as conv_layer
from engine.compiler import compile_graph
from engine.graph import Graph
from engine.layers import batch_halves as H


def test_a_batch_is_split_only_with_two_blas_threads_and_enough_examples():
    assert H.halves(64, budget=1) == [(0, 64)]
    assert H.halves(H.MIN_SPLIT - 1, budget=2) == [(0, H.MIN_SPLIT - 1)]
    assert H.halves(17, budget=2) == [(0, 9), (9, 17)]
    assert H.halves(64, budget=4) == [(0, 32), (32, 64)]


def test_the_halves_run_at_once_on_two_threads_with_numpy_blas_on_one():
    if not H.ONE_NUMPY_BLAS_THREAD._find():
        pytest.skip("NumPy's BLAS is not an OpenBLAS that threadpoolctl controls")
    before = H.ONE_NUMPY_BLAS_THREAD.budget()
    both = threading.Barrier(2, timeout=10)  # each task waits for the other: they must overlap
    seen: list[tuple[int, int]] = []

    def task() -> None:
        both.wait()
        seen.append((threading.get_ident(), max(lc.get_num_threads() for lc in H.ONE_NUMPY_BLAS_THREAD._find())))

    H.run_parts([task, task])
    assert len({ident for ident, _ in seen}) == 2
    assert all(threads == 1 for _, threads in seen)
    assert H.ONE_NUMPY_BLAS_THREAD.budget() == before


def _cnn(extra: tuple[str, dict] | None = None) -> Graph:
    """A small CNN chain; ``extra`` (type, params) is a node inserted after the first convolution."""
    nodes = [("x", "Input", {"shape": [2, 6, 6]}), ("c", "Conv2D", {"filters": 2, "kernel_size": 3, "padding": 1}),
             ("r", "Activation", {}), ("p", "MaxPool2D", {}), ("c2", "Conv2D", {"filters": 2, "kernel_size": 2}),
             ("f", "Flatten", {}), ("d", "Dense", {"units": 3})]
    if extra is not None:
        nodes.insert(2, ("extra", *extra))
    ids = [n[0] for n in nodes]
    return Graph.from_dict({"format": "backprop-studio.graph", "version": 1,
                            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
                            "edges": [{"from": a, "to": b} for a, b in zip(ids[:-1], ids[1:], strict=True)],
                            "training": {"loss": "cross_entropy"}})


def _step(monkeypatch, budget: int, X: np.ndarray, T: np.ndarray):
    """One step with the convolutions' own halves (the whole-step halves off)."""
    real = H.halves
    monkeypatch.setattr(conv_layer, "halves", lambda n, _budget=None: real(n, budget))
    model = compile_graph(_cnn(), dtype="float64", seed=3)
    model.splits_steps = False
    loss = model.loss_and_grads(X, T)
    return model, loss


def _same_numbers_and_finite_differences(model, loss, whole, loss_whole, node: str, X, T) -> None:
    """``model`` gives ``whole``'s loss, output of ``node`` and gradients, and its gradients
    match finite differences."""
    assert loss == pytest.approx(loss_whole, rel=1e-12)
    np.testing.assert_allclose(model.output_of(node), whole.output_of(node), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.grads, whole.grads, rtol=1e-10, atol=1e-13)
    analytic = model.grads.copy()
    np.testing.assert_allclose(analytic, finite_difference(lambda: model.loss_and_grads(X, T), model.params),
                               rtol=1e-5, atol=1e-8)


def test_a_split_batch_gives_the_numbers_of_the_whole_batch_and_finite_differences(monkeypatch):
    rng = np.random.default_rng(0)
    n = H.MIN_SPLIT + 1
    X, T = rng.normal(size=(n, 2, 6, 6)), np.eye(3)[rng.integers(0, 3, n)]
    whole, loss_whole = _step(monkeypatch, 1, X, T)
    split, loss_split = _step(monkeypatch, 2, X, T)
    assert len(split.runtimes["c"].cache["parts"]) == 2 and len(whole.runtimes["c"].cache["parts"]) == 1
    # c's weight gradients pass through c2's split ∂L/∂x (col2im per half)
    _same_numbers_and_finite_differences(split, loss_split, whole, loss_whole, "p", X, T)


@pytest.mark.parametrize("strip_run", [0, 10**9], ids=["dW-from-strips", "dW-from-columns"])
@pytest.mark.parametrize("budget", [1, 2])
def test_blocks_of_a_few_images_give_the_numbers_of_the_whole_batch(monkeypatch, budget, strip_run):
    """Columns in blocks that fit the cache (conv.COLUMN_BLOCK_BYTES), here squeezed to two
    images a block (c's float32 columns are 18·36·4 bytes an image), with and without
    the halves: same forward, same ∂L/∂W and ∂L/∂b summed over the blocks, and finite
    differences."""
    monkeypatch.setattr(conv_layer, "STRIP_RUN", strip_run)
    rng = np.random.default_rng(1)
    n = H.MIN_SPLIT + 3
    X, T = rng.normal(size=(n, 2, 6, 6)), np.eye(3)[rng.integers(0, 3, n)]
    whole, loss_whole = _step(monkeypatch, budget, X, T)
    monkeypatch.setattr(conv_layer, "COLUMN_BLOCK_BYTES", 18 * 36 * 4 * 3 - 1)
    blocked, loss_blocked = _step(monkeypatch, budget, X, T)
    assert conv_layer._block_images(conv_layer.plan_of(blocked.runtimes["c"])) == 2
    parts = [(a, b) for a, b, _ in blocked.runtimes["c"].cache["parts"]]
    assert parts == ([(0, n)] if budget == 1 else [(0, 10), (10, n)])
    # one block's columns (2 images), rebuilt for each block in backward; unblocked: the part's
    assert blocked.runtimes["c"].scratch["0:cols"].size == 18 * 36 * 2
    assert whole.runtimes["c"].scratch["0:cols"].size == 18 * 36 * (n if budget == 1 else 10)
    _same_numbers_and_finite_differences(blocked, loss_blocked, whole, loss_whole, "c", X, T)


def test_convolutions_split_their_batch_and_pooling_does_not(monkeypatch):
    """Convolutions, thin or not, split the batch when BLAS has two threads; max pooling keeps
    the whole batch (it only moves data, and ran slower on two threads)."""
    real = H.halves
    monkeypatch.setattr(conv_layer, "halves", lambda n, _budget=None: real(n, 2))
    g = Graph.from_dict({"format": "backprop-studio.graph", "version": 1, "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [1, 12, 12]}},
        {"id": "c6", "type": "Conv2D", "params": {"filters": 6, "kernel_size": 3}},
        {"id": "p", "type": "MaxPool2D", "params": {}},
        {"id": "c16", "type": "Conv2D", "params": {"filters": 16, "kernel_size": 3}},
        {"id": "f", "type": "Flatten", "params": {}}, {"id": "d", "type": "Dense", "params": {"units": 3}}],
        "edges": [{"from": a, "to": b} for a, b in (("x", "c6"), ("c6", "p"), ("p", "c16"), ("c16", "f"), ("f", "d"))],
        "training": {"loss": "cross_entropy"}})
    model = compile_graph(g, dtype="float32", seed=0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 1, 12, 12)).astype(np.float32)
    model.loss_and_grads(X, np.eye(3, dtype=np.float32)[rng.integers(0, 3, 32)])
    for conv in ("c6", "c16"):
        assert [(a, b) for a, b, _ in model.runtimes[conv].cache["parts"]] == [(0, 16), (16, 32)]
    assert "parts" not in model.runtimes["p"].cache


# ---- the whole step in two halves (Model._halves_step) ------------------------------------------
def _whole_and_halved(monkeypatch, graph: Graph, X, T, steps: int = 1):
    """The same training steps with one thread's budget everywhere and with the model's
    whole-step halves (the layers inside them keep their half whole): both trainers."""
    from engine.training import TrainConfig, Trainer

    real = H.halves
    out = []
    for budget in (1, 2):
        monkeypatch.setattr(H, "halves", lambda n, _budget=None, b=budget: real(n, b))
        monkeypatch.setattr(conv_layer, "halves", lambda n, _budget=None, b=budget: real(n, b))
        model = compile_graph(graph, dtype="float64", seed=3)
        trainer = Trainer(model, X, T.argmax(1), TrainConfig.from_training(graph.training),
                          task="classification", n_classes=T.shape[1])
        losses = [trainer.train_step(trainer.X, trainer.T, 0.05) for _ in range(steps)]
        out.append((model, trainer, losses))
    return out


def test_a_halved_step_gives_the_numbers_of_the_whole_batch_and_finite_differences(monkeypatch):
    rng = np.random.default_rng(2)
    n = H.MIN_SPLIT + 1
    X, T = rng.normal(size=(n, 2, 6, 6)), np.eye(3)[rng.integers(0, 3, n)]
    (whole, _, losses_whole), (halved, _, losses_halved) = _whole_and_halved(monkeypatch, _cnn(), X, T, steps=3)
    assert halved.splits_steps and halved._halved and not whole._halved
    twin = halved._twin
    # the twin reads the model's parameters (updated by the optimizer) and keeps its own gradients
    assert np.shares_memory(twin.runtimes["c"].W["W"], halved.params)
    assert not np.shares_memory(twin.runtimes["c"].G["W"], halved.grads)
    # inside a half nothing splits again; the model's outputs are its first half's
    for model in (halved, twin):
        assert len(model.runtimes["c"].cache["parts"]) == 1
    assert halved.output_of("p").shape[0] == 9 and twin.output_of("p").shape[0] == n - 9
    np.testing.assert_allclose(losses_halved, losses_whole, rtol=1e-12)
    np.testing.assert_allclose(halved.params, whole.params, rtol=1e-10, atol=1e-13)
    loss_whole, loss_halved = whole.loss_and_grads(X, T), halved.loss_and_grads(X, T)
    assert loss_halved == pytest.approx(loss_whole, rel=1e-12)
    np.testing.assert_allclose(halved.grads, whole.grads, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(halved.grads.copy(),
                               finite_difference(lambda: halved.loss_and_grads(X, T), halved.params),
                               rtol=1e-5, atol=1e-8)


def test_unequal_halves_are_weighted_by_their_sizes(monkeypatch):
    """17 examples split 9 + 8: the loss and gradients are the batch means, not the mean of the
    halves' means (which would weigh the second half's examples more)."""
    rng = np.random.default_rng(4)
    X, T = rng.normal(size=(17, 2, 6, 6)), np.eye(3)[rng.integers(0, 3, 17)]
    T[9:] = np.eye(3)[0]  # the halves differ a lot
    (whole, _, lw), (halved, _, lh) = _whole_and_halved(monkeypatch, _cnn(), X, T)
    assert lh == pytest.approx(lw, rel=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_evaluation_runs_the_halves_at_once_and_gives_the_numbers_of_the_whole_batch(monkeypatch, dtype):
    """predict and the loss's evaluation forward split like a training step: the twin takes
    the second half on the helper thread, and every example gets the whole batch's numbers."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(37, 2, 6, 6)).astype(dtype)
    real = H.halves
    results = []
    for budget in (1, 2):
        monkeypatch.setattr(H, "halves", lambda n, _budget=None, b=budget: real(n, b))
        model = compile_graph(_cnn(), dtype=dtype, seed=3)
        threads: set[str] = set()
        forward = type(model).forward

        def spy(self, *args, _forward=forward, _threads=threads, **kwargs):
            _threads.add(threading.current_thread().name)
            return _forward(self, *args, **kwargs)

        monkeypatch.setattr(type(model), "forward", spy)
        probs = model.predict(X, batch_size=20)  # chunks of 20 (10 + 10) and 17 (9 + 8); the graph's outputs
        logits = model.logits_for_loss(X)
        monkeypatch.setattr(type(model), "forward", forward)
        results.append((probs, logits, len(threads), model._twin is not None))
    (probs1, logits1, threads1, twin1), (probs2, logits2, threads2, twin2) = results
    assert (threads1, twin1) == (1, False) and (threads2, twin2) == (2, True)
    assert probs2.shape == (37, 3) and logits2.shape == (37, 3)
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(probs2, probs1, rtol=tol, atol=tol)
    np.testing.assert_allclose(logits2, logits1, rtol=tol, atol=tol)


def test_a_non_finite_example_in_the_second_half_is_located(monkeypatch):
    rng = np.random.default_rng(5)
    X, T = rng.normal(size=(20, 2, 6, 6)), np.eye(3)[rng.integers(0, 3, 20)]
    X[-1] = np.inf
    real = H.halves
    monkeypatch.setattr(H, "halves", lambda n, _budget=None: real(n, 2))
    model = compile_graph(_cnn(), dtype="float64", seed=3)
    assert not np.isfinite(model.loss_and_grads(X, T)) and model._halved
    assert np.all(np.isfinite(model.output_of("c")))  # the first half is clean
    assert model.first_non_finite() == "x"  # the data itself, in the second half


@pytest.mark.parametrize("kind,params,halves", [
    (None, {}, True), ("Dropout", {"rate": 0.5}, False), ("BatchNorm", {}, False), ("Activation", {}, True)])
def test_only_graphs_of_per_example_layers_halve_the_whole_step(kind, params, halves):
    """Dropout draws random numbers and BatchNorm couples the examples of a batch: their graphs
    keep the layer-level halves. A recurrent network (no convolution) and an MLP never halve."""
    graph = _cnn() if kind is None else _cnn((kind, params))
    assert compile_graph(graph).splits_steps is halves
    mlp = Graph.from_dict({"format": "backprop-studio.graph", "version": 1, "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [4]}}, {"id": "d", "type": "Dense", "params": {"units": 3}}],
        "edges": [{"from": "x", "to": "d"}], "training": {"loss": "cross_entropy"}})
    assert not compile_graph(mlp, fused=False).splits_steps
    lstm = Graph.from_dict({"format": "backprop-studio.graph", "version": 1, "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [5, 3]}}, {"id": "r", "type": "LSTM", "params": {"units": 4}},
        {"id": "d", "type": "Dense", "params": {"units": 1}}],
        "edges": [{"from": "x", "to": "r"}, {"from": "r", "to": "d"}], "training": {"loss": "mse"}})
    assert not compile_graph(lstm).splits_steps
