"""The Dataset panel with image data: a grid of samples with labels; IDX files, folders, NPZ images."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog

from engine.data import make_dataset

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def panel(window):
    assert window.files.open(EXAMPLES / "lenet5_digits.json")
    ws = window.training
    ws.dataset_dock.raise_()
    ws.dataset_panel.update_preview()
    return ws.dataset_panel


def _idx(path: Path, array: np.ndarray) -> None:
    dims = array.shape
    path.write_bytes(struct.pack(f">BBBB{len(dims)}I", 0, 0, 8, len(dims), *dims) + array.astype(np.uint8).tobytes())


def test_digits_preview_is_a_grid_of_24_samples_labelled_with_their_classes(panel):
    ds = make_dataset({"name": "digits"})
    grid = panel.samples
    assert grid.isVisible() and not panel.plot.isVisible()
    assert len(grid.tiles) == 24 == len(grid.indices)
    assert [t.caption for t in grid.tiles] == [str(int(ds.y[i])) for i in grid.indices]
    assert {t.caption for t in grid.tiles} == {str(d) for d in range(10)}  # every class shows
    pixmap = grid.tiles[0].picture.pixmap()
    assert not pixmap.isNull() and pixmap.width() == 52
    assert "1,797" in panel.summary.text()


def test_idx_file_from_the_dialog_finds_its_labels_and_previews(panel, monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    _idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 255, (30, 12, 12)))
    _idx(tmp_path / "train-labels-idx1-ubyte", np.arange(30) % 3)
    chosen = str(tmp_path / "train-images-idx3-ubyte")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (chosen, "")))
    panel._browse()
    spec = panel.document.graph.training["dataset"]
    assert spec["labels"].endswith("train-labels-idx1-ubyte")
    panel.update_preview()
    assert len(panel.samples.tiles) == 24
    assert {t.caption for t in panel.samples.tiles} == {"0", "1", "2"}
    assert "expects examples of shape (1, 8, 8)" in panel.error.text()  # the graph is still 8×8
    panel.fix_input.click()
    assert tuple(panel.document.graph.nodes["x"].params["shape"]) == (1, 12, 12)
    panel.document.undo()
    panel.document.undo()
    assert panel.document.graph.training["dataset"] == {"name": "digits"}


def test_image_folder_from_the_dialog_and_a_bad_image_named(panel, monkeypatch, tmp_path):
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((10, 10), 40 * i, np.uint8)).save(tmp_path / "pets" / cls / f"{i}.png")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tmp_path / "pets")))
    panel._browse_folder()
    panel.update_preview()
    assert [t.caption for t in panel.samples.tiles] == ["cat", "dog"] * 3
    assert panel.file_form.isRowVisible(panel.image_size) and not panel.file_form.isRowVisible(panel.target)
    (tmp_path / "pets" / "dog" / "3.png").write_bytes(b"not a png")
    panel.update_preview()
    assert "dog/3.png: is not a readable image" in panel.error.text()
    assert not panel.samples.isVisible()


def test_npz_images_and_a_truncated_idx_file(panel, tmp_path):
    X = np.random.default_rng(1).random((8, 1, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "imgs.npz", X=X, y=np.arange(8) % 2)
    panel._set_file("path", str(tmp_path / "imgs.npz"))
    panel.update_preview()
    assert len(panel.samples.tiles) == 8
    (tmp_path / "t-images-idx3-ubyte").write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 30, 12, 12) + b"\0" * 10)
    _idx(tmp_path / "t-labels-idx1-ubyte", np.arange(30) % 3)
    panel._set_file("path", str(tmp_path / "t-images-idx3-ubyte"))
    panel.update_preview()
    assert "t-images-idx3-ubyte: truncated" in panel.error.text()
    assert panel.document.graph.training["dataset"]["labels"].endswith("t-labels-idx1-ubyte")
