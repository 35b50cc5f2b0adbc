"""The .bpmodel contract: round trip, refusal of damaged files, no code execution."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ModelFileError
from engine.graph import Graph
from engine.modelfile import load_model, save_model
from engine.session import prepare_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    run = prepare_run(Graph.load(EXAMPLES / "moons_mlp.json"), EXAMPLES, epochs=2)
    run.trainer.run()
    path = tmp_path_factory.mktemp("m") / "moons.bpmodel"
    save_model(path, run.model, run.meta())
    return path, run


def test_round_trip_predicts_the_same(saved):
    path, run = saved
    loaded = load_model(path)
    X = run.val.X.astype(np.float32)
    np.testing.assert_array_equal(loaded.model.predict(X), run.model.predict(X))
    assert loaded.graph == run.model.graph
    assert loaded.meta["task"] == "classification"
    assert len(loaded.meta["history"]) == 2


def test_zip_members_follow_the_contract(saved):
    path, run = saved
    with zipfile.ZipFile(path) as zf:
        assert set(zf.namelist()) == {"graph.json", "weights.npz", "meta.json"}
        weights = np.load(io.BytesIO(zf.read("weights.npz")))
        assert weights["h1.W"].shape == (2, 16) and weights["h1.b"].shape == (16,)
        meta = json.loads(zf.read("meta.json"))
        assert meta["format"] == "backprop-studio.model" and meta["version"] == 1


def rewrite(src: Path, dst: Path, replace: dict[str, bytes | None]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if name in replace:
                if replace[name] is not None:
                    zout.writestr(name, replace[name])
            else:
                zout.writestr(name, zin.read(name))
    return dst


@pytest.mark.parametrize("member, content, message", [
    ("meta.json", None, "meta.json' is missing"),
    ("graph.json", None, "graph.json' is missing"),
    ("meta.json", b"{", "not valid JSON"),
    ("meta.json", b'{"format": "backprop-studio.model", "version": 9}', "version 9"),
    ("graph.json", b'{"format": "backprop-studio.graph", "version": 1, "nodes": 3}', "'nodes' must be a list"),
    ("weights.npz", b"not an npz", "weights.npz cannot be read"),
])
def test_damaged_members_are_refused(saved, tmp_path, member, content, message):
    path = rewrite(saved[0], tmp_path / "bad.bpmodel", {member: content})
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_wrong_weight_shape_is_refused(saved, tmp_path):
    buf = io.BytesIO()
    state = load_model(saved[0]).model.state_dict()
    state["h1.W"] = np.zeros((3, 16), np.float32)
    np.savez(buf, **state)
    path = rewrite(saved[0], tmp_path / "bad.bpmodel", {"weights.npz": buf.getvalue()})
    with pytest.raises(ModelFileError, match="h1.W"):
        load_model(path)


def test_pickled_weights_never_execute(saved, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (marker.write_text, ("x",))

    buf = io.BytesIO()
    state = load_model(saved[0]).model.state_dict()
    state["h1.W"] = np.array([Evil()], dtype=object)
    np.savez(buf, **state)
    path = rewrite(saved[0], tmp_path / "evil.bpmodel", {"weights.npz": buf.getvalue()})
    with pytest.raises(ModelFileError):
        load_model(path)
    assert not marker.exists()
    assert pickle  # the payload above is a real pickle


@pytest.mark.parametrize("cut", [0, 10, 100, 1000, -10])
def test_truncated_files_are_refused(saved, tmp_path, cut):
    data = saved[0].read_bytes()
    path = tmp_path / "cut.bpmodel"
    path.write_bytes(data[:cut])
    with pytest.raises(ModelFileError):
        load_model(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 10_000), st.binary(min_size=1, max_size=8))
def test_random_corruption_only_raises_model_file_errors(saved, tmp_path, position, garbage):
    data = bytearray(saved[0].read_bytes())
    position %= len(data)
    data[position:position + len(garbage)] = garbage
    path = tmp_path / "fuzz.bpmodel"
    path.write_bytes(bytes(data))
    try:
        load_model(path)
    except ModelFileError:
        pass


def test_save_is_atomic_when_writing_fails(saved, tmp_path, monkeypatch):
    target = tmp_path / "keep.bpmodel"
    target.write_bytes(b"old contents")
    run = saved[1]
    monkeypatch.setattr("numpy.savez", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_model(target, run.model, {})
    assert target.read_bytes() == b"old contents"
