"""Samples to moments and marginals, batch by batch (harness.observables.SampleStatistics)."""

import numpy as np
import pytest

from harness.observables import SampleStatistics, prediction_from_samples


@pytest.mark.parametrize("uniform", [True, False])
def test_streamed_statistics_equal_those_of_all_samples_at_once(uniform):
    """Batches of any size give numpy's weighted moments and histograms of the whole sample,
    samples on the last edge counted in the last bin and samples outside in none."""
    rng = np.random.default_rng(3)
    edges = (np.linspace(-3, 3, 61) if uniform
             else np.sort(np.r_[-3.0, rng.uniform(-3, 3, 59), 3.0]))
    x = 1.3 * rng.standard_normal((20_000, 5)) + np.arange(5) * 0.1
    x[0, 0], x[1, 1], x[2, 2], x[3, 3] = 3.0, -3.0, 7.0, -3.0000001
    w = rng.random(len(x))
    stats = SampleStatistics(2, 5, edges)
    for lo in range(0, len(x), 3333):
        stats.add(1, x[lo:lo + 3333], w[lo:lo + 3333])
    mean, var, marg = stats.observables(1)
    p = w / w.sum()
    np.testing.assert_allclose(mean, p @ x, rtol=0, atol=1e-14)
    np.testing.assert_allclose(var, p @ (x - p @ x) ** 2, rtol=1e-12)
    hist = np.stack([np.histogram(x[:, i], bins=edges, weights=p)[0] for i in range(5)])
    np.testing.assert_allclose(marg, hist / np.diff(edges), rtol=1e-12, atol=1e-14)
    assert stats.count[1] == len(x) and stats.hist.shape == (2, 5, 60)


def test_prediction_from_samples_counts_the_fewest_samples():
    rng = np.random.default_rng(0)
    edges = np.linspace(-4, 4, 41)
    pred = prediction_from_samples(np.array([0.0, 1.0]),
                                   [rng.standard_normal((500, 3)), rng.standard_normal((300, 3))],
                                   edges)
    assert pred.n_samples == 300
    np.testing.assert_allclose(pred.marginals.sum(-1) * 0.2, 1.0, atol=1e-3)  # mass in the bins
    np.testing.assert_allclose(pred.var, 1.0, atol=0.2)
