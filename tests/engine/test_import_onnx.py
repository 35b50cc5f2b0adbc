"""ONNX import: our own exports come back as they were; other files are refused clearly.

Round trip: every example graph and every layer case of the shared table, exported to ONNX
by ``engine.export`` and imported back, gives the same graph (with the file's Backprop
Studio metadata: exactly; without it: the same layers, wires and computing parameters up to
node names) and the same predictions on raw features (the folded normalisation comes back as
the model file's preprocessing). Files that are not ONNX, cut short, or hold what Backprop
Studio cannot compute are refused naming the node, its operator and why, by the API and by
``backprop import`` (exit 1, one line, nothing written).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from layer_harness import CASES
from onnx import TensorProto, helper, numpy_helper
from onnx_graphs import onnx_file
from test_export import EXAMPLE_FILES, assert_close, case_graph, onnx_predict, randomise

from engine.cli import main
from engine.compiler import compile_graph
from engine.errors import ImportModelError
from engine.export import export_loaded
from engine.graph import Graph
from engine.importers import import_model
from engine.importers.onnx import import_onnx
from engine.modelfile import LoadedModel, load_model
from engine.session import preprocess

NOT_CARRIED = {"init", "init_scale", "recurrent_init", "recurrent_scale", "forget_bias", "truncate"}
"""Parameters that shape training only; ONNX has no place for them."""


# ---- helpers -----------------------------------------------------------------------------------
def exported(graph: Graph, folder: Path, seed: int = 0, normalise: bool = True) -> tuple[LoadedModel, Path]:
    """The graph with random weights (and random normalisation statistics), exported to ONNX."""
    model = compile_graph(graph, seed=seed)
    rng = np.random.default_rng(seed + 1)
    randomise(model, rng)
    keep_unsaturated(model)
    shape = model.shapes[model.input_id]
    meta = {"task": "regression"}
    if normalise:
        meta["preprocessing"] = {"normalise": {"mean": rng.normal(0, 2, shape).tolist(),
                                               "std": rng.uniform(0.5, 3.0, shape).tolist()}}
    loaded = LoadedModel(model.graph, model, meta)
    path = folder / f"{graph.name or 'net'}.onnx"
    export_loaded(loaded, "onnx", path)
    return loaded, path


def keep_unsaturated(model) -> None:
    """Random weights of σ = 0.5 / max(1, √fan_in / 2): wide and deep layers (a CNN's 3×3×C
    windows) at σ = 0.5 would drive every Softmax to one-hot outputs, which agree between two
    runtimes whatever their logits."""
    state = model.state_dict()
    for key, value in state.items():
        name = key.rsplit(".", 1)[1]
        if name in ("W", "Wx", "Wh") and value.ndim >= 2:
            fan_in = value.shape[0] if name != "W" or value.ndim == 2 else int(np.prod(value.shape[1:]))
            state[key] = value / max(1.0, np.sqrt(fan_in) / 2)
    model.load_state_dict(state)


def without_metadata(path: Path) -> Path:
    """A copy of the file without Backprop Studio's metadata, as another tool would write it."""
    proto = onnx.load(path)
    del proto.metadata_props[:]
    bare = path.with_name(f"bare_{path.name}")
    onnx.save(proto, bare)
    return bare


def predictions(loaded: LoadedModel, X: np.ndarray) -> np.ndarray:
    return loaded.model.predict(preprocess(loaded.meta, X))


def raw_features(loaded: LoadedModel, n: int = 16) -> np.ndarray:
    shape = loaded.model.shapes[loaded.model.input_id]
    return np.random.default_rng(5).normal(0, 3, size=(n, *shape)).astype(np.float32)


def structure(loaded: LoadedModel) -> tuple:
    """The design up to node names: layers in topological order with the parameters that
    change what they compute (axes counted from the front, reshapes and paddings resolved) and the wires
    between their positions."""
    graph, model = loaded.graph, loaded.model
    order = graph.topological_order()
    pos = {nid: i for i, nid in enumerate(order)}
    layers = []
    for nid in order:
        node = graph.nodes[nid]
        params = {k: v for k, v in node.params.items() if k not in NOT_CARRIED}
        rank = len(model.runtimes[nid].in_shapes[0]) if model.runtimes[nid].in_shapes else 0
        if "axis" in params and rank:
            params["axis"] %= rank
        if node.type == "Reshape":
            params["shape"] = model.shapes[nid]
        if "padding" in params:  # "same" is the equal padding of an odd kernel: compare what it gives
            params["padding"] = ("giving", model.shapes[nid])
        if node.params.get("function") == "prelu":
            params.pop("alpha")  # its initial slope; the trained one is the weight
        layers.append((node.type, sorted(params.items())))
    wires = sorted((pos[e.src], e.src_port, pos[e.dst], e.dst_port) for e in graph.edges)
    return layers, wires


def weights_by_position(loaded: LoadedModel) -> list:
    order = loaded.graph.topological_order()
    state = loaded.model.state_dict()
    return [(i, name, state[f"{nid}.{name}"]) for i, nid in enumerate(order)
            for name in sorted(k.split(".", 1)[1] for k in state if k.split(".", 1)[0] == nid)]


def assert_same_network(got: LoadedModel, want: LoadedModel, exact_graph: bool) -> None:
    if exact_graph:
        assert got.graph == want.graph
    assert structure(got) == structure(want)
    for (i, name, a), (j, other, b) in zip(weights_by_position(got), weights_by_position(want), strict=True):
        assert (i, name) == (j, other)
        np.testing.assert_array_equal(a, b, err_msg=f"layer {i} weight {name}")
    X = raw_features(want)
    np.testing.assert_allclose(predictions(got, X), predictions(want, X), rtol=1e-6, atol=1e-6)


def assert_predicts_like_onnxruntime(loaded: LoadedModel, path: Path) -> None:
    """The imported network against onnxruntime running the file itself (float32, 1e-5
    relative to the largest output), on raw features that normalise to N(0, 1)."""
    shape = loaded.model.shapes[loaded.model.input_id]
    X = np.random.default_rng(6).normal(size=(16, *shape))
    norm = loaded.meta["preprocessing"]["normalise"]
    if norm:
        X = X * np.asarray(norm["std"]) + np.asarray(norm["mean"])
    X = X.astype(np.float32)
    assert_close(predictions(loaded, X), onnx_predict(path, X), f"import-vs-ort[{path.stem}]")


# ---- round trips -------------------------------------------------------------------------------
@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_every_example_comes_back_from_onnx_as_it_was(example, tmp_path):
    want, path = exported(Graph.load(example), tmp_path)
    got = import_onnx(path)
    assert_same_network(got, want, exact_graph=True)
    assert got.meta["preprocessing"] == want.meta["preprocessing"]  # the float64 statistics, exactly
    assert got.graph.training == want.graph.training and got.graph.name == want.graph.name

    bare = import_onnx(without_metadata(path))  # only the ONNX operators to go by
    assert_same_network(bare, want, exact_graph=False)
    assert_predicts_like_onnxruntime(got, path)
    assert_predicts_like_onnxruntime(bare, path)
    norm, stored = bare.meta["preprocessing"]["normalise"], want.meta["preprocessing"]["normalise"]
    for key in ("mean", "std"):
        np.testing.assert_array_equal(np.float32(norm[key]), np.float32(stored[key]))
    assert set(bare.graph.nodes) == set(want.graph.nodes)  # ids from the tensor names


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_layer_case_comes_back_from_onnx(case, tmp_path):
    want, path = exported(case_graph(case), tmp_path, normalise=False)
    assert_same_network(import_onnx(path), want, exact_graph=True)
    bare = import_onnx(without_metadata(path))
    assert_same_network(bare, want, exact_graph=False)
    assert bare.meta["preprocessing"] == {"normalise": None}
    assert_predicts_like_onnxruntime(bare, path)


def test_imported_model_predicts_like_onnxruntime_and_saves_as_a_model_file(tmp_path):
    want, path = exported(Graph.load(EXAMPLE_FILES[0]), tmp_path)
    got = import_model(path)
    X = raw_features(got, 32)
    np.testing.assert_allclose(predictions(got, X), onnx_predict(path, X), rtol=1e-5, atol=1e-6)
    assert main(["import", str(path), "-o", str(tmp_path / "m.bpmodel")]) == 0
    again = load_model(tmp_path / "m.bpmodel")
    assert again.graph == want.graph and again.meta["imported_from"]["file"] == path.name
    np.testing.assert_array_equal(predictions(again, X), predictions(got, X))


# ---- hand-made ONNX graphs ---------------------------------------------------------------------
W43 = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def test_gemm_with_transposed_weight_alpha_and_beta_is_a_dense_layer(tmp_path):
    path = onnx_file(tmp_path / "gemm.onnx", [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc",
                                                               transB=1, alpha=2.0, beta=0.5)],
                     {"w": W43.T, "b": [1.0, 2.0, 3.0]})
    got = import_onnx(path)
    (dense,) = [n for n in got.graph.nodes.values() if n.type == "Dense"]
    np.testing.assert_allclose(got.model.runtimes[dense.id].W["W"], 2 * W43)
    np.testing.assert_allclose(got.model.runtimes[dense.id].W["b"], [0.5, 1.0, 1.5])
    X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(got.model.predict(X), onnx_predict(path, X), rtol=1e-6)


def test_shape_subgraphs_and_erf_gelu_fold_into_a_reshape_and_an_activation(tmp_path):
    """PyTorch's x.view(x.size(0), -1) and its erf GELU, written out as PyTorch exports them."""
    t = {k: f"/{k}_output_0" for k in ("s", "n", "n1", "target", "flat", "mm", "z", "d", "e", "e1", "m")}
    nodes = [
        helper.make_node("Shape", ["x"], [t["s"]]),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", [t["s"], "zero"], [t["n"]], axis=0),
        helper.make_node("Unsqueeze", [t["n"], "axes0"], [t["n1"]]),
        helper.make_node("Concat", [t["n1"], "minus1"], [t["target"]], axis=0),
        helper.make_node("Reshape", ["x", t["target"]], [t["flat"]], name="/view/Reshape"),
        helper.make_node("MatMul", [t["flat"], "w"], [t["mm"]], name="/fc/MatMul"),
        helper.make_node("Add", [t["mm"], "b"], [t["z"]], name="/fc/Add"),
        helper.make_node("Div", [t["z"], "sqrt2"], [t["d"]], name="/act/Div"),
        helper.make_node("Erf", [t["d"]], [t["e"]], name="/act/Erf"),
        helper.make_node("Add", [t["e"], "one"], [t["e1"]], name="/act/Add"),
        helper.make_node("Mul", [t["z"], t["e1"]], [t["m"]], name="/act/Mul"),
        helper.make_node("Mul", [t["m"], "half"], ["y"], name="/act/Mul_1"),
    ]
    inits = {"axes0": [0], "minus1": [-1], "w": W43, "b": [0.1, -0.2, 0.3], "sqrt2": np.float32(np.sqrt(2)),
             "one": np.float32(1), "half": np.float32(0.5)}
    path = onnx_file(tmp_path / "gelu.onnx", nodes, inits, in_shape=("N", 2, 2))
    got = import_onnx(path)
    assert [(n.id, n.type, n.params.get("function")) for n in got.graph.nodes.values()] == [
        ("x", "Input", None), ("view", "Reshape", None), ("fc", "Dense", None), ("y", "Activation", "gelu")]
    X = np.random.default_rng(1).normal(size=(6, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(got.model.predict(X), onnx_predict(path, X), rtol=1e-6, atol=1e-7)


def test_a_model_exported_with_a_fixed_batch_size_takes_any_batch(tmp_path):
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"])]
    path = onnx_file(tmp_path / "fixed.onnx", nodes, {"shape": [1, -1], "w": W43}, in_shape=(1, 2, 2))
    got = import_onnx(path)
    assert [n.type for n in got.graph.nodes.values()] == ["Input", "Reshape", "Dense"]
    X = np.random.default_rng(2).normal(size=(7, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(got.model.predict(X), X.reshape(7, 4) @ W43, rtol=1e-6)


REFUSALS = [
    ("relu6", [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="act")], {"lo": np.float32(0),
     "hi": np.float32(6)}, r"node 'act' \(Clip\): the element-wise computation .* is none of Backprop Studio's"),
    ("transA", [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transA=1)], {"w": np.ones((4, 4))},
     r"node 'fc' \(Gemm\): transA = 1"),
    ("unknown op", [helper.make_node("LpNormalization", ["x"], ["y"], name="norm")], {},
     r"node 'norm' \(LpNormalization\): Backprop Studio has no layer for this operator"),
    ("softmax axis", [helper.make_node("Reshape", ["x", "s"], ["r"]),
                      helper.make_node("Softmax", ["r"], ["y"], name="sm", axis=1)], {"s": [0, 2, 2]},
     r"node 'sm' \(Softmax\): it normalises axis 1"),
    ("product of branches", [helper.make_node("Gemm", ["x", "w"], ["a"]), helper.make_node("Gemm", ["x", "w"], ["b"]),
                             helper.make_node("Mul", ["a", "b"], ["y"], name="gate")], {"w": np.ones((4, 4))},
     r"node 'gate' \(Mul\): it combines two branches"),
    ("swish", [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"], name="swish")],
     {}, r"node 'swish' \(Mul\): the element-wise computation \(.*swish\) is none of Backprop Studio's activations"),
    ("batch mixing", [helper.make_node("Reshape", ["x", "s"], ["y"], name="r")], {"s": [-1]},
     r"node 'r' \(Reshape\): it reshapes .* which mixes examples"),
    ("custom domain", [helper.make_node("FusedGemm", ["x", "w"], ["y"], name="f", domain="com.microsoft")],
     {"w": np.ones((4, 4))}, r"node 'f' \(FusedGemm\): operators of the 'com.microsoft' domain"),
    ("per-unit PReLU", [helper.make_node("PRelu", ["x", "s"], ["y"], name="p")], {"s": [0.1, 0.2, 0.3, 0.4]},
     r"node 'p' \(PRelu\): it learns 4 different slopes"),
]


def lstm(name: str = "rnn", inputs: tuple[str, ...] = ("t", "W", "R"), outputs: tuple[str, ...] = ("Y", "Y_h"),
         **attrs) -> list:
    """Transpose → LSTM (4 units on 3 features) → the last state, as PyTorch exports one."""
    return [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
            helper.make_node("LSTM", list(inputs), list(outputs), name=name, hidden_size=4, **attrs),
            helper.make_node("Squeeze", [outputs[-1], "axis0"], ["y"])]


LSTM_WEIGHTS = {"W": np.full((1, 16, 3), 0.1), "R": np.full((1, 16, 4), 0.1), "axis0": [0]}
RECURRENT_REFUSALS = [
    ("reverse", lstm(direction="reverse"), r"node 'rnn' \(LSTM\): only the forward direction"),
    ("cell state", lstm(outputs=("Y", "Y_h", "Y_c")), r"node 'rnn' \(LSTM\): its cell state output Y_c is used"),
    ("initial state", lstm(inputs=("t", "W", "R", "", "", "h0")),
     r"node 'rnn' \(LSTM\): its initial hidden state is not zero"),
    ("gate functions", lstm(activations=["Relu", "Tanh", "Tanh"]),
     r"node 'rnn' \(LSTM\): activations \['Relu', 'Tanh', 'Tanh'\] are not Backprop Studio's"),
    ("clip", lstm(clip=3.0), r"node 'rnn' \(LSTM\): clipping the cell's inputs"),
]


@pytest.mark.parametrize("name,nodes,message", RECURRENT_REFUSALS, ids=[r[0] for r in RECURRENT_REFUSALS])
def test_recurrent_settings_without_a_layer_are_refused(name, nodes, message, tmp_path):
    inits = {**LSTM_WEIGHTS, "h0": np.ones((1, 2, 4))}
    path = onnx_file(tmp_path / "m.onnx", nodes, inits, in_shape=(2, 5, 3))
    with pytest.raises(ImportModelError, match=message):
        import_onnx(path)


def test_a_hand_made_lstm_with_zero_initial_state_predicts_like_onnxruntime(tmp_path):
    rng = np.random.default_rng(3)
    inits = {"W": rng.normal(0, 0.5, (1, 16, 3)), "R": rng.normal(0, 0.5, (1, 16, 4)), "B": rng.normal(0, 0.5, (1, 32)),
             "h0": np.zeros((1, 2, 4)), "axis0": [0]}
    path = onnx_file(tmp_path / "m.onnx", lstm(inputs=("t", "W", "R", "B", "", "h0", "h0")), inits, in_shape=(2, 5, 3))
    got = import_onnx(path)
    assert [n.type for n in got.graph.nodes.values()] == ["Input", "LSTM"]
    X = rng.normal(size=(2, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(got.model.predict(X), onnx_predict(path, X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,nodes,inits,message", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_what_has_no_layer_is_refused_naming_the_node_its_op_and_why(name, nodes, inits, message, tmp_path):
    path = onnx_file(tmp_path / "m.onnx", nodes, inits)
    with pytest.raises(ImportModelError, match=message):
        import_onnx(path)


def test_an_attribute_a_handler_does_not_read_is_refused(tmp_path, monkeypatch):
    from engine.importers import onnx_ops

    monkeypatch.setitem(onnx_ops.ATTRIBUTES, "Elu", ())  # as if the handler knew nothing of α
    path = onnx_file(tmp_path / "m.onnx", [helper.make_node("Elu", ["x"], ["y"], name="act", alpha=0.5)], {})
    with pytest.raises(ImportModelError, match=r"node 'act' \(Elu\): attribute 'alpha' is not supported"):
        import_onnx(path)


def test_files_without_one_input_and_one_output_or_too_old_are_refused(tmp_path):
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    with pytest.raises(ImportModelError, match=r"opset 11 is older than 13.*opset_version=13"):
        import_onnx(onnx_file(tmp_path / "old.onnx", relu, {}, opset=11))
    two = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in ("x", "x2")]
    with pytest.raises(ImportModelError, match=r"has 2 inputs \('x', 'x2'\); Backprop Studio networks have exactly"):
        import_onnx(onnx_file(tmp_path / "two.onnx", relu, {}, inputs=two))
    with pytest.raises(ImportModelError, match=r"input 'x' has no fixed size on axis 1 \(F\)"):
        import_onnx(onnx_file(tmp_path / "sym.onnx", relu, {}, in_shape=("N", "F")))
    constant = [helper.make_node("Identity", ["c"], ["y"])]
    with pytest.raises(ImportModelError, match=r"the output 'y' does not depend on the input"):
        import_onnx(onnx_file(tmp_path / "const.onnx", constant, {"c": np.ones(3)}))


@pytest.fixture
def good_onnx(tmp_path):
    return exported(Graph.load(EXAMPLE_FILES[0]), tmp_path)[1]


def broken_files(good: Path) -> dict[str, Path]:
    data = good.read_bytes()
    files = {"empty": b"", "text": b"this is not a model\n" * 20, "truncated": data[: len(data) // 2],
             "truncated_end": data[:-7], "zip": b"PK\x03\x04" + bytes(200)}
    out = {}
    for name, content in files.items():
        out[name] = good.with_name(f"{name}.onnx")
        out[name].write_bytes(content)
    return out


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "truncated_end", "zip"])
def test_malformed_and_truncated_files_give_one_line_and_exit_1_writing_nothing(kind, good_onnx, tmp_path, capsys):
    bad = broken_files(good_onnx)[kind]
    with pytest.raises(ImportModelError, match=rf"^{bad.name}: "):
        import_onnx(bad)
    target = tmp_path / "out.bpmodel"
    assert main(["import", str(bad), "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad.name}: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not target.exists() and not list(tmp_path.glob(".out.bpmodel*"))


def test_cli_writes_a_graph_file_that_checks_and_refuses_other_outputs(good_onnx, tmp_path, capsys):
    assert main(["import", str(good_onnx), "-o", str(tmp_path / "g.json")]) == 0
    assert "without weights" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "g.json")]) == 0
    assert main(["import", str(good_onnx), "-o", str(tmp_path / "g.txt")]) == 1
    assert "must be a .bpmodel or .json file" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "g.json")]) == 1
    assert "missing.onnx: no such file" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "g.json"), "-o", str(tmp_path / "h.json")]) == 1
    assert "cannot import '.json' files" in capsys.readouterr().err


def test_without_the_onnx_package_the_message_says_how_to_install_it(good_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportModelError, match=r"needs the 'onnx' package; install the export extra: "
                                               r"pip install 'backprop-studio\[export\]'"):
        import_onnx(good_onnx)


def test_every_operator_the_importer_maps_is_in_docs_import_md():
    from engine.importers import onnx_conv, onnx_recurrent  # noqa: F401  (they register operators)
    from engine.importers.onnx_ops import OPS

    text = (Path(__file__).resolve().parents[2] / "docs" / "import.md").read_text(encoding="utf-8")
    missing = sorted(name for name in OPS if f"`{name}`" not in text and f"`{name}(" not in text)
    assert not missing, f"docs/import.md does not mention {', '.join(missing)}"
