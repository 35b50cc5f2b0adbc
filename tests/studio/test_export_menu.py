"""File → Save/Export Trained Model and File → Open of a .bpmodel, from the main window."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtWidgets import QDialog

from engine.modelfile import load_model
from studio.training.model_io import ExportDialog
from tests.studio.conftest import close_quietly
from tests.studio.test_training_run import open_example, wait_idle

MOONS_EPOCHS = 5


@pytest.fixture
def trained_moons(window, qtbot, tmp_path):
    open_example(window, tmp_path, "moons_mlp", epochs=MOONS_EPOCHS)
    ws = window.training
    ws.actions["train"].trigger()
    wait_idle(qtbot, ws)
    return window


def grid() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(64, 2)).astype(np.float32)


def test_export_without_trained_weights_is_refused_with_a_reason(window, tmp_path, dialogs):
    open_example(window, tmp_path, "xor")
    assert not window.training.model_io.export("numpy", tmp_path / "out")
    assert dialogs.kinds() == ["information"] and "Train it first" in dialogs.calls[0][2]
    assert not (tmp_path / "out").exists()


def test_numpy_export_through_the_dialog_predicts_like_the_engine(trained_moons, tmp_path, monkeypatch):
    window = trained_moons
    target = tmp_path / "moons_numpy"

    def fill_and_accept(dialog):
        dialog.select("numpy", target)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ExportDialog, "exec", fill_and_accept)
    window.training.model_io.export_action.trigger()
    assert (target / "model.py").is_file() and (target / "weights.npz").is_file()
    X = grid()
    np.savez(tmp_path / "in.npz", X=X)
    subprocess.run([sys.executable, str(target / "model.py"), str(tmp_path / "in.npz"), "-o",
                    str(tmp_path / "out.npy")], check=True, capture_output=True, timeout=60)
    model, meta = window.training.controller.trained()
    from engine.session import preprocess

    expected = model.predict(preprocess(meta, X))
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-5, atol=1e-6)
    assert "Exported" in window.status_text()


def test_onnx_export_runs_in_onnxruntime_like_the_engine(trained_moons, tmp_path):
    ort = pytest.importorskip("onnxruntime")  # a test dependency: installed by .[test]
    window = trained_moons
    path = tmp_path / "moons.onnx"
    assert window.training.model_io.export("onnx", path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    X = grid()
    out = session.run(None, {session.get_inputs()[0].name: X})[0]
    model, meta = window.training.controller.trained()
    from engine.session import preprocess

    np.testing.assert_allclose(out, model.predict(preprocess(meta, X)), rtol=1e-5, atol=1e-6)


def test_saved_model_reopens_with_its_weights_and_training_continues(trained_moons, qtbot, tmp_path):
    window = trained_moons
    path = tmp_path / "moons.bpmodel"
    assert window.training.model_io.save_model(path)
    model, meta = window.training.controller.trained()
    X = grid()
    expected = model.predict(X)
    last_loss = window.training.controller.record.summary()["train_loss"]

    from studio.main_window import MainWindow

    other = MainWindow()
    other.show()
    try:
        assert other.files.open(path)
        assert other.document.graph == load_model(path).graph
        again, _ = other.training.controller.trained()
        np.testing.assert_array_equal(again.predict(X), expected)
        ws = other.training
        other.document.graph.training["epochs"] = 1
        assert ws.actions["continue"].isEnabled()
        ws.actions["continue"].trigger()
        wait_idle(qtbot, ws)
        record = ws.controller.record
        assert record.n_steps == 10
        first = record.step_view(10)[1][0]
        assert last_loss < 0.4  # trained: a fresh initialisation starts near ln 2 ≈ 0.69
        assert first < 1.5 * last_loss  # the continued run starts where the saved one ended
    finally:
        close_quietly(other)


def test_a_damaged_model_file_is_refused_and_the_document_stays(window, tmp_path, dialogs):
    graph = open_example(window, tmp_path, "xor")
    bad = tmp_path / "broken.bpmodel"
    bad.write_bytes(b"PK\x03\x04 this is not a model")
    assert not window.files.open(bad)
    assert dialogs.kinds() == ["warning"] and "broken.bpmodel" in dialogs.calls[0][2]
    assert window.document.graph == graph
