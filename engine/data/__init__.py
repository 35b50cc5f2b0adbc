"""Datasets: built-in generators, files, splitting and normalisation.

``make_dataset(spec)`` turns the graph file's ``training.dataset`` block into a
:class:`Dataset`: ``{"name": "moons", "n": 200, "noise": 0.1, "seed": 0}`` for a
generator from :data:`GENERATORS`, or a file relative to the graph file:
``{"path": "data.csv", "target": "label"}``, ``{"path": "series.csv", "window": 20}``,
``{"path": "data.npz"}``, ``{"path": "train-images-idx3-ubyte.gz", "labels":
"train-labels-idx1-ubyte.gz"}`` or an image folder ``{"path": "pets", "size": [32, 32]}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.data.dataset import TASKS, Dataset, Normaliser, class_balance, sample_indices, split_dataset
from engine.data.files import CSV_SUFFIXES, read_csv_dataset, read_csv_windows, read_npz_dataset, read_table_preview
from engine.data.generators import GENERATORS, GeneratorSpec
from engine.data.image_files import looks_like_idx, read_idx_dataset, read_image_folder
from engine.errors import DataError
from engine.layers.base import ParamSpec

__all__ = ["Dataset", "GeneratorSpec", "GENERATORS", "Normaliser", "class_balance", "generators_markdown",
           "make_dataset", "read_table_preview", "sample_indices", "split_dataset"]

FILE_KEYS = {
    "csv": ("path", "target", "task", "window"),
    "npz": ("path", "target", "task"),
    "idx": ("path", "labels", "target", "task"),
    "folder": ("path", "size", "grey", "target", "task"),
}
"""Keys a file dataset may have, by kind (``target`` is ignored where it does not apply)."""
MAX_WINDOW = 100_000


def _generator_list() -> str:
    return ", ".join(GENERATORS)


def make_dataset(spec: Any, base_dir: Path | None = None) -> Dataset:
    """The Dataset a ``training.dataset`` block describes; DataError says what is wrong."""
    if not isinstance(spec, dict):
        raise DataError(f"the dataset must be an object such as {{\"name\": \"xor\"}} or "
                        f"{{\"path\": \"data.csv\", \"target\": \"label\"}}, not {spec!r}")
    if "path" in spec and "name" in spec:
        raise DataError("the dataset has both 'name' (a built-in generator) and 'path' (a file); keep one")
    if "path" in spec:
        return _file_dataset(spec, base_dir)
    if "labels" in spec or "window" in spec:
        raise DataError("the dataset has 'labels' or 'window' but no 'path' naming the file they belong to")
    name = spec.get("name")
    if not isinstance(name, str) or name not in GENERATORS:
        what = f"unknown dataset {name!r}" if "name" in spec else "the dataset has neither 'name' nor 'path'"
        raise DataError(f"{what}; built-in generators are {_generator_list()}, "
                        "or give a file with {\"path\": \"data.csv\", \"target\": \"label\"}")
    return GENERATORS[name].generate({k: v for k, v in spec.items() if k != "name"})


def _resolve(raw: Any, key: str, base_dir: Path | None) -> Path:
    if not isinstance(raw, str) or not raw.strip():
        raise DataError(f"file dataset: '{key}' must be a file name, not {raw!r}")
    path = Path(raw).expanduser()
    return Path(base_dir) / path if not path.is_absolute() and base_dir is not None else path


def _file_kind(path: Path, spec: dict[str, Any]) -> str:
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (dataset paths are relative to the graph file)")
    if path.is_dir():
        return "folder"
    if "labels" in spec or looks_like_idx(path):
        return "idx"
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise DataError(f"{path.name}: unsupported file type; use .csv, .tsv or .npz, an IDX image file with "
                    "\"labels\", or a folder of images with one sub-folder per class")


def _check_keys(spec: dict[str, Any], kind: str) -> None:
    allowed = FILE_KEYS[kind]
    unknown = sorted(k for k in spec if k not in allowed)
    if unknown:
        known = {k for keys in FILE_KEYS.values() for k in keys}
        what = "does not apply to" if all(k in known for k in unknown) else "is unknown for"
        raise DataError(f"file dataset: key(s) {', '.join(unknown)} {what} "
                        f"{FILE_KIND_NAMES[kind]}; allowed are {', '.join(allowed)}")


FILE_KIND_NAMES = {"csv": "a CSV file", "npz": "an NPZ file", "idx": "IDX files", "folder": "an image folder"}


def _file_dataset(spec: dict[str, Any], base_dir: Path | None) -> Dataset:
    path = _resolve(spec["path"], "path", base_dir)
    target, task = spec.get("target"), spec.get("task")
    if target is not None and not isinstance(target, str):
        raise DataError(f"file dataset: 'target' must be a column name, not {target!r}")
    if task is not None and task not in TASKS:
        raise DataError(f"file dataset: 'task' must be 'classification' or 'regression', not {task!r}")
    kind = _file_kind(path, spec)
    _check_keys(spec, kind)
    if kind in ("idx", "folder") and task == "regression":
        raise DataError(f"{path.name}: {FILE_KIND_NAMES[kind]} hold class labels; 'task' must be classification")
    if kind == "folder":
        return read_image_folder(path, spec.get("size"), spec.get("grey"))
    if kind == "idx":
        if "labels" not in spec:
            raise DataError(f"{path.name}: IDX images need their label file: add \"labels\": "
                            "\"train-labels-idx1-ubyte\" (the file beside the images)")
        return read_idx_dataset(path, _resolve(spec["labels"], "labels", base_dir))
    if kind == "npz":
        return read_npz_dataset(path, task)
    if "window" in spec:
        window = spec["window"]
        if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= MAX_WINDOW:
            raise DataError(f"file dataset: 'window' must be an integer in [1, {MAX_WINDOW}] (time steps per "
                            f"example), not {window!r}")
        return read_csv_windows(path, window, target, task)
    return read_csv_dataset(path, target, task)


def _default_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _allowed(spec: ParamSpec) -> str:
    if spec.kind == "int":
        lo = "-inf" if spec.min is None else str(int(spec.min))
        hi = "inf" if spec.max is None else str(int(spec.max))
        return f"an integer in [{lo}, {hi}]"
    return spec.describe_range()


def generators_markdown() -> str:
    """Markdown reference of every built-in generator and its parameters (in docs/datasets.md)."""
    out: list[str] = []
    for g in GENERATORS.values():
        out += [f"### {g.name}", "", f"{g.help} Task: {g.task}; {g.shapes}.", "",
                "| parameter | default | allowed | meaning |", "|---|---|---|---|"]
        out += [f"| `{s.name}` | {_default_text(s.default)} | {_allowed(s)} | {s.help} |" for s in g.params]
        out.append("")
    return "\n".join(out)
