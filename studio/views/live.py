"""What the views that look inside a network share: the examples they show, a bounded redraw rate.

:class:`LivePanel` is a :class:`~studio.plots.common.PlotPanel` that draws from the
controller's *preview model* (``TrainingController.preview_model``: a second model holding
a copy of the trainer's weights, so the GUI never touches the model the worker thread is
training). It redraws at most ``max_hz`` times a second, only while on screen, and once
more shortly after the last change so the final weights are always shown. What a redraw
costs is measured (``draw_ms``), so the rate can be checked against the T3/T5 budgets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QTimer

from studio.plots.common import PlotPanel

POOL_TYPES = ("MaxPool2D", "AvgPool2D", "MaxPool1D", "AvgPool1D")
MAP_TYPES = ("Conv2D", "Conv1D") + POOL_TYPES


@dataclass
class Examples:
    """The labelled examples a view shows, preprocessed as the model sees them."""

    split: str  # "test", "validation" or "training"
    X: np.ndarray
    y: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.X)

    def label(self, cls: int) -> str:
        return self.class_names[cls] if 0 <= cls < len(self.class_names) else str(cls)


def examples_of(run: Any, images_only: bool = True) -> Examples | None:
    """The run's test split, else its validation split, else its training data (by default
    only when the examples are images or signals, (C, H, W) or (C, L))."""
    if run is None:
        return None
    for split, part in (("test", run.test), ("validation", run.val), ("training", run.train)):
        if part is not None and len(part):
            if images_only and part.X.ndim < 3:
                return None
            return Examples(split, part.X, np.asarray(part.y), list(run.dataset.class_names))
    return None


def map_nodes(model: Any) -> list[str]:
    """Convolution and pooling nodes whose outputs are maps, in the order the network runs them."""
    return [nid for nid in model.order if model.runtimes[nid].type.name in MAP_TYPES]


def class_probabilities(model: Any, z: np.ndarray) -> np.ndarray:
    """The network's output row(s) as class probabilities (a final Softmax already gives them)."""
    z = np.asarray(z, np.float64)
    if model.graph.nodes[model.output_id].type == "Softmax":
        return z
    if z.shape[-1] == 1:
        p = 1.0 / (1.0 + np.exp(-z[..., 0])) if not model.outputs_probabilities else z[..., 0]
        return np.stack([1 - p, p], axis=-1)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class LivePanel(PlotPanel):
    """A plot panel drawn from the preview model at a bounded rate (see module docstring)."""

    max_hz = 4.0

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.frames = 0
        self.draw_ms: list[float] = []
        self._last = 0.0
        self._weights_version = 0
        super().__init__()
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.timeout.connect(lambda: self.refresh())
        controller.weightsChanged.connect(self.weights_changed)

    def has_content(self) -> bool:
        return self.controller.model is not None

    def weights_changed(self) -> None:
        """A new model, a reset or loaded weights: redraw soon."""
        self._weights_version += 1
        self._update_hint()
        self.refresh()

    def _key(self) -> tuple:
        rec = self.record
        return (self._weights_version, id(rec), rec.version if rec is not None else -1)

    def refresh(self, force: bool = False) -> bool:
        if not force and not self.on_screen():
            return False
        wait = 1.0 / self.max_hz - (time.perf_counter() - self._last)
        if wait > 0 and not force:
            if not self._later.isActive():
                self._later.start(int(wait * 1000) + 1)
            return False
        key = self._key()
        if key == self._drawn and not force:
            return False
        self._drawn = key  # type: ignore[assignment]
        self._last = t0 = time.perf_counter()
        self._update_hint()
        self._draw()
        self.draw_ms.append(1000 * (time.perf_counter() - t0))
        del self.draw_ms[:-256]
        self.draw_count += 1
        self.draw_times.append(self._last)
        del self.draw_times[:-512]
        return True

    def preview(self) -> Any:
        """The preview model, or None (nothing trained yet, or it could not be built)."""
        return self.controller.preview_model() if self.controller.model is not None else None
