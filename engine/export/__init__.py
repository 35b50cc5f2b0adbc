"""Export a trained model so it runs elsewhere, exactly: ONNX, PyTorch code, NumPy code.

- ``onnx``: one ``.onnx`` file (opset 17, float32), input normalisation folded in.
- ``torch``: a folder with ``model.py`` (an ``nn.Module`` named after the graph's nodes),
  ``state_dict.pt``, ``weights.npz``, ``train.py`` (continues training; runs unchanged under
  ``torchrun``) and a README.
- ``numpy``: a folder with ``model.py`` (NumPy only), ``weights.npz`` and a README.

Each layer type carries its exporters in its declaration (``LayerType.exporters``); a node
whose layer (or setting) cannot be exported is refused with an ExportError naming it and
why. ONNX and PyTorch are imported only when their format is asked for. Writes are atomic:
a failure never leaves a half-written export. See ``docs/export.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import ExportError
from engine.export.common import FORMAT_TITLES, ExportNode, check_exportable, export_nodes

FORMATS: dict[str, dict[str, str]] = {
    "onnx": {"title": "ONNX model", "target": "file", "suffix": ".onnx"},
    "torch": {"title": "PyTorch code (model.py, train.py for torchrun)", "target": "folder", "suffix": ""},
    "numpy": {"title": "NumPy code (model.py)", "target": "folder", "suffix": ""},
}
"""The export choices, for the CLI and the studio's File → Export menu: whether each writes
a file or a folder, and the file suffix to suggest."""

__all__ = ["FORMATS", "FORMAT_TITLES", "ExportNode", "check_exportable", "export_loaded", "export_model",
           "export_nodes"]


def export_model(model_path: str | Path, fmt: str, output: str | Path) -> Path:
    """Export the ``.bpmodel`` file at ``model_path`` to ``fmt`` at ``output``; returns the path."""
    from engine.modelfile import load_model

    _check_format(fmt)
    return export_loaded(load_model(model_path), fmt, output, source_name=Path(model_path).name)


def export_loaded(loaded: Any, fmt: str, output: str | Path, source_name: str = "") -> Path:
    """Export a loaded model (``engine.modelfile.LoadedModel``: graph, model, meta).

    The studio calls this with the model it holds in memory:
    ``export_loaded(LoadedModel(model.graph, model, meta), "torch", folder)``.
    """
    _check_format(fmt)
    check_exportable(loaded.model, fmt)
    if fmt == "onnx":
        from engine.export.onnx import export_onnx

        return export_onnx(loaded, output)
    if fmt == "torch":
        from engine.export.torch import export_torch

        return export_torch(loaded, output, source_name)
    from engine.export.numpy import export_numpy

    return export_numpy(loaded, output, source_name)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
