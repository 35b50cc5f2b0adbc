"""Import models from other frameworks into Backprop Studio graphs with their weights.

- ``onnx``: an ``.onnx`` file (opset 13 and later), and so PyTorch models through
  ``torch.onnx.export``. Needs the ``onnx`` package (the ``[export]`` extra).

The result is an :class:`engine.modelfile.LoadedModel`, like a ``.bpmodel`` file gives: the
graph, the compiled model holding the imported weights, and the meta (preprocessing, task,
where it came from); ``engine.modelfile.save_model`` writes it as a model file. A model that
cannot be mapped is refused with an :class:`engine.errors.ImportModelError` naming the ONNX
node, its operator and why; nothing half-imported is returned. See ``docs/import.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import ImportModelError

IMPORT_FORMATS = {".onnx": "ONNX model"}


def import_model(path: str | Path) -> Any:
    """Import the model file at ``path`` (chosen by its suffix) as a LoadedModel."""
    suffix = Path(path).suffix.lower()
    if suffix != ".onnx":
        raise ImportModelError(f"{path}: cannot import '{suffix or Path(path).name}' files; "
                               f"Backprop Studio imports {', '.join(IMPORT_FORMATS)} models")
    from engine.importers.onnx import import_onnx

    return import_onnx(path)


__all__ = ["IMPORT_FORMATS", "ImportModelError", "import_model"]
