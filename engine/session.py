"""From a graph file to a ready trainer: data, split, normalisation, model, trainer.

The CLI and the studio both start training here, so both apply the same preprocessing,
the same checks, and store the same metadata in the model file. Memory: the dataset's
float32 examples plus one working copy that :func:`~engine.data.split_dataset` gathers
(train, validation and test are views of it) and the normaliser rewrites in place; the
trainer receives float32 C-contiguous views it can use without copying.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.compiler import Model, compile_graph
from engine.data import Dataset, Normaliser, make_dataset, split_dataset
from engine.errors import TrainingError
from engine.graph import Graph
from engine.training import Listener, TrainConfig, Trainer


@dataclass
class Run:
    """Everything one training run needs, prepared and checked."""

    graph: Graph
    config: TrainConfig
    dataset: Dataset
    train: Dataset
    val: Dataset | None
    test: Dataset | None
    normaliser: Normaliser | None
    model: Model
    trainer: Trainer

    def meta(self) -> dict[str, Any]:
        """The model file's preprocessing and dataset description (meta.json)."""
        ds = self.dataset
        return {
            "task": ds.task,
            "dataset": {"name": ds.name, "n": len(ds), "feature_names": list(ds.feature_names),
                        "class_names": list(ds.class_names), "target": ds.target_name},
            "preprocessing": {"normalise": self.normaliser.to_json() if self.normaliser else None},
            "training": copy.deepcopy(self.graph.training),
            "history": [e.to_json() for e in self.trainer.history],
        }

    def test_metrics(self) -> dict[str, float | None]:
        if self.test is None or not len(self.test):
            return {}
        tr = self.trainer
        X = np.ascontiguousarray(self.test.X, tr.model.dtype)
        from engine.losses import prepare_targets

        T = prepare_targets(self.config.loss, self.test.y, self.test.task, self.dataset.n_classes,
                            tr.model.loss_shape, tr.model.dtype)
        loss, acc = tr.evaluate(X, self.test.y, T)
        return {"test_loss": loss, "test_acc": acc}


def training_block(graph: Graph, epochs: int | None = None, seed: int | None = None) -> dict[str, Any]:
    block = copy.deepcopy(graph.training)
    if epochs is not None:
        block["epochs"] = epochs
    if seed is not None:
        block["seed"] = seed
    return block


def check_input_shape(graph: Graph, dataset: Dataset) -> None:
    inputs = graph.input_nodes()
    if not inputs:
        raise TrainingError("the graph has no Input layer")
    declared = tuple(graph.nodes[inputs[0]].params["shape"])
    if declared != tuple(dataset.feature_shape):
        raise TrainingError(
            f"Input '{inputs[0]}' has shape {declared} but dataset '{dataset.name}' has examples of shape "
            f"{tuple(dataset.feature_shape)}; set the Input shape to {list(dataset.feature_shape)}",
        )


def prepare_run(graph: Graph, base_dir: str | Path | None = None, *, epochs: int | None = None,
                seed: int | None = None, listener: Listener | None = None, model: Model | None = None,
                normaliser: Normaliser | None = None, dataset: Dataset | None = None) -> Run:
    """Build data, model and trainer for ``graph``; raises a BackpropError saying what is wrong.

    ``model`` continues training an existing model (its weights are kept); ``normaliser``
    then reuses the statistics it was trained with.
    """
    graph.validate()
    block = training_block(graph, epochs, seed)
    config = TrainConfig.from_training(block)
    if dataset is None:
        dataset = make_dataset(block.get("dataset", {}), Path(base_dir) if base_dir else None)
    ds = dataset
    check_input_shape(graph, ds)
    train, val, test = split_dataset(ds, config.val_split, config.test_split, config.seed)
    normalise = config.normalize if config.normalize is not None else "path" in block.get("dataset", {})
    if normaliser is None and normalise:
        normaliser = Normaliser.fit(train.X)
    if normaliser is not None:
        for part in (train, val, test):
            if part is not None:
                normaliser.apply_(part.X)  # the split's own working array, never the source
    if model is None:
        model = compile_graph(graph, dtype=config.dtype, seed=config.seed)
    trainer = Trainer(model, train.X, train.y, config, task=ds.task, n_classes=ds.n_classes,
                      val=(val.X, val.y) if val is not None and len(val) else None, listener=listener)
    run_graph = graph.copy()
    run_graph.training = block
    return Run(run_graph, config, ds, train, val, test, normaliser, model, trainer)


def preprocess(meta: Mapping[str, Any], X: np.ndarray) -> np.ndarray:
    """Apply a model file's stored preprocessing to raw features (a new array; float64 stays float64).

    Statistics of any stored shape apply by broadcasting: per feature (F,), per sequence
    feature (1, F), per channel (C, 1, 1), or per position as older model files hold them.
    """
    X = np.asarray(X)
    norm = (meta.get("preprocessing") or {}).get("normalise")
    if norm:
        return Normaliser.from_json(norm).apply(X)
    return np.asarray(X, dtype=np.float64 if X.dtype == np.float64 else np.float32)
