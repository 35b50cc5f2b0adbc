"""Weight initialisers: ``name -> f(shape, fan_in, fan_out, rng, scale)``.

``scale`` is σ for ``normal`` and the half-width a for ``uniform``; the others derive their
spread from the fans (Glorot & Bengio 2010, He et al. 2015, LeCun et al. 1998).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Initialiser = Callable[[tuple[int, ...], int, int, np.random.Generator, float], np.ndarray]


def _uniform(limit: float) -> Initialiser:
    return lambda shape, fi, fo, rng, s: rng.uniform(-limit, limit, size=shape)


INITIALISERS: dict[str, tuple[str, Initialiser]] = {
    "zeros": ("all zeros (every unit stays identical: symmetry is never broken)",
              lambda shape, fi, fo, rng, s: np.zeros(shape)),
    "normal": ("N(0, σ²) with σ = init_scale",
               lambda shape, fi, fo, rng, s: rng.normal(0.0, s, size=shape)),
    "uniform": ("U(−a, a) with a = init_scale",
                lambda shape, fi, fo, rng, s: rng.uniform(-s, s, size=shape)),
    "uniform_fanin": ("U(−2.4/fan_in, 2.4/fan_in) (Haykin's rule)",
                      lambda shape, fi, fo, rng, s: rng.uniform(-2.4 / fi, 2.4 / fi, size=shape)),
    "uniform_sqrt_fanin": ("U(−1/√fan_in, 1/√fan_in): the 'standard' initialisation Glorot & Bengio "
                           "compare with (variance 1/(3·fan_in): activations shrink with depth)",
                           lambda shape, fi, fo, rng, s: rng.uniform(-1, 1, size=shape) / math.sqrt(fi)),
    "xavier_uniform": ("Glorot: U(±√(6/(fan_in+fan_out)))",
                       lambda shape, fi, fo, rng, s: rng.uniform(-1, 1, size=shape) * math.sqrt(6.0 / (fi + fo))),
    "xavier_normal": ("Glorot: N(0, 2/(fan_in+fan_out))",
                      lambda shape, fi, fo, rng, s: rng.normal(0.0, math.sqrt(2.0 / (fi + fo)), size=shape)),
    "he_uniform": ("He/Kaiming: U(±√(6/fan_in)), for ReLU",
                   lambda shape, fi, fo, rng, s: rng.uniform(-1, 1, size=shape) * math.sqrt(6.0 / fi)),
    "he_normal": ("He/Kaiming: N(0, 2/fan_in), for ReLU",
                  lambda shape, fi, fo, rng, s: rng.normal(0.0, math.sqrt(2.0 / fi), size=shape)),
    "lecun_normal": ("LeCun: N(0, 1/fan_in), for SELU/tanh",
                     lambda shape, fi, fo, rng, s: rng.normal(0.0, math.sqrt(1.0 / fi), size=shape)),
}


def initialise(name: str, shape: tuple[int, ...], fan_in: int, fan_out: int,
               rng: np.random.Generator, scale: float = 0.01) -> np.ndarray:
    """Draw a float64 array of ``shape`` with the named initialiser."""
    return INITIALISERS[name][1](shape, max(fan_in, 1), max(fan_out, 1), rng, scale)
