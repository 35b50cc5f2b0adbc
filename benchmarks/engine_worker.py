"""One benchmark repeat on the Backprop Studio engine; prints one JSON line.

Times the trainer's real step (forward, loss, backward, per-node gradient norms, SGD with
momentum) plus the StepEvent the trainer emits, after 20 warm-up steps, for ≥ ``seconds``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import WORKLOADS, engine_graph  # noqa: E402


def main() -> None:
    wid, seconds = sys.argv[1], float(sys.argv[2])
    from engine.compiler import compile_graph
    from engine.events import StepEvent
    from engine.training import TrainConfig, Trainer

    w = WORKLOADS[wid]
    g = engine_graph(w)
    X, y = w.data()
    model = compile_graph(g, dtype="float32", seed=0)
    task = "classification"
    if w.loss == "mse":
        task, y = "regression", y
    elif w.loss == "bce_logits":
        y = y[:, 0].astype(int)
    trainer = Trainer(model, X, y, TrainConfig.from_training(g.training), task=task, n_classes=max(w.n_classes, 2))
    b = w.batch
    nb = len(X) // b
    batches = [(trainer.X[i * b:(i + 1) * b], trainer.T[i * b:(i + 1) * b]) for i in range(nb)]
    names = model.param_nodes
    sink = []

    def step(i: int) -> None:
        xb, tb = batches[i % nb]
        loss = trainer.train_step(xb, tb, 0.01)
        sink.append(StepEvent(0, i, loss, 0.01, dict(zip(names, trainer.norms.tolist(), strict=True)), 0.0))
        if len(sink) > 1000:
            sink.clear()

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
    print(json.dumps({"engine": "ours", "workload": wid, "steps": n, "seconds": elapsed,
                      "samples_per_s": n * b / elapsed, "fused": model.fused is not None}))


if __name__ == "__main__":
    main()
