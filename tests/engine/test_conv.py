"""Convolution and pooling beyond the per-layer table (layer_harness.py runs every case's
forward, finite-difference backward, float32, round trip and exports): the kernels against
their NumPy references, the size arithmetic and its warnings, the shape errors people see,
LeNet-5's parameter count, a CNN's gradients through the compiler, and one training step
against PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from layer_harness import finite_difference

from engine.cli import main
from engine.compiler import compile_graph
from engine.graph import Graph
from engine.kernels import conv as K
from engine.layers import REGISTRY
from engine.layers import conv as conv_layer
from engine.training import TrainConfig, Trainer

GEOMETRIES = [  # (N, C, H, W, F, kh, kw, sh, sw, dh, dw, (top, bottom, left, right))
    (2, 1, 7, 6, 3, 3, 3, 1, 1, 1, 1, (0, 0, 0, 0)),
    (2, 2, 7, 9, 3, 3, 2, 2, 1, 1, 1, (1, 1, 2, 2)),
    (1, 3, 8, 8, 2, 3, 3, 2, 3, 2, 1, (2, 1, 0, 3)),
    (3, 2, 5, 5, 4, 5, 5, 1, 1, 1, 1, (2, 2, 2, 2)),
    (1, 1, 1, 9, 2, 1, 4, 1, 2, 1, 3, (0, 0, 3, 1)),
]


def _out(size: int, k: int, s: int, d: int, before: int, after: int) -> int:
    return (size + before + after - d * (k - 1) - 1) // s + 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_im2col_gemm_is_the_reference_convolution_and_col2im_its_adjoint(geometry, dtype):
    n, c, h, w, f, kh, kw, sh, sw, dh, dw, pads = geometry
    ho, wo = _out(h, kh, sh, dh, pads[0], pads[1]), _out(w, kw, sw, dw, pads[2], pads[3])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, c, h, w)).astype(dtype)
    W, b = rng.normal(size=(f, c, kh, kw)).astype(dtype), rng.normal(size=f).astype(dtype)
    cols = np.empty((c * kh * kw, n * ho * wo), dtype)
    K.im2col(x, kh, kw, sh, sw, dh, dw, pads[0], pads[2], ho, wo, cols)
    y = np.empty((n, f, ho * wo), dtype)
    K.rows_to_nchw(W.reshape(f, -1) @ cols, b, y)
    ref = K.reference_conv2d(x, W, b, (sh, sw), (dh, dw), pads)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y.reshape(ref.shape), ref, rtol=tol, atol=tol)
    g = rng.normal(size=cols.shape).astype(dtype)
    dx = np.empty_like(x)
    K.col2im(g, kh, kw, sh, sw, dh, dw, pads[0], pads[2], ho, wo, dx)
    assert float(np.sum(cols * g, dtype=np.float64)) == pytest.approx(float(np.sum(x * dx, dtype=np.float64)),
                                                                      rel=1e-4 if dtype == np.float32 else 1e-12)


STRIP_GEOMETRIES = [g for g in GEOMETRIES if g[7] == 1] + [
    (2, 3, 9, 11, 2, 3, 3, 1, 2, 2, 1, (1, 2, 0, 1)),  # column stride 2, row dilation 2, uneven padding
    (3, 1, 6, 6, 2, 5, 5, 1, 1, 1, 1, (0, 0, 0, 0)),   # a kernel almost as large as the image (2×2 outputs)
    (2, 6, 14, 14, 4, 5, 5, 1, 1, 1, 1, (0, 0, 0, 0)),  # LeNet's second convolution, fewer filters
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("geometry", STRIP_GEOMETRIES, ids=str)
def test_the_strips_path_gives_im2cols_columns_and_col2ims_gradient(geometry, dtype):
    """im2col through strips (vertical stride 1) copies the same values as the direct loop,
    bit for bit, and its col2im adds the same terms (in another order)."""
    n, c, h, w, f, kh, kw, sh, sw, dh, dw, pads = geometry
    ho, wo = _out(h, kh, sh, dh, pads[0], pads[1]), _out(w, kw, sw, dw, pads[2], pads[3])
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, c, h, w)).astype(dtype)
    direct, strips = (np.full((c * kh * kw, n * ho * wo), np.nan, dtype) for _ in range(2))
    strip = np.full(K.strip_shape(c, n, kh, kw, dh, ho, wo), np.nan, dtype)
    K.im2col(x, kh, kw, sh, sw, dh, dw, pads[0], pads[2], ho, wo, direct)
    K.im2col_strips(x, kh, kw, dh, dw, pads[0], pads[2], ho, wo, sw, strip, strips)
    np.testing.assert_array_equal(strips, direct)
    g = rng.normal(size=direct.shape).astype(dtype)
    dx_direct, dx_strips = np.full_like(x, np.nan), np.full_like(x, np.nan)
    K.col2im(g, kh, kw, sh, sw, dh, dw, pads[0], pads[2], ho, wo, dx_direct)
    K.col2im_strips(g, kh, kw, dh, dw, pads[0], pads[2], ho, wo, sw, strip, dx_strips)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(dx_strips, dx_direct, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k, f, q", [(25, 6, 4704), (150, 16, 800), (7, 5, 33), (3, 2, 1), (4, 3, 9)])
def test_the_weight_and_bias_gradient_sums_match_numpy_and_accumulate(k, f, q, dtype):
    """4×3 tiles plus the rows and columns left over, with and without accumulation."""
    rng = np.random.default_rng(k * f + q)
    cols, delta = rng.normal(size=(k, q)).astype(dtype), rng.normal(size=(f, q)).astype(dtype)
    expected = cols.astype(np.float64) @ delta.astype(np.float64).T
    out = np.full((k, f), 7.0, dtype)
    K.weight_gradient(cols, delta, False, out)
    tol = dict(rtol=1e-4, atol=1e-4 * math.sqrt(q)) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12 * q)
    np.testing.assert_allclose(out, expected, **tol)
    K.weight_gradient(cols, delta, True, out)
    np.testing.assert_allclose(out, 2 * expected, **tol)
    db = np.full(f, 3.0, dtype)
    K.bias_gradient(delta, False, db)
    np.testing.assert_allclose(db, delta.astype(np.float64).sum(axis=1), **tol)
    K.bias_gradient(delta, True, db)
    np.testing.assert_allclose(db, 2 * delta.astype(np.float64).sum(axis=1), **tol)


def test_the_weight_gradient_keeps_nan_and_infinity_where_they_belong():
    """Reassociation is the only fast-math licence: a NaN or an infinity in one row of the
    columns reaches exactly that row of ∂L/∂Wᵀ."""
    cols, delta = np.ones((9, 40)), np.ones((7, 40))
    cols[5, 17], cols[2, 3] = np.nan, np.inf
    out = np.zeros((9, 7))
    K.weight_gradient(cols, delta, False, out)
    assert np.isnan(out[5]).all() and np.isposinf(out[2]).all()
    others = np.delete(out, [2, 5], axis=0)
    assert (others == 40).all()


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("window", [(2, 2, 2, 2, (0, 0, 0, 0)), (3, 3, 2, 2, (1, 1, 1, 1)), (3, 2, 1, 2, (1, 1, 1, 1))],
                         ids=str)
def test_pool_kernels_match_the_sliding_window_reference(kind, window):
    kh, kw, sh, sw, pads = window
    x = np.random.default_rng(1).normal(size=(2, 3, 7, 8))
    ho, wo = _out(7, kh, sh, 1, pads[0], pads[1]), _out(8, kw, sw, 1, pads[2], pads[3])
    y = np.empty((2, 3, ho, wo))
    if kind == "max":
        K.max_pool_forward(x, kh, kw, sh, sw, pads[0], pads[2], y, np.empty(y.shape, np.int32))
    else:
        K.avg_pool_forward(x, kh, kw, sh, sw, pads[0], pads[2], y)
    np.testing.assert_allclose(y, K.reference_pool2d(x, kind, (kh, kw), (sh, sw), pads), rtol=1e-12)


def test_max_pool_sends_a_tied_gradient_to_the_first_maximum_and_propagates_nan():
    x = np.zeros((1, 1, 2, 4))
    x[0, 0] = [[1.0, 3.0, 5.0, 2.0], [3.0, 0.0, 5.0, 5.0]]
    y, arg = np.empty((1, 1, 1, 2)), np.empty((1, 1, 1, 2), np.int32)
    K.max_pool_forward(x, 2, 2, 2, 2, 0, 0, y, arg)
    np.testing.assert_array_equal(y[0, 0, 0], [3.0, 5.0])
    np.testing.assert_array_equal(arg[0, 0, 0], [1, 2])  # (0, 1) before (1, 0); (0, 2) before (1, 2), (1, 3)
    dx = np.empty_like(x)
    K.max_pool_backward(np.array([[[[10.0, 20.0]]]]), arg, dx)
    assert dx[0, 0, 0, 1] == 10.0 and dx[0, 0, 0, 2] == 20.0 and dx.sum() == 30.0
    x[0, 0, 1, 3] = np.nan
    K.max_pool_forward(x, 2, 2, 2, 2, 0, 0, y, arg)
    assert y[0, 0, 0, 0] == 3.0 and np.isnan(y[0, 0, 0, 1])


# ---- size arithmetic and warnings ---------------------------------------------------------
def arithmetic(type_name: str, params: dict, in_shape: tuple[int, ...]):
    layer = REGISTRY[type_name]
    return layer.arithmetic(layer.validate_params(params), [in_shape])


def test_lenet_first_layer_arithmetic_is_filled_in_with_its_numbers():
    a = arithmetic("Conv2D", {"filters": 6, "kernel_size": 5, "padding": 2}, (1, 28, 28))
    assert a.formulas == {"height": "(28 − 5 + 2·2)/1 + 1 = 28", "width": "(28 − 5 + 2·2)/1 + 1 = 28"}
    assert a.weights_formula == "(5·5·1 + 1)·6 = 156" and a.weights == 156
    assert a.out_shape == (6, 28, 28) and a.exact and a.warnings() == []
    no_bias = arithmetic("Conv2D", {"filters": 16, "kernel_size": [5, 3], "bias": False}, (6, 14, 14))
    assert no_bias.weights_formula == "5·3·6·16 = 1 440" and no_bias.weights == 1440


def test_a_stride_that_does_not_divide_says_what_is_dropped_and_what_divides():
    a = arithmetic("Conv2D", {"filters": 6, "kernel_size": 5, "stride": 2}, (3, 32, 32))
    height = a.axes[0]
    assert height.formula == "(32 − 5 + 2·0)/2 + 1 = 14.5 → 14"
    assert not a.exact and height.dropped == 1 and height.out == 14
    assert height.stride_fixes() == (1, 3) and height.padding_fixes() == ()  # 27 + 2P is always odd
    (first, second) = a.warnings()
    assert first.startswith("height: (32 − 5 + 2·0)/2 + 1 = 14.5 is not a whole number")
    assert "last 1 row" in first and "use stride 1 (height 28) or 3 (height 10) (no padding divides)" in first
    assert "last 1 column" in second
    padded = arithmetic("Conv2D", {"filters": 1, "kernel_size": 5, "stride": 3}, (1, 30, 30)).axes[0]
    assert padded.dropped == 1 and padded.padding_fixes() == (1,)  # (30 − 5 + 2)/3 + 1 = 10
    assert "use padding 1 (height 10), or stride 1 (height 26) or 5 (height 6)" in padded.advice()


def test_same_padding_dilation_and_pools_in_the_arithmetic():
    same = arithmetic("Conv2D", {"filters": 2, "kernel_size": [4, 3], "padding": "same"}, (1, 9, 9))
    assert same.axes[0].formula == "(9 − 4 + (1 + 2))/1 + 1 = 9" and same.out_shape == (2, 9, 9)
    dilated = arithmetic("Conv1D", {"filters": 2, "kernel_size": 3, "dilation": 2}, (1, 10)).axes[0]
    assert dilated.kernel_text == "2·(3 − 1) + 1 = 5" and dilated.formula == "(10 − 5 + 2·0)/1 + 1 = 6"
    pool = arithmetic("MaxPool2D", {}, (6, 28, 28))
    assert pool.formulas["width"] == "(28 − 2 + 2·0)/2 + 1 = 14" and pool.weights == 0
    odd = arithmetic("MaxPool2D", {}, (6, 7, 8))
    assert [w.split(":")[0] for w in odd.warnings()] == ["height"]


def _graph(nodes, edges) -> Graph:
    return Graph.from_dict({"format": "backprop-studio.graph", "version": 1,
                            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
                            "edges": [{"from": a, "to": b} for a, b in edges],
                            "training": {"loss": "cross_entropy"}})


def _strided():
    return _graph([("x", "Input", {"shape": [1, 32, 32]}), ("c", "Conv2D", {"filters": 2, "kernel_size": 5,
                                                                              "stride": 2}),
                   ("f", "Flatten", {}), ("d", "Dense", {"units": 3})], [("x", "c"), ("c", "f"), ("f", "d")])


def test_a_non_dividing_stride_is_a_warning_on_the_node_not_an_error(tmp_path, capsys):
    g = _strided()
    report = g.infer_shapes()
    assert report.problems == [] and g.problems() == []
    (warning,) = report.warnings_for("c")[:1]
    assert warning.node == "c" and str(warning).startswith("c: Conv2D 'c': height: (32 − 5 + 2·0)/2 + 1 = 14.5")
    assert report.shapes["c"] == (2, 14, 14)
    compile_graph(g)  # trains: the last row and column are simply not used
    g.save(tmp_path / "g.json")
    assert main(["check", str(tmp_path / "g.json")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: c: Conv2D 'c'") == 2 and "use stride 1 (height 28) or 3 (height 10)" in err


# ---- shape errors -------------------------------------------------------------------------
def _problem(layer: str, params: dict, shape: list[int]) -> str:
    g = _graph([("x", "Input", {"shape": shape}), ("n", layer, params)], [("x", "n")])
    (problem,) = g.infer_shapes().problems
    assert problem.node == "n"
    return problem.message


@pytest.mark.parametrize("layer, params, shape, words", [
    ("Conv2D", {}, [784], ["Conv2D 'n'", "(channels, height, width)", "(784,)", "insert a Reshape to (C, H, W)",
                           "(1, 28, 28)"]),
    ("Conv2D", {}, [3, 20], ["(3, 20)", "use Conv1D", "Reshape to (1, 3, 20)"]),
    ("Conv1D", {}, [1, 8, 8], ["(channels, length)", "use Conv2D for images", "Reshape to (1, 64)"]),
    ("MaxPool2D", {}, [12], ["MaxPool2D 'n'", "insert a Reshape"]),
    ("GlobalAvgPool2D", {}, [12], ["GlobalAvgPool2D 'n'", "insert a Reshape"]),
    ("Conv2D", {"kernel_size": 5}, [1, 4, 4], ["window height 5 is larger than the input height 4",
                                               "kernel_size to at most 4", "padding ≥ 1"]),
    ("Conv2D", {"kernel_size": 3, "dilation": 3}, [1, 6, 9], ["dilation 3: it spans 7", "at most 2"]),
    ("Conv2D", {"kernel_size": 3, "padding": "same", "stride": 2}, [1, 8, 8],
     ["'same' needs stride 1", "padding as numbers, e.g. [1, 1]"]),
    ("MaxPool2D", {"pool_size": 2, "padding": 2}, [1, 8, 8], ["more than half the pool size 2", "≤ 1"]),
    ("MaxPool1D", {"pool_size": 4}, [2, 3], ["pool_size to at most 3"]),
])
def test_shape_errors_name_the_node_and_say_how_to_fix_it(layer, params, shape, words):
    message = _problem(layer, params, shape)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_bad_parameters_are_refused_with_what_is_allowed():
    with pytest.raises(Exception, match=r"'padding' = 'full' is invalid; expected one of \"valid\", \"same\" or 2"):
        Graph().add_node("Conv2D", {"padding": "full"}, "c")
    with pytest.raises(Exception, match=r"'kernel_size' = \[3, 3, 3\] is invalid; expected 2 integers"):
        Graph().add_node("Conv2D", {"kernel_size": [3, 3, 3]}, "c")
    assert Graph().add_node("Conv2D", {"kernel_size": 5, "stride": [2, 1]}, "c").params["kernel_size"] == (5, 5)


# ---- LeNet-5 and a CNN through the compiler --------------------------------------------------
LENET = [("x", "Input", {"shape": [1, 28, 28]}), ("c1", "Conv2D", {"filters": 6, "kernel_size": 5, "padding": 2}),
         ("r1", "Activation", {}), ("p1", "MaxPool2D", {}), ("c2", "Conv2D", {"filters": 16, "kernel_size": 5}),
         ("r2", "Activation", {}), ("p2", "MaxPool2D", {}), ("f", "Flatten", {}), ("d1", "Dense", {"units": 120}),
         ("r3", "Activation", {}), ("d2", "Dense", {"units": 84}), ("r4", "Activation", {}),
         ("d3", "Dense", {"units": 10})]


def lenet() -> Graph:
    ids = [n[0] for n in LENET]
    return _graph(LENET, list(zip(ids[:-1], ids[1:], strict=True)))


def test_lenet5_has_61706_parameters():
    # by hand: (5·5·1 + 1)·6 + (5·5·6 + 1)·16 + (400 + 1)·120 + (120 + 1)·84 + (84 + 1)·10
    by_hand = 156 + 2416 + 48120 + 10164 + 850
    rows, total = lenet().summary()
    assert by_hand == 61706 and total == by_hand
    shapes = {r.node: r.output_shape for r in rows}
    assert shapes["c1"] == (6, 28, 28) and shapes["p1"] == (6, 14, 14) and shapes["c2"] == (16, 10, 10)
    assert shapes["p2"] == (16, 5, 5) and shapes["f"] == (400,)
    assert compile_graph(lenet()).param_count() == 61706


def test_conv_initialisation_uses_fan_in_of_channels_times_kernel_area():
    model = compile_graph(_graph([("x", "Input", {"shape": [3, 9, 9]}),
                                  ("c", "Conv2D", {"filters": 64, "kernel_size": [5, 4], "init": "he_uniform"})],
                                 [("x", "c")]), dtype="float64")
    W = model.runtimes["c"].W["W"]
    bound = math.sqrt(6.0 / (3 * 5 * 4))
    assert W.shape == (64, 3, 5, 4) and np.abs(W).max() <= bound and np.abs(W).max() > 0.95 * bound
    assert np.all(model.runtimes["c"].W["b"] == 0.0)


def cnn_with_every_image_layer() -> Graph:
    """Conv, BatchNorm, Dropout, activations, an Add (skip) and a channel Concat, both pools,
    global pooling, Flatten and Reshape, and a 1-D convolution: the layers an image uses."""
    nodes = [("x", "Input", {"shape": [2, 7, 7]}),
             ("c1", "Conv2D", {"filters": 3, "kernel_size": 3, "padding": "same"}),
             ("bn", "BatchNorm", {}), ("t", "Activation", {"function": "tanh"}),
             ("c2", "Conv2D", {"filters": 3, "kernel_size": 3, "padding": 1}),
             ("add", "Add", {}), ("drop", "Dropout", {"rate": 0.25}),
             ("c3", "Conv2D", {"filters": 2, "kernel_size": 1}), ("cat", "Concat", {"axis": 0}),
             ("mp", "MaxPool2D", {"pool_size": 3, "stride": 2, "padding": 1}),
             ("ap", "AvgPool2D", {"pool_size": 2, "stride": 1}), ("gap", "GlobalAvgPool2D", {}),
             ("f", "Flatten", {}), ("r", "Reshape", {"shape": [5, 9]}),
             ("c4", "Conv1D", {"filters": 2, "kernel_size": 3, "stride": 2}), ("f2", "Flatten", {}),
             ("join", "Concat", {}), ("out", "Dense", {"units": 3})]
    edges = [("x", "c1"), ("c1", "bn"), ("bn", "t"), ("t", "c2"), ("t", "add.in0"), ("c2", "add.in1"),
             ("add", "drop"), ("drop", "c3"), ("drop", "cat.in0"), ("c3", "cat.in1"), ("cat", "mp"),
             ("mp", "ap"), ("ap", "f"), ("f", "r"), ("r", "c4"), ("c4", "f2"), ("f2", "join.in0"),
             ("cat", "gap"), ("gap", "join.in1"), ("join", "out")]
    return _graph(nodes, edges)


@pytest.mark.parametrize("strip_run", [0, 10**9], ids=["dW-from-strips", "dW-from-columns"])
def test_gradients_through_a_cnn_with_every_image_layer_match_finite_differences(monkeypatch, strip_run):
    monkeypatch.setattr(conv_layer, "STRIP_RUN", strip_run)
    model = compile_graph(cnn_with_every_image_layer(), dtype="float64", seed=2)
    assert model.shapes["cat"] == (5, 7, 7) and model.shapes["ap"] == (5, 3, 3) and model.shapes["c4"] == (2, 4)
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(4, 2, 7, 7)), np.eye(3)[rng.integers(0, 3, 4)]

    def loss() -> float:
        for rt in model.runtimes.values():
            rt.rng = np.random.default_rng(5)
        return model.loss_and_grads(X, T)

    loss()
    analytic = model.grads.copy()
    np.testing.assert_allclose(analytic, finite_difference(loss, model.params), rtol=1e-5, atol=1e-8)


def test_a_training_step_allocates_no_new_columns():
    model = compile_graph(lenet())
    X = np.random.default_rng(0).normal(size=(8, 1, 28, 28)).astype(np.float32)
    T = np.eye(10, dtype=np.float32)[np.arange(8)]
    model.loss_and_grads(X, T)
    first = model.runtimes["c2"].scratch["0:cols"]
    model.loss_and_grads(X[::-1].copy(), T)
    c2 = model.runtimes["c2"]
    assert c2.scratch["0:cols"] is first and c2.cache["parts"][0][2]["cols"] is first
    assert first.shape == (6 * 5 * 5 * 8 * 10 * 10,) and first.dtype == np.float32  # one block: 8 images


@pytest.mark.parametrize("strip_run", [0, 10**9], ids=["dW-from-strips", "dW-from-columns"])
def test_one_sgd_momentum_step_of_a_small_cnn_equals_pytorch(monkeypatch, strip_run):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(conv_layer, "STRIP_RUN", strip_run)
    g = _graph([("x", "Input", {"shape": [1, 9, 9]}),
                ("c1", "Conv2D", {"filters": 4, "kernel_size": 3, "padding": 1}), ("r1", "Activation", {}),
                ("p1", "MaxPool2D", {"pool_size": 2, "stride": 2, "padding": 1}),
                ("c2", "Conv2D", {"filters": 5, "kernel_size": [3, 2], "stride": [1, 2], "dilation": [2, 1]}),
                ("r2", "Activation", {}), ("p2", "AvgPool2D", {"pool_size": 1}),
                ("f", "Flatten", {}), ("d", "Dense", {"units": 3})],
               [("x", "c1"), ("c1", "r1"), ("r1", "p1"), ("p1", "c2"), ("c2", "r2"), ("r2", "p2"),
                ("p2", "f"), ("f", "d")])
    g.training.update({"batch_size": 8, "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}})
    model = compile_graph(g, dtype="float32", seed=4)
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(16, 1, 9, 9)).astype(np.float32), rng.integers(0, 3, 16)
    trainer = Trainer(model, X, y, TrainConfig.from_training(g.training), n_classes=3)
    W = {nid: {k: torch.tensor(np.array(v)) for k, v in model.runtimes[nid].W.items()} for nid in ("c1", "c2", "d")}
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2, padding=1),
        torch.nn.Conv2d(4, 5, (3, 2), stride=(1, 2), dilation=(2, 1)), torch.nn.ReLU(), torch.nn.AvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(5 * 1 * 2, 3))
    assert model.shapes["c2"] == (5, 1, 2)
    with torch.no_grad():
        for module, nid in ((net[0], "c1"), (net[3], "c2")):
            module.weight.copy_(W[nid]["W"])
            module.bias.copy_(W[nid]["b"])
        net[7].weight.copy_(W["d"]["W"].T)
        net[7].bias.copy_(W["d"]["b"])
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for step in range(3):
        xb, yb = X[step * 4:step * 4 + 8], y[step * 4:step * 4 + 8]
        ours = trainer.train_step(xb, trainer.T[step * 4:step * 4 + 8], 0.1)
        opt.zero_grad()
        theirs = torch.nn.functional.cross_entropy(net(torch.from_numpy(xb)), torch.from_numpy(yb))
        theirs.backward()
        opt.step()
        assert ours == pytest.approx(theirs.item(), rel=1e-5)
    got = {"c1": net[0].weight, "c2": net[3].weight, "d": net[7].weight.T}
    for nid, tensor in got.items():
        want = tensor.detach().numpy()
        np.testing.assert_allclose(model.runtimes[nid].W["W"], want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    np.testing.assert_allclose(model.runtimes["c1"].W["b"], net[0].bias.detach().numpy(), rtol=1e-5, atol=1e-6)
