"""The in-memory dataset, its train/validation/test split and z-score normalisation.

Everything downstream (trainer, CLI, studio) sees a :class:`Dataset` with raw float64
features; normalisation statistics are fitted on the training split only, so the
validation and test scores measure what a deployed model would see, and they travel in
the model file's ``meta.json`` so ``predict`` applies exactly the same transform.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine.errors import DataError

TASKS = ("classification", "regression")


@dataclass
class Dataset:
    """Examples ``X`` (n, *feature_shape) float64 and targets ``y``.

    Classification: ``y`` is (n,) int64 class indices, index ``i`` is ``class_names[i]``.
    Regression: ``y`` is (n, d) float64 and ``class_names`` is empty.
    """

    X: np.ndarray
    y: np.ndarray
    task: str
    name: str
    feature_names: list[str]
    class_names: list[str] = field(default_factory=list)
    target_name: str = "y"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DataError(f"dataset '{self.name}': task must be classification or regression, "
                            f"not {self.task!r}")
        if len(self.X) != len(self.y):
            raise DataError(f"dataset '{self.name}': {len(self.X)} examples but {len(self.y)} targets")

    @property
    def n_classes(self) -> int:
        """Number of classes; 0 for regression."""
        return len(self.class_names) if self.task == "classification" else 0

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one example (what the graph's Input layer must declare)."""
        return tuple(int(s) for s in self.X.shape[1:])

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def subset(self, idx: Any) -> Dataset:
        """The examples at ``idx`` (integer indices or a boolean mask), same metadata."""
        idx = np.asarray(idx)
        return replace(self, X=self.X[idx], y=self.y[idx], feature_names=list(self.feature_names),
                       class_names=list(self.class_names))


def class_balance(ds: Dataset) -> dict[str, int]:
    """Examples per class, every class listed in index order (empty for regression)."""
    if ds.task != "classification":
        return {}
    counts = np.bincount(np.asarray(ds.y, dtype=np.int64), minlength=ds.n_classes)
    return {name: int(counts[i]) for i, name in enumerate(ds.class_names)}


def _split_count(n: int, fraction: float) -> int:
    """Examples a split of ``fraction`` gets: rounded, but never 0 for a non-zero fraction."""
    return 0 if fraction <= 0 else max(1, int(round(n * fraction)))


def _stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation whose every prefix holds each class in about its overall proportion.

    The k-th (shuffled) member of a class of size m gets the key (k + u)/m with one random
    offset u per class; sorting by key interleaves the classes evenly, so taking the first
    n_val examples for validation gives each class round(n_val·m/n) ± 1 of them. Classes
    with a single example are keyed last: they stay in the training split when possible.
    """
    keys = np.empty(len(y))
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        m = len(members)
        if m < 2:
            keys[members] = 2.0 + rng.random(m)
            continue
        keys[rng.permutation(members)] = (np.arange(m) + rng.random()) / m
    tie_break = rng.random(len(y))
    return np.lexsort((tie_break, keys))


def split_dataset(ds: Dataset, val_fraction: float, test_fraction: float = 0.0,
                  seed: int = 0) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """Seeded shuffled split into (train, val, test); a split of fraction 0 is ``None``.

    E.g. 0.10/0.25 of 100 examples gives 65/10/25. Classification splits are stratified
    (each split keeps the class proportions within one example per class).
    """
    for label, f in (("validation", val_fraction), ("test", test_fraction)):
        if not (0.0 <= float(f) < 1.0):
            raise DataError(f"the {label} fraction must be in [0, 1), not {f}")
    n = len(ds)
    n_val, n_test = _split_count(n, val_fraction), _split_count(n, test_fraction)
    if n - n_val - n_test < 1:
        raise DataError(
            f"dataset '{ds.name}' has {n} examples: too few to hold out {n_val} for validation and "
            f"{n_test} for testing; lower val_split/test_split or use more data")
    rng = np.random.default_rng(seed)
    if ds.task == "classification":
        order = _stratified_order(np.asarray(ds.y), rng)
    else:
        order = rng.permutation(n)
    val = ds.subset(order[:n_val]) if n_val else None
    test = ds.subset(order[n_val:n_val + n_test]) if n_test else None
    train_idx = order[n_val + n_test:]
    return ds.subset(rng.permutation(train_idx)), val, test


def _finite_array(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"normalisation statistics: '{what}' must be a (nested) list of numbers") from None
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise DataError(f"normalisation statistics: '{what}' must be non-empty and finite")
    return arr


@dataclass
class Normaliser:
    """Per-feature z-score ``x' = (x − mean) / std`` with statistics from the training split.

    A constant feature (std ≈ 0) gets std 1, so it becomes 0 instead of a division by zero.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> Normaliser:
        """Statistics over the example axis: one mean and std per feature position."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim < 2 or len(X) == 0:
            raise DataError("cannot fit normalisation statistics on an empty dataset")
        if not np.all(np.isfinite(X)):
            raise DataError("cannot fit normalisation statistics: the features contain NaN or infinity")
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        std = np.where(std <= 1e-12 * np.maximum(1.0, np.abs(mean)), 1.0, std)
        return cls(mean, std)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Normalised float64 copy of ``X`` (n, *feature_shape)."""
        X = np.asarray(X, dtype=np.float64)
        if X.shape[1:] != self.mean.shape:
            raise DataError(f"features have shape {tuple(X.shape[1:])} per example but the normalisation "
                            f"statistics were fitted on shape {tuple(self.mean.shape)}")
        return (X - self.mean) / self.std

    def to_json(self) -> dict[str, Any]:
        """Plain lists for ``meta.json``."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, d: Any) -> Normaliser:
        """Inverse of :meth:`to_json`; refuses anything malformed with a DataError."""
        if not isinstance(d, dict) or "mean" not in d or "std" not in d:
            raise DataError("normalisation statistics must be an object with 'mean' and 'std'")
        mean, std = _finite_array(d["mean"], "mean"), _finite_array(d["std"], "std")
        if mean.ndim == 0:
            raise DataError("normalisation statistics: 'mean' and 'std' must be lists, one value per feature")
        if mean.shape != std.shape:
            raise DataError(f"normalisation statistics: mean has shape {mean.shape} but std has {std.shape}")
        if np.any(std <= 0):
            raise DataError("normalisation statistics: every std must be positive")
        return cls(mean, std)
