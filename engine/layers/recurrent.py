"""Recurrent layers: SimpleRNN, LSTM and GRU over (time, features) sequences.

Each reads a sequence x_1 … x_T of shape (T, F), starts from zero state, and has two
output ports: ``out`` is the hidden sequence h_1 … h_T, shape (T, units), when
``return_sequences`` is on, otherwise the last state h_T, shape (units,); ``state`` is always
the final hidden state h_T (units,). With ``return_sequences`` off both ports carry the same
h_T and their gradients add up. Backward receives one gradient per port (None for a port
nothing reads).

Weights (the model file's contract, PyTorch's gate order): ``Wx`` (F, gates·H), ``Wh``
(H, gates·H), columns in gate blocks — LSTM [i f g o], GRU [r z n]; SimpleRNN and LSTM have
one bias ``b`` (gates·H,), GRU two, ``bx`` and ``bh`` (3H,) (its reset gate multiplies
h Wh_n + bh_n, so the two cannot be merged). Forward and backpropagation through time run
in :mod:`engine.kernels.recurrent`, a whole batch of sequences per call, with per-batch
caches in the layer's declared scratch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine.errors import ShapeError
from engine.init import INITIALISERS, initialise
from engine.kernels import recurrent as K
from engine.kernels.strided_gemm import ONE_BLAS_THREAD
from engine.layers.base import LayerType, NodeRuntime, ParamSpec, register
from engine.layers.batch_halves import halves, run_parts
from engine.layers.recurrent_export import EXPORTERS

GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
GATE_NAMES = {"SimpleRNN": (), "LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}
SLOPE_BOUND = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0}
"""γ, the bound on |φ′| of Pascanu et al. (2013): below σ_max(Wh) < 1/γ a SimpleRNN's gradient
through time must vanish."""


# ---- initialisation -------------------------------------------------------------------------
def _orthogonal(shape, fan_in, fan_out, rng, scale):
    q, r = np.linalg.qr(rng.normal(size=shape))
    return scale * q * np.sign(np.diag(r))  # the sign fix makes Q uniformly (Haar) distributed


RECURRENT_INITIALISERS: dict[str, tuple[str, Any]] = {
    "orthogonal": ("a random orthogonal matrix × recurrent_scale: every singular value equals the scale",
                   _orthogonal),
    "identity": ("recurrent_scale · I (Le et al. 2015's IRNN with ReLU): eigenvalues all equal the scale",
                 lambda shape, fi, fo, rng, s: s * np.eye(shape[0])),
    **{k: v for k, v in INITIALISERS.items() if k not in ("normal", "uniform")},
    "normal": ("N(0, σ²) with σ = recurrent_scale", lambda shape, fi, fo, rng, s: rng.normal(0.0, s, size=shape)),
    "uniform": ("U(−a, a) with a = recurrent_scale", lambda shape, fi, fo, rng, s: rng.uniform(-s, s, size=shape)),
}


def _init(kind: str) -> Callable[..., dict[str, np.ndarray]]:
    """Each gate's block of Wx and Wh is initialised as its own (F, H) / (H, H) matrix."""
    def init(p, in_shapes, rng):
        F, H, k = in_shapes[0][1], p["units"], GATES[kind]
        Wx = np.concatenate([initialise(p["init"], (F, H), F, H, rng, p["init_scale"]) for _ in range(k)], axis=1)
        fn = RECURRENT_INITIALISERS[p["recurrent_init"]][1]
        Wh = np.concatenate([fn((H, H), H, H, rng, p["recurrent_scale"]) for _ in range(k)], axis=1)
        out = {"Wx": Wx, "Wh": Wh}
        if p["bias"] and kind == "GRU":
            out.update(bx=np.zeros(k * H), bh=np.zeros(k * H))
        elif p["bias"]:
            b = np.zeros(k * H)
            if kind == "LSTM":
                b[H:2 * H] = p["forget_bias"]
            out["b"] = b
        return out
    return init


def _weights(kind: str) -> Callable[..., dict[str, tuple[int, ...]]]:
    def weights(p, in_shapes):
        F, H, k = in_shapes[0][-1], p["units"], GATES[kind]
        out = {"Wx": (F, k * H), "Wh": (H, k * H)}
        if p["bias"]:
            out.update({"bx": (k * H,), "bh": (k * H,)} if kind == "GRU" else {"b": (k * H,)})
        return out
    return weights


# ---- shapes and scratch ---------------------------------------------------------------------
def _shape(kind: str) -> Callable[..., list[tuple[int, ...]]]:
    def shape(p, in_shapes):
        (s,) = in_shapes
        if len(s) != 2:
            fix = (f"insert a Reshape to [{s[0]}, 1] to read it as {s[0]} steps of one feature" if len(s) == 1
                   else "insert a Reshape to [time, features]")
            raise ShapeError(f"{kind} needs a (time, features) sequence, got {s}; {fix}")
        T, H = s[0], p["units"]
        return [(T, H) if p["return_sequences"] else (H,), (H,)]
    return shape


def chunks(n: int) -> list[tuple[int, int]]:
    """Rows [a, b) of a batch of ``n`` per chunk. A step's products are too small to share
    between threads, but the halves of a batch are independent sequences: two halves at once
    on two threads when the BLAS the kernels call (strided_gemm) may use two threads, else one
    chunk (:func:`engine.layers.batch_halves.halves` with that budget)."""
    return halves(n, ONE_BLAS_THREAD.budget())


def _scratch(kind: str) -> Callable[..., dict[str, tuple[int, ...]]]:
    """Per-batch arrays: the packed weights and the ports' arrays, then one set per chunk
    ("0:xh", "1:xh", …), feature-major per step (see engine.kernels.recurrent)."""
    def scratch(p, in_shapes, n):
        (T, F), H = in_shapes[0], p["units"]
        G = GATES[kind] * H
        parts = chunks(n)
        weights = {"wx": (F + 1, G), "wh": (H + 1, G)} if kind == "GRU" else {"w": (F + 1 + H, G)}
        grads = {"d" + name: shape for name, shape in weights.items()}
        if kind == "LSTM":  # the backward accumulates ∂L/∂W transposed, "dw" receives it
            weights["dw"] = grads.pop("dw")
            grads["dwt"] = (G, F + 1 + H)
        if kind != "GRU":
            weights["wt"] = (G, F + 1 + H)  # W transposed, for the forward products
        out = {"state": (n, H), "dlast": (n, H), "hn2": (T,), **weights}
        if p["return_sequences"]:
            out["seq"] = (n, T, H)
        if len(parts) > 1:
            out.update(grads)  # the sum of the chunks' gradients
        for k, (a, b) in enumerate(parts):
            m = b - a
            per = {"xh": (T + 1, F + 1 + H, m), "gates": (T, G, m), "dg": (T, G, m), "dh": (H, m),
                   "dxs": (T, F, m), "hn2": (T,), **grads}
            if kind == "LSTM":
                per.update(cs=(T + 1, H, m), acs=(T, H, m), dc=(H, m))
            if kind == "GRU":
                per.update(hn=(T, H + 1, m), hw=(G, m), carry=(H, m), drh=(H, m))
                if p["reset_after"]:
                    per["dgh"] = (T, G, m)
            out.update({f"{k}:{name}": shape for name, shape in per.items()})
        return out
    return scratch


def _buffers(rt: NodeRuntime, n: int) -> dict[str, np.ndarray]:
    """The scratch arrays for a batch of ``n``: the model binds them before every forward; a
    runtime used on its own (tests, tools) gets them allocated here once per batch size.
    A scratch found right is remembered with the batch size and thread budget it was checked
    for, so the next step with the same three skips the check."""
    s, budget = rt.scratch, ONE_BLAS_THREAD.budget()
    checked = rt.cache.get("scratch_checked")
    if checked is not None and checked[0] is s and checked[1:] == (n, budget):
        return s
    shapes = rt.type.scratch(rt.p, rt.in_shapes, n)  # type: ignore[misc]
    if s.keys() != shapes.keys() or any(s[k].shape != v or s[k].dtype != rt.dtype for k, v in shapes.items()):
        rt.scratch = s = {k: np.zeros(v, rt.dtype) for k, v in shapes.items()}
    rt.cache["scratch_checked"] = (s, n, budget)
    return s


Part = tuple[int, int, dict[str, np.ndarray]]


def _parts(s: dict[str, np.ndarray], cache: dict[str, Any] | None = None) -> list[Part]:
    """(first row, end row, that chunk's arrays by name) for every chunk of the scratch; with a
    runtime's ``cache``, worked out once per scratch (the model binds the same dict every step)."""
    if cache is not None:
        known = cache.get("parts")
        if known is not None and known[0] is s:
            return known[1]
    out: list[Part] = []
    start = 0
    while f"{len(out)}:xh" in s:
        prefix = f"{len(out)}:"
        arrays = {name[len(prefix):]: v for name, v in s.items() if name.startswith(prefix)}
        end = start + arrays["xh"].shape[2]
        out.append((start, end, arrays))
        start = end
    if cache is not None:
        cache["parts"] = (s, out)
    return out


def _run(tasks: list[Callable[[], None]]) -> None:
    """Run the chunks' kernels, the second on the helper thread at the same time (the kernels
    release the GIL; the caller holds the BLAS they call to one thread)."""
    run_parts(tasks, hold_numpy_blas=False)


_EMPTY = {np.dtype(np.float32): np.empty((0, 0, 0), np.float32), np.dtype(np.float64): np.empty((0, 0, 0))}


# ---- forward --------------------------------------------------------------------------------
def _start(rt: NodeRuntime, xs: list[np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    x = np.ascontiguousarray(xs[0], dtype=rt.dtype)
    rt.cache["x_shape"] = x.shape
    return x, _buffers(rt, len(x))


def _bias_or_none(rt: NodeRuntime, name: str, s: dict[str, np.ndarray]) -> np.ndarray:
    return rt.W[name] if rt.p["bias"] else s["hn2"]  # an unused stand-in without a bias


def _code(rt: NodeRuntime) -> int:
    return K.ACTIVATIONS[rt.p["activation"]]


ChunkForward = Callable[[np.ndarray, dict[str, np.ndarray]], None]


def _forward_chunks(rt: NodeRuntime, x: np.ndarray, s: dict[str, np.ndarray],
                    run: ChunkForward) -> tuple[np.ndarray, np.ndarray]:
    """``run(x rows, chunk arrays)`` for every chunk, then its hidden states into the ports."""
    F, H, state = rt.in_shapes[0][1], rt.p["units"], s["state"]
    seq = s.get("seq")

    def task(a: int, b: int, c: dict[str, np.ndarray]) -> Callable[[], None]:
        def go() -> None:
            run(x[a:b], c)
            rows = seq[a:b] if seq is not None else state[a:b].reshape(b - a, 1, H)
            K.hidden_outputs(c["xh"], F, rows, state[a:b], seq is not None)
        return go

    with ONE_BLAS_THREAD:
        _run([task(a, b, c) for a, b, c in _parts(s, rt.cache)])
    return (seq if seq is not None else state), state


def _rnn_forward(rt, xs):
    x, s = _start(rt, xs)
    K.pack(s["w"], rt.W["Wx"], _bias_or_none(rt, "b", s), rt.W["Wh"], rt.p["bias"])
    K.transpose(s["w"], s["wt"])
    code = _code(rt)
    return _forward_chunks(rt, x, s, lambda xc, c: K.rnn_forward(xc, s["wt"], code, c["xh"]))


def _lstm_forward(rt, xs):
    x, s = _start(rt, xs)
    K.pack(s["w"], rt.W["Wx"], _bias_or_none(rt, "b", s), rt.W["Wh"], rt.p["bias"])
    K.transpose(s["w"], s["wt"])
    code = _code(rt)
    return _forward_chunks(rt, x, s, lambda xc, c: K.lstm_forward(xc, s["wt"], code, c["xh"], c["gates"], c["cs"],
                                                                  c["acs"]))


def _gru_forward(rt, xs):
    x, s = _start(rt, xs)
    K.pack(s["wx"], rt.W["Wx"], _bias_or_none(rt, "bx", s), s["wx"][:0], rt.p["bias"])
    K.pack(s["wh"], s["wh"][:0], _bias_or_none(rt, "bh", s), rt.W["Wh"], rt.p["bias"])
    code, after = _code(rt), rt.p["reset_after"]
    return _forward_chunks(rt, x, s, lambda xc, c: K.gru_forward(xc, s["wx"], s["wh"], code, after, c["xh"],
                                                                 c["gates"], c["hn"], c["hw"]))


# ---- backward -------------------------------------------------------------------------------
def _port_gradients(rt: NodeRuntime, s: dict[str, np.ndarray], dys) -> tuple[np.ndarray, np.ndarray]:
    """(∂L/∂ sequence or an empty array, ∂L/∂h_T summed over the ports that carry h_T)."""
    d_out, d_state = dys
    if rt.p["return_sequences"]:
        dseq = _EMPTY[rt.dtype] if d_out is None else np.ascontiguousarray(d_out, dtype=rt.dtype)
        last_parts = [d_state]
    else:
        dseq, last_parts = _EMPTY[rt.dtype], [d_out, d_state]
    dlast = s["dlast"]
    given = [d for d in last_parts if d is not None]
    if not given:
        dlast[...] = 0
    elif len(given) == 1:
        dlast[...] = given[0]
    else:
        np.add(given[0], given[1], out=dlast)
    return dseq, dlast


ChunkBackward = Callable[[np.ndarray, np.ndarray, dict[str, np.ndarray]], None]


def _backward_chunks(rt: NodeRuntime, s: dict[str, np.ndarray], dys, run: ChunkBackward,
                     grads: tuple[str, ...]) -> tuple[dict[str, np.ndarray], list[np.ndarray | None]]:
    """``run(∂L/∂seq rows, ∂L/∂h_T rows, chunk arrays)`` for every chunk; returns the weight
    gradients summed over the chunks and [∂L/∂x] (None when the layer reads the data)."""
    dseq, dlast = _port_gradients(rt, s, dys)
    parts = _parts(s, rt.cache)
    with ONE_BLAS_THREAD:
        _run([(lambda a=a, b=b, c=c: run(dseq[a:b] if dseq.size else dseq, dlast[a:b], c))
              for a, b, c in parts])
    if len(parts) == 1:
        total = {name: parts[0][2][name] for name in grads}
        s["hn2"][:] = parts[0][2]["hn2"]
    else:
        total = {name: np.add(parts[0][2][name], parts[1][2][name], out=s[name]) for name in grads}
        np.add(parts[0][2]["hn2"], parts[1][2]["hn2"], out=s["hn2"])
    rt.cache["time_grads"] = s["hn2"]
    if not rt.need_input_grad:
        return total, [None]
    dx = np.empty(rt.cache["x_shape"], rt.dtype)
    for a, b, c in parts:
        K.input_gradient_to_batch(c["dxs"], dx[a:b])
    return total, [dx]


def _bias_grad(rt: NodeRuntime, name: str, s: dict[str, np.ndarray]) -> np.ndarray:
    return rt.G[name] if rt.p["bias"] else s["hn2"]


def _rnn_backward(rt, dys):
    s, code, cut, need = rt.scratch, _code(rt), rt.p["truncate"], rt.need_input_grad
    total, dx = _backward_chunks(rt, s, dys, lambda dseq, dlast, c: K.rnn_backward(
        dseq, dlast, s["w"], c["xh"], code, cut, need, c["dg"], c["dh"], c["dw"], c["dxs"], c["hn2"]), ("dw",))
    K.unpack(total["dw"], rt.G["Wx"], _bias_grad(rt, "b", s), rt.G["Wh"], rt.p["bias"])
    return dx


def _lstm_backward(rt, dys):
    s, code, cut, need = rt.scratch, _code(rt), rt.p["truncate"], rt.need_input_grad
    total, dx = _backward_chunks(rt, s, dys, lambda dseq, dlast, c: K.lstm_backward(
        dseq, dlast, s["w"], c["xh"], c["gates"], c["cs"], c["acs"], code, cut, need, c["dg"], c["dh"], c["dc"],
        c["dwt"], c["dxs"], c["hn2"]), ("dwt",))
    K.transpose(total["dwt"], s["dw"])
    K.unpack(s["dw"], rt.G["Wx"], _bias_grad(rt, "b", s), rt.G["Wh"], rt.p["bias"])
    return dx


def _gru_backward(rt, dys):
    s, code, cut, need = rt.scratch, _code(rt), rt.p["truncate"], rt.need_input_grad
    after = rt.p["reset_after"]
    total, dx = _backward_chunks(rt, s, dys, lambda dseq, dlast, c: K.gru_backward(
        dseq, dlast, s["wx"], s["wh"], c["xh"], c["gates"], c["hn"], code, after, cut, need, c["dg"],
        c["dgh"] if after else c["dg"], c["dh"], c["carry"], c["drh"], c["dwx"], c["dwh"], c["dxs"], c["hn2"]),
        ("dwx", "dwh"))
    K.unpack(total["dwx"], rt.G["Wx"], _bias_grad(rt, "bx", s), total["dwx"][:0], rt.p["bias"])
    K.unpack(total["dwh"], total["dwh"][:0], _bias_grad(rt, "bh", s), rt.G["Wh"], rt.p["bias"])
    return dx


# ---- what the studio reads ------------------------------------------------------------------
def time_gradient_norms(rt: NodeRuntime) -> np.ndarray | None:
    """‖∂L/∂h_t‖ for t = 1 … T from the last backward (L2 over batch and units), or None."""
    hn2 = rt.cache.get("time_grads")
    return None if hn2 is None else np.sqrt(np.asarray(hn2, np.float64))


def trace(rt: NodeRuntime, example: int = 0) -> dict[str, Any]:
    """What the last forward did to one example: ``hidden`` (units × time), every gate's
    activation (units × time, e.g. LSTM ``f``) and, for LSTM, ``forget_mean`` (time,)."""
    H, F = rt.p["units"], rt.in_shapes[0][1]
    a, _, c = next(part for part in _parts(rt.scratch) if part[0] <= example < part[1])
    i = example - a
    out: dict[str, Any] = {"hidden": c["xh"][1:, F + 1:, i].T.astype(np.float64)}
    gates = {name: c["gates"][:, k * H:(k + 1) * H, i].T.astype(np.float64)
             for k, name in enumerate(GATE_NAMES[rt.type.name])}
    out["gates"] = gates
    out["forget_mean"] = gates["f"].mean(axis=0) if "f" in gates else None
    return out


# ---- declarations ---------------------------------------------------------------------------
def _params(kind: str) -> tuple[ParamSpec, ...]:
    scaled = ("orthogonal", "identity", "normal", "uniform")
    common = [
        ParamSpec("units", "int", 32, "Number of hidden units H (the size of h_t).", min=1, max=4096),
        ParamSpec("activation", "choice", "tanh",
                  "φ: the SimpleRNN's non-linearity" if kind == "SimpleRNN" else
                  "φ of the candidate " + ("g and of the cell output φ(c_t)" if kind == "LSTM" else "n")
                  + " (the gates always use σ)", choices=tuple(K.ACTIVATIONS)),
        ParamSpec("return_sequences", "bool", False, "Output 'out' is the whole sequence h_1…h_T (time, units) "
                  "instead of the last state h_T (units,). Port 'state' is h_T either way."),
        ParamSpec("bias", "bool", True, "Learn biases (" + ("bx and bh" if kind == "GRU" else "b") + ")."),
    ]
    if kind == "LSTM":
        common.append(ParamSpec(
            "forget_bias", "float", 1.0, "Added to the forget gate's bias at initialisation: f starts near "
            "σ(forget_bias), and the gradient through T steps shrinks roughly like σ(forget_bias)^T.",
            min=-20.0, max=20.0, enabled_when={"bias": (True,)}))
    if kind == "GRU":
        common.append(ParamSpec(
            "reset_after", "bool", True, "Reset gate applied after the recurrent product, r ⊙ (h Wh_n + bh_n) "
            "(PyTorch's form, ONNX linear_before_reset = 1); off: before it, (r ⊙ h) Wh_n (Cho et al. 2014)."))
    common += [
        ParamSpec("init", "choice", "xavier_uniform", "How each gate's block of Wx is initialised. "
                  + "; ".join(f"{k}: {v[0]}" for k, v in INITIALISERS.items()), choices=tuple(INITIALISERS)),
        ParamSpec("init_scale", "float", 0.01, "σ for 'normal', a for 'uniform' initialisation of Wx.",
                  min=0.0, max=100.0, enabled_when={"init": ("normal", "uniform")}),
        ParamSpec("recurrent_init", "choice", "orthogonal", "How each gate's block of Wh is initialised. "
                  + "; ".join(f"{k}: {v[0]}" for k, v in RECURRENT_INITIALISERS.items()),
                  choices=tuple(RECURRENT_INITIALISERS)),
        ParamSpec("recurrent_scale", "float", 1.0, "Scale of Wh's initialisation: the gain of 'orthogonal' and "
                  "'identity' (the singular values of each block), σ of 'normal', a of 'uniform'.",
                  min=0.0, max=100.0, enabled_when={"recurrent_init": scaled}),
        ParamSpec("truncate", "int", 0, "Truncated backpropagation through time: the gradient crosses no "
                  "boundary of blocks of this many steps, counted back from the last step (as detaching "
                  "the state every k steps). 0: through the whole sequence.", min=0, max=100000),
    ]
    return tuple(common)


_PORTS = ("Output port out is h_1…h_T (time, units) with return_sequences, else h_T (units,); port state "
          "is always the final hidden state h_T (units,). Input (time, features); the state starts at zero. ")
_HELP = {
    "SimpleRNN": "Elman recurrent layer: h_t = φ(x_t Wx + h_{t−1} Wh + b), h_0 = 0. " + _PORTS
    + "Backpropagation through time multiplies the gradient by diag(φ′) Whᵀ at every step back, so it "
      "must vanish when the largest singular value of Wh is below 1/γ (γ bounds |φ′|: 1 for tanh and "
      "ReLU, 1/4 for sigmoid) and may explode above it (Pascanu et al. 2013). Weights Wx (F, H), "
      "Wh (H, H), b (H,).",
    "LSTM": "Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. "
    "2000), gates in PyTorch's order i, f, g, o: [z_i z_f z_g z_o] = x_t Wx + h_{t−1} Wh + b; "
    "i = σ(z_i), f = σ(z_f), g = φ(z_g), o = σ(z_o); c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ φ(c_t). "
    "Back through time the cell's gradient is only multiplied by f, so while f stays near 1 it survives "
    "long sequences: forget_bias decides how near at the start. " + _PORTS
    + "Weights Wx (F, 4H), Wh (H, 4H), b (4H,), in blocks [i f g o].",
    "GRU": "Gated recurrent unit (Cho et al. 2014), gates in PyTorch's order r, z, n: "
    "r = σ(x_t Wx_r + bx_r + h_{t−1} Wh_r + bh_r), z = σ(x_t Wx_z + bx_z + h_{t−1} Wh_z + bh_z), "
    "n = φ(x_t Wx_n + bx_n + r ⊙ (h_{t−1} Wh_n + bh_n)) (reset_after) or "
    "φ(x_t Wx_n + bx_n + (r ⊙ h_{t−1}) Wh_n + bh_n); h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}: where z is near 1 "
    "the state, and its gradient, pass through unchanged. " + _PORTS
    + "Weights Wx (F, 3H), Wh (H, 3H), bx (3H,), bh (3H,), in blocks [r z n].",
}
_FORWARD = {"SimpleRNN": _rnn_forward, "LSTM": _lstm_forward, "GRU": _gru_forward}
_BACKWARD = {"SimpleRNN": _rnn_backward, "LSTM": _lstm_backward, "GRU": _gru_backward}

for _kind in ("SimpleRNN", "LSTM", "GRU"):
    register(LayerType(
        name=_kind,
        category="recurrent",
        help=_HELP[_kind],
        params=_params(_kind),
        shape=_shape(_kind),
        forward=_FORWARD[_kind],
        backward=_BACKWARD[_kind],
        weights=_weights(_kind),
        init=_init(_kind),
        decay=("Wx", "Wh"),
        key_params=("units",),
        outputs=("out", "state"),
        scratch=_scratch(_kind),
        exporters=EXPORTERS,
    ))
