"""Pruning small weights: zero the smallest-magnitude fraction of a trained model's weights.

Magnitude pruning (LeCun et al. 1990 in its simplest form; Han et al. 2015): after training,
many weights are so small that removing them changes the function little. With a global
threshold τ chosen so that a fraction ``f`` of the weights satisfies |w| ≤ τ, every such w
is set to 0 and the model is evaluated again; if the accuracy holds, the network needed far
fewer connections than it was given.

Only the *weights* are pruned: the tensors a layer declares as decayed (``LayerType.decay``:
Dense and convolution ``W``, recurrent ``Wx`` and ``Wh``), never biases, BatchNorm scales or
PReLU slopes. The threshold is global over all layers, so a layer whose weights are all
small loses more of them than one with large weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.compiler import Model
from engine.errors import TrainingError


@dataclass(frozen=True)
class Pruned:
    """What :func:`prune_smallest` did: ``zeroed`` of ``total`` weights set to 0 (those with
    |w| ≤ ``threshold``), per node ``{node: (zeroed, total)}``."""

    fraction: float
    zeroed: int
    total: int
    threshold: float
    per_node: dict[str, tuple[int, int]]


def check_fraction(fraction: Any) -> float:
    """A pruning fraction in [0, 1], or a TrainingError saying what was given."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise TrainingError(f"pruning fraction {fraction!r} is not a number; give one in [0, 1], e.g. 0.5") from None
    if not 0.0 <= value <= 1.0:
        raise TrainingError(f"pruning fraction {value:g} is outside [0, 1]; 0.5 zeroes half of the weights")
    return value


def prune_smallest(model: Model, fraction: float) -> Pruned:
    """Zero, in place, the ``round(fraction · n)`` weights of smallest |w| among the model's n
    prunable weights (ties broken by position, so the result is deterministic)."""
    fraction = check_fraction(fraction)
    index = np.flatnonzero(model.decay_mask)
    if len(index) == 0:
        raise TrainingError("the network has no weights to prune (no Dense, convolution or recurrent layer)")
    k = int(round(fraction * len(index)))
    order = np.argsort(np.abs(model.params[index]), kind="stable")[:k]
    chosen = index[order]
    threshold = float(np.abs(model.params[chosen]).max()) if k else 0.0
    model.params[chosen] = 0
    return Pruned(fraction, k, len(index), threshold, _per_node(model, chosen))


def _per_node(model: Model, chosen: np.ndarray) -> dict[str, tuple[int, int]]:
    """{node: (weights zeroed, prunable weights)} from the model's per-node parameter slices."""
    zeroed = np.zeros(len(model.params), np.int64)
    zeroed[chosen] = 1
    out = {}
    for nid in model.param_nodes:
        a, b = model.slices[nid]
        total = int(model.decay_mask[a:b].sum())
        if total:
            out[nid] = (int(zeroed[a:b].sum()), total)
    return out


def evaluate_pruned(run: Any, fractions: list[float]) -> list[dict[str, Any]]:
    """For each fraction: prune a copy of the run's final weights, evaluate, put them back.

    Returns one record per fraction with ``fraction``, ``zeroed``, ``total`` and the pruned
    model's ``test_loss``/``test_acc`` (when the run has a test split) and ``val_loss``/
    ``val_acc`` (when it has a validation split). ``run`` is an :class:`engine.session.Run`.
    """
    model, trainer = run.model, run.trainer
    snap = model.snapshot()
    out = []
    try:
        for fraction in fractions:
            pruned = prune_smallest(model, fraction)
            record: dict[str, Any] = {"fraction": pruned.fraction, "zeroed": pruned.zeroed, "total": pruned.total}
            record.update({k: v for k, v in run.test_metrics().items() if v is not None})
            if trainer.val is not None:
                loss, acc = trainer.evaluate(*trainer.val)
                record.update({"val_loss": loss, **({"val_acc": acc} if acc is not None else {})})
            out.append(record)
            model.restore(snap)
    finally:
        model.restore(snap)
    return out


def reopen_run(loaded: Any, base_dir: str | Path | None = None) -> Any:
    """A :class:`engine.session.Run` around a loaded model file (``engine.modelfile.load_model``)
    that evaluates it on the data it was trained on: the same dataset, split (same seed) and
    stored normalisation statistics, the trained weights kept. A file dataset is found relative
    to ``base_dir`` (the model file's folder, as ``backprop prune`` passes it)."""
    from engine.data.dataset import Normaliser
    from engine.session import prepare_run

    graph = loaded.graph.copy()
    graph.training = dict(loaded.meta.get("training") or graph.training)
    stats = (loaded.meta.get("preprocessing") or {}).get("normalise")
    normaliser = Normaliser.from_json(stats) if stats else None
    return prepare_run(graph, base_dir, model=loaded.model, normaliser=normaliser)
