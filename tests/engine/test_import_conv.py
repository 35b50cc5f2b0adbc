"""ONNX convolution and pooling nodes that other tools write, against onnxruntime.

Our own exports always carry equal pads (tests/engine/test_import_onnx.py round-trips them);
other exporters write ``auto_pad``, lopsided ``pads``, ``ceil_mode``, 1-D data, ``ReduceMean``
with its axes as an input. What our layers compute the same way imports and predicts what
onnxruntime computes from the file; the rest is refused naming the node, its op and why.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_graphs import onnx_file
from test_export import onnx_predict

from engine.errors import ImportModelError
from engine.importers.onnx import import_onnx

IMAGE = ("N", 2, 7, 7)
RNG = np.random.default_rng(0)
W3 = RNG.normal(0, 0.5, (3, 2, 3, 3))
W2 = RNG.normal(0, 0.5, (3, 2, 2, 2))


def conv(w: str = "w3", **attrs):
    return helper.make_node("Conv", ["x", w, "b"], ["y"], name="c", **attrs)


def pool(kind: str = "MaxPool", kernel=(2, 2), **attrs):
    return helper.make_node(kind, ["x"], ["y"], name="p", kernel_shape=list(kernel), **attrs)


INITS = {"w3": W3, "w2": W2, "w1d": RNG.normal(0, 0.5, (3, 2, 3)), "b": RNG.normal(0, 0.5, 3),
         "w_group": RNG.normal(0, 0.5, (4, 1, 3, 3)), "axes": [2, 3]}

IMPORTED = [
    # name, nodes, input shape, opset, (layer type, the parameters it must get)
    ("same upper, odd kernel", [conv(auto_pad="SAME_UPPER")], IMAGE, 17, ("Conv2D", {"padding": (1, 1)})),
    ("same upper, even kernel", [conv("w2", auto_pad="SAME_UPPER")], IMAGE, 17, ("Conv2D", {"padding": "same"})),
    ("same upper, stride 2 on 7", [conv(auto_pad="SAME_UPPER", strides=[2, 2])], IMAGE, 17,
     ("Conv2D", {"padding": (1, 1), "stride": (2, 2)})),
    ("valid", [conv(auto_pad="VALID", dilations=[2, 1])], IMAGE, 17,
     ("Conv2D", {"padding": "valid", "dilation": (2, 1)})),
    ("explicit pads of an even kernel", [conv("w2", pads=[0, 0, 1, 1])], IMAGE, 17, ("Conv2D", {"padding": "same"})),
    ("unread zeros at the end", [pool(kernel=(3, 3), strides=[2, 2], pads=[1, 1, 2, 2])], IMAGE, 17,
     ("MaxPool2D", {"padding": (1, 1), "stride": (2, 2)})),
    ("ceil mode dividing exactly", [pool(kernel=(3, 3), strides=[2, 2], ceil_mode=1)], IMAGE, 17,
     ("MaxPool2D", {"padding": "valid"})),
    ("average counting its padding", [pool("AveragePool", (3, 3), pads=[1, 1, 1, 1], count_include_pad=1)], IMAGE,
     17, ("AvgPool2D", {"padding": (1, 1), "stride": (1, 1)})),
    ("conv 1-D", [conv("w1d", pads=[2, 2], dilations=[2])], ("N", 2, 9), 17,
     ("Conv1D", {"padding": (2,), "dilation": 2, "kernel_size": 3})),
    ("average pool 1-D", [pool("AveragePool", (3,), strides=[3])], ("N", 2, 9), 17,
     ("AvgPool1D", {"pool_size": 3, "stride": "pool_size"})),
    ("global average 1-D", [helper.make_node("GlobalAveragePool", ["x"], ["g"]),
                            helper.make_node("Flatten", ["g"], ["y"])], ("N", 2, 9), 17, ("GlobalAvgPool1D", {})),
    ("reduce mean, axes input", [helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=0)], IMAGE, 18,
     ("GlobalAvgPool2D", {})),
]


@pytest.mark.parametrize("name,nodes,in_shape,opset,layer", IMPORTED, ids=[c[0] for c in IMPORTED])
def test_what_our_layers_compute_imports_and_predicts_what_onnxruntime_computes(name, nodes, in_shape, opset, layer,
                                                                               tmp_path):
    used = {k: v for k, v in INITS.items() if any(k in n.input for n in nodes)}
    kind, params = layer
    out_shape = ("N", "C") if kind.startswith("Global") else ("N", "C", "H", "W")[:len(in_shape)]
    path = onnx_file(tmp_path / "m.onnx", nodes, used, in_shape=in_shape, out_shape=out_shape, opset=opset)
    got = import_onnx(path)
    (node,) = [n for n in got.graph.nodes.values() if n.type == kind]
    assert {k: node.params[k] for k in params} == params
    X = np.random.default_rng(1).normal(size=(5, *in_shape[1:])).astype(np.float32)
    want = onnx_predict(path, X)
    np.testing.assert_allclose(got.model.predict(X).reshape(want.shape), want, rtol=1e-5, atol=1e-6)


REFUSED = [
    ("grouped", [conv("w_group", group=2)], r"node 'c' \(Conv\): group = 2 \(grouped or depthwise convolution\)"),
    ("lopsided pads", [conv(pads=[0, 1, 1, 1])],
     r"node 'c' \(Conv\): pads \[0, 1, 1, 1\]: they pad the two sides of the height differently \(0 and 1\)"),
    ("same lower", [conv("w2", auto_pad="SAME_LOWER")],
     r"node 'c' \(Conv\): auto_pad = SAME_LOWER gives pads \[1, 1, 0, 0\]: they pad the two sides of the height"),
    ("same upper, stride 2 on 8", [conv(auto_pad="SAME_UPPER", strides=[2, 2])],
     r"node 'c' \(Conv\): auto_pad = SAME_UPPER gives pads \[0, 0, 1, 1\]"),
    ("ceil mode", [pool(kernel=(3, 3), strides=[2, 2], ceil_mode=1)],
     r"node 'p' \(MaxPool\): ceil_mode = 1 rounds the output size up, and the height \(8 \+ 2·0 − 3 over stride 2\) "
     r"does not divide"),
    ("dilated pool", [pool(dilations=[2, 2])], r"node 'p' \(MaxPool\): dilated pooling has no Backprop Studio layer"),
    ("mean without padding", [pool("AveragePool", (3, 3), pads=[1, 1, 1, 1])],
     r"node 'p' \(AveragePool\): count_include_pad = 0 leaves the padding out of the mean"),
    ("padding over half the window", [pool(kernel=(3, 3), pads=[2, 2, 2, 2])],
     r"node 'p' \(MaxPool\): height padding 2 is more than half the pool size 3"),
    ("mean over one axis", [helper.make_node("ReduceMean", ["x"], ["y"], name="m", axes=[3])],
     r"node 'm' \(ReduceMean\): only the mean over every spatial axis"),
    ("weight not fitting", [conv("w_group")], r"node 'c' \(Conv\): its weight of shape \(4, 1, 3, 3\) does not fit "
                                              r"2 input channels"),
    ("computed weight", [helper.make_node("Conv", ["x", "x"], ["y"], name="c")],
     r"node 'c' \(Conv\): its weight W must be a constant"),
    ("transposed conv", [helper.make_node("ConvTranspose", ["x", "w3"], ["y"], name="c")],
     r"node 'c' \(ConvTranspose\): Backprop Studio has no layer for this operator"),
]


@pytest.mark.parametrize("name,nodes,message", REFUSED, ids=[c[0] for c in REFUSED])
def test_what_our_layers_cannot_compute_is_refused_naming_the_node_its_op_and_why(name, nodes, message, tmp_path):
    used = {k: v for k, v in INITS.items() if any(k in n.input for n in nodes)}
    path = onnx_file(tmp_path / "m.onnx", nodes, used, in_shape=("N", 2, 8, 8), out_shape=("N",))
    with pytest.raises(ImportModelError, match=message):
        import_onnx(path)


def test_a_used_indices_output_of_max_pooling_is_refused(tmp_path):
    nodes = [helper.make_node("MaxPool", ["x"], ["p", "i"], name="p", kernel_shape=[2, 2]),
             helper.make_node("Cast", ["i"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["p", "f"], ["y"])]
    path = onnx_file(tmp_path / "m.onnx", nodes, {}, in_shape=("N", 2, 8, 8), out_shape=("N",))
    with pytest.raises(ImportModelError, match=r"node 'p' \(MaxPool\): its Indices output is used"):
        import_onnx(path)
