"""What a run recorded of its gradients through time: the ``time_grads`` samples per recurrent node.

The trainer emits one :class:`engine.events.TimeGradsEvent` per recurrent layer every
``stats_every`` steps: ‖∂L/∂h_t‖ for t = 1 … T and σ_max(Wh). :class:`TimeGradsHistory`
keeps them per node in growing arrays (a :class:`~studio.training.history.RunRecord` owns
one), so the Through-time view reads the latest curve, the first one (the network at its
initial weights) and σ_max over training without touching the events again. Memory stays
bounded: past ``max_samples`` samples of a node every other one is dropped (the latest is
kept). No Qt here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from engine.events import TimeGradsEvent
from studio.training.history import Growing


class TimeGradsSeries:
    """Every recorded ``time_grads`` sample of one recurrent node (all of the same length T)."""

    def __init__(self, node: str, layer: str, gamma: float | None, length: int) -> None:
        self.node, self.layer, self.gamma, self.length = node, layer, gamma, length
        self._steps = Growing(dtype=np.int64, capacity=16)
        self._norms = Growing(width=length, capacity=16)
        self._sigma = Growing(capacity=16)
        self.first: np.ndarray | None = None  # the earliest sample is kept through thinning
        self.first_step = 0

    def __len__(self) -> int:
        return len(self._steps)

    def add(self, event: TimeGradsEvent, max_samples: int) -> bool:
        if len(event.norms) != self.length:
            return False  # a sequence length changing mid-run would be a trainer bug: keep the series whole
        norms = np.asarray(event.norms, np.float64)
        if self.first is None:
            self.first, self.first_step = norms.copy(), int(event.step)
        self._steps.extend(np.array([event.step], np.int64))
        self._norms.extend(norms[None])
        self._sigma.extend(np.array([event.sigma_max], np.float64))
        n = len(self._steps)
        if n > max_samples:
            keep = np.arange(0, n, 2)
            if keep[-1] != n - 1:
                keep = np.append(keep, n - 1)
            for rows in (self._steps, self._norms, self._sigma):
                rows.keep(keep)
        return True

    @property
    def steps(self) -> np.ndarray:
        return self._steps.data

    @property
    def sigma(self) -> np.ndarray:
        """σ_max(Wh) at each recorded step."""
        return self._sigma.data

    @property
    def norms(self) -> np.ndarray:
        """(samples, T): ‖∂L/∂h_t‖ of each recorded step."""
        return self._norms.data

    def latest(self) -> np.ndarray:
        return self._norms.data[-1].copy() if len(self) else np.zeros(self.length)

    @property
    def latest_step(self) -> int:
        return int(self._steps.data[-1]) if len(self) else 0

    def first_last_ratio(self) -> float:
        """‖∂L/∂h_1‖ ÷ ‖∂L/∂h_T‖ of the latest sample (NaN when undefined)."""
        if not len(self):
            return math.nan
        last = self._norms.data[-1]
        return float(last[0] / last[-1]) if last[-1] > 0 and math.isfinite(last[-1]) else math.nan


class TimeGradsHistory:
    """The ``time_grads`` series of one run, by node in the order the trainer reported them."""

    def __init__(self, max_samples: int = 4096) -> None:
        self.max_samples = max_samples
        self.series: dict[str, TimeGradsSeries] = {}
        self.count = 0  # samples recorded in total (changes whenever something new arrived)

    def __bool__(self) -> bool:
        return bool(self.series)

    def add(self, event: TimeGradsEvent) -> None:
        s = self.series.get(event.node)
        if s is None:
            s = self.series[event.node] = TimeGradsSeries(event.node, event.layer, event.gamma, len(event.norms))
        if s.add(event, self.max_samples):
            self.count += 1

    def nodes(self) -> list[str]:
        return list(self.series)

    def events(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(step, metrics-stream record) of every kept sample, in step order per node."""
        out = []
        for s in self.series.values():
            for step, norms, sig in zip(s.steps.tolist(), s.norms, s.sigma.tolist(), strict=True):
                event = TimeGradsEvent(int(step), s.node, norms.tolist(), float(sig), s.layer, s.gamma)
                out.append((int(step), event.to_json()))
        out.sort(key=lambda pair: pair[0])
        return iter(out)
