"""The mixture density output: mdn_nll against finite differences and torch.distributions,
targets and refusals, sampling, the inverse_sine data, and a trained MDN following every branch.
(The layer itself is in the harness table: forward reference, FD backward, exports.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.data import make_dataset
from engine.errors import GraphError, ShapeError, TrainingError
from engine.graph import Graph
from engine.layers.mixture import sample_mdn, sample_mixture
from engine.losses import loss_and_grad, prepare_targets, reference_loss
from engine.session import prepare_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def mixture_outputs(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
    """Valid MixtureDensity outputs: weights on the simplex, any means, positive deviations."""
    a = rng.normal(size=(rows, k))
    pi = np.exp(a) / np.exp(a).sum(axis=1, keepdims=True)
    return np.concatenate([pi, rng.normal(size=(rows, k)), np.exp(0.4 * rng.normal(size=(rows, k)))], axis=1)


def test_mdn_nll_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    out, t = mixture_outputs(rng, 6, 3), rng.normal(size=(6, 1))
    grad = np.empty_like(out)
    loss = loss_and_grad("mdn_nll", out, t, grad)
    assert loss == pytest.approx(reference_loss("mdn_nll", out, t), rel=1e-12)
    eps, fd = 1e-6, np.zeros_like(out)
    for i in np.ndindex(out.shape):
        up, down = out.copy(), out.copy()
        up[i] += eps
        down[i] -= eps
        fd[i] = (reference_loss("mdn_nll", up, t) - reference_loss("mdn_nll", down, t)) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def test_mdn_nll_equals_torch_mixture_log_likelihood():
    rng = np.random.default_rng(1)
    k = 4
    out, t = mixture_outputs(rng, 32, k), rng.normal(size=(32, 1))
    tout = torch.tensor(out, requires_grad=True)
    pi, mu, sigma = tout[:, :k], tout[:, k:2 * k], tout[:, 2 * k:]
    mixture = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(probs=pi),
                                                    torch.distributions.Normal(mu, sigma))
    want = -mixture.log_prob(torch.tensor(t[:, 0])).mean()
    want.backward()
    grad = np.empty_like(out)
    assert loss_and_grad("mdn_nll", out, t, grad) == pytest.approx(want.item(), rel=1e-12)
    # torch's Categorical renormalises π, which adds a component along (1, …, 1) per row to ∂/∂π
    g_pi, t_pi = grad[:, :k], tout.grad.numpy()[:, :k]
    np.testing.assert_allclose(g_pi - g_pi.mean(1, keepdims=True), t_pi - t_pi.mean(1, keepdims=True), atol=1e-12)
    np.testing.assert_allclose(grad[:, k:], tout.grad.numpy()[:, k:], rtol=1e-10, atol=1e-14)


def test_mdn_nll_over_time_steps_is_the_mean_over_every_position():
    rng = np.random.default_rng(2)
    out, t = mixture_outputs(rng, 10, 2).reshape(5, 2, 6), rng.normal(size=(5, 2, 1))
    grad = np.empty_like(out)
    assert loss_and_grad("mdn_nll", out, t, grad) == pytest.approx(
        reference_loss("mdn_nll", out.reshape(10, 6), t.reshape(10, 1)), rel=1e-12)


def test_a_component_with_zero_weight_still_gets_a_finite_gradient():
    out = np.array([[1.0, 0.0, 0.0, 2.0, 0.5, 0.5]])
    grad = np.empty_like(out)
    loss = loss_and_grad("mdn_nll", out, np.array([[1.9]]), grad)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert grad[0, 1] < 0  # raising the weight of the component sitting on y lowers the loss
    assert grad[0, 1] < grad[0, 0]


def test_targets_are_one_value_per_position():
    y = np.arange(6.0)
    np.testing.assert_array_equal(prepare_targets("mdn_nll", y, "regression", 0, (9,), np.float64), y[:, None])
    np.testing.assert_array_equal(
        prepare_targets("mdn_nll", y[:, None], "regression", 0, (9,), np.float64), y[:, None])
    with pytest.raises(TrainingError, match=r"needs \(1,\) target value\(s\) per example"):
        prepare_targets("mdn_nll", np.zeros((6, 2)), "regression", 0, (9,), np.float64)
    with pytest.raises(TrainingError, match="for regression targets"):
        prepare_targets("mdn_nll", np.zeros(6), "classification", 2, (9,), np.float64)


def mdn_graph(last: str = "MixtureDensity", units: int = 9) -> Graph:
    g = Graph("mdn")
    g.add_node("Input", {"shape": [1]}, "x")
    g.add_node("Dense", {"units": units}, "z")
    g.connect("x", "z")
    if last:
        g.add_node(last, {"components": 3} if last == "MixtureDensity" else {}, "out")
        g.connect("z", "out")
    g.training = {"dataset": {"name": "inverse_sine", "n": 50}, "loss": "mdn_nll"}
    return g


def test_mdn_nll_needs_a_mixture_density_output():
    problems = mdn_graph(last="").problems()
    assert [(p.node, p.message) for p in problems] == [
        ("z", "the mdn_nll loss reads a MixtureDensity output, but the graph ends in this Dense; "
              "add a MixtureDensity layer at the end or choose another loss")]
    with pytest.raises(GraphError, match="reads a MixtureDensity output"):
        prepare_run(mdn_graph(last=""))
    assert mdn_graph().problems() == []


def test_the_layer_before_must_have_3k_units():
    with pytest.raises(GraphError) as err:
        mdn_graph(units=8)
    assert err.value.node == "out"
    assert "needs 9 inputs per position (3 mixing logits, 3 means, 3 scales), got (8,); set the Dense before " \
           "it to 9 units" in str(err.value)
    with pytest.raises(ShapeError, match="3K values"):
        sample_mixture(np.zeros((2, 8)))


def test_samples_follow_the_mixture():
    params = np.array([[0.2, 0.8, -5.0, 5.0, 0.1, 0.5]])
    s = sample_mixture(params, samples=20000, seed=3)
    assert s.shape == (1, 20000)
    low = s[0][s[0] < 0]
    assert len(low) / s.size == pytest.approx(0.2, abs=0.015)
    assert low.mean() == pytest.approx(-5.0, abs=0.01) and low.std() == pytest.approx(0.1, rel=0.05)
    high = s[0][s[0] >= 0]
    assert high.mean() == pytest.approx(5.0, abs=0.02) and high.std() == pytest.approx(0.5, rel=0.05)
    np.testing.assert_array_equal(sample_mixture(params, 50, seed=3), sample_mixture(params, 50, seed=3))
    assert not np.array_equal(sample_mixture(params, 50, seed=3), sample_mixture(params, 50, seed=4))


def test_inverse_sine_is_bishops_inverse_problem():
    clean = make_dataset({"name": "inverse_sine", "n": 500, "noise": 0.0, "seed": 5})
    x, y = clean.X[:, 0].astype(np.float64), clean.y[:, 0].astype(np.float64)
    assert clean.task == "regression" and clean.X.shape == (500, 1) and clean.y.shape == (500, 1)
    assert 0 <= y.min() and y.max() <= 1
    np.testing.assert_allclose(x, y + 0.3 * np.sin(2 * np.pi * y), atol=1e-6)
    noisy = make_dataset({"name": "inverse_sine", "n": 500, "noise": 0.05, "seed": 5})
    assert np.std(noisy.X[:, 0] - clean.X[:, 0]) == pytest.approx(0.05, rel=0.15)
    again = make_dataset({"name": "inverse_sine", "n": 500, "noise": 0.05, "seed": 5})
    np.testing.assert_array_equal(noisy.X, again.X)


def branches(x: float) -> np.ndarray:
    """Every y in [0, 1] with y + 0.3·sin(2πy) = x (sign changes on a fine grid)."""
    grid = np.linspace(0, 1, 100000)  # no grid point falls on a root
    f = grid + 0.3 * np.sin(2 * np.pi * grid) - x
    return grid[:-1][np.sign(f[:-1]) != np.sign(f[1:])]


def test_a_trained_mdn_samples_every_branch_where_mse_predicts_their_mean():
    mdn = prepare_run(Graph.load(EXAMPLES / "mdn_inverse_sine.json"), EXAMPLES)
    mdn.trainer.run()
    roots = branches(0.5)
    assert len(roots) == 3
    pi, mu, _sigma = mdn.model.predict(np.array([[0.5]], np.float32))[0].reshape(3, 3)
    for root in roots:  # one component with real weight sits on each branch
        assert any(abs(m - root) < 0.05 and w > 0.1 for w, m in zip(pi, mu, strict=True)), (root, pi, mu)
    samples = sample_mdn(mdn.model, np.array([[0.5]]), samples=2000, seed=0)[0]
    near = [np.mean(np.abs(samples - r) < 0.12) for r in roots]
    assert min(near) >= 0.1 and sum(near) >= 0.85, near  # every branch drawn, little in between
    mse_graph = Graph.load(EXAMPLES / "mdn_inverse_sine.json")
    mse_graph.remove_node("mdn")
    mse_graph.set_param("params", "units", 1)
    mse_graph.training["loss"] = "mse"
    mse = prepare_run(mse_graph, EXAMPLES)
    mse.trainer.run()
    mean = float(mse.model.predict(np.array([[0.5]], np.float32))[0, 0])
    assert mean == pytest.approx(roots.mean(), abs=0.1)  # the average of the branches…
    assert min(abs(mean - roots[0]), abs(mean - roots[2])) > 0.2  # …far from the outer two
    with pytest.raises(ShapeError, match="not a MixtureDensity"):
        sample_mdn(mse.model, np.array([[0.5]]))
