"""Looking inside a network, headless: feature maps, filters, image grids, class reports.

What the studio's Feature maps, Filters, confusion-matrix and misclassified-examples views
show, computed here so that it can be tested (and scripted) without Qt. Call these on a
model that is *not* being trained at that moment: the studio's preview model (a copy of the
training weights, ``TrainingController.preview_model``), or a model after training. A
forward on the training model from another thread would race with the trainer on the
layers' caches and scratch.

Costs (LeNet-5 on 1×28×28): one example's feature maps are one evaluation forward of a
batch of 1, well under a millisecond plus the copy of the maps; the first layer's filters
are a copy of its weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.compiler import Model
from engine.errors import TrainingError

CONV_TYPES = ("Conv2D", "Conv1D")


def conv_nodes(model: Model) -> list[str]:
    """The convolution nodes, in the order the network runs them."""
    return [nid for nid in model.order if model.runtimes[nid].type.name in CONV_TYPES]


def feature_maps(model: Model, x: np.ndarray, nodes: list[str] | None = None) -> dict[str, np.ndarray]:
    """Evaluation-mode outputs of ``nodes`` (default: every convolution) for one example.

    ``x`` has the Input's shape (e.g. (1, 28, 28)), already preprocessed as the model was
    trained. Returns ``{node: (C, H, W) copy}``; a 1-D convolution's (C, L) maps come back
    as (C, 1, L), so every map is an image. Dropout is off and BatchNorm uses its running
    statistics, as when predicting.
    """
    expected = model.shapes[model.input_id]
    x = np.asarray(x)
    if x.shape != expected:
        raise TrainingError(f"the example has shape {x.shape}; Input '{model.input_id}' expects {expected}")
    wanted = conv_nodes(model) if nodes is None else list(nodes)
    for nid in wanted:
        if nid not in model.runtimes:
            raise TrainingError(f"the model has no node '{nid}'")
    model.forward(np.ascontiguousarray(x[None], dtype=model.dtype), training=False)
    out = {}
    for nid in wanted:
        y = np.array(model.output_of(nid)[0])
        out[nid] = y[:, None, :] if y.ndim == 2 else y
    return out


def conv_filters(model: Model, node: str | None = None) -> np.ndarray:
    """A convolution's kernels W as a copy, (F, C, kh, kw) (1-D: (F, C, 1, k)); by default
    those of the first convolution, the ones that look at the input image itself."""
    nodes = conv_nodes(model)
    if not nodes:
        raise TrainingError("the network has no convolution layer")
    nid = nodes[0] if node is None else node
    if nid not in nodes:
        raise TrainingError(f"node '{nid}' is not a convolution; convolutions: {', '.join(nodes)}")
    W = np.array(model.runtimes[nid].W["W"])
    return W[:, :, None, :] if W.ndim == 3 else W


def image_grid(images: np.ndarray, columns: int | None = None, pad: int = 1, scale: str = "each",
               fill: float = 1.0) -> np.ndarray:
    """Tiles of (K, H, W) grey images laid out in a 2-D array with values in [0, 1].

    ``scale``: ``"each"`` stretches every tile to its own min–max (feature maps), ``"all"``
    uses one min–max for all tiles (comparable brightness), ``"symmetric"`` maps −m…m to
    0…1 with m = max |value| (filters: 0.5 is a zero weight). A constant tile becomes 0.5.
    ``columns`` defaults to a near-square layout; ``pad`` pixels of ``fill`` separate tiles.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"image_grid needs (K, H, W) images, got shape {images.shape}")
    k, h, w = images.shape
    if k == 0:
        return np.zeros((0, 0), np.float32)
    columns = columns or math.ceil(math.sqrt(k))
    rows = math.ceil(k / columns)
    scaled = _scaled(images, scale)
    grid = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad), fill, np.float32)
    for i in range(k):
        r, c = divmod(i, columns)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = scaled[i]
    return grid


def _scaled(images: np.ndarray, scale: str) -> np.ndarray:
    if scale == "symmetric":
        m = float(np.max(np.abs(images)))
        return np.full(images.shape, 0.5) if m == 0 else 0.5 + 0.5 * images / m
    if scale == "all":
        lo, hi = float(images.min()), float(images.max())
        return np.full(images.shape, 0.5) if hi == lo else (images - lo) / (hi - lo)
    if scale != "each":
        raise ValueError(f"scale must be 'each', 'all' or 'symmetric', got {scale!r}")
    lo = images.min(axis=(1, 2), keepdims=True)
    span = images.max(axis=(1, 2), keepdims=True) - lo
    return np.where(span > 0, (images - lo) / np.where(span > 0, span, 1.0), 0.5)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    out = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(out, (y_true.astype(np.int64), y_pred.astype(np.int64)), 1)
    return out


@dataclass
class ClassReport:
    """Predictions of a classifier on a labelled set, for the confusion matrix and the
    gallery of misclassified examples."""

    y: np.ndarray  # true classes (n,)
    predicted: np.ndarray  # (n,)
    confidence: np.ndarray  # probability the model gives its predicted class (n,)
    confusion: np.ndarray  # (K, K), rows true, columns predicted

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.y)) if len(self.y) else 0.0

    def misclassified(self, limit: int | None = None) -> np.ndarray:
        """Indices of the wrongly classified examples, the most confident mistakes first."""
        wrong = np.flatnonzero(self.predicted != self.y)
        order = wrong[np.argsort(-self.confidence[wrong], kind="stable")]
        return order if limit is None else order[:limit]


def class_report(model: Model, X: np.ndarray, y: np.ndarray, n_classes: int) -> ClassReport:
    """Evaluation-mode predictions of ``model`` on preprocessed ``X`` against classes ``y``.

    The class axis is the output's last one: K outputs give a softmax (a final Softmax
    layer already gives probabilities), a single output is a binary classifier (a
    probability, or a logit when the loss fuses the sigmoid).
    """
    if len(model.output_shape) != 1:
        raise TrainingError(f"a class report needs one prediction per example; the network outputs "
                            f"{model.output_shape} per example")
    z = model.predict(np.ascontiguousarray(X, dtype=model.dtype)).astype(np.float64)
    y = np.asarray(y).reshape(-1).astype(np.int64)
    if z.shape[1] == 1:
        p = z[:, 0] if model.outputs_probabilities else 1.0 / (1.0 + np.exp(-z[:, 0]))
        predicted = (p > 0.5).astype(np.int64)
        confidence = np.where(predicted == 1, p, 1.0 - p)
        n_classes = max(n_classes, 2)
    else:
        ends_in_softmax = model.graph.nodes[model.output_id].type == "Softmax"
        probs = z if ends_in_softmax else _softmax(z)
        predicted = np.argmax(probs, axis=1)
        confidence = probs[np.arange(len(probs)), predicted]
    return ClassReport(y, predicted, confidence, confusion_matrix(y, predicted, n_classes))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
