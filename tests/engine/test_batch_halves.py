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


def _cnn() -> Graph:
    nodes = [("x", "Input", {"shape": [2, 6, 6]}), ("c", "Conv2D", {"filters": 2, "kernel_size": 3, "padding": 1}),
             ("r", "Activation", {}), ("p", "MaxPool2D", {}), ("c2", "Conv2D", {"filters": 2, "kernel_size": 2}),
             ("f", "Flatten", {}), ("d", "Dense", {"units": 3})]
    ids = [n[0] for n in nodes]
    return Graph.from_dict({"format": "backprop-studio.graph", "version": 1,
                            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
                            "edges": [{"from": a, "to": b} for a, b in zip(ids[:-1], ids[1:], strict=True)],
                            "training": {"loss": "cross_entropy"}})


def _step(monkeypatch, budget: int, X: np.ndarray, T: np.ndarray):
    real = H.halves
    monkeypatch.setattr(conv_layer, "halves", lambda n, _budget=None: real(n, budget))
    model = compile_graph(_cnn(), dtype="float64", seed=3)
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


@pytest.mark.parametrize("budget", [1, 2])
def test_blocks_of_a_few_images_give_the_numbers_of_the_whole_batch(monkeypatch, budget):
    """Columns in blocks that fit the cache (conv.COLUMN_BLOCK_BYTES), here squeezed to one to
    three images a block (c's float32 columns are 18·36·4 bytes an image), with and without
    the halves: same forward, same ∂L/∂W and ∂L/∂b summed over the blocks, and finite
    differences."""
    rng = np.random.default_rng(1)
    n = H.MIN_SPLIT + 3
    X, T = rng.normal(size=(n, 2, 6, 6)), np.eye(3)[rng.integers(0, 3, n)]
    whole, loss_whole = _step(monkeypatch, budget, X, T)
    monkeypatch.setattr(conv_layer, "COLUMN_BLOCK_BYTES", 18 * 36 * 4 * 3 - 1)
    blocked, loss_blocked = _step(monkeypatch, budget, X, T)
    assert conv_layer._block_images(conv_layer.plan_of(blocked.runtimes["c"])) == 2
    parts = [(a, b) for a, b, _ in blocked.runtimes["c"].cache["parts"]]
    assert parts == ([(0, n)] if budget == 1 else [(0, 10), (10, n)])
    assert blocked.runtimes["c"].scratch["0:cols"].shape[0] == (10 if budget == 1 else 5)  # blocks in part 0
    assert whole.runtimes["c"].scratch["0:cols"].shape[0] == 1
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
