"""NumPy export: a folder with a standalone ``model.py`` (NumPy only), ``weights.npz``, README.

``model.py`` holds one ``forward(W, x)`` function written out line by line from the graph,
one line per node, each the node's id assigned from the expression its layer's NumPy
exporter returns. A layer's NumPy exporter is ``fn(ctx, node) -> expression`` and may add
module-level helper functions with ``ctx.helper(name, code)``; weights are referenced with
``ctx.weight(name)`` (``W["h1.W"]``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from engine.export.common import (
    ExportNode,
    assign_line,
    export_nodes,
    normalisation,
    port_labels,
    port_python_names,
    run_exporter,
    write_directory,
)
from engine.export.templates import render
from engine.graph import PortRef

NUMPY_GLOBALS = ("argparse", "sys", "Path", "np", "math", "HERE", "INPUT_SHAPE", "DTYPE", "forward",
                 "load_model", "preprocess", "predict", "read_input", "main", "W", "annotations")


class NumpyContext:
    """Collects the helper functions and imports the layers' NumPy expressions need."""

    def __init__(self) -> None:
        self.helpers: dict[str, str] = {}
        self.imports: set[str] = set()
        self.node: ExportNode | None = None

    def weight(self, name: str) -> str:
        assert self.node is not None
        return f'W["{self.node.id}.{name}"]'

    def helper(self, name: str, code: str, imports: tuple[str, ...] = ()) -> str:
        self.helpers.setdefault(name, code)
        self.imports.update(imports)
        return name


def _forward_lines(loaded: Any, names: dict[PortRef, str], ctx: NumpyContext) -> list[str]:
    model = loaded.model
    lines = []
    for node in export_nodes(model):
        node = node.named(node.input_names(names, names[(model.input_id, "out")]), names)
        ctx.node = node
        line = assign_line(node, run_exporter(model, node, "numpy", ctx), "    ")
        if line is not None:
            summary = model.runtimes[node.id].type.summary_text(node.p)
            lines.append(f"{line}  # {node.type}" + (f"({summary})" if summary else ""))
    return lines


def numpy_source(loaded: Any, source_name: str = "") -> str:
    """The text of the exported ``model.py``."""
    model = loaded.model
    probe = NumpyContext()
    _forward_lines(loaded, port_labels(model), probe)
    names = port_python_names(model, set(NUMPY_GLOBALS) | set(probe.helpers) | probe.imports)
    ctx = NumpyContext()
    body = _forward_lines(loaded, names, ctx)
    title = model.graph.name or "network"
    forward = (
        f"def forward(W: dict[str, np.ndarray], {names[(model.input_id, 'out')]}: np.ndarray) -> np.ndarray:\n"
        f'    """The network \'{title}\' on a preprocessed batch: shape (N, *INPUT_SHAPE), DTYPE."""\n'
        + "\n".join(body) + f"\n    return {names[model.output_ref]}\n"
    )
    text = render("numpy_model.py", {
        "docstring": _docstring(loaded, source_name),
        "constants": f"INPUT_SHAPE: tuple[int, ...] = {tuple(model.shapes[model.input_id])!r}\n"
                     f"DTYPE = np.{np.dtype(model.dtype).name}\n",
        "network": "".join(h + "\n\n" for h in ctx.helpers.values()) + forward,
    })
    # helpers may need standard-library modules; they sort between argparse and sys
    extra = "".join(f"import {m}\n" for m in sorted(ctx.imports))
    return text.replace("import argparse\n", "import argparse\n" + extra)


def preprocessing_sentence(meta: Any) -> str:
    if normalisation(meta) is not None:
        return "applies the stored input normalisation (x − mean) / std"
    return "uses them as they are (the model file stores no normalisation)"


def _docstring(loaded: Any, source_name: str) -> str:
    title = loaded.model.graph.name or "network"
    return f'''"""{title}: the trained network in plain NumPy, exported by Backprop Studio.

Exported from {source_name or "a Backprop Studio model file"}; depends only on NumPy.
``predict(X)`` takes raw features, one example per row, and
{preprocessing_sentence(loaded.meta)}, as ``backprop predict`` does.

    python model.py INPUT.npz -o OUTPUT.npy     # INPUT: .npz with X, .npy or .csv

    import model
    Y = model.predict(X)

weights.npz holds the model file's weights under the same keys ("<node>.<param>"; a Dense
W is (in, out)) and any normalisation as "preprocessing/mean" and "preprocessing/std".
"""
'''


def weights_npz(loaded: Any) -> bytes:
    """The model file's weights (and buffers), plus the input normalisation if stored."""
    arrays = dict(loaded.model.state_dict())
    norm = normalisation(loaded.meta)
    if norm is not None:
        arrays["preprocessing/mean"], arrays["preprocessing/std"] = norm
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def export_numpy(loaded: Any, output: str | Path, source_name: str = "") -> Path:
    """Write the NumPy folder atomically; returns its path."""
    files = {
        "model.py": numpy_source(loaded, source_name).encode("utf-8"),
        "weights.npz": weights_npz(loaded),
        "README.md": _readme(loaded).encode("utf-8"),
    }
    return write_directory(output, files)


def _readme(loaded: Any) -> str:
    title = loaded.model.graph.name or "network"
    return f"""# {title} — NumPy export

Exported by Backprop Studio (`backprop export MODEL --format numpy -o DIR`). Needs only NumPy.

- `model.py` — the network as one `forward(W, x)` function, one line per node of the graph;
  `load_model()` reads the weights, `predict(X)` takes raw features and applies the model
  file's preprocessing.
- `weights.npz` — the weights, keys `<node>.<param>` as in the model file.

```
python model.py INPUT.npz -o OUTPUT.npy    # INPUT: .npz with array X, .npy, or .csv
```

```python
import model
Y = model.predict(X)
```
"""
