"""T3 and T5 (WORKLOADS.md) while the studio trains LeNet-5 on the digits with the Feature maps open.

The same measurement as ``bench_studio.py`` (its probe timer, its headless twin, its
alternation; see there) on ``examples/lenet5_digits.json`` instead of W1, with the
*Feature maps* dock brought to the front before Train is pressed, so that the view redraws
(≤ 4 Hz, from the preview model) for the whole run.

    python benchmarks/bench_studio_cnn.py [--repeats 6] [--epochs 120] [--views feature_maps,curves]

Per repeat: one headless run, then one studio run per view (default: Feature maps in
front, then the loss curves in front as the control without feature maps). Prints per
view T3 (p99 lateness of a 10 ms timer from the first step to the finish), T5 (studio ÷
headless steps/s, per pair and median), the view's redraw rate and cost, the ratio of the
two views' studio speeds (what the feature maps cost, independent of the headless run),
and the machine's load average along the way (the machine is shared: read with the load).
Results go to ``benchmarks/results/studio-cnn-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_studio as bs  # noqa: E402  (sets QT_QPA_PLATFORM and the import path)

EXAMPLE = HERE.parent / "examples" / "lenet5_digits.json"


def write_graph(folder: Path, epochs: int) -> Path:
    from engine.graph import Graph

    graph = Graph.load(EXAMPLE)
    graph.training["epochs"] = epochs
    path = folder / f"lenet5_digits_{epochs}ep.json"
    graph.save(path)
    return path


VIEW = {"name": "feature_maps"}  # the dock the next studio window brings to the front
LAST: dict[str, Any] = {}


def patch_windows() -> None:
    """Make bench_studio's windows bring VIEW's dock to the front once opened, and keep
    that panel's redraw count and cost as each window closes (in LAST)."""
    open_original, close_original = bs.open_window, bs.close_window

    def open_window(path: Path, size: tuple[int, int], layout: str) -> Any:
        window = open_original(path, size, "tabs")
        window.training.panel_docks[VIEW["name"]].raise_()
        bs.pump(0.3)
        return window

    def close_window(window: Any) -> None:
        panel = window.training.plots[VIEW["name"]]
        ms = getattr(panel, "draw_ms", [])
        LAST.clear()
        LAST.update({"frames": getattr(panel, "frames", panel.draw_count),
                     "draw_ms_median": statistics.median(ms[2:] or ms or [float("nan")])})
        close_original(window)

    bs.open_window, bs.close_window = open_window, close_window


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=6)
    # 120 epochs (~5 s a run): in 40 (under 2 s) the one-time costs of each run's new window
    # (its first layout, the Feature maps' rows built on their first draw: 70 ms under the
    # profiler) weighed on T5 (0.82-0.90 for 40 epochs against 0.92 for 120, 2026-12-03).
    ap.add_argument("--epochs", type=int, default=120, help="epochs of 40 steps per timed run")
    ap.add_argument("--views", default="feature_maps,curves",
                    help="docks to bring to the front, one studio run each per repeat (alternated with the "
                         "headless run)")
    ap.add_argument("--size", default="1600x1000")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    views = [v for v in args.views.split(",") if v]
    tmp = Path(tempfile.mkdtemp(prefix="bench_studio_cnn_"))
    path, path1 = write_graph(tmp, args.epochs), write_graph(tmp, 1)
    bs.isolate_settings()
    bs._patch_event_buffer()
    patch_windows()
    load_before = os.getloadavg()
    print(f"lenet5_digits in the studio, views {views}: {args.epochs} epochs, window {size[0]}×{size[1]}, "
          f"offscreen, cpus {os.cpu_count()}; load average {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}", flush=True)
    bs.headless_run(path1)  # warm-up: kernels loaded from the cache (or compiled)
    bs.studio_run(path1, size, "tabs")
    headless: list[dict] = []
    studio: dict[str, list[dict]] = {v: [] for v in views}
    costs: dict[str, list[dict]] = {v: [] for v in views}
    loads = []
    for i in range(args.repeats):  # headless, view 1, view 2, … in turn
        headless.append(bs.headless_run(path))
        line = f"  [{i + 1}/{args.repeats}] headless {headless[-1]['steps_per_s']:.0f} steps/s"
        for view in views:
            VIEW["name"] = view
            s = bs.studio_run(path, size, "tabs")
            studio[view].append(s)
            costs[view].append(dict(LAST))
            line += (f"; {view}: {s['steps_per_s']:.0f} steps/s ({s['steps_per_s'] / headless[-1]['steps_per_s']:.2f}),"
                     f" p99 {s['lateness_ms']['p99']:.1f} ms, {s['redraws_per_s'].get(view, 0):.1f} redraws/s "
                     f"of {LAST['draw_ms_median']:.1f} ms")
        loads.append(os.getloadavg()[0])
        print(line + f"; load {loads[-1]:.2f}", flush=True)
    out: dict[str, Any] = {"epochs": args.epochs, "load_before": load_before, "loads": loads,
                           "load_after": os.getloadavg()}
    for view in views:
        summary = bs.summarise("tabs", studio[view], headless)
        out[view] = {"T3_p99_ms": summary["T3_p99_ms"], "T3_pooled_p99_ms": summary["T3_pooled_p99_ms"],
                     "T3_idle_p99_ms": summary["T3_idle_p99_ms"], "T5_ratio": summary["T5_ratio"],
                     "T5_ratios": summary["T5_ratios"], "studio_steps_per_s": summary["studio_steps_per_s"],
                     "headless_steps_per_s": summary["headless_steps_per_s"],
                     "view_hz": statistics.median(s["redraws_per_s"].get(view, 0.0) for s in studio[view]),
                     "view_redraws": costs[view]}
        o = out[view]
        print(f"\n{view} in front: T3 p99 {o['T3_p99_ms']:.1f} ms (target ≤ 30; pooled {o['T3_pooled_p99_ms']:.1f},"
              f" idle {o['T3_idle_p99_ms']:.1f}) · T5 {o['T5_ratio']:.2f} (target ≥ 0.9; pairs "
              + ", ".join(f"{r:.2f}" for r in o["T5_ratios"]) + f") · {o['view_hz']:.1f} redraws/s")
    if len(views) > 1:
        a, b = views[0], views[1]
        pair = [x["steps_per_s"] / y["steps_per_s"] for x, y in zip(studio[a], studio[b], strict=True)]
        out["view_vs_view"] = pair
        print(f"{a} ÷ {b} studio steps/s, per repeat: " + ", ".join(f"{r:.2f}" for r in pair)
              + f"; median {statistics.median(pair):.2f}")
    print(f"load average {load_before[0]:.2f} → " + " → ".join(f"{v:.2f}" for v in loads))
    target = HERE / "results" / f"studio-cnn-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(out, indent=2, default=str))
    print(f"saved {target.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
