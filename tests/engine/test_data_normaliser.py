"""Normalisation: statistics per feature, per sequence feature and per image channel; in place; JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.data import Dataset, Normaliser, split_dataset
from engine.errors import DataError


def test_normaliser_fitted_on_train_only_and_round_trips_through_json():
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(5.0, 2.0, 400), rng.normal(-3.0, 0.5, 400), np.full(400, 7.0)]
    ds = Dataset(X, (X[:, 0] > 5).astype(np.int64), "classification", "n", ["a", "b", "c"], ["lo", "hi"])
    train, val, _ = split_dataset(ds, 0.25)
    norm = Normaliser.fit(train.X)
    assert norm.mean.shape == (3,)
    Z = norm.apply(train.X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z[:, :2].mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(Z[:, :2].std(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(Z[:, 2], 0.0)  # constant column: std 1, no division by zero
    assert norm.std[2] == 1.0
    np.testing.assert_allclose(norm.mean[:2], train.X[:, :2].astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.std[:2], train.X[:, :2].astype(np.float64).std(axis=0), rtol=1e-12)
    assert not np.allclose(norm.mean, Normaliser.fit(X).mean, rtol=0, atol=1e-9)
    assert abs(norm.apply(val.X)[:, 0].mean()) > 1e-6  # val is not re-centred on its own mean
    back = Normaliser.from_json(json.loads(json.dumps(norm.to_json())))
    np.testing.assert_array_equal(back.apply(val.X), norm.apply(val.X))
    assert norm.apply(val.X.astype(np.float64)).dtype == np.float64  # predict keeps float64 input exact


def test_image_statistics_are_per_channel_and_broadcast_against_the_example():
    rng = np.random.default_rng(1)
    X = (rng.normal(size=(50, 3, 4, 5)) * [[[2.0]], [[0.5]], [[1.0]]] + [[[10.0]], [[-1.0]], [[0.0]]])
    X = X.astype(np.float32)
    norm = Normaliser.fit(X)
    assert norm.mean.shape == norm.std.shape == (3, 1, 1)
    want_mean = X.astype(np.float64).transpose(1, 0, 2, 3).reshape(3, -1).mean(axis=1)
    want_std = X.astype(np.float64).transpose(1, 0, 2, 3).reshape(3, -1).std(axis=1)
    np.testing.assert_allclose(norm.mean[:, 0, 0], want_mean, rtol=1e-12)
    np.testing.assert_allclose(norm.std[:, 0, 0], want_std, rtol=1e-12)
    Z = norm.apply(X)
    for c in range(3):
        assert abs(Z[:, c].mean()) < 1e-5 and Z[:, c].std() == pytest.approx(1.0, rel=1e-5)
    stored = json.loads(json.dumps(norm.to_json()))
    assert np.array(stored["mean"]).shape == (3, 1, 1)  # what meta.json and the exporters read
    np.testing.assert_array_equal(Normaliser.from_json(stored).apply(X), Z)
    with pytest.raises(DataError, match="shape"):
        norm.apply(np.zeros((3, 4), np.float32))
    with pytest.raises(DataError, match="shape"):
        norm.apply(np.zeros((3, 2, 4, 5), np.float32))


def test_sequence_statistics_are_per_feature_shared_over_time():
    rng = np.random.default_rng(2)
    X = (rng.normal(size=(40, 7, 2)) * [3.0, 0.1] + [1.0, 5.0]).astype(np.float32)
    norm = Normaliser.fit(X)
    assert norm.mean.shape == (1, 2)
    np.testing.assert_allclose(norm.mean[0], X.reshape(-1, 2).astype(np.float64).mean(axis=0), rtol=1e-12)
    Z = norm.apply(X)
    np.testing.assert_allclose(Z.reshape(-1, 2).mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(Z.reshape(-1, 2).std(axis=0), 1.0, rtol=1e-5)


def test_old_per_position_image_statistics_still_apply():
    """Model files written before per-channel statistics store one mean/std per pixel."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 1, 2, 2))
    old = {"mean": X.mean(axis=0).tolist(), "std": X.std(axis=0).tolist()}
    norm = Normaliser.from_json(old)
    assert norm.mean.shape == (1, 2, 2)
    np.testing.assert_allclose(norm.apply(X), (X - X.mean(axis=0)) / X.std(axis=0), rtol=1e-12)


def test_apply_in_place_rewrites_the_array_without_a_copy():
    X = np.random.default_rng(4).normal(3.0, 2.0, size=(64, 1, 4, 4)).astype(np.float32)
    want = Normaliser.fit(X).apply(X)
    norm = Normaliser.fit(X)
    out = norm.apply_(X)
    assert out is X
    np.testing.assert_allclose(X, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(DataError, match="float32"):
        norm.apply_(np.zeros((2, 1, 4, 4), np.int64))


def test_fitting_refuses_non_finite_features():
    X = np.zeros((10, 1, 2, 2), np.float32)
    X[7, 0, 1, 1] = np.inf
    with pytest.raises(DataError, match="NaN or infinity"):
        Normaliser.fit(X)


@pytest.mark.parametrize("bad", [
    None, [], {"mean": [0.0]}, {"mean": [0.0], "std": [0.0]}, {"mean": [0.0, 1.0], "std": [1.0]},
    {"mean": ["a"], "std": [1.0]}, {"mean": [float("nan")], "std": [1.0]}, {"mean": [], "std": []},
    {"mean": 0.0, "std": 1.0}, {"mean": [[0.0], [1.0, 2.0]], "std": [1.0]},
])
def test_normaliser_from_json_refuses_malformed_statistics(bad):
    with pytest.raises(DataError):
        Normaliser.from_json(bad)
