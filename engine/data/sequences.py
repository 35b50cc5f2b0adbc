"""Sequence tasks for recurrent networks: examples (T, F), targets per sequence or per step.

The classic long-range problems are built so that no shortcut exists: the answer depends
on a few steps far apart, and the last step alone says nothing about it (the tests check
this). Every generator is deterministic given ``seed``.

- ``adding``: (value, marker) pairs; regress the sum of the two marked values.
- ``temporal_order``: one-hot symbols; the class is the order of the marked symbols.
- ``parity``: bits; the class is their XOR (optionally after every step).
- ``sine_sequence``: noisy sines; predict the next value at every step (many-to-many).
"""

from __future__ import annotations

import itertools

import numpy as np

from engine.data.dataset import DTYPE, Dataset, balanced_labels, check_size

ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y")
ORDER_WINDOWS = {2: ((0.1, 0.2), (0.5, 0.6)), 3: ((0.1, 0.2), (0.3, 0.4), (0.6, 0.7))}
"""Where the marked symbols of ``temporal_order`` sit, as fractions [lo, hi) of the length."""


def adding(n: int, length: int, seed: int) -> Dataset:
    """X (n, T, 2): values u_t ~ U[0, 1] and markers m_t ∈ {0, 1}; y (n, 1) = Σ_t m_t·u_t.

    Exactly two markers: one at a uniform step of the first half, one in the second half
    (the form of Le et al. 2015 and Arjovsky et al. 2016 of Hochreiter & Schmidhuber's
    adding problem). Predicting the mean (1) gives MSE 1/6; the task is solved well below.
    """
    check_size("adding", n, length * 2)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, (n, length))
    half = length // 2
    rows = np.arange(n)
    first, second = rng.integers(0, half, n), rng.integers(half, length, n)
    X = np.zeros((n, length, 2), DTYPE)
    X[:, :, 0] = values
    X[rows, first, 1] = 1.0
    X[rows, second, 1] = 1.0
    y = (values[rows, first] + values[rows, second]).reshape(n, 1)
    return Dataset(X, y, "regression", "adding", ["value", "marker"], [], "sum")


def _order_positions(length: int, marks: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, marks) steps, the k-th uniform in [lo_k·T, hi_k·T) of :data:`ORDER_WINDOWS`."""
    cols = []
    for lo, hi in ORDER_WINDOWS[marks]:
        start = int(lo * length)
        stop = max(int(hi * length), start + 1)
        cols.append(rng.integers(start, stop, n))
    return np.stack(cols, axis=1)


def temporal_order(n: int, length: int, marks: int, seed: int) -> Dataset:
    """X (n, T, 6) one-hot symbols; y (n,) the order of the marked symbols, 2**marks classes.

    Every step holds a random distractor a, b, c or d, except ``marks`` steps (two: one in
    [0.1T, 0.2T) and one in [0.5T, 0.6T); three: [0.1T, 0.2T), [0.3T, 0.4T), [0.6T, 0.7T))
    holding X or Y. Two marks give the four classes XX, XY, YX, YY of Pascanu et al. (2013)
    and Hochreiter & Schmidhuber's experiment 6a; three give the eight of their 6b.
    """
    check_size("temporal_order", n, length * len(ORDER_SYMBOLS))
    rng = np.random.default_rng(seed)
    k = 2 ** marks
    y = balanced_labels(n, k, rng)
    symbols = rng.integers(0, 4, (n, length))
    positions = _order_positions(length, marks, n, rng)
    rows = np.arange(n)
    for j in range(marks):
        bit = (y >> (marks - 1 - j)) & 1
        symbols[rows, positions[:, j]] = 4 + bit
    X = np.zeros((n, length, len(ORDER_SYMBOLS)), DTYPE)
    np.put_along_axis(X, symbols[:, :, None], 1.0, axis=2)
    names = ["".join(c) for c in itertools.product("XY", repeat=marks)]
    return Dataset(X, y, "classification", "temporal_order", list(ORDER_SYMBOLS), names, "order")


def parity(n: int, length: int, noise: float, per_step: bool, seed: int) -> Dataset:
    """X (n, T, 1) bits b_t (+ Gaussian noise); y = b_1 ⊕ … ⊕ b_T, (n,), or after every step, (n, T).

    For one label per sequence the classes are balanced exactly: each sequence whose parity
    is not its drawn label gets one uniformly chosen bit flipped, which leaves the bits
    uniform given the label, so no proper subset of them says anything about it.
    """
    check_size("parity", n, length)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n, length))
    if per_step:
        y = np.bitwise_xor.accumulate(bits, axis=1)
    else:
        y = balanced_labels(n, 2, rng)
        wrong = np.flatnonzero(bits.sum(axis=1) % 2 != y)
        bits[wrong, rng.integers(0, length, len(wrong))] ^= 1
    X = (bits + noise * rng.standard_normal(bits.shape)).astype(DTYPE)[:, :, None]
    return Dataset(X, y.astype(np.int64), "classification", "parity", ["bit"], ["even", "odd"], "parity")


def sine_sequence(n: int, length: int, noise: float, seed: int) -> Dataset:
    """X (n, T, 1) = s_t + noise, y (n, T, 1) = s_{t+1}: at each step, the sine's next value.

    s_t = A·sin(ω·t + φ) with A ~ U[0.5, 1], ω ~ U[0.1, 0.6] rad per step and φ ~ U[0, 2π)
    per sequence. The targets are noise-free, so the loss can go below the noise: a model
    must infer each sequence's frequency and phase from the steps it has seen.
    """
    check_size("sine_sequence", n, length)
    rng = np.random.default_rng(seed)
    amp, omega = rng.uniform(0.5, 1.0, (n, 1)), rng.uniform(0.1, 0.6, (n, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (n, 1))
    s = amp * np.sin(omega * np.arange(length + 1) + phase)
    X = (s[:, :length] + noise * rng.standard_normal((n, length)))[:, :, None]
    return Dataset(X, s[:, 1:, None], "regression", "sine_sequence", ["x"], [], "next")
