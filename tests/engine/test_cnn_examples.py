"""The convolutional templates in examples/: they check clean, LeNet-5 on digits reaches 97 %
from the CLI, and ResNet's skips carry the gradient that the plain twin loses.

(Every example also trains one epoch and exports in test_export.py.) BLAS runs on one
thread here: the suite runs two test processes on two cores, and OpenBLAS's second thread,
spinning for work beside Numba's im2col, made these runs several times slower.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from engine.cli import main
from engine.graph import Graph
from engine.session import prepare_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CNN_EXAMPLES = ["lenet5_digits", "lenet5_mnist", "alexnet_mini", "vgg_mini", "inception_mini", "resnet_mini",
                "resnet_mini_plain"]


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.mark.parametrize("name", CNN_EXAMPLES)
def test_cnn_templates_check_without_problems_or_warnings(name):
    g = Graph.load(EXAMPLES / f"{name}.json")
    report = g.infer_shapes()
    assert g.problems() == [] and report.warnings == [], "a template should divide exactly everywhere"
    assert g.training["dataset"]["name"] in ("digits", "mnist_5k", "shapes")
    assert g.training.get("test_split", 0) > 0 and g.description


def test_lenet5_mnist_is_the_w4_network():
    g = Graph.load(EXAMPLES / "lenet5_mnist.json")
    rows, total = g.summary()
    assert total == 61706
    assert [r.output_shape for r in rows if r.type in ("Conv2D", "MaxPool2D")] == [
        (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5)]


def test_the_inception_modules_join_four_branches_along_the_channels():
    g = Graph.load(EXAMPLES / "inception_mini.json")
    shapes = g.infer_shapes().shapes
    for module in ("inc1", "inc2"):
        sources = [src for src, _ in g.inputs_of(f"{module}_cat")]
        assert len(sources) == 4
        kernels = {g.nodes[s.removesuffix("_r")].params["kernel_size"] for s in sources}
        assert kernels == {(1, 1), (3, 3), (5, 5)}  # the pool branch ends in a 1×1 projection
        assert shapes[f"{module}_cat"][0] == sum(shapes[s][0] for s in sources)


def test_lenet5_digits_reaches_97_percent_test_accuracy_from_the_cli(capsys):
    assert main(["train", str(EXAMPLES / "lenet5_digits.json"), "-q"]) == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r"test_acc=([0-9.]+)", out).group(1))
    assert accuracy >= 0.97, out


def _first_steps(name: str, epochs: int):
    steps = []
    run = prepare_run(Graph.load(EXAMPLES / f"{name}.json"), EXAMPLES, epochs=epochs,
                      listener=lambda e: steps.append(e.grad_norms) if e.event == "step" else None)
    run.trainer.run()
    return run, steps


def test_resnet_mini_trains_while_its_plain_twin_loses_the_gradient():
    resnet, res_norms = _first_steps("resnet_mini", epochs=None)
    plain, plain_norms = _first_steps("resnet_mini_plain", epochs=3)
    convs = [n for n in res_norms[0] if n == "stem" or re.fullmatch(r"b\d+c\d", n)]
    assert convs[0] == "stem" and convs[-1] == "b6c2" and len(convs) == 13
    assert [n for n in plain_norms[0] if n in convs] == convs  # the same convolutions, only the skips differ

    def ratio(norms):  # first ÷ last convolution's gradient norm, over the first 10 steps
        return float(np.median([n[convs[0]] / n[convs[-1]] for n in norms[:10]]))

    assert ratio(res_norms) > 0.2, "with skips the first layer gets a gradient like the last one's"
    assert ratio(plain_norms) < 0.02, "without them it arrives a hundred times weaker"
    assert resnet.test_metrics()["test_acc"] >= 0.8
    assert plain.trainer.history[-1].val_acc <= 0.3  # ten digits: chance is 0.1
