"""Python's cycle collector runs on the GUI thread only.

The collector runs in whichever thread happens to allocate when a threshold is crossed. When
that is the trainer thread and the garbage holds a Qt object (a closed dialog, a replaced plot
in a reference cycle), the object's C++ destructor runs there, and PySide's destructor then
waits for the GIL in a way that can deadlock with the GUI thread: the studio froze mid-run this
way in the test suite (trainer thread stuck in shiboken's GilState::acquire under
gc_collect_main). So, as pyqtgraph's GarbageCollector recommends, automatic collection is
switched off and the generations are collected by a timer on the GUI thread, by the same
thresholds. Reference counting, which frees almost everything, is untouched.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QTimer

INTERVAL_MS = 500

_timer: QTimer | None = None


def _collect() -> None:
    """What automatic collection would have done by now: the oldest generation whose
    threshold the counts have passed, with the younger ones."""
    thresholds, counts = gc.get_threshold(), gc.get_count()
    if counts[0] > thresholds[0]:
        gc.collect(2 if counts[2] > thresholds[2] else 1 if counts[1] > thresholds[1] else 0)


def collect_on_gui_thread() -> None:
    """Switch automatic collection off and collect every :data:`INTERVAL_MS` on the calling
    (GUI) thread, by a timer that outlives any window. Once per process: later calls change
    nothing."""
    global _timer
    if _timer is not None:
        return
    _timer = QTimer()
    _timer.timeout.connect(_collect)
    _timer.start(INTERVAL_MS)
    gc.disable()
