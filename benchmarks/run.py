"""Speed of the engine against PyTorch CPU on the reference workloads (WORKLOADS.md).

Both engines run in separate processes (their BLAS thread pools fight in one), alternated
repeat by repeat (ours, torch, ours, torch …) so that machine noise hits both alike; the
figure reported is the median of the per-pair ratios, with the spread. Also measures T1:
time from "train" to the first finished step with a warm kernel cache.

    python benchmarks/run.py                  # W1 W2 W3 W6, 5 repeats, 2 threads, then 1 thread
    python benchmarks/run.py --quick          # 3 repeats of 1 s, 2 threads only
    python benchmarks/run.py --workloads W6 --repeats 7
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
sys.path.insert(0, str(HERE))

from workloads import NOT_YET, WORKLOADS  # noqa: E402


def worker(kind: str, wid: str, seconds: float, threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    if kind == "ours":
        cmd = [sys.executable, str(HERE / "engine_worker.py"), wid, str(seconds)]
    else:
        cmd = [sys.executable, str(HERE / "torch_worker.py"), wid, str(seconds), str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} {wid} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_t1() -> dict:
    """Seconds from prepare_run (what Train does) to the first finished step, warm cache,
    in a fresh process with the engine imported; plus the whole CLI process for one epoch."""
    root, examples = str(HERE.parent), HERE.parent / "examples"
    code = (
        f"import time, sys; sys.path.insert(0, {root!r})\n"
        "import engine.session, engine.graph\n"
        f"g = engine.graph.Graph.load({str(examples / 'moons_mlp.json')!r})\n"
        "t0 = time.perf_counter(); box = {}\n"
        "def on(e):\n"
        "    if e.event == 'step' and 'first' not in box: box['first'] = time.perf_counter() - t0\n"
        f"run = engine.session.prepare_run(g, {str(examples)!r}, epochs=1, listener=on); run.trainer.run()\n"
        "print(box['first'])\n"
    )
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)  # warm the cache
    in_process = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       timeout=600).stdout.strip()) for _ in range(5)]
    cli = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "engine", "train", str(HERE.parent / "examples" / "xor.json"),
                        "--epochs", "1", "-q"], capture_output=True, cwd=HERE.parent, timeout=600)
        cli.append(time.perf_counter() - t0)
    return {"train_to_first_step_s": statistics.median(in_process), "cli_one_epoch_process_s": statistics.median(cli)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="W1,W2,W3,W6")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--threads", default="2,1", help="thread counts to run, e.g. 2 or 2,1")
    ap.add_argument("--quick", action="store_true", help="3 repeats of 1 s, 2 threads")
    ap.add_argument("--no-t1", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.seconds, args.threads = 3, 1.0, "2"
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is needed for the comparison: pip install torch==2.13.0", file=sys.stderr)
        return 1
    wids = [w.strip() for w in args.workloads.split(",") if w.strip()]
    results = {}
    print(f"{'workload':<8} {'thr':>3} {'ours/s':>10} {'torch/s':>10} {'ratio':>7} {'spread':>15} {'target':>6}")
    for threads in [int(t) for t in args.threads.split(",")]:
        for wid in wids:
            if wid in NOT_YET:
                print(f"{wid:<8} skipped: {NOT_YET[wid]}")
                continue
            ours, theirs, ratios = [], [], []
            for _ in range(args.repeats):
                a = worker("ours", wid, args.seconds, threads)["samples_per_s"]
                b = worker("torch", wid, args.seconds, threads)["samples_per_s"]
                ours.append(a)
                theirs.append(b)
                ratios.append(a / b)
            ratio = statistics.median(ratios)
            w = WORKLOADS[wid]
            results[f"{wid}@{threads}"] = {"ours": statistics.median(ours), "torch": statistics.median(theirs),
                                           "ratio": ratio, "ratios": ratios, "target": w.target}
            met = "met" if ratio >= w.target else "MISSED"
            print(f"{wid:<8} {threads:>3} {statistics.median(ours):>10.0f} {statistics.median(theirs):>10.0f} "
                  f"{ratio:>7.2f} {min(ratios):>7.2f}–{max(ratios):<7.2f} {w.target:>5.1f}  {met}", flush=True)
    if not args.no_t1:
        t1 = measure_t1()
        results["T1"] = t1
        print(f"T1 train → first step (warm cache, in process): {t1['train_to_first_step_s'] * 1000:.0f} ms "
              f"(target ≤ 1000 ms); whole CLI process for 1 epoch: {t1['cli_one_epoch_process_s']:.2f} s")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"run-{stamp}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
