"""Gradients through time: what the trainer reports about recurrent layers and what the
studio's Through-time view draws, headless.

- :func:`time_grads_events`: for every recurrent node, ‖∂L/∂h_t‖ for each step t of the
  last backward and the largest singular value of its ``Wh`` (the trainer emits them every
  ``stats_every`` steps as ``time_grads`` events; Pascanu et al. 2013: a SimpleRNN's
  gradient through time must vanish while σ_max(Wh) < 1/γ, γ bounding |φ′|).
- :func:`hidden_trace`: for one chosen sequence, the hidden state of every recurrent node
  (units × time) and its gates, e.g. an LSTM's forget gate and its mean over the units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.compiler import Model
from engine.errors import TrainingError
from engine.events import TimeGradsEvent
from engine.layers.recurrent import SLOPE_BOUND, time_gradient_norms, trace


def recurrent_nodes(model: Model) -> list[str]:
    """The model's recurrent nodes in execution order."""
    return [nid for nid in model.order if model.runtimes[nid].type.category == "recurrent"]


def sigma_max(W: np.ndarray) -> float:
    """The largest singular value of W, √λ_max(W Wᵀ) (an H×H symmetric eigenproblem, cheaper
    than the SVD of the H × gates·H matrix)."""
    W = np.asarray(W, np.float64)
    gram = W @ W.T if W.shape[0] <= W.shape[1] else W.T @ W
    return float(np.sqrt(max(np.linalg.eigvalsh(gram)[-1], 0.0)))


def time_grads_events(model: Model, step: int) -> list[TimeGradsEvent]:
    """One event per recurrent node that has been through a backward (none otherwise)."""
    events = []
    for nid in recurrent_nodes(model):
        rt = model.runtimes[nid]
        norms = time_gradient_norms(rt)
        if norms is None:
            continue
        gamma = SLOPE_BOUND[rt.p["activation"]] if rt.type.name == "SimpleRNN" else None
        events.append(TimeGradsEvent(step, nid, norms.tolist(), sigma_max(rt.W["Wh"]), rt.type.name, gamma))
    return events


@dataclass
class Trace:
    """One sequence through one recurrent node: ``hidden`` (units × time), each gate's values
    (units × time, by gate name: LSTM i, f, g, o; GRU r, z, n) and, for an LSTM, the forget
    gate's mean over the units at each step (``forget_mean``, time)."""

    node: str
    hidden: np.ndarray
    gates: dict[str, np.ndarray]
    forget_mean: np.ndarray | None


def hidden_trace(model: Model, x: np.ndarray, node: str | None = None) -> dict[str, Trace]:
    """Run one sequence ``x`` (T, F), already preprocessed, through ``model`` in evaluation
    mode and return the trace of every recurrent node (or only ``node``).

    It is a forward like ``predict``: call it on a model no other thread is training (the
    studio's preview model, which restores a snapshot of the training model).
    """
    wanted = recurrent_nodes(model) if node is None else [node]
    if node is not None and node not in recurrent_nodes(model):
        raise TrainingError(f"node '{node}' is not a recurrent layer; recurrent nodes: "
                            f"{', '.join(recurrent_nodes(model)) or 'none'}")
    expected = model.shapes[model.input_id]
    x = np.asarray(x)
    if x.shape != expected:
        raise TrainingError(f"the sequence has shape {x.shape} but Input '{model.input_id}' expects {expected}")
    model.forward(np.ascontiguousarray(x[None], dtype=model.dtype), training=False)
    out = {}
    for nid in wanted:
        t = trace(model.runtimes[nid], 0)
        out[nid] = Trace(nid, t["hidden"], t["gates"], t["forget_mean"])
    return out
