# <<docstring>>
"""Template of model.py in a NumPy export; engine.export.numpy fills the marked blocks."""
# <</docstring>>

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# <<constants>>
INPUT_SHAPE: tuple[int, ...] = (1,)
DTYPE = np.float32
# <</constants>>


# <<network>>
def forward(W: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return x
# <</network>>


def load_model(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """The weights, ``{"<node>.<param>": array}``, from weights.npz (read without pickle)."""
    with np.load(Path(path) if path else HERE / "weights.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def preprocess(X: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    """Raw features → the network's input: shaped as INPUT_SHAPE, normalised as in training."""
    X = np.asarray(X, dtype=np.float64)
    if X.shape[1:] != INPUT_SHAPE:
        if X.ndim != 2 or X.shape[1] != int(np.prod(INPUT_SHAPE)):
            raise ValueError(f"expected examples of shape {INPUT_SHAPE}, got {X.shape[1:]}")
        X = X.reshape((len(X),) + INPUT_SHAPE)
    if "preprocessing/mean" in weights:
        X = (X - weights["preprocessing/mean"]) / weights["preprocessing/std"]
    return X


def predict(X: np.ndarray, weights: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The model's output for raw features ``X`` (one example per row), as in ``backprop predict``."""
    weights = load_model() if weights is None else weights
    W = {key: value.astype(DTYPE) for key, value in weights.items()}
    return forward(W, preprocess(X, weights).astype(DTYPE))


def read_input(path: Path) -> np.ndarray:
    """Features from an NPZ (array ``X``), an NPY, or a CSV of numbers (one header row allowed)."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return npz["X"]
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    with open(path, encoding="utf-8") as fh:
        first = fh.readline().strip().split(",")
    try:
        [float(cell) for cell in first]
        skip = 0
    except ValueError:
        skip = 1  # a header row
    return np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="raw features: .npz with X, .npy, or .csv")
    parser.add_argument("-o", "--output", type=Path, required=True, help="predictions (.npy or .csv)")
    args = parser.parse_args(argv)
    Y = predict(read_input(args.input))
    if args.output.suffix == ".csv":
        np.savetxt(args.output, Y.reshape(len(Y), -1), delimiter=",", fmt="%.9g")
    else:
        np.save(args.output, Y)
    print(f"wrote {len(Y)} predictions to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
