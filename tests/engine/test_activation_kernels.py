"""Element-wise activation kernels keep their accuracy where formulas cancel.

Finite differences (tests/engine/test_layers.py) only visit moderate z; these tests visit
the tails in float32 and compare with the float64 textbook derivative.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.compiler import compile_graph
from engine.graph import Graph
from engine.kernels.activations import CODES, act_backward, act_forward

VERY_NEGATIVE = np.array([-1.0, -5.0, -17.0, -25.0, -40.0, -80.0])


def elu_derivative(z: np.ndarray, alpha: float) -> np.ndarray:
    """d/dz α(eᶻ − 1) = α eᶻ for z ≤ 0, in float64."""
    return alpha * np.exp(np.asarray(z, dtype=np.float64))


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu_gradient_is_accurate_in_float32_far_below_zero(alpha):
    z = VERY_NEGATIVE.astype(np.float32)
    y = np.empty_like(z)
    act_forward(CODES["elu"], z, y, alpha)
    dz = np.empty_like(z)
    act_backward(CODES["elu"], z, y, np.ones_like(z), dz, alpha)
    assert np.all(dz > 0), dz
    np.testing.assert_allclose(dz, elu_derivative(z, alpha), rtol=1e-5, atol=0)


@pytest.mark.parametrize("fused", [True, False], ids=["fused_path", "general_path"])
def test_elu_layer_backpropagates_tiny_gradients_in_float32(fused):
    """Dense(1) → ELU on z far below zero: ∂L/∂b = Σ α eᶻ ∂L/∂y on both execution paths."""
    g = Graph()
    g.add_node("Input", {"shape": [1]}, "x")
    g.add_node("Dense", {"units": 1}, "d")
    g.add_node("Activation", {"function": "elu", "alpha": 1.0}, "a")
    g.connect("x", "d")
    g.connect("d", "a")
    g.training["loss"] = "mse"
    model = compile_graph(g, dtype=np.float32, fused=fused)
    assert (model.fused is not None) == fused
    lo, hi = model.slices["d"]
    model.params[lo:hi] = [1.0, 0.0]  # W = 1, b = 0: z = x
    for z in VERY_NEGATIVE:
        X = np.array([[z]], dtype=np.float32)
        T = np.zeros((1, 1), dtype=np.float32)
        model.loss_and_grads(X, T)
        y = np.expm1(z)  # float64 forward; mse: ∂L/∂y = 2(y − t)
        expected_db = float(elu_derivative(z, 1.0)) * 2.0 * y
        dW, db = model.grads[lo:hi]
        assert db == pytest.approx(expected_db, rel=1e-5), z
        assert dW == pytest.approx(expected_db * z, rel=1e-5), z


@pytest.mark.parametrize("name", sorted(CODES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_passes_through_every_activation(name, dtype):
    """A diverged value stays NaN (as in PyTorch: relu(nan) = nan) so that the non-finite
    checks see it; "z if z > 0 else 0" would turn it into 0 and hide it."""
    z = np.array([np.nan, -1.5, 0.0, 2.0], dtype)
    y = np.empty_like(z)
    act_forward(CODES[name], z, y, 0.1)
    assert np.isnan(y[0]) and np.all(np.isfinite(y[1:]))
