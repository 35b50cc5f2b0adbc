"""The training setup of the document: loss, optimizer, schedule, batches, regularisation, stopping.

Every field edits the graph's ``training`` block (saved with the file) through one undoable
:class:`studio.commands.SetTraining` command; consecutive edits of the same field merge into
one undo step. Optimizer and schedule parameters are generated from the engine's
``OPTIMIZERS`` / ``SCHEDULES`` declarations, losses from ``LOSSES``. While a run holds the
document locked the panel is disabled and says why.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.errors import BackpropError
from engine.losses import LOSSES
from engine.optim import OPTIMIZERS, SCHEDULES
from studio.panels.editors import FloatSpinBox
from studio.panels.param_form import ParamForm
from studio.text import readable

Block = dict[str, Any]


def commit_training(document: Any, mutate: Callable[[Block], None], label: str) -> str | None:
    """Apply ``mutate`` to a copy of the training block and push it as one undoable command.

    Returns None on success (or when nothing changed), else the refusal message (e.g. the
    document is locked by a running training).
    """
    from studio.commands import SetTraining

    old = copy.deepcopy(document.graph.training)
    new = copy.deepcopy(old)
    mutate(new)
    if new == old:
        return None
    try:
        document.push(SetTraining(document, new, old, label))
    except BackpropError as err:
        return str(err)
    return None


def _float_box(lo: float, hi: float, tip: str, log: bool = False) -> FloatSpinBox:
    box = FloatSpinBox()
    box.setRange(lo, hi)
    box.setKeyboardTracking(False)
    if log:
        from PySide6.QtWidgets import QDoubleSpinBox

        box.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
    box.setToolTip(tip)
    return box


def _int_box(lo: int, hi: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setKeyboardTracking(False)
    box.setToolTip(tip)
    return box


class TrainingPanel(QWidget):
    """Editor of the document's training block (see module docstring)."""

    def __init__(self, document: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self._loading = False
        inner = QWidget()
        col = QVBoxLayout(inner)
        col.setContentsMargins(6, 6, 6, 6)
        self.lock_note = QLabel()
        self.lock_note.setWordWrap(True)
        self.lock_note.hide()
        col.addWidget(self.lock_note)
        col.addWidget(self._build_basics())
        col.addWidget(self._build_optimizer())
        col.addWidget(self._build_schedule())
        col.addWidget(self._build_regularisation())
        col.addWidget(self._build_stopping())
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #e5484d")
        col.addWidget(self.error)
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self.body = inner
        for signal in (document.changed, document.graphReset):
            signal.connect(self.load)
        document.lockChanged.connect(self._on_lock)
        self.load()

    # -- construction -----------------------------------------------------------------------------
    def _build_basics(self) -> QGroupBox:
        box = QGroupBox("Loss and batches")
        form = QFormLayout(box)
        self.loss = QComboBox()
        for name, spec in LOSSES.items():
            self.loss.addItem(name, name)
            self.loss.setItemData(self.loss.count() - 1, readable(spec.help), 3)  # Qt.ToolTipRole
        self.loss.currentIndexChanged.connect(lambda _: self._set("loss", self.loss.currentData()))
        self.batch = _int_box(1, 1 << 20, "examples per gradient step (minibatch size)")
        self.batch.valueChanged.connect(lambda v: self._set("batch_size", v))
        self.epochs = _int_box(1, 1_000_000, "passes over the training split")
        self.epochs.valueChanged.connect(lambda v: self._set("epochs", v))
        self.seed = _int_box(0, 2**31 - 1, "initialisation, shuffling and splits: same seed, same run")
        self.seed.valueChanged.connect(lambda v: self._set("seed", v))
        self.dtype = QComboBox()
        self.dtype.addItems(["float32", "float64"])
        self.dtype.setToolTip("float32 is fast; float64 for gradient checks and teaching precision")
        self.dtype.currentTextChanged.connect(lambda v: self._set("dtype", v))
        form.addRow("loss", self.loss)
        form.addRow("batch size", self.batch)
        form.addRow("epochs", self.epochs)
        form.addRow("seed", self.seed)
        form.addRow("precision", self.dtype)
        return box

    def _build_optimizer(self) -> QGroupBox:
        box = QGroupBox("Optimizer")
        form = QFormLayout(box)
        self.optimizer = QComboBox()
        for name, spec in OPTIMIZERS.items():
            self.optimizer.addItem(name, name)
            self.optimizer.setItemData(self.optimizer.count() - 1, readable(spec.help), 3)
        self.optimizer.currentIndexChanged.connect(
            lambda _: self._set_optimizer(self.optimizer.currentData()))
        self.opt_form = ParamForm()
        self.opt_form.edited.connect(self._set_optimizer_param)
        form.addRow("method", self.optimizer)
        form.addRow(self.opt_form)
        return box

    def _build_schedule(self) -> QGroupBox:
        box = QGroupBox("Learning-rate schedule")
        form = QFormLayout(box)
        self.schedule = QComboBox()
        self.schedule.addItem("constant", None)
        for name, spec in SCHEDULES.items():
            self.schedule.addItem(name, name)
            self.schedule.setItemData(self.schedule.count() - 1, spec.help, 3)
        self.schedule.currentIndexChanged.connect(lambda _: self._set_schedule(self.schedule.currentData()))
        self.sched_form = ParamForm()
        self.sched_form.edited.connect(self._set_schedule_param)
        form.addRow("schedule", self.schedule)
        form.addRow(self.sched_form)
        return box

    def _build_regularisation(self) -> QGroupBox:
        box = QGroupBox("Regularisation")
        form = QFormLayout(box)
        self.l2 = _float_box(0.0, 10.0, "L2 weight decay λ: adds λ·‖W‖² to the loss (weights, not biases)",
                             log=True)
        self.l2.valueChanged.connect(lambda v: self._set_decay("l2", v))
        self.l1 = _float_box(0.0, 10.0, "L1 weight decay: adds λ·Σ|W| to the loss", log=True)
        self.l1.valueChanged.connect(lambda v: self._set_decay("l1", v))
        self.clip_on = QCheckBox("clip gradient norm to")
        self.clip_on.toggled.connect(lambda on: self._set("clip_norm", self.clip.value() if on else None))
        self.clip = _float_box(1e-6, 1e6, "maximum L2 norm of all gradients together", log=True)
        self.clip.valueChanged.connect(
            lambda v: self._set("clip_norm", v) if self.clip_on.isChecked() else None)
        form.addRow("weight decay (L2)", self.l2)
        form.addRow("weight decay (L1)", self.l1)
        form.addRow(self.clip_on)
        form.addRow("max norm", self.clip)
        return box

    def _build_stopping(self) -> QGroupBox:
        box = QGroupBox("Early stopping")
        form = QFormLayout(box)
        self.early_on = QCheckBox("stop when the loss stops improving")
        self.early_on.setToolTip("monitors the validation loss (training loss without a validation split)")
        self.early_on.toggled.connect(self._set_early_on)
        self.patience = _int_box(1, 1_000_000, "epochs without improvement before stopping")
        self.patience.valueChanged.connect(lambda v: self._set_early("patience", v))
        self.min_delta = _float_box(0.0, 1e6, "smallest decrease that counts as an improvement", log=True)
        self.min_delta.valueChanged.connect(lambda v: self._set_early("min_delta", v))
        self.restore = QCheckBox("restore the best weights")
        self.restore.toggled.connect(lambda v: self._set_early("restore_best", v))
        form.addRow(self.early_on)
        form.addRow("patience", self.patience)
        form.addRow("min improvement", self.min_delta)
        form.addRow(self.restore)
        return box

    # -- edits -----------------------------------------------------------------------------------
    def _commit(self, mutate: Callable[[Block], None], label: str) -> None:
        if self._loading:
            return
        problem = commit_training(self.document, mutate, label)
        if problem:
            self.error.setText(problem)
            self.document.editRefused.emit(problem)
            self.load()
        else:
            self.error.clear()

    def _set(self, key: str, value: Any) -> None:
        def mutate(b: Block) -> None:
            if value is None:
                b.pop(key, None)
            else:
                b[key] = value
        self._commit(mutate, key.replace("_", " "))

    def _set_optimizer(self, name: str) -> None:
        def mutate(b: Block) -> None:
            old = b.get("optimizer") or {}
            lr = old.get("lr")
            b["optimizer"] = {"name": name, **({"lr": lr} if lr is not None else {})}
        self._commit(mutate, "optimizer")

    def _set_optimizer_param(self, key: str, value: Any) -> None:
        def mutate(b: Block) -> None:
            opt = dict(b.get("optimizer") or {"name": "sgd"})
            opt[key] = value
            b["optimizer"] = opt
        self._commit(mutate, f"optimizer {key}")

    def _set_schedule(self, name: str | None) -> None:
        def mutate(b: Block) -> None:
            if name is None:
                b.pop("schedule", None)
            else:
                b["schedule"] = {"name": name}
        self._commit(mutate, "schedule")

    def _set_schedule_param(self, key: str, value: Any) -> None:
        def mutate(b: Block) -> None:
            sched = dict(b.get("schedule") or {})
            if sched:
                sched[key] = value
                b["schedule"] = sched
        self._commit(mutate, f"schedule {key}")

    def _set_decay(self, which: str, value: float) -> None:
        def mutate(b: Block) -> None:
            decay = b.get("weight_decay", 0.0)
            d = dict(decay) if isinstance(decay, dict) else {"l2": float(decay or 0.0)}
            d[which] = value
            l1, l2 = float(d.get("l1", 0.0)), float(d.get("l2", 0.0))
            if not l1 and not l2:
                b.pop("weight_decay", None)
            else:
                b["weight_decay"] = l2 if not l1 else {"l1": l1, "l2": l2}
        self._commit(mutate, "weight decay")

    def _set_early_on(self, on: bool) -> None:
        def mutate(b: Block) -> None:
            if on:
                b["early_stopping"] = {"patience": self.patience.value(),
                                       "restore_best": self.restore.isChecked(),
                                       "min_delta": self.min_delta.value()}
            else:
                b.pop("early_stopping", None)
        self._commit(mutate, "early stopping")

    def _set_early(self, key: str, value: Any) -> None:
        def mutate(b: Block) -> None:
            if b.get("early_stopping"):
                b["early_stopping"] = {**b["early_stopping"], key: value}
        self._commit(mutate, f"early stopping {key}")

    # -- showing the document ---------------------------------------------------------------------
    def load(self) -> None:
        """Show the document's training block (no edits are emitted)."""
        self._loading = True
        try:
            self._load(self.document.graph.training)
        finally:
            self._loading = False

    def _load(self, b: Block) -> None:
        widgets = [self.loss, self.batch, self.epochs, self.seed, self.dtype, self.optimizer, self.schedule,
                   self.l1, self.l2, self.clip_on, self.clip, self.early_on, self.patience, self.min_delta,
                   self.restore]
        for w in widgets:
            w.blockSignals(True)
        try:
            self.loss.setCurrentIndex(max(0, self.loss.findData(b.get("loss", "mse"))))
            self.batch.setValue(int(b.get("batch_size", 32)))
            self.epochs.setValue(int(b.get("epochs", 10)))
            self.seed.setValue(int(b.get("seed", 0)))
            self.dtype.setCurrentText(str(b.get("dtype", "float32")))
            opt = b.get("optimizer") or {"name": "sgd", "lr": 0.1}
            name = opt.get("name", "sgd")
            self.optimizer.setCurrentIndex(max(0, self.optimizer.findData(name)))
            if name in OPTIMIZERS:
                self.opt_form.set_specs(OPTIMIZERS[name].params)
                self.opt_form.set_values(opt)
            sched = b.get("schedule") or {}
            self.schedule.setCurrentIndex(max(0, self.schedule.findData(sched.get("name")) if sched else 0))
            if sched.get("name") in SCHEDULES:
                self.sched_form.set_specs(SCHEDULES[sched["name"]].params)
                self.sched_form.set_values(sched)
                self.sched_form.show()
            else:
                self.sched_form.set_specs(())
                self.sched_form.hide()
            decay = b.get("weight_decay", 0.0)
            d = decay if isinstance(decay, dict) else {"l2": float(decay or 0.0)}
            self.l2.setValue(float(d.get("l2", 0.0)))
            self.l1.setValue(float(d.get("l1", 0.0)))
            clip = b.get("clip_norm")
            self.clip_on.setChecked(clip is not None)
            self.clip.setValue(float(clip) if clip is not None else 1.0)
            self.clip.setEnabled(clip is not None)
            early = b.get("early_stopping") or {}
            self.early_on.setChecked(bool(early))
            self.patience.setValue(int(early.get("patience", 10)))
            self.min_delta.setValue(float(early.get("min_delta", 0.0)))
            self.restore.setChecked(bool(early.get("restore_best", True)))
            for w in (self.patience, self.min_delta, self.restore):
                w.setEnabled(bool(early))
        finally:
            for w in widgets:
                w.blockSignals(False)

    def _on_lock(self, reason: str) -> None:
        self.body.setEnabled(not reason)
        self.lock_note.setVisible(bool(reason))
        self.lock_note.setText(f"🔒 {reason}" if reason else "")
