"""Element-wise activation kernels, forward and backward, selected by an integer code.

One code-switched kernel (rather than one function per activation) lets the compiled
whole-step path of :mod:`engine.kernels.mlp` call any activation from inside Numba.
Each branch states its formula; :func:`reference_forward` / :func:`reference_backward`
are the plain NumPy versions the tests compare against.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Codes of the element-wise functions (maxout is not element-wise: see layers/activations).
IDENTITY, SIGMOID, TANH, SCALED_TANH, RELU, LEAKY_RELU, PRELU, ELU, SOFTPLUS, HARD_TANH, GELU = range(11)
CODES = {
    "identity": IDENTITY, "sigmoid": SIGMOID, "tanh": TANH, "scaled_tanh": SCALED_TANH,
    "relu": RELU, "leaky_relu": LEAKY_RELU, "prelu": PRELU, "elu": ELU,
    "softplus": SOFTPLUS, "hard_tanh": HARD_TANH, "gelu": GELU,
}
LECUN_A = 1.7159
LECUN_B = 2.0 / 3.0
INV_SQRT2 = 1.0 / math.sqrt(2.0)
INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(cache=True, nogil=True, inline="always")
def act_scalar(code: int, z: float, alpha: float) -> float:
    """f(z) for one value."""
    if code == SIGMOID:  # σ(z) = 1/(1+e^−z), evaluated without overflow
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)
    if code == TANH:
        return math.tanh(z)
    if code == SCALED_TANH:  # LeCun: 1.7159·tanh(2z/3)
        return LECUN_A * math.tanh(LECUN_B * z)
    # "0 if z <= 0 else z", not "z if z > 0 else 0": NaN passes through (as in PyTorch)
    # instead of becoming 0, so a diverged value is not hidden from the non-finite checks
    if code == RELU:
        return 0.0 if z <= 0 else z
    if code == LEAKY_RELU or code == PRELU:  # z if z>0 else αz
        return alpha * z if z <= 0 else z
    if code == ELU:  # z if z>0 else α(e^z − 1)
        return alpha * math.expm1(z) if z <= 0 else z
    if code == SOFTPLUS:  # log(1+e^z) = max(z,0) + log1p(e^−|z|)
        return max(z, 0.0) + math.log1p(math.exp(-abs(z)))
    if code == HARD_TANH:
        return -1.0 if z < -1 else (1.0 if z > 1 else z)
    if code == GELU:  # z·Φ(z), exact (erf) form as in PyTorch's default
        return 0.5 * z * (1.0 + math.erf(z * INV_SQRT2))
    return z


@njit(cache=True, nogil=True, inline="always")
def act_grad_scalar(code: int, z: float, y: float, alpha: float) -> float:
    """f'(z) for one value, using the forward output y where that is cheaper."""
    if code == SIGMOID:  # σ' = σ(1−σ)
        return y * (1.0 - y)
    if code == TANH:  # tanh' = 1 − tanh²
        return 1.0 - y * y
    if code == SCALED_TANH:  # a·b·(1 − tanh²(bz)) = b/a·(a² − y²)
        return LECUN_B / LECUN_A * (LECUN_A * LECUN_A - y * y)
    if code == RELU:
        return 1.0 if z > 0 else 0.0
    if code == LEAKY_RELU or code == PRELU:
        return 1.0 if z > 0 else alpha
    if code == ELU:  # 1 if z>0 else α e^z (not y + α: that cancels to 0 in float32 below z ≈ −17)
        return 1.0 if z > 0 else alpha * math.exp(z)
    if code == SOFTPLUS:  # σ(z)
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)
    if code == HARD_TANH:
        return 1.0 if -1.0 < z < 1.0 else 0.0
    if code == GELU:  # Φ(z) + z·φ(z)
        return 0.5 * (1.0 + math.erf(z * INV_SQRT2)) + z * INV_SQRT2PI * math.exp(-0.5 * z * z)
    return 1.0


@njit(cache=True, nogil=True)
def act_forward(code: int, z: np.ndarray, y: np.ndarray, alpha: float) -> None:
    """y = f(z), element-wise over flat contiguous arrays.

    ReLU has its own loop: with the code switch out of the loop LLVM vectorises it (the
    switched loop measured ~10× slower on a convolution's 300k outputs).
    """
    if code == RELU:
        zero = z.dtype.type(0)
        for i in range(z.size):
            v = z[i]
            y[i] = zero if v <= zero else v  # NaN stays NaN (see act_scalar)
        return
    for i in range(z.size):
        y[i] = act_scalar(code, z[i], alpha)


@njit(cache=True, nogil=True)
def act_backward(code: int, z: np.ndarray, y: np.ndarray, dy: np.ndarray, dz: np.ndarray,
                 alpha: float) -> float:
    """dz = dy ⊙ f'(z); returns ∂L/∂α = Σ dy·z over z ≤ 0 (used by PReLU; 0 for ReLU, whose
    vectorised loop skips that sum)."""
    if code == RELU:
        zero = dy.dtype.type(0)
        for i in range(z.size):
            dz[i] = dy[i] if z[i] > 0 else zero
        return 0.0
    dalpha = 0.0
    for i in range(z.size):
        zi = z[i]
        dz[i] = dy[i] * act_grad_scalar(code, zi, y[i], alpha)
        if zi <= 0:
            dalpha += dy[i] * zi
    return dalpha


# ---- NumPy reference (tests only) ---------------------------------------------------
def _phi_cdf(z: np.ndarray) -> np.ndarray:
    from math import erf

    return 0.5 * (1.0 + np.vectorize(erf)(z / math.sqrt(2.0)))


def reference_forward(name: str, z: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    """Textbook NumPy definitions, independent of the kernels above."""
    z = np.asarray(z, dtype=np.float64)
    return {
        "identity": lambda: z.copy(),
        "sigmoid": lambda: 1.0 / (1.0 + np.exp(-z)),
        "tanh": lambda: np.tanh(z),
        "scaled_tanh": lambda: 1.7159 * np.tanh(2.0 * z / 3.0),
        "relu": lambda: np.maximum(z, 0.0),
        "leaky_relu": lambda: np.where(z > 0, z, alpha * z),
        "prelu": lambda: np.where(z > 0, z, alpha * z),
        "elu": lambda: np.where(z > 0, z, alpha * (np.exp(z) - 1.0)),
        "softplus": lambda: np.log1p(np.exp(z)),
        "hard_tanh": lambda: np.clip(z, -1.0, 1.0),
        "gelu": lambda: z * _phi_cdf(z),
    }[name]()
