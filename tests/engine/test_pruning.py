"""Magnitude pruning: exactly the smallest weights go, biases stay, the run's weights come back."""

from __future__ import annotations

import numpy as np
import pytest

from engine.compiler import compile_graph
from engine.errors import TrainingError
from engine.graph import Graph
from engine.lessons.runner import test_record as lesson_test_record
from engine.pruning import evaluate_pruned, prune_smallest
from engine.session import prepare_run


def _mlp() -> Graph:
    g = Graph("mlp")
    g.add_node("Input", {"shape": [2]}, "x")
    g.add_node("Dense", {"units": 16}, "h")
    g.add_node("Activation", {"function": "tanh"}, "a")
    g.add_node("Dense", {"units": 1}, "out")
    g.connect("x", "h")
    g.connect("h", "a")
    g.connect("a", "out")
    g.training = {"dataset": {"name": "moons", "n": 200, "noise": 0.1, "seed": 0}, "loss": "bce_logits",
                  "batch_size": 200, "epochs": 150, "seed": 0, "val_split": 0.2, "test_split": 0.2,
                  "optimizer": {"name": "adam", "lr": 0.05}}
    return g


def test_prune_zeroes_exactly_the_smallest_weights_and_keeps_biases():
    model = compile_graph(_mlp(), seed=0)
    for rt in model.runtimes.values():  # non-zero biases, to see that they are kept
        if "b" in rt.W:
            rt.W["b"][...] = 0.5
    before = {k: v.copy() for k, v in model.state_dict().items()}
    weights = np.concatenate([before["h.W"].ravel(), before["out.W"].ravel()])
    result = prune_smallest(model, 0.75)
    after = model.state_dict()
    k = round(0.75 * weights.size)
    assert (result.zeroed, result.total) == (k, weights.size) == (k, 2 * 16 + 16)
    pruned = np.concatenate([after["h.W"].ravel(), after["out.W"].ravel()])
    zeroed = pruned == 0
    assert zeroed.sum() == k
    assert np.abs(weights[zeroed]).max() <= np.abs(weights[~zeroed]).min()
    np.testing.assert_array_equal(pruned[~zeroed], weights[~zeroed])
    assert result.threshold == pytest.approx(np.sort(np.abs(weights))[k - 1])
    np.testing.assert_array_equal(after["h.b"], before["h.b"])
    np.testing.assert_array_equal(after["out.b"], before["out.b"])
    assert sum(z for z, _t in result.per_node.values()) == k
    assert {n: t for n, (_z, t) in result.per_node.items()} == {"h": 32, "out": 16}


@pytest.mark.parametrize("fraction, message", [(1.5, r"1.5 is outside \[0, 1\]"), (-0.1, r"-0.1 is outside \[0, 1\]"),
                                                ("half", "not a number")])
def test_a_bad_fraction_is_refused_with_the_value(fraction, message):
    model = compile_graph(_mlp(), seed=0)
    with pytest.raises(TrainingError, match=message):
        prune_smallest(model, fraction)


def test_evaluate_pruned_measures_copies_and_restores_the_trained_weights():
    run = prepare_run(_mlp())
    run.trainer.run()
    trained = run.model.params.copy()
    unpruned = lesson_test_record(run)
    none, half, everything = evaluate_pruned(run, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(run.model.params, trained)
    assert none["zeroed"] == 0 and none["test_acc"] == unpruned["test_acc"]
    assert none["test_loss"] == pytest.approx(unpruned["test_loss"])
    assert half["zeroed"] == 24 and {"val_loss", "val_acc", "test_loss", "test_acc"} <= set(half)
    # all weights zero: the output is the bias alone, the same class for every point: about chance
    assert everything["zeroed"] == everything["total"] == 48
    assert everything["test_acc"] <= 0.6 < unpruned["test_acc"]


# ---- backprop prune -----------------------------------------------------------------------------------
def test_backprop_prune_evaluates_on_the_same_split_and_saves_the_pruned_model(tmp_path, capsys):
    from engine.cli import main
    from engine.modelfile import load_model

    graph = tmp_path / "mlp.json"
    _mlp().save(graph)
    model = tmp_path / "mlp.bpmodel"
    assert main(["train", str(graph), "-q", "-o", str(model)]) == 0
    trained = capsys.readouterr().out
    test_acc = float(trained.split("test_acc=")[1].split()[0])
    assert main(["prune", str(model), "--fraction", "0.5", "--fraction", "1"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [r[:4] for r in rows] == [["0%", "0", "of", "48"], ["50%", "24", "of", "48"], ["100%", "48", "of", "48"]]
    assert float(rows[0][-1]) == pytest.approx(test_acc, abs=1e-3)  # the split of the training run
    out = tmp_path / "pruned.bpmodel"
    assert main(["prune", str(model), "--fraction", "0.5", "-o", str(out)]) == 0
    pruned = load_model(out)
    weights = np.concatenate([pruned.model.runtimes[n].W["W"].ravel() for n in ("h", "out")])
    assert np.count_nonzero(weights == 0) == 24 and pruned.meta["pruning"]["zeroed"] == 24
    assert "wrote the model with 24 of 48 weights zeroed" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--fraction", "2"], "pruning fraction 2 is outside [0, 1]"),
    (["--fraction", "0.5", "--fraction", "0.6", "-o", "x.bpmodel"], "give one --fraction with -o"),
])
def test_backprop_prune_refuses_bad_arguments_in_one_line(tmp_path, capsys, argv, message):
    from engine.cli import main

    model = tmp_path / "m.bpmodel"
    model.write_bytes(b"not used: the arguments are refused first")
    assert main(["prune", str(model), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1
