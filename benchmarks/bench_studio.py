"""T1, T3, T4, T5 (WORKLOADS.md): the studio while it trains W1 live, measured offscreen.

The W1 network (MLP 784-256-256-10 ReLU, softmax CE, batch 64, SGD momentum 0.9, lr 0.01)
is saved as a graph file with its synthetic data as an NPZ next to it, opened in a real
:class:`studio.main_window.MainWindow` (1600×1000 by default) and trained by triggering the
toolbar's Train action. Measured per repeat (a fresh window each time):

* **T1** Train pressed → the trainer has finished its first step (the first ``StepEvent``
  entering the controller's event buffer), kernels cached. Reported in a fresh process
  (launch the studio, open the file, press Train: what a person waits for; the headline)
  and in-process (a later run in the same session). Also: when the GUI noticed the step,
  and when it was first drawn.
* **T3** GUI event-loop latency: a 10 ms ``QTimer`` (precise) of our own runs throughout;
  lateness of a tick = its gap from the previous tick minus 10 ms, over the training
  interval (first step → finish). p50 / p99 / max; an idle baseline is printed alongside.
* **T4** plot redraws per second while training: actual redraws of each plot panel
  (``PlotPanel.draw_times``, appended by ``refresh`` only when ``_draw`` ran), not timer ticks.
  Layout ``all`` puts the four plot docks side by side so every plot is on screen; ``tabs``
  is the default layout (one plot tab visible). The T4 figure is the slowest of the panels
  that show per-step data (loss curves, gradient flow).
* **T5** steps/s inside the studio ÷ steps/s of the same run headless
  (:func:`engine.session.prepare_run` + ``Trainer.run`` in this process, same graph file,
  same number of epochs, same event-buffer listener), alternated headless/studio repeat by
  repeat; steps/s counted from the first step to the finish event.

    python benchmarks/bench_studio.py [--quick] [--repeats 3] [--epochs 50] [--layout all|tabs|both]
    python benchmarks/bench_studio.py --profile     # where the GUI thread spends its time
    python benchmarks/bench_studio.py --graph examples/lstm_temporal_order.json --show through_time \
        --epochs 40 --layout tabs                    # T3/T5 with the Through-time view open

Results go to ``benchmarks/results/studio-<time>.json``. The reported figures use the
studio's defaults (BLAS and Numba threads as the machine gives them); run with e.g.
``OPENBLAS_NUM_THREADS=1`` or ``--experiment noaa,axiscache`` to size a fix.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["QT_QPA_PLATFORM"] = "offscreen"
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

TARGETS = {"T1": 1.0, "T3": 0.030, "T4": 20.0, "T5": 0.9}
PROBE_MS = 10
LIVE_PANELS = ("curves", "gradients")  # panels that change with every step of W1

# -- instrumentation: when steps enter the trainer's event buffer (studio and headless alike) --
MARKS: dict[str, float] = {}


def _patch_event_buffer() -> None:
    """Timestamp the first StepEvent and the FinishEvent as the trainer emits them.

    Wraps ``EventBuffer.put`` (the listener both the studio and our headless run use) with
    a check costing well under a microsecond per event, so both sides pay the same.
    """
    from engine import events

    original = events.EventBuffer.put
    step_t, finish_t = events.StepEvent, events.FinishEvent

    def put(self: Any, event: Any) -> None:
        kind = type(event)
        if kind is step_t:
            if "first" not in MARKS:
                MARKS["first"] = time.perf_counter()
                MARKS["first_step"] = event.step
        elif kind is finish_t:
            MARKS["finish"] = time.perf_counter()
            MARKS["last_step"] = event.step
        original(self, event)

    events.EventBuffer.put = put


def write_example(source: Path, folder: Path, epochs: int, stats_every: int | None) -> Path:
    """A graph file (e.g. an example) with its epochs (and stats_every) overridden, and no
    validation split (the timed interval is training steps)."""
    from engine.graph import Graph

    g = Graph.load(source)
    g.training.update({"epochs": epochs, "val_split": 0.0})
    if stats_every is not None:
        g.training["stats_every"] = stats_every
    path = folder / f"{source.stem}_{epochs}ep.json"
    g.save(path)
    return path


def write_workload(folder: Path, epochs: int, stats_every: int) -> Path:
    """W1 as a studio graph file plus ``w1.npz`` (the same data ``workloads.W1.data`` makes)."""
    import numpy as np
    from workloads import WORKLOADS, engine_graph

    w = WORKLOADS["W1"]
    X, y = w.data()
    np.savez(folder / "w1.npz", X=X, y=y)
    g = engine_graph(w)
    g.training.update({"dataset": {"path": "w1.npz"}, "normalize": False, "epochs": epochs,
                       "val_split": 0.0, "test_split": 0.0, "stats_every": stats_every})
    for i, nid in enumerate(g.topological_order()):
        g.nodes[nid].ui = {"x": 40.0 + 220.0 * i, "y": 80.0}
    path = folder / f"w1_{epochs}ep.json"
    g.save(path)
    return path


# -- Qt helpers ---------------------------------------------------------------------------
def isolate_settings() -> Any:
    from PySide6.QtCore import QCoreApplication, QSettings

    from studio.app import create_app

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    folder = tempfile.mkdtemp(prefix="bench_studio_")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, folder)
    app = create_app(["bench"])
    QCoreApplication.setOrganizationName("BackpropStudioBench")  # never touch real settings
    _no_dialogs()
    return app


def _no_dialogs() -> None:
    """A modal message box would block an offscreen run forever: print instead."""
    import studio.training.workspace as ws

    class Quiet:
        @staticmethod
        def warning(_parent: Any, title: str, text: str, *a: Any, **k: Any) -> None:
            print(f"[studio dialog] {title}: {text}", file=sys.stderr)

    ws.QMessageBox = Quiet


def pump(seconds: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def wait_for(signal: Any, timeout: float) -> bool:
    """Run the event loop until ``signal`` fires (True) or ``timeout`` seconds pass."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    box = {"fired": False}

    def fired(*_: Any) -> None:
        box["fired"] = True
        loop.quit()

    signal.connect(fired)
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    loop.exec()
    signal.disconnect(fired)
    return box["fired"]


class Probe:
    """A precise 10 ms QTimer recording when it actually fired."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self.timer.start()

    def lateness(self, t0: float, t1: float) -> list[float]:
        ts = [t for t in self.ticks if t0 <= t <= t1]
        return [max(0.0, b - a - PROBE_MS / 1000) for a, b in zip(ts, ts[1:], strict=False)]

    def stop(self) -> None:
        self.timer.stop()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


EXPERIMENTS: set[str] = set()


def apply_experiments(names: set[str]) -> None:
    """What-if knobs that change the studio from outside, to size a fix before making it.

    ``switch``: ``sys.setswitchinterval(0.0005)`` (the GIL hand-over period, default 5 ms);
    ``noaa``: pyqtgraph antialiasing off; ``axiscache``: every plot axis cached as a pixmap
    (``QGraphicsItem.DeviceCoordinateCache``), applied per window in :func:`open_window`.
    """
    EXPERIMENTS.update(names)
    if "switch" in names:
        sys.setswitchinterval(0.0005)
    if "noaa" in names:
        import pyqtgraph as pg

        import studio.plots.common  # noqa: F401  (sets antialias=True on import)

        pg.setConfigOptions(antialias=False)


def _cache_axes(window: Any) -> None:
    import pyqtgraph as pg
    from PySide6.QtWidgets import QGraphicsItem

    for panel in window.training.plots.values():
        for item in panel.glw.scene().items():
            if isinstance(item, pg.AxisItem):
                item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


SHOW: list[str] = []  # plot docks to bring to the front in the 'tabs' layout (--show)
ALL_DOCKS = ("curves", "gradients", "activations", "boundary", "through_time")


def open_window(path: Path, size: tuple[int, int], layout: str) -> Any:
    from PySide6.QtCore import QSettings, Qt

    from studio.main_window import MainWindow

    QSettings().clear()  # every window starts from the default layout, not the last one's
    window = MainWindow()
    if "axiscache" in EXPERIMENTS:
        _cache_axes(window)
    window.resize(*size)
    window.show()
    pump(0.05)
    assert window.files.open(path), "the W1 graph did not open"
    if layout == "all":
        ws = window.training
        docks = [ws.panel_docks[k] for k in ALL_DOCKS if k in ws.panel_docks]
        for dock in docks:
            window.removeDockWidget(dock)
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        window.addDockWidget(bottom, docks[0])
        docks[0].show()
        for a, b in zip(docks, docks[1:], strict=False):
            window.splitDockWidget(a, b, Qt.Orientation.Horizontal)
            b.show()
        pump(0.1)
        window.resizeDocks([docks[0]], [size[1] * 2 // 5], Qt.Orientation.Vertical)
        window.resizeDocks(docks, [size[0] // len(docks)] * len(docks), Qt.Orientation.Horizontal)
    for key in SHOW:
        window.training.panel_docks[key].raise_()
    pump(0.4)  # first layout pass, default dock sizes, first (empty) draws
    return window


def close_window(window: Any) -> None:
    window.document.undo_stack.setClean()
    window.close()
    pump(0.05)


# -- one run each way -----------------------------------------------------------------------
def headless_run(path: Path) -> dict:
    from engine.events import EventBuffer
    from engine.graph import Graph
    from engine.session import prepare_run

    buffer = EventBuffer(max_steps=20000)
    MARKS.clear()
    run = prepare_run(Graph.load(path), path.parent, listener=buffer.put)
    run.trainer.run()
    steps = MARKS["last_step"] - MARKS["first_step"]
    return {"steps": steps, "seconds": MARKS["finish"] - MARKS["first"],
            "steps_per_s": steps / (MARKS["finish"] - MARKS["first"])}


def studio_run(path: Path, size: tuple[int, int], layout: str,
               profile: cProfile.Profile | None = None) -> dict:
    window = open_window(path, size, layout)
    ws = window.training
    c = ws.controller
    visible = {k: p.on_screen() for k, p in ws.plots.items()}
    probe = Probe()
    pump(0.5)
    t_idle1 = time.perf_counter()
    idle = probe.lateness(t_idle1 - 0.5, t_idle1)
    MARKS.clear()
    if profile is not None:
        profile.enable()
    t0 = time.perf_counter()
    ws.actions["train"].trigger()  # what the toolbar button and F5 do
    t_trigger = time.perf_counter() - t0
    finished = wait_for(c.runFinished, 600)
    if profile is not None:
        profile.disable()
    probe.stop()
    assert finished and "finish" in MARKS, f"the studio run did not finish (state {c.state})"
    first, finish = MARKS["first"], MARKS["finish"]
    steps = MARKS["last_step"] - MARKS["first_step"]
    late = probe.lateness(first, finish)
    dur = finish - first
    rates, counts = {}, {}
    for key, panel in ws.plots.items():
        n = sum(1 for t in panel.draw_times if first <= t <= finish)
        counts[key], rates[key] = n, n / dur
    live = [rates[k] for k in LIVE_PANELS if visible[k]]
    out = {
        "t1_first_step_s": first - t0,
        "t1_gui_noticed_s": (c.t_first_step - t0) if c.t_first_step else None,
        "t1_first_drawn_s": (c.t_first_drawn - t0) if c.t_first_drawn else None,
        "train_action_returns_s": t_trigger,
        "steps": steps, "seconds": dur, "steps_per_s": steps / dur,
        "lateness_ms": {"p50": 1000 * pct(late, 50), "p99": 1000 * pct(late, 99), "max": 1000 * max(late, default=0.0),
                        "ticks": len(late) + 1, "expected_ticks": int(dur * 1000 / PROBE_MS)},
        "idle_lateness_ms": {"p50": 1000 * pct(idle, 50), "p99": 1000 * pct(idle, 99)},
        "redraws_per_s": rates, "redraws": counts, "visible": visible,
        "t4_hz": min(live) if live else 0.0, "dropped_events": c.record.dropped if c.record else None,
        "_late": late,
    }
    close_window(window)
    return out


# -- T1 in a fresh process --------------------------------------------------------------------
def t1_child(path: Path, size: tuple[int, int]) -> int:
    """Launch → open → Train in a new process: seconds to the first step (one JSON line)."""
    t_launch = time.perf_counter()
    isolate_settings()
    _patch_event_buffer()
    window = open_window(path, size, "tabs")
    c = window.training.controller
    t_ready = time.perf_counter()
    MARKS.clear()
    t0 = time.perf_counter()
    window.training.actions["train"].trigger()
    ok = wait_for(c.runFinished, 300)
    print(json.dumps({"ok": ok and "first" in MARKS, "first_step_s": MARKS.get("first", 0) - t0,
                      "first_drawn_s": (c.t_first_drawn - t0) if c.t_first_drawn else None,
                      "launch_to_ready_s": t_ready - t_launch}))
    close_window(window)
    return 0


def t1_fresh(path: Path, size: tuple[int, int], repeats: int) -> list[dict]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--t1-child", str(path),
           "--size", f"{size[0]}x{size[1]}"]
    out = []
    for _ in range(repeats):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"T1 child failed:\n{proc.stderr[-2000:]}")
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


# -- profile -----------------------------------------------------------------------------------
def profile_gui(path: Path, size: tuple[int, int], layout: str) -> dict:
    """cProfile the GUI thread over one studio run: where does its time go?"""
    prof = cProfile.Profile()
    r = studio_run(path, size, layout, prof)
    stream = io.StringIO()
    stats = pstats.Stats(prof, stream=stream).sort_stats("cumulative")
    stats.print_stats(35)
    tottime = io.StringIO()
    pstats.Stats(prof, stream=tottime).sort_stats("tottime").print_stats(20)
    print(f"profiled studio run ({layout}): {r['steps_per_s']:.0f} steps/s, "
          f"p99 lateness {r['lateness_ms']['p99']:.1f} ms (profiler overhead included)")
    print(stream.getvalue()[:9000])
    print(tottime.getvalue()[:6000])
    return {"cumulative": stream.getvalue(), "tottime": tottime.getvalue()}


# -- main ----------------------------------------------------------------------------------------
def med(values: list[float]) -> float:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else float("nan")


def summarise(layout: str, studio: list[dict], headless: list[dict]) -> dict:
    ratios = [s["steps_per_s"] / h["steps_per_s"] for s, h in zip(studio, headless, strict=True)]
    pooled = [x for s in studio for x in s["_late"]]
    panels = studio[0]["redraws_per_s"].keys()
    return {
        "layout": layout,
        "T1_in_process_s": med([s["t1_first_step_s"] for s in studio]),
        "T1_in_process_drawn_s": med([s["t1_first_drawn_s"] for s in studio]),
        "T3_p50_ms": med([s["lateness_ms"]["p50"] for s in studio]),
        "T3_p99_ms": med([s["lateness_ms"]["p99"] for s in studio]),
        "T3_max_ms": med([s["lateness_ms"]["max"] for s in studio]),
        "T3_pooled_p99_ms": 1000 * pct(pooled, 99),
        "T3_idle_p99_ms": med([s["idle_lateness_ms"]["p99"] for s in studio]),
        "T4_hz": med([s["t4_hz"] for s in studio]),
        "T4_per_panel_hz": {k: med([s["redraws_per_s"][k] for s in studio]) for k in panels},
        "T5_ratio": med(ratios), "T5_ratios": ratios,
        "studio_steps_per_s": med([s["steps_per_s"] for s in studio]),
        "headless_steps_per_s": med([h["steps_per_s"] for h in headless]),
        "runs": [{k: v for k, v in s.items() if k != "_late"} for s in studio], "headless": headless,
    }


def print_table(s: dict, t1: dict | None) -> None:
    def ok(good: bool) -> str:
        return "pass" if good else "FAIL"

    print(f"\nlayout '{s['layout']}' (median of {len(s['runs'])} repeats)")
    print(f"{'figure':<46} {'measured':>12} {'target':>10}  result")
    if t1 is not None:
        v = t1["T1_fresh_process_s"]
        print(f"{'T1 Train → first step (fresh process, warm)':<46} {v * 1000:>9.0f} ms {'≤ 1000 ms':>10}  "
              f"{ok(v <= TARGETS['T1'])}")
    v = s["T1_in_process_s"]
    print(f"{'T1 Train → first step (later run, in process)':<46} {v * 1000:>9.0f} ms {'≤ 1000 ms':>10}  "
          f"{ok(v <= TARGETS['T1'])}")
    v = s["T3_p99_ms"]
    print(f"{'T3 10 ms timer lateness p99 while training':<46} {v:>9.1f} ms {'≤ 30 ms':>10}  "
          f"{ok(v <= TARGETS['T3'] * 1000)}")
    print(f"{'   p50 / max / pooled p99 / idle p99':<46} {s['T3_p50_ms']:.1f} / {s['T3_max_ms']:.1f} / "
          f"{s['T3_pooled_p99_ms']:.1f} / {s['T3_idle_p99_ms']:.1f} ms")
    v = s["T4_hz"]
    print(f"{'T4 plot redraws/s while training (slowest live)':<46} {v:>9.1f} Hz {'≥ 20 Hz':>10}  "
          f"{ok(v >= TARGETS['T4'])}")
    print(f"{'   per panel':<46} " + ", ".join(f"{k} {h:.1f}" for k, h in s["T4_per_panel_hz"].items()))
    v = s["T5_ratio"]
    print(f"{'T5 studio ÷ headless steps/s':<46} {v:>12.2f} {'≥ 0.9':>10}  {ok(v >= TARGETS['T5'])}")
    print(f"{'   studio / headless steps/s; pair ratios':<46} {s['studio_steps_per_s']:.0f} / "
          f"{s['headless_steps_per_s']:.0f}; " + ", ".join(f"{r:.2f}" for r in s["T5_ratios"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=50, help="epochs of 64 steps per timed run")
    ap.add_argument("--layout", choices=("all", "tabs", "both"), default="both")
    ap.add_argument("--size", default="1600x1000")
    ap.add_argument("--stats-every", type=int, default=None,
                    help="activation statistics every N steps (W1: 0; --graph: the file's)")
    ap.add_argument("--graph", help="time this graph file (e.g. examples/lstm_temporal_order.json) instead of W1")
    ap.add_argument("--show", default="", help="comma list of plot docks to raise in the tabs layout, "
                    "e.g. through_time")
    ap.add_argument("--quick", action="store_true", help="2 repeats of 20 epochs, layout 'all', 2 fresh T1s")
    ap.add_argument("--profile", action="store_true", help="also cProfile the GUI thread over one run")
    ap.add_argument("--no-t1-fresh", action="store_true")
    ap.add_argument("--experiment", default="", help="comma list of what-if knobs: switch,noaa,axiscache "
                    "(see apply_experiments); for sizing fixes, not for the reported figures")
    ap.add_argument("--t1-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    if args.t1_child:
        return t1_child(Path(args.t1_child), size)
    if args.quick:
        args.repeats, args.epochs, args.layout = 2, 20, "all"
    layouts = ["all", "tabs"] if args.layout == "both" else [args.layout]

    tmp = Path(tempfile.mkdtemp(prefix="bench_studio_"))
    SHOW.extend(k for k in args.show.split(",") if k)
    if args.graph:
        path = write_example(Path(args.graph).resolve(), tmp, args.epochs, args.stats_every)
        path1 = write_example(Path(args.graph).resolve(), tmp, 1, args.stats_every)
    else:
        path = write_workload(tmp, args.epochs, args.stats_every or 0)
        path1 = write_workload(tmp, 1, args.stats_every or 0)
    isolate_settings()
    _patch_event_buffer()
    apply_experiments({e for e in args.experiment.split(",") if e})
    import numba
    import numpy as np

    print(f"{Path(args.graph).stem if args.graph else 'W1'} in the studio: {args.epochs} epochs, "
          f"shown {args.show or 'default tabs'}, window {size[0]}×{size[1]}, "
          f"offscreen; numba threads {numba.config.NUMBA_NUM_THREADS}, cpus {os.cpu_count()}, "
          f"numpy {np.__version__}; experiments: {args.experiment or 'none'}", flush=True)
    headless_run(path1)  # warm-up: kernels compiled or loaded from the cache
    studio_run(path1, size, "tabs")
    env = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    print(f"thread environment: {env}", flush=True)
    results: dict[str, Any] = {"args": vars(args), "targets": TARGETS, "cpus": os.cpu_count(), "env": env}
    t1 = None
    if not args.no_t1_fresh:
        fresh = t1_fresh(path1, size, 2 if args.quick else max(3, args.repeats))
        t1 = {"T1_fresh_process_s": med([f["first_step_s"] for f in fresh]),
              "T1_fresh_process_drawn_s": med([f["first_drawn_s"] for f in fresh]), "runs": fresh}
        results["T1_fresh"] = t1
        print(f"T1 fresh process: first step {t1['T1_fresh_process_s'] * 1000:.0f} ms, first drawn "
              f"{t1['T1_fresh_process_drawn_s'] * 1000:.0f} ms after Train (runs: "
              + ", ".join(f"{f['first_step_s'] * 1000:.0f}" for f in fresh) + " ms)", flush=True)
    for layout in layouts:
        studio, headless = [], []
        for i in range(args.repeats):  # alternate: headless, studio, headless, studio …
            headless.append(headless_run(path))
            studio.append(studio_run(path, size, layout))
            s, h = studio[-1], headless[-1]
            print(f"  [{layout} {i + 1}/{args.repeats}] headless {h['steps_per_s']:.0f} steps/s, studio "
                  f"{s['steps_per_s']:.0f} steps/s; T1 {s['t1_first_step_s'] * 1000:.0f} ms; lateness p99 "
                  f"{s['lateness_ms']['p99']:.1f} ms (ticks {s['lateness_ms']['ticks']}/"
                  f"{s['lateness_ms']['expected_ticks']}); redraws/s "
                  + ", ".join(f"{k} {v:.1f}" for k, v in s["redraws_per_s"].items() if s["visible"][k]),
                  flush=True)
        summary = summarise(layout, studio, headless)
        results[layout] = summary
        print_table(summary, t1)
    if args.profile:
        results["profile"] = profile_gui(path, size, layouts[0])
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    target = out / f"studio-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nsaved {target.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
