"""Compile a Graph into a trainable Model.

All trainable tensors live in one flat array (``Model.params``) and their gradients in
another (``Model.grads``); each layer sees views of its slice. This is what makes a training
step cheap around the layers: the optimizer update, weight decay, clipping and the
per-node gradient norms are each one Numba call over the flat arrays, whatever the depth.

Execution is a list of :class:`NodeRuntime` in topological order (the readable general
path). A graph that is a plain chain of Dense and element-wise activations may also run on
the fused whole-step path of :mod:`engine.fused` (same numbers, one kernel call per step).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.errors import GraphError, ModelFileError, TrainingError
from engine.fused import FusedChain
from engine.graph import Graph
from engine.layers.base import NodeRuntime, Shape
from engine.losses import loss_and_grad

DTYPES = {"float32": np.float32, "float64": np.float64}


def resolve_dtype(name: Any) -> np.dtype:
    if isinstance(name, str) and name in DTYPES:
        return np.dtype(DTYPES[name])
    try:
        dt = np.dtype(name)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TrainingError(f"dtype must be float32 or float64, got {name!r}")
    return dt


class Model:
    """A compiled graph: shapes, flat parameters, and forward/backward over the nodes."""

    def __init__(self, graph: Graph, dtype: Any = np.float32, seed: int = 0,
                 loss: str | None = None, input_shape: Shape | None = None, fused: bool = True) -> None:
        self.graph = graph.copy()
        self.dtype = resolve_dtype(dtype)
        problems = self.graph.problems(require_loss=False)
        if problems:
            raise GraphError(str(problems[0]), node=problems[0].node)
        self.input_id = self.graph.input_nodes()[0]
        self.output_id = self.graph.output_nodes()[0]
        overrides = {self.input_id: tuple(input_shape)} if input_shape else None
        report = self.graph.infer_shapes(overrides)
        if report.problems:
            raise GraphError(str(report.problems[0]), node=report.problems[0].node)
        self.shapes: dict[str, Shape] = {k: v for k, v in report.shapes.items() if v is not None}
        self.order = self.graph.topological_order()
        self.loss = loss if loss is not None else self.graph.training.get("loss", "mse")
        self._sources = {nid: self.graph.inputs_of(nid) for nid in self.order}
        self._layout(report.in_shapes)
        self.rng = np.random.default_rng(seed + 1)
        for rt in self.runtimes.values():
            rt.rng = self.rng
        self.loss_from = self._fused_loss_source()
        self.outputs: dict[str, np.ndarray] = {}
        self.fused: FusedChain | None = None
        self.init_weights(seed)
        if fused:
            self.fused = FusedChain.build(self)

    # -- layout -----------------------------------------------------------------------
    def _layout(self, in_shapes: Mapping[str, list]) -> None:
        """Place every trainable tensor in the flat buffers, in topological order."""
        sizes: list[tuple[str, str, Shape]] = []
        for nid in self.order:
            node = self.graph.nodes[nid]
            for name, shape in node.layer.weights(node.params, in_shapes[nid]).items():
                sizes.append((nid, name, tuple(shape)))
        total = sum(math.prod(s) for _, _, s in sizes)
        self.params = np.zeros(total, self.dtype)
        self.grads = np.zeros(total, self.dtype)
        self.decay_mask = np.zeros(total, np.uint8)
        self.slices: dict[str, tuple[int, int]] = {}
        self.runtimes: dict[str, NodeRuntime] = {}
        data_fed = {self.input_id}
        for nid in self.order:
            node = self.graph.nodes[nid]
            self.runtimes[nid] = NodeRuntime(
                nid, node.layer, dict(node.params), list(in_shapes[nid]), self.shapes[nid], self.dtype,
                need_input_grad=not all(s in data_fed for s in self._sources[nid]) or not self._sources[nid],
            )
        offset = 0
        starts: dict[str, int] = {}
        for nid, name, shape in sizes:
            n = math.prod(shape)
            rt = self.runtimes[nid]
            rt.W[name] = self.params[offset:offset + n].reshape(shape)
            rt.G[name] = self.grads[offset:offset + n].reshape(shape)
            if name in rt.type.decay:
                self.decay_mask[offset:offset + n] = 1
            starts.setdefault(nid, offset)
            offset += n
            self.slices[nid] = (starts[nid], offset)
        self.param_nodes = [nid for nid in self.order if nid in self.slices]
        bounds = [self.slices[nid][0] for nid in self.param_nodes] + [total]
        self.node_offsets = np.asarray(bounds, np.int64)
        for nid in self.order:
            rt = self.runtimes[nid]
            node = self.graph.nodes[nid]
            if rt.type.init_buffers is not None:
                for name, value in rt.type.init_buffers(node.params, rt.in_shapes).items():
                    rt.B[name] = np.array(value, dtype=self.dtype)

    def _fused_loss_source(self) -> str:
        """The node whose output the loss reads: the output layer's input if the loss absorbs it
        (``LayerType.absorbed_by``: a terminal Softmax under cross-entropy, sigmoid under BCE)."""
        out = self.graph.nodes[self.output_id]
        if self.loss in out.layer.absorbed_by(out.params):
            src = self._sources[self.output_id][0]
            if src is not None:
                return src
        return self.output_id

    @property
    def output_shape(self) -> Shape:
        return self.shapes[self.output_id]

    @property
    def loss_shape(self) -> Shape:
        return self.shapes[self.loss_from]

    @property
    def outputs_probabilities(self) -> bool:
        """Whether the graph's output is a probability (for the accuracy threshold)."""
        return self.loss_from != self.output_id or self.loss in ("mse", "mae")

    def param_count(self) -> int:
        return int(self.params.size)

    # -- weights ----------------------------------------------------------------------
    def init_weights(self, seed: int) -> None:
        """Fresh initialisation from ``seed`` (same seed, same weights, bit for bit)."""
        rng = np.random.default_rng(seed)
        for nid in self.order:
            rt = self.runtimes[nid]
            if rt.type.init is not None and rt.W:
                values = rt.type.init(rt.p, rt.in_shapes, rng)
                for name, view in rt.W.items():
                    view[...] = values[name]
            if rt.type.init_buffers is not None:
                for name, value in rt.type.init_buffers(rt.p, rt.in_shapes).items():
                    rt.B[name][...] = value
        self.rng = np.random.default_rng(seed + 1)
        for rt in self.runtimes.values():
            rt.rng = self.rng
        self.grads[:] = 0

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"<node>.<name>": array}`` for weights and buffers (the model file's weights.npz)."""
        out: dict[str, np.ndarray] = {}
        for nid in self.order:
            rt = self.runtimes[nid]
            for name, arr in list(rt.W.items()) + list(rt.B.items()):
                out[f"{nid}.{name}"] = arr.copy()
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Copy arrays in, refusing missing keys and wrong shapes with a clear message."""
        expected = {f"{nid}.{n}": a for nid in self.order
                    for n, a in list(self.runtimes[nid].W.items()) + list(self.runtimes[nid].B.items())}
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        if missing or extra:
            raise ModelFileError(
                "weights do not match the graph"
                + (f"; missing: {', '.join(missing[:5])}" if missing else "")
                + (f"; unexpected: {', '.join(extra[:5])}" if extra else "")
            )
        for key, target in expected.items():
            value = np.asarray(state[key])
            if value.shape != target.shape:
                raise ModelFileError(f"weight '{key}' has shape {value.shape}, the graph needs {target.shape}")
            if not np.all(np.isfinite(value)):
                raise ModelFileError(f"weight '{key}' contains NaN or infinite values")
            target[...] = value

    # -- execution --------------------------------------------------------------------
    def set_training(self, training: bool) -> None:
        for rt in self.runtimes.values():
            rt.training = training

    def forward(self, X: np.ndarray, training: bool = False, stop_at: str | None = None) -> np.ndarray:
        """Run the nodes in order; keeps every node's output in ``self.outputs``."""
        self.set_training(training)
        outs = self.outputs
        outs.clear()
        for nid in self.order:
            rt = self.runtimes[nid]
            srcs = self._sources[nid]
            xs = [outs[s] for s in srcs] if srcs else [X]  # type: ignore[index]
            outs[nid] = rt.type.forward(rt, xs)
            if nid == stop_at:
                return outs[nid]
        return outs[self.output_id]

    def backward(self, dout: np.ndarray, start: str | None = None) -> None:
        """Back-propagate ∂L/∂(output of ``start``) through the graph into ``self.grads``.

        A node's upstream gradient is the sum over the edges leaving it (fan-out).
        """
        start = start or self.output_id
        self.grads[:] = 0
        pending: dict[str, np.ndarray] = {start: dout}
        begin = self.order.index(start)
        for nid in reversed(self.order[: begin + 1]):
            dy = pending.pop(nid, None)
            srcs = self._sources[nid]
            if dy is None or not srcs:
                continue
            rt = self.runtimes[nid]
            dxs = rt.type.backward(rt, dy)
            for src, dx in zip(srcs, dxs, strict=True):
                if dx is None or src == self.input_id:
                    continue
                if src in pending:
                    pending[src] = pending[src] + dx
                else:
                    pending[src] = dx

    def loss_and_grads(self, X: np.ndarray, T: np.ndarray) -> float:
        """One training forward and backward: returns the loss, fills ``self.grads``."""
        if self.fused is not None:
            return self.fused.loss_and_grads(X, T)
        z = self.forward(X, training=True)
        if self.loss_from != self.output_id:
            z = self.outputs[self.loss_from]
        dz = np.empty_like(z)
        loss = loss_and_grad(self.loss, z, T, dz)
        self.backward(dz, self.loss_from)
        return loss

    def predict(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Evaluation-mode outputs of the graph as drawn (a final Softmax gives probabilities)."""
        X = np.asarray(X, dtype=self.dtype)
        if X.shape[1:] != self.shapes[self.input_id]:
            raise TrainingError(
                f"input has shape {X.shape[1:]} per example but Input '{self.input_id}' "
                f"expects {self.shapes[self.input_id]}"
            )
        chunks = [self.forward(X[i:i + batch_size], training=False).copy()
                  for i in range(0, len(X), batch_size)]
        if not chunks:
            return np.zeros((0,) + self.output_shape, self.dtype)
        return np.concatenate(chunks)

    def logits_for_loss(self, X: np.ndarray) -> np.ndarray:
        """Evaluation-mode values the loss reads (logits when a terminal layer is fused)."""
        self.forward(X, training=False)
        return self.outputs[self.loss_from]

    def first_non_finite(self) -> str | None:
        """The first node (in order) whose output or parameter gradient is not finite."""
        for nid in self.order:
            out = self.outputs.get(nid)
            if out is not None and not np.all(np.isfinite(out)):
                return nid
        for nid in self.param_nodes:
            a, b = self.slices[nid]
            if not np.all(np.isfinite(self.grads[a:b])) or not np.all(np.isfinite(self.params[a:b])):
                return nid
        return None


def compile_graph(graph: Graph, dtype: Any = np.float32, seed: int | None = None,
                  input_shape: Shape | None = None, fused: bool = True) -> Model:
    """Validate ``graph`` and build its Model; raises GraphError naming the first problem.

    ``fused=False`` keeps the general node-by-node path even for a plain chain.
    """
    if seed is None:
        seed = int(graph.training.get("seed", 0))
    return Model(graph, dtype=dtype, seed=seed, input_shape=input_shape, fused=fused)
