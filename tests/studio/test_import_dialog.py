"""File → Import ONNX…: a PyTorch model opens laid out, with its weights, ready to evaluate,
fine-tune and export again; a file that cannot be imported leaves the document as it was."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PySide6.QtWidgets import QFileDialog
from torch import nn

from engine.importers import import_model
from tests.studio.test_training_run import wait_idle

SHOTS = Path(os.environ.get("BACKPROP_SHOTS", "")) if os.environ.get("BACKPROP_SHOTS") else None


class Classifier(nn.Module):
    """Two features in, two classes out: trains on the built-in moons data."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.bn = nn.Linear(2, 16), nn.BatchNorm1d(16)
        self.fc2, self.head = nn.Linear(16, 16), nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.fc1(x)))
        return self.head(torch.tanh(self.fc2(h)) + h)


def torch_export(make: type[nn.Module], example_shape: tuple[int, ...], path: Path) -> Path:
    """The module (seed 0, evaluation mode) through the TorchScript exporter, any batch size."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(make().eval(), (torch.randn(4, *example_shape),), str(path), dynamo=False,
                          input_names=["x"], output_names=["logits"], dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
    return path


@pytest.fixture(scope="module")
def torch_onnx(tmp_path_factory) -> Path:
    return torch_export(Classifier, (2,), tmp_path_factory.mktemp("torch") / "classifier.onnx")


def choose(monkeypatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))


def ort_predict(path: Path, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})[0]


def test_the_menu_offers_import_after_open_recent(window):
    actions = window.menus["file"].actions()
    index = actions.index(window.actions["import_onnx"])
    assert actions[index - 1] == window.menus["recent"].menuAction()


def test_import_opens_the_laid_out_graph_with_its_weights(window, torch_onnx, monkeypatch, tmp_path, qtbot):
    choose(monkeypatch, torch_onnx)
    window.actions["import_onnx"].trigger()
    doc = window.document
    assert doc.graph == import_model(torch_onnx).graph and doc.path is None
    assert all(isinstance(n.ui.get("x"), float) for n in doc.graph.nodes.values())  # auto-laid-out
    xs = [doc.graph.nodes[n].ui["x"] for n in doc.graph.topological_order()]
    assert xs == sorted(xs) and len(set(xs)) > 3  # columns left to right
    model, meta = window.training.controller.trained()
    X = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
    np.testing.assert_allclose(model.predict(X), ort_predict(torch_onnx, X), rtol=1e-5, atol=1e-6)
    assert "Imported classifier.onnx" in window.status_text()
    if SHOTS is not None:
        for size in ((1280, 800), (1600, 1000)):
            window.resize(*size)
            qtbot.wait(200)
            window.view.fit_all()
            qtbot.wait(100)
            window.grab().save(str(SHOTS / f"import_onnx_{size[0]}x{size[1]}.png"))

    out = tmp_path / "again.onnx"  # export again: the same network
    assert window.training.model_io.export("onnx", out)
    np.testing.assert_allclose(ort_predict(out, X), ort_predict(torch_onnx, X), rtol=1e-5, atol=1e-6)


def test_choosing_a_dataset_keeps_the_weights_and_training_fine_tunes_them(window, torch_onnx, monkeypatch, qtbot):
    choose(monkeypatch, torch_onnx)
    assert window.importer.import_onnx()
    doc = window.document
    block = dict(doc.graph.training, dataset={"name": "moons", "n": 200, "noise": 0.1}, loss="cross_entropy",
                 epochs=1, batch_size=20, optimizer={"name": "sgd", "lr": 0.05})
    doc.set_training(block)
    controller = window.training.controller
    model, _ = controller.trained()  # still the imported weights, under the new setup
    X = np.random.default_rng(1).normal(size=(16, 2)).astype(np.float32)
    imported = ort_predict(torch_onnx, X)
    np.testing.assert_allclose(model.predict(X), imported, rtol=1e-5, atol=1e-6)
    window.training.actions["continue"].trigger()  # Ctrl+F5: on from the imported weights
    wait_idle(qtbot, window.training)
    record = controller.record
    assert record.n_steps == 10  # 200 examples in batches of 20
    tuned, _ = controller.trained()
    assert tuned is model  # the run continued from the imported weights, not a fresh model
    assert not np.allclose(tuned.predict(X), imported, atol=1e-4)


def test_a_model_that_cannot_be_imported_leaves_the_document_as_it_was(window, tmp_path, monkeypatch, dialogs):
    before = window.document.graph.to_dict()
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07\x12\x05not a model at all")
    choose(monkeypatch, bad)
    assert not window.importer.import_onnx()
    assert dialogs.kinds() == ["warning"] and dialogs.calls[0][1] == "Cannot import the model"
    assert dialogs.calls[0][2].startswith("broken.onnx: ")
    assert window.document.graph.to_dict() == before
    assert window.training.controller.trained() is None


class DigitsLeNet(nn.Module):
    """LeNet-5's shape for the built-in 8×8 digits: conv 5×5 (padding 2) → tanh → average
    pooling → conv 3×3 → ReLU → max pooling → flatten → 32 → 10."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.s2, self.c3, self.s4 = nn.Conv2d(1, 6, 5, padding=2), nn.AvgPool2d(2), nn.Conv2d(6, 16, 3), \
            nn.MaxPool2d(2)
        self.f5, self.out = nn.Linear(16, 32), nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.s4(torch.relu(self.c3(self.s2(torch.tanh(self.c1(x))))))
        return self.out(torch.relu(self.f5(torch.flatten(h, 1))))


@pytest.fixture(scope="module")
def lenet_onnx(tmp_path_factory) -> Path:
    return torch_export(DigitsLeNet, (1, 8, 8), tmp_path_factory.mktemp("torch") / "lenet.onnx")


def test_an_imported_lenet_opens_as_a_conv_graph_and_fine_tunes_on_digits(window, lenet_onnx, monkeypatch, qtbot):
    choose(monkeypatch, lenet_onnx)
    assert window.importer.import_onnx()
    doc = window.document
    assert [doc.graph.nodes[n].type for n in doc.graph.topological_order()] == [
        "Input", "Conv2D", "Activation", "AvgPool2D", "Conv2D", "Activation", "MaxPool2D", "Flatten", "Dense",
        "Activation", "Dense"]
    X = np.random.default_rng(2).normal(size=(16, 1, 8, 8)).astype(np.float32)
    imported = ort_predict(lenet_onnx, X)
    np.testing.assert_allclose(window.training.controller.trained()[0].predict(X), imported, rtol=1e-5, atol=1e-6)
    if SHOTS is not None:
        for size in ((1280, 800), (1600, 1000)):
            window.resize(*size)
            qtbot.wait(200)
            window.view.show_start()  # what File → Import ONNX… shows
            qtbot.wait(100)
            window.grab().save(str(SHOTS / f"import_lenet_{size[0]}x{size[1]}.png"))
    doc.set_training(dict(doc.graph.training, dataset={"name": "digits"}, loss="cross_entropy", epochs=1,
                          batch_size=64, optimizer={"name": "sgd", "lr": 0.05}))
    model, _ = window.training.controller.trained()
    np.testing.assert_allclose(model.predict(X), imported, rtol=1e-5, atol=1e-6)  # kept under the new setup
    window.training.actions["continue"].trigger()  # Ctrl+F5: on from the imported weights
    wait_idle(qtbot, window.training)
    tuned, _ = window.training.controller.trained()
    assert tuned is model and window.training.controller.record.n_steps > 0
    assert not np.allclose(tuned.predict(X), imported, atol=1e-4)
