"""The fused whole-step path: a plain chain of layers trained by one kernel call per step.

A graph that is a single chain ``Input → op → op → … [→ terminal]`` with flat
``(features,)`` shapes, where every op's layer type declares how it runs inside the kernel
(``LayerType.fuse``, e.g. Dense and the element-wise Activations) and the optional terminal
layer is one the loss absorbs (``LayerType.absorbed_by``: Softmax under cross-entropy,
sigmoid under BCE with logits), trains through :func:`engine.kernels.mlp.chain_step`
instead of the Python loop over the nodes. :class:`FusedChain` builds that kernel's op table
from the declarations, owns its workspace and hands back the same per-node outputs the
general path would keep. Only :meth:`Model.loss_and_grads` uses it; evaluation, prediction
and the re-run that locates a divergence use the general path, which stays the readable
reference (tests/engine/test_fused.py holds the two equal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.graph import PortRef
from engine.kernels.blas import gemm_address
from engine.kernels.mlp import B_OFF, CODE, DST, FAN_IN, FAN_OUT, KIND, LOSS_CODES, N_COLS, SRC, W_OFF, chain_step

if TYPE_CHECKING:
    from engine.compiler import Model


def _offset(view: np.ndarray, base: np.ndarray) -> int:
    """Element offset of ``view`` inside the flat buffer ``base``."""
    return (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // base.itemsize


def _is_chain(model: "Model") -> bool:
    """Whether the graph is Input → … → loss source (→ the absorbed output), one edge each."""
    order = model.order
    if order[0] != model.input_id or len(model.graph.edges) != len(order) - 1:
        return False
    if any(model._sources[nid] != [(prev, "out")] or model.ports[nid] != ("out",)
           for prev, nid in zip(order[:-1], order[1:], strict=True)):
        return False
    if model.loss_from[0] == model.input_id:
        return False
    last = order.index(model.loss_from[0])
    return order[last + 1:] in ([], [model.output_id])


def _plan(model: "Model") -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """(op node ids, op table, alphas) if ``model`` is an eligible chain, else None."""
    if model.loss not in LOSS_CODES or len(model.shapes[model.input_id]) != 1 or not _is_chain(model):
        return None
    ids = model.order[1:model.order.index(model.loss_from[0]) + 1]
    ops = np.zeros((len(ids), N_COLS), np.int64)
    alphas = np.zeros(len(ids), np.float64)
    for i, nid in enumerate(ids):
        rt = model.runtimes[nid]
        if len(rt.in_shapes) != 1 or len(rt.in_shapes[0]) != 1 or len(rt.out_shape) != 1:
            return None
        op = rt.type.fuse(rt) if rt.type.fuse is not None else None
        if op is None:
            return None
        row = ops[i]
        row[KIND], row[CODE] = op.kind, op.code
        row[FAN_IN], row[FAN_OUT] = rt.in_shapes[0][0], rt.out_shape[0]
        row[W_OFF] = _offset(rt.W[op.weight], model.params) if op.weight else 0
        row[B_OFF] = _offset(rt.W[op.bias], model.params) if op.bias else -1
        alphas[i] = op.alpha
    ops[:, DST] = np.concatenate([[0], np.cumsum(ops[:-1, FAN_OUT])])
    ops[:, SRC] = np.concatenate([[-1], ops[:-1, DST]])
    return ids, ops, alphas


class FusedChain:
    """The whole-step fast path of an eligible chain model (see the module docstring)."""

    def __init__(self, model: "Model", ids: list[str], ops: np.ndarray, alphas: np.ndarray) -> None:
        self.model = model
        self.ids = ids
        self.ops = ops
        self.alphas = alphas
        self.loss_code = LOSS_CODES[model.loss]
        self.gemm = gemm_address(model.dtype)
        self.max_width = int(max(ops[:, FAN_IN].max(), ops[:, FAN_OUT].max()))
        total = int(ops[:, FAN_OUT].sum())
        self.delta_cols = np.array([total, total + self.max_width], np.int64)
        self.columns = total + 2 * self.max_width
        self.cap = 0
        self.ws = np.zeros(0, model.dtype)
        self._x: np.ndarray | None = None
        self._views: dict[str, np.ndarray] = {}
        self._views_n = -1

    @classmethod
    def build(cls, model: "Model") -> "FusedChain | None":
        """The fast path for ``model``, or None when its graph is not a plain fusable chain."""
        plan = _plan(model)
        return None if plan is None else cls(model, *plan)

    def _allocate(self, n: int) -> None:
        """Workspace for batches of up to ``n`` rows: every op's output, then two δ regions."""
        self.cap = n
        self.ws = np.zeros(n * self.columns, self.model.dtype)
        self._views_n = -1

    def loss_and_grads(self, X: np.ndarray, T: np.ndarray) -> float:
        """Forward, loss and backward of one batch: returns the loss, fills ``model.grads``."""
        model = self.model
        dtype = model.dtype
        if X.dtype != dtype or X.ndim != 2 or not X.flags.c_contiguous:
            X = np.ascontiguousarray(X.reshape(len(X), -1), dtype=dtype)
        n = X.shape[0]
        if T.dtype != dtype or T.ndim != 2 or not T.flags.c_contiguous:
            T = np.ascontiguousarray(T.reshape(n, -1), dtype=dtype)
        if n > self.cap:
            self._allocate(n)
        self._x = X
        if model.outputs:
            model.outputs.clear()  # they would describe an older forward
        return chain_step(model.params, model.grads, self.ops, self.alphas, self.ws, self.cap,
                          self.delta_cols, X, T, self.loss_code, self.gemm)

    def outputs(self) -> dict[PortRef, np.ndarray]:
        """``{(node, "out"): output}`` of the last training forward, for every node of the graph.

        Views into the workspace, valid until the next step. The terminal layer that the
        loss absorbs is not computed by the step; its own forward evaluates it here.
        """
        model = self.model
        if self._x is None:
            return {}
        n = len(self._x)
        if self._views_n != n:
            self._views = {}
            for i, nid in enumerate(self.ids):
                start, width = int(self.ops[i, DST]) * self.cap, int(self.ops[i, FAN_OUT])
                self._views[(nid, "out")] = self.ws[start:start + n * width].reshape(n, width)
            self._views_n = n
        out = {(model.input_id, "out"): self._x, **self._views}
        if model.loss_from != model.output_ref:
            rt = model.runtimes[model.output_id]
            out[model.output_ref] = rt.type.forward(rt, [out[model.loss_from]])
        return out
