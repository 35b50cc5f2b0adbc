"""The in-memory dataset, its train/validation/test split and z-score normalisation.

Everything downstream (trainer, CLI, studio) sees a :class:`Dataset` whose features are
float32, C-contiguous, and never copied more than once: :func:`split_dataset` gathers the
shuffled examples into one new working array and hands out the train, validation and test
parts as views of it, and :meth:`Normaliser.apply_` rewrites that array in place. So a
60,000 × 1 × 28 × 28 image set costs its source plus one working copy (2 × 188 MB), never
a float64 version or a copy per split.

Normalisation statistics are fitted on the training split only, so validation and test
scores measure what a deployed model would see; they travel in the model file's
``meta.json`` so ``predict`` applies exactly the same transform.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine.errors import DataError

TASKS = ("classification", "regression")
DTYPE = np.float32
CHUNK_BYTES = 4 << 20
"""Examples are visited in chunks of about this many bytes when a full-size temporary would be needed."""

MAX_VALUES = 1 << 26
"""A generated X holds at most this many numbers (256 MB of float32)."""

LAYOUTS = {1: "table", 2: "sequence", 3: "image"}
"""Rank of one example → its layout: (F,) features, (T, F) time steps × features, (C, H, W) images."""


@dataclass
class Dataset:
    """Examples ``X`` (n, *feature_shape) float32 and targets ``y``.

    Targets follow the last-axis rule (docs/datasets.md): classification ``y`` is int64 class
    indices, (n,) for one class per example or (n, T) for one per time step, index ``i``
    naming ``class_names[i]``; regression ``y`` is float32 (n, d) or (n, T, d) and
    ``class_names`` is empty. ``X`` is converted to float32 once here (no copy if it already is).
    """

    X: np.ndarray
    y: np.ndarray
    task: str
    name: str
    feature_names: list[str]
    class_names: list[str] = field(default_factory=list)
    target_name: str = "y"

    def __post_init__(self) -> None:
        where = f"dataset '{self.name}'"
        if self.task not in TASKS:
            raise DataError(f"{where}: task must be classification or regression, not {self.task!r}")
        self.X = np.ascontiguousarray(self.X, dtype=DTYPE)
        if self.X.ndim < 2:
            raise DataError(f"{where}: X has shape {self.X.shape}; it needs one row per example")
        if len(self.X) != len(self.y):
            raise DataError(f"{where}: {len(self.X)} examples but {len(self.y)} targets")
        self.y = _checked_targets(np.asarray(self.y), self.task, len(self.class_names), where)

    @property
    def n_classes(self) -> int:
        """Number of classes; 0 for regression."""
        return len(self.class_names) if self.task == "classification" else 0

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one example (what the graph's Input layer must declare)."""
        return tuple(int(s) for s in self.X.shape[1:])

    @property
    def layout(self) -> str:
        """``table`` (F,), ``sequence`` (T, F), ``image`` (C, H, W), or ``tensor`` for other ranks."""
        return LAYOUTS.get(self.X.ndim - 1, "tensor")

    @property
    def per_example_classes(self) -> bool:
        """Classification with one class per example (y of shape (n,)): what stratification needs."""
        return self.task == "classification" and self.y.ndim == 1

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def subset(self, idx: Any) -> Dataset:
        """The examples at ``idx`` (integer indices or a boolean mask) as a copy, same metadata."""
        idx = np.asarray(idx)
        return replace(self, X=self.X[idx], y=self.y[idx], feature_names=list(self.feature_names),
                       class_names=list(self.class_names))


def _checked_targets(y: np.ndarray, task: str, n_classes: int, where: str) -> np.ndarray:
    """``y`` in its canonical dtype and rank, or a DataError saying which shapes are allowed."""
    if task == "classification":
        if y.ndim not in (1, 2) or y.dtype.kind not in "biu":
            raise DataError(f"{where}: classification targets must be integer class indices of shape (n,) "
                            f"or (n, T), not {y.dtype} {y.shape}")
        y = np.asarray(y, dtype=np.int64)
        if y.size and (int(y.min()) < 0 or int(y.max()) >= n_classes):
            raise DataError(f"{where}: class indices must be in [0, {n_classes}) for {n_classes} class names, "
                            f"found {int(y.min())}..{int(y.max())}")
        return y
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.ndim not in (2, 3) or y.dtype.kind not in "biuf":
        raise DataError(f"{where}: regression targets must be numbers of shape (n, d) or (n, T, d), "
                        f"not {y.dtype} {y.shape}")
    return np.ascontiguousarray(y, dtype=DTYPE)


def check_size(name: str, n: int, per_example: int) -> None:
    """Refuse to generate more than :data:`MAX_VALUES` numbers, before allocating them."""
    if n * per_example > MAX_VALUES:
        raise DataError(f"dataset '{name}': n × values per example = {n:,} × {per_example:,} is more than "
                        f"{MAX_VALUES:,} numbers; lower n, the length or the size")


def balanced_labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels of ``k`` classes, sizes within one of each other, in random order."""
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    return rng.permutation(np.repeat(np.arange(k, dtype=np.int64), sizes))


def class_balance(ds: Dataset) -> dict[str, int]:
    """Targets per class, every class listed in index order (empty for regression).

    With one class per time step (y of shape (n, T)) every step's label is counted.
    """
    if ds.task != "classification":
        return {}
    counts = np.bincount(ds.y.reshape(-1), minlength=ds.n_classes)
    return {name: int(counts[i]) for i, name in enumerate(ds.class_names)}


def sample_indices(ds: Dataset, k: int) -> np.ndarray:
    """Up to ``k`` example indices to show (e.g. a preview grid): classes in turn, else evenly spaced.

    With one class per example the i-th index is the next unseen example of class i mod K
    (skipping classes that ran out), so every class appears as often as it can.
    """
    k = max(0, min(int(k), len(ds)))
    if not ds.per_example_classes:
        return np.unique(np.linspace(0, len(ds) - 1, k).astype(np.int64)) if k else np.zeros(0, np.int64)
    members = [list(np.flatnonzero(ds.y == c)[::-1]) for c in range(ds.n_classes)]
    out: list[int] = []
    while len(out) < k:
        for queue in members:
            if queue and len(out) < k:
                out.append(int(queue.pop()))
    return np.array(out, dtype=np.int64)


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


def stratified_subset(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` examples in random order with each class in about its overall proportion."""
    return rng.permutation(_stratified_order(y, rng)[:n])


def split_dataset(ds: Dataset, val_fraction: float, test_fraction: float = 0.0,
                  seed: int = 0) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """Seeded shuffled split into (train, val, test); a split of fraction 0 is ``None``.

    E.g. 0.10/0.25 of 100 examples gives 65/10/25. With one class per example the split is
    stratified (each part keeps the class proportions within one example per class);
    otherwise (per-step classes, regression) it is a plain shuffle. The examples are
    gathered once into a new array laid out as [val | test | train]; the three parts are
    views of it, so ``ds`` is never modified and normalising the parts in place is safe.
    """
    for label, f in (("validation", val_fraction), ("test", test_fraction)):
        if not (0.0 <= float(f) < 1.0):
            raise DataError(f"the {label} fraction must be in [0, 1), not {f}")
    n = len(ds)
    n_val, n_test = _split_count(n, val_fraction), _split_count(n, test_fraction)
    held = n_val + n_test
    if n - held < 1:
        raise DataError(
            f"dataset '{ds.name}' has {n} examples: too few to hold out {n_val} for validation and "
            f"{n_test} for testing; lower val_split/test_split or use more data")
    rng = np.random.default_rng(seed)
    order = _stratified_order(ds.y, rng) if ds.per_example_classes else rng.permutation(n)
    order[held:] = rng.permutation(order[held:])
    X, y = np.take(ds.X, order, axis=0), ds.y[order]

    def part(lo: int, hi: int) -> Dataset:
        return replace(ds, X=X[lo:hi], y=y[lo:hi], feature_names=list(ds.feature_names),
                       class_names=list(ds.class_names))

    return part(held, n), (part(0, n_val) if n_val else None), (part(n_val, held) if n_test else None)


def chunks(n: int, example_bytes: int, budget: int = CHUNK_BYTES) -> range:
    """Start indices of example chunks of about ``budget`` bytes (at least one example each)."""
    return range(0, n, max(1, budget // max(1, example_bytes)))


def all_finite(X: np.ndarray) -> bool:
    """``np.isfinite(X).all()`` without a full-size boolean temporary."""
    if X.dtype.kind in "biu":
        return True
    step = chunks(len(X), X[:1].nbytes).step
    return all(bool(np.isfinite(X[i:i + step]).all()) for i in range(0, len(X), step))


def statistic_axes(ndim: int) -> tuple[int, ...]:
    """Axes of X (n, *example) one mean/std is taken over, by layout (see :class:`Normaliser`)."""
    if ndim == 4:
        return (0, 2, 3)
    if ndim == 3:
        return (0, 1)
    return (0,)


def _sum_of_squares(chunk: np.ndarray, mean: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Σ (x − mean)² over ``axes`` in float64, with one temporary of the chunk's size."""
    d = np.subtract(chunk, mean, dtype=np.float64)
    np.square(d, out=d)
    return np.sum(d, axis=axes, keepdims=True)


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
    """Z-score ``x' = (x − mean) / std`` with statistics from the training split.

    The statistics have a shape that broadcasts against one example, so every consumer
    (``predict``, the ONNX/PyTorch/NumPy exports) applies them with plain broadcasting:
    tables (F,) get one pair per feature, shape (F,); sequences (T, F) one per feature
    shared by every time step, shape (1, F); images (C, H, W) one per channel, shape
    (C, 1, 1). Model files written before per-channel statistics hold one pair per
    position (the example's full shape); they still apply. A constant feature or channel
    (std ≈ 0) gets std 1, so it becomes 0 instead of a division by zero.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> Normaliser:
        """Statistics of ``X`` (n, *example) over the axes its layout shares (two chunked passes).

        Sums are accumulated in float64 chunk by chunk, so fitting a float32 image set
        allocates no float64 (or any other) copy of it.
        """
        X = np.asarray(X)
        if X.ndim < 2 or len(X) == 0:
            raise DataError("cannot fit normalisation statistics on an empty dataset")
        if not all_finite(X):
            raise DataError("cannot fit normalisation statistics: the features contain NaN or infinity")
        axes = statistic_axes(X.ndim)
        count = int(np.prod([X.shape[a] for a in axes]))
        step = chunks(len(X), X[:1].nbytes).step
        total = sum(np.sum(X[i:i + step], axis=axes, dtype=np.float64, keepdims=True)
                    for i in range(0, len(X), step))
        mean = total / count
        squares = sum(_sum_of_squares(X[i:i + step], mean, axes) for i in range(0, len(X), step))
        std = np.sqrt(squares / count)
        mean, std = mean[0], std[0]
        std = np.where(std <= 1e-12 * np.maximum(1.0, np.abs(mean)), 1.0, std)
        return cls(mean, std)

    def _check(self, X: np.ndarray) -> None:
        example = tuple(X.shape[1:])
        try:
            fits = np.broadcast_shapes(self.mean.shape, example) == example
        except ValueError:
            fits = False
        if X.ndim < 2 or not fits:
            raise DataError(f"features have shape {example} per example but the normalisation "
                            f"statistics have shape {tuple(self.mean.shape)}, which does not fit them")

    def apply(self, X: np.ndarray) -> np.ndarray:
        """A normalised copy of ``X`` (n, *feature_shape): float64 stays float64, else float32."""
        X = np.asarray(X)
        self._check(X)
        out = np.array(X, dtype=np.float64 if X.dtype == np.float64 else DTYPE)
        return self.apply_(out)

    def apply_(self, X: np.ndarray) -> np.ndarray:
        """Normalise the float array ``X`` in place (no temporary of its size); returns ``X``."""
        self._check(X)
        if X.dtype.kind != "f":
            raise DataError(f"cannot normalise {X.dtype} features in place; convert them to float32 first")
        X -= self.mean.astype(X.dtype)
        X /= self.std.astype(X.dtype)
        return X

    def to_json(self) -> dict[str, Any]:
        """Plain (nested) lists for ``meta.json``, in the broadcastable shape."""
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
