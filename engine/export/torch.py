"""PyTorch export: ``model.py`` (an ``nn.Module``), ``state_dict.pt``, ``weights.npz``,
``train.py`` (continues training, runs unchanged under ``torchrun``) and a README.

The module has one attribute per graph node, named after the node (``self.h1``), built in
``__init__`` from what each layer's PyTorch exporter returns, and a ``forward`` that calls
them in topological order, one line per node. A layer's PyTorch exporter is
``fn(ctx, node) -> TorchLayer`` made with ``ctx.module(code, state)`` (a submodule, plus
its tensors in PyTorch's layout: ``{"weight": ("W", Wᵀ)}``) or ``ctx.expr(code)`` (a plain
expression such as ``a + b``); ``ctx.helper(name, code)`` adds a module-level class.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import BackpropError, ExportError
from engine.export.common import (
    ExportNode,
    assign_line,
    export_nodes,
    node_python_names,
    port_labels,
    port_python_names,
    run_exporter,
    write_directory,
)
from engine.export.numpy import preprocessing_sentence, weights_npz
from engine.export.templates import render
from engine.graph import PortRef
from engine.losses import LOSSES
from engine.optim import optimizer_spec, torch_equivalent, validate_schedule

TORCH_GLOBALS = ("argparse", "sys", "Path", "np", "torch", "nn", "F", "HERE", "INPUT_SHAPE", "DTYPE",
                 "Net", "load_model", "load_normalisation", "preprocess", "predict", "read_input", "main",
                 "annotations", "self", "for_loss", "super")
MODULE_ATTRIBUTES = ("training", "dump_patches", "call_super_init", "T_destination")


@dataclass
class TorchLayer:
    """What a layer becomes in PyTorch: a submodule (``module``) or an expression (``expr``).

    ``state`` maps the submodule's state_dict names to (engine weight name or None, array),
    e.g. ``{"weight": ("W", W.T), "bias": ("b", b)}`` for a Dense.
    """

    module: str | None = None
    expr: str | None = None
    state: dict[str, tuple[str | None, np.ndarray]] = field(default_factory=dict)


class TorchContext:
    """What a layer's PyTorch exporter builds with."""

    def __init__(self) -> None:
        self.helpers: dict[str, str] = {}

    def module(self, code: str, state: dict[str, tuple[str | None, Any]] | None = None) -> TorchLayer:
        arrays = {key: (src, np.asarray(value)) for key, (src, value) in (state or {}).items()}
        return TorchLayer(module=code, state=arrays)

    def expr(self, code: str) -> TorchLayer:
        return TorchLayer(expr=code)

    def helper(self, name: str, code: str) -> str:
        self.helpers.setdefault(name, code)
        return name


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ExportError("PyTorch export needs PyTorch to write state_dict.pt: pip install torch") from None
    return torch


@dataclass
class TorchPlan:
    """The exported module: Python names per node, each node's TorchLayer, the helpers."""

    names: dict[PortRef, str]
    layers: list[tuple[ExportNode, TorchLayer]]
    helpers: dict[str, str]


def plan(loaded: Any, use_grads: bool = False) -> TorchPlan:
    """Run every node's PyTorch exporter (twice: the first pass finds the helper names)."""
    torch = _import_torch()
    model = loaded.model
    probe = TorchContext()
    _run(model, port_labels(model), probe, use_grads)
    reserved = set(TORCH_GLOBALS) | set(probe.helpers) | set(dir(torch.nn.Module)) | set(MODULE_ATTRIBUTES)
    names = port_python_names(model, reserved)
    ctx = TorchContext()
    return TorchPlan(names, _run(model, names, ctx, use_grads, node_python_names(model, names, reserved)),
                     ctx.helpers)


def _run(model: Any, names: dict[PortRef, str], ctx: TorchContext, use_grads: bool,
         attrs: dict[str, str] | None = None) -> list[tuple[ExportNode, TorchLayer]]:
    out = []
    for node in export_nodes(model, use_grads=use_grads):
        attr = attrs[node.id] if attrs else None
        node = node.named(node.input_names(names, names[(model.input_id, "out")]), names, attr)
        layer = run_exporter(model, node, "torch", ctx)
        if not isinstance(layer, TorchLayer) or (layer.module is None) == (layer.expr is None):
            raise ExportError(f"the PyTorch exporter of {node.type} must return ctx.module(...) or "
                              "ctx.expr(...)", node=node.id)
        out.append((node, layer))
    return out


def torch_state(loaded: Any, use_grads: bool = False,
                the_plan: TorchPlan | None = None) -> dict[str, np.ndarray]:
    """The exported module's state_dict as NumPy arrays (``use_grads``: gradients instead)."""
    p = the_plan or plan(loaded, use_grads)
    dtype = loaded.model.dtype
    out: dict[str, np.ndarray] = {}
    for node, layer in p.layers:
        for key, (_src, value) in layer.state.items():
            value = np.asarray(value)
            out[f"{node.attr}.{key}"] = value.astype(dtype) if value.dtype.kind == "f" else value
    return out


def decayed_parameters(the_plan: TorchPlan) -> list[str]:
    """state_dict names of the tensors the engine applies weight decay to (Dense W, not b)."""
    return [f"{node.attr}.{key}" for node, layer in the_plan.layers
            for key, (src, _v) in layer.state.items() if src is not None and src in node.decay]


def torch_source(loaded: Any, the_plan: TorchPlan, source_name: str = "") -> str:
    """The text of the exported ``model.py``."""
    model = loaded.model
    names = the_plan.names
    title = model.graph.name or "network"
    init = [f"        self.{node.attr} = {layer.module}" for node, layer in the_plan.layers if layer.module]
    body = []
    fused = model.loss_from != model.output_ref
    for node, layer in the_plan.layers:
        if fused and node.id == model.output_id:
            body += ["        if for_loss:", f"            return {names[model.loss_from]}"]
        expr = layer.expr if layer.module is None else f"self.{node.attr}({', '.join(node.x)})"
        line = assign_line(node, expr, "        ")
        if line is not None:
            body.append(line)
    if fused:
        last = model.graph.nodes[model.output_id].type
        doc = (f"``for_loss=True`` returns what the {model.loss} loss reads instead: the output of "
               f"'{model.loss_from[0]}', because the loss fuses the final {last} '{model.output_id}' for "
               "numerical stability.")
    else:
        doc = "``for_loss=True`` returns what the loss reads; for this graph that is the same output."
    chain = " → ".join(names[(n, model.ports[n][0])] for n in model.order)
    network = (
        "class Net(nn.Module):\n"
        f'    """The network \'{title}\': {chain}.\n\n'
        "    One attribute per node of the graph, named after it.\n"
        '    """\n\n'
        "    def __init__(self) -> None:\n"
        "        super().__init__()\n" + "\n".join(init) + ("\n" if init else "") + "\n"
        f"    def forward(self, {names[(model.input_id, 'out')]}: torch.Tensor, for_loss: bool = False)"
        " -> torch.Tensor:\n"
        '        """The graph\'s output for a preprocessed batch (a final Softmax gives probabilities).\n\n'
        f"        {_wrap(doc, 8)}\n"
        '        """\n' + "\n".join(body) + f"\n        return {names[model.output_ref]}\n"
    )
    return render("torch_model.py", {
        "docstring": _model_docstring(loaded, source_name),
        "constants": f"INPUT_SHAPE: tuple[int, ...] = {tuple(model.shapes[model.input_id])!r}\n"
                     f"DTYPE = torch.{np.dtype(model.dtype).name}\n",
        "network": "".join(h + "\n\n" for h in the_plan.helpers.values()) + network,
    })


def _wrap(text: str, indent: int, width: int = 100) -> str:
    import textwrap

    return ("\n" + " " * indent).join(textwrap.wrap(text, width - indent))


def _model_docstring(loaded: Any, source_name: str) -> str:
    title = loaded.model.graph.name or "network"
    return f'''"""{title}: the trained network as a PyTorch module, exported by Backprop Studio.

Exported from {source_name or "a Backprop Studio model file"}. ``predict(X)`` takes raw
features, one example per row, and {preprocessing_sentence(loaded.meta)}, as
``backprop predict`` does.

    python model.py INPUT.npz -o OUTPUT.npy     # INPUT: .npz with X, .npy or .csv

    import model
    net = model.load_model()                    # Net with the weights of state_dict.pt
    Y = model.predict(X)

Continue training with train.py (one process, or many with torchrun).
"""
'''


def train_source(loaded: Any, the_plan: TorchPlan) -> str:
    """The text of the exported ``train.py``: the template plus this model's training setup."""
    model, meta = loaded.model, loaded.meta
    training = dict(meta.get("training") or model.graph.training or {})
    loss = model.loss
    if loss not in LOSSES:
        raise ExportError(f"the training loss {loss!r} has no PyTorch form in train.py")
    dataset = meta.get("dataset") or {}
    classes = dataset.get("class_names") or []
    task = meta.get("task") or ("classification" if LOSSES[loss].classification_only else "regression")
    try:
        spec, hp = optimizer_spec(training.get("optimizer") or {"name": "sgd", "lr": 0.1})
        optimizer = {"name": spec.name, **hp}
        schedule = validate_schedule(training.get("schedule"))
    except BackpropError as err:
        raise ExportError(f"the model file's training block cannot be written to train.py: {err}") from None
    config = {
        "loss": loss,
        "optimizer": optimizer,
        "batch_size": int(training.get("batch_size", 32)),
        "epochs": int(training.get("epochs", 10)),
        "seed": int(training.get("seed", 0)),
        "schedule": schedule,
        "clip_norm": training.get("clip_norm"),
        "clip_value": training.get("clip_value"),
        "weight_decay": _decay(training.get("weight_decay", 0.0)),
        "shuffle": bool(training.get("shuffle", True)),
    }
    text = (
        "CONFIG: dict = {\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in config.items()) + "}\n"
        f"OPTIMIZER: tuple[str, dict] = {torch_equivalent(optimizer)!r}\n"
        f"TASK = {task!r}\n"
        f"N_CLASSES = {len(classes) or (2 if task == 'classification' else 0)!r}\n"
        f"DECAYED: list[str] = {decayed_parameters(the_plan)!r}\n"
        f"LOSS_SHAPE: tuple[int, ...] = {tuple(model.loss_shape)!r}\n"
        f"TARGET_SHAPE: tuple[int, ...] = {_target_shape(model)!r}\n"
        f"FEATURES: list[str] = {list(dataset.get('feature_names') or [])!r}\n"
        f"TARGET = {str(dataset.get('target') or '')!r}\n"
        f"CLASS_NAMES: list[str] = {[str(c) for c in classes]!r}\n"
    )
    return render("torch_train.py", {"config": text}).replace("<<title>>", model.graph.name or "network")


def _target_shape(model: Any) -> tuple[int, ...]:
    """Regression targets per example: the loss's shape, or one value per position for a loss
    that reads fewer targets than outputs (mdn_nll: one y against 3K mixture parameters)."""
    shape, width = tuple(model.loss_shape), LOSSES[model.loss].target_width
    return shape if width is None else shape[:-1] + (width,)


def _decay(value: Any) -> dict[str, float]:
    if isinstance(value, dict):
        return {"l1": float(value.get("l1", 0.0)), "l2": float(value.get("l2", 0.0))}
    return {"l1": 0.0, "l2": float(value or 0.0)}


def state_dict_bytes(loaded: Any, the_plan: TorchPlan) -> bytes:
    torch = _import_torch()
    arrays = torch_state(loaded, the_plan=the_plan)
    state = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in arrays.items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def export_torch(loaded: Any, output: str | Path, source_name: str = "") -> Path:
    """Write the PyTorch folder atomically; returns its path."""
    the_plan = plan(loaded)
    files = {
        "model.py": torch_source(loaded, the_plan, source_name).encode("utf-8"),
        "train.py": train_source(loaded, the_plan).encode("utf-8"),
        "state_dict.pt": state_dict_bytes(loaded, the_plan),
        "weights.npz": weights_npz(loaded),
        "README.md": _readme(loaded).encode("utf-8"),
    }
    for name in ("model.py", "train.py"):
        compile(files[name], name, "exec")  # a generator bug must not produce a broken file
    return write_directory(output, files)


def _readme(loaded: Any) -> str:
    title = loaded.model.graph.name or "network"
    return f"""# {title} — PyTorch export

Exported by Backprop Studio (`backprop export MODEL --format torch -o DIR`).

- `model.py` — `Net`, an `nn.Module` with one attribute per node of the graph;
  `load_model()` returns it with the trained weights, `predict(X)` takes raw features and
  applies the model file's preprocessing.
- `state_dict.pt` — the weights in PyTorch's layout (a Linear's `weight` is the engine's Wᵀ).
- `weights.npz` — the same weights as in the model file (`<node>.<param>`, Dense W is (in, out)),
  plus the input normalisation (`preprocessing/mean`, `preprocessing/std`) if there is one.
- `train.py` — continues training with the model file's loss, optimizer and settings.

```
python model.py INPUT.npz -o OUTPUT.npy                  # predictions
python train.py DATA.npz --epochs 5                      # continue training, one process
torchrun --nproc_per_node=4 train.py DATA.npz            # the same on 4 processes (DDP)
```

`DATA.npz` holds `X` (raw features, one example per row) and `y` (class indices, or the
regression targets). Training writes `state_dict.pt` again (use `--out` for another file),
so `model.py` then predicts with the continued weights.
"""
