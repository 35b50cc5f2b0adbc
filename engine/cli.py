"""``backprop``: check, train, predict, export and benchmark from the command line.

Exit status: 0 success; 1 a user error (bad file, graph, data or setting: one line on
stderr); 2 bad command-line usage; 3 training diverged; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import engine
from engine.errors import BackpropError, DataError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _fmt_shape(shape: Any) -> str:
    return "?" if shape is None else "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def summary_table(graph: Any) -> str:
    """The layer table of ``backprop check`` (and the studio's summary panel text)."""
    rows, total = graph.summary()
    body = [(r.node, r.type, r.details, _fmt_shape(r.output_shape), f"{r.params:,}") for r in rows]
    head = ("node", "type", "settings", "output shape", "params")
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    def line(cells: tuple[str, ...]) -> str:
        padded = (c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded)
    out = [line(head), "  ".join("-" * w for w in widths)] + [line(b) for b in body]
    out.append(f"total trainable parameters: {total:,}")
    return "\n".join(out)


def cmd_check(args: argparse.Namespace) -> int:
    from engine.graph import Graph

    graph = Graph.load(args.graph)
    print(summary_table(graph))
    for warning in graph.infer_shapes().warnings:
        print(f"warning: {warning}", file=sys.stderr)
    problems = graph.problems()
    if problems:
        for p in problems:
            print(f"problem: {p}", file=sys.stderr)
        return EXIT_ERROR
    print("ok: the graph is valid")
    return EXIT_OK


def check_output(path: str | Path, what: str, example: str, suffixes: tuple[str, ...] = ()) -> Path:
    """Refuse, before any work, an output the command could not write at the end.

    ``what`` names the file in the message ("the trained model"), ``example`` is a file
    name to suggest; ``suffixes``, when given, are the endings allowed (a model file is
    recognised by ``.bpmodel``).
    """
    out = Path(path)
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise BackpropError(f"{out}: is a folder; give {what} a file name, e.g. {out / example}")
    if suffixes and out.suffix.lower() not in suffixes:
        raise BackpropError(f"{out}: {what} must be a {' or '.join(suffixes)} file, "
                            f"e.g. {out.with_suffix(suffixes[0]).name}")
    if not folder.exists():
        raise BackpropError(f"{out}: the folder {folder} does not exist; create it or write {what} elsewhere")
    if not folder.is_dir():
        raise BackpropError(f"{out}: {folder} is not a folder; write {what} elsewhere")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BackpropError(f"{out}: the folder {folder} is not writable; write {what} elsewhere")
    return out


class _MetricsWriter:
    """Writes the metrics stream to a temporary file, renamed into place at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.part")
        self.fh: TextIO = open(self.tmp, "w", encoding="utf-8")

    def __call__(self, event: Any) -> None:
        if event.event != "start":
            self.fh.write(json.dumps(event.to_json()) + "\n")

    def close(self) -> None:
        self.fh.close()
        os.replace(self.tmp, self.path)


def _kernels_notice(*graphs: Any) -> None:
    from engine.kernels import graph_categories, kernels_cached

    categories = set().union(*(graph_categories(g) for g in graphs)) if graphs else set()
    if not kernels_cached(categories):
        print("compiling kernels (first run only; later runs start in about a second)…", file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.graph import Graph
    from engine.modelfile import save_model
    from engine.session import prepare_run

    if args.output:
        check_output(args.output, "the trained model", "model.bpmodel", (".bpmodel",))
    if args.metrics:
        check_output(args.metrics, "the metrics stream", "run.jsonl")
    graph = Graph.load(args.graph)
    metrics = _MetricsWriter(Path(args.metrics)) if args.metrics else None
    bar: Any = None
    state = {"epoch": None}

    def listener(event: Any) -> None:
        nonlocal bar
        if metrics:
            metrics(event)
        if event.event == "start" and not args.quiet:
            bar = tqdm(total=event.epochs * event.steps_per_epoch, unit="step", file=sys.stderr,
                       dynamic_ncols=True, mininterval=0.2, leave=False)
        elif event.event == "step" and bar is not None:
            bar.update(1)
        elif event.event == "epoch":
            state["epoch"] = event
            if bar is not None:
                bar.set_postfix_str(f"epoch {event.epoch} loss {event.train_loss:.4g}", refresh=False)

    if not args.quiet:
        _kernels_notice(graph)
    t0 = time.perf_counter()
    try:
        run = prepare_run(graph, Path(args.graph).resolve().parent, epochs=args.epochs, seed=args.seed,
                          listener=listener)
        try:
            finish = run.trainer.run()
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            print("interrupted: nothing saved", file=sys.stderr)
            return EXIT_INTERRUPTED
    finally:
        if metrics:
            metrics.close()
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    last = state["epoch"]
    result: dict[str, Any] = {"reason": finish.reason, "epochs": finish.epoch, "steps": finish.step,
                              "seconds": round(seconds, 3)}
    if last is not None:
        for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
            if getattr(last, key) is not None:
                result[key] = getattr(last, key)
    result.update({k: v for k, v in run.test_metrics().items() if v is not None})
    if finish.reason == "diverged":
        print(f"error: {finish.message}", file=sys.stderr)
        return EXIT_DIVERGED
    if args.output:
        meta = run.meta()
        meta["final_metrics"] = result
        save_model(args.output, run.model, meta)
        result["model"] = str(args.output)
    print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    return EXIT_OK


def read_features(path: Path, feature_names: Sequence[str] | None) -> np.ndarray:
    """Raw features from a CSV (columns by header name when known) or an NPZ array ``X``."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                if "X" not in npz.files:
                    raise DataError(f"{path.name}: no array 'X' (it has {', '.join(npz.files) or 'none'})")
                X = np.asarray(npz["X"], dtype=np.float64)
        except (ValueError, OSError, EOFError) as err:
            raise DataError(f"{path.name}: cannot read NPZ ({err})") from None
        return X
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if r]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path.name}: cannot read CSV ({err})") from None
    if not rows:
        raise DataError(f"{path.name}: the file is empty")
    header, body = rows[0], rows[1:]
    try:
        [float(c) for c in header]
        header, body = [], rows
    except ValueError:
        pass
    columns = list(range(len(rows[0])))
    if header and feature_names:
        missing = [f for f in feature_names if f not in header]
        if missing:
            raise DataError(f"{path.name}: missing feature column(s) {', '.join(missing)}")
        columns = [header.index(f) for f in feature_names]
    try:
        return np.array([[float(r[c]) for c in columns] for r in body], dtype=np.float64)
    except (ValueError, IndexError):
        raise DataError(f"{path.name}: every feature cell must be a number, one row per example") from None


def cmd_predict(args: argparse.Namespace) -> int:
    from engine.graph import atomic_write_bytes, atomic_write_text
    from engine.modelfile import load_model
    from engine.session import preprocess

    out = check_output(args.output, "the predictions", "predictions.csv", (".csv", ".npy"))
    loaded = load_model(args.model)
    meta = loaded.meta
    names = (meta.get("dataset") or {}).get("feature_names") or None
    X = read_features(Path(args.input), names)
    shape = loaded.model.shapes[loaded.model.input_id]
    if X.ndim == 2 and len(shape) > 1 and X.shape[1] == int(np.prod(shape)):
        X = X.reshape((len(X),) + tuple(shape))
    Y = loaded.model.predict(preprocess(meta, X))
    if out.suffix.lower() == ".npy":
        import io

        buf = io.BytesIO()
        np.save(buf, Y)
        atomic_write_bytes(out, buf.getvalue())
    else:  # .csv
        flat = Y.reshape(len(Y), -1)
        classes = (meta.get("dataset") or {}).get("class_names") or []
        cols = classes if len(classes) == flat.shape[1] else [f"out{i}" for i in range(flat.shape[1])]
        lines = [",".join(cols)] + [",".join(f"{v:.9g}" for v in row) for row in flat]
        atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {len(Y)} predictions to {out}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from engine.export import export_model

    path = export_model(args.model, args.format, args.output)
    print(f"exported {args.format} to {path}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    root = Path(engine.__file__).resolve().parent.parent / "benchmarks"
    script = root / "run.py"
    if not script.exists():
        raise BackpropError("the benchmark suite (benchmarks/run.py) ships with the source checkout only")
    import subprocess

    cmd = [sys.executable, str(script), *args.bench_args]
    return subprocess.call(cmd)


EXIT_LESSON_UNMET = 4


def cmd_lesson(args: argparse.Namespace) -> int:
    """``backprop lesson list|show|run``: the guided lessons, headless (docs/lessons.md)."""
    from engine.lessons import load_catalogue, load_lesson, report_text, run_lesson

    if args.lesson_command == "list":
        catalogue = load_catalogue()
        for les in catalogue.lessons:
            print(f"{les.number:>3}  {les.id:<28} {les.title}  [{len(les.runs)} runs, "
                  f"{len(les.expectations)} checks]")
        for problem in catalogue.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR if catalogue.problems else EXIT_OK
    lesson = load_lesson(args.name)
    if args.lesson_command == "show":
        print(f"# {lesson.number}. {lesson.title}\n\n{lesson.text.strip()}\n")
        for spec in lesson.runs:
            print(f"run {spec.name}: {spec.label} ({spec.source})")
        if lesson.change is not None:
            print(f"change: {lesson.change.text}")
        for e in lesson.expectations:
            print(f"check {e.id}: {e.check.text}")
        return EXIT_OK
    _kernels_notice()
    progress = None if args.quiet else (lambda text: print(text + "…", file=sys.stderr, flush=True))
    report = run_lesson(lesson, progress=progress)
    print(report_text(report))
    return EXIT_OK if report.passed else EXIT_LESSON_UNMET


def _add_lesson_parser(sub: Any) -> None:
    p = sub.add_parser("lesson", help="list, show or run the guided lessons")
    lesson_sub = p.add_subparsers(dest="lesson_command", required=True)
    lesson_sub.add_parser("list", help="the lessons, in order")
    show = lesson_sub.add_parser("show", help="a lesson's text, runs and checks")
    show.add_argument("name", help="lesson id or number (or a path to a .toml lesson file)")
    run = lesson_sub.add_parser("run", help="train every run of a lesson and check its expectations")
    run.add_argument("name", help="lesson id or number (or a path to a .toml lesson file)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_lesson)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backprop", description="Backprop Studio engine (headless).")
    parser.add_argument("--version", action="version", version=f"backprop-studio {engine.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="validate a graph file and print its layer table")
    p.add_argument("graph")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("train", help="train a graph file")
    p.add_argument("graph")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("-o", "--output", help="write the trained model (.bpmodel)")
    p.add_argument("--metrics", help="write the metrics stream (JSON lines)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no notices")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("predict", help="run a trained model on raw features (CSV or NPZ 'X')")
    p.add_argument("model")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True, help="predictions (.csv or .npy)")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("export", help="export a trained model to ONNX, PyTorch code or NumPy code")
    p.add_argument("model")
    p.add_argument("--format", required=True, choices=("onnx", "torch", "numpy"))
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("bench", help="run the speed benchmarks against PyTorch (needs torch)")
    p.add_argument("bench_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)
    _add_lesson_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BackpropError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as err:
        print(f"error: {err.strerror or err}: {getattr(err, 'filename', '') or ''}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
