"""F5 after a finished run starts fresh; continuing from the trained weights is its own command."""

from __future__ import annotations

import numpy as np

from studio import edits
from tests.studio.test_training_run import open_example, wait_idle


def run(window, qtbot, key: str):
    ws = window.training
    ws.actions[key].trigger()
    wait_idle(qtbot, ws)
    return ws.controller.record


def test_train_starts_fresh_and_continue_trains_on(window, qtbot, tmp_path):
    open_example(window, tmp_path, "xor", epochs=60)
    ws = window.training
    assert not ws.actions["continue"].isEnabled()  # nothing trained yet
    first = run(window, qtbot, "train")
    assert ws.actions["continue"].isEnabled()
    again = run(window, qtbot, "train")  # F5 after a finished run: same seed, same fresh start
    assert again.loss.data[0] == first.loss.data[0]
    assert np.all(again.grads.data[0] > 0)  # a fresh start has gradients to plot
    on = run(window, qtbot, "continue")
    assert on.loss.data[0] < 0.8 * first.loss.data[0]
    assert abs(on.loss.data[0] - again.loss.data[-1]) < 0.5 * first.loss.data[0]
    assert ws.actions["train"].shortcut().toString() == "F5"
    assert ws.actions["continue"].shortcut().toString() == "Ctrl+F5"


def test_continue_is_refused_once_the_design_changed(window, qtbot, tmp_path):
    open_example(window, tmp_path, "xor", epochs=5)
    ws = window.training
    run(window, qtbot, "train")
    assert ws.actions["continue"].isEnabled()
    edits.set_param(window.document, "h", "units", 3)
    assert not ws.actions["continue"].isEnabled()
    assert not ws.controller.start(fresh=False)  # the command itself refuses too, with a reason
