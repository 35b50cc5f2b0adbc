"""The ``.bpmodel`` file: a zip of ``graph.json``, ``weights.npz`` and ``meta.json``.

Loading never executes code: JSON is parsed, arrays are read with ``allow_pickle=False``,
and every member is checked (present, sized sanely, shapes matching the graph) before a
Model is returned. Saving is atomic, so an interrupted save leaves the old file intact.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import engine
from engine.compiler import Model, compile_graph
from engine.errors import BackpropError, ModelFileError
from engine.graph import FORMAT as GRAPH_FORMAT
from engine.graph import Graph, atomic_write_bytes

FORMAT = "backprop-studio.model"
VERSION = 1
MAX_MEMBER_BYTES = 2 << 30
MEMBERS = ("graph.json", "weights.npz", "meta.json")
GRAPH_SNIFF_BYTES = 64 << 20  # a graph file larger than this is not looked into


@dataclass
class LoadedModel:
    graph: Graph
    model: Model
    meta: dict[str, Any]


def save_model(path: str | Path, model: Model, meta: dict[str, Any] | None = None) -> None:
    """Write ``model`` (its graph, weights and ``meta``) to ``path`` atomically."""
    meta = dict(meta or {})
    meta.update({
        "format": FORMAT, "version": VERSION, "engine_version": engine.__version__,
        "numpy_version": np.__version__, "dtype": str(model.dtype),
        "saved": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    weights = io.BytesIO()
    np.savez(weights, **model.state_dict())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("graph.json", model.graph.to_json())
        zf.writestr("weights.npz", weights.getvalue())
        zf.writestr("meta.json", json.dumps(meta, indent=2, default=_json_default))
    atomic_write_bytes(Path(path), buffer.getvalue())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in meta.json")


def _read_member(zf: zipfile.ZipFile, name: str, where: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ModelFileError(f"{where}: not a complete model file ('{name}' is missing)") from None
    if info.file_size > MAX_MEMBER_BYTES:
        raise ModelFileError(f"{where}: '{name}' is implausibly large ({info.file_size} bytes)")
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise ModelFileError(f"{where}: '{name}' is damaged ({err})") from None
    except Exception as err:  # zlib.error and friends: a corrupt member
        raise ModelFileError(f"{where}: '{name}' is damaged ({err})") from None


def _is_graph_file(path: Path) -> bool:
    """True if ``path`` holds a graph file (JSON with the graph format tag) rather than a model."""
    try:
        if path.stat().st_size > GRAPH_SNIFF_BYTES:
            return False
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == GRAPH_FORMAT


def load_model(path: str | Path) -> LoadedModel:
    """Read and check a model file; raises ModelFileError with the reason if anything is off."""
    path = Path(path)
    where = path.name
    if path.is_file() and not zipfile.is_zipfile(path) and _is_graph_file(path):
        raise ModelFileError(f"{path} is a graph, not a trained model; train it into one first: "
                             f"backprop train {path} -o {path.with_suffix('.bpmodel')}")
    try:
        with zipfile.ZipFile(path) as zf:
            raw = {name: _read_member(zf, name, where) for name in MEMBERS}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
        raise ModelFileError(f"{where}: not a Backprop Studio model file (not a valid zip: {err})") from None
    try:
        meta = json.loads(raw["meta.json"].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{where}: meta.json is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{where}: meta.json does not describe a {FORMAT} file")
    version = meta.get("version")
    if not isinstance(version, int) or version < 1 or version > VERSION:
        raise ModelFileError(f"{where}: model file version {version!r} is not supported (this program reads "
                             f"version {VERSION}); update Backprop Studio")
    try:
        graph = Graph.from_json(raw["graph.json"].decode("utf-8", errors="replace"), source=f"{where}/graph.json")
        model = compile_graph(graph, dtype=meta.get("dtype", "float32"))
    except BackpropError as err:
        raise ModelFileError(f"{where}: {err}") from None
    try:
        with np.load(io.BytesIO(raw["weights.npz"]), allow_pickle=False) as npz:
            state = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ModelFileError(f"{where}: weights.npz cannot be read ({err})") from None
    try:
        model.load_state_dict(state)
    except ModelFileError as err:
        raise ModelFileError(f"{where}: {err}") from None
    return LoadedModel(graph, model, meta)
