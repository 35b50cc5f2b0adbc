"""Datasets from files: CSV (stdlib ``csv``), CSV series as sliding windows, NPZ (``X``, ``y``).

Files come from users, so every way a file can be wrong ends in a :class:`DataError` that
names the file and, where it applies, the row and column; nothing else escapes. NPZ files
are always opened with ``allow_pickle=False``: loading a pickle can run arbitrary code.
"""

from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.dataset import DTYPE, TASKS, Dataset, all_finite
from engine.errors import DataError

MAX_AUTO_CLASSES = 20
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}


def check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file (dataset paths are relative to the graph file)")
    if not path.is_file():
        raise DataError(f"{path}: is not a file")


def _check_task(task: str | None, where: str) -> None:
    if task is not None and task not in TASKS:
        raise DataError(f"{where}: task must be 'classification' or 'regression', not {task!r}")


def _label_task(values: np.ndarray, task: str | None, where: str) -> str:
    """Classification when asked, or when integer-valued with at most 20 distinct values."""
    if task is not None:
        return task
    if np.all(values == np.round(values)) and len(np.unique(values)) <= MAX_AUTO_CLASSES:
        return "classification"
    return "regression"


def encode_numeric(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Numeric labels to indices 0..K-1 in increasing order; names '3', not '3.0', for integers."""
    uniq, idx = np.unique(values, return_inverse=True)
    names = [str(int(v)) if float(v).is_integer() else repr(float(v)) for v in uniq]
    return idx.astype(np.int64).reshape(-1), names


def _encode_strings(values: list[str]) -> tuple[np.ndarray, list[str]]:
    names = sorted(set(values))
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int64), names


def need_two_classes(names: list[str], where: str) -> None:
    if len(names) < 2:
        raise DataError(f"{where}: every example has the same class {names[0]!r}; "
                        "classification needs at least 2 classes")


# -- CSV ---------------------------------------------------------------------------------

def _read_rows(path: Path, limit: int | None = None) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, cells) of the non-blank rows, at most ``limit`` of them."""
    delimiter = CSV_SUFFIXES.get(path.suffix.lower(), ",")
    rows: list[tuple[int, list[str]]] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header: list[str] | None = None
            for cells in reader:
                if not cells or all(not c.strip() for c in cells):
                    continue
                if header is None:
                    header = [c.strip() for c in cells]
                    continue
                if limit is not None and len(rows) >= limit:
                    break
                rows.append((reader.line_num, cells))
    except UnicodeDecodeError:
        raise DataError(f"{path.name}: is not UTF-8 text; save it as UTF-8 CSV") from None
    except (OSError, csv.Error) as err:
        raise DataError(f"{path.name}: cannot read CSV ({err})") from None
    if header is None:
        raise DataError(f"{path.name}: the file is empty; a CSV needs a header row and data rows")
    return header, rows


def _check_header(path: Path, header: list[str]) -> None:
    for i, name in enumerate(header):
        if not name:
            raise DataError(f"{path.name}: column {i + 1} of the header has no name")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(f"{path.name}: duplicate column name(s) {', '.join(dupes)} in the header")
    if all(_is_number(h) for h in header):
        raise DataError(f"{path.name}: the first row must be a header of column names, "
                        f"not numbers ({','.join(header[:5])}...)")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _cell_number(path: Path, row: int, line: int, column: str, cell: str) -> float:
    where = f"{path.name}: row {row} (line {line}), column '{column}'"
    text = cell.strip()
    if not text:
        raise DataError(f"{where}: empty cell; missing values are not supported, fill or drop the row")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: {cell!r} is not a number; feature columns must be numeric") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {cell!r} is not a finite number")
    return value


def _csv_targets(path: Path, column: str, cells: list[tuple[int, int, str]],
                 task: str | None) -> tuple[np.ndarray, str, list[str]]:
    """Targets from the target column's (row, line, text): numeric or string class labels."""
    for row, line, text in cells:
        if not text:
            raise DataError(f"{path.name}: row {row} (line {line}), column '{column}': empty target cell")
    texts = [t for _, _, t in cells]
    if not all(_is_number(t) for t in texts):
        if task == "regression":
            bad = next((r, ln, t) for r, ln, t in cells if not _is_number(t))
            raise DataError(f"{path.name}: row {bad[0]} (line {bad[1]}), column '{column}': {bad[2]!r} "
                            "is not a number, but task is regression")
        y, names = _encode_strings(texts)
        need_two_classes(names, path.name)
        return y, "classification", names
    values = np.array([_cell_number(path, r, ln, column, t) for r, ln, t in cells])
    task = _label_task(values, task, path.name)
    if task == "regression":
        return values.reshape(-1, 1), task, []
    y, names = encode_numeric(values)
    need_two_classes(names, path.name)
    return y, task, names


def _read_table(path: Path, target: str | None) -> tuple[list[str], list[tuple[int, list[str]]], str]:
    """Header, rows and the target column's name (default: the last) of a checked CSV."""
    check_file(path)
    header, rows = _read_rows(path)
    _check_header(path, header)
    target = header[-1] if target is None else target
    if target not in header:
        raise DataError(f"{path.name}: no column '{target}'; the columns are {', '.join(header)}")
    return header, rows, target


def _numbers(path: Path, header: list[str], rows: list[tuple[int, list[str]]], columns: list[int]) -> np.ndarray:
    """The ``columns`` of every row as a float64 (rows, columns) array; DataError naming a bad cell."""
    out = np.empty((len(rows), len(columns)))
    for r, (line, cells) in enumerate(rows, start=1):
        if len(cells) != len(header):
            raise DataError(f"{path.name}: row {r} (line {line}) has {len(cells)} cells but the header has "
                            f"{len(header)} columns")
        out[r - 1] = [_cell_number(path, r, line, header[i], cells[i]) for i in columns]
    return out


def read_csv_dataset(path: Path, target: str | None = None, task: str | None = None) -> Dataset:
    """A Dataset from a CSV with a header; ``target`` names the label column (default: last)."""
    _check_task(task, path.name)
    header, rows, target = _read_table(path, target)
    if len(header) < 2:
        raise DataError(f"{path.name}: only the target column '{target}'; add at least one feature column")
    if len(rows) < 2:
        raise DataError(f"{path.name}: {len(rows)} data row(s); a dataset needs at least 2")
    t = header.index(target)
    features = [i for i in range(len(header)) if i != t]
    X = _numbers(path, header, rows, features)
    labels = [(r, line, cells[t].strip()) for r, (line, cells) in enumerate(rows, start=1)]
    y, task, classes = _csv_targets(path, target, labels, task)
    return Dataset(X, y, task, path.name, [header[i] for i in features], classes, target)


# -- CSV series: sliding windows ---------------------------------------------------------------

def read_csv_windows(path: Path, window: int, target: str | None = None, task: str | None = None) -> Dataset:
    """Sliding windows over a CSV of one series (one row per time step, every column numeric).

    With N rows s_1..s_N and window T, example i (i = 1..N − T) is X_i = rows i..i+T−1
    (shape (T, F), every column a feature) and its target y_i is column ``target``
    (default: the last) of row i + T: the value that follows the window.
    """
    _check_task(task, path.name)
    if task == "classification":
        raise DataError(f"{path.name}: a window dataset predicts the next value of the series, so its task "
                        "is regression; drop 'task' or 'window'")
    header, rows, target = _read_table(path, target)
    if len(rows) < window + 2:
        raise DataError(f"{path.name}: {len(rows)} data row(s); windows of {window} steps need at least "
                        f"{window + 2} rows (each window is followed by the row it predicts)")
    series = _numbers(path, header, rows, list(range(len(header))))
    n = len(rows) - window
    X = np.lib.stride_tricks.sliding_window_view(series, window, axis=0)[:n].transpose(0, 2, 1)
    y = series[window:, header.index(target)].reshape(n, 1)
    return Dataset(X, y, "regression", path.name, list(header), [], target)


# -- NPZ ---------------------------------------------------------------------------------

NPZ_SHAPES = "X must be (n, F) features, (n, T, F) sequences or (n, C, H, W) images"
Y_SHAPES = "y must be (n,) or (n, T) class labels, or (n, d) or (n, T, d) regression targets"


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive, loaded without pickle; DataError for any damage.

    NumPy reports a damaged archive with many exception types (BadZipFile, ValueError,
    zlib.error, EOFError, MemoryError for an absurd header...), hence the broad catch
    around this one read: whatever the bytes, the user gets a message, not a traceback.
    """
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataError(f"{path.name}: is a single .npy array; save X and y with np.savez")
        with loaded:
            return {key: _npz_array(path, loaded, key) for key in loaded.files}
    except DataError:
        raise
    except ValueError as err:
        raise DataError(f"{path.name}: is not a valid NPZ file ({err})") from None
    except (OSError, zipfile.BadZipFile) as err:
        raise DataError(f"{path.name}: cannot read the NPZ file ({err})") from None
    except Exception as err:  # noqa: BLE001 - see docstring
        raise DataError(f"{path.name}: is not a valid NPZ file ({type(err).__name__}: {err})") from None


def _npz_array(path: Path, loaded: Any, key: str) -> np.ndarray:
    try:
        return loaded[key]
    except ValueError as err:
        if "pickle" not in str(err).lower():
            raise
        raise DataError(f"{path.name}: array '{key}' is an object array (sequences of different lengths, or "
                        "mixed types) that only pickle could load, which is refused for safety; pad every "
                        "sequence to one length T and save plain numeric arrays") from None


def _npz_features(path: Path, X: np.ndarray) -> np.ndarray:
    if X.dtype.kind not in "biuf":
        raise DataError(f"{path.name}: array X has dtype {X.dtype}; it must be numeric")
    if X.ndim < 2:
        raise DataError(f"{path.name}: array X has shape {X.shape}; it needs one row per example "
                        "(n, features), e.g. X.reshape(-1, 1)")
    if X.ndim > 4:
        raise DataError(f"{path.name}: array X has shape {X.shape}; {NPZ_SHAPES}")
    if X.size == 0:
        raise DataError(f"{path.name}: array X has shape {X.shape}; it holds no features")
    X = np.ascontiguousarray(X, dtype=DTYPE)
    if not all_finite(X):
        raise DataError(f"{path.name}: array X contains NaN or infinity (or values beyond float32's range)")
    return X


def _per_example_labels(where: str, values: np.ndarray, integer_dtype: bool,
                        task: str | None) -> tuple[np.ndarray, str, list[str]]:
    """One target per example: class labels, or a regression column (n, 1)."""
    if task is None and integer_dtype:
        task = "classification"
    task = _label_task(values, task, where)
    if task == "regression":
        return values.reshape(-1, 1), task, []
    if not np.all(values == np.round(values)):
        raise DataError(f"{where}: array y has non-integer values; class labels must be integers")
    labels, names = encode_numeric(values)
    need_two_classes(names, where)
    return labels, task, names


def _per_step_labels(where: str, values: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, str, list[str]]:
    """One class per time step: y (n, T) against X (n, T, F)."""
    if X.ndim != 3 or X.shape[1] != values.shape[1]:
        raise DataError(f"{where}: class labels y of shape {values.shape} mean one class per time step, but X has "
                        f"shape {X.shape}, not (n, {values.shape[1]}, F) sequences; give y (n,) for one class "
                        "per example")
    if not np.all(values == np.round(values)):
        raise DataError(f"{where}: array y has non-integer values; class labels must be integers")
    labels, names = encode_numeric(values.reshape(-1))
    need_two_classes(names, where)
    return labels.reshape(values.shape), "classification", names


def _string_targets(where: str, y: np.ndarray, X: np.ndarray, task: str | None) -> tuple[np.ndarray, str, list[str]]:
    if task == "regression":
        raise DataError(f"{where}: array y holds strings, but task is regression")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and (X.ndim != 3 or X.shape[1] != y.shape[1]):
        raise DataError(f"{where}: string labels y of shape {y.shape} need X of shape (n, {y.shape[1]}, F)")
    labels, names = _encode_strings([str(v) for v in y.reshape(-1)])
    need_two_classes(names, where)
    return labels.reshape(y.shape), "classification", names


def _npz_targets(path: Path, y: np.ndarray, X: np.ndarray, task: str | None) -> tuple[np.ndarray, str, list[str]]:
    """Targets by rank (docs/datasets.md "NPZ files"): (n,), (n, K), (n, T), (n, T, K)."""
    where = path.name
    if y.ndim > 3 or 0 in y.shape[1:]:
        raise DataError(f"{where}: array y has shape {y.shape}; {Y_SHAPES}")
    if y.dtype.kind == "U" and y.ndim <= 2:
        return _string_targets(where, y, X, task)
    if y.dtype.kind not in "biuf":
        raise DataError(f"{where}: array y has dtype {y.dtype} and shape {y.shape}; it must be numeric: {Y_SHAPES}")
    values = y.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise DataError(f"{where}: array y contains NaN or infinity")
    integer = y.dtype.kind in "biu"
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
        return _per_example_labels(where, values.reshape(-1), integer, task)
    if y.ndim == 3:
        if task != "classification":
            return values, "regression", []
        if y.shape[2] != 1:
            raise DataError(f"{where}: array y has shape {y.shape}; classification needs (n,) or (n, T) labels")
        values = values[:, :, 0]
    sequence_labels = integer and X.ndim == 3 and X.shape[1] == values.shape[1]
    if task == "classification" or (task is None and sequence_labels):
        return _per_step_labels(where, values, X)
    return values, "regression", []


def read_npz_dataset(path: Path, task: str | None = None) -> Dataset:
    """A Dataset from an NPZ holding ``X`` and ``y``; see :func:`_npz_targets` for y's shapes."""
    _check_task(task, path.name)
    check_file(path)
    arrays = _load_npz(path)
    missing = [k for k in ("X", "y") if k not in arrays]
    if missing:
        raise DataError(f"{path.name}: missing array(s) {', '.join(missing)}; it has "
                        f"{', '.join(sorted(arrays)) or 'none'} (save with np.savez(path, X=X, y=y))")
    X = _npz_features(path, arrays["X"])
    if arrays["y"].ndim == 0 or len(arrays["y"]) != len(X):
        n_y = "a scalar" if arrays["y"].ndim == 0 else f"{len(arrays['y'])} rows"
        raise DataError(f"{path.name}: X has {len(X)} rows but y has {n_y}; they must match")
    if len(X) < 2:
        raise DataError(f"{path.name}: {len(X)} example(s); a dataset needs at least 2")
    y, task, classes = _npz_targets(path, arrays["y"], X, task)
    names = [f"x{i + 1}" for i in range(X.shape[1])] if X.ndim == 2 else []
    return Dataset(X, y, task, path.name, names, classes, "y")


# -- preview -----------------------------------------------------------------------------

def read_table_preview(path: str | Path, max_rows: int = 50) -> tuple[list[str], list[list[str]]]:
    """Header and the first ``max_rows`` rows as text, for the studio's preview table.

    Reads only as much of a CSV as it shows and does not validate the cells (loading the
    dataset does); rows are as in the file, so a ragged row shows as ragged. An NPZ shows
    its flattened X columns and y.
    """
    path = Path(path)
    check_file(path)
    if path.suffix.lower() == ".npz":
        arrays = _load_npz(path)
        if "X" not in arrays or "y" not in arrays:
            have = ", ".join(sorted(arrays)) or "none"
            raise DataError(f"{path.name}: needs arrays X and y; it has {have}")
        X, y = arrays["X"], arrays["y"]
        if X.ndim < 1 or y.ndim < 1:
            raise DataError(f"{path.name}: X and y must have one row per example")
        X = X[:max_rows].reshape(min(len(X), max_rows), int(np.prod(X.shape[1:])))
        y = y[:max_rows].reshape(min(len(y), max_rows), int(np.prod(y.shape[1:])))
        header = [f"x{i + 1}" for i in range(X.shape[1])] + (
            ["y"] if y.shape[1] == 1 else [f"y{j + 1}" for j in range(y.shape[1])])
        rows = [[_fmt(v) for v in X[i]] + [_fmt(v) for v in y[i]] for i in range(min(len(X), len(y)))]
        return header, rows
    header, rows = _read_rows(path, limit=max_rows)
    return header, [cells for _, cells in rows]


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, (float, np.floating)) else str(v)
