"""Backpropagation through time in plain NumPy (float64, one Python step at a time).

The chain rule written out per cell from the defining equations, independent of the
kernels' layout and fusion, for checking them on long sequences where finite differences
would be slow. ``bptt`` returns the two ports' values, every parameter gradient, ∂L/∂x and
‖∂L/∂h_t‖ per step, for given gradients arriving at the ports.
"""

from __future__ import annotations

import numpy as np


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


PHI = {"tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
       "sigmoid": (_sig, lambda z: _sig(z) * (1.0 - _sig(z))),
       "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float))}


def bptt(kind: str, p: dict, x: np.ndarray, W: dict, dseq, dlast: np.ndarray):
    """(outputs [out, state], grads {name: array}, dx, norms (T,)) for one batch."""
    x = np.asarray(x, np.float64)
    W = {k: np.asarray(v, np.float64) for k, v in W.items()}
    N, T, F = x.shape
    H = p["units"]
    phi, dphi = PHI[p["activation"]]
    k = p["truncate"]
    G = {name: np.zeros_like(v) for name, v in W.items()}
    dx = np.zeros_like(x)
    norms = np.zeros(T)

    def block(a, i):
        return a[..., i * H:(i + 1) * H]

    def bias(name, i=None):
        if not p["bias"]:
            return 0.0
        return W[name] if i is None else block(W[name], i)

    def cut(t):
        return k > 0 and (T - t) % k == 0

    hs, cache = [np.zeros((N, H))], []
    c = np.zeros((N, H))
    for t in range(T):
        xt, hp = x[:, t], hs[-1]
        if kind == "SimpleRNN":
            a = xt @ W["Wx"] + hp @ W["Wh"] + bias("b")
            h = phi(a)
            cache.append(a)
        elif kind == "LSTM":
            z = xt @ W["Wx"] + hp @ W["Wh"] + bias("b")
            zi, zf, zg, zo = (block(z, i) for i in range(4))
            cp = c
            c = _sig(zf) * cp + _sig(zi) * phi(zg)
            h = _sig(zo) * phi(c)
            cache.append((zi, zf, zg, zo, cp, c))
        else:
            ax = xt @ W["Wx"] + bias("bx")
            hw = hp @ W["Wh"]
            zr = block(ax, 0) + block(hw, 0) + bias("bh", 0)
            zz = block(ax, 1) + block(hw, 1) + bias("bh", 1)
            r, u = _sig(zr), _sig(zz)
            if p["reset_after"]:
                hn = block(hw, 2) + bias("bh", 2)
                zn = block(ax, 2) + r * hn
            else:
                hn = r * hp
                zn = block(ax, 2) + hn @ block(W["Wh"], 2) + bias("bh", 2)
            n = phi(zn)
            h = (1.0 - u) * n + u * hp
            cache.append((zr, zz, zn, r, u, n, hn))
        hs.append(h)

    dh = np.zeros((N, H))
    dc = np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        if dseq is not None:
            dh = dh + dseq[:, t]
        if t == T - 1:
            dh = dh + dlast
        norms[t] = np.sqrt(np.sum(dh ** 2))
        xt, hp = x[:, t], hs[t]
        if kind == "SimpleRNN":
            da = dh * dphi(cache[t])
            G["Wx"] += xt.T @ da
            G["Wh"] += hp.T @ da
            if p["bias"]:
                G["b"] += da.sum(0)
            dx[:, t] = da @ W["Wx"].T
            dh_prev = da @ W["Wh"].T
        elif kind == "LSTM":
            zi, zf, zg, zo, cp, ct = cache[t]
            dc = dc + dh * _sig(zo) * dphi(ct)
            dz = np.concatenate([dc * phi(zg) * _sig(zi) * (1 - _sig(zi)),
                                 dc * cp * _sig(zf) * (1 - _sig(zf)),
                                 dc * _sig(zi) * dphi(zg),
                                 dh * phi(ct) * _sig(zo) * (1 - _sig(zo))], axis=1)
            G["Wx"] += xt.T @ dz
            G["Wh"] += hp.T @ dz
            if p["bias"]:
                G["b"] += dz.sum(0)
            dx[:, t] = dz @ W["Wx"].T
            dh_prev = dz @ W["Wh"].T
            dc = dc * _sig(zf)
        else:
            zr, zz, zn, r, u, n, hn = cache[t]
            dzn = dh * (1 - u) * dphi(zn)
            dzz = dh * (hp - n) * u * (1 - u)
            dh_prev = dh * u
            if p["reset_after"]:
                dzr = dzn * hn * r * (1 - r)
                dhw = np.concatenate([dzr, dzz, dzn * r], axis=1)
                G["Wh"] += hp.T @ dhw
                dh_prev = dh_prev + dhw @ W["Wh"].T
            else:
                drh = dzn @ block(W["Wh"], 2).T
                dzr = drh * hp * r * (1 - r)
                drz = np.concatenate([dzr, dzz], axis=1)
                G["Wh"][:, :2 * H] += hp.T @ drz
                G["Wh"][:, 2 * H:] += hn.T @ dzn
                dh_prev = dh_prev + drh * r + drz @ W["Wh"][:, :2 * H].T
                dhw = np.concatenate([dzr, dzz, dzn], axis=1)
            dax = np.concatenate([dzr, dzz, dzn], axis=1)
            G["Wx"] += xt.T @ dax
            if p["bias"]:
                G["bx"] += dax.sum(0)
                G["bh"] += dhw.sum(0)
            dx[:, t] = dax @ W["Wx"].T
        dh = np.zeros((N, H)) if cut(t) else dh_prev
        if cut(t):
            dc = np.zeros((N, H))
    seq = np.stack(hs[1:], axis=1)
    outputs = [seq if p["return_sequences"] else hs[-1], hs[-1]]
    return outputs, G, dx, norms
