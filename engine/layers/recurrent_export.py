"""ONNX, PyTorch and NumPy forms of the recurrent layers (declared in recurrent.py).

- ONNX: the ``RNN``/``LSTM``/``GRU`` operators on a time-major (T, N, F) input. ONNX wants its
  own gate order — LSTM i, o, f, c and GRU z, r, h — and weights as (gates·H, F); the
  blocks are reordered here. Our single bias ``b`` is ONNX's Wb with Rb = 0; a GRU's reset
  position is ``linear_before_reset`` (1 = reset after the product).
- PyTorch: ``nn.RNN``/``nn.LSTM``/``nn.GRU`` with ``batch_first=True`` where the form matches
  (SimpleRNN tanh/ReLU, LSTM tanh, GRU tanh with the reset after), wrapped to return the
  layer's two ports; otherwise a small module that steps the same equations in Python.
  State names are those of torch.nn (``weight_ih_l0`` = Wxᵀ, ``weight_hh_l0`` = Whᵀ); a
  single bias is ``bias_ih_l0`` with ``bias_hh_l0`` a zero buffer.
- NumPy: one helper function that loops over time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ONNX_OP = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}
ONNX_ORDER = {"SimpleRNN": (0,), "LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2)}
"""For each ONNX gate block, which of our (PyTorch-ordered) blocks it is."""
ONNX_ACT = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}
CELL = {"SimpleRNN": "rnn", "LSTM": "lstm", "GRU": "gru"}


def reorder_gates(a: np.ndarray, order: tuple[int, ...], H: int) -> np.ndarray:
    """The gate blocks of the last axis of ``a`` (each H wide) in the given order."""
    return np.concatenate([a[..., k * H:(k + 1) * H] for k in order], axis=-1)


def _gates(n) -> int:
    return len(ONNX_ORDER[n.type])


# ---- ONNX -----------------------------------------------------------------------------------
def _onnx(ctx, n):
    p, H, order = n.p, n.p["units"], ONNX_ORDER[n.type]
    act = ONNX_ACT[p["activation"]]
    W = reorder_gates(n.W["Wx"], order, H).T[None]
    R = reorder_gates(n.W["Wh"], order, H).T[None]
    inputs = [ctx.op("Transpose", [n.x[0]], perm=[1, 0, 2]), ctx.const(W, "W"), ctx.const(R, "R")]
    if p["bias"]:
        if n.type == "GRU":
            wb, rb = reorder_gates(n.W["bx"], order, H), reorder_gates(n.W["bh"], order, H)
        else:
            wb, rb = reorder_gates(n.W["b"], order, H), np.zeros(_gates(n) * H)
        inputs.append(ctx.const(np.concatenate([wb, rb])[None], "B"))
    attrs: dict[str, Any] = {"hidden_size": H,
                             "activations": {"SimpleRNN": [act], "LSTM": ["Sigmoid", act, act],
                                             "GRU": ["Sigmoid", act]}[n.type]}
    if n.type == "GRU":
        attrs["linear_before_reset"] = int(p["reset_after"])
    y, y_h = ctx.op_n(ONNX_OP[n.type], inputs, 2, **attrs)
    state = ctx.op("Squeeze", [y_h, ctx.const([0], "axes", np.int64)])
    if not p["return_sequences"]:
        return [ctx.op("Identity", [state]), state]
    seq = ctx.op("Squeeze", [y, ctx.const([1], "axes", np.int64)])
    return [ctx.op("Transpose", [seq], perm=[1, 0, 2]), state]


# ---- PyTorch --------------------------------------------------------------------------------
_TORCH_SINGLE_BIAS = '''def single_bias(rnn: nn.RNNBase, size: int) -> None:
    """Make bias_hh_l0 a zero buffer: Backprop Studio's SimpleRNN and LSTM have one bias
    b (= b_ih + b_hh), kept in bias_ih_l0."""
    del rnn.bias_hh_l0
    rnn.register_buffer("bias_hh_l0", torch.zeros(size))
    rnn._init_flat_weights()
'''

_TORCH_NATIVE = {
    "SimpleRNN": '''class SimpleRNNLayer(nn.RNN):
    """nn.RNN (batch_first) returning the layer's two ports: (out, state) = (the sequence
    or h_T, h_T)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, return_sequences: bool,
                 nonlinearity: str) -> None:
        super().__init__(input_size, hidden_size, nonlinearity=nonlinearity, bias=bias, batch_first=True)
        self.return_sequences = return_sequences
        if bias:
            single_bias(self, hidden_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, h = super().forward(x)
        return (y if self.return_sequences else h[0]), h[0]
''',
    "LSTM": '''class LSTMLayer(nn.LSTM):
    """nn.LSTM (batch_first) returning the layer's two ports: (out, state) = (the sequence
    or h_T, h_T)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, return_sequences: bool) -> None:
        super().__init__(input_size, hidden_size, bias=bias, batch_first=True)
        self.return_sequences = return_sequences
        if bias:
            single_bias(self, 4 * hidden_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, (h, _c) = super().forward(x)
        return (y if self.return_sequences else h[0]), h[0]
''',
    "GRU": '''class GRULayer(nn.GRU):
    """nn.GRU (batch_first) returning the layer's two ports: (out, state) = (the sequence
    or h_T, h_T)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, return_sequences: bool) -> None:
        super().__init__(input_size, hidden_size, bias=bias, batch_first=True)
        self.return_sequences = return_sequences

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, h = super().forward(x)
        return (y if self.return_sequences else h[0]), h[0]
''',
}

_TORCH_LOOP = '''class RecurrentLoop(nn.Module):
    """A recurrent layer stepped in Python, for the forms torch.nn has no module for (another
    φ than tanh, a GRU whose reset gate comes before the product, truncated backpropagation
    through time). Same equations, gate order and state names as nn.RNN / nn.LSTM / nn.GRU;
    returns (out, state) like the layer. ``truncate`` k > 0 detaches the state at the
    boundaries of blocks of k steps counted back from the last step."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, bias: bool, return_sequences: bool,
                 activation: str, reset_after: bool = True, truncate: int = 0) -> None:
        super().__init__()
        self.truncate = truncate
        gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
        self.cell, self.hidden_size = cell, hidden_size
        self.return_sequences, self.reset_after = return_sequences, reset_after
        self.act = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[activation]
        self.weight_ih_l0 = nn.Parameter(torch.zeros(gates * hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.zeros(gates * hidden_size, hidden_size))
        if not bias:
            self.register_parameter("bias_ih_l0", None)
            self.register_parameter("bias_hh_l0", None)
        else:
            self.bias_ih_l0 = nn.Parameter(torch.zeros(gates * hidden_size))
            if cell == "gru":
                self.bias_hh_l0 = nn.Parameter(torch.zeros(gates * hidden_size))
            else:
                self.register_buffer("bias_hh_l0", torch.zeros(gates * hidden_size))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        H, act = self.hidden_size, self.act
        a = nn.functional.linear(x, self.weight_ih_l0, self.bias_ih_l0)
        w, b = self.weight_hh_l0, self.bias_hh_l0
        h = x.new_zeros(x.shape[0], H)
        c = x.new_zeros(x.shape[0], H)
        steps, T = [], x.shape[1]
        for t in range(T):
            if self.truncate and t and (T - t) % self.truncate == 0:
                h, c = h.detach(), c.detach()
            if self.cell == "rnn":
                h = act(a[:, t] + nn.functional.linear(h, w, b))
            elif self.cell == "lstm":
                i, f, g, o = (a[:, t] + nn.functional.linear(h, w, b)).chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * act(g)
                h = torch.sigmoid(o) * act(c)
            else:
                ar, az, an = a[:, t].chunk(3, dim=-1)
                rz = nn.functional.linear(h, w[:2 * H], None if b is None else b[:2 * H])
                r, z = torch.sigmoid(ar + rz[:, :H]), torch.sigmoid(az + rz[:, H:])
                bn = None if b is None else b[2 * H:]
                if self.reset_after:
                    n = act(an + r * nn.functional.linear(h, w[2 * H:], bn))
                else:
                    n = act(an + nn.functional.linear(r * h, w[2 * H:], bn))
                h = (1 - z) * n + z * h
            steps.append(h)
        return (torch.stack(steps, dim=1) if self.return_sequences else h), h
'''


def _torch(ctx, n):
    p, kind = n.p, n.type
    (_T, F), H = n.in_shapes[0], p["units"]
    G = _gates(n) * H
    state: dict[str, tuple[str | None, Any]] = {"weight_ih_l0": ("Wx", n.W["Wx"].T),
                                                "weight_hh_l0": ("Wh", n.W["Wh"].T)}
    if p["bias"] and kind == "GRU":
        state.update(bias_ih_l0=("bx", n.W["bx"]), bias_hh_l0=("bh", n.W["bh"]))
    elif p["bias"]:
        state.update(bias_ih_l0=("b", n.W["b"]), bias_hh_l0=(None, np.zeros(G)))
    common = f"{F}, {H}, bias={p['bias']}, return_sequences={p['return_sequences']}"
    native = (p["activation"] == "tanh" or (kind == "SimpleRNN" and p["activation"] == "relu")) and \
        (kind != "GRU" or p["reset_after"]) and not p["truncate"]
    if native:
        ctx.helper("single_bias", _TORCH_SINGLE_BIAS)
        cls = ctx.helper(f"{kind}Layer", _TORCH_NATIVE[kind])
        extra = f", nonlinearity={p['activation']!r}" if kind == "SimpleRNN" else ""
        return ctx.module(f"{cls}({common}{extra})", state)
    ctx.helper("RecurrentLoop", _TORCH_LOOP)
    extra = (f", reset_after={p['reset_after']}" if kind == "GRU" else "") + \
        (f", truncate={p['truncate']}" if p["truncate"] else "")
    return ctx.module(f"RecurrentLoop({CELL[kind]!r}, {common}, activation={p['activation']!r}{extra})", state)


# ---- NumPy ----------------------------------------------------------------------------------
_NUMPY_LOOP = '''def recurrent(cell, x, Wx, Wh, b, bh, activation, return_sequences, reset_after=True):
    """SimpleRNN ("rnn"), LSTM or GRU over a batch x (N, T, F), gates in PyTorch's order;
    returns (out, state): the sequence (N, T, H) or h_T, and h_T."""
    def sigmoid(z):
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    act = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "sigmoid": sigmoid}[activation]
    H = Wh.shape[0]
    a = x @ Wx if b is None else x @ Wx + b
    h = np.zeros((x.shape[0], H), x.dtype)
    c = np.zeros_like(h)
    steps = []
    for t in range(x.shape[1]):
        if cell == "rnn":
            h = act(a[:, t] + h @ Wh)
        elif cell == "lstm":
            z = a[:, t] + h @ Wh
            i, f, g, o = sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H]), act(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])
            c = f * c + i * g
            h = o * act(c)
        else:
            rz = h @ Wh[:, :2 * H] if bh is None else h @ Wh[:, :2 * H] + bh[:2 * H]
            r, z = sigmoid(a[:, t, :H] + rz[:, :H]), sigmoid(a[:, t, H:2 * H] + rz[:, H:])
            bn = 0.0 if bh is None else bh[2 * H:]
            hn = (h @ Wh[:, 2 * H:] + bn) * r if reset_after else (r * h) @ Wh[:, 2 * H:] + bn
            n = act(a[:, t, 2 * H:] + hn)
            h = (1 - z) * n + z * h
        steps.append(h)
    return (np.stack(steps, axis=1) if return_sequences else h), h
'''


def _numpy(ctx, n):
    p = n.p
    ctx.helper("recurrent", _NUMPY_LOOP)
    if p["bias"]:
        b, bh = (ctx.weight("bx"), ctx.weight("bh")) if n.type == "GRU" else (ctx.weight("b"), "None")
    else:
        b, bh = "None", "None"
    extra = f", reset_after={p['reset_after']}" if n.type == "GRU" else ""
    return (f"recurrent({CELL[n.type]!r}, {n.x[0]}, {ctx.weight('Wx')}, {ctx.weight('Wh')}, {b}, {bh}, "
            f"{p['activation']!r}, {p['return_sequences']}{extra})")


EXPORTERS = {"onnx": _onnx, "torch": _torch, "numpy": _numpy}
