"""Continue training '<<title>>' in PyTorch: one process, or many with torchrun (DDP).

    python train.py DATA.npz                          # one process (CPU, or a GPU if there is one)
    torchrun --nproc_per_node=4 train.py DATA.npz     # 4 processes: DistributedDataParallel,
                                                      # gloo on CPU, nccl on GPUs

DATA is an NPZ with arrays X (raw features, one example per row) and y (class indices, or
regression targets), or a CSV with a header naming the feature columns and the target column
(the model file's dataset format). The stored input normalisation is applied, as when the
model was trained. The loss, optimizer and settings below are the model file's; a step is the
same as in Backprop Studio: loss, weight decay on the decayed weights, gradient clipping,
optimizer update. The global batch (all processes together) stays CONFIG["batch_size"]
unless --batch-size sets the per-process batch.

At the end, process 0 writes the weights to state_dict.pt (or --out), which model.py loads.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import model as exported  # noqa: E402  (model.py, next to this file)

# <<config>>
CONFIG: dict = {"loss": "mse", "optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 32, "epochs": 10,
                "seed": 0, "schedule": None, "clip_norm": None, "clip_value": None,
                "weight_decay": {"l1": 0.0, "l2": 0.0},
                "shuffle": True}
OPTIMIZER: tuple[str, dict] = ("SGD", {"lr": 0.1, "momentum": 0.0, "nesterov": False})
TASK = "regression"
N_CLASSES = 0
DECAYED: list[str] = []
LOSS_SHAPE: tuple[int, ...] = (1,)
TARGET_SHAPE: tuple[int, ...] = (1,)
FEATURES: list[str] = []
TARGET = ""
CLASS_NAMES: list[str] = []
# <</config>>


# ---- data ------------------------------------------------------------------------------
def read_dataset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw (X, y) from an NPZ (arrays X and y) or a CSV (a header with FEATURES and TARGET)."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            X, y = np.asarray(npz["X"], np.float64), np.asarray(npz["y"])
    else:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh) if row]
        header, body = [h.strip() for h in rows[0]], rows[1:]
        target = TARGET if TARGET in header else header[-1]
        features = FEATURES or [h for h in header if h != target]
        X = np.array([[float(r[header.index(f)]) for f in features] for r in body], np.float64)
        y = np.array([r[header.index(target)].strip() for r in body])
        if TASK == "regression":
            y = y.astype(np.float64)
    return X, (encode_labels(y) if TASK == "classification" else y)


def encode_labels(y: np.ndarray) -> np.ndarray:
    """Class labels → class indices, in the order the model was trained with (CLASS_NAMES).

    A label that names a class ("upper", or 3 for class "3") maps to it; when no class name is
    a number, integer labels 0..K-1 are already class indices (as Backprop Studio's datasets).
    """
    numeric_names = any(_number_name(c) is not None for c in CLASS_NAMES)
    out = []
    for v in np.asarray(y).reshape(-1).tolist():
        key = v if isinstance(v, str) and v in CLASS_NAMES else _number_name(v)
        if key is None:
            raise SystemExit(f"label {v!r} is not one of the classes the model was trained on: {CLASS_NAMES}")
        if key in CLASS_NAMES:
            out.append(CLASS_NAMES.index(key))
        elif not CLASS_NAMES or (not numeric_names and float(v).is_integer() and 0 <= v < len(CLASS_NAMES)):
            out.append(int(v))
        else:
            raise SystemExit(f"label {v!r} is not one of the classes the model was trained on: {CLASS_NAMES}")
    return np.array(out, dtype=np.int64)


def _number_name(v) -> str | None:
    """The engine's name of a numeric class label ("3" for 3 or "3.0", "0.5" for 0.5), else None."""
    try:
        f = float(v)
    except ValueError:
        return None
    return str(int(f)) if f.is_integer() else repr(f)


def prepare_targets(y: np.ndarray) -> np.ndarray:
    """Targets shaped like what the loss reads. The last axis holds the classes: one-hot
    over K outputs (or the 0/1 value for one output) at every leading position, so a
    (T, K) output takes one class index per time step (y of shape (n, T))."""
    n, width = len(y), LOSS_SHAPE[-1]
    if TASK == "classification":
        y = np.asarray(y).astype(np.int64).reshape(-1)
        if width == 1:
            return y.reshape((n,) + LOSS_SHAPE).astype(np.float64)
        onehot = np.zeros((y.size, width))
        onehot[np.arange(y.size), y] = 1.0
        return onehot.reshape((n,) + LOSS_SHAPE)
    return np.asarray(y, np.float64).reshape((n,) + TARGET_SHAPE)


def load_dataset(path: Path) -> TensorDataset:
    X, y = read_dataset(path)
    X = torch.as_tensor(exported.preprocess(X), dtype=exported.DTYPE)
    T = torch.as_tensor(prepare_targets(y), dtype=exported.DTYPE)
    return TensorDataset(X, T)


# ---- loss and optimizer ------------------------------------------------------------------
def loss_fn(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The model file's loss on what ``Net.forward(x, for_loss=True)`` returns (mean reduction)."""
    name = CONFIG["loss"]
    if name == "mse":
        return F.mse_loss(z, t)
    if name == "mae":
        return F.l1_loss(z, t)
    if name == "cross_entropy":  # softmax over the last axis, mean over every leading position
        return F.cross_entropy(z.reshape(-1, z.shape[-1]), t.reshape(-1, t.shape[-1]))
    if name == "bce_logits":
        return F.binary_cross_entropy_with_logits(z, t)
    if name == "mdn_nll":  # z = [π, μ, σ] per position (MixtureDensity output), t one y per position
        k = z.shape[-1] // 3
        pi, mu, sigma = z[..., :k], z[..., k:2 * k], z[..., 2 * k:]
        log_n = -0.5 * math.log(2 * math.pi) - torch.log(sigma) - 0.5 * ((t - mu) / sigma) ** 2
        return -torch.logsumexp(torch.log(pi) + log_n, dim=-1).mean()
    raise ValueError(f"unknown loss {name!r}")


def make_optimizer(params) -> torch.optim.Optimizer:
    """The model file's optimizer: the torch.optim class with the same update rule and settings."""
    name, kwargs = OPTIMIZER
    return getattr(torch.optim, name)(params, **kwargs)


def lr_at(progress: float, base_lr: float, epochs: int) -> float:
    """The learning rate ``progress`` epochs into a run of ``epochs`` (the model file's schedule)."""
    s = CONFIG["schedule"] or {"name": "constant"}
    name, horizon = s["name"], float(max(s.get("epochs") or epochs, 1))
    lr = base_lr
    if name == "step":
        lr = base_lr * s["gamma"] ** math.floor(progress / s["every"])
    elif name == "exponential":
        lr = base_lr * s["gamma"] ** progress
    elif name == "linear":
        f = progress / horizon
        lr = (1.0 - f) * base_lr + f * s["final_lr"] if progress < horizon else s["final_lr"]
    elif name == "cosine":
        lr = (s["final_lr"] + 0.5 * (base_lr - s["final_lr"]) * (1.0 + math.cos(math.pi * progress / horizon))
              if progress < horizon else s["final_lr"])
    if s.get("warmup", 0.0) > 0 and progress < s["warmup"]:
        lr *= progress / s["warmup"]
    return lr


# ---- one step ----------------------------------------------------------------------------
def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def weight_decay(model: torch.nn.Module) -> float:
    """Add L1/L2 decay of the DECAYED tensors to their gradients; returns the penalty added to
    the loss: ½·l2·Σw² + l1·Σ|w| (gradient l2·w + l1·sign(w))."""
    l1, l2 = CONFIG["weight_decay"]["l1"], CONFIG["weight_decay"]["l2"]
    if not (l1 or l2):
        return 0.0
    penalty = 0.0
    params = dict(unwrap(model).named_parameters())
    with torch.no_grad():
        for name in DECAYED:
            w = params[name]
            penalty += float(0.5 * l2 * (w * w).sum() + l1 * w.abs().sum())
            w.grad += l2 * w + l1 * torch.sign(w)
    return penalty


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, xb: torch.Tensor,
               tb: torch.Tensor) -> float:
    """Forward, loss, backward, weight decay, clipping, update; returns the loss."""
    optimizer.zero_grad()
    loss = loss_fn(model(xb, for_loss=True), tb)
    loss.backward()
    value = loss.item() + weight_decay(model)
    if CONFIG.get("clip_value"):
        torch.nn.utils.clip_grad_value_(model.parameters(), CONFIG["clip_value"])
    if CONFIG["clip_norm"]:
        torch.nn.utils.clip_grad_norm_(model.parameters(), CONFIG["clip_norm"])
    if math.isfinite(value):
        optimizer.step()
    return value


# ---- the run -----------------------------------------------------------------------------
def setup() -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the process group when started by torchrun."""
    if "WORLD_SIZE" not in os.environ:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    device = torch.device("cpu")
    if backend == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def save(state: dict, path: Path) -> None:
    """Write to a temporary file and rename it over: a crash never leaves half a file."""
    tmp = path.with_name(f".{path.name}.part")
    torch.save(state, tmp)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="NPZ with X and y, or CSV with a header")
    parser.add_argument("--epochs", type=int, default=CONFIG["epochs"])
    parser.add_argument("--batch-size", type=int, help="per process (default: the model file's batch "
                        "size divided by the number of processes)")
    parser.add_argument("--weights", type=Path, default=HERE / "state_dict.pt", help="weights to start from")
    parser.add_argument("--out", type=Path, default=HERE / "state_dict.pt", help="where to write the weights")
    args = parser.parse_args(argv)

    rank, world, device = setup()
    torch.manual_seed(CONFIG["seed"] + rank)
    dataset = load_dataset(args.data)
    batch = args.batch_size or max(1, CONFIG["batch_size"] // world)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=CONFIG["shuffle"],
                                 seed=CONFIG["seed"]) if world > 1 or dist.is_initialized() else None
    generator = torch.Generator().manual_seed(CONFIG["seed"])
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, generator=generator,
                        shuffle=sampler is None and CONFIG["shuffle"])
    net = exported.load_model(args.weights).to(device).train()
    model = DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None) \
        if dist.is_initialized() else net
    optimizer = make_optimizer(model.parameters())
    base_lr = optimizer.param_groups[0]["lr"]
    steps = len(loader)
    for epoch in range(args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        totals = torch.zeros(2, dtype=torch.float64, device=device)
        for b, (xb, tb) in enumerate(loader):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(epoch + b / steps, base_lr, args.epochs)
            loss = train_step(model, optimizer, xb.to(device), tb.to(device))
            totals += torch.tensor([loss * len(xb), len(xb)], dtype=torch.float64, device=device)
        if dist.is_initialized():
            dist.all_reduce(totals)
        mean = float(totals[0] / totals[1])
        if rank == 0:
            print(f"epoch {epoch + 1}/{args.epochs}  loss {mean:.6g}", flush=True)
        if not math.isfinite(mean):
            if rank == 0:
                print("training diverged: lower the learning rate or enable clipping", file=sys.stderr)
            break
    if rank == 0:
        save(unwrap(model).state_dict(), args.out)
        print(f"wrote {args.out}")
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
