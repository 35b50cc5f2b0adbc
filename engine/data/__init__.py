"""Datasets: built-in generators, CSV/NPZ files, splitting and normalisation.

``make_dataset(spec)`` turns the graph file's ``training.dataset`` block into a
:class:`Dataset`: ``{"name": "moons", "n": 200, "noise": 0.1, "seed": 0}`` for a
generator from :data:`GENERATORS`, or ``{"path": "data.csv", "target": "label"}`` /
``{"path": "data.npz"}`` for a file relative to the graph file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.data.dataset import TASKS, Dataset, Normaliser, class_balance, split_dataset
from engine.data.files import CSV_SUFFIXES, read_csv_dataset, read_npz_dataset, read_table_preview
from engine.data.generators import GENERATORS, GeneratorSpec
from engine.errors import DataError
from engine.layers.base import ParamSpec

__all__ = ["Dataset", "GeneratorSpec", "GENERATORS", "Normaliser", "class_balance", "generators_markdown",
           "make_dataset", "read_table_preview", "split_dataset"]

FILE_KEYS = ("path", "target", "task")


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
    name = spec.get("name")
    if not isinstance(name, str) or name not in GENERATORS:
        what = f"unknown dataset {name!r}" if "name" in spec else "the dataset has neither 'name' nor 'path'"
        raise DataError(f"{what}; built-in generators are {_generator_list()}, "
                        "or give a file with {\"path\": \"data.csv\", \"target\": \"label\"}")
    return GENERATORS[name].generate({k: v for k, v in spec.items() if k != "name"})


def _file_dataset(spec: dict[str, Any], base_dir: Path | None) -> Dataset:
    unknown = sorted(k for k in spec if k not in FILE_KEYS)
    if unknown:
        raise DataError(f"file dataset: unknown key(s) {', '.join(unknown)}; "
                        f"allowed are {', '.join(FILE_KEYS)}")
    raw, target, task = spec["path"], spec.get("target"), spec.get("task")
    if not isinstance(raw, str) or not raw.strip():
        raise DataError(f"file dataset: 'path' must be a file name, not {raw!r}")
    if target is not None and not isinstance(target, str):
        raise DataError(f"file dataset: 'target' must be a column name, not {target!r}")
    if task is not None and task not in TASKS:
        raise DataError(f"file dataset: 'task' must be 'classification' or 'regression', not {task!r}")
    path = Path(raw).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_npz_dataset(path, task)
    if suffix in CSV_SUFFIXES:
        return read_csv_dataset(path, target, task)
    raise DataError(f"{path.name}: unsupported file type; use .csv, .tsv or .npz")


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
        out += [f"### {g.name}", "", f"{g.help} Task: {g.task}.", "",
                "| parameter | default | allowed | meaning |", "|---|---|---|---|"]
        out += [f"| `{s.name}` | {_default_text(s.default)} | {_allowed(s)} | {s.help} |" for s in g.params]
        out.append("")
    return "\n".join(out)
