"""Datasets: 2-D and curve generators, CSV/NPZ files and their errors, splitting, docs.

Image data is tested in test_data_images.py, sequence data in test_data_sequences.py,
normalisation statistics in test_data_normaliser.py, a run's working copy, memory budget
and per-channel export in test_data_session.py.
"""

from __future__ import annotations

import io
import math
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.data import (
    GENERATORS,
    Dataset,
    class_balance,
    generators_markdown,
    make_dataset,
    read_table_preview,
    sample_indices,
    split_dataset,
)
from engine.errors import DataError

DOCS = Path(__file__).resolve().parents[2] / "docs"
CLASSIFICATION = [n for n, g in GENERATORS.items() if g.group == "points"]
REGRESSION = [n for n, g in GENERATORS.items() if g.group == "curves"]


def gen(name: str, **params) -> Dataset:
    return make_dataset({"name": name, **params})


# -- generators ------------------------------------------------------------------------------

def test_the_required_generators_exist():
    assert {"xor", "moons", "circles", "spirals", "blobs", "checkerboard", "sine"} <= set(GENERATORS)
    assert len(REGRESSION) >= 2


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_generators_give_2d_points_and_balanced_int_labels(name):
    ds = gen(name, n=60, seed=3)
    assert ds.X.shape == (60, 2) and ds.X.dtype == np.float32
    assert ds.y.shape == (60,) and ds.y.dtype == np.int64
    assert ds.task == "classification" and ds.feature_shape == (2,) and len(ds) == 60
    assert ds.n_classes == len(ds.class_names) >= 2
    assert set(np.unique(ds.y)) == set(range(ds.n_classes))
    assert np.all(np.isfinite(ds.X))
    counts = np.bincount(ds.y)
    if name != "checkerboard":  # checkerboard labels follow uniformly drawn points
        assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_generators_give_one_feature_and_column_targets(name):
    ds = gen(name, n=50)
    assert ds.X.shape == (50, 1) and ds.y.shape == (50, 1)
    assert ds.X.dtype == ds.y.dtype == np.float32
    assert ds.task == "regression" and ds.n_classes == 0 and ds.class_names == []
    assert class_balance(ds) == {}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generators_are_deterministic_by_seed_and_differ_across_seeds(name):
    params = {"n": 40} | ({"noise": 0.1} if "noise" in GENERATORS[name].defaults() else {})
    a, b, c = gen(name, **params, seed=7), gen(name, **params, seed=7), gen(name, **params, seed=8)
    assert a.X.dtype == np.float32 and a.X.flags.c_contiguous
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_every_generator_parameter_is_declared_with_range_and_help(name):
    spec = GENERATORS[name]
    names = [p.name for p in spec.params]
    assert {"n", "seed"} <= set(names)
    assert "noise" in names or spec.group in ("images", "sequences")
    assert spec.group in ("points", "curves", "images", "sequences") and spec.shapes.startswith("X (n")
    for p in spec.params:
        assert p.help
        if p.kind in ("int", "float"):
            assert p.min is not None and p.max is not None and p.min <= p.default <= p.max
    assert isinstance(spec.generate(), Dataset)


def test_xor_with_four_points_and_no_noise_is_the_truth_table():
    ds = gen("xor", n=4, noise=0.0)
    np.testing.assert_array_equal(ds.X, [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert ds.X.dtype == np.float32
    assert ds.y.tolist() == [0, 1, 1, 0]
    assert ds.class_names[0] == "0" and ds.class_names[1] == "1"


def test_default_xor_is_the_truth_table():
    ds = make_dataset({"name": "xor"})
    assert len(ds) == 4 and ds.y.tolist() == [0, 1, 1, 0]


def test_larger_xor_scatters_noisy_points_around_the_corners():
    ds = gen("xor", n=400, noise=0.05, seed=1)
    corners = np.round(ds.X)
    assert np.all(np.abs(ds.X - corners) < 0.3)
    assert len(np.unique(ds.X, axis=0)) == 400
    np.testing.assert_array_equal(ds.y, (corners[:, 0] != corners[:, 1]).astype(int))
    assert class_balance(ds) == {"0": 200, "1": 200}


def test_circles_classes_have_different_radii():
    ds = gen("circles", n=100, noise=0.0, factor=0.3)
    r = np.hypot(ds.X[:, 0], ds.X[:, 1])
    outer, inner = ds.class_names.index("outer"), ds.class_names.index("inner")
    np.testing.assert_allclose(r[ds.y == outer], 1.0, rtol=1e-6)
    np.testing.assert_allclose(r[ds.y == inner], 0.3, rtol=1e-6)


def test_moons_lie_on_two_shifted_half_circles():
    ds = gen("moons", n=80, noise=0.0)
    up, low = ds.X[ds.y == 0], ds.X[ds.y == 1]
    np.testing.assert_allclose(np.hypot(up[:, 0], up[:, 1]), 1.0, rtol=1e-6)
    assert np.all(up[:, 1] >= 0)
    np.testing.assert_allclose(np.hypot(low[:, 0] - 1.0, low[:, 1] - 0.5), 1.0, rtol=1e-6)
    assert np.all(low[:, 1] <= 0.5)


@pytest.mark.parametrize("arms", [2, 3])
def test_spiral_arms_are_rotated_copies(arms):
    ds = gen("spirals", n=90, noise=0.0, n_arms=arms, turns=1.0)
    assert ds.n_classes == arms
    r = np.hypot(ds.X[:, 0], ds.X[:, 1])
    theta = np.arctan2(ds.X[:, 1], ds.X[:, 0])
    phase = (theta - 2 * math.pi * r) / (2 * math.pi) - ds.y / arms  # an integer on arm y
    np.testing.assert_allclose(phase, np.round(phase), atol=1e-5)


def test_blobs_have_one_cluster_per_class_with_the_given_spread():
    ds = gen("blobs", n=4000, noise=0.0, centers=4, cluster_std=0.2, seed=2)
    assert ds.n_classes == 4
    means = np.array([ds.X[ds.y == k].mean(axis=0) for k in range(4)])
    spread = np.array([ds.X[ds.y == k].std(axis=0) for k in range(4)])
    np.testing.assert_allclose(spread, 0.2, rtol=0.1)
    gaps = [np.linalg.norm(means[i] - means[j]) for i in range(4) for j in range(i + 1, 4)]
    assert min(gaps) > 1.0


def test_checkerboard_with_two_tiles_is_the_sign_xor():
    ds = gen("checkerboard", n=300, noise=0.0, tiles=2)
    odd = ds.class_names.index("odd")
    np.testing.assert_array_equal(ds.y == odd, (ds.X[:, 0] >= 0) != (ds.X[:, 1] >= 0))
    assert np.all(np.abs(ds.X) <= 1.0)


def test_sine_is_sin_of_x_on_minus_pi_to_pi():
    ds = gen("sine", n=300, noise=0.0)
    x = ds.X[:, 0]
    assert x.min() >= -math.pi and x.max() <= math.pi and x.max() - x.min() > 5.5
    np.testing.assert_allclose(ds.y[:, 0], np.sin(x), atol=1e-6)
    noisy = gen("sine", n=4000, noise=0.3, seed=1)
    assert np.std(noisy.y[:, 0] - np.sin(noisy.X[:, 0])) == pytest.approx(0.3, rel=0.08)


def test_polynomial_degree_three_is_the_cubic_chebyshev():
    ds = gen("polynomial", n=100, noise=0.0, degree=3)
    x = ds.X[:, 0]
    np.testing.assert_allclose(ds.y[:, 0], 4 * x**3 - 3 * x, atol=1e-5)


@pytest.mark.parametrize("params, word", [
    ({"wobble": 1}, "wobble"),
    ({"n": 1}, "'n'"),
    ({"n": 10**9}, "'n'"),
    ({"noise": -0.5}, "'noise'"),
    ({"noise": "lots"}, "'noise'"),
    ({"seed": 1.5}, "'seed'"),
    ({"factor": 2.0}, "'factor'"),
])
def test_bad_generator_parameters_are_data_errors_naming_the_parameter(params, word):
    with pytest.raises(DataError, match=word) as err:
        gen("circles", **params)
    assert "circles" in str(err.value)


@pytest.mark.parametrize("spec", [{"name": "mnist"}, {}, {"n": 10}, {"name": 3}])
def test_unknown_dataset_lists_the_generators(spec):
    with pytest.raises(DataError) as err:
        make_dataset(spec)
    for name in GENERATORS:
        assert name in str(err.value)


@pytest.mark.parametrize("spec", [["xor"], "xor", None, {"name": "xor", "path": "a.csv"}])
def test_malformed_dataset_spec_is_a_data_error(spec):
    with pytest.raises(DataError):
        make_dataset(spec)


# -- CSV ---------------------------------------------------------------------------------------

def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def test_csv_with_string_labels_and_a_chosen_target_column(tmp_path):
    write(tmp_path, "flowers.csv", "width,species,height\n1.0,setosa,2\n3,virginica,4.5\n"
          "5,setosa,6\n7,versicolor,8\n")
    ds = make_dataset({"path": "flowers.csv", "target": "species"}, tmp_path)
    assert ds.task == "classification" and ds.name == "flowers.csv"
    assert ds.feature_names == ["width", "height"] and ds.target_name == "species"
    assert ds.class_names == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4.5], [5, 6], [7, 8]])
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert [ds.class_names[i] for i in ds.y] == ["setosa", "virginica", "setosa", "versicolor"]
    assert class_balance(ds) == {"setosa": 2, "versicolor": 1, "virginica": 1}


def test_csv_numeric_labels_sort_numerically_and_default_target_is_last(tmp_path):
    write(tmp_path, "d.csv", "\ufeffa, b ,label\n0,1,10\n1,0,2\n\n2,2,10\n3,3,2\n")
    ds = make_dataset({"path": "d.csv"}, tmp_path)
    assert ds.feature_names == ["a", "b"] and ds.target_name == "label"
    assert ds.class_names == ["2", "10"]
    assert ds.y.tolist() == [1, 0, 1, 0]


def test_csv_float_target_is_regression_unless_told(tmp_path):
    write(tmp_path, "r.csv", "x,y\n1,0.5\n2,1.5\n3,2.25\n")
    ds = make_dataset({"path": "r.csv", "target": "y"}, tmp_path)
    assert ds.task == "regression" and ds.y.shape == (3, 1) and ds.y.dtype == np.float32
    np.testing.assert_array_equal(ds.y[:, 0], [0.5, 1.5, 2.25])
    ds = make_dataset({"path": "r.csv", "target": "y", "task": "classification"}, tmp_path)
    assert ds.task == "classification" and ds.n_classes == 3


def test_csv_integer_target_with_many_values_is_regression(tmp_path):
    rows = "\n".join(f"{i},{i * 3}" for i in range(30))
    write(tmp_path, "many.csv", "x,y\n" + rows + "\n")
    assert make_dataset({"path": "many.csv", "target": "y"}, tmp_path).task == "regression"
    few = make_dataset({"path": "many.csv", "target": "y", "task": "regression"}, tmp_path)
    assert few.y.shape == (30, 1)


def test_tsv_and_absolute_paths(tmp_path):
    path = write(tmp_path, "t.tsv", "a\tb\tc\n1\t2\tx\n3\t4\ty\n")
    ds = make_dataset({"path": str(path), "target": "c"}, Path("/nonexistent"))
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4]])


CSV_ERRORS = [
    ("empty.csv", "", ["empty.csv", "empty"]),
    ("blank.csv", "\n\n  \n", ["blank.csv", "empty"]),
    ("header.csv", "a,label\n", ["header.csv", "0 data row"]),
    ("one.csv", "a,label\n1,0\n", ["one.csv", "at least 2"]),
    ("notarget.csv", "alpha,beta\n1,2\n3,4\n", ["notarget.csv", "'label'", "alpha", "beta"]),
    ("ragged.csv", "a,b,label\n1,2,0\n3,1\n", ["ragged.csv", "row 2", "line 3"]),
    ("long.csv", "a,b,label\n1,2,0\n3,4,1,9\n", ["long.csv", "row 2"]),
    ("word.csv", "a,b,label\n1,2,0\n3,four,1\n", ["word.csv", "row 2", "'b'", "four"]),
    ("nan.csv", "a,b,label\n1,nan,0\n3,4,1\n", ["nan.csv", "row 1", "'b'"]),
    ("inf.csv", "a,b,label\n1,2,0\n-inf,4,1\n", ["inf.csv", "row 2", "'a'"]),
    ("hole.csv", "a,b,label\n1,,0\n3,4,1\n", ["hole.csv", "row 1", "'b'", "empty"]),
    ("nolabel.csv", "a,label\n1,\n3,1\n", ["nolabel.csv", "row 1", "'label'"]),
    ("dupe.csv", "a,a,label\n1,2,0\n3,4,1\n", ["dupe.csv", "duplicate", "a"]),
    ("noheader.csv", "1,2,0\n3,4,1\n", ["noheader.csv", "header"]),
    ("unnamed.csv", "a,,label\n1,2,0\n3,4,1\n", ["unnamed.csv", "column 2"]),
    ("onlylabel.csv", "label\n0\n1\n", ["onlylabel.csv", "feature"]),
    ("oneclass.csv", "a,label\n1,cat\n2,cat\n", ["oneclass.csv", "cat"]),
    ("latin1.csv", "a,label\n1,caf\xe9\n2,tea\n".encode("latin-1"), ["latin1.csv", "UTF-8"]),
]


@pytest.mark.parametrize("name, content, words", CSV_ERRORS, ids=[c[0] for c in CSV_ERRORS])
def test_bad_csv_files_raise_data_errors_naming_the_problem(tmp_path, name, content, words):
    write(tmp_path, name, content)
    with pytest.raises(DataError) as err:
        make_dataset({"path": name, "target": "label"}, tmp_path)
    for word in words:
        assert word in str(err.value), str(err.value)


def test_string_labels_cannot_be_a_regression_target(tmp_path):
    write(tmp_path, "s.csv", "a,label\n1,cat\n2,dog\n")
    with pytest.raises(DataError, match="regression"):
        make_dataset({"path": "s.csv", "target": "label", "task": "regression"}, tmp_path)


@pytest.mark.parametrize("spec, word", [
    ({"path": "gone.csv", "target": "y"}, "no such file"),
    ({"path": "gone.npz"}, "gone.npz"),
    ({"path": "data.xlsx"}, ".csv"),
    ({"path": "d.csv", "target": 3}, "target"),
    ({"path": "d.csv", "task": "clustering"}, "clustering"),
    ({"path": "d.csv", "sheet": 1}, "sheet"),
    ({"path": ""}, "path"),
])
def test_bad_file_specs_are_data_errors(tmp_path, spec, word):
    write(tmp_path, "d.csv", "a,y\n1,0\n2,1\n")
    write(tmp_path, "data.xlsx", "whatever")
    with pytest.raises(DataError, match=word):
        make_dataset(spec, tmp_path)


def test_missing_file_message_names_the_file(tmp_path):
    with pytest.raises(DataError) as err:
        make_dataset({"path": "nowhere.csv", "target": "y"}, tmp_path)
    assert "nowhere.csv" in str(err.value) and "no such file" in str(err.value)


# -- NPZ ---------------------------------------------------------------------------------------

def save_npz(tmp_path: Path, name: str, **arrays) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_npz_integer_labels_are_classification(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    save_npz(tmp_path, "c.npz", X=X, y=np.array([2, 0, 1, 2, 0, 1]))
    ds = make_dataset({"path": "c.npz"}, tmp_path)
    assert ds.task == "classification" and ds.class_names == ["0", "1", "2"]
    assert ds.y.tolist() == [2, 0, 1, 2, 0, 1] and ds.y.dtype == np.int64
    assert ds.X.dtype == np.float32 and ds.feature_shape == (2,)
    np.testing.assert_array_equal(ds.X, X)


def test_npz_float_targets_are_regression_unless_few_integers(tmp_path):
    X = np.random.default_rng(0).normal(size=(5, 3))
    save_npz(tmp_path, "r.npz", X=X, y=np.linspace(0, 1, 5))
    ds = make_dataset({"path": "r.npz"}, tmp_path)
    assert ds.task == "regression" and ds.y.shape == (5, 1)
    save_npz(tmp_path, "m.npz", X=X, y=np.ones((5, 2)))
    assert make_dataset({"path": "m.npz"}, tmp_path).y.shape == (5, 2)
    save_npz(tmp_path, "f.npz", X=X, y=np.array([0.0, 1.0, 1.0, 0.0, 1.0]))
    ds = make_dataset({"path": "f.npz"}, tmp_path)
    assert ds.task == "classification" and ds.y.tolist() == [0, 1, 1, 0, 1]
    assert make_dataset({"path": "f.npz", "task": "regression"}, tmp_path).task == "regression"


def test_npz_images_keep_their_shape_and_string_labels_work(tmp_path):
    X = np.zeros((4, 1, 3, 3))
    save_npz(tmp_path, "img.npz", X=X, y=np.array(["dog", "cat", "dog", "cat"]))
    ds = make_dataset({"path": "img.npz"}, tmp_path)
    assert ds.feature_shape == (1, 3, 3) and ds.class_names == ["cat", "dog"]
    assert ds.y.tolist() == [1, 0, 1, 0]


def npz_error_cases(tmp_path: Path) -> list[tuple[str, list[str]]]:
    X = np.zeros((4, 2))
    save_npz(tmp_path, "noy.npz", X=X, labels=np.zeros(4))
    save_npz(tmp_path, "short.npz", X=X, y=np.zeros(3, dtype=int))
    save_npz(tmp_path, "flat.npz", X=np.zeros(4), y=np.zeros(4, dtype=int))
    save_npz(tmp_path, "nan.npz", X=np.array([[0.0, np.nan]] * 4), y=np.array([0, 1, 0, 1]))
    save_npz(tmp_path, "text.npz", X=np.array([["a", "b"]] * 4), y=np.array([0, 1, 0, 1]))
    save_npz(tmp_path, "one.npz", X=np.zeros((1, 2)), y=np.zeros(1, dtype=int))
    np.savez(tmp_path / "pickled.npz", X=np.array([[1], "a", None], dtype=object), y=np.zeros(3))
    np.save(tmp_path / "single.npy", X)
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    write(tmp_path, "text_file.npz", "X,y\n1,2\n")
    buf = io.BytesIO()
    np.savez(buf, X=np.zeros((50, 2)), y=np.zeros(50))
    write(tmp_path, "truncated.npz", buf.getvalue()[:200])
    return [("noy.npz", ["noy.npz", "y", "labels"]), ("short.npz", ["short.npz", "4", "3"]),
            ("flat.npz", ["flat.npz", "shape"]), ("nan.npz", ["nan.npz", "NaN"]),
            ("text.npz", ["text.npz", "numeric"]), ("one.npz", ["one.npz", "at least 2"]),
            ("pickled.npz", ["pickled.npz", "pickle"]), ("single.npz", ["single.npz", "npy"]),
            ("text_file.npz", ["text_file.npz"]), ("truncated.npz", ["truncated.npz"])]


def test_bad_npz_files_raise_data_errors_naming_the_problem(tmp_path):
    for name, words in npz_error_cases(tmp_path):
        with pytest.raises(DataError) as err:
            make_dataset({"path": name}, tmp_path)
        for word in words:
            assert word in str(err.value), (name, str(err.value))


def test_npz_is_never_unpickled(tmp_path, monkeypatch):
    """Even a file whose object array would unpickle is refused without running pickle."""
    import pickle

    np.savez(tmp_path / "evil.npz", X=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(DataError, match="pickle"):
        make_dataset({"path": "evil.npz"}, tmp_path)


# -- fuzzing: whatever the bytes, only DataError ------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CSVISH = st.text(alphabet=st.sampled_from(list("ab,;\"\n\r\t 0123456789.-+eEnaif\x00é")), max_size=200)


def only_data_error(path: Path, spec: dict) -> None:
    try:
        ds = make_dataset(spec, path.parent)
    except DataError:
        return
    assert len(ds) >= 2 and np.all(np.isfinite(ds.X))


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), CSVISH.map(lambda s: s.encode("utf-8"))),
       target=st.sampled_from([None, "a", "b"]))
def test_fuzzed_csv_only_raises_data_error(data, target):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.csv"
        path.write_bytes(data)
        only_data_error(path, {"path": "fuzz.csv", "target": target} if target else {"path": "fuzz.csv"})
        try:
            read_table_preview(path, max_rows=5)
        except DataError:
            pass


def _valid_npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, X=np.arange(8.0).reshape(4, 2), y=np.array([0, 1, 0, 1]))
    return buf.getvalue()


VALID_NPZ = _valid_npz_bytes()


@st.composite
def damaged_npz(draw) -> bytes:
    data = bytearray(VALID_NPZ)
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), damaged_npz(), st.just(b"PK\x03\x04" + bytes(40))))
def test_fuzzed_npz_only_raises_data_error(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.npz"
        path.write_bytes(data)
        only_data_error(path, {"path": "fuzz.npz"})
        try:
            read_table_preview(path)
        except DataError:
            pass


def test_npz_with_a_forged_huge_header_is_a_data_error(tmp_path):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (10000000000000, 2), }"
    header = header + " " * (117 - len(header)) + "\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(64)
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.writestr("X.npy", npy)
        z.writestr("y.npy", npy)
    with pytest.raises(DataError, match="huge.npz"):
        make_dataset({"path": "huge.npz"}, tmp_path)


# -- split ---------------------------------------------------------------------------------------

def indexed(n: int, labels: np.ndarray | None = None) -> Dataset:
    """A dataset whose feature is the example's index, so splits can be traced back."""
    X = np.arange(n, dtype=np.float64).reshape(n, 1)
    if labels is None:
        return Dataset(X, np.zeros((n, 1)), "regression", "idx", ["i"], [])
    return Dataset(X, labels.astype(np.int64), "classification", "idx", ["i"],
                   [str(k) for k in range(int(labels.max()) + 1)])


@pytest.mark.parametrize("labels", [None, np.arange(100) % 2])
def test_split_fractions_are_disjoint_and_cover_everything(labels):
    train, val, test = split_dataset(indexed(100, labels), 0.10, 0.25, seed=0)
    assert (len(train), len(val), len(test)) == (65, 10, 25)
    ids = np.concatenate([train.X[:, 0], val.X[:, 0], test.X[:, 0]])
    assert sorted(ids.tolist()) == list(range(100))
    assert train.name == "idx" and train.feature_names == ["i"]


def test_split_is_shuffled_seeded_and_zero_fractions_give_none():
    ds = indexed(50)
    train, val, test = split_dataset(ds, 0.0)
    assert val is None and test is None and len(train) == 50
    assert train.X[:, 0].tolist() != list(range(50))
    a = split_dataset(ds, 0.2, seed=4)[1].X[:, 0].tolist()
    assert a == split_dataset(ds, 0.2, seed=4)[1].X[:, 0].tolist()
    assert a != split_dataset(ds, 0.2, seed=5)[1].X[:, 0].tolist()


@pytest.mark.parametrize("seed", range(5))
def test_classification_split_is_stratified(seed):
    labels = np.array([0] * 70 + [1] * 20 + [2] * 10)
    train, val, test = split_dataset(indexed(100, labels), 0.2, 0.3, seed=seed)
    for part, size in ((val, 20), (test, 30), (train, 50)):
        counts = np.bincount(part.y, minlength=3)
        assert np.all(np.abs(counts - size * np.array([0.7, 0.2, 0.1])) <= 1.0), (size, counts)
        np.testing.assert_array_equal(labels[part.X[:, 0].astype(int)], part.y)


def test_a_class_with_one_example_stays_in_training():
    labels = np.array([0, 1] * 10 + [2])
    for seed in range(5):
        train, val, _ = split_dataset(indexed(21, labels), 0.3, seed=seed)
        assert 2 in train.y and 2 not in val.y


def test_split_refuses_too_little_data_and_bad_fractions():
    with pytest.raises(DataError, match="too few"):
        split_dataset(gen("xor"), 0.5, 0.5)
    with pytest.raises(DataError):
        split_dataset(gen("xor"), -0.1)
    with pytest.raises(DataError):
        split_dataset(gen("xor"), 1.0)


def test_tiny_fraction_still_holds_out_one_example():
    train, val, _ = split_dataset(gen("xor"), 0.1)
    assert len(val) == 1 and len(train) == 3


# -- dataset object, preview, docs ---------------------------------------------------------------

def test_subset_by_indices_and_mask_keeps_metadata():
    ds = gen("blobs", n=30, centers=3)
    part = ds.subset(ds.y == 1)
    assert len(part) == 10 and set(part.y.tolist()) == {1}
    assert part.class_names == ds.class_names and part.class_names is not ds.class_names
    np.testing.assert_array_equal(ds.subset([2, 0]).X, ds.X[[2, 0]])
    assert class_balance(part) == {"blob0": 0, "blob1": 10, "blob2": 0}


def test_sample_indices_take_classes_in_turn_for_a_preview_grid():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 5)
    ds = indexed(18, labels)
    idx = sample_indices(ds, 9)
    assert len(set(idx.tolist())) == 9
    assert labels[idx].tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2]
    assert labels[sample_indices(ds, 12)].tolist()[9:] == [0, 2, 0]  # class 1 ran out
    assert len(sample_indices(ds, 100)) == 18
    regression = indexed(50)
    assert sample_indices(regression, 5).tolist() == [0, 12, 24, 36, 49]
    assert sample_indices(regression, 0).tolist() == []


def test_dataset_refuses_mismatched_lengths():
    with pytest.raises(DataError, match="3 examples but 2"):
        Dataset(np.zeros((3, 1)), np.zeros(2, dtype=np.int64), "classification", "d", ["x"], ["a", "b"])


def test_preview_shows_header_and_at_most_max_rows(tmp_path):
    rows = "\n".join(f"{i},{i % 3},c{i}" for i in range(100))
    path = write(tmp_path, "p.csv", "a,b,label\n" + rows + "\n")
    header, body = read_table_preview(path, max_rows=5)
    assert header == ["a", "b", "label"]
    assert body == [[str(i), str(i % 3), f"c{i}"] for i in range(5)]
    npz = save_npz(tmp_path, "p.npz", X=np.array([[1.5, 2.0], [3.0, 4.0]]), y=np.array([0, 1]))
    header, body = read_table_preview(npz)
    assert header == ["x1", "x2", "y"] and body == [["1.5", "2", "0"], ["3", "4", "1"]]
    with pytest.raises(DataError, match="no such file"):
        read_table_preview(tmp_path / "absent.csv")


def test_datasets_doc_contains_the_generated_generator_reference():
    text = (DOCS / "datasets.md").read_text(encoding="utf-8")
    assert generators_markdown() in text, "docs/datasets.md is stale: run python -m engine.data"
    for name, spec in GENERATORS.items():
        assert f"### {name}" in text
        for p in spec.params:
            assert f"`{p.name}`" in text
