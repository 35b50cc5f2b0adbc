"""Export: ONNX, PyTorch and NumPy reproduce the engine exactly, and refuse clearly.

For every layer case of the shared table (``layer_harness.CASES``, which covers every
registered type) and every example graph, the exported model is compared with the engine's
``predict`` on raw features with the model file's normalisation: onnxruntime, the exported
PyTorch module and the exported NumPy script agree to float32 precision (``RTOL`` relative to
the output's largest magnitude, element by element). The PyTorch module's gradients on one
batch are compared with the engine's backward, and one training step of the exported
``train.py`` with one engine step. torch and onnxruntime are test-only dependencies.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from layer_harness import CASES, Case

from engine.cli import main
from engine.compiler import compile_graph
from engine.errors import ExportError, ModelFileError
from engine.export import FORMATS, export_loaded, export_model
from engine.export.torch import plan, torch_state
from engine.graph import Graph
from engine.layers import REGISTRY
from engine.layers.base import LayerType
from engine.losses import loss_and_grad, prepare_targets
from engine.modelfile import LoadedModel, load_model, save_model
from engine.session import prepare_run, preprocess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))
RTOL = 1e-5
MEASURED: dict[str, float] = {}  # largest relative error seen per check (printed with -s)


# ---- helpers -----------------------------------------------------------------------------------
def assert_close(got, want, what: str, rtol: float = RTOL, scale: float | None = None) -> None:
    """|got − want| ≤ rtol·(|want| + scale), scale = max |want| unless given (e.g. a model's
    largest gradient, for tensors whose true value is 0 up to rounding)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = float(np.max(np.abs(want))) if scale is None else scale
    MEASURED[what] = max(MEASURED.get(what, 0.0), float(np.max(np.abs(got - want))) / max(scale, 1e-30))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def assert_gradients_close(got: dict, want: dict, what: str) -> None:
    """Every parameter's gradient, to float32 precision relative to the model's largest gradient."""
    assert set(got) <= set(want)
    scale = max(float(np.max(np.abs(want[k]))) for k in got)
    for key, grad in got.items():
        assert_close(grad, want[key], what, rtol=1e-5, scale=scale)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\nlargest relative errors: " + ", ".join(f"{k} {v:.2e}" for k, v in sorted(MEASURED.items())))


def import_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"exported_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def import_train(folder: Path):
    """The exported train.py as a module (it imports its own model.py by name)."""
    saved = list(sys.path)
    sys.modules.pop("model", None)
    try:
        return import_file(folder / "train.py")
    finally:
        sys.modules.pop("model", None)
        sys.path[:] = saved


def case_graph(case: Case) -> Graph:
    """Input → Dense per port (→ Reshape) → the layer under test, so its backward reaches weights."""
    g = Graph("case")
    g.training = {"loss": "mse", "batch_size": 8, "epochs": 1, "seed": 0,
                  "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}}
    if case.type == "Input":
        shape = case.in_shapes[0]
        g.add_node("Input", {"shape": list(shape)}, "x")
        g.add_node("Flatten", {}, "flat")
        g.add_node("Dense", {"units": 3}, "out")
        g.connect("x", "flat")
        g.connect("flat", "out")
        return g
    width = math.prod(case.in_shapes[0]) if len(case.in_shapes) == 1 else 4
    g.add_node("Input", {"shape": [width]}, "x")
    layer = REGISTRY[case.type]
    g.add_node(case.type, dict(case.params), "node")
    ports = layer.inputs(g.nodes["node"].params)
    for i, (shape, port) in enumerate(zip(case.in_shapes, ports, strict=True)):
        g.add_node("Dense", {"units": math.prod(shape)}, f"pre{i}")
        g.connect("x", f"pre{i}")
        src = f"pre{i}"
        if len(shape) > 1:
            g.add_node("Reshape", {"shape": list(shape)}, f"shape{i}")
            g.connect(src, f"shape{i}")
            src = f"shape{i}"
        g.connect(src, "node", port)
    outputs = g.nodes["node"].output_ports()
    if len(outputs) > 1:  # every output port reaches the network output (and the loss)
        shapes = layer.port_shapes(case.p(), list(case.in_shapes))
        flatten = len({len(s) for s in shapes.values()}) > 1  # e.g. a sequence (T, H) and a state (H,)
        g.add_node("Concat", {"inputs": len(outputs), "axis": 0}, "join")
        for i, port in enumerate(outputs):
            src, src_port = "node", port
            if flatten:
                g.add_node("Flatten", {}, f"flat_{port}")
                g.connect("node", f"flat_{port}", src_port=port)
                src, src_port = f"flat_{port}", "out"
            g.connect(src, "join", f"in{i}", src_port=src_port)
    return g


def randomise(model, rng: np.random.Generator) -> None:
    """Weights and buffers away from their initial values (BatchNorm statistics included)."""
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 2.0, value.shape)
        elif key.endswith("gamma"):
            state[key] = rng.uniform(0.5, 1.5, value.shape)
        else:
            state[key] = rng.normal(0.0, 0.5, value.shape)
    model.load_state_dict(state)


def save_with_normalisation(path: Path, model, rng: np.random.Generator) -> LoadedModel:
    shape = model.shapes[model.input_id]
    mean, std = rng.normal(0.0, 2.0, shape), rng.uniform(0.5, 3.0, shape)
    meta = {"task": "regression", "training": model.graph.training,
            "dataset": {"name": "random", "feature_names": [], "class_names": [], "target": "y"},
            "preprocessing": {"normalise": {"mean": mean.tolist(), "std": std.tolist()}}}
    save_model(path, model, meta)
    return load_model(path)


def raw_inputs(loaded: LoadedModel, n: int, rng: np.random.Generator) -> np.ndarray:
    """Raw features whose normalised values are about N(0, 1)."""
    norm = loaded.meta["preprocessing"]["normalise"]
    shape = loaded.model.shapes[loaded.model.input_id]
    return np.asarray(norm["mean"]) + np.asarray(norm["std"]) * rng.normal(size=(n, *shape))


def engine_predict(loaded: LoadedModel, X: np.ndarray) -> np.ndarray:
    return loaded.model.predict(preprocess(loaded.meta, X))


def onnx_predict(path: Path, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: X.astype(np.float32)})[0]


def has_dropout(model) -> bool:
    return any(model.graph.nodes[n].type == "Dropout" for n in model.order)


def engine_gradients(loaded: LoadedModel, Xp: np.ndarray, T: np.ndarray, training: bool):
    """The engine's loss and gradients in the exported module's layout (state_dict names)."""
    model = loaded.model
    if training:
        loss = model.loss_and_grads(Xp, T)
    else:
        model.forward(Xp, training=False)
        z = model.outputs[model.loss_from]
        dz = np.empty_like(z)
        loss = loss_and_grad(model.loss, z, T, dz)
        model.backward(dz, model.loss_from)
    return loss, torch_state(loaded, use_grads=True)


def torch_gradients(net, Xp: np.ndarray, T: np.ndarray, loss_fn, training: bool):
    net.train(training)
    net.zero_grad()
    loss = loss_fn(net(torch.as_tensor(Xp), for_loss=True), torch.as_tensor(T))
    loss.backward()
    return loss.item(), {k: p.grad.numpy() for k, p in net.named_parameters()}


# ---- the layer table -------------------------------------------------------------------------
def test_every_registered_layer_type_declares_all_three_exporters():
    for name, layer in REGISTRY.items():
        missing = sorted(set(FORMATS) - set(layer.exporters))
        assert not missing, f"layer type {name} declares no exporter for {', '.join(missing)}"
        assert all(callable(fn) for fn in layer.exporters.values())


def test_every_registered_layer_type_is_exported_by_a_case():
    assert {c.type for c in CASES} >= set(REGISTRY)


@pytest.fixture(scope="module")
def case_exports(tmp_path_factory):
    """Per case id: (loaded model, onnx path, torch folder, numpy folder), built on first use."""
    cache: dict[str, tuple] = {}

    def get(case: Case):
        if case.id not in cache:
            rng = np.random.default_rng(abs(hash(case.id)) % 2**32)
            folder = tmp_path_factory.mktemp("case")
            model = compile_graph(case_graph(case))
            randomise(model, rng)
            loaded = save_with_normalisation(folder / "m.bpmodel", model, rng)
            cache[case.id] = (
                loaded,
                export_model(folder / "m.bpmodel", "onnx", folder / "m.onnx"),
                export_model(folder / "m.bpmodel", "torch", folder / "torch"),
                export_model(folder / "m.bpmodel", "numpy", folder / "numpy"),
            )
        return cache[case.id]
    return get


by_case = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])


@by_case
def test_onnxruntime_matches_the_engine(case, case_exports):
    loaded, onnx_path, _, _ = case_exports(case)
    X = raw_inputs(loaded, 8, np.random.default_rng(1))
    assert_close(onnx_predict(onnx_path, X), engine_predict(loaded, X), f"onnx[{case.type}]")


@by_case
def test_numpy_script_matches_the_engine(case, case_exports):
    loaded, _, _, numpy_dir = case_exports(case)
    X = raw_inputs(loaded, 8, np.random.default_rng(2))
    got = import_file(numpy_dir / "model.py").predict(X)
    assert got.dtype == np.float32
    assert_close(got, engine_predict(loaded, X), f"numpy[{case.type}]")


@by_case
def test_torch_module_matches_outputs_and_gradients(case, case_exports):
    loaded, _, torch_dir, _ = case_exports(case)
    rng = np.random.default_rng(3)
    X = raw_inputs(loaded, 8, rng)
    module = import_file(torch_dir / "model.py")
    assert_close(module.predict(X), engine_predict(loaded, X), f"torch[{case.type}]")

    model = loaded.model
    Xp = preprocess(loaded.meta, X).astype(np.float32)
    T = rng.normal(size=(8, *model.loss_shape)).astype(np.float32)
    net = module.load_model()
    modes = [False] if has_dropout(model) else [False, True]  # dropout masks are random on both sides
    for training in modes:
        want_loss, want = engine_gradients(loaded, Xp, T, training)
        got_loss, got = torch_gradients(net, Xp, T, torch.nn.functional.mse_loss, training)
        assert got_loss == pytest.approx(want_loss, rel=1e-5)
        assert_gradients_close(got, want, f"torch-grad[{case.type}]")


# ---- the examples ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def example_exports(tmp_path_factory):
    """Per example: trained one epoch with normalisation on, saved as `backprop train -o` does."""
    cache: dict[str, tuple] = {}

    def get(path: Path):
        if path.name not in cache:
            graph = Graph.load(path)
            graph.training["normalize"] = True
            run = prepare_run(graph, EXAMPLES, epochs=1)
            if run.trainer.run().reason == "diverged":  # rnn_exploding does, by design: export its start
                run.model.init_weights(run.config.seed)
            folder = tmp_path_factory.mktemp(path.stem)
            save_model(folder / "m.bpmodel", run.model, run.meta())
            names = {"onnx": "m.onnx", "torch": "torch", "numpy": "numpy"}
            out = {fmt: export_model(folder / "m.bpmodel", fmt, folder / names[fmt]) for fmt in FORMATS}
            cache[path.name] = (load_model(folder / "m.bpmodel"), run, out)
        return cache[path.name]
    return get


by_example = pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])


@by_example
def test_example_exports_predict_like_the_engine(example, example_exports):
    loaded, run, out = example_exports(example)
    X = run.dataset.X[:64]
    want = engine_predict(loaded, X)
    assert_close(onnx_predict(out["onnx"], X), want, "onnx[examples]")
    assert_close(import_file(out["numpy"] / "model.py").predict(X), want, "numpy[examples]")
    assert_close(import_file(out["torch"] / "model.py").predict(X), want, "torch[examples]")


@by_example
def test_example_torch_loss_and_gradients_match_one_engine_batch(example, example_exports):
    """train.py's targets and loss (with the terminal Softmax/sigmoid fused) against the engine."""
    loaded, run, out = example_exports(example)
    train = import_train(out["torch"])
    model = loaded.model
    X, y = run.dataset.X[:32], run.dataset.y[:32]
    T = prepare_targets(model.loss, y, run.dataset.task, run.dataset.n_classes, model.loss_shape, np.float32)
    labels = train.encode_labels(y) if train.TASK == "classification" else y
    np.testing.assert_array_equal(train.prepare_targets(labels).astype(np.float32), T)
    Xp = preprocess(loaded.meta, X).astype(np.float32)
    training = not has_dropout(model)  # dropout masks are random on both sides: compare evaluation mode
    want_loss, want = engine_gradients(loaded, Xp, T, training=training)
    got_loss, got = torch_gradients(train.exported.load_model(), Xp, T, train.loss_fn, training=training)
    assert got_loss == pytest.approx(want_loss, rel=1e-5)
    assert_gradients_close(got, want, "torch-grad[examples]")


def test_fused_softmax_is_skipped_for_the_loss_but_kept_for_predictions(example_exports):
    loaded, run, out = example_exports(EXAMPLES / "moons_mlp.json")
    net = import_file(out["torch"] / "model.py").load_model()
    x = torch.as_tensor(preprocess(loaded.meta, run.dataset.X[:5]), dtype=torch.float32)
    logits, probs = net(x, for_loss=True), net(x)
    torch.testing.assert_close(torch.softmax(logits, dim=-1), probs)
    np.testing.assert_allclose(probs.detach().numpy().sum(axis=1), 1.0, rtol=1e-6)


# ---- training with the exported script ---------------------------------------------------------
OPTIMIZER_SETUPS = [
    {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}},
    {"optimizer": {"name": "nesterov", "lr": 0.05}, "weight_decay": 0.01, "clip_norm": 0.5},
    {"optimizer": {"name": "momentum", "lr": 0.05}, "clip_value": 0.02, "clip_norm": 0.5},
    {"optimizer": {"name": "adam", "lr": 0.01}, "weight_decay": {"l1": 0.001, "l2": 0.01}},
    {"optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.1}},
    {"optimizer": {"name": "rmsprop", "lr": 0.01, "momentum": 0.5, "centered": True}},
    {"optimizer": {"name": "adagrad", "lr": 0.1, "lr_decay": 0.01}},
]


@pytest.mark.parametrize("setup", OPTIMIZER_SETUPS,
                         ids=[s["optimizer"]["name"] + ("-clip_value" if "clip_value" in s else "")
                              for s in OPTIMIZER_SETUPS])
def test_training_steps_of_the_exported_script_match_the_engine(setup, tmp_path):
    """Same weights, same batch: two steps of train.py equal two engine steps (float32)."""
    graph = Graph.load(EXAMPLES / "moons_mlp.json")
    graph.training.update(setup, normalize=True)
    run = prepare_run(graph, EXAMPLES, epochs=1)
    save_model(tmp_path / "m.bpmodel", run.model, run.meta())
    folder = export_model(tmp_path / "m.bpmodel", "torch", tmp_path / "torch")
    train = import_train(folder)
    net = train.exported.load_model().train()
    optimizer = train.make_optimizer(net.parameters())
    xb, _yb = run.train.X[:32].astype(np.float32), run.train.y[:32]
    tb = run.trainer.T[:32]
    lr = run.trainer.optimizer.base_lr
    for _ in range(2):
        want_loss = run.trainer.train_step(xb, tb, lr)
        got_loss = train.train_step(net, optimizer, torch.as_tensor(xb), torch.as_tensor(tb))
        assert got_loss == pytest.approx(want_loss, rel=1e-5)
    loaded = LoadedModel(run.model.graph, run.model, run.meta())
    want = torch_state(loaded)
    for key, value in net.state_dict().items():
        assert_close(value.numpy(), want[key], f"train-step[{setup['optimizer']['name']}]", rtol=1e-5)
    assert not np.allclose(run.model.params, load_model(tmp_path / "m.bpmodel").model.params)


@pytest.mark.parametrize("schedule", [
    {"name": "step", "every": 2, "gamma": 0.5, "warmup": 1.0}, {"name": "exponential", "gamma": 0.9},
    {"name": "linear", "final_lr": 0.001, "epochs": 4}, {"name": "cosine", "final_lr": 0.0, "warmup": 0.5},
], ids=lambda s: s["name"])
def test_learning_rate_schedule_of_the_exported_script_matches_the_engine(schedule, tmp_path):
    from engine.optim import lr_at, validate_schedule

    graph = Graph.load(EXAMPLES / "xor.json")
    graph.training["schedule"] = schedule
    model = compile_graph(graph)
    save_model(tmp_path / "m.bpmodel", model, {"training": graph.training})
    train = import_train(export_model(tmp_path / "m.bpmodel", "torch", tmp_path / "torch"))
    for e in (0.0, 0.25, 1.0, 2.5, 3.99, 5.0, 7.0):
        want = lr_at(validate_schedule(schedule), 0.1, e, 6)
        assert train.lr_at(e, 0.1, 6) == pytest.approx(want, rel=1e-12)


@pytest.fixture(scope="module")
def moons_torch(tmp_path_factory, example_exports):
    loaded, run, out = example_exports(EXAMPLES / "moons_mlp.json")
    folder = out["torch"]
    data = tmp_path_factory.mktemp("data") / "data.npz"
    np.savez(data, X=run.dataset.X[:96], y=run.dataset.y[:96])
    return folder, data


def test_torchrun_with_two_processes_trains_one_epoch(moons_torch, tmp_path):
    folder, data = moons_torch
    out = tmp_path / "trained.pt"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(folder / "train.py"), str(data), "--epochs", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "epoch 1/1" in proc.stdout
    before = torch.load(folder / "state_dict.pt", weights_only=True)
    after = torch.load(out, weights_only=True)
    assert set(after) == set(before)
    assert all(torch.isfinite(v).all() for v in after.values())
    assert not torch.equal(after["h1.weight"], before["h1.weight"])


def test_plain_python_runs_the_training_script_in_one_process(moons_torch, tmp_path):
    folder, data = moons_torch
    out = tmp_path / "trained.pt"
    command = [sys.executable, str(folder / "train.py"), str(data), "--epochs", "1", "--out", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "epoch 1/1" in proc.stdout and out.exists()


# ---- files, CLI, layout ---------------------------------------------------------------------------
def test_cli_export_and_predict_agree_with_the_exported_scripts(example_exports, tmp_path, capsys):
    loaded, run, out = example_exports(EXAMPLES / "spirals.json")
    model_file = out["numpy"].parent / "m.bpmodel"
    X = run.dataset.X[:20]
    np.savez(tmp_path / "in.npz", X=X)
    assert main(["predict", str(model_file), str(tmp_path / "in.npz"), "-o", str(tmp_path / "cli.npy")]) == 0
    assert main(["export", str(model_file), "--format", "onnx", "-o", str(tmp_path / "s.onnx")]) == 0
    assert "exported onnx" in capsys.readouterr().out
    cli = np.load(tmp_path / "cli.npy")
    assert_close(onnx_predict(tmp_path / "s.onnx", X), cli, "onnx[cli]")
    for fmt in ("numpy", "torch"):
        proc = subprocess.run([sys.executable, str(out[fmt] / "model.py"), str(tmp_path / "in.npz"), "-o",
                               str(tmp_path / f"{fmt}.npy")], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert_close(np.load(tmp_path / f"{fmt}.npy"), cli, f"{fmt}[cli]")


def test_folder_layout_and_readable_names(example_exports):
    loaded, run, out = example_exports(EXAMPLES / "moons_mlp.json")
    assert sorted(p.name for p in out["torch"].iterdir()) == ["README.md", "model.py", "state_dict.pt",
                                                               "train.py", "weights.npz"]
    assert sorted(p.name for p in out["numpy"].iterdir()) == ["README.md", "model.py", "weights.npz"]
    source = (out["torch"] / "model.py").read_text()
    assert "self.h1 = nn.Linear(2, 16, bias=True)" in source and "logits = self.logits(r2)" in source
    assert "import torch" not in (out["numpy"] / "model.py").read_text()
    state = torch.load(out["torch"] / "state_dict.pt", weights_only=True)
    np.testing.assert_array_equal(state["h1.weight"].numpy(), loaded.model.runtimes["h1"].W["W"].T)
    with np.load(out["numpy"] / "weights.npz") as npz:
        np.testing.assert_array_equal(npz["h1.W"], loaded.model.runtimes["h1"].W["W"])
        mean = loaded.meta["preprocessing"]["normalise"]["mean"]
        np.testing.assert_array_equal(npz["preprocessing/mean"], mean)


def test_onnx_file_names_its_tensors_after_the_graph(example_exports):
    loaded, run, out = example_exports(EXAMPLES / "moons_mlp.json")
    proto = onnx.load(str(out["onnx"]))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version >= 17
    assert [i.name for i in proto.graph.input] == ["x"] and [o.name for o in proto.graph.output] == ["p"]
    assert {"h1.W", "h1.b", "logits.W"} <= {t.name for t in proto.graph.initializer}
    assert {"h1", "r1", "logits"} <= {name for node in proto.graph.node for name in node.output}
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["backprop.preprocessing"]) == loaded.meta["preprocessing"]
    assert Graph.from_json(props["backprop.graph"]) == loaded.graph


def test_node_ids_that_are_python_names_still_export(tmp_path):
    g = Graph("awkward")
    for nid, typ, params in [("input", "Input", {"shape": [3]}), ("lambda", "Dense", {"units": 4}),
                             ("relu", "Activation", {"function": "relu"}), ("forward", "Dense", {"units": 4}),
                             ("W", "Activation", {"function": "sigmoid"}),
                             ("training", "Dense", {"units": 2}), ("np", "Softmax", {})]:
        g.add_node(typ, params, nid)
    for a, b in [("input", "lambda"), ("lambda", "relu"), ("relu", "forward"), ("forward", "W"),
                 ("W", "training"), ("training", "np")]:
        g.connect(a, b)
    g.training = {"loss": "cross_entropy"}
    rng = np.random.default_rng(5)
    model = compile_graph(g)
    randomise(model, rng)
    loaded = save_with_normalisation(tmp_path / "m.bpmodel", model, rng)
    X = raw_inputs(loaded, 6, rng)
    want = engine_predict(loaded, X)
    for fmt in ("numpy", "torch"):
        folder = export_model(tmp_path / "m.bpmodel", fmt, tmp_path / fmt)
        assert_close(import_file(folder / "model.py").predict(X), want, f"{fmt}[names]")
    assert set(plan(loaded).names.values()) >= {"lambda_", "forward_", "training_", "relu"}


# ---- refusals and safety --------------------------------------------------------------------------
@pytest.fixture
def odd_layer(monkeypatch):
    """A registered layer type whose exporters are missing (ONNX) or refuse a setting (NumPy)."""
    def refuse(ctx, n):
        raise ExportError("its 'mode' setting has no NumPy form")

    layer = LayerType(name="Odd", category="dense", help="test only", shape=lambda p, s: s[0],
                      forward=lambda rt, xs: xs[0], backward=lambda rt, dy: [dy],
                      exporters={"torch": lambda ctx, n: ctx.expr(n.x[0]), "numpy": refuse})
    monkeypatch.setitem(REGISTRY, "Odd", layer)
    g = Graph("odd")
    g.add_node("Input", {"shape": [2]}, "x")
    g.add_node("Odd", {}, "weird")
    g.add_node("Dense", {"units": 1}, "o")
    g.connect("x", "weird")
    g.connect("weird", "o")
    model = compile_graph(g)
    return LoadedModel(model.graph, model, {"training": g.training})


def test_a_layer_without_an_exporter_is_refused_naming_the_node(odd_layer, tmp_path):
    with pytest.raises(ExportError, match=r"node 'weird'.*Odd declares no onnx exporter") as err:
        export_loaded(odd_layer, "onnx", tmp_path / "m.onnx")
    assert err.value.node == "weird" and not (tmp_path / "m.onnx").exists()


def test_a_setting_an_exporter_refuses_is_reported_with_the_node_and_why(odd_layer, tmp_path):
    with pytest.raises(ExportError, match=r"node 'weird' \(Odd\) to NumPy: its 'mode' setting has no NumPy"):
        export_loaded(odd_layer, "numpy", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_missing_onnx_package_says_how_to_install_it(example_exports, monkeypatch, tmp_path):
    loaded, _, _ = example_exports(EXAMPLES / "xor.json")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ExportError, match=r"pip install 'backprop-studio\[export\]'"):
        export_loaded(loaded, "onnx", tmp_path / "m.onnx")


def test_importing_the_engine_exporters_loads_neither_onnx_nor_torch():
    code = ("import sys, engine.export, engine.export.onnx, engine.export.torch, engine.export.numpy; "
            "print(sorted(m for m in ('onnx', 'torch', 'onnxruntime') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=EXAMPLES.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_failed_write_leaves_no_half_written_folder(example_exports, monkeypatch, tmp_path):
    loaded, _, _ = example_exports(EXAMPLES / "xor.json")
    real = Path.write_bytes
    calls = []

    def flaky(self, data):
        calls.append(self)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", flaky)
    with pytest.raises(OSError):
        export_loaded(loaded, "torch", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_exporting_again_replaces_an_export_but_never_a_foreign_folder(example_exports, tmp_path):
    loaded, _, _ = example_exports(EXAMPLES / "xor.json")
    first = export_loaded(loaded, "numpy", tmp_path / "out")
    (first / "model.py").write_text("# stale")
    export_loaded(loaded, "numpy", tmp_path / "out")
    assert (first / "model.py").read_text().startswith('"""xor')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ExportError, match="not empty"):
        export_loaded(loaded, "torch", tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "empty"])
def test_damaged_model_files_give_a_clear_error(example_exports, tmp_path, capsys, damage):
    loaded, _, out = example_exports(EXAMPLES / "xor.json")
    data = (out["numpy"].parent / "m.bpmodel").read_bytes()
    bad = tmp_path / "bad.bpmodel"
    bad.write_bytes({"truncated": data[: len(data) // 2], "not a zip": b"hello" * 10, "empty": b""}[damage])
    with pytest.raises(ModelFileError, match="bad.bpmodel"):
        export_model(bad, "onnx", tmp_path / "m.onnx")
    assert main(["export", str(bad), "--format", "torch", "-o", str(tmp_path / "t")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.bpmodel"]


class _Payload:
    """Unpickling this would create a file: proof that a loader executed code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_model_files_and_exported_weights_never_execute_code(example_exports, tmp_path):
    loaded, _, out = example_exports(EXAMPLES / "xor.json")
    marker = tmp_path / "executed"
    # a .bpmodel whose weights.npz holds a pickle
    buf = io.BytesIO()
    np.savez(buf, **{"h.W": np.array([_Payload(marker)], dtype=object)})
    src = out["numpy"].parent / "m.bpmodel"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp_path / "evil.bpmodel", "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, buf.getvalue() if name == "weights.npz" else zin.read(name))
    with pytest.raises(ModelFileError):
        export_model(tmp_path / "evil.bpmodel", "numpy", tmp_path / "np")
    # an exported state_dict.pt replaced by a pickle: the exported loader refuses it
    evil_pt = tmp_path / "evil.pt"
    torch.save({"h.weight": _Payload(marker)}, evil_pt)
    module = import_file(out["torch"] / "model.py")
    with pytest.raises(Exception, match="(?i)weights only|unpickl"):
        module.load_model(evil_pt)
    assert not marker.exists()
