"""The trainer: epochs of shuffled minibatches, events, and control from another thread.

One step is: forward + loss + backward (``Model.loss_and_grads``), weight decay, clipping,
per-node gradient norms, and the optimizer update — the last four each one Numba call over
the flat buffers. The trainer never waits on its listener; between steps it obeys stop,
pause, resume and "step exactly one batch" requests from any thread.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.compiler import Model, Snapshot, resolve_dtype
from engine.errors import TrainingError
from engine.events import (
    DivergedEvent,
    EpochEvent,
    Event,
    FinishEvent,
    LayerStats,
    StartEvent,
    StatsEvent,
    StepEvent,
)
from engine.graph import PortRef
from engine.layers.activations import RECTIFIERS, SATURATING, dead_fraction
from engine.losses import loss_spec, prepare_targets
from engine.optim import (
    apply_weight_decay,
    clip_by_value,
    clip_factor,
    global_norm,
    lr_at,
    make_optimizer,
    validate_schedule,
)
from engine.through_time import time_grads_events

Listener = Callable[[Event], None]


def _quiet_floats(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``method`` with NumPy's overflow/invalid/divide warnings off.

    Non-finite values are results the trainer detects and reports itself (a divergence event
    naming the step and the layer); NumPy's RuntimeWarnings would only repeat that, noisily.
    """
    @functools.wraps(method)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return method(*args, **kwargs)
    return quiet


def _number(cfg: Mapping[str, Any], key: str, default: Any, lo: float, hi: float, kind: type = float) -> Any:
    value = cfg.get(key, default)
    if value is None:
        return None
    not_int = kind is int and not float(value).is_integer() if isinstance(value, (int, float)) else False
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not_int:
        raise TrainingError(f"training '{key}' must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    if not (lo <= value <= hi) or not math.isfinite(value):
        raise TrainingError(f"training '{key}' = {value!r} is out of range [{lo:g}, {hi:g}]")
    return kind(value)


@dataclass
class TrainConfig:
    """The graph file's training block, validated (see docs/graph-format.md)."""

    loss: str = "mse"
    batch_size: int = 32
    epochs: int = 10
    seed: int = 0
    optimizer: dict[str, Any] = field(default_factory=lambda: {"name": "sgd", "lr": 0.1})
    schedule: dict[str, Any] | None = None
    clip_norm: float | None = None
    clip_value: float | None = None
    l1: float = 0.0
    l2: float = 0.0
    val_split: float = 0.0
    test_split: float = 0.0
    patience: int | None = None
    restore_best: bool = True
    min_delta: float = 0.0
    stats_every: int = 25
    dtype: str = "float32"
    normalize: bool | None = None
    shuffle: bool = True

    @classmethod
    def from_training(cls, block: Mapping[str, Any]) -> "TrainConfig":
        if not isinstance(block, Mapping):
            raise TrainingError("the training block must be an object")
        loss_spec(block.get("loss", "mse"))
        opt = block.get("optimizer", {"name": "sgd", "lr": 0.1})
        if not isinstance(opt, Mapping):
            raise TrainingError("training 'optimizer' must be an object like {\"name\": \"adam\", \"lr\": 0.001}")
        decay = block.get("weight_decay", 0.0)
        if isinstance(decay, (int, float)) and not isinstance(decay, bool):
            decay = {"l2": decay}
        if not isinstance(decay, Mapping):
            raise TrainingError("training 'weight_decay' must be a number (L2) or {\"l1\": a, \"l2\": b}")
        early = block.get("early_stopping") or {}
        if not isinstance(early, Mapping):
            raise TrainingError("training 'early_stopping' must be an object like {\"patience\": 10}")
        dtype = block.get("dtype", "float32")
        resolve_dtype(dtype)
        normalize = block.get("normalize")
        if normalize is not None and not isinstance(normalize, bool):
            raise TrainingError("training 'normalize' must be true, false or absent")
        cfg = cls(
            loss=block.get("loss", "mse"),
            batch_size=_number(block, "batch_size", 32, 1, 1 << 20, int),
            epochs=_number(block, "epochs", 10, 1, 1_000_000, int),
            seed=_number(block, "seed", 0, 0, 2**32 - 1, int),
            optimizer=dict(opt),
            schedule=validate_schedule(block.get("schedule")),
            clip_norm=_number(block, "clip_norm", None, 1e-12, 1e12),
            clip_value=_number(block, "clip_value", None, 1e-12, 1e12),
            l1=_number(decay, "l1", 0.0, 0.0, 10.0) or 0.0,
            l2=_number(decay, "l2", 0.0, 0.0, 10.0) or 0.0,
            val_split=_number(block, "val_split", 0.0, 0.0, 0.9),
            test_split=_number(block, "test_split", 0.0, 0.0, 0.9),
            patience=_number(early, "patience", None, 1, 1_000_000, int),
            restore_best=bool(early.get("restore_best", True)),
            min_delta=_number(early, "min_delta", 0.0, 0.0, 1e12),
            stats_every=_number(block, "stats_every", 25, 0, 1_000_000, int),
            dtype=str(np.dtype(resolve_dtype(dtype))),
            normalize=normalize,
            shuffle=bool(block.get("shuffle", True)),
        )
        if cfg.val_split + cfg.test_split >= 0.95:
            raise TrainingError("val_split + test_split leave too little data for training")
        make_optimizer(cfg.optimizer, 1, np.float64)  # validates name and parameters
        return cfg


def activation_stats(model: Model, outputs: Mapping[PortRef, np.ndarray]) -> dict[str, LayerStats]:
    """Mean, std and, where it means something, saturated or dead fraction per node.

    Statistics describe each node's primary output port. Saturated: the share of outputs in
    the flat tails of sigmoid, tanh, scaled tanh and hard tanh (f' < ~0.01 of its peak).
    Dead: the share of units of the rectifier family (ReLU, leaky ReLU, PReLU, ELU, softplus;
    maxout pieces) whose slope stays below 10⁻³ for every example of the batch
    (:func:`engine.layers.activations.dead_fraction`).
    """
    stats: dict[str, LayerStats] = {}
    for nid in model.order:
        y = outputs.get((nid, model.ports[nid][0]))
        node = model.graph.nodes[nid]
        if y is None or node.type == "Input" or y.size == 0:
            continue
        s = LayerStats(float(np.mean(y)), float(np.std(y)))
        fn = node.params.get("function") if node.type == "Activation" else None
        if fn in SATURATING:
            lo, hi = SATURATING[fn]
            s.saturated = float(np.mean((y <= lo) | (y >= hi)))
        elif fn in RECTIFIERS:
            s.dead = dead_fraction(model.runtimes[nid], y)
        stats[nid] = s
    return stats


class Trainer:
    """Trains ``model`` on (X, y) arrays; emits events to ``listener``; controllable from threads."""

    def __init__(self, model: Model, X: np.ndarray, y: np.ndarray, config: TrainConfig, *,
                 task: str = "classification", n_classes: int = 2,
                 val: tuple[np.ndarray, np.ndarray] | None = None, listener: Listener | None = None) -> None:
        self.model = model
        self.config = config
        self.task = task
        self.listener = listener if listener is not None else (lambda event: None)
        dtype = model.dtype
        self.X = np.ascontiguousarray(X, dtype=dtype)
        if self.X.shape[1:] != model.shapes[model.input_id]:
            raise TrainingError(
                f"Input '{model.input_id}' expects examples of shape {model.shapes[model.input_id]} but the "
                f"dataset has {self.X.shape[1:]}; set the Input shape to {list(self.X.shape[1:])}"
            )
        if len(self.X) == 0:
            raise TrainingError("the training set is empty")
        self.y = np.asarray(y)
        self.n_classes = n_classes
        self.T = np.ascontiguousarray(prepare_targets(config.loss, self.y, task, n_classes, model.loss_shape, dtype))
        self.val = None
        if val is not None and len(val[0]):
            vX = np.ascontiguousarray(val[0], dtype=dtype)
            self.val = (vX, np.asarray(val[1]),
                        prepare_targets(config.loss, val[1], task, n_classes, model.loss_shape, dtype))
        if min(config.batch_size, len(self.X)) < model.min_batch:
            needs = next(rt for rt in model.runtimes.values() if rt.type.min_batch == model.min_batch)
            what = (f"batch_size is {config.batch_size}" if config.batch_size < model.min_batch
                    else f"the training set has {len(self.X)} example(s)")
            raise TrainingError(
                f"{needs.type.name} '{needs.id}' needs at least {model.min_batch} examples per batch "
                f"(it normalises with the batch's own variance); {what}")
        self.optimizer = make_optimizer(config.optimizer, model.params.size, dtype)
        self.norms = np.zeros(len(model.param_nodes), np.float64)
        self.step = 0
        self.epoch = 0
        self.history: list[EpochEvent] = []
        self._shuffle_rng = np.random.default_rng(config.seed)
        self._lock = threading.Lock()
        self._resume = threading.Event()
        self._resume.set()
        self._paused = False
        self._budget = 0
        self._stop = False
        self.running = False

    # -- control (any thread) ----------------------------------------------------------
    def request_stop(self) -> None:
        self._stop = True
        self._resume.set()

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            self._resume.clear()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._budget = 0
            self._resume.set()

    def step_once(self) -> None:
        """While paused: run exactly one more batch, then stay paused."""
        with self._lock:
            self._budget += 1
            self._resume.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def _wait_for_permission(self) -> bool:
        """Block while paused (without a budget); False if a stop was requested."""
        while True:
            if self._stop:
                return False
            with self._lock:
                if not self._paused:
                    return True
                if self._budget > 0:
                    self._budget -= 1
                    if self._budget == 0:
                        self._resume.clear()
                    return True
            self._resume.wait(0.05)

    # -- evaluation -------------------------------------------------------------------
    def _correct(self, z: np.ndarray, y: np.ndarray) -> int:
        """How many predictions in ``z`` match ``y``: the class axis is the last one, so
        a (n, T, K) output scores each of its n·T steps against y of shape (n, T)."""
        if z.shape[-1] == 1:
            threshold = 0.5 if self.model.loss in ("mse", "mae") else 0.0
            pred = (z[..., 0] > threshold).astype(np.int64)
        else:
            pred = np.argmax(z, axis=-1)
        return int(np.count_nonzero(pred.reshape(-1) == np.asarray(y).reshape(-1)))

    @_quiet_floats
    def evaluate(self, X: np.ndarray, y: np.ndarray, T: np.ndarray,
                 batch: int | None = None) -> tuple[float, float | None]:
        """Evaluation-mode loss and accuracy (no gradient, dropout off, running BN stats).

        Runs in chunks of ``batch`` examples (default: as many as fit the model's
        evaluation budget, :meth:`Model.eval_chunk`); the loss is the mean over every
        example and every leading axis, as in training.
        """
        from engine.losses import loss_and_grad

        batch = batch or self.model.eval_chunk()
        total, correct, positions = 0.0, 0, 0
        for i in range(0, len(X), batch):
            z = self.model.logits_for_loss(X[i:i + batch])
            rows = z.size // z.shape[-1]
            total += loss_and_grad(self.config.loss, z, T[i:i + batch], np.empty_like(z)) * rows
            positions += rows
            if self.task == "classification":
                correct += self._correct(z, y[i:i + batch])
        accuracy = correct / positions if self.task == "classification" else None
        return total / positions, accuracy

    # -- the loop ---------------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        """Batches per epoch. A last partial batch smaller than the model's ``min_batch``
        (one example for BatchNorm, whose variance needs two) is dropped, as PyTorch's
        ``drop_last`` would; its examples train in other epochs, where shuffling puts them
        in full batches."""
        n, bs = len(self.X), self.config.batch_size
        full, rest = divmod(n, bs)
        return full + (1 if rest >= self.model.min_batch or full == 0 else 0)

    def train_step(self, xb: np.ndarray, tb: np.ndarray, lr: float) -> float:
        """Forward, loss, backward, decay, clipping, norms, update. Returns the loss.

        Clipping's factor, the per-node norms (``self.norms``, of the final gradient) and the
        update are one pass over the buffers (:meth:`Optimizer.step`); nothing is updated
        when the loss (or, with clipping, the global norm) is not finite, and nothing from the
        first non-finite gradient block on.
        """
        cfg, model = self.config, self.model
        loss = model.loss_and_grads(xb, tb)
        if cfg.l1 or cfg.l2:
            loss += apply_weight_decay(model.params, model.grads, model.decay_mask, cfg.l1, cfg.l2)
        if cfg.clip_value:
            clip_by_value(model.grads, cfg.clip_value)
        scale, finite = 1.0, math.isfinite(loss)
        if cfg.clip_norm:
            norm = global_norm(model.grads)
            scale, finite = clip_factor(norm, cfg.clip_norm), finite and math.isfinite(norm)
        self.optimizer.step(model.params, model.grads, lr, offsets=model.node_offsets, norms=self.norms,
                            grad_scale=scale, apply=finite)
        return loss

    @_quiet_floats
    def run(self) -> FinishEvent:
        """Train until done, stopped, early-stopped or diverged; returns the finish event."""
        self.running = True
        try:
            return self._run()
        finally:
            self.running = False

    def _run(self) -> FinishEvent:
        cfg, model = self.config, self.model
        spe = self.steps_per_epoch()
        bs = cfg.batch_size
        self.listener(StartEvent(cfg.epochs, spe, len(self.X), len(self.val[0]) if self.val else 0,
                                 list(model.param_nodes)))
        best: tuple[float, int, Snapshot | None] = (math.inf, -1, None)
        since_best = 0
        window_t, window_n, rate = time.perf_counter(), 0, 0.0
        names = model.param_nodes
        xbuf = np.empty((min(bs, len(self.X)),) + self.X.shape[1:], self.X.dtype)
        tbuf = np.empty((min(bs, len(self.T)),) + self.T.shape[1:], self.T.dtype)
        while self.epoch < cfg.epochs:
            epoch_t0 = time.perf_counter()
            perm = self._shuffle_rng.permutation(len(self.X)) if cfg.shuffle else None
            loss_sum, seen = 0.0, 0
            for b in range(spe):
                if not self._wait_for_permission():
                    return self._finish("stopped", "stopped by request")
                xb, tb = self._batch(b, perm, xbuf, tbuf)
                lr = lr_at(cfg.schedule, self.optimizer.base_lr, self.epoch + b / spe, cfg.epochs)
                loss = self.train_step(xb, tb, lr)
                self.step += 1
                window_n += len(xb)
                now = time.perf_counter()
                if now - window_t >= 0.25 or rate == 0.0:
                    rate = window_n / max(now - window_t, 1e-9)
                    window_t, window_n = now, 0
                if not (math.isfinite(loss) and math.isfinite(self.norms.sum())):
                    return self._diverged(xb, loss)
                loss_sum += loss * len(xb)
                seen += len(xb)
                self.listener(StepEvent(self.epoch, self.step, loss, lr,
                                        dict(zip(names, self.norms.tolist(), strict=True)), rate))
                if cfg.stats_every and self.step % cfg.stats_every == 1 % cfg.stats_every:
                    self.listener(StatsEvent(self.step, activation_stats(model, self._last_outputs(xb))))
                    for time_grads in time_grads_events(model, self.step):
                        self.listener(time_grads)
            self.epoch += 1
            event = self._end_of_epoch(loss_sum / max(seen, 1), time.perf_counter() - epoch_t0)
            monitored = event.val_loss if event.val_loss is not None else event.train_loss
            if monitored < best[0] - cfg.min_delta:
                best = (monitored, self.epoch, model.snapshot() if cfg.patience else None)
                since_best = 0
            else:
                since_best += 1
            if cfg.patience and since_best >= cfg.patience:
                if cfg.restore_best and best[2] is not None:
                    model.restore(best[2])
                return self._finish("early_stopping", f"no improvement for {cfg.patience} epochs",
                                    best_epoch=best[1])
        return self._finish("completed", f"{cfg.epochs} epochs done", best_epoch=best[1] if cfg.patience else None)

    def _batch(self, b: int, perm: np.ndarray | None, xbuf: np.ndarray,
               tbuf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``b`` of the epoch: a slice of the data in order, or, when shuffling, its
        rows gathered through the permutation into reused buffers (never a permuted copy of
        the whole dataset)."""
        bs = self.config.batch_size
        if perm is None:
            return self.X[b * bs:(b + 1) * bs], self.T[b * bs:(b + 1) * bs]
        idx = perm[b * bs:(b + 1) * bs]
        xb, tb = xbuf[:len(idx)], tbuf[:len(idx)]
        np.take(self.X, idx, axis=0, out=xb, mode="clip")
        np.take(self.T, idx, axis=0, out=tb, mode="clip")
        return xb, tb

    def _last_outputs(self, xb: np.ndarray) -> Mapping[PortRef, np.ndarray]:
        fused = self.model.fused
        if fused is not None:
            return fused.outputs()
        return self.model.outputs

    def _end_of_epoch(self, train_loss: float, seconds: float) -> EpochEvent:
        train_acc = None
        if self.task == "classification":
            limit = 20000
            X, y, T = self.X[:limit], self.y[:limit], self.T[:limit]
            _, train_acc = self.evaluate(X, y, T)
        val_loss = val_acc = None
        if self.val is not None:
            val_loss, val_acc = self.evaluate(*self.val)
        event = EpochEvent(self.epoch, self.step, train_loss, val_loss, train_acc, val_acc, seconds)
        self.history.append(event)
        self.listener(event)
        return event

    def _diverged(self, xb: np.ndarray, loss: float) -> FinishEvent:
        """Name the step and the first node whose values stopped being finite.

        Locating it re-runs the batch's training-mode forward; that forward would move
        BatchNorm's running statistics and draw new dropout masks, so parameters, state and
        the random generator are snapshotted around it and put back.
        """
        model = self.model
        kept = model.snapshot(rng=True)
        try:
            with np.errstate(all="ignore"):
                model.forward(xb, training=True)
            node = model.first_non_finite()
        finally:
            model.restore(kept)
        where = f" at layer '{node}'" if node else ""
        message = (f"training diverged at step {self.step}{where}: the loss became {loss}. "
                   "Lower the learning rate, enable gradient clipping, or normalise the inputs.")
        self.listener(DivergedEvent(self.step, node, message))
        return self._finish("diverged", message)

    def _finish(self, reason: str, message: str, best_epoch: int | None = None) -> FinishEvent:
        last = self.history[-1] if self.history else None
        metrics = {k: v for k, v in (last.to_json().items() if last else []) if k in
                   ("train_loss", "val_loss", "train_acc", "val_acc")}
        event = FinishEvent(reason, self.epoch, self.step, message, best_epoch, metrics)
        self.listener(event)
        return event
