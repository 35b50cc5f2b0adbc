"""One benchmark repeat on PyTorch CPU; prints one JSON line.

The same step as the engine's: zero_grad, forward, loss, backward, the L2 norm of every
layer's gradient read back with ``.item()`` (the studio always shows them), SGD momentum.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import WORKLOADS  # noqa: E402


def main() -> None:
    wid, seconds, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    w = WORKLOADS[wid]
    layers, n_in = [], w.n_in
    channels, convs = (w.in_shape or (0,))[0], iter(w.conv)
    acts = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}

    class LastState(torch.nn.LSTM):
        """nn.LSTM (batch_first) whose output is the last hidden state h_T."""

        def forward(self, x):
            return super().forward(x)[1][0][0]

    for kind, size in w.layers:
        if kind == "lstm":
            layers.append(LastState(n_in, size, batch_first=True))
            n_in = size
        elif kind == "dense":
            layers.append(torch.nn.LazyLinear(size) if n_in is None else torch.nn.Linear(n_in, size))
            n_in = size
        elif kind == "conv":
            kernel, padding = next(convs)
            layers.append(torch.nn.Conv2d(channels, size, kernel, padding=padding))
            channels, n_in = size, None
        elif kind == "maxpool":
            layers.append(torch.nn.MaxPool2d(size))
        elif kind == "flatten":
            layers.append(torch.nn.Flatten())
        else:
            layers.append(acts[kind]())
    net = torch.nn.Sequential(*layers)
    X, y = w.data()
    net(torch.from_numpy(X[:2]))  # sizes the lazy Linear after the convolutions
    linears = [m for m in net if isinstance(m, (torch.nn.Linear, torch.nn.LSTM, torch.nn.Conv2d))]
    loss_fn = {"cross_entropy": torch.nn.CrossEntropyLoss(), "bce_logits": torch.nn.BCEWithLogitsLoss(),
               "mse": torch.nn.MSELoss()}[w.loss]
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    X = torch.from_numpy(X)
    y = torch.from_numpy(y)
    b = w.batch
    nb = len(X) // b
    batches = [(X[i * b:(i + 1) * b], y[i * b:(i + 1) * b]) for i in range(nb)]

    def step(i: int) -> None:
        xb, yb = batches[i % nb]
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(net(xb), yb)
        loss.backward()
        for lin in linears:
            torch.sqrt(sum(torch.linalg.vector_norm(p.grad) ** 2 for p in lin.parameters())).item()
        opt.step()
        loss.item()

    for i in range(20):
        step(i)
    n, t0 = 0, time.perf_counter()
    while True:
        for _ in range(10):
            step(n)
            n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    print(json.dumps({"engine": "torch", "workload": wid, "threads": threads, "steps": n, "seconds": elapsed,
                      "samples_per_s": n * b / elapsed}))


if __name__ == "__main__":
    main()
