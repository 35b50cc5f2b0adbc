"""Speed of the engine against PyTorch CPU on the reference workloads (WORKLOADS.md).

Both engines run in separate processes (their BLAS thread pools fight in one), alternated
repeat by repeat (ours, torch, ours, torch …) so that machine noise hits both alike; the
figure reported is the median of the per-pair ratios, with the spread. Each repeat also
measures the machine's float32 GEMM throughput (NumPy, same thread count, a third process)
on the workload's largest matrix product, and how much of it the engine's step reaches:
(matrix-product FLOPs per example × samples/s) ÷ that throughput. Near 1 means the step is
as fast as its GEMMs allow; for the small workloads it shows how far from GEMM-bound they
are. Also measures T1: time from "train" to the first finished step with a warm kernel cache.

    python benchmarks/run.py                  # W1 W2 W3 W6, 5 repeats, 2 threads, then 1 thread
    python benchmarks/run.py --json out.json  # the same, and every figure as JSON (below)
    python benchmarks/run.py --quick          # 3 repeats of 1 s, 2 threads only
    python benchmarks/run.py --workloads W6 --repeats 7

``--json FILE`` writes ``{"machine": {...}, "results": {"W1": {"2": {...}, "1": {...}}, ...},
"T1": {...}}``; per workload and thread count: ``ours_samples_per_s`` and
``torch_samples_per_s`` (medians), ``ratio`` (median of the per-pair ratios), ``ratio_min`` /
``ratio_max`` / ``ratios`` (the spread), ``target`` and ``met``; ``gemm`` (``shape`` [N, K, M]
of the largest product and the machine's ``gflops`` on it, median); ``engine_gflops`` (the
step's matrix-product FLOPs per second) and ``gemm_fraction`` (their ratio, median of the
repeats), with ``gemm_target`` where the workload has one. ``machine`` holds the CPU, the
load average before and after, and the library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def gemm_rate(shape: tuple[int, int, int], seconds: float, threads: int) -> float:
    """NumPy's float32 GEMM GFLOP/s on ``shape`` at ``threads`` threads, in a fresh process."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, str(HERE / "gemm_worker.py"), *map(str, shape), str(seconds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"gemm worker failed:\n{proc.stderr[-2000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["gflops"])


def measure(wid: str, threads: int, repeats: int, seconds: float) -> dict:
    """Alternated repeats of ours, PyTorch and the reference GEMM; medians and spreads."""
    w = WORKLOADS[wid]
    ours, theirs, ratios, gemms, fractions = [], [], [], [], []
    for _ in range(repeats):
        a = worker("ours", wid, seconds, threads)["samples_per_s"]
        b = worker("torch", wid, seconds, threads)["samples_per_s"]
        ours.append(a)
        theirs.append(b)
        ratios.append(a / b)
        if w.dense_only:
            g = gemm_rate(w.largest_matmul(), min(seconds, 1.0), threads)
            gemms.append(g)
            fractions.append(a * w.flops_per_example() / 1e9 / g)
    ratio = statistics.median(ratios)
    out = {"ours_samples_per_s": statistics.median(ours), "torch_samples_per_s": statistics.median(theirs),
           "ratio": ratio, "ratio_min": min(ratios), "ratio_max": max(ratios), "ratios": ratios,
           "target": w.target, "met": ratio >= w.target}
    if w.dense_only:
        out.update({"gemm": {"shape": list(w.largest_matmul()), "gflops": statistics.median(gemms),
                             "samples": gemms},
                    "engine_gflops": statistics.median(ours) * w.flops_per_example() / 1e9,
                    "gemm_fraction": statistics.median(fractions), "gemm_fractions": fractions})
    if w.gemm_target is not None:
        out["gemm_target"] = w.gemm_target
        out["met"] = out["met"] and out["gemm_fraction"] >= w.gemm_target
    return out


def machine() -> dict:
    import numba
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "load_before": list(os.getloadavg()),
            "versions": {"numpy": numpy.__version__, "numba": numba.__version__, "torch": torch.__version__,
                         "python": platform.python_version()}}


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
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE (see the docstring)")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.seconds, args.threads = 3, 1.0, "2"
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is needed for the comparison: pip install torch==2.13.0", file=sys.stderr)
        return 1
    wids = [w.strip() for w in args.workloads.split(",") if w.strip()]
    report: dict = {"machine": machine(), "results": {}}
    print(f"{'workload':<8} {'thr':>3} {'ours/s':>10} {'torch/s':>10} {'ratio':>7} {'spread':>15} {'target':>6}"
          f" {'GEMM GF/s':>10} {'step/GEMM':>9}")
    for threads in [int(t) for t in args.threads.split(",")]:
        for wid in wids:
            if wid in NOT_YET:
                print(f"{wid:<8} skipped: {NOT_YET[wid]}")
                continue
            r = measure(wid, threads, args.repeats, args.seconds)
            report["results"].setdefault(wid, {})[str(threads)] = r
            target = f"{r['target']:.1f}" + (f"+{r['gemm_target']:.0%}" if "gemm_target" in r else "")
            print(f"{wid:<8} {threads:>3} {r['ours_samples_per_s']:>10.0f} {r['torch_samples_per_s']:>10.0f} "
                  f"{r['ratio']:>7.2f} {r['ratio_min']:>7.2f}–{r['ratio_max']:<7.2f} {target:>6}"
                  + (f" {r['gemm']['gflops']:>10.1f} {r['gemm_fraction']:>9.0%}" if "gemm" in r
                     else f" {'—':>10} {'—':>9}")
                  + f"  {'met' if r['met'] else 'MISSED'}",
                  flush=True)
    if not args.no_t1:
        t1 = measure_t1()
        report["T1"] = t1
        print(f"T1 train → first step (warm cache, in process): {t1['train_to_first_step_s'] * 1000:.0f} ms "
              f"(target ≤ 1000 ms); whole CLI process for 1 epoch: {t1['cli_one_epoch_process_s']:.2f} s")
    report["machine"]["load_after"] = list(os.getloadavg())
    text = json.dumps(report, indent=2)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"run-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    if args.json:
        target = Path(args.json)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
