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
    layers: tuple[tuple[str, int], ...]   # ("dense", units) | ("relu"|"sigmoid"|"tanh", 0)
    loss: str                             # cross_entropy | bce_logits | mse
    batch: int
    n_classes: int = 0
    target: float = 1.0                   # ratio ours / PyTorch the issue asks for
    gemm_target: float | None = None      # fraction of NumPy's GEMM throughput the step must reach

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
        X = rng.standard_normal((n, self.n_in)).astype(np.float32)
        if self.loss == "cross_entropy":
            return X, rng.integers(0, self.n_classes, n)
        return X, rng.integers(0, 2, (n, 1)).astype(np.float32)


MLP = (("dense", 256), ("relu", 0), ("dense", 256), ("relu", 0), ("dense", 10))
DEEP = tuple(x for _ in range(20) for x in (("dense", 32), ("sigmoid", 0))) + (("dense", 1),)
WORKLOADS = {
    "W1": Workload("W1", "MLP 784-256-256-10 ReLU, CE, batch 64", 784, MLP, "cross_entropy", 64, 10, 1.5),
    "W2": Workload("W2", "MLP 784-256-256-10 ReLU, CE, batch 512", 784, MLP, "cross_entropy", 512, 10, 1.0, 0.8),
    "W3": Workload("W3", "2 → 20×(Dense 32 + sigmoid) → 1, BCE logits, batch 32", 2, DEEP, "bce_logits", 32, 0, 8.0),
    "W6": Workload("W6", "XOR 2-8-1 tanh, MSE, batch 4", 2, (("dense", 8), ("tanh", 0), ("dense", 1)), "mse", 4,
                   0, 30.0),
}
NOT_YET = {"W4": "LeNet-5 needs convolution layers (a later issue)",
           "W5": "LSTM needs recurrent layers (a later issue)"}


def engine_graph(w: Workload):
    from engine.graph import Graph

    g = Graph(w.id)
    g.add_node("Input", {"shape": [w.n_in]}, "x")
    prev = "x"
    for i, (kind, size) in enumerate(w.layers):
        nid = f"l{i}"
        if kind == "dense":
            g.add_node("Dense", {"units": size}, nid)
        else:
            g.add_node("Activation", {"function": kind}, nid)
        g.connect(prev, nid)
        prev = nid
    g.training.update({"loss": w.loss, "batch_size": w.batch, "seed": 0,
                       "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9}, "stats_every": 0})
    return g
