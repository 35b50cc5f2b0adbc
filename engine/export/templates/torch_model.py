# <<docstring>>
"""Template of model.py in a PyTorch export; engine.export.torch fills the marked blocks."""
# <</docstring>>

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
# <<constants>>
INPUT_SHAPE: tuple[int, ...] = (1,)
DTYPE = torch.float32
# <</constants>>


# <<network>>
class Net(nn.Module):
    def forward(self, x: torch.Tensor, for_loss: bool = False) -> torch.Tensor:
        return x
# <</network>>


def load_model(path: str | Path | None = None) -> Net:
    """The network with the exported weights (``state_dict.pt``), in evaluation mode.

    ``weights_only=True`` makes ``torch.load`` read tensors only: loading never runs code.
    """
    net = Net().to(DTYPE)
    state = torch.load(Path(path) if path else HERE / "state_dict.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net.eval()


def load_normalisation(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The input normalisation stored with the model, (mean, std), or None if there is none."""
    with np.load(Path(path) if path else HERE / "weights.npz", allow_pickle=False) as npz:
        if "preprocessing/mean" not in npz.files:
            return None
        return npz["preprocessing/mean"], npz["preprocessing/std"]


def preprocess(X: np.ndarray) -> np.ndarray:
    """Raw features → the network's input: shaped as INPUT_SHAPE, normalised as in training."""
    X = np.asarray(X, dtype=np.float64)
    if X.shape[1:] != INPUT_SHAPE:
        if X.ndim != 2 or X.shape[1] != int(np.prod(INPUT_SHAPE)):
            raise ValueError(f"expected examples of shape {INPUT_SHAPE}, got {X.shape[1:]}")
        X = X.reshape((len(X),) + INPUT_SHAPE)
    norm = load_normalisation()
    if norm is not None:
        X = (X - norm[0]) / norm[1]
    return X


def predict(X: np.ndarray, net: Net | None = None) -> np.ndarray:
    """The model's output for raw features ``X`` (one example per row), as in ``backprop predict``."""
    net = load_model() if net is None else net
    device = next(net.parameters(), torch.empty(0)).device
    with torch.no_grad():
        out = net(torch.as_tensor(preprocess(X), dtype=DTYPE, device=device))
    return out.cpu().numpy()


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
