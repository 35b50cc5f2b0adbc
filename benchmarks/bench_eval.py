"""Evaluation speed on MNIST-sized images: W4's LeNet-5 (1×28×28) predicting 10,000 images.

The convolution issue asks for "evaluation of 10,000 MNIST-sized images under 2 s". This
times ``Model.predict`` (chunks sized from the bytes an example needs) on 10,000 random
images, median of several repeats after one warm-up, and PyTorch's ``net.eval()`` forward
under ``torch.inference_mode()`` on the same shapes, in separate processes (their BLAS pools
fight in one), alternated repeat by repeat.

    python benchmarks/bench_eval.py                 # 5 repeats, 1 thread
    python benchmarks/bench_eval.py --threads 2 --n 10000 --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def _images(n: int):
    import numpy as np

    return np.random.default_rng(0).random((n, 1, 28, 28), dtype=np.float32)


def ours(n: int) -> float:
    from workloads import WORKLOADS, engine_graph

    from engine.compiler import compile_graph

    model = compile_graph(engine_graph(WORKLOADS["W4"]), dtype="float32", seed=0)
    X = _images(n)
    model.predict(X[:256])  # kernels loaded, scratch sized
    t0 = time.perf_counter()
    model.predict(X)
    return time.perf_counter() - t0


def torch_eval(n: int, threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
        torch.nn.Linear(84, 10)).eval()
    X = torch.from_numpy(_images(n))
    with torch.inference_mode():
        net(X[:256])
        t0 = time.perf_counter()
        for chunk in torch.split(X, 1024):
            net(chunk)
        return time.perf_counter() - t0


def _child(engine: str, n: int, threads: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, __file__, "--child", engine, "--n", str(n), "--threads", str(threads)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", choices=("ours", "torch"))
    args = ap.parse_args()
    if args.child:
        seconds = ours(args.n) if args.child == "ours" else torch_eval(args.n, args.threads)
        print(json.dumps({"seconds": seconds}))
        return
    times: dict[str, list[float]] = {"ours": [], "torch": []}
    for _ in range(args.repeats):
        for engine in times:
            times[engine].append(_child(engine, args.n, args.threads))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"evaluation of {args.n} images 1×28×28 (LeNet-5), {args.threads} thread(s), "
          f"median of {args.repeats}: ours {med['ours']:.3f} s, torch {med['torch']:.3f} s, "
          f"torch/ours {med['torch'] / med['ours']:.2f}; target < 2 s: {'met' if med['ours'] < 2 else 'MISSED'}")


if __name__ == "__main__":
    main()
