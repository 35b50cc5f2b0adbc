"""Sequence data: the long-range generators, sequence NPZ files, CSV windows, per-step targets.

For the adding and temporal-order tasks the tests also check that there is no shortcut:
the target cannot be predicted from the last step (or any single step outside the marked
ones), while the marked steps determine it exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import GENERATORS, Dataset, class_balance, make_dataset, read_table_preview, split_dataset
from engine.data.sequences import ORDER_SYMBOLS
from engine.errors import DataError

SEQUENCES = [n for n, g in GENERATORS.items() if g.group == "sequences"]


def gen(name: str, **params) -> Dataset:
    return make_dataset({"name": name, **params})


def best_lookup_accuracy(keys: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the best classifier that sees only ``keys`` (majority class per key)."""
    right = 0
    for k in np.unique(keys, axis=0):
        rows = np.all(keys == k, axis=1) if keys.ndim > 1 else keys == k
        right += np.bincount(y[rows]).max()
    return right / len(y)


def r_squared(F: np.ndarray, t: np.ndarray) -> float:
    """R² of the least-squares linear fit of t on the features F (plus a constant)."""
    A = np.c_[F, np.ones(len(F))]
    coef, *_ = np.linalg.lstsq(A, t, rcond=None)
    return 1.0 - float(np.var(t - A @ coef) / np.var(t))


@pytest.mark.parametrize("name", SEQUENCES)
def test_sequence_generators_are_float32_deterministic_and_declared(name):
    a, b = gen(name, n=64, seed=1), gen(name, n=64, seed=1)
    assert a.X.dtype == np.float32 and a.X.ndim == 3 and a.layout == "sequence" and a.X.flags.c_contiguous
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, gen(name, n=64, seed=2).X)
    spec = GENERATORS[name]
    assert {"n", "length", "seed"} <= {p.name for p in spec.params}
    assert a.feature_shape == (spec.defaults()["length"], a.X.shape[2])


def test_adding_marks_two_steps_one_per_half_and_targets_their_sum():
    ds = gen("adding", n=500, length=30, seed=0)
    assert ds.X.shape == (500, 30, 2) and ds.y.shape == (500, 1) and ds.task == "regression"
    values, marks = ds.X[:, :, 0], ds.X[:, :, 1]
    assert np.all(marks.sum(axis=1) == 2)
    assert np.all(marks[:, :15].sum(axis=1) == 1) and np.all(marks[:, 15:].sum(axis=1) == 1)
    assert values.min() >= 0.0 and values.max() <= 1.0
    np.testing.assert_allclose(ds.y[:, 0], (values * marks).sum(axis=1), rtol=1e-6)


def test_adding_has_no_shortcut_from_the_last_step():
    ds = gen("adding", n=4000, length=50, seed=3)
    t = ds.y[:, 0].astype(np.float64)
    assert np.var(t) == pytest.approx(1 / 6, rel=0.1)  # predicting the mean scores MSE 1/6
    assert r_squared(ds.X[:, -1, :], t) < 0.1  # the last step explains (almost) nothing
    assert r_squared(ds.X[:, :, 0], t) < 0.2  # nor does a linear read of all values without the markers
    marked = (ds.X[:, :, 0] * ds.X[:, :, 1]).sum(axis=1)
    assert r_squared(marked[:, None], t) > 0.999


@pytest.mark.parametrize("marks, classes", [(2, ["XX", "XY", "YX", "YY"]), (3, None)])
def test_temporal_order_symbols_positions_and_classes(marks, classes):
    ds = gen("temporal_order", n=400, length=40, marks=marks, seed=0)
    k = 2 ** marks
    assert ds.X.shape == (400, 40, 6) and ds.y.shape == (400,) and ds.n_classes == k
    if classes:
        assert ds.class_names == classes
    assert ds.feature_names == list(ORDER_SYMBOLS)
    np.testing.assert_array_equal(ds.X.sum(axis=2), 1.0)  # one-hot
    symbol = ds.X.argmax(axis=2)
    relevant = symbol >= 4
    assert np.all(relevant.sum(axis=1) == marks)
    counts = np.bincount(ds.y, minlength=k)
    assert counts.max() - counts.min() <= 1
    windows = {2: [(4, 8), (20, 24)], 3: [(4, 8), (12, 16), (24, 28)]}[marks]
    for row, label in zip(symbol, ds.y, strict=True):
        steps = np.flatnonzero(row >= 4)
        assert all(lo <= s < hi for s, (lo, hi) in zip(steps, windows, strict=True))
        word = "".join("XY"[v - 4] for v in row[steps])
        assert ds.class_names[label] == word  # the order of the marked symbols is the class


def test_temporal_order_has_no_shortcut_from_any_single_unmarked_step():
    ds = gen("temporal_order", n=4000, length=50, seed=1)
    symbol = ds.X.argmax(axis=2)
    for step in (0, 15, 40, 49):  # before, between and after the marked windows [5, 10) and [25, 30)
        assert best_lookup_accuracy(symbol[:, step], ds.y) < 0.30  # chance is 0.25
    marked = np.sort(np.where(symbol >= 4, symbol, -1), axis=1)[:, -2:]  # not ordered: loses the class
    assert best_lookup_accuracy(marked, ds.y) < 0.80
    ordered = np.array([row[row >= 4] for row in symbol])
    assert best_lookup_accuracy(ordered, ds.y) == 1.0


def test_parity_is_the_xor_of_the_bits_balanced_and_needs_every_bit():
    ds = gen("parity", n=2000, length=12, seed=0)
    bits = ds.X[:, :, 0].astype(np.int64)
    assert set(np.unique(bits)) == {0, 1} and ds.y.shape == (2000,)
    np.testing.assert_array_equal(ds.y, bits.sum(axis=1) % 2)
    assert class_balance(ds) == {"even": 1000, "odd": 1000}
    assert best_lookup_accuracy(bits[:, :-1].sum(axis=1) % 2, ds.y) < 0.55  # all but one bit: chance
    assert best_lookup_accuracy(bits[:, -1], ds.y) < 0.55


def test_parity_per_step_labels_every_prefix_and_noise_jitters_the_bits():
    ds = gen("parity", n=300, length=9, per_step=True, seed=2)
    assert ds.y.shape == (300, 9) and ds.per_example_classes is False
    bits = ds.X[:, :, 0].astype(np.int64)
    np.testing.assert_array_equal(ds.y, np.cumsum(bits, axis=1) % 2)
    assert sum(class_balance(ds).values()) == 300 * 9
    noisy = gen("parity", n=300, length=9, per_step=True, noise=0.2, seed=2)
    assert np.std(noisy.X - ds.X) == pytest.approx(0.2, rel=0.1)
    np.testing.assert_array_equal(noisy.y, ds.y)


def test_sine_sequence_targets_are_the_clean_next_values():
    clean = gen("sine_sequence", n=50, length=20, noise=0.0, seed=4)
    assert clean.X.shape == (50, 20, 1) and clean.y.shape == (50, 20, 1) and clean.task == "regression"
    np.testing.assert_allclose(clean.y[:, :-1], clean.X[:, 1:], atol=1e-6)  # y_t is x_{t+1}
    s = clean.X[:, :, 0].astype(np.float64)
    # a sine obeys s_{t+1} = 2cos(ω)·s_t − s_{t−1}: one ω per sequence fits every step
    for row, nxt in zip(s, clean.y[:, :, 0], strict=True):
        c = np.linalg.lstsq(row[1:, None], (nxt[1:] + row[:-1])[:, None], rcond=None)[0][0, 0] / 2
        assert 0.1 - 1e-3 <= np.arccos(np.clip(c, -1, 1)) <= 0.6 + 1e-3
        np.testing.assert_allclose(nxt[1:], 2 * c * row[1:] - row[:-1], atol=1e-4)
    noisy = gen("sine_sequence", n=50, length=20, noise=0.1, seed=4)
    np.testing.assert_array_equal(noisy.y, clean.y)
    assert np.std(noisy.X - clean.X) == pytest.approx(0.1, rel=0.15)


@pytest.mark.parametrize("spec, word", [
    ({"name": "adding", "length": 1}, "'length'"),
    ({"name": "temporal_order", "length": 5}, "'length'"),
    ({"name": "temporal_order", "marks": 4}, "'marks'"),
    ({"name": "parity", "per_step": "yes"}, "'per_step'"),
    ({"name": "adding", "n": 100000, "length": 1000}, "lower n"),
])
def test_bad_sequence_parameters_are_named(spec, word):
    with pytest.raises(DataError, match=word):
        make_dataset(spec)


# -- per-step targets through Dataset and split ----------------------------------------------------

def test_split_of_per_step_classes_is_a_plain_shuffle_and_keeps_pairs():
    ds = gen("parity", n=101, length=6, per_step=True, seed=0)
    train, val, test = split_dataset(ds, 0.2, 0.1, seed=3)
    assert (len(train), len(val), len(test)) == (71, 20, 10)
    for part in (train, val, test):
        bits = part.X[:, :, 0].astype(np.int64)
        np.testing.assert_array_equal(part.y, np.cumsum(bits, axis=1) % 2)


def test_split_of_sequence_regression_keeps_x_and_y_together():
    ds = gen("sine_sequence", n=40, length=8, noise=0.0)
    train, val, _ = split_dataset(ds, 0.25, seed=1)
    for part in (train, val):
        np.testing.assert_allclose(part.y[:, :-1], part.X[:, 1:], atol=1e-6)


def test_dataset_refuses_targets_of_the_wrong_rank_or_range():
    X = np.zeros((4, 3, 2), np.float32)
    with pytest.raises(DataError, match=r"\(n,\) or \(n, T\)"):
        Dataset(X, np.zeros((4, 3, 2), np.int64), "classification", "d", [], ["a", "b"])
    with pytest.raises(DataError, match=r"in \[0, 2\)"):
        Dataset(X, np.array([0, 1, 2, 0]), "classification", "d", [], ["a", "b"])
    with pytest.raises(DataError, match=r"\(n, d\) or \(n, T, d\)"):
        Dataset(X, np.zeros((4, 3, 2, 1)), "regression", "d", [], [])
    assert Dataset(X, np.zeros(4), "regression", "d", [], []).y.shape == (4, 1)


# -- NPZ sequences ---------------------------------------------------------------------------------

def test_npz_sequences_accept_every_documented_target_shape(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 5, 3))
    cases = {
        "per_example.npz": (np.array([0, 1, 2, 0, 1, 2]), "classification", (6,)),
        "per_step.npz": (rng.integers(0, 3, (6, 5)), "classification", (6, 5)),
        "vector.npz": (rng.normal(size=(6, 4)), "regression", (6, 4)),
        "seq_reg.npz": (rng.normal(size=(6, 5, 2)), "regression", (6, 5, 2)),
        "seq_reg1.npz": (rng.normal(size=(6, 5)), "regression", (6, 5)),
    }
    for name, (y, task, shape) in cases.items():
        np.savez(tmp_path / name, X=X, y=y)
        ds = make_dataset({"path": name}, tmp_path)
        assert (ds.task, ds.y.shape) == (task, shape), name
        assert ds.X.dtype == np.float32 and ds.feature_shape == (5, 3)
    per_step = make_dataset({"path": "per_step.npz"}, tmp_path)
    np.testing.assert_array_equal(per_step.y, cases["per_step.npz"][0])
    np.savez(tmp_path / "float_steps.npz", X=X, y=rng.integers(0, 2, (6, 5)).astype(float))
    assert make_dataset({"path": "float_steps.npz"}, tmp_path).task == "regression"
    ds = make_dataset({"path": "float_steps.npz", "task": "classification"}, tmp_path)
    assert ds.y.shape == (6, 5) and ds.y.dtype == np.int64


def test_bad_sequence_npz_files_name_the_file_and_the_shape(tmp_path):
    X = np.zeros((4, 5, 2))
    ragged = np.empty(4, dtype=object)
    ragged[:] = [np.zeros((n, 2)) for n in (3, 5, 4, 5)]
    np.savez(tmp_path / "ragged.npz", X=ragged, y=np.array([0, 1, 0, 1]))
    np.savez(tmp_path / "rank4y.npz", X=X, y=np.zeros((4, 5, 2, 1)))
    np.savez(tmp_path / "steps.npz", X=X, y=np.zeros((4, 6), dtype=int))
    np.savez(tmp_path / "table.npz", X=np.zeros((4, 5)), y=np.zeros((4, 5), dtype=int))
    np.savez(tmp_path / "seqclass.npz", X=X, y=np.zeros((4, 5, 2)))
    np.savez(tmp_path / "rank5.npz", X=np.zeros((4, 5, 2, 1, 1)), y=np.array([0, 1, 0, 1]))
    cases = [
        ({"path": "ragged.npz"}, ["ragged.npz", "'X'", "different lengths", "pad"]),
        ({"path": "rank4y.npz"}, ["rank4y.npz", "(4, 5, 2, 1)", "(n, T, d)"]),
        ({"path": "steps.npz", "task": "classification"}, ["steps.npz", "(4, 6)", "one class per time step"]),
        ({"path": "table.npz", "task": "classification"}, ["table.npz", "(4, 5)", "sequences"]),
        ({"path": "seqclass.npz", "task": "classification"}, ["seqclass.npz", "(n,) or (n, T)"]),
        ({"path": "rank5.npz"}, ["rank5.npz", "(n, T, F) sequences"]),
    ]
    for spec, words in cases:
        with pytest.raises(DataError) as err:
            make_dataset(spec, tmp_path)
        for word in words:
            assert word in str(err.value), (spec, str(err.value))
    header, rows = read_table_preview(tmp_path / "steps.npz", max_rows=2)
    assert len(header) == 10 + 6 and len(rows) == 2  # flattened X (5·2) and y (6)


# -- CSV series windows ----------------------------------------------------------------------------

def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_windows_slide_over_the_series_and_predict_the_next_row(tmp_path):
    values = [0.5 * i * i for i in range(12)]
    write(tmp_path, "s.csv", "t,level\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    ds = make_dataset({"path": "s.csv", "window": 4}, tmp_path)
    assert ds.task == "regression" and ds.X.shape == (8, 4, 2) and ds.y.shape == (8, 1)
    assert ds.X.dtype == np.float32 and ds.feature_names == ["t", "level"] and ds.target_name == "level"
    for i in range(8):
        np.testing.assert_array_equal(ds.X[i, :, 1], values[i:i + 4])
        np.testing.assert_array_equal(ds.X[i, :, 0], range(i, i + 4))
        assert ds.y[i, 0] == values[i + 4]
    by_t = make_dataset({"path": "s.csv", "window": 4, "target": "t"}, tmp_path)
    assert by_t.y[:, 0].tolist() == list(range(4, 12))


@pytest.mark.parametrize("spec, words", [
    ({"window": 11}, ["s.csv", "13 rows", "11 data row"]),
    ({"window": 0}, ["'window'", "integer"]),
    ({"window": "3"}, ["'window'"]),
    ({"window": 2, "task": "classification"}, ["s.csv", "regression"]),
    ({"window": 2, "target": "nope"}, ["s.csv", "no column 'nope'"]),
])
def test_bad_csv_windows_are_named(tmp_path, spec, words):
    write(tmp_path, "s.csv", "v\n" + "".join(f"{i}\n" for i in range(11)))
    with pytest.raises(DataError) as err:
        make_dataset({"path": "s.csv", **spec}, tmp_path)
    for word in words:
        assert word in str(err.value), str(err.value)


def test_csv_window_rows_must_be_numbers_and_complete(tmp_path):
    write(tmp_path, "bad.csv", "a,b\n1,2\n3,x\n5,6\n7,8\n")
    with pytest.raises(DataError, match=r"bad\.csv: row 2 \(line 3\), column 'b'"):
        make_dataset({"path": "bad.csv", "window": 2}, tmp_path)
    write(tmp_path, "short.csv", "a,b\n1,2\n3\n5,6\n7,8\n")
    with pytest.raises(DataError, match=r"short\.csv: row 2 \(line 3\) has 1 cells"):
        make_dataset({"path": "short.csv", "window": 2}, tmp_path)
    np.savez(tmp_path / "x.npz", X=np.zeros((4, 2)), y=np.arange(4))
    with pytest.raises(DataError, match="window does not apply to an NPZ file"):
        make_dataset({"path": "x.npz", "window": 2}, tmp_path)
    with pytest.raises(DataError, match="no 'path'"):
        make_dataset({"name": "adding", "window": 2})
