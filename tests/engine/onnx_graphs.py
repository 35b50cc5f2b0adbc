"""Hand-made ONNX files for the import tests (one input ``x``, one output ``y``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def onnx_file(path: Path, nodes, inits, in_shape=("N", 4), out_shape=("N", "K"), opset=17, inputs=None, outputs=None,
              domains=("com.microsoft",)):
    graph = helper.make_graph(
        nodes, "g",
        inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        initializer=[numpy_helper.from_array(np.asarray(v, np.float32 if np.asarray(v).dtype.kind == "f"
                                                        else np.int64), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]
                              + [helper.make_opsetid(d, 1) for d in domains])
    onnx.save(model, path)
    return path
