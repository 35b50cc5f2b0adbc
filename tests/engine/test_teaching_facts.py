"""The facts the examples exist to show, checked on the examples themselves.

The three deep examples (same depth, same dataset, same training budget) are run the way a
user runs them, ``backprop train FILE --seed S --metrics FILE``, for seeds 0–4; what they
teach is read back from the metrics stream: the first step's per-layer gradient norms (the
gradient at initialisation: norms are taken before the update) and the last epoch's
validation accuracy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.graph import Graph
from engine.session import prepare_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEEP = ("deep_sigmoid", "deep_relu_he", "deep_residual")
SEEDS = range(5)


def trained_accuracy(name: str, seed: int) -> float:
    run = prepare_run(Graph.load(EXAMPLES / f"{name}.json"), EXAMPLES, seed=seed)
    finish = run.trainer.run()
    assert finish.reason == "completed"
    return run.trainer.history[-1].train_acc


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xor_without_hidden_layer_stays_at_most_75_percent(seed):
    assert trained_accuracy("xor_no_hidden", seed) <= 0.75


def test_xor_2_2_1_tanh_reaches_100_percent():
    assert trained_accuracy("xor", 0) == 1.0


def cli_run(name: str, seed: int, tmp_path: Path) -> tuple[list[float], float]:
    """Train an example from the CLI; the first step's gradient norms and the final val accuracy."""
    metrics = tmp_path / f"{name}-{seed}.jsonl"
    code = main(["train", str(EXAMPLES / f"{name}.json"), "--seed", str(seed), "--metrics", str(metrics), "-q"])
    assert code == 0, f"{name} seed {seed}: backprop train exited {code}"
    events = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert events[-1]["event"] == "finish" and events[-1]["reason"] == "completed"
    first_step = next(e for e in events if e["event"] == "step")
    assert first_step["step"] == 1
    last_epoch = [e for e in events if e["event"] == "epoch"][-1]
    return list(first_step["grad_norms"].values()), last_epoch["val_acc"]


def test_the_deep_examples_compare_fairly():
    """Same depth, same data, same budget: only the architecture and initialisation differ."""
    graphs = {name: Graph.load(EXAMPLES / f"{name}.json") for name in DEEP}
    blocks = [g.training for g in graphs.values()]
    assert all(b == blocks[0] for b in blocks), "the three deep examples must share one training block"
    depth = {name: sum(n.type == "Activation" for n in g.nodes.values()) for name, g in graphs.items()}
    assert set(depth.values()) == {20}, depth


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", DEEP)
def test_deep_examples_teach_what_the_readme_says(name, seed, tmp_path):
    """sigmoid: first layer ≥ 100× below the last, stays at chance; ReLU+He, residual: within 10×, ≥ 95 %."""
    norms, val_acc = cli_run(name, seed, tmp_path)
    assert all(math.isfinite(n) and n > 0 for n in norms), norms
    first, last = norms[0], norms[-1]
    if name == "deep_sigmoid":
        assert first * 100 <= last, (first, last)
        assert val_acc <= 0.6, f"deep_sigmoid seed {seed} learned (val_acc {val_acc}): it should stay near chance"
    else:
        assert last / 10 <= first <= last * 10, (first, last)
        assert val_acc >= 0.95, f"{name} seed {seed}: val_acc {val_acc}"


def test_gradient_norms_match_an_independent_computation():
    """Per-node norms equal ‖∂L/∂θ‖ of that node computed from the model's own views."""
    run = prepare_run(Graph.load(EXAMPLES / "deep_sigmoid.json"), EXAMPLES)
    tr = run.trainer
    tr.train_step(tr.X[:32], tr.T[:32], lr=0.0)
    for i, nid in enumerate(run.model.param_nodes):
        grads = run.model.runtimes[nid].G
        expected = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
        assert expected > 0
        assert tr.norms[i] == pytest.approx(expected, rel=1e-5)
