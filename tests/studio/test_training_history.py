"""RunRecord: recording drained events into arrays, decimated views, exports (no Qt needed)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np

from engine.events import (
    DivergedEvent,
    EpochEvent,
    FinishEvent,
    LayerStats,
    StartEvent,
    StatsEvent,
    StepEvent,
)
from studio.training.history import Growing, RunRecord, stride_index

NODES = ["h", "o"]


def step(i: int, epoch: int = 0, h: float = 1.0, o: float = 2.0) -> StepEvent:
    return StepEvent(epoch, i, 1.0 / i, 0.1, {"h": h * i, "o": o * i}, 1000.0)


def record_with(events) -> RunRecord:
    rec = RunRecord(1, "xor")
    rec.ingest([StartEvent(2, 3, 12, 0, NODES), *events])
    return rec


def test_growing_array_keeps_every_row_across_reallocations():
    g = Growing(width=2, capacity=2)
    for i in range(10):
        g.extend(np.array([[i, -i]] * 3, float))
    assert len(g) == 30
    assert g.data[:, 0].tolist() == [i for i in range(10) for _ in range(3)]


def test_ingest_records_steps_in_order_with_norms_per_node():
    rec = record_with([step(1), step(2), EpochEvent(1, 2, 0.5, None, 0.75, None), step(3, 1)])
    assert rec.steps.data.tolist() == [1, 2, 3]
    assert rec.grads.data.tolist() == [[1, 2], [2, 4], [3, 6]]
    table = rec.epoch_table()
    assert table["train_loss"].tolist() == [0.5]
    assert math.isnan(table["val_loss"][0])
    assert rec.summary()["train_acc"] == 0.75


def test_step_view_is_decimated_and_ends_at_the_last_step():
    rec = record_with([step(i) for i in range(1, 5001)])
    steps, loss, grads = rec.step_view(500)
    assert len(steps) <= 501
    assert steps[0] == 1 and steps[-1] == 5000
    assert grads.shape == (len(steps), 2)
    assert np.allclose(loss, 1.0 / steps)
    idx = stride_index(10, 100)
    assert idx.tolist() == list(range(10))


def test_long_runs_are_thinned_but_keep_recent_steps_and_epochs():
    rec = RunRecord(1, "long", max_rows=1000)
    rec.ingest([StartEvent(1, 5000, 5000, 0, NODES)] + [step(i) for i in range(1, 3001)]
               + [EpochEvent(1, 3000, 0.1, None, None, None)])
    assert len(rec.steps) <= 1000
    assert rec.stride >= 2
    assert rec.steps.data[-1] == 3000
    assert len(rec.epochs) == 1
    assert np.all(np.diff(rec.steps.data) > 0)


def test_recent_norms_are_geometric_means_and_ignore_non_finite_values():
    rec = record_with([step(1, h=1.0, o=1.0), StepEvent(0, 2, 0.5, 0.1, {"h": 4.0, "o": math.nan}, 1.0)])
    h, o = rec.recent_norms(2)
    assert math.isclose(h, 2.0)  # sqrt(1 · 4)
    assert math.isclose(o, 1.0)


def test_jsonl_export_follows_the_metrics_stream_contract(tmp_path):
    stats = StatsEvent(1, {"a": LayerStats(0.5, 0.1, saturated=0.2)})
    rec = record_with([stats, step(1), step(2), EpochEvent(1, 2, 0.5, 0.6, 1.0, 0.5), step(3, 1),
                       StepEvent(1, 4, math.inf, 0.1, {"h": math.nan, "o": 1.0}, 1.0),
                       DivergedEvent(4, "h", "training diverged at step 4 at layer 'h'"),
                       FinishEvent("diverged", 1, 4, "training diverged")])
    path = tmp_path / "run.jsonl"
    rec.export_jsonl(path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = [obj["event"] for obj in lines]
    assert kinds == ["activation_stats", "step", "step", "epoch", "step", "step", "diverged", "finish"]
    first = lines[1]
    assert {"epoch", "step", "loss", "lr", "grad_norms"} <= set(first)
    assert first["grad_norms"] == {"h": 1.0, "o": 2.0}
    assert lines[3] == {"event": "epoch", "epoch": 1, "step": 2, "train_loss": 0.5, "val_loss": 0.6,
                        "train_acc": 1.0, "val_acc": 0.5}
    assert lines[5]["loss"] is None and lines[5]["grad_norms"]["h"] is None  # JSON has no NaN/inf
    assert lines[6]["node"] == "h" and lines[6]["step"] == 4
    assert lines[7]["reason"] == "diverged"


def test_csv_export_has_one_row_per_step_and_epoch_metrics_on_the_epoch_end(tmp_path):
    rec = record_with([step(1), step(2), EpochEvent(1, 2, 0.5, None, 1.0, None), step(3, 1)])
    path = tmp_path / "run.csv"
    rec.export_csv(path)
    rows = list(csv.DictReader(path.open()))
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert float(rows[1]["grad_norm.o"]) == 4.0
    assert rows[1]["train_loss"] == "0.5" and rows[1]["val_loss"] == ""
    assert rows[0]["train_loss"] == ""
