"""Reference workloads of WORKLOADS.md, described once for both engines.

Each workload is a chain of (kind, size) layers after the input, a loss and a batch size;
``engine_graph`` turns it into a Backprop Studio graph, ``torch_worker`` into nn.Sequential.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Workload:
    id: str
    title: str
    n_in: int
    layers: tuple[tuple[str, int], ...]   # ("dense", units) | ("relu"|"sigmoid"|"tanh", 0) | ("lstm", units)
    #                                       | ("conv", filters) | ("maxpool", size) | ("flatten", 0); see ``conv``
    loss: str                             # cross_entropy | bce_logits | mse
    batch: int
    n_classes: int = 0
    target: float = 1.0                   # ratio ours / PyTorch the issue asks for
    seq_len: int = 0                      # > 0: examples are (seq_len, n_in) sequences
    in_shape: tuple[int, ...] = ()        # image workloads: (C, H, W) of one example (n_in = C·H·W)
    conv: tuple[tuple[int, int], ...] = ()  # (kernel, padding) of each ("conv", filters) in order
    gemm_target: float | None = None      # fraction of NumPy's GEMM throughput the step must reach

    @property
    def dense_only(self) -> bool:
        """Whether every layer is a Dense or an activation: only then is the step's FLOP count
        (and the share of the machine's GEMM rate it reaches) computed here."""
        return self.seq_len == 0 and all(kind in ("dense", "relu", "sigmoid", "tanh") for kind, _ in self.layers)

    def dense_shapes(self) -> list[tuple[int, int]]:
        """(fan_in, units) of every Dense layer, in order."""
        shapes, width = [], self.n_in
        for kind, size in self.layers:
            if kind == "dense":
                shapes.append((width, size))
                width = size
        return shapes

    def flops_per_example(self) -> float:
        """Multiply-adds ×2 of one example's training step in its matrix products: x W forward,
        xᵀ δ for ∂L/∂W, and δ Wᵀ for ∂L/∂x except below the first layer (never needed)."""
        return float(sum(2 * k * m * (2 if i == 0 else 3) for i, (k, m) in enumerate(self.dense_shapes())))

    def largest_matmul(self) -> tuple[int, int, int]:
        """(batch, fan_in, units) of the step's largest product: the reference GEMM of the run."""
        k, m = max(self.dense_shapes(), key=lambda s: s[0] * s[1])
        return self.batch, k, m

    def data(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Synthetic float32 data in memory: 64 batches' worth (XOR: its 4 points)."""
        rng = np.random.default_rng(seed)
        if self.id == "W6":
            X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
            return X, np.array([[0], [1], [1], [0]], np.float32)
        n = self.batch * 64
        shape = (n, self.seq_len, self.n_in) if self.seq_len else (n, *(self.in_shape or (self.n_in,)))
        X = rng.standard_normal(shape).astype(np.float32)
        if self.loss == "cross_entropy":
            return X, rng.integers(0, self.n_classes, n)
        return X, rng.integers(0, 2, (n, 1)).astype(np.float32)


MLP = (("dense", 256), ("relu", 0), ("dense", 256), ("relu", 0), ("dense", 10))
LENET = (("conv", 6), ("relu", 0), ("maxpool", 2), ("conv", 16), ("relu", 0), ("maxpool", 2), ("flatten", 0),
         ("dense", 120), ("relu", 0), ("dense", 84), ("relu", 0), ("dense", 10))
DEEP = tuple(x for _ in range(20) for x in (("dense", 32), ("sigmoid", 0))) + (("dense", 1),)
WORKLOADS = {
    "W1": Workload("W1", "MLP 784-256-256-10 ReLU, CE, batch 64", 784, MLP, "cross_entropy", 64, 10, 1.5),
    "W2": Workload("W2", "MLP 784-256-256-10 ReLU, CE, batch 512", 784, MLP, "cross_entropy", 512, 10, 1.0,
                   gemm_target=0.8),
    "W3": Workload("W3", "2 → 20×(Dense 32 + sigmoid) → 1, BCE logits, batch 32", 2, DEEP, "bce_logits", 32, 0, 8.0),
    "W6": Workload("W6", "XOR 2-8-1 tanh, MSE, batch 4", 2, (("dense", 8), ("tanh", 0), ("dense", 1)), "mse", 4,
                   0, 30.0),
    "W4": Workload("W4", "LeNet-5 1×28×28, CE, batch 64", 784, LENET, "cross_entropy", 64, 10, 2.0,
                   in_shape=(1, 28, 28), conv=((5, 2), (5, 0))),
    "W5": Workload("W5", "LSTM(8 → 64), T = 50, last state → Dense(1), MSE, batch 32", 8,
                   (("lstm", 64), ("dense", 1)), "mse", 32, 0, 2.0, seq_len=50),
}
NOT_YET: dict[str, str] = {}


def engine_graph(w: Workload):
    from engine.graph import Graph

    g = Graph(w.id)
    shape = [w.seq_len, w.n_in] if w.seq_len else list(w.in_shape or (w.n_in,))
    g.add_node("Input", {"shape": shape}, "x")
    prev = "x"
    convs = iter(w.conv)
    for i, (kind, size) in enumerate(w.layers):
        nid = f"l{i}"
        if kind == "dense":
            g.add_node("Dense", {"units": size}, nid)
        elif kind == "conv":
            kernel, padding = next(convs)
            g.add_node("Conv2D", {"filters": size, "kernel_size": kernel, "padding": padding}, nid)
        elif kind == "maxpool":
            g.add_node("MaxPool2D", {"pool_size": size}, nid)
        elif kind == "flatten":
            g.add_node("Flatten", {}, nid)
        elif kind == "lstm":
            g.add_node("LSTM", {"units": size}, nid)  # its `out` port: the last state h_T
        else:
            g.add_node("Activation", {"function": kind}, nid)
        g.connect(prev, nid)
        prev = nid
    g.training.update({"loss": w.loss, "batch_size": w.batch, "seed": 0,
                       "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9}, "stats_every": 0})
    return g
