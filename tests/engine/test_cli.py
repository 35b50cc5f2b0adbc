"""The ``backprop`` command: exit codes, outputs and the metrics stream contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ROOT = EXAMPLES.parent


def test_check_prints_table_and_succeeds(capsys):
    assert main(["check", str(EXAMPLES / "xor.json")]) == 0
    out = capsys.readouterr().out
    assert "Dense" in out and "total trainable parameters: 9" in out


def test_check_invalid_graph_fails_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "backprop-studio.graph", "version": 1, "nodes": [{"id": "a", "type": "Nope"}]}')
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "unknown layer type 'Nope'" in err and "Traceback" not in err


@pytest.mark.parametrize("content", ["", "{", "[]", '{"format": "backprop-studio.graph", "version": 7}', "\x00\x01"])
def test_malformed_graph_files_exit_nonzero_without_traceback(tmp_path, content):
    path = tmp_path / "g.json"
    path.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "engine", "train", str(path)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error:")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_dataset_file_is_a_clear_error(tmp_path, capsys):
    g = json.loads((EXAMPLES / "xor.json").read_text())
    g["training"]["dataset"] = {"path": "nowhere.csv", "target": "y"}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(g))
    assert main(["train", str(path), "-q"]) == 1
    assert "nowhere.csv" in capsys.readouterr().err


def test_train_writes_model_and_metrics_then_predict(tmp_path, capsys):
    model = tmp_path / "xor.bpmodel"
    metrics = tmp_path / "run.jsonl"
    assert main(["train", str(EXAMPLES / "xor.json"), "--epochs", "300", "-o", str(model),
                 "--metrics", str(metrics), "-q"]) == 0
    out = capsys.readouterr().out
    assert "train_acc=1" in out and "reason=completed" in out
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    steps = [e for e in lines if e["event"] == "step"]
    assert len(steps) == 300
    assert set(steps[0]) >= {"event", "epoch", "step", "loss", "lr", "grad_norms"}
    assert set(steps[0]["grad_norms"]) == {"h", "o"}
    epochs = [e for e in lines if e["event"] == "epoch"]
    assert set(epochs[0]) >= {"epoch", "train_loss", "val_loss", "train_acc", "val_acc"}
    assert lines[-1] == {**lines[-1], "event": "finish", "reason": "completed"}
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    np.savez(tmp_path / "in.npz", X=X)
    assert main(["predict", str(model), str(tmp_path / "in.npz"), "-o", str(tmp_path / "out.npy")]) == 0
    pred = np.load(tmp_path / "out.npy")
    assert ((pred[:, 0] > 0.5).astype(int) == [0, 1, 1, 0]).all()
    (tmp_path / "in.csv").write_text("x2,x1\n0,0\n1,0\n0,1\n1,1\n")  # columns found by name
    assert main(["predict", str(model), str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")]) == 0
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert len(rows) == 5
    assert [float(r) > 0.5 for r in rows[1:]] == [False, True, True, False]
    (tmp_path / "bad.csv").write_text("a,b\n0,0\n")
    capsys.readouterr()
    assert main(["predict", str(model), str(tmp_path / "bad.csv"), "-o", str(tmp_path / "o.csv")]) == 1
    assert "missing feature column(s) x1, x2" in capsys.readouterr().err


def test_epochs_and_seed_override(tmp_path, capsys):
    assert main(["train", str(EXAMPLES / "xor.json"), "--epochs", "3", "--seed", "5", "-q"]) == 0
    assert "epochs=3" in capsys.readouterr().out


def test_diverging_run_exits_3(tmp_path, capsys):
    g = json.loads((EXAMPLES / "xor.json").read_text())
    g["training"]["optimizer"]["lr"] = 1e4
    path = tmp_path / "g.json"
    path.write_text(json.dumps(g))
    assert main(["train", str(path), "-q", "-o", str(tmp_path / "m.bpmodel")]) == 3
    err = capsys.readouterr().err
    assert "diverged at step" in err
    assert not (tmp_path / "m.bpmodel").exists()


def test_predict_with_corrupt_model_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "m.bpmodel"
    bad.write_bytes(b"PK\x03\x04garbage")
    (tmp_path / "in.npz").write_bytes(b"")
    assert main(["predict", str(bad), str(tmp_path / "in.npz"), "-o", str(tmp_path / "o.npy")]) == 1
    assert "not a valid zip" in capsys.readouterr().err


def test_usage_error_exits_2():
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def diverging_graph(tmp_path: Path, example: str, lr: float) -> Path:
    """An example with plain SGD at a learning rate that overflows within a few steps."""
    g = json.loads((EXAMPLES / f"{example}.json").read_text())
    g["training"]["optimizer"] = {"name": "sgd", "lr": lr}
    path = tmp_path / f"{example}_diverges.json"
    path.write_text(json.dumps(g))
    return path


# deep_residual runs node by node (the overflow happens in NumPy's matmul during steps);
# deep_relu_he runs fused, and the diverged-layer search then overflows in NumPy.
@pytest.mark.parametrize("example, lr", [("deep_residual", 50.0), ("deep_relu_he", 5.0)])
def test_quiet_divergence_prints_one_line_and_warns_nothing(tmp_path, capsys, example, lr):
    import warnings

    path = diverging_graph(tmp_path, example, lr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", str(path), "-q"]) == 3
    assert [str(w.message) for w in caught] == []
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: training diverged at step"), captured.err


def test_quiet_divergence_in_a_fresh_process_has_exactly_one_stderr_line(tmp_path):
    path = diverging_graph(tmp_path, "deep_residual", 50.0)
    proc = subprocess.run([sys.executable, "-m", "engine", "train", str(path), "-q"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 3
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("error: training diverged at step") and "learning rate" in proc.stderr


def bad_outputs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Unwritable or wrong outputs: (path, words the one-line message must contain)."""
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder").mkdir()
    return {
        "missing_folder": (str(tmp_path / "no" / "such" / "x.bpmodel"), "does not exist"),
        "parent_is_a_file": (str(tmp_path / "a_file" / "x.bpmodel"), "is not a folder"),
        "is_a_folder": (str(tmp_path / "a_folder"), "is a folder"),
    }


@pytest.mark.parametrize("case", ["missing_folder", "parent_is_a_file", "is_a_folder"])
@pytest.mark.parametrize("option", ["-o", "--metrics"])
def test_train_checks_where_it_will_write_before_training(tmp_path, capsys, monkeypatch, option, case):
    import engine.session

    def must_not_train(*args, **kwargs):
        raise AssertionError("training started although the output cannot be written")

    monkeypatch.setattr(engine.session, "prepare_run", must_not_train)
    path, words = bad_outputs(tmp_path)[case]
    assert main(["train", str(EXAMPLES / "xor.json"), "-q", option, path]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error:") and words in err, err
    assert path in err
    assert ".part" not in err and "/." not in err  # no temporary file named


def test_train_model_output_must_be_a_bpmodel_file(tmp_path, capsys, monkeypatch):
    import engine.session

    monkeypatch.setattr(engine.session, "prepare_run", lambda *a, **k: pytest.fail("trained"))
    assert main(["train", str(EXAMPLES / "xor.json"), "-q", "-o", str(tmp_path / "x.txt")]) == 1
    err = capsys.readouterr().err
    assert ".bpmodel" in err and "x.bpmodel" in err and len(err.splitlines()) == 1


def test_predict_checks_its_output_before_loading(tmp_path, capsys):
    out = tmp_path / "no" / "p.csv"
    assert main(["predict", str(tmp_path / "missing.bpmodel"), "in.csv", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and str(out) in err
    assert main(["predict", str(tmp_path / "missing.bpmodel"), "in.csv", "-o", str(tmp_path / "p.txt")]) == 1
    assert ".csv or .npy" in capsys.readouterr().err


def test_an_atomic_write_into_a_missing_folder_names_the_file_not_a_temporary(tmp_path):
    from engine.graph import atomic_write_bytes

    target = tmp_path / "no" / "x.onnx"
    with pytest.raises(FileNotFoundError) as info:
        atomic_write_bytes(target, b"data")
    assert info.value.filename == str(target)


@pytest.mark.parametrize("command", [["export", "{graph}", "--format", "onnx", "-o", "{out}/m.onnx"],
                                     ["export", "{graph}", "--format", "numpy", "-o", "{out}/np"],
                                     ["predict", "{graph}", "{out}/in.csv", "-o", "{out}/p.csv"]],
                         ids=["export_onnx", "export_numpy", "predict"])
def test_a_graph_given_where_a_model_is_needed_says_how_to_train_one(tmp_path, capsys, command):
    graph = tmp_path / "xor.json"
    graph.write_text((EXAMPLES / "xor.json").read_text())
    (tmp_path / "in.csv").write_text("x1,x2\n0,1\n")
    argv = [a.format(graph=graph, out=tmp_path) for a in command]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert "is a graph, not a trained model" in err
    assert f"backprop train {graph} -o {tmp_path / 'xor.bpmodel'}" in err
    assert "zip" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "xor.json"]  # nothing written
