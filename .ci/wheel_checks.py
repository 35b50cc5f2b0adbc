"""The checks .ci/wheel_smoke.sh runs between its steps (one subcommand each, exit 1 with a
one-line reason on failure). Standard library only: ``installed`` runs in the second venv.

    copy REPO DEST       copy git's view of the tree (tracked and new files, nothing ignored)
    wheel WHEEL          the wheel holds engine/, studio/, backprop_resources/ and nothing else
    installed REPO       engine comes from the wheel, not REPO; prints the installed xor.json
    png FILE             FILE is a real screenshot
    trained METRICS      the metrics stream's last epoch reached train_acc 1 (xor learnt)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

TOP_LEVEL = {"engine", "studio", "backprop_resources"}
MUST_HOLD = ["backprop_resources/icons/app.svg", "backprop_resources/styles/studio.qss",
             "backprop_resources/lessons/xor_hidden_layer.toml", "backprop_resources/examples/xor.json",
             "backprop_resources/docs/studio.md", "engine/resources.py", "studio/self_check.py"]


def copy(repo: str, dest: str) -> str:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    files = [name for name in listed if name and (Path(repo) / name).is_file()]  # tracked may be deleted
    for name in files:
        (Path(dest) / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(repo) / name, Path(dest) / name)
    return f"copied {len(files)} files (tracked and new, nothing ignored)"


def wheel(path: str) -> str:
    import zipfile

    names = zipfile.ZipFile(path).namelist()
    tops = sorted({n.split("/")[0] for n in names})
    stray = [t for t in tops if t not in TOP_LEVEL and not t.endswith(".dist-info")]
    missing = [n for n in MUST_HOLD if n not in names]
    if stray or missing:
        raise SystemExit(f"{Path(path).name}: top-level {stray} must not be in the wheel; missing: {missing}")
    return f"the wheel holds {len(names)} files under {', '.join(tops)}"


def installed(repo: str) -> str:
    import engine
    from engine.resources import data_path, layout

    module = Path(engine.__file__).resolve()
    if Path(repo).resolve() in module.parents:
        raise SystemExit(f"engine was imported from the checkout ({module}), not from the wheel")
    site = module.parents[1]
    if not layout().installed or (site / "resources").exists():
        raise SystemExit(f"the installed layout is wrong: {layout()} (a top-level resources/ in {site}?)")
    return str(data_path("examples/xor.json"))


def png(path: str) -> str:
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG") or len(data) < 20_000:
        raise SystemExit(f"{path}: not a full screenshot ({len(data)} bytes)")
    return f"screenshot {path}: {len(data) // 1024} KiB"


def trained(metrics: str) -> str:
    lines = Path(metrics).read_text(encoding="utf-8").splitlines()
    epochs = [e for e in map(json.loads, lines) if e.get("event") == "epoch"]
    if not epochs or epochs[-1].get("train_acc") != 1:
        raise SystemExit(f"{metrics}: xor did not train (last epoch: {epochs[-1] if epochs else 'none'})")
    last = epochs[-1]
    return f"xor trained: {len(epochs)} epochs, train_loss {last['train_loss']:.2e}, train_acc {last['train_acc']}"


if __name__ == "__main__":
    commands = {"copy": copy, "wheel": wheel, "installed": installed, "png": png, "trained": trained}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        raise SystemExit(__doc__)
    print(commands[sys.argv[1]](*sys.argv[2:]))
