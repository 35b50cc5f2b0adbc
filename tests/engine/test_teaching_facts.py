"""The facts the examples exist to show, checked on the examples themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.graph import Graph
from engine.session import prepare_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def trained_accuracy(name: str, seed: int) -> float:
    run = prepare_run(Graph.load(EXAMPLES / f"{name}.json"), EXAMPLES, seed=seed)
    finish = run.trainer.run()
    assert finish.reason == "completed"
    return run.trainer.history[-1].train_acc


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xor_without_hidden_layer_stays_at_most_75_percent(seed):
    assert trained_accuracy("xor_no_hidden", seed) <= 0.75


def test_xor_2_2_1_tanh_reaches_100_percent():
    assert trained_accuracy("xor", 0) == 1.0


def first_and_last_gradient_norms(name: str) -> tuple[float, float]:
    """Gradient L2 norms of the first and last parameterised layers at initialisation."""
    run = prepare_run(Graph.load(EXAMPLES / f"{name}.json"), EXAMPLES)
    tr = run.trainer
    tr.train_step(tr.X[:32], tr.T[:32], lr=0.0)
    norms = tr.norms
    return float(norms[0]), float(norms[-1])


def test_deep_sigmoid_gradient_vanishes_at_initialisation():
    first, last = first_and_last_gradient_norms("deep_sigmoid")
    assert first * 100 <= last


@pytest.mark.parametrize("name", ["deep_relu_he", "deep_residual"])
def test_relu_he_and_residual_keep_gradient_within_10x(name):
    first, last = first_and_last_gradient_norms(name)
    assert last / 10 <= first <= last * 10


def test_gradient_norms_match_an_independent_computation():
    """Per-node norms equal ‖∂L/∂θ‖ of that node computed from the model's own views."""
    run = prepare_run(Graph.load(EXAMPLES / "deep_sigmoid.json"), EXAMPLES)
    tr = run.trainer
    tr.train_step(tr.X[:32], tr.T[:32], lr=0.0)
    for i, nid in enumerate(run.model.param_nodes):
        grads = run.model.runtimes[nid].G
        expected = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
        assert tr.norms[i] == pytest.approx(expected, rel=1e-5)
