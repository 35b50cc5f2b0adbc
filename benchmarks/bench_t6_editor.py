"""T6 (WORKLOADS.md): open, lay out and draw a 200-node graph in the studio in ≤ 1 s.

The graph is a deep residual chain: Input, then blocks of Dense → ReLU → Add (the Add
merges the block's input back in: a skip connection), then a Dense head — 200 nodes, 265
wires, saved without positions so opening it runs the auto-layout. One timing covers what
a person waits for after choosing the file: engine load and validation, auto-layout, scene
construction, shape inference for every card and wire label, fit to view, and one full
paint of the window (``grab``). The window itself is created beforehand, as it is when a
file is opened from a running studio; its creation time is reported separately.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_t6_editor.py [--repeats 5] [--nodes 200]
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

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_S = 1.0


def residual_chain(n_nodes: int = 200, width: int = 32) -> dict:
    """Graph-file dict: Input, (n-2)/3 blocks of Dense→ReLU→Add(skip), Dense head; no positions."""
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [width]}}]
    edges = []
    prev = "x"
    blocks = (n_nodes - 2) // 3
    for i in range(blocks):
        d, r, a = f"d{i}", f"r{i}", f"add{i}"
        nodes += [{"id": d, "type": "Dense", "params": {"units": width}},
                  {"id": r, "type": "Activation", "params": {"function": "relu"}},
                  {"id": a, "type": "Add", "params": {}}]
        edges += [{"from": f"{prev}.out", "to": f"{d}.in"}, {"from": f"{d}.out", "to": f"{r}.in"},
                  {"from": f"{r}.out", "to": f"{a}.in0"}, {"from": f"{prev}.out", "to": f"{a}.in1"}]
        prev = a
    while len(nodes) < n_nodes:
        head = f"head{len(nodes)}"
        units = 1 if len(nodes) == n_nodes - 1 else width
        nodes.append({"id": head, "type": "Dense", "params": {"units": units}})
        edges.append({"from": f"{prev}.out", "to": f"{head}.in"})
        prev = head
    return {"format": "backprop-studio.graph", "version": 1, "name": f"residual{n_nodes}",
            "nodes": nodes, "edges": edges, "training": {"loss": "mse"}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--screenshot", help="save the last drawn window to this PNG")
    args = parser.parse_args()

    from PySide6.QtCore import QCoreApplication, QSettings

    from studio.app import create_app

    QCoreApplication.setOrganizationName("BackpropStudioBench")  # never touch real settings
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    tmp = Path(tempfile.mkdtemp(prefix="bench_t6_"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp))
    app = create_app(["bench"])
    QCoreApplication.setOrganizationName("BackpropStudioBench")
    from engine.graph import Graph
    from studio.main_window import MainWindow

    data = residual_chain(args.nodes)
    path = tmp / "residual.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    graph = Graph.load(path)
    print(f"graph: {len(graph.nodes)} nodes, {len(graph.edges)} wires, no stored positions")

    times, create_times = [], []
    for _ in range(args.repeats + 1):  # the first round warms caches (fonts, imports)
        t0 = time.perf_counter()
        window = MainWindow()
        window.resize(1400, 860)
        window.show()
        app.processEvents()
        t1 = time.perf_counter()
        assert window.files.open(path)
        window.view.fit_all()
        image = window.grab()  # a full paint of every widget, the canvas included
        t2 = time.perf_counter()
        assert not image.isNull() and len(window.scene.item_for_node) == args.nodes
        create_times.append(t1 - t0)
        times.append(t2 - t1)
        if args.screenshot:
            image.save(args.screenshot)
        window.document.undo_stack.setClean()
        window.close()
        app.processEvents()
    times, create_times = times[1:], create_times[1:]
    med = statistics.median(times)
    print(f"T6 open + layout + draw, {args.nodes} nodes: median {med * 1000:.0f} ms "
          f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {args.repeats} repeats); "
          f"target ≤ {TARGET_S * 1000:.0f} ms: {'OK' if med <= TARGET_S else 'MISSED'}")
    print(f"window creation beforehand: median {statistics.median(create_times) * 1000:.0f} ms")
    return 0 if med <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
