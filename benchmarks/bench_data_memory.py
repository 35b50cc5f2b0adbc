"""Peak memory of an MNIST-sized image run: 60,000 × 1 × 28 × 28 float32 (188 MB).

Each stage runs in a fresh process and reports what it allocated at its peak beyond what
existed before it (tracemalloc, which NumPy reports its buffers to) and the process's
maximum resident set size:

- ``load``: reading MNIST-format IDX files (gzip) into a float32 Dataset;
- ``prepare``: ``prepare_run`` on that dataset: the val/test/train split (10 % / 10 %),
  per-channel normalisation in place, compiling the model, building the Trainer;
- ``epoch``: one training epoch of Input → Flatten → Dense(10) → Softmax on it.

The budget (issue 9): the dataset plus at most one float32 working copy for the split,
normalised in place; no float64 version, no copy per split or per epoch.

    python benchmarks/bench_data_memory.py            # all stages, n = 60000
    python benchmarks/bench_data_memory.py --n 10000 --stages prepare
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MB = 1 << 20


def write_idx(folder: Path, n: int) -> dict:
    """Random 28×28 'digits' as IDX files; returns the dataset spec that reads them."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    header = struct.pack(">BBBBIII", 0, 0, 8, 3, n, 28, 28)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + pixels.tobytes(), compresslevel=1))
    labels = (np.arange(n) % 10).astype(np.uint8)
    (folder / "train-labels-idx1-ubyte").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, n) + labels.tobytes())
    return {"path": str(folder / "train-images-idx3-ubyte.gz"), "labels": str(folder / "train-labels-idx1-ubyte")}


def graph_for(spec: dict):
    from engine.graph import Graph

    g = Graph("mnist_memory")
    for node, (kind, params) in {"x": ("Input", {"shape": [1, 28, 28]}), "flat": ("Flatten", {}),
                                 "out": ("Dense", {"units": 10}), "p": ("Softmax", {})}.items():
        g.add_node(kind, params, node)
    g.connect("x", "flat")
    g.connect("flat", "out")
    g.connect("out", "p")
    g.training = {"dataset": spec, "loss": "cross_entropy", "batch_size": 256, "epochs": 1, "seed": 0,
                  "val_split": 0.1, "test_split": 0.1, "normalize": True, "optimizer": {"name": "sgd", "lr": 0.05}}
    return g


def stage(name: str, spec: dict) -> dict:
    """Run one stage in this process; everything before it is set up outside the measurement."""
    from engine.data import Dataset, make_dataset
    from engine.session import prepare_run

    graph = graph_for(spec)
    warm = Dataset(np.zeros((100, 1, 28, 28)), np.arange(100) % 10, "classification", "warm-up", [],
                   [str(d) for d in range(10)])
    prepare_run(graph, dataset=warm).trainer.run()  # compile the kernels outside the measurement
    ds = run = None
    if name != "load":
        ds = make_dataset(spec)
    if name == "epoch":
        run = prepare_run(graph, dataset=ds)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    if name == "load":
        ds = make_dataset(spec)
    elif name == "prepare":
        run = prepare_run(graph, dataset=ds)
    else:
        run.trainer.run()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    dataset_mb = ds.X.nbytes / MB
    return {"stage": name, "n": len(ds), "dataset_mb": round(dataset_mb, 1), "peak_mb": round(peak / MB, 1),
            "peak_in_datasets": round(peak / ds.X.nbytes, 2), "max_rss_mb": round(_max_rss_mb(), 1),
            "seconds": round(seconds, 2)}


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60_000)
    parser.add_argument("--stages", nargs="+", default=["load", "prepare", "epoch"])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(stage(args.worker, json.loads(args.spec))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_idx(Path(tmp), args.n)
        for name in args.stages:
            out = subprocess.run([sys.executable, __file__, "--worker", name, "--spec", json.dumps(spec)],
                                 capture_output=True, text=True, cwd=ROOT, check=False)
            if out.returncode:
                print(f"{name}: failed\n{out.stderr}", file=sys.stderr)
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['stage']:8} n={r['n']:,}  dataset {r['dataset_mb']} MB  peak +{r['peak_mb']} MB "
                  f"(= {r['peak_in_datasets']} × the dataset)  max RSS {r['max_rss_mb']} MB  {r['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
