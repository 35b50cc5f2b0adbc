"""The cycle collector runs on the GUI thread only (studio/gui_gc.py): a collection on the
trainer thread destroys Qt objects there, and PySide can then deadlock the two threads."""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QObject


class _Cycle:
    def __init__(self) -> None:
        self.me = self
        self.qt = QObject()


def test_after_the_window_opens_only_the_gui_thread_collects_cycles(window, qtbot):
    assert not gc.isenabled()
    threads: list[int] = []

    def seen(phase: str, _info: dict) -> None:
        if phase == "start":
            threads.append(threading.get_ident())

    gc.callbacks.append(seen)
    try:
        def allocate() -> None:  # far past every threshold: automatic collection would run here
            for _ in range(50_000):
                _Cycle()

        worker = threading.Thread(target=allocate)
        worker.start()
        worker.join()
        assert worker.ident not in threads
        qtbot.waitUntil(lambda: threading.get_ident() in threads, timeout=5000)
    finally:
        gc.callbacks.remove(seen)
    assert set(threads) == {threading.get_ident()}
