"""Saturated and dead fractions per activation function, the activation curves lessons plot,
and the initialisers Glorot & Bengio compare (their spread by formula, measured on samples)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.compiler import compile_graph
from engine.graph import Graph
from engine.init import initialise
from engine.kernels.activations import reference_forward
from engine.layers.activations import activation_curve
from engine.training import activation_stats


def stats_of(params: dict, X: np.ndarray):
    """Input → Activation(params) on the batch X: the activation's statistics."""
    g = Graph("a")
    g.add_node("Input", {"shape": [X.shape[1]]}, "x")
    g.add_node("Activation", params, "a")
    g.connect("x", "a")
    g.training = {"loss": "mse"}
    model = compile_graph(g, dtype=np.float64, fused=False)
    model.forward(X, training=True)
    return activation_stats(model, model.outputs)["a"]


# unit 0 is negative for every example, unit 1 changes sign
MILD = np.array([[-1.0, 0.5], [-2.0, -0.5], [-3.0, 1.5], [-1.5, 2.0]])
DEEP = np.array([[-10.0, 0.5], [-12.0, -0.5], [-11.0, 1.5], [-14.0, 2.0]])


@pytest.mark.parametrize("params, X, dead", [
    ({"function": "relu"}, MILD, 0.5),                       # slope exactly 0 below zero
    ({"function": "leaky_relu", "alpha": 0.01}, DEEP, 0.0),  # slope α = 0.01 ≥ 10⁻³: never dead
    ({"function": "leaky_relu", "alpha": 0.0001}, MILD, 0.5),  # α below 10⁻³: dead in effect
    ({"function": "prelu", "alpha": 0.25}, DEEP, 0.0),
    ({"function": "elu", "alpha": 1.0}, MILD, 0.0),          # slope e^z ≥ e^−3 = 0.05
    ({"function": "elu", "alpha": 1.0}, DEEP, 0.5),          # slope e^z ≤ e^−10 = 4.5e−5
    ({"function": "softplus"}, MILD, 0.0),                   # slope σ(z) ≥ σ(−3) = 0.047
    ({"function": "softplus"}, DEEP, 0.5),                   # slope σ(z) ≤ σ(−10) = 4.5e−5
])
def test_dead_fraction_counts_units_without_slope_for_every_example(params, X, dead):
    s = stats_of(params, X)
    assert s.dead == pytest.approx(dead) and s.saturated is None


def test_maxout_dead_fraction_counts_pieces_that_never_win():
    # unit 0 = max(x0, x1): x0 always wins, so piece x1 is dead; unit 1 = max(x2, x3): both win sometimes
    X = np.array([[5.0, 1.0, 0.0, 1.0], [4.0, 2.0, 3.0, 1.0], [6.0, -1.0, -2.0, 2.0]])
    s = stats_of({"function": "maxout", "pieces": 2}, X)
    assert s.dead == pytest.approx(0.25)


@pytest.mark.parametrize("fn, saturated", [("tanh", 0.5), ("sigmoid", 0.5), ("hard_tanh", 0.5)])
def test_saturated_fraction_counts_outputs_in_the_flat_tails(fn, saturated):
    X = np.array([[10.0, 0.1], [-10.0, -0.2]])  # one saturated output per example
    s = stats_of({"function": fn}, X)
    assert s.saturated == pytest.approx(saturated) and s.dead is None


@pytest.mark.parametrize("fn, alpha", [("sigmoid", 0.01), ("tanh", 0.01), ("scaled_tanh", 0.01), ("relu", 0.01),
                                       ("leaky_relu", 0.1), ("elu", 1.0), ("softplus", 0.01), ("gelu", 0.01)])
def test_activation_curves_are_the_function_and_its_derivative(fn, alpha):
    z = np.linspace(-4, 4, 41) + 0.013  # off the kinks at 0
    y, dy = activation_curve(fn, z, alpha)
    np.testing.assert_allclose(y, reference_forward(fn, z, alpha), rtol=1e-12, atol=1e-12)
    h = 1e-6
    fd = (reference_forward(fn, z + h, alpha) - reference_forward(fn, z - h, alpha)) / (2 * h)
    np.testing.assert_allclose(dy, fd, rtol=1e-6, atol=1e-8)


def test_maxout_has_no_curve():
    with pytest.raises(ValueError, match="not an element-wise activation"):
        activation_curve("maxout", np.zeros(3))


@pytest.mark.parametrize("name, bound, variance", [
    ("uniform_sqrt_fanin", lambda fi, fo: 1 / math.sqrt(fi), lambda fi, fo: 1 / (3 * fi)),
    ("uniform_fanin", lambda fi, fo: 2.4 / fi, lambda fi, fo: (2.4 / fi) ** 2 / 3),
    ("xavier_uniform", lambda fi, fo: math.sqrt(6 / (fi + fo)), lambda fi, fo: 2 / (fi + fo)),
])
def test_uniform_initialisers_have_the_glorot_bengio_spreads(name, bound, variance):
    fan_in, fan_out = 64, 32
    W = initialise(name, (fan_in, fan_out * 50), fan_in, fan_out, np.random.default_rng(0))
    assert np.abs(W).max() <= bound(fan_in, fan_out)
    assert np.abs(W).max() >= 0.99 * bound(fan_in, fan_out)
    assert W.var() == pytest.approx(variance(fan_in, fan_out), rel=0.03)
