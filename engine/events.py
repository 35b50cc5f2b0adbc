"""Training events (plain dataclasses) and the bounded buffer that carries them to a GUI.

The trainer calls its listener synchronously, so a listener must never block: the
:class:`EventBuffer` appends under a short lock and, when full, drops the oldest *step*
events (the GUI would coalesce them anyway) while keeping every epoch, statistics,
divergence and finish event. ``to_json`` gives the metrics-stream contract of
ARCHITECTURE.md (keys may be added, never renamed).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any


def _clean(value: Any) -> Any:
    """JSON-safe floats: NaN/inf become None (JSON has no NaN)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


@dataclass
class StartEvent:
    epochs: int
    steps_per_epoch: int
    n_train: int
    n_val: int
    param_nodes: list[str]
    compiling: bool = False
    event: str = "start"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepEvent:
    epoch: int
    step: int
    loss: float
    lr: float
    grad_norms: dict[str, float]
    samples_per_s: float
    event: str = "step"

    def to_json(self) -> dict[str, Any]:
        return _clean({"event": "step", "epoch": self.epoch, "step": self.step, "loss": self.loss,
                       "lr": self.lr, "grad_norms": self.grad_norms, "samples_per_s": self.samples_per_s})


@dataclass
class EpochEvent:
    epoch: int
    step: int
    train_loss: float
    val_loss: float | None
    train_acc: float | None
    val_acc: float | None
    seconds: float = 0.0
    event: str = "epoch"

    def to_json(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass
class LayerStats:
    mean: float
    std: float
    saturated: float | None = None
    dead: float | None = None


@dataclass
class StatsEvent:
    """Activation statistics of every node's output, every N steps."""

    step: int
    stats: dict[str, LayerStats]
    event: str = "activation_stats"

    def to_json(self) -> dict[str, Any]:
        return _clean({"event": self.event, "step": self.step,
                       "stats": {k: asdict(v) for k, v in self.stats.items()}})


@dataclass
class TimeGradsEvent:
    """The gradient through time of one recurrent layer, every N steps (with the statistics).

    ``norms[t − 1]`` = ‖∂L/∂h_t‖ for t = 1 … T (L2 over the batch and the units) from that
    step's backward; ``sigma_max`` the largest singular value of the layer's ``Wh``; ``gamma``
    the bound on |φ′| of a SimpleRNN's activation (vanishing is certain while σ_max < 1/γ;
    None for LSTM and GRU, whose gates break that bound).
    """

    step: int
    node: str
    norms: list[float]
    sigma_max: float
    layer: str = ""
    gamma: float | None = None
    event: str = "time_grads"

    @property
    def first_last_ratio(self) -> float:
        """‖∂L/∂h_1‖ / ‖∂L/∂h_T‖: how much of the gradient reaches the first step."""
        last = self.norms[-1] if self.norms else 0.0
        return self.norms[0] / last if last > 0 else float("nan")

    def to_json(self) -> dict[str, Any]:
        return _clean({"event": self.event, "step": self.step, "node": self.node, "norms": list(self.norms),
                       "sigma_max": self.sigma_max, "layer": self.layer, "gamma": self.gamma,
                       "first_last_ratio": self.first_last_ratio})


@dataclass
class DivergedEvent:
    step: int
    node: str | None
    message: str
    event: str = "diverged"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FinishEvent:
    """Why training ended: completed, stopped, early_stopping, diverged or error."""

    reason: str
    epoch: int
    step: int
    message: str = ""
    best_epoch: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    event: str = "finish"

    def to_json(self) -> dict[str, Any]:
        return _clean(asdict(self))


Event = StartEvent | StepEvent | EpochEvent | StatsEvent | TimeGradsEvent | DivergedEvent | FinishEvent


class EventBuffer:
    """Bounded, thread-safe queue between a trainer thread and a GUI timer.

    ``put`` never blocks for longer than a list append; ``drain`` returns everything queued
    in arrival order. ``dropped`` counts step events discarded because the reader was slow.
    """

    def __init__(self, max_steps: int = 5000) -> None:
        self._lock = threading.Lock()
        self._items: deque[tuple[int, Event]] = deque()
        self._steps: deque[tuple[int, Event]] = deque()
        self._max_steps = max_steps
        self._seq = 0
        self.dropped = 0

    def put(self, event: Event) -> None:
        with self._lock:
            self._seq += 1
            if isinstance(event, StepEvent):
                if len(self._steps) >= self._max_steps:
                    self._steps.popleft()
                    self.dropped += 1
                self._steps.append((self._seq, event))
            else:
                self._items.append((self._seq, event))

    __call__ = put

    def drain(self) -> list[Event]:
        with self._lock:
            items, steps = self._items, self._steps
            self._items, self._steps = deque(), deque()
        if not items:
            return [e for _, e in steps]
        if not steps:
            return [e for _, e in items]
        return [e for _, e in sorted([*items, *steps], key=lambda pair: pair[0])]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items) + len(self._steps)
