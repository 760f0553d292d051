"""Metrics and the helpers that turn samples and grid densities into moments and marginals."""

import numpy as np
import pytest

from harness.api import Prediction
from harness.metrics import density_l1, noise_floor, score
from harness.observables import (bin_density, gaussian_bins, grid_observables, prediction_from_samples,
                                 relabel)
from problems import Oscillator

OSC = Oscillator(d=2, x0=0.3, p0=0.5)
TIMES = np.linspace(0, 1, 11)


def test_identical_predictions_score_zero():
    ref = OSC.exact(TIMES)
    s = score(ref, ref)
    assert all(s[k] == 0 for k in ("mean_rmse", "mean_rel_l2", "var_rel_l2", "density_l1",
                                   "paper_mean_err", "paper_var_err"))
    assert np.isnan(s["density_l1_floor"])  # not a sample-based prediction


def test_relative_errors_follow_their_definitions():
    ref = OSC.exact(TIMES)
    pred = Prediction(ref.times, ref.mean + 0.01, ref.var * 1.02, ref.marginals, ref.edges)
    s = score(pred, ref)
    assert s["var_rel_l2"] == pytest.approx(0.02, rel=1e-12)
    assert s["paper_var_err"] == pytest.approx(0.02, rel=1e-12)
    assert s["mean_rmse"] == pytest.approx(0.01, rel=1e-12)
    on = TIMES > 0
    assert s["mean_rel_l2"] == pytest.approx(0.01 * np.sqrt(20) / np.linalg.norm(ref.mean[on]))


def test_mean_rel_l2_is_nan_for_a_zero_reference_mean():
    ref = Prediction(TIMES, np.zeros((11, 2)), np.full((11, 2), 0.05),
                     gaussian_bins(np.zeros((11, 2)), np.full((11, 2), 0.05), OSC.marginal_edges()),
                     OSC.marginal_edges())
    pred = Prediction(TIMES, ref.mean + 1e-3, ref.var, ref.marginals, ref.edges)
    assert np.isnan(score(pred, ref)["mean_rel_l2"])


def test_density_l1_of_two_gaussians_matches_the_analytic_value():
    # ∫|N(0,1) − N(δ,1)| = 2(2Φ(δ/2) − 1)
    from scipy.special import ndtr
    edges = np.linspace(-10, 10, 4001)
    a = gaussian_bins(np.zeros(1), np.ones(1), edges)
    b = gaussian_bins(np.full(1, 0.5), np.ones(1), edges)
    assert density_l1(a, b, edges) == pytest.approx(2 * (2 * ndtr(0.25) - 1), rel=1e-5)


def test_noise_floor_matches_exact_samples():
    """The floor is what histograms of n exact samples score, and it shrinks like 1/√n."""
    ref = OSC.exact(TIMES)
    mean, var = ref.mean, ref.var
    rng = np.random.default_rng(5)
    for n in (1000, 16000):
        samples = mean[:, None, :] + np.sqrt(var)[:, None, :] * rng.standard_normal((11, n, 2))
        pred = prediction_from_samples(TIMES, samples, ref.edges)
        s = score(pred, ref)
        assert s["density_l1"] == pytest.approx(s["density_l1_floor"], rel=0.1)
    assert noise_floor(ref, 16000) == pytest.approx(noise_floor(ref, 1000) / 4, rel=0.15)


def test_sample_and_grid_helpers_agree_with_exact_gaussians():
    edges = OSC.marginal_edges()
    x = np.linspace(-3, 3, 301)
    rho = np.exp(-((x - 0.2) ** 2) / (2 * 0.09)) / np.sqrt(2 * np.pi * 0.09)
    exact = gaussian_bins(np.array([0.2]), np.array([0.09]), edges)[0]
    assert np.abs(bin_density(x, rho, edges) - exact).max() < 1e-6
    density = rho[:, None] * rho[None, :]
    mean, var, marg = grid_observables([x, x], density, edges)
    np.testing.assert_allclose(mean, 0.2, atol=1e-10)
    np.testing.assert_allclose(var, 0.09, rtol=1e-8)
    assert np.abs(marg - exact).max() < 1e-6


def test_relabel_permutes_each_sample_and_symmetrises_the_marginals():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 20_000, 2)) * np.array([0.5, 2.0])  # two unequal coordinates
    y = relabel(x, rng)
    np.testing.assert_array_equal(np.sort(y, axis=-1), np.sort(x, axis=-1))
    var = y.var(axis=1)
    np.testing.assert_allclose(var[:, 0], var[:, 1], rtol=0.05)
    np.testing.assert_allclose(var.mean(), (0.25 + 4.0) / 2, rtol=0.05)
    one = x[..., :1]
    assert relabel(one, rng) is one  # one coordinate: returned as it is, no work
