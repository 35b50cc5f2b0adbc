"""PyTorch models through ONNX: built in torch, exported with ``torch.onnx.export``, imported.

An MLP, LeNet-5, a ResNet basic block (conv-bn-relu-conv-bn + skip, then a strided block with
a 1×1 projection and global average pooling), an LSTM and a GRU classifier, exported with torch 2.13's
default exporter (``dynamo=True``: torch.export and onnxscript, opset 20, a fixed batch size)
and the TorchScript exporter (``dynamo=False``, opset 20, a dynamic batch axis); the models
with BatchNorm (the MLP, also for GELU's erf form at opset 17, and the ResNet block) also with ``optimize=False`` and
with the TorchScript exporter at opset 17 without constant folding, the two exports that keep
every BatchNorm. The imported network must predict what onnxruntime computes from the same
file (float32, 1e-5 relative to the largest output), and one training step of the imported
network (SGD with momentum) must equal the same step of the torch module: the same loss, the
same predictions afterwards (where an export folded a BatchNorm away the imported network has
none to train, so that step is not compared). Run with ``-s`` to see what each export emitted.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import numpy as np
import onnx
import pytest
import torch
from test_export import assert_close, onnx_predict
from torch import nn

from engine.compiler import compile_graph
from engine.importers.onnx import import_onnx
from engine.training import TrainConfig, Trainer

BATCH = 4
LR = 0.1
EMITTED: dict[str, list[str]] = {}


class MLP(nn.Module):
    """Every MLP-level operator: a view of the input, Linear, BatchNorm1d, GELU, PReLU, two
    branches joined by Concat (tanh and sigmoid), Hardtanh, ELU, Softplus, LeakyReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.bn = nn.Linear(6, 16), nn.BatchNorm1d(16)
        self.act1, self.fc2, self.act2 = nn.GELU(), nn.Linear(16, 12), nn.PReLU(init=0.3)
        self.left, self.right = nn.Linear(12, 6), nn.Linear(12, 5)
        self.fc3, self.fc4, self.fc5 = nn.Linear(11, 10), nn.Linear(10, 8), nn.Linear(8, 3)
        self.hard, self.elu, self.leaky = nn.Hardtanh(), nn.ELU(0.7), nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.view(x.size(0), -1)
        h = self.act2(self.fc2(self.act1(self.bn(self.fc1(h)))))
        h = torch.cat([torch.tanh(self.left(h)), torch.sigmoid(self.right(h))], dim=1)
        h = self.elu(self.hard(self.fc3(h)))
        return self.fc5(self.leaky(nn.functional.softplus(self.fc4(h))))


class LSTMClassifier(nn.Module):
    """Reads a sequence and classifies it from the last step of the LSTM's output, y[:, -1]."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.head = nn.LSTM(3, 8, batch_first=True), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.head(y[:, -1])


class GRUClassifier(nn.Module):
    """Classifies a sequence from the GRU's final state h_n."""

    def __init__(self) -> None:
        super().__init__()
        self.gru, self.head = nn.GRU(3, 8, batch_first=True), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x)
        return self.head(torch.tanh(h[0]))


class LeNet5(nn.Module):
    """LeCun et al. 1998 on a 28×28 digit: conv 5×5 (padding 2) → tanh → average pooling →
    conv 5×5 → ReLU → max pooling → flatten → 120 → 84 → 10 (here 3 classes)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.s2 = nn.Conv2d(1, 6, 5, padding=2), nn.AvgPool2d(2)
        self.c3, self.s4 = nn.Conv2d(6, 16, 5), nn.MaxPool2d(2)
        self.f5, self.f6, self.out = nn.Linear(16 * 5 * 5, 120), nn.Linear(120, 84), nn.Linear(84, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.s4(torch.relu(self.c3(self.s2(torch.tanh(self.c1(x))))))
        h = torch.flatten(h, 1)
        return self.out(torch.relu(self.f6(torch.relu(self.f5(h)))))


class ResNetBlock(nn.Module):
    """He et al. 2016's basic block after a stem: relu(bn(conv(relu(bn(conv(x))))) + x), then a
    strided 1×1 projection block, global average pooling (AdaptiveAvgPool2d(1)) and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv1, self.bn1 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.down, self.bn3 = nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.BatchNorm2d(12)
        self.project = nn.Conv2d(8, 12, 1, stride=2)
        self.pool, self.head = nn.AdaptiveAvgPool2d(1), nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn0(self.stem(x)))
        h = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(h))))) + h)
        h = torch.relu(self.bn3(self.down(h)) + self.project(h))
        return self.head(torch.flatten(self.pool(h), 1))


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], str]] = {
    "mlp": (MLP, (2, 3), "classification"),
    "lenet5": (LeNet5, (1, 28, 28), "classification"),
    "resnet_block": (ResNetBlock, (3, 8, 8), "classification"),
    "lstm": (LSTMClassifier, (12, 3), "classification"),
    "gru": (GRUClassifier, (12, 3), "classification"),
}
EXPORTERS = {
    "dynamo": {"dynamo": True},
    "dynamo-unoptimised": {"dynamo": True, "optimize": False},
    "torchscript": {"dynamo": False, "dynamic_axes": {"x": {0: "N"}, "y": {0: "N"}}},
    "torchscript-opset17": {"dynamo": False, "opset_version": 17, "do_constant_folding": False,
                            "dynamic_axes": {"x": {0: "N"}, "y": {0: "N"}}},
}
EXPORTED_WITH = {"mlp": tuple(EXPORTERS), "lenet5": ("dynamo", "torchscript"), "resnet_block": tuple(EXPORTERS),
                 "lstm": ("dynamo", "torchscript"), "gru": ("dynamo", "torchscript")}
"""Every exporter for the models with BatchNorm (which the exporters treat differently) and the
MLP (GELU's erf form at opset 17); the default exporters for the others."""
CASES = [(m, e) for m in MODELS for e in EXPORTED_WITH[m]]


def batchnorms(module: nn.Module, kinds: tuple[type, ...] = (nn.modules.batchnorm._BatchNorm,)) -> int:
    return sum(isinstance(m, kinds) for m in module.modules())


def kept_batchnorms(module: nn.Module, exporter: str) -> int:
    """What each export keeps of the model's BatchNorms: the default dynamo export folds them all
    into the layer before (an inference graph), the TorchScript exporter's constant folding those
    after a convolution; optimize=False and do_constant_folding=False keep them."""
    if exporter == "dynamo":
        return 0
    if exporter == "torchscript":
        return batchnorms(module, (nn.BatchNorm1d,))
    return batchnorms(module)


def build(name: str) -> nn.Module:
    """The model with non-trivial weights and BatchNorm statistics, in evaluation mode."""
    torch.manual_seed(0)
    module = MODELS[name][0]()
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                sub.running_mean.uniform_(-0.5, 0.5)
                sub.running_var.uniform_(0.5, 2.0)
                sub.weight.uniform_(0.5, 1.5)
                sub.bias.uniform_(-0.3, 0.3)
    return module.eval()


TRAINABLE = [(m, e) for m, e in CASES if kept_batchnorms(build(m), e) == batchnorms(build(m))]
"""Exports that keep every BatchNorm: where one is folded away the imported network predicts
the same but trains without it, unlike the torch module."""


def features(name: str, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *MODELS[name][1])).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    for key, ops in sorted(EMITTED.items()):
        print(f"\n{key}: {' '.join(ops)}")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    cache: dict[tuple[str, str], tuple] = {}

    def get(name: str, exporter: str):
        if (name, exporter) not in cache:
            module = build(name)
            path = tmp_path_factory.mktemp(name) / f"{name}_{exporter}.onnx"
            x = torch.from_numpy(features(name, BATCH, 0))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, (x,), str(path), input_names=["x"], output_names=["y"],
                                  **EXPORTERS[exporter])
            proto = onnx.load(str(path))
            EMITTED[f"{name}/{exporter} (opset {proto.opset_import[0].version})"] = list(
                dict.fromkeys(n.op_type for n in proto.graph.node))
            cache[(name, exporter)] = (module, path, import_onnx(path))
        return cache[(name, exporter)]
    return get


@pytest.mark.parametrize("name,exporter", CASES, ids=[f"{m}-{e}" for m, e in CASES])
def test_imported_model_predicts_what_onnxruntime_computes(name, exporter, exports):
    module, path, loaded = exports(name, exporter)
    X = features(name, BATCH, 1)
    want = onnx_predict(path, X)
    assert_close(loaded.model.predict(X), want, f"import[{name}-{exporter}]")
    with torch.no_grad():
        assert_close(want, module(torch.from_numpy(X)).numpy(), f"ort-vs-torch[{name}-{exporter}]")
    imported = sum(n.type == "BatchNorm" for n in loaded.graph.nodes.values())
    assert imported == kept_batchnorms(module, exporter)
    if not exporter.startswith("dynamo"):  # the dynamic batch axis: any batch size
        X = features(name, 9, 2)
        assert_close(loaded.model.predict(X), onnx_predict(path, X), f"import[{name}-{exporter}]")


def engine_step(loaded, X: np.ndarray, y: np.ndarray, loss: str) -> tuple[float, object]:
    graph = loaded.graph.copy()
    graph.training.update({"loss": loss, "batch_size": len(X), "optimizer": {"name": "sgd", "lr": LR,
                                                                            "momentum": 0.9}})
    model = compile_graph(graph)
    model.load_state_dict(loaded.model.state_dict())
    task = "classification" if loss == "cross_entropy" else "regression"
    trainer = Trainer(model, X, y, TrainConfig.from_training(graph.training), task=task, n_classes=3)
    return trainer.train_step(trainer.X, trainer.T, LR), model


def single_bias(net: nn.Module) -> None:
    """Our SimpleRNN and LSTM have one bias b = b_ih + b_hh (the import adds them): the same
    network in PyTorch keeps the sum in b_ih and a frozen zero b_hh, so that a step moves b once."""
    with torch.no_grad():
        for sub in net.modules():
            if isinstance(sub, (nn.LSTM, nn.RNN)):
                sub.bias_ih_l0 += sub.bias_hh_l0
                sub.bias_hh_l0.zero_()
                sub.bias_hh_l0.requires_grad_(False)


def torch_step(module: nn.Module, X: np.ndarray, y: np.ndarray, loss: str) -> tuple[float, nn.Module]:
    net = copy.deepcopy(module).train()
    single_bias(net)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=LR, momentum=0.9)
    out = net(torch.from_numpy(X))
    target = torch.from_numpy(y)
    value = nn.functional.cross_entropy(out, target) if loss == "cross_entropy" else nn.functional.mse_loss(out, target)
    opt.zero_grad()
    value.backward()
    opt.step()
    return value.item(), net.eval()


@pytest.mark.parametrize("name,exporter", TRAINABLE, ids=[f"{m}-{e}" for m, e in TRAINABLE])
def test_one_training_step_after_import_equals_the_step_in_pytorch(name, exporter, exports):
    module, path, loaded = exports(name, exporter)
    X = features(name, 8, 3)
    task = MODELS[name][2]
    rng = np.random.default_rng(4)
    if task == "classification":
        y, loss = rng.integers(0, 3, size=len(X)).astype(np.int64), "cross_entropy"
    else:
        y, loss = rng.normal(size=(len(X), 3)).astype(np.float32), "mse"
    want_loss, net = torch_step(module, X, y, loss)
    got_loss, model = engine_step(loaded, X, y, loss)
    assert got_loss == pytest.approx(want_loss, rel=1e-5)
    X2 = features(name, 16, 5)
    with torch.no_grad():
        want = net(torch.from_numpy(X2)).numpy()
    before = loaded.model.predict(X2)
    assert np.max(np.abs(want - before)) > 1e-3 * np.max(np.abs(want))  # the step changed something
    assert_close(model.predict(X2), want, f"step[{name}-{exporter}]", rtol=1e-4)
