"""Optimizers, schedules, clipping, weight decay and per-node norms (engine/optim.py).

Every update is checked against a NumPy formula written here independently in float64 and
against torch.optim itself (the exported train.py must take the same steps).
"""

from __future__ import annotations

import math
import platform
import re
from pathlib import Path

import numba
import numpy as np
import pytest
import torch

from engine.errors import TrainingError
from engine.kernels import optim as K
from engine.optim import (
    OPTIMIZERS,
    SCHEDULES,
    apply_weight_decay,
    clip_by_global_norm,
    clip_by_value,
    clip_factor,
    global_norm,
    lr_at,
    make_optimizer,
    optimizers_markdown,
    segment_norms,
    torch_equivalent,
    validate_schedule,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"
N, STEPS = 7, 5
LR_FACTORS = [1.0, 0.9, 1.1, 0.5, 0.8]  # a different rate each step, as a schedule would give


# ---- NumPy references (textbook forms, float64) -----------------------------------------------
def np_sgd(p, grads, lrs, momentum=0.0, nesterov=False):
    v = np.zeros_like(p)
    for g, lr in zip(grads, lrs, strict=True):
        if momentum:
            v = momentum * v + g
            p = p - lr * (g + momentum * v if nesterov else v)
        else:
            p = p - lr * g
    return p


def np_adagrad(p, grads, lrs, lr_decay=0.0, eps=1e-10):
    s = np.zeros_like(p)
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        s = s + g ** 2
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
    return p


def np_rmsprop(p, grads, lrs, alpha=0.99, eps=1e-8, momentum=0.0, centered=False):
    v, mean, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g, lr in zip(grads, lrs, strict=True):
        v = alpha * v + (1 - alpha) * g ** 2
        if centered:
            mean = alpha * mean + (1 - alpha) * g
            denom = np.sqrt(v - mean ** 2) + eps
        else:
            denom = np.sqrt(v) + eps
        if momentum:
            buf = momentum * buf + g / denom
            p = p - lr * buf
        else:
            p = p - lr * g / denom
    return p


def np_adam(p, grads, lrs, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        p = p - lr * weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


# (config, NumPy reference(p0, grads, lrs), torch optimizer written out by hand)
CASES = {
    "sgd": ({"name": "sgd", "lr": 0.1}, lambda p, g, r: np_sgd(p, g, r),
            lambda w: torch.optim.SGD([w], lr=0.1)),
    "sgd_nesterov": ({"name": "sgd", "lr": 0.1, "momentum": 0.8, "nesterov": True},
                     lambda p, g, r: np_sgd(p, g, r, 0.8, True),
                     lambda w: torch.optim.SGD([w], lr=0.1, momentum=0.8, nesterov=True)),
    "momentum": ({"name": "momentum", "lr": 0.05}, lambda p, g, r: np_sgd(p, g, r, 0.9),
                 lambda w: torch.optim.SGD([w], lr=0.05, momentum=0.9)),
    "nesterov": ({"name": "nesterov", "lr": 0.05}, lambda p, g, r: np_sgd(p, g, r, 0.9, True),
                 lambda w: torch.optim.SGD([w], lr=0.05, momentum=0.9, nesterov=True)),
    "adagrad": ({"name": "adagrad", "lr": 0.1}, lambda p, g, r: np_adagrad(p, g, r),
                lambda w: torch.optim.Adagrad([w], lr=0.1)),
    "adagrad_decay": ({"name": "adagrad", "lr": 0.1, "lr_decay": 0.2},
                      lambda p, g, r: np_adagrad(p, g, r, 0.2),
                      lambda w: torch.optim.Adagrad([w], lr=0.1, lr_decay=0.2)),
    "rmsprop": ({"name": "rmsprop", "lr": 0.01}, lambda p, g, r: np_rmsprop(p, g, r),
                lambda w: torch.optim.RMSprop([w], lr=0.01)),
    "rmsprop_centered_momentum": (
        {"name": "rmsprop", "lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True},
        lambda p, g, r: np_rmsprop(p, g, r, 0.9, 1e-8, 0.5, True),
        lambda w: torch.optim.RMSprop([w], lr=0.01, alpha=0.9, momentum=0.5, centered=True)),
    "adam": ({"name": "adam", "lr": 0.01}, lambda p, g, r: np_adam(p, g, r),
             lambda w: torch.optim.Adam([w], lr=0.01)),
    "adam_betas": ({"name": "adam", "lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
                   lambda p, g, r: np_adam(p, g, r, 0.8, 0.99, 1e-6),
                   lambda w: torch.optim.Adam([w], lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    "adamw": ({"name": "adamw", "lr": 0.01}, lambda p, g, r: np_adam(p, g, r, weight_decay=0.01),
              lambda w: torch.optim.AdamW([w], lr=0.01)),
    "adamw_decay": ({"name": "adamw", "lr": 0.01, "weight_decay": 0.3},
                    lambda p, g, r: np_adam(p, g, r, weight_decay=0.3),
                    lambda w: torch.optim.AdamW([w], lr=0.01, weight_decay=0.3)),
}


def problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Initial parameters and STEPS gradients of mixed scales (one always zero)."""
    rng = np.random.default_rng(seed)
    p0 = rng.normal(size=N)
    grads = rng.normal(size=(STEPS, N)) * np.array([1, 0.1, 10, 1e-3, 1, 2, 0.5])
    grads[:, 4] = 0.0
    return p0, grads


def run_ours(config, dtype=np.float64, steps=STEPS):
    p0, grads = problem()
    opt = make_optimizer(config, N, dtype)
    p = p0.astype(dtype)
    for k in range(steps):
        opt.step(p, grads[k].astype(dtype), opt.base_lr * LR_FACTORS[k])
    return p, opt


def run_torch(factory):
    p0, grads = problem()
    w = torch.tensor(p0, dtype=torch.float64, requires_grad=True)
    opt = factory(w)
    base = opt.param_groups[0]["lr"]
    for k in range(STEPS):
        opt.param_groups[0]["lr"] = base * LR_FACTORS[k]
        w.grad = torch.tensor(grads[k])
        opt.step()
    return w.detach().numpy(), opt.state[w]


def test_every_optimizer_is_covered_by_the_cases():
    assert {c[0]["name"] for c in CASES.values()} == set(OPTIMIZERS)


@pytest.mark.parametrize("case", CASES)
def test_update_matches_numpy_formula(case):
    config, reference, _ = CASES[case]
    p0, grads = problem()
    ours, _ = run_ours(config)
    lrs = [config["lr"] * f for f in LR_FACTORS]
    expected = reference(p0.copy(), grads, lrs)
    assert not np.allclose(expected, p0)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_update_and_state_match_torch_optim(case):
    config, _, factory = CASES[case]
    ours, opt = run_ours(config)
    theirs, state = run_torch(factory)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    compared = 0
    for key, value in opt.state_dict().items():
        if isinstance(state.get(key), torch.Tensor):
            np.testing.assert_allclose(value, state[key].numpy(), rtol=1e-9, atol=1e-12, err_msg=key)
            compared += 1
    assert compared >= (0 if case == "sgd" else 1)  # plain SGD keeps no state in torch


@pytest.mark.parametrize("case", CASES)
def test_torch_equivalent_builds_the_same_optimizer(case):
    config = CASES[case][0]
    cls, kwargs = torch_equivalent(config)
    ours, _ = run_ours(config)
    theirs, _ = run_torch(lambda w: getattr(torch.optim, cls)([w], **kwargs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", ["sgd_nesterov", "adagrad", "rmsprop_centered_momentum", "adamw"])
def test_float32_stays_float32_and_close_to_float64(case):
    config = CASES[case][0]
    p32, opt = run_ours(config, np.float32)
    p64, _ = run_ours(config, np.float64)
    assert p32.dtype == np.float32
    assert all(a.dtype == np.float32 for a in opt.state)
    np.testing.assert_allclose(p32, p64, rtol=1e-4, atol=1e-5)


def test_state_dict_round_trip_continues_exactly():
    config = CASES["adamw_decay"][0]
    full, _ = run_ours(config)
    part, opt = run_ours(config, steps=3)
    saved = opt.state_dict()
    fresh = make_optimizer(config, N, np.float64)
    fresh.load_state_dict(saved)
    assert fresh.t == 3
    _, grads = problem()
    for k in range(3, STEPS):
        fresh.step(part, grads[k], fresh.base_lr * LR_FACTORS[k])
    np.testing.assert_array_equal(part, full)


def test_loading_another_optimizers_state_is_refused():
    _, adam = run_ours({"name": "adam"}, steps=1)
    with pytest.raises(TrainingError, match="another optimizer"):
        make_optimizer({"name": "sgd"}, N, np.float64).load_state_dict(adam.state_dict())
    with pytest.raises(TrainingError, match="exp_avg"):
        make_optimizer({"name": "adam"}, N + 1, np.float64).load_state_dict(adam.state_dict())


@pytest.mark.parametrize("config, fragment", [
    ({"name": "adamax"}, "adamax"),
    ({"lr": 0.1}, "name"),
    ({"name": "adam", "momentum": 0.9}, "momentum"),
    ({"name": "sgd", "lr": -1}, "'lr'"),
    ({"name": "sgd", "lr": "fast"}, "'lr'"),
    ({"name": "adam", "beta1": 1.0}, "beta1"),
    ({"name": "adam", "beta2": 1.5}, "beta2"),
    ({"name": "rmsprop", "centered": "yes"}, "centered"),
    ({"name": "adagrad", "eps": -1e-3}, "eps"),
    ({"name": "nesterov", "momentum": 0.0}, "momentum"),
    ({"name": "sgd", "nesterov": True}, "Nesterov"),
    ("adam", "optimizer must be an object"),
])
def test_bad_optimizer_config_names_the_problem(config, fragment):
    with pytest.raises(TrainingError, match=fragment):
        make_optimizer(config, 3, np.float32)


def test_optimizer_defaults_are_valid_and_lr_comes_first():
    for name, spec in OPTIMIZERS.items():
        assert spec.params[0].name == "lr"
        opt = make_optimizer({"name": name}, 2, np.float32)
        assert opt.base_lr == spec.params[0].default > 0


# ---- schedules ----------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule, epoch, total, expected", [
    (None, 3.0, 10, 0.1),
    ({}, 3.0, 10, 0.1),
    ({"name": "constant", "warmup": 4}, 1.0, 10, 0.025),
    ({"name": "step", "every": 10, "gamma": 0.5}, 0.0, 50, 0.1),
    ({"name": "step", "every": 10, "gamma": 0.5}, 9.99, 50, 0.1),
    ({"name": "step", "every": 10, "gamma": 0.5}, 10.0, 50, 0.05),
    ({"name": "step", "every": 10, "gamma": 0.5}, 25.0, 50, 0.025),
    ({"name": "step", "every": 10, "gamma": 0.5, "warmup": 2}, 0.0, 50, 0.0),
    ({"name": "step", "every": 10, "gamma": 0.5, "warmup": 2}, 0.5, 50, 0.025),
    ({"name": "step", "every": 10, "gamma": 0.5, "warmup": 2}, 2.0, 50, 0.1),
    ({"name": "exponential", "gamma": 0.9}, 2.0, 50, 0.081),
    ({"name": "exponential", "gamma": 0.81}, 0.5, 50, 0.09),
    ({"name": "linear", "final_lr": 0.01, "epochs": 10}, 0.0, 50, 0.1),
    ({"name": "linear", "final_lr": 0.01, "epochs": 10}, 2.5, 50, 0.0775),
    ({"name": "linear", "final_lr": 0.01, "epochs": 10}, 5.0, 50, 0.055),
    ({"name": "linear", "final_lr": 0.01, "epochs": 10}, 10.0, 50, 0.01),
    ({"name": "linear", "final_lr": 0.01, "epochs": 10}, 30.0, 50, 0.01),
    ({"name": "linear"}, 5.0, 20, 0.075),  # T defaults to the training's epochs, η_T to 0
    ({"name": "linear", "final_lr": 0.01, "epochs": 10, "warmup": 5}, 2.5, 50, 0.0775 / 2),
    ({"name": "cosine"}, 0.0, 10, 0.1),
    ({"name": "cosine"}, 5.0, 10, 0.05),
    ({"name": "cosine"}, 2.5, 10, 0.05 * (1 + math.sqrt(0.5))),
    ({"name": "cosine"}, 10.0, 10, 0.0),
    ({"name": "cosine", "final_lr": 0.01, "epochs": 4}, 2.0, 10, 0.055),
    ({"name": "cosine", "final_lr": 0.01, "epochs": 4}, 7.0, 10, 0.01),
    ({"name": "cosine", "warmup": 2}, 1.0, 10, 0.5 * 0.05 * (1 + math.cos(math.pi / 10))),
])
def test_schedule_values(schedule, epoch, total, expected):
    assert lr_at(schedule, 0.1, epoch, total) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    validated = validate_schedule(schedule)
    assert lr_at(validated, 0.1, epoch, total) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_validate_schedule_fills_defaults():
    assert validate_schedule(None)["name"] == "constant"
    assert validate_schedule("cosine")["name"] == "cosine"
    step = validate_schedule({"name": "step", "every": 3})
    assert step["every"] == 3 and 0 < step["gamma"] < 1 and step["warmup"] == 0


@pytest.mark.parametrize("schedule, fragment", [
    ({"name": "stepp"}, "stepp"),
    ({"every": 3}, "name"),
    ({"name": "step", "evry": 3}, "evry"),
    ({"name": "step", "gamma": 2}, "gamma"),
    ({"name": "step", "every": 0}, "every"),
    ({"name": "linear", "epochs": 0}, "epochs"),
    ({"name": "cosine", "warmup": -1}, "warmup"),
    (5, "schedule"),
])
def test_bad_schedule_names_the_problem(schedule, fragment):
    with pytest.raises(TrainingError, match=fragment):
        validate_schedule(schedule)


# ---- clipping, weight decay, per-node norms -----------------------------------------------------
def test_clipping_above_threshold_scales_to_max_norm():
    g = np.array([3.0, 4.0, 0.0])
    assert clip_by_global_norm(g, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(g, [0.6, 0.8, 0.0], rtol=1e-6)
    assert np.linalg.norm(g) == pytest.approx(1.0, rel=1e-6)


def test_clipping_below_threshold_leaves_gradients_alone():
    g = np.array([0.3, 0.4], np.float32)
    before = g.copy()
    assert clip_by_global_norm(g, 1.0) == pytest.approx(0.5, rel=1e-6)
    np.testing.assert_array_equal(g, before)
    assert g.dtype == np.float32


def test_clipping_matches_torch_and_skips_non_finite():
    rng = np.random.default_rng(3)
    g = rng.normal(size=20) * 5
    t = torch.zeros(20, dtype=torch.float64, requires_grad=True)
    t.grad = torch.tensor(g)
    torch_norm = torch.nn.utils.clip_grad_norm_([t], 2.0)
    assert clip_by_global_norm(g, 2.0) == pytest.approx(float(torch_norm))
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)
    bad = np.array([1.0, np.inf])
    assert clip_by_global_norm(bad, 1.0) == np.inf
    assert bad[0] == 1.0


def test_clipping_by_value_clamps_each_gradient_in_place_and_keeps_nan():
    g = np.array([3.0, -0.2, -7.5, 0.5, np.nan], np.float32)
    clip_by_value(g, 0.5)
    np.testing.assert_array_equal(g[:4], np.array([0.5, -0.2, -0.5, 0.5], np.float32))
    assert np.isnan(g[4]) and g.dtype == np.float32


def test_clipping_by_value_matches_torch():
    g = np.random.default_rng(4).normal(size=50) * 3
    t = torch.zeros(50, dtype=torch.float64, requires_grad=True)
    t.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_([t], 1.25)
    clip_by_value(g, 1.25)
    np.testing.assert_array_equal(g, t.grad.numpy())


def test_trainer_clips_by_value_before_clipping_by_norm():
    from engine.compiler import compile_graph
    from engine.graph import Graph
    from engine.training import TrainConfig, Trainer

    g = Graph("clip")
    g.add_node("Input", {"shape": [3]}, "x")
    g.add_node("Dense", {"units": 2}, "d")
    g.connect("x", "d")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 3)) * 50, rng.normal(size=(16, 2)) * 50
    grads = {}
    for name, block in [("none", {}), ("value", {"clip_value": 0.1}), ("both", {"clip_value": 0.1, "clip_norm": 0.05})]:
        model = compile_graph(g, dtype="float64")
        tr = Trainer(model, X, y, TrainConfig.from_training({"loss": "mse", **block}), task="regression")
        tr.train_step(tr.X, tr.T, lr=0.0)
        grads[name] = model.grads.copy()
    assert np.abs(grads["none"]).max() > 1.0
    np.testing.assert_array_equal(grads["value"], np.clip(grads["none"], -0.1, 0.1))
    clipped = grads["value"] * 0.05 / (np.linalg.norm(grads["value"]) + 1e-6)
    np.testing.assert_allclose(grads["both"], clipped, rtol=1e-12)


def test_bad_clip_value_is_refused_naming_the_key():
    from engine.training import TrainConfig

    with pytest.raises(TrainingError, match="clip_value"):
        TrainConfig.from_training({"clip_value": -1.0})


def penalty(w, mask, l1, l2):
    wm = w[mask == 1]
    return l1 * np.abs(wm).sum() + 0.5 * l2 * (wm ** 2).sum()


def test_weight_decay_penalty_and_gradient():
    w = np.array([0.5, -2.0, 0.0, 1.5, -0.7, 3.0])
    mask = np.array([1, 1, 1, 1, 0, 0], np.uint8)
    g = np.full(6, 0.25)
    value = apply_weight_decay(w, g, mask, 0.1, 0.01)
    assert value == pytest.approx(0.1 * 4.0 + 0.005 * (0.25 + 4 + 2.25))
    np.testing.assert_allclose(g - 0.25, [0.1 + 0.005, -0.1 - 0.02, 0.0, 0.1 + 0.015, 0.0, 0.0])
    # the added gradient is ∂penalty/∂w (central differences away from the kink at 0)
    h = 1e-6
    for i in (0, 1, 3, 4, 5):
        e = np.zeros(6)
        e[i] = h
        fd = (penalty(w + e, mask, 0.1, 0.01) - penalty(w - e, mask, 0.1, 0.01)) / (2 * h)
        assert g[i] - 0.25 == pytest.approx(fd, abs=1e-8)


def test_weight_decay_in_float32_keeps_dtype_and_zero_is_a_no_op():
    w = np.array([1.0, -1.0], np.float32)
    g = np.zeros(2, np.float32)
    assert apply_weight_decay(w, g, np.ones(2, np.uint8), 0.0, 0.0) == 0.0
    assert not g.any()
    assert apply_weight_decay(w, g, np.ones(2, np.uint8), 0.0, 0.5) == pytest.approx(0.5)
    assert g.dtype == np.float32 and list(g) == [0.5, -0.5]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_segment_norms_per_node(dtype):
    rng = np.random.default_rng(1)
    g = rng.normal(size=30).astype(dtype)
    offsets = np.array([0, 5, 5, 17, 30], np.int64)  # the second node has no parameters
    out = np.full(4, -1.0)
    segment_norms(g, offsets, out)
    bounds = zip(offsets[:-1], offsets[1:], strict=True)
    expected = [np.linalg.norm(g[a:b].astype(np.float64)) for a, b in bounds]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert out[1] == 0.0
    with pytest.raises(ValueError):
        segment_norms(g, offsets, np.zeros(3))


# ---- the fused pass: per-node norms accumulated while the update walks the buffer ---------------
# Segments (one per node) that start and end inside blocks, span several blocks, or are empty.
OFFSETS = np.array([0, 5, 5, K.BLOCK + 37, 2 * K.BLOCK + 100, 3 * K.BLOCK + 1], np.int64)


def big_problem(dtype, seed=4):
    rng = np.random.default_rng(seed)
    n = int(OFFSETS[-1])
    scales = np.repeat([1.0, 1.0, 1e-3, 30.0, 0.2], np.diff(OFFSETS))
    grads = rng.normal(size=(STEPS, n)) * scales
    return rng.normal(size=n).astype(dtype), grads.astype(dtype)


def segment_reference(g):
    """‖g_k‖ per segment, computed separately (NumPy, float64)."""
    g = np.asarray(g, np.float64)
    return np.array([np.linalg.norm(g[a:b]) for a, b in zip(OFFSETS[:-1], OFFSETS[1:], strict=True)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fused_norms_equal_the_separate_computation_and_leave_the_update_unchanged(case, dtype):
    config = CASES[case][0]
    p0, grads = big_problem(dtype)
    fused = make_optimizer(config, p0.size, dtype)
    plain = make_optimizer(config, p0.size, dtype)
    p_fused, p_plain = p0.copy(), p0.copy()
    norms = np.full(len(OFFSETS) - 1, -1.0)
    for k in range(STEPS):
        lr = fused.base_lr * LR_FACTORS[k]
        g = grads[k].copy()
        assert fused.step(p_fused, g, lr, offsets=OFFSETS, norms=norms)
        np.testing.assert_allclose(norms, segment_reference(grads[k]), rtol=1e-12, atol=0)
        np.testing.assert_array_equal(g, grads[k])  # no clipping: the gradient is left as it was
        plain.step(p_plain, grads[k].copy(), lr)
        separate = np.zeros(len(OFFSETS) - 1)
        segment_norms(grads[k], OFFSETS, separate)
        np.testing.assert_allclose(norms, separate, rtol=1e-12, atol=0)
    assert norms[1] == 0.0  # the empty segment
    np.testing.assert_array_equal(p_fused, p_plain)
    assert fused.t == plain.t == STEPS


@pytest.mark.parametrize("case", CASES)
def test_float64_models_stay_exact_and_float32_within_float32_tolerance(case):
    """float64 arithmetic end to end (agreement far below float32 rounding) against the NumPy
    reference on a buffer of several blocks; float32 within float32 tolerance of it."""
    config, reference, _ = CASES[case]
    lrs = [config["lr"] * f for f in LR_FACTORS]
    p0, grads = big_problem(np.float64)
    expected = reference(p0.copy(), grads, lrs)
    for dtype, rtol in ((np.float64, 1e-13), (np.float32, 2e-5)):
        opt = make_optimizer(config, p0.size, dtype)
        p = p0.astype(dtype)
        for k in range(STEPS):
            opt.step(p, grads[k].astype(dtype), lrs[k], offsets=OFFSETS, norms=np.zeros(len(OFFSETS) - 1))
        assert p.dtype == dtype
        change = np.abs(expected - p0).max()
        np.testing.assert_allclose(p, expected, rtol=0, atol=rtol * max(change, np.abs(expected).max()))


def test_float64_sgd_momentum_is_bit_for_bit_the_textbook_formula():
    p0, grads = big_problem(np.float64)
    opt = make_optimizer({"name": "momentum", "lr": 0.05}, p0.size, np.float64)
    p = p0.copy()
    for k in range(STEPS):
        opt.step(p, grads[k], 0.05, offsets=OFFSETS, norms=np.zeros(len(OFFSETS) - 1))
    np.testing.assert_array_equal(p, np_sgd(p0.copy(), grads, [0.05] * STEPS, 0.9))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_scale_is_the_clipping_of_the_old_separate_pass(dtype):
    """Clip factor folded into the pass = clip_by_global_norm, then norms, then the update."""
    p0, grads = big_problem(dtype)
    g = grads[0] * 10
    norm = global_norm(g)
    assert norm == pytest.approx(np.linalg.norm(g.astype(np.float64)), rel=1e-12)
    scale = clip_factor(norm, 1.5)
    assert scale < 1
    fused = make_optimizer({"name": "adam"}, p0.size, dtype)
    p_fused, g_fused, norms = p0.copy(), g.copy(), np.zeros(len(OFFSETS) - 1)
    fused.step(p_fused, g_fused, 0.01, offsets=OFFSETS, norms=norms, grad_scale=scale)
    separate = make_optimizer({"name": "adam"}, p0.size, dtype)
    p_sep, g_sep = p0.copy(), g.copy()
    clip_by_global_norm(g_sep, 1.5)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(g_fused, g_sep, rtol=rtol)
    assert np.linalg.norm(g_fused.astype(np.float64)) == pytest.approx(1.5, rel=1e-5)
    np.testing.assert_allclose(norms, segment_reference(g_sep), rtol=rtol)
    separate.step(p_sep, g_sep, 0.01)
    np.testing.assert_allclose(p_fused, p_sep, rtol=rtol, atol=0)
    assert clip_factor(0.5, 1.5) == 1.0 and clip_factor(math.inf, 1.5) == 1.0


def test_non_finite_gradient_stops_the_update_and_the_step_does_not_count():
    p0, grads = big_problem(np.float64)
    g = grads[0].copy()
    bad = int(OFFSETS[3]) + 10  # in the fourth node, past the first blocks
    g[bad] = np.inf
    opt = make_optimizer({"name": "sgd", "lr": 0.1}, p0.size, np.float64)
    p, norms = p0.copy(), np.zeros(len(OFFSETS) - 1)
    assert not opt.step(p, g, 0.1, offsets=OFFSETS, norms=norms)
    assert opt.t == 0
    assert np.isinf(norms[3])
    np.testing.assert_allclose(norms[[0, 2, 4]], segment_reference(grads[0])[[0, 2, 4]], rtol=1e-12)
    block_start = int(OFFSETS[3])  # blocks are counted from each node's first element
    np.testing.assert_array_equal(p[block_start:], p0[block_start:])  # nothing from that block on
    np.testing.assert_allclose(p[:5], p0[:5] - 0.1 * g[:5], rtol=1e-15)  # earlier blocks: a normal step
    assert np.all(np.isfinite(p))


def test_apply_false_only_measures():
    p0, grads = big_problem(np.float32)
    opt = make_optimizer({"name": "adamw"}, p0.size, np.float32)
    p, norms = p0.copy(), np.zeros(len(OFFSETS) - 1)
    assert not opt.step(p, grads[0], 0.01, offsets=OFFSETS, norms=norms, apply=False)
    np.testing.assert_array_equal(p, p0)
    assert opt.t == 0 and not opt.state[0].any()
    np.testing.assert_allclose(norms, segment_reference(grads[0]), rtol=1e-12)


def test_step_refuses_arrays_that_do_not_fit():
    opt = make_optimizer({"name": "sgd"}, 4, np.float32)
    with pytest.raises(ValueError, match="4 float32 parameters"):
        opt.step(np.zeros(4, np.float64), np.zeros(4, np.float64), 0.1)
    with pytest.raises(ValueError, match="norms"):
        opt.step(np.zeros(4, np.float32), np.zeros(4, np.float32), 0.1, offsets=np.array([0, 2, 4]),
                 norms=np.zeros(1))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="checks x86 instructions")
def test_sum_of_squares_kernel_is_vectorised():
    """The lane layout is what makes the norms cheap (a plain float64 sum is a serial chain);
    an LLVM change that unrolled the lanes into scalar code would show here, not in a test of values."""
    fresh = numba.njit(nogil=True)(K.sum_squares.py_func)  # the cached one cannot be inspected
    for dtype in (np.float32, np.float64):
        assert fresh(np.ones(100, dtype)) == 100.0
    for sig, asm in fresh.inspect_asm().items():
        assert re.search(r"\bv?addpd\b", asm), f"sum_squares{sig} adds scalars, not vectors"


# ---- generated reference ------------------------------------------------------------------------
def test_training_doc_is_regenerated_and_complete():
    text = optimizers_markdown()
    assert (DOCS / "training.md").read_text(encoding="utf-8") == text, \
        "docs/training.md is stale: run python -m engine.optim"
    for spec in [*OPTIMIZERS.values(), *SCHEDULES.values()]:
        assert f"### {spec.name}" in text
        for p in spec.params:
            assert f"| `{p.name}` |" in text
