"""Compile a Graph into a trainable Model.

All trainable tensors live in one flat array (``Model.params``) and their gradients in
another (``Model.grads``); persistent layer state (BatchNorm running statistics) in a third
(``Model.state``); each layer sees views of its slices. This is what makes a training
step cheap around the layers: the optimizer update, weight decay, clipping and the
per-node gradient norms are each one Numba call over the flat arrays, whatever the depth.

Execution is a list of :class:`NodeRuntime` in topological order (the readable general
path). A graph that is a plain chain of Dense and element-wise activations may also run on
the fused whole-step path of :mod:`engine.fused` (same numbers, one kernel call per step).
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import GraphError, ModelFileError, TrainingError
from engine.fused import FusedChain
from engine.graph import Graph, PortRef
from engine.layers import batch_halves
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


@dataclass
class Snapshot:
    """A copy of everything a model has learned: parameters, layer state and, optionally,
    the position of its random generator (dropout masks).

    Early stopping keeps the best epoch's snapshot, the studio's preview model takes one of
    the training model, and the trainer takes one around the forward it re-runs to locate a
    divergence, so that looking never changes what is being looked at.
    """

    params: np.ndarray
    state: np.ndarray
    rng: dict[str, Any] | None = None


#: Evaluation and prediction run in chunks of at most this many bytes of activations.
EVAL_CHUNK_BYTES = 64 << 20
#: Kept least-recently-used scratch sets (batch sizes): training, last partial, evaluation.
SCRATCH_SIZES = 3


class Model:
    """A compiled graph: shapes, flat parameters and state, forward/backward over the nodes.

    Outputs and pending gradients are keyed by :data:`PortRef` ``(node, port)``, so a layer
    with several output ports (a recurrent layer's sequence and final state) feeds each
    consumer the port it is wired from. ``params``/``grads`` hold every trainable number,
    ``state`` every persistent non-trained one (BatchNorm running statistics); layers see
    views of their slices (``rt.W``, ``rt.G``, ``rt.B``).
    """

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
        self.port_shapes: dict[PortRef, Shape] = {k: v for k, v in report.port_shapes.items() if v is not None}
        self.order = self.graph.topological_order()
        self.ports = {nid: self.graph.nodes[nid].output_ports() for nid in self.order}
        self.output_ref: PortRef = (self.output_id, self.ports[self.output_id][0])
        self.loss = loss if loss is not None else self.graph.training.get("loss", "mse")
        self._sources: dict[str, list[PortRef]] = {
            nid: [s for s in self.graph.inputs_of(nid) if s is not None] for nid in self.order}
        self._layout(report.in_shapes)
        self.rng = np.random.default_rng(seed + 1)
        for rt in self.runtimes.values():
            rt.rng = self.rng
        self.loss_from: PortRef = self._fused_loss_source()
        self.outputs: dict[PortRef, np.ndarray] = {}
        self._scratch: OrderedDict[int, dict[str, dict[str, np.ndarray]]] = OrderedDict()
        self.min_batch = max((rt.type.min_batch for rt in self.runtimes.values()), default=1)
        self.fused: FusedChain | None = None
        self._blas_threads = batch_halves.step_blas_threads(rt.type.category for rt in self.runtimes.values())
        types = [rt.type for rt in self.runtimes.values()]
        #: Whether a training step may run the halves of its batch through the whole graph on
        #: two threads (:meth:`_halves_step`): every layer per-example, and a layer that
        #: splits batches (a convolution), whose graphs this was measured on.
        self.splits_steps = (all(t.per_example for t in types)
                             and bool(batch_halves.SPLITTING.intersection(t.category for t in types)))
        self._twin: Model | None = None
        self._halved = False  # the last training step ran as two halves
        self.init_weights(seed)
        if fused:
            self.fused = FusedChain.build(self)

    # -- layout -----------------------------------------------------------------------
    def _layout(self, in_shapes: Mapping[str, list]) -> None:
        """Place every trainable tensor in the flat buffers, and every state tensor in the
        flat state store, in topological order."""
        sizes: list[tuple[str, str, Shape]] = []
        state_sizes: list[tuple[str, str, Shape]] = []
        for nid in self.order:
            node = self.graph.nodes[nid]
            for name, shape in node.layer.weights(node.params, in_shapes[nid]).items():
                sizes.append((nid, name, tuple(shape)))
            for name, shape in node.layer.buffers(node.params, in_shapes[nid]).items():
                state_sizes.append((nid, name, tuple(shape)))
        total = sum(math.prod(s) for _, _, s in sizes)
        self.params = np.zeros(total, self.dtype)
        self.grads = np.zeros(total, self.dtype)
        self.state = np.zeros(sum(math.prod(s) for _, _, s in state_sizes), self.dtype)
        self.decay_mask = np.zeros(total, np.uint8)
        self.slices: dict[str, tuple[int, int]] = {}
        self.runtimes: dict[str, NodeRuntime] = {}
        data_fed = {self.input_id}
        for nid in self.order:
            node = self.graph.nodes[nid]
            srcs = self._sources[nid]
            self.runtimes[nid] = NodeRuntime(
                nid, node.layer, dict(node.params), list(in_shapes[nid]), self.shapes[nid], self.dtype,
                need_input_grad=not all(s[0] in data_fed for s in srcs) or not srcs,
                out_shapes={port: self.port_shapes[(nid, port)] for port in self.ports[nid]},
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
        offset = 0
        for nid, name, shape in state_sizes:
            n = math.prod(shape)
            self.runtimes[nid].B[name] = self.state[offset:offset + n].reshape(shape)
            offset += n
        self.param_nodes = [nid for nid in self.order if nid in self.slices]
        bounds = [self.slices[nid][0] for nid in self.param_nodes] + [total]
        self.node_offsets = np.asarray(bounds, np.int64)

    def _fused_loss_source(self) -> PortRef:
        """What the loss reads: the output layer's input if the loss absorbs that layer
        (``LayerType.absorbed_by``: a terminal Softmax under cross-entropy, sigmoid under BCE)."""
        out = self.graph.nodes[self.output_id]
        if self.loss in out.layer.absorbed_by(out.params):
            srcs = self._sources[self.output_id]
            if srcs:
                return srcs[0]
        return self.output_ref

    @property
    def output_shape(self) -> Shape:
        return self.shapes[self.output_id]

    @property
    def loss_shape(self) -> Shape:
        return self.port_shapes[self.loss_from]

    @property
    def outputs_probabilities(self) -> bool:
        """Whether the graph's output is a probability (for the accuracy threshold)."""
        return self.loss_from != self.output_ref or self.loss in ("mse", "mae")

    def param_count(self) -> int:
        return int(self.params.size)

    def output_of(self, node_id: str, port: str | None = None) -> np.ndarray | None:
        """The last forward's output of ``node_id`` at ``port`` (default: its primary port)."""
        return self.outputs.get((node_id, port or self.ports[node_id][0]))

    # -- weights and state ------------------------------------------------------------
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

    def snapshot(self, rng: bool = False) -> Snapshot:
        """A copy of parameters and layer state (and the random generator's state if asked)."""
        return Snapshot(self.params.copy(), self.state.copy(),
                        self.rng.bit_generator.state if rng else None)

    def restore(self, snap: Snapshot) -> None:
        """Put back what :meth:`snapshot` copied (from this model or one of the same layout)."""
        if snap.params.shape != self.params.shape or snap.state.shape != self.state.shape:
            raise TrainingError("the snapshot was taken from a model of another layout")
        self.params[...] = snap.params
        self.state[...] = snap.state
        if snap.rng is not None:
            self.rng.bit_generator.state = snap.rng

    def _named_arrays(self) -> dict[str, np.ndarray]:
        """``{"<node>.<name>": view}`` of every parameter and state tensor."""
        return {f"{nid}.{n}": a for nid in self.order
                for n, a in list(self.runtimes[nid].W.items()) + list(self.runtimes[nid].B.items())}

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"<node>.<name>": array}`` for weights and state (the model file's weights.npz)."""
        return {key: arr.copy() for key, arr in self._named_arrays().items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Copy arrays in, refusing missing keys and wrong shapes with a clear message."""
        expected = self._named_arrays()
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

    # -- scratch ----------------------------------------------------------------------
    def _bind_scratch(self, n: int) -> None:
        """Point every layer's ``rt.scratch`` at its arrays for batches of ``n`` examples.

        Allocated the first time a batch size is seen and reused afterwards; the
        :data:`SCRATCH_SIZES` most recently used sizes are kept (training batch, the last
        partial batch, evaluation chunks).
        """
        sets = self._scratch
        key = (n, batch_halves.inside_part())  # inside a half, layers keep the batch whole
        if key in sets:
            sets.move_to_end(key)
        else:
            sets[key] = {nid: {name: np.zeros(shape, self.dtype) for name, shape in
                               rt.type.scratch(rt.p, rt.in_shapes, n).items()}
                         for nid, rt in self.runtimes.items() if rt.type.scratch is not None}
            while len(sets) > SCRATCH_SIZES:
                sets.popitem(last=False)
        for nid, arrays in sets[key].items():
            self.runtimes[nid].scratch = arrays

    def example_bytes(self) -> int:
        """Bytes one example needs during an evaluation forward: every port's output, plus
        the layers' per-example scratch, plus the caches forward keeps (about as much again)."""
        itemsize = self.dtype.itemsize
        outputs = sum(math.prod(s) for s in self.port_shapes.values())
        scratch = sum(math.prod(shape) for rt in self.runtimes.values() if rt.type.scratch is not None
                      for shape in rt.type.scratch(rt.p, rt.in_shapes, 1).values())
        return max(1, (2 * outputs + scratch) * itemsize)

    def eval_chunk(self, budget: int = EVAL_CHUNK_BYTES) -> int:
        """Examples per evaluation chunk so that a chunk's activations stay within ``budget``."""
        return int(min(65536, max(1, budget // self.example_bytes())))

    # -- execution --------------------------------------------------------------------
    def set_training(self, training: bool) -> None:
        for rt in self.runtimes.values():
            rt.training = training

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """Run the nodes in order; keeps every port's output in ``self.outputs``."""
        self.set_training(training)
        self._bind_scratch(len(X))
        outs = self.outputs
        outs.clear()
        for nid in self.order:
            rt = self.runtimes[nid]
            srcs = self._sources[nid]
            xs = [outs[s] for s in srcs] if srcs else [X]
            y = rt.type.forward(rt, xs)
            ports = self.ports[nid]
            if len(ports) == 1:
                outs[(nid, ports[0])] = y
            else:
                for port, value in zip(ports, y, strict=True):
                    outs[(nid, port)] = value
        return outs[self.output_ref]

    def backward(self, dout: np.ndarray, start: PortRef | None = None) -> None:
        """Back-propagate ∂L/∂(``start``'s output) through the graph into ``self.grads``.

        A port's upstream gradient is the sum over the edges leaving it (fan-out); a layer
        with several output ports receives one gradient per port (None where none arrives).
        """
        start = start or self.output_ref
        self.grads[:] = 0
        pending: dict[PortRef, np.ndarray] = {start: dout}
        begin = self.order.index(start[0])
        for nid in reversed(self.order[: begin + 1]):
            ports = self.ports[nid]
            dys = [pending.pop((nid, port), None) for port in ports]
            srcs = self._sources[nid]
            if not srcs or all(d is None for d in dys):
                continue
            rt = self.runtimes[nid]
            dxs = rt.type.backward(rt, dys[0] if len(ports) == 1 else tuple(dys))
            for src, dx in zip(srcs, dxs, strict=True):
                if dx is None or src[0] == self.input_id:
                    continue
                if src in pending:
                    pending[src] = pending[src] + dx
                else:
                    pending[src] = dx

    def loss_and_grads(self, X: np.ndarray, T: np.ndarray) -> float:
        """One training forward and backward: returns the loss, fills ``self.grads``."""
        if self.fused is not None:
            return self.fused.loss_and_grads(X, T)
        with self._blas_threads:
            parts = self._batch_parts(len(X))
            self._halved = len(parts) > 1
            if self._halved:
                return self._halves_step(X, T, parts)
            return self._step(X, T)

    def _step(self, X: np.ndarray, T: np.ndarray) -> float:
        """Forward, the loss (mean over the batch) and backward into ``self.grads``."""
        self.forward(X, training=True)
        z = self.outputs[self.loss_from]
        dz = np.empty_like(z)
        loss = loss_and_grad(self.loss, z, T, dz)
        self.backward(dz, self.loss_from)
        return loss

    def _halves_step(self, X: np.ndarray, T: np.ndarray, parts: list[tuple[int, int]]) -> float:
        """:meth:`_step` on the two halves of the batch at once, the first on this model and
        this thread, the second on a twin (same parameters, its own gradients, outputs and
        scratch) on the helper thread; the loss and gradients are the halves' weighted means.

        Why the whole graph and not layer by layer: each layer's split costs a handoff
        (~80 µs) and leaves the passes between the splitting layers (activations, pooling, the
        Dense head, the loss) on one core; two whole halves hand off once per step. The halves
        are independent only when every layer is per-example (``LayerType.per_example``).
        ``self.outputs`` then holds the first half's outputs (the activation statistics
        describe it); :meth:`first_non_finite` also looks at the second's.
        """
        (a, h), (_, n) = parts
        losses = {}

        def half(model: Model, lo: int, hi: int) -> None:
            losses[lo] = model._step(X[lo:hi], T[lo:hi])

        twin = self._on_halves(parts, half)
        w0, w1 = (h - a) / (n - a), (n - h) / (n - a)
        self.grads *= w0
        twin.grads *= w1
        self.grads += twin.grads
        return w0 * losses[a] + w1 * losses[h]

    def _batch_parts(self, n: int) -> list[tuple[int, int]]:
        """Rows [a, b) per part of a batch of ``n``: its two halves when the graph allows whole
        halves (``splits_steps``) and BLAS may use two threads (batch_halves.halves), else one."""
        return batch_halves.halves(n) if self.splits_steps else [(0, n)]

    def _on_halves(self, parts: list[tuple[int, int]], work: Callable[[Model, int, int], None]) -> Model:
        """``work(model, lo, hi)`` on both halves at once: the first on this model and this
        thread, the second on the twin and the helper thread. Returns the twin."""
        twin = self._twin or self._make_twin()
        (a, h), (_, n) = parts
        batch_halves.run_parts([lambda: work(self, a, h), lambda: work(twin, h, n)])
        return twin

    def _make_twin(self) -> Model:
        """A second runner of this graph for :meth:`_halves_step`: it reads this model's
        parameters and state (the same arrays) and has its own gradients, runtimes and scratch."""
        twin = copy.copy(self)
        twin.grads = np.zeros_like(self.grads)
        twin.outputs, twin._scratch, twin.fused, twin._twin = {}, OrderedDict(), None, None
        twin.splits_steps = False
        twin.runtimes = {}
        for nid, rt in self.runtimes.items():
            twin.runtimes[nid] = NodeRuntime(
                rt.id, rt.type, rt.p, rt.in_shapes, rt.out_shape, rt.dtype, W=rt.W,
                G=self._gradient_views(nid, twin.grads), B=rt.B,
                rng=rt.rng, need_input_grad=rt.need_input_grad, out_shapes=rt.out_shapes)
        self._twin = twin
        return twin

    def _gradient_views(self, nid: str, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Node ``nid``'s gradient tensors as views of ``flat``, laid out as in ``self.grads``
        (a node's tensors are consecutive from its slice's start, in ``rt.G``'s order)."""
        offset = self.slices[nid][0] if nid in self.slices else 0
        views = {}
        for name, g in self.runtimes[nid].G.items():
            views[name] = flat[offset:offset + g.size].reshape(g.shape)
            offset += g.size
        return views

    def _chunks(self, X: np.ndarray, batch_size: int | None) -> Iterator[np.ndarray]:
        step = batch_size or self.eval_chunk()
        for i in range(0, len(X), step):
            yield X[i:i + step]

    def predict(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Evaluation-mode outputs of the graph as drawn (a final Softmax gives probabilities).

        Runs in chunks sized from the bytes an example needs (:meth:`eval_chunk`) unless
        ``batch_size`` is given, writing into one preallocated result.
        """
        if X.shape[1:] != self.shapes[self.input_id]:
            raise TrainingError(
                f"input has shape {X.shape[1:]} per example but Input '{self.input_id}' "
                f"expects {self.shapes[self.input_id]}"
            )
        out = np.empty((len(X),) + self.output_shape, self.dtype)
        start = 0
        for chunk in self._chunks(X, batch_size):
            self._evaluate(np.ascontiguousarray(chunk, dtype=self.dtype), self.output_ref,
                           out[start:start + len(chunk)])
            start += len(chunk)
        return out

    def logits_for_loss(self, X: np.ndarray) -> np.ndarray:
        """Evaluation-mode values the loss reads (logits when a terminal layer is fused)."""
        return self._evaluate(X, self.loss_from)

    def _evaluate(self, X: np.ndarray, ref: PortRef, out: np.ndarray | None = None) -> np.ndarray:
        """Evaluation-mode values of port ``ref`` for X (written into ``out`` if given).

        A graph whose training steps run as two halves (:meth:`_halves_step`) evaluates the
        halves at once too, the second on the twin and the helper thread: evaluating
        LeNet-5 on 10,000 images took as long with two threads as with one before.
        ``self.outputs`` then holds the first half's outputs.
        """
        parts = self._batch_parts(len(X))
        if len(parts) == 1:
            self.forward(X, training=False)
            if out is None:
                return self.outputs[ref]
            out[...] = self.outputs[ref]
            return out
        if out is None:
            out = np.empty((len(X),) + tuple(self.port_shapes[ref]), self.dtype)

        def half(model: Model, lo: int, hi: int) -> None:
            model.forward(X[lo:hi], training=False)
            out[lo:hi] = model.outputs[ref]

        with self._blas_threads:
            self._on_halves(parts, half)
        return out

    def first_non_finite(self) -> str | None:
        """The first node (in order) whose output or parameter gradient is not finite."""
        halves = [self.outputs] + ([self._twin.outputs] if self._halved and self._twin else [])
        for nid in self.order:
            for port in self.ports[nid]:
                for outputs in halves:
                    out = outputs.get((nid, port))
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
