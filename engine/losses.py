"""Loss functions: value and gradient with respect to the network output in one kernel.

Targets are prepared once per dataset (:func:`prepare_targets`) into a float array of the
output's shape, so a training step is one kernel call. The last axis of the output is the
class/feature axis and every leading axis a position with its own target, so a (T, K)
output trains against one class per time step. Means run over every element, or for
cross-entropy over every position (as PyTorch's ``reduction="mean"``), so the exported
PyTorch code reproduces the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.errors import TrainingError
from engine.kernels.losses import bce_logits_kernel, mae_kernel, mdn_nll_kernel, mse_kernel, softmax_ce_kernel


@dataclass(frozen=True)
class LossSpec:
    """A loss: its kernel and whether it reads (N, K) rows.

    Which terminal layer a loss absorbs for stability (a graph ending in Softmax trained
    with cross-entropy computes the loss on the Softmax's input, the logits) is declared by
    the layer: ``LayerType.absorbed_by``.
    """

    name: str
    help: str
    kernel: object
    two_d: bool
    classification_only: bool = False
    target_width: int | None = None  # targets per position when not one per output (mdn_nll: 1)
    requires_output: str | None = None  # the layer type the graph must end in (mdn_nll: MixtureDensity)


LOSSES: dict[str, LossSpec] = {
    "mse": LossSpec("mse", "Mean squared error (1/n)Σ(o−t)²: regression, or 0/1 targets for a teaching MLP.",
                    mse_kernel, False),
    "mae": LossSpec("mae", "Mean absolute error (1/n)Σ|o−t|: regression robust to outliers.",
                    mae_kernel, False),
    "cross_entropy": LossSpec(
        "cross_entropy", "Softmax cross-entropy on K scores (logits); a final Softmax layer is fused "
        "into it. Targets: class indices or one-hot rows.", softmax_ce_kernel, True, True),
    "bce_logits": LossSpec(
        "bce_logits", "Binary cross-entropy on one logit per output (a final sigmoid Activation is "
        "fused into it). Targets 0/1.", bce_logits_kernel, False, True),
    "mdn_nll": LossSpec(
        "mdn_nll", "Mixture density negative log-likelihood −log Σ_k π_k N(y; μ_k, σ_k²) on a "
        "MixtureDensity output (which the graph must end in); one regression target per position.",
        mdn_nll_kernel, True, target_width=1, requires_output="MixtureDensity"),
}


def loss_spec(name: str) -> LossSpec:
    if name not in LOSSES:
        raise TrainingError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


def _per_example(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(v) for v in shape) + ("," if len(shape) == 1 else "") + ")"


def prepare_targets(loss: str, y: np.ndarray, task: str, n_classes: int, out_shape: tuple[int, ...],
                    dtype: np.dtype) -> np.ndarray:
    """Targets as a float array of shape (n, *out_shape) for ``loss``.

    The last axis of the output is the class (or feature) axis; every leading axis is a
    position with its own target (ARCHITECTURE.md, "Axes"). So an output of (K,) takes one
    class index per example (y of shape (n,)) and an output of (T, K) one per time step
    (y of shape (n, T)). Class indices become one-hot rows for K outputs, or the 0/1 value
    itself for a single output (binary problems). Raises TrainingError saying how to fix a
    mismatch.
    """
    spec = loss_spec(loss)
    n = len(y)
    out_shape = tuple(out_shape)
    lead, width = out_shape[:-1], out_shape[-1]
    if task == "classification" and spec.target_width is not None:
        raise TrainingError(f"{loss} is for regression targets but the dataset is a classification task; "
                            "use cross_entropy with a Softmax output")
    if task == "classification":
        y = np.asarray(y)
        if y.size != n * math.prod(lead):
            need = "one class index per example, shape (n,)" if not lead else \
                f"one class index per position, shape (n, {', '.join(map(str, lead))})"
            raise TrainingError(
                f"the network outputs {_per_example(out_shape)} per example, so the targets need {need}; "
                f"the dataset's targets have shape {tuple(y.shape)}")
        y = y.astype(np.int64).reshape((n,) + lead)
        if width == 1:
            if n_classes > 2:
                raise TrainingError(
                    f"the network has 1 output but the dataset has {n_classes} classes; "
                    f"set the last Dense to {n_classes} units and use cross_entropy"
                )
            if loss == "cross_entropy":
                raise TrainingError("cross_entropy needs one output per class (2 for a binary problem); "
                                    "use bce_logits or mse for a single output, or set the last Dense to 2 units")
            return y.reshape((n,) + out_shape).astype(dtype)
        if width != n_classes:
            raise TrainingError(
                f"the network has {width} outputs but the dataset has {n_classes} classes; "
                f"set the last Dense to {n_classes} units"
            )
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise TrainingError(f"class indices must lie in 0..{n_classes - 1}; found {int(y.min())}..{int(y.max())}")
        onehot = np.zeros((y.size, n_classes), dtype=dtype)
        onehot[np.arange(y.size), y.reshape(-1)] = 1
        return onehot.reshape((n,) + out_shape)
    if spec.classification_only:
        raise TrainingError(f"{loss} is for classification but the dataset is a regression task; use mse or mae")
    y = np.asarray(y, dtype=dtype)
    per_example = y.size // max(n, 1)
    if spec.target_width is not None:
        return _narrow_targets(loss, y, n, lead, spec.target_width)
    if per_example != math.prod(out_shape):
        if len(out_shape) == 1 and y.ndim <= 2:
            got = 1 if y.ndim == 1 else y.shape[1]
            raise TrainingError(
                f"the network has {width} outputs but the regression target has {got} columns; "
                f"set the last Dense to {got} units"
            )
        raise TrainingError(
            f"the network outputs {_per_example(out_shape)} per example but the regression targets have "
            f"{_per_example(tuple(y.shape[1:]))}; make the last layer output that shape")
    return np.ascontiguousarray(y.reshape((n,) + out_shape))


def _narrow_targets(loss: str, y: np.ndarray, n: int, lead: tuple[int, ...], width: int) -> np.ndarray:
    """Targets of a loss that reads ``width`` values per position whatever the output's width
    (mdn_nll: one y per position against 3K mixture parameters)."""
    if y.size != n * math.prod(lead) * width:
        need = _per_example(lead + (width,))
        raise TrainingError(f"{loss} needs {need} target value(s) per example; the dataset's targets have "
                            f"{_per_example(tuple(y.shape[1:]))}")
    return np.ascontiguousarray(y.reshape((n,) + lead + (width,)))


def loss_and_grad(name: str, out: np.ndarray, target: np.ndarray, dout: np.ndarray) -> float:
    """Loss value; writes ∂L/∂out into ``dout`` (same shape as ``out``).

    Cross-entropy treats the last axis as the classes and averages over every leading
    axis (examples and, for a (T, K) output, time steps); the element-wise losses average
    over every element, as PyTorch's ``reduction="mean"`` does.
    """
    spec = LOSSES[name]
    if spec.two_d:
        k = out.shape[-1]
        tk = spec.target_width or k
        return float(spec.kernel(out.reshape(-1, k), target.reshape(-1, tk), dout.reshape(-1, k)))
    return float(spec.kernel(out.reshape(-1), target.reshape(-1), dout.reshape(-1)))


def reference_loss(name: str, out: np.ndarray, target: np.ndarray) -> float:
    """Plain NumPy definitions for the tests (float64), classes on the last axis."""
    o = np.asarray(out, np.float64)
    o = o.reshape(-1, o.shape[-1])
    if name == "mdn_nll":  # o = [π, μ, σ] per row, one y per row
        k = o.shape[1] // 3
        pi, mu, sigma = o[:, :k], o[:, k:2 * k], o[:, 2 * k:]
        y = np.asarray(target, np.float64).reshape(-1, 1)
        density = pi * np.exp(-0.5 * ((y - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        return float(-np.mean(np.log(density.sum(axis=1))))
    t = np.asarray(target, np.float64).reshape(o.shape)
    if name == "mse":
        return float(np.mean((o - t) ** 2))
    if name == "mae":
        return float(np.mean(np.abs(o - t)))
    if name == "cross_entropy":
        p = np.exp(o - o.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return float(-np.mean(np.sum(t * np.log(p), axis=1)))
    if name == "bce_logits":
        s = 1 / (1 + np.exp(-o))
        return float(-np.mean(t * np.log(s) + (1 - t) * np.log(1 - s)))
    raise KeyError(name)
