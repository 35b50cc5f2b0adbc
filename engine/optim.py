"""Optimizers, learning-rate schedules, gradient clipping, weight decay and gradient norms.

An optimizer is a tiny declaration (:class:`OptimizerSpec`): its parameters, its update rule
(``kind``, one of :func:`engine.kernels.optim.fused_step`'s) with the rule's constants and
the names of its per-parameter state. :class:`Optimizer` binds a spec to a validated config,
a state and a step count; its :meth:`Optimizer.step` is one Numba call over the model's flat
``params``/``grads`` buffers that also yields every node's gradient norm. The update rules
are those of ``torch.optim`` so the exported PyTorch script reproduces our steps. The
trainer calls :func:`make_optimizer`, :func:`lr_at`, :func:`apply_weight_decay`,
:func:`clip_by_value`, :func:`global_norm`/:func:`clip_factor` and :meth:`Optimizer.step`. The training panel and
``docs/training.md`` (:func:`optimizers_markdown`, ``python -m engine.optim``) are generated
from :data:`OPTIMIZERS` and :data:`SCHEDULES`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ParamError, TrainingError
from engine.kernels import optim as K
from engine.layers.base import ParamSpec

State = tuple[np.ndarray, ...]
Hyper = Mapping[str, Any]


# ---- declarations ----------------------------------------------------------------------------
@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer: parameters (``lr`` first), its update rule and how many state arrays.

    ``kind`` selects the rule in :func:`engine.kernels.optim.fused_step` and ``hyper(hp)``
    gives the rule's constants after η and t, in the order that kernel documents, from the
    validated hyper-parameters ``hp``. ``state`` names the per-parameter arrays (the keys of
    the saved state, as in torch). ``check(hp)`` returns a message for combinations a single
    parameter cannot express; ``torch(hp)`` gives the equivalent ``torch.optim`` class name
    and keyword arguments.
    """

    name: str
    help: str
    params: tuple[ParamSpec, ...]
    kind: int
    hyper: Callable[[Hyper], tuple[float, ...]]
    state: tuple[str, ...] = ()
    check: Callable[[Hyper], str | None] | None = None
    torch: Callable[[Hyper], tuple[str, dict[str, Any]]] | None = None

    def defaults(self) -> dict[str, Any]:
        return {s.name: s.default for s in self.params}


def _lr(default: float) -> ParamSpec:
    return ParamSpec("lr", "float", default, "Learning rate η: the step size.", min=0.0, max=1e6,
                     log_scale=True)


def _eps(default: float) -> ParamSpec:
    return ParamSpec("eps", "float", default, "ε added to the denominator so it is never 0.",
                     min=0.0, max=1.0, log_scale=True)


def _momentum(default: float,
              help: str = "Momentum μ: the fraction of the previous step kept (0: none).") -> ParamSpec:
    return ParamSpec("momentum", "float", default, help, min=0.0, max=1.0)


BETA1 = ParamSpec("beta1", "float", 0.9, "β1: decay of the running mean of gradients (first moment).",
                  min=0.0, max=1.0)
BETA2 = ParamSpec("beta2", "float", 0.999, "β2: decay of the running mean of squared gradients.",
                  min=0.0, max=1.0)


def _sgd_hyper(nesterov: bool | None) -> Callable[[Hyper], tuple[float, ...]]:
    return lambda hp: (hp["momentum"], float(hp["nesterov"] if nesterov is None else nesterov))


def _adam_hyper(hp: Hyper) -> tuple[float, ...]:
    return hp["beta1"], hp["beta2"], hp["eps"], hp.get("weight_decay", 0.0)


def _nesterov_needs_momentum(hp: Hyper) -> str | None:
    if hp.get("nesterov", True) and hp["momentum"] == 0.0:
        return "Nesterov momentum needs 'momentum' > 0 (e.g. 0.9); set it or turn 'nesterov' off"
    return None


def _betas_below_one(hp: Hyper) -> str | None:
    for key in ("beta1", "beta2"):
        if hp[key] >= 1.0:
            return f"parameter '{key}' = {hp[key]!r} must be below 1 (e.g. 0.9 / 0.999)"
    return None


def _torch_sgd(hp: Hyper, nesterov: bool | None) -> tuple[str, dict[str, Any]]:
    return "SGD", {"lr": hp["lr"], "momentum": hp["momentum"],
                   "nesterov": hp["nesterov"] if nesterov is None else nesterov}


_SGD_HELP = ("p ← p − η v with v ← μ v + g (plain SGD when μ = 0); Nesterov: p ← p − η (g + μ v). "
             "As torch.optim.SGD with dampening 0.")

OPTIMIZERS: dict[str, OptimizerSpec] = {}


def _register(spec: OptimizerSpec) -> None:
    if spec.name in OPTIMIZERS:
        raise ValueError(f"optimizer {spec.name!r} declared twice")
    if not spec.params or spec.params[0].name != "lr":
        raise ValueError(f"optimizer {spec.name!r}: 'lr' must be the first parameter")
    OPTIMIZERS[spec.name] = spec


_register(OptimizerSpec(
    "sgd", "Stochastic gradient descent, optionally with (Nesterov) momentum. " + _SGD_HELP,
    (_lr(0.01), _momentum(0.0), ParamSpec("nesterov", "bool", False, "Use Nesterov momentum (needs μ > 0).")),
    K.SGD, _sgd_hyper(None), ("momentum_buffer",),
    check=lambda hp: _nesterov_needs_momentum(hp) if hp["nesterov"] else None,
    torch=lambda hp: _torch_sgd(hp, None)))
_register(OptimizerSpec(
    "momentum", "SGD with classical (heavy-ball) momentum, μ = 0.9 by default. " + _SGD_HELP,
    (_lr(0.01), _momentum(0.9)), K.SGD, _sgd_hyper(False), ("momentum_buffer",),
    torch=lambda hp: _torch_sgd(hp, False)))
_register(OptimizerSpec(
    "nesterov", "SGD with Nesterov momentum (looks ahead along the velocity), μ = 0.9 by default. "
    + _SGD_HELP,
    (_lr(0.01), _momentum(0.9, "Momentum μ (must be > 0).")), K.SGD, _sgd_hyper(True),
    ("momentum_buffer",), check=_nesterov_needs_momentum, torch=lambda hp: _torch_sgd(hp, True)))
_register(OptimizerSpec(
    "adagrad", "AdaGrad: per-weight rates that shrink with the accumulated squared gradient. "
    "s ← s + g²; p ← p − η' g / (√s + ε) with η' = η / (1 + (t−1)·lr_decay). As torch.optim.Adagrad.",
    (_lr(0.01), ParamSpec("lr_decay", "float", 0.0, "Decay of η with the step count t.", min=0.0, max=10.0),
     _eps(1e-10)),
    K.ADAGRAD, lambda hp: (hp["lr_decay"], hp["eps"]), ("sum",),
    torch=lambda hp: ("Adagrad", {"lr": hp["lr"], "lr_decay": hp["lr_decay"], "eps": hp["eps"]})))
_register(OptimizerSpec(
    "rmsprop", "RMSProp: divides by a running RMS of recent gradients. v ← α v + (1−α) g²; "
    "p ← p − η g / (√v + ε) (centered: √(v − m²) with m the running mean of g; momentum: "
    "b ← μ b + g/(√v + ε), p ← p − η b). As torch.optim.RMSprop.",
    (_lr(0.01), ParamSpec("alpha", "float", 0.99, "α: decay of the running mean of squared gradients.",
                          min=0.0, max=1.0),
     _eps(1e-8), _momentum(0.0),
     ParamSpec("centered", "bool", False, "Normalise by the running variance instead of the mean square.")),
    K.RMSPROP, lambda hp: (hp["alpha"], hp["eps"], hp["momentum"], float(hp["centered"])),
    ("square_avg", "grad_avg", "momentum_buffer"),
    torch=lambda hp: ("RMSprop", {"lr": hp["lr"], "alpha": hp["alpha"], "eps": hp["eps"],
                                  "momentum": hp["momentum"], "centered": hp["centered"]})))
_register(OptimizerSpec(
    "adam", "Adam: momentum on g and per-weight scaling by the RMS of g, both bias-corrected. "
    "m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; p ← p − η/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε). "
    "As torch.optim.Adam.",
    (_lr(0.001), BETA1, BETA2, _eps(1e-8)), K.ADAM, _adam_hyper, ("exp_avg", "exp_avg_sq"),
    check=_betas_below_one,
    torch=lambda hp: ("Adam", {"lr": hp["lr"], "betas": (hp["beta1"], hp["beta2"]), "eps": hp["eps"]})))
_register(OptimizerSpec(
    "adamw", "AdamW: Adam with decoupled weight decay p ← p (1 − η λ) applied before the Adam step "
    "(not added to the gradient, so it is not rescaled by √v). As torch.optim.AdamW.",
    (_lr(0.001), BETA1, BETA2, _eps(1e-8),
     ParamSpec("weight_decay", "float", 0.01, "λ: decoupled decay of every parameter per step.",
               min=0.0, max=10.0)),
    K.ADAM, _adam_hyper, ("exp_avg", "exp_avg_sq"), check=_betas_below_one,
    torch=lambda hp: ("AdamW", {"lr": hp["lr"], "betas": (hp["beta1"], hp["beta2"]), "eps": hp["eps"],
                                "weight_decay": hp["weight_decay"]})))


def _coerce(kind: str, name: str, specs: tuple[ParamSpec, ...], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with ``given`` (minus ``name``), coerced; TrainingError names the culprit."""
    by_name = {s.name: s for s in specs}
    out: dict[str, Any] = {s.name: s.default for s in specs}
    for key, value in given.items():
        if key == "name":
            continue
        if key not in by_name:
            known = ", ".join(by_name) or "none"
            raise TrainingError(f"{kind} '{name}' has no parameter '{key}' (it has {known})")
        if value is None and by_name[key].default is None:
            continue
        try:
            out[key] = by_name[key].coerce(value, f"{kind} '{name}'")
        except ParamError as err:
            raise TrainingError(str(err)) from None
    return out


def optimizer_spec(config: Any) -> tuple[OptimizerSpec, dict[str, Any]]:
    """The spec named by ``config`` and its validated hyper-parameters (defaults filled in)."""
    if not isinstance(config, Mapping):
        raise TrainingError('the optimizer must be an object like {"name": "adam", "lr": 0.001}')
    name = config.get("name")
    if not isinstance(name, str) or name not in OPTIMIZERS:
        what = "needs a 'name'" if name is None else f"{name!r} is unknown"
        raise TrainingError(f"optimizer {what}; choose one of {', '.join(OPTIMIZERS)}")
    spec = OPTIMIZERS[name]
    hp = _coerce("optimizer", name, spec.params, config)
    problem = spec.check(hp) if spec.check else None
    if problem:
        raise TrainingError(f"optimizer '{name}': {problem}")
    return spec, hp


class Optimizer:
    """A spec bound to a validated config, its state arrays and the step count ``t``."""

    def __init__(self, config: Mapping[str, Any], n_params: int, dtype: Any) -> None:
        self.spec, self.hparams = optimizer_spec(config)
        self.name = self.spec.name
        self.n_params = int(n_params)
        self.dtype = np.dtype(dtype)
        self.base_lr: float = float(self.hparams["lr"])
        # one row per state array (at least one, so the kernel always gets a 2-D array)
        self._state = np.zeros((max(len(self.spec.state), 1), self.n_params), self.dtype)
        self.state: State = tuple(self._state[: len(self.spec.state)])
        self._hp = np.array([0.0, 0.0, *self.spec.hyper(self.hparams)], np.float64)
        self._whole = np.array([0, self.n_params], np.int64)
        self._norm = np.zeros(1, np.float64)
        self.t = 0

    def config(self) -> dict[str, Any]:
        """The full config (defaults filled in), JSON-ready."""
        return {"name": self.name, **self.hparams}

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float, *, offsets: np.ndarray | None = None,
             norms: np.ndarray | None = None, grad_scale: float = 1.0, apply: bool = True) -> bool:
        """One in-place update of ``params`` from ``grads`` with learning rate ``lr``.

        In the same pass over the buffers (:func:`engine.kernels.optim.fused_step`) the
        gradient is first scaled by ``grad_scale`` (the clipping factor; written back into
        ``grads``) and ``norms[k]`` receives ‖grads[offsets[k]:offsets[k+1]]‖₂, every node's
        gradient norm. ``apply=False`` computes only that (a step whose loss is not finite).
        Returns whether the update was applied; a non-finite gradient stops it at the block
        where it appears (later elements keep their values) and the step does not count.
        """
        if params.ndim != 1 or params.shape != grads.shape or len(params) != self.n_params \
                or params.dtype != self.dtype or grads.dtype != self.dtype:
            raise ValueError(f"optimizer made for {self.n_params} {self.dtype} parameters got arrays of shape "
                             f"{params.shape} ({params.dtype}) and {grads.shape} ({grads.dtype})")
        if offsets is None:
            offsets, norms = self._whole, self._norm
        elif norms is None or len(norms) != len(offsets) - 1:
            raise ValueError("Optimizer.step: norms needs one entry per segment of offsets")
        t = self.t + 1
        hp = self._hp
        hp[0], hp[1] = lr, t
        applied = K.fused_step(self.spec.kind, hp, params, grads, self._state, offsets, norms,
                               float(grad_scale), bool(apply))
        if applied:
            self.t = t
        return bool(applied)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the step count (``step``) and the state arrays, keyed by torch's names."""
        out = {"step": np.array(self.t, np.int64)}
        out.update({k: a.copy() for k, a in zip(self.spec.state, self.state, strict=True)})
        return out

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Continue from a saved state; refuses one from another optimizer or model size."""
        expected = {"step", *self.spec.state}
        if set(d) != expected:
            raise TrainingError(
                f"the saved optimizer state has {', '.join(sorted(d)) or 'nothing'} but '{self.name}' "
                f"keeps {', '.join(sorted(expected))}; it was saved by another optimizer — "
                "continue with a fresh optimizer state or switch back")
        step = np.asarray(d["step"])
        if step.shape != () or not np.issubdtype(step.dtype, np.integer) or int(step) < 0:
            raise TrainingError(f"the saved optimizer step count {d['step']!r} is not a non-negative integer")
        arrays = [np.asarray(d[k]) for k in self.spec.state]
        for key, a in zip(self.spec.state, arrays, strict=True):
            if a.shape != (self.n_params,):
                raise TrainingError(
                    f"the saved optimizer state '{key}' has shape {a.shape} but the model has "
                    f"{self.n_params} parameters; the graph changed — use a fresh optimizer state")
        for dst, src in zip(self.state, arrays, strict=True):
            dst[:] = src
        self.t = int(step)


def make_optimizer(config: Mapping[str, Any], n_params: int, dtype: Any) -> Optimizer:
    """The trainer's entry point: validate ``config`` and allocate state for ``n_params``."""
    return Optimizer(config, n_params, dtype)


def torch_equivalent(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(class name in torch.optim, keyword arguments)`` doing the same updates as ``config``."""
    spec, hp = optimizer_spec(config)
    assert spec.torch is not None
    return spec.torch(hp)


# ---- learning-rate schedules -----------------------------------------------------------------
Rate = Callable[[Hyper, float, float, int], float]


@dataclass(frozen=True)
class ScheduleSpec:
    """A learning-rate schedule: ``rate(p, η0, e, total_epochs)`` at fractional epoch e."""

    name: str
    help: str
    params: tuple[ParamSpec, ...]
    rate: Rate = lambda p, lr0, e, total: lr0


WARMUP = ParamSpec("warmup", "float", 0.0, "Epochs of linear warm-up: the rate is scaled by e/warmup "
                   "until then, rising from 0 (0: no warm-up).", min=0.0, max=1e6)
FINAL_LR = ParamSpec("final_lr", "float", 0.0, "η_T: the rate reached at the end of the decay.",
                     min=0.0, max=1e6, log_scale=True)
HORIZON = ParamSpec("epochs", "int", None, "T: epochs over which to decay (default: all training epochs).",
                    min=1, max=1_000_000)


def _horizon(p: Hyper, total: int) -> float:
    return float(max(p.get("epochs") or total, 1))


def _linear(p: Hyper, lr0: float, e: float, total: int) -> float:
    T, lrT = _horizon(p, total), p["final_lr"]
    return (1.0 - e / T) * lr0 + (e / T) * lrT if e < T else lrT


def _cosine(p: Hyper, lr0: float, e: float, total: int) -> float:
    T, lrT = _horizon(p, total), p["final_lr"]
    return lrT + 0.5 * (lr0 - lrT) * (1.0 + math.cos(math.pi * e / T)) if e < T else lrT


SCHEDULES: dict[str, ScheduleSpec] = {s.name: s for s in (
    ScheduleSpec("constant", "η = η0 throughout (optionally after a warm-up).", (WARMUP,)),
    ScheduleSpec("step", "Step decay: η = η0 · γ^⌊e / every⌋ (multiply by γ every few epochs).",
                 (ParamSpec("every", "int", 10, "Epochs between two decays.", min=1, max=1_000_000),
                  ParamSpec("gamma", "float", 0.5, "γ: factor applied at each decay.", min=0.0, max=1.0),
                  WARMUP),
                 lambda p, lr0, e, total: lr0 * p["gamma"] ** math.floor(e / p["every"])),
    ScheduleSpec("exponential", "Exponential decay: η = η0 · γ^e (smoothly, every step).",
                 (ParamSpec("gamma", "float", 0.95, "γ: factor per epoch.", min=0.0, max=1.0), WARMUP),
                 lambda p, lr0, e, total: lr0 * p["gamma"] ** e),
    ScheduleSpec("linear", "Linear decay: η = (1 − e/T) η0 + (e/T) η_T for e < T, then η_T.",
                 (FINAL_LR, HORIZON, WARMUP), _linear),
    ScheduleSpec("cosine", "Cosine annealing: η = η_T + ½ (η0 − η_T)(1 + cos(π e / T)) for e < T, then η_T.",
                 (FINAL_LR, HORIZON, WARMUP), _cosine),
)}


def validate_schedule(schedule: Any) -> dict[str, Any]:
    """The schedule config with defaults filled in; ``None``/``{}`` mean constant.

    A bare name (``"cosine"``) is accepted for ``{"name": "cosine"}``. Raises TrainingError
    naming the schedule and parameter at fault.
    """
    if schedule is None or (isinstance(schedule, Mapping) and not schedule):
        schedule = {"name": "constant"}
    elif isinstance(schedule, str):
        schedule = {"name": schedule}
    if not isinstance(schedule, Mapping):
        raise TrainingError('training \'schedule\' must be an object like {"name": "step", "every": 10, '
                            '"gamma": 0.5}')
    name = schedule.get("name")
    if not isinstance(name, str) or name not in SCHEDULES:
        what = "needs a 'name'" if name is None else f"{name!r} is unknown"
        raise TrainingError(f"schedule {what}; choose one of {', '.join(SCHEDULES)}")
    p = _coerce("schedule", name, SCHEDULES[name].params, schedule)
    return {"name": name, **{k: v for k, v in p.items() if v is not None}}


def lr_at(schedule: Mapping[str, Any] | None, base_lr: float, epoch: float, total_epochs: int) -> float:
    """Learning rate at fractional epoch ``epoch`` (= step / steps per epoch).

    ``schedule`` is a validated config (see :func:`validate_schedule`); missing parameters
    take their defaults. Warm-up multiplies the scheduled rate by ``epoch / warmup`` while
    ``epoch < warmup``.
    """
    if not schedule:
        return float(base_lr)
    name = schedule.get("name", "constant")
    spec = SCHEDULES.get(name)
    if spec is None:
        raise TrainingError(f"schedule {name!r} is unknown; choose one of {', '.join(SCHEDULES)}")
    p = {s.name: s.default for s in spec.params}
    p.update(schedule)
    lr = spec.rate(p, float(base_lr), float(epoch), int(total_epochs))
    warmup = p["warmup"]
    if warmup > 0 and epoch < warmup:
        lr *= epoch / warmup
    return float(lr)


# ---- clipping, weight decay, per-node norms ----------------------------------------------------
def clip_by_value(grads: np.ndarray, limit: float) -> None:
    """Clamp every gradient to [−limit, limit] in place (NaN stays NaN), as
    ``torch.nn.utils.clip_grad_value_``: one vectorised pass over the flat gradients."""
    np.clip(grads, -limit, limit, out=grads)


def clip_by_global_norm(grads: np.ndarray, max_norm: float) -> float:
    """Rescale ``grads`` in place so their L2 norm is at most ``max_norm``; returns the norm before.

    As ``torch.nn.utils.clip_grad_norm_``: g ← g · max_norm/(‖g‖ + 10⁻⁶) when that factor is < 1.
    """
    return float(K.clip_global_norm(grads, float(max_norm)))


def global_norm(grads: np.ndarray) -> float:
    """‖g‖₂ of the whole gradient buffer (float64 accumulation), without changing it."""
    return math.sqrt(K.sum_squares(grads))


def clip_factor(norm: float, max_norm: float) -> float:
    """The factor :func:`clip_by_global_norm` scales by: max_norm/(‖g‖ + 10⁻⁶) if < 1, else 1.

    A non-finite ‖g‖ gives 1 (the gradient is left as it is, so the divergence shows).
    """
    if not math.isfinite(norm):
        return 1.0
    return min(1.0, max_norm / (norm + 1e-6))


def apply_weight_decay(params: np.ndarray, grads: np.ndarray, mask: np.ndarray,
                       l1: float, l2: float) -> float:
    """Add the L1/L2 penalty's gradient to ``grads`` on masked weights; return the penalty.

    g += λ₂ w + λ₁ sign(w) where mask = 1 (e.g. Dense ``W``; biases and BatchNorm have 0);
    penalty = λ₁ Σ|w| + ½ λ₂ Σ w², which the trainer adds to the reported loss.
    """
    if not (params.shape == grads.shape == mask.shape):
        raise ValueError(f"weight decay: shapes differ {params.shape}, {grads.shape}, {mask.shape}")
    if not l1 and not l2:
        return 0.0
    return float(K.weight_decay(params, grads, mask, float(l1), float(l2)))


def segment_norms(grads: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """out[k] = ‖grads[offsets[k]:offsets[k+1]]‖₂: every node's gradient norm in one call."""
    k = offsets.shape[0] - 1
    if out.shape != (k,) or (k > 0 and (offsets[0] < 0 or offsets[-1] > grads.shape[0])):
        raise ValueError(f"segment_norms: {offsets.shape[0]} offsets need out of shape ({k},) "
                         f"within {grads.shape[0]} gradients")
    K.segment_l2_norms(grads, offsets, out)


# ---- generated reference ---------------------------------------------------------------------
def _default(spec: ParamSpec) -> str:
    if spec.default is None:
        return "—"
    if isinstance(spec.default, bool):
        return "true" if spec.default else "false"
    return f"{spec.default:g}" if isinstance(spec.default, float) else str(spec.default)


def _param_table(params: tuple[ParamSpec, ...]) -> list[str]:
    out = ["| parameter | default | allowed | meaning |", "|---|---|---|---|"]
    out += [f"| `{s.name}` | {_default(s)} | {s.describe_range()} | {s.help} |" for s in params]
    return out + [""]


def optimizers_markdown() -> str:
    """``docs/training.md``: the optimizer and schedule reference, generated from the specs."""
    out = ["# Training reference: optimizers and schedules", "",
           "Generated from the declarations in `engine/optim.py` by `python -m engine.optim`; "
           "do not edit by hand.", "",
           "## Optimizers", "",
           'Set in the graph file\'s training block, e.g. `"optimizer": {"name": "adam", "lr": 0.001}`; '
           "parameters left out take their defaults. Every update is one Numba call over all the "
           "model's parameters and follows `torch.optim` exactly (g is the gradient, t the step "
           "number from 1), so the exported PyTorch `train.py` takes the same steps.", "",
           "| optimizer | PyTorch | state per weight | in short |", "|---|---|---|---|"]
    for spec in OPTIMIZERS.values():
        assert spec.torch is not None
        cls = spec.torch(spec.defaults())[0]
        out.append(f"| `{spec.name}` | `torch.optim.{cls}` | {', '.join(spec.state)} | "
                   f"{spec.help.split('. ')[0]}. |")
    out.append("")
    for spec in OPTIMIZERS.values():
        out += [f"### {spec.name}", "", spec.help, ""] + _param_table(spec.params)
    out += ["## Learning-rate schedules", "",
            'Optional, e.g. `"schedule": {"name": "cosine", "final_lr": 0.0001, "warmup": 2}`. '
            "η0 is the optimizer's `lr`; e is the fractional epoch (step / steps per epoch), so "
            "the rate changes every step. Every schedule accepts `warmup`: while e < warmup the "
            "rate is the scheduled value times e / warmup (starting from 0). No schedule means "
            "`constant`.", ""]
    for spec in SCHEDULES.values():
        out += [f"### {spec.name}", "", spec.help, ""] + _param_table(spec.params)
    out += ["## Around the update", "",
            "Each training step, after backpropagation and before the optimizer:", "",
            "1. **Weight decay** (`weight_decay`: λ₂, or `{\"l1\": λ₁, \"l2\": λ₂}`): "
            "g += λ₂ w + λ₁ sign(w) on weights only (Dense `W`, convolution kernels; not biases "
            "or BatchNorm), and λ₁ Σ|w| + ½ λ₂ Σ w² is added to the reported loss. AdamW's own "
            "`weight_decay` is separate and decoupled.",
            "2. **Gradient clipping**, by value and then by norm, each optional: `clip_value` "
            "clamps every gradient to [−clip_value, clip_value], as "
            "`torch.nn.utils.clip_grad_value_`; `clip_norm`: if the global L2 norm ‖g‖ of all "
            "gradients exceeds it, g is scaled by clip_norm / (‖g‖ + 10⁻⁶), as "
            "`torch.nn.utils.clip_grad_norm_`. Either keeps an exploding recurrent network "
            "(`examples/rnn_exploding_clipped.json`) from taking one enormous step.",
            "3. **Gradient norms**: the L2 norm of each node's parameter gradients (after decay "
            "and clipping) is sent as `grad_norms` in the step metrics — the curves that show "
            "vanishing or exploding gradients.", "",
            "Clipping's scaling, the norms and the update are one pass over the parameters: block "
            "by block, the gradient is scaled, its squares are added to its node's norm (in "
            "float64), and the optimizer updates the block while it is still in cache. The "
            "update's arithmetic is in the model's dtype (float32 by default, like torch.optim; "
            "float64 models stay float64 throughout). A step whose loss is not finite updates "
            "nothing; a non-finite gradient stops the update at the block where it appears (the "
            "run then ends as diverged, naming the layer).", ""]
    return "\n".join(out)


def main() -> int:
    target = Path(__file__).resolve().parent.parent / "docs" / "training.md"
    target.write_text(optimizers_markdown(), encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
