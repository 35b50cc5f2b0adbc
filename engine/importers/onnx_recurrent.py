"""ONNX ``RNN``, ``LSTM`` and ``GRU`` as SimpleRNN, LSTM and GRU layers.

ONNX's recurrent operators read time-major data (T, N, F) (``layout = 0``; PyTorch's
``batch_first`` modules transpose their input for it) and keep their gates in their own
order, LSTM i, o, f, c and GRU z, r, h, with weights (gates·H, F); ours are PyTorch's i, f, g, o
and r, z, n with ``Wx`` (F, gates·H). The reordering is the exporter's
(:data:`engine.layers.recurrent_export.ONNX_ORDER`) read backwards. SimpleRNN and LSTM have one
bias, ONNX's ``Wb + Rb``; GRU keeps both (``bx`` = Wb, ``bh`` = Rb), and ONNX's
``linear_before_reset`` is our ``reset_after``.

Outputs: ``Y`` (T, 1, N, H) is the layer's sequence seen time-major with the direction axis
inserted, ``Y_h`` (1, N, H) its ``state``. The last step of the sequence (PyTorch's
``y[:, -1]``) is the ``state`` port too, and a layer whose sequence nobody reads is built with
``return_sequences`` off, as Backprop Studio exports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.graph import PortRef
from engine.importers.onnx_finish import FINISHERS, reachable
from engine.importers.onnx_ops import GATHER_PICKS, IDENTITY_CLAIMS, op
from engine.importers.onnx_values import Const, Data, Sym, Value
from engine.layers.recurrent_export import ONNX_ACT, ONNX_ORDER, reorder_gates

KINDS = {"RNN": "SimpleRNN", "LSTM": "LSTM", "GRU": "GRU"}
RECURRENT = frozenset(KINDS.values())
ACTIVATIONS = {onnx: ours for ours, onnx in ONNX_ACT.items()}
DEFAULT_ACTIVATIONS = {"RNN": ["Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}
LAST = "out_last"
"""A provisional port: the layer's last state read where it exports ``out`` (return_sequences
off); the finisher makes it ``out`` or, when the sequence is read as well, ``state``."""


def _activation(view: Any) -> str:
    acts = view.attr("activations") or DEFAULT_ACTIVATIONS[view.op]
    if view.attr("activation_alpha") or view.attr("activation_beta"):
        view.refuse("activation_alpha/activation_beta are not supported")
    gates, cell = (acts[:1], acts[1:]) if view.op != "RNN" else ([], acts)
    if any(g != "Sigmoid" for g in gates) or len(set(cell)) != 1 or cell[0] not in ACTIVATIONS:
        view.refuse(f"activations {acts} are not Backprop Studio's: the gates use sigmoid and the "
                    f"candidate{' and the cell output' if view.op == 'LSTM' else ''} one of "
                    f"{', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[cell[0]]


def _zeros_or_absent(view: Any, i: int, what: str) -> None:
    v = view.value(i)
    if v is None:
        return
    if not isinstance(v, (Const, Sym)) or any(np.any(np.asarray(v.at(k)) != 0) for k in range(2)):
        view.refuse(f"its {what} is not zero; Backprop Studio's recurrent layers start from a zero state")


def _full_length(view: Any, T: int) -> None:
    v = view.value(4)
    if v is None:
        return
    if not isinstance(v, (Const, Sym)) or any(np.any(np.asarray(v.at(k)) != T) for k in range(2)):
        view.refuse(f"sequence_lens must give every sequence its full length {T}")


@op("RNN", "LSTM", "GRU")
def _recurrent(view: Any) -> list[Value | None]:
    kind = KINDS[view.op]
    x = view.data(0)
    layout = view.attr("layout", 0)
    if len(x.shape) != 2 or x.view != ((1, 0, 2) if layout == 0 else (0, 1, 2)):
        view.refuse("its input must be (batch, time, features) data, time-major for layout 0 "
                    f"(the Transpose PyTorch exports), got {x.onnx_shape(1)}")
    if view.attr("direction", "forward") != "forward":
        view.refuse("only the forward direction has a Backprop Studio layer (not reverse or bidirectional)")
    if view.attr("clip") is not None:
        view.refuse("clipping the cell's inputs (clip) is not supported")
    if view.op == "LSTM" and view.attr("input_forget", 0):
        view.refuse("input_forget = 1 couples the input and forget gates; Backprop Studio's LSTM has both")
    if view.op == "LSTM" and view.output_used(2):
        view.refuse("its cell state output Y_c is used; Backprop Studio's LSTM offers h only")
    activation = _activation(view)
    T, F = x.shape
    H = int(view.attr("hidden_size"))
    order = ONNX_ORDER[kind]
    G = len(order)
    ours = tuple(order.index(j) for j in range(G))  # our block j is ONNX block ours[j]
    W = np.asarray(view.const(1, "input weights W"), np.float64)
    R = np.asarray(view.const(2, "recurrent weights R"), np.float64)
    if W.shape != (1, G * H, F) or R.shape != (1, G * H, H):
        view.refuse(f"its weights have shapes {W.shape} and {R.shape}, expected (1, {G * H}, {F}) and "
                    f"(1, {G * H}, {H})")
    weights = {"Wx": reorder_gates(W[0].T, ours, H), "Wh": reorder_gates(R[0].T, ours, H)}
    B = view.optional_const(3, "biases B")
    if B is not None:
        B = np.asarray(B, np.float64).reshape(-1)
        if B.size != 2 * G * H:
            view.refuse(f"its bias has {B.size} values, expected {2 * G * H}")
        wb, rb = reorder_gates(B[:G * H], ours, H), reorder_gates(B[G * H:], ours, H)
        weights.update({"bx": wb, "bh": rb} if kind == "GRU" else {"b": wb + rb})
    _full_length(view, T)
    _zeros_or_absent(view, 5, "initial hidden state")
    if view.op == "LSTM":
        _zeros_or_absent(view, 6, "initial cell state")
        _zeros_or_absent(view, 7, "peephole weights P")
    params: dict[str, Any] = {"units": H, "activation": activation, "return_sequences": True, "bias": B is not None}
    if kind == "GRU":
        params["reset_after"] = bool(view.attr("linear_before_reset", 0))
    seq, state = view.layer(kind, params, [x], weights)
    if layout == 0:
        return [seq.with_view((1, None, 0, 2)), state.with_view((None, 0, 1)), None]
    return [seq.with_view((0, 1, None, 2)), state.with_view((0, None, 1)), None]


def _recurrent_producer(view: Any, ref: PortRef) -> Any:
    p = view.imp.producer.get(ref)
    return p if p is not None and p.type in RECURRENT else None


def _last_step(view: Any, x: Data, axis: int, index: np.ndarray) -> Data | None:
    """``Gather(sequence, T − 1 or −1)`` along the time axis: the layer's ``state`` port."""
    p = _recurrent_producer(view, x.ref)
    if p is None or x.ref[1] != "out" or x.view[axis] != 1 or index.ndim != 0:
        return None
    T = x.shape[0]
    if int(index) not in (-1, T - 1):
        return None
    remap = {0: 0, 2: 1, None: None}
    rest = x.view[:axis] + x.view[axis + 1:]
    return Data((p.id, "state"), (x.shape[1],), tuple(remap[a] for a in rest))


def _identity_of_state(view: Any, x: Data) -> Data | None:
    """Our exporter's ``out = Identity(state)`` of a layer without return_sequences."""
    p = _recurrent_producer(view, x.ref)
    if p is None or x.ref[1] != "state":
        return None
    ref = (p.id, LAST)
    view.imp.producer[ref] = p
    view.imp.shapes[ref] = x.shape
    return Data(ref, x.shape, x.view)


def _settle_ports(imp: Any, out_ref: PortRef) -> PortRef:
    """A layer whose sequence no kept layer reads returns its last state on ``out`` (also the
    network's output, when that is the state)."""
    kept = reachable(imp, out_ref[0])
    reads = [ref for p in kept for ref in p.inputs] + [out_ref]
    for p in kept:
        if p.type not in RECURRENT:
            continue
        port = "state"
        if (p.id, "out") not in reads:
            p.params["return_sequences"] = False
            port = "out"
        for q in imp.pending.values():
            q.inputs = [(p.id, port) if ref == (p.id, LAST) else ref for ref in q.inputs]
        if out_ref == (p.id, LAST) or (port == "out" and out_ref == (p.id, "state")):
            out_ref = (p.id, port)  # the network's output is a primary port
    return out_ref


GATHER_PICKS.append(_last_step)
IDENTITY_CLAIMS.append(_identity_of_state)
FINISHERS.append(_settle_ports)
