"""Image data through a run: one float32 working copy, per-channel normalisation, export.

The memory checks use tracemalloc, which NumPy reports its buffers to: they measure what
``prepare_run`` and the loaders allocate on top of the dataset itself. The full-size
figures (60,000 × 1 × 28 × 28) come from ``benchmarks/bench_data_memory.py``.
"""

from __future__ import annotations

import gzip
import importlib.util
import struct
import tracemalloc
import uuid
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from engine.data import Dataset, Normaliser, make_dataset
from engine.export import export_model
from engine.graph import Graph
from engine.modelfile import load_model, save_model
from engine.session import prepare_run, preprocess

MB = 1 << 20


def import_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"exported_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def image_graph(shape: tuple[int, ...], classes: int, dataset: dict, **training) -> Graph:
    g = Graph("images")
    g.add_node("Input", {"shape": list(shape)}, "x")
    g.add_node("Flatten", {}, "flat")
    g.add_node("Dense", {"units": classes}, "out")
    g.add_node("Softmax", {}, "p")
    g.connect("x", "flat")
    g.connect("flat", "out")
    g.connect("out", "p")
    g.training = {"dataset": dataset, "loss": "cross_entropy", "batch_size": 16, "epochs": 1, "seed": 0,
                  "optimizer": {"name": "sgd", "lr": 0.05}} | training
    return g


CHANNEL_MEAN = np.array([120.0, -3.0, 0.5])
CHANNEL_STD = np.array([40.0, 0.2, 2.0])


@pytest.fixture
def colour_npz(tmp_path) -> Path:
    """90 examples (3, 4, 5) whose channels have very different scales, 3 classes."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3, 4, 5)) * CHANNEL_STD[:, None, None] + CHANNEL_MEAN[:, None, None]
    y = np.arange(90) % 3
    X[:, 0] += 30.0 * y[:, None, None]  # something to learn
    np.savez(tmp_path / "colour.npz", X=X.astype(np.float32), y=y)
    return tmp_path


def test_a_run_normalises_images_per_channel_in_its_one_working_copy(colour_npz):
    graph = image_graph((3, 4, 5), 3, {"path": "colour.npz"}, val_split=0.2, test_split=0.1)
    run = prepare_run(graph, colour_npz)
    raw = np.load(colour_npz / "colour.npz")["X"]
    np.testing.assert_array_equal(run.dataset.X, raw)  # the source is untouched
    assert run.normaliser.mean.shape == (3, 1, 1)
    parts = (run.train.X, run.val.X, run.test.X)
    assert all(p.dtype == np.float32 and p.flags.c_contiguous for p in parts)
    assert parts[0].base is parts[1].base is parts[2].base  # views of one gathered array
    assert not np.shares_memory(parts[0], run.dataset.X)
    assert np.shares_memory(run.trainer.X, run.train.X)  # handed to the trainer without a copy
    for c in range(3):
        assert abs(float(run.train.X[:, c].mean())) < 1e-5
        assert float(run.train.X[:, c].std()) == pytest.approx(1.0, rel=1e-4)
    stored = run.meta()["preprocessing"]["normalise"]
    assert np.array(stored["mean"]).shape == (3, 1, 1)
    run.trainer.run()
    assert np.isfinite(run.trainer.history[-1].train_loss)


def test_per_channel_statistics_export_and_match_onnxruntime_numpy_and_torch(colour_npz):
    graph = image_graph((3, 4, 5), 3, {"path": "colour.npz"}, val_split=0.2)
    run = prepare_run(graph, colour_npz)
    run.trainer.run()
    save_model(colour_npz / "m.bpmodel", run.model, run.meta())
    loaded = load_model(colour_npz / "m.bpmodel")
    X = np.load(colour_npz / "colour.npz")["X"][:20]
    mean, std = run.normaliser.mean, run.normaliser.std  # (3, 1, 1): one pair per channel
    by_hand = (X.astype(np.float64) - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1)
    want = loaded.model.predict(by_hand)
    np.testing.assert_allclose(loaded.model.predict(preprocess(loaded.meta, X)), want, rtol=1e-5, atol=1e-6)
    onnx_path = export_model(colour_npz / "m.bpmodel", "onnx", colour_npz / "m.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: X})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert got.argmax(axis=1).tolist() != [0] * 20  # the normalisation reached a trained model
    for fmt in ("numpy", "torch"):
        folder = export_model(colour_npz / "m.bpmodel", fmt, colour_npz / fmt)
        module = import_file(folder / "model.py")
        np.testing.assert_allclose(module.predict(X), want, rtol=1e-5, atol=1e-6, err_msg=fmt)


def test_an_old_model_with_per_pixel_statistics_still_predicts(colour_npz):
    """meta.json written before per-channel statistics: one mean/std per (c, h, w) position."""
    graph = image_graph((3, 4, 5), 3, {"path": "colour.npz"}, normalize=False)
    run = prepare_run(graph, colour_npz)
    X = np.load(colour_npz / "colour.npz")["X"]
    old = {"mean": X.mean(axis=0).tolist(), "std": X.std(axis=0).tolist()}
    meta = run.meta() | {"preprocessing": {"normalise": old}}
    save_model(colour_npz / "old.bpmodel", run.model, meta)
    loaded = load_model(colour_npz / "old.bpmodel")
    want = loaded.model.predict((X - X.mean(axis=0)) / X.std(axis=0))
    np.testing.assert_allclose(loaded.model.predict(preprocess(loaded.meta, X)), want, rtol=1e-5, atol=1e-6)
    continued = prepare_run(graph, colour_npz, model=loaded.model, normaliser=Normaliser.from_json(old))
    np.testing.assert_allclose(continued.train.X.mean(axis=0), 0.0, atol=0.6)


# -- memory --------------------------------------------------------------------------------------

def peak_bytes(fn) -> tuple[object, int]:
    """``fn()``'s result and the most memory it held at once beyond what existed before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = fn()
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def mnist_like(n: int) -> Dataset:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8).astype(np.float32)
    return Dataset(X, np.arange(n) % 10, "classification", "mnist_like", [], [str(d) for d in range(10)])


def test_preparing_an_image_run_holds_one_working_copy_and_no_float64(tmp_path):
    ds = mnist_like(10_000)  # 31 MB of float32
    graph = image_graph((1, 28, 28), 10, {"name": "unused"}, val_split=0.1, test_split=0.1, normalize=True)
    prepare_run(graph, tmp_path, dataset=mnist_like(50))  # compile kernels outside the measurement
    run, peak = peak_bytes(lambda: prepare_run(graph, tmp_path, dataset=ds))
    assert run.normaliser.mean.shape == (1, 1, 1)
    assert peak <= ds.X.nbytes + 12 * MB, f"{peak / MB:.1f} MB for a {ds.X.nbytes / MB:.1f} MB dataset"
    _, fit_peak = peak_bytes(lambda: Normaliser.fit(ds.X))
    assert fit_peak <= 10 * MB, f"fitting the statistics held {fit_peak / MB:.1f} MB"
    _, apply_peak = peak_bytes(lambda: run.normaliser.apply_(run.train.X))
    assert apply_peak < MB


def test_loading_idx_images_holds_the_bytes_and_the_float32_array_only(tmp_path):
    n = 8000
    pixels = np.random.default_rng(1).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    header = struct.pack(">BBBBIII", 0, 0, 8, 3, n, 28, 28)
    (tmp_path / "img-idx3-ubyte.gz").write_bytes(gzip.compress(header + pixels.tobytes(), compresslevel=1))
    labels = (np.arange(n) % 10).astype(np.uint8)
    (tmp_path / "lab-idx1-ubyte").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, n) + labels.tobytes())
    spec = {"path": "img-idx3-ubyte.gz", "labels": "lab-idx1-ubyte"}
    ds, peak = peak_bytes(lambda: make_dataset(spec, tmp_path))
    assert ds.X.shape == (n, 1, 28, 28)
    float32_bytes, raw_bytes = ds.X.nbytes, pixels.nbytes
    compressed = (tmp_path / "img-idx3-ubyte.gz").stat().st_size
    assert peak <= float32_bytes + raw_bytes + compressed + 2 * MB, f"{peak / MB:.1f} MB"
