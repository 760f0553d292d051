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


def test_float32_samples_give_the_float64_statistics():
    """float32 samples (DSM's) are binned and centred in float32 and summed in float64: the same
    counts as numpy.histogram of the float64 values (none of them on a bin edge) and the
    moments to float32 rounding, with a mean of 100 standard deviations (no cancellation)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((30_000, 4)) * 0.5 + 50).astype(np.float32)
    x[0, 0], x[1, 1] = np.nan, 1e9  # counted nowhere
    edges = np.linspace(48, 52, 81)
    stats = SampleStatistics(1, 4, edges)
    for lo in range(0, len(x), 7000):
        stats.add(0, x[lo:lo + 7000])
    ok = x[:, 2:].astype(float)  # the columns without a NaN or an outlier
    mean, var, marg = stats.observables(0)
    np.testing.assert_allclose(mean[2:], ok.mean(0), rtol=1e-7)
    np.testing.assert_allclose(var[2:], ok.var(0), rtol=1e-5)
    hist = np.stack([np.histogram(x[:, i].astype(float), bins=edges)[0] for i in range(4)])
    np.testing.assert_array_equal(stats.hist[0], hist)
    assert marg.shape == (4, 80)


def test_merged_accumulators_equal_one_fed_everything():
    """Two accumulators filled with different batches (one time left empty in one of them)
    merge into what a single one fed all the batches holds."""
    rng = np.random.default_rng(1)
    edges = np.linspace(-4, 4, 33)
    batches = [rng.standard_normal((n, 3)) * s + m for n, s, m in [(500, 1, 0), (800, 2, 1), (300, 0.5, -1)]]
    one, a, b = (SampleStatistics(2, 3, edges) for _ in range(3))
    for k, x in enumerate(batches):
        one.add(0, x)
        (a if k == 1 else b).add(0, x)
    one.add(1, batches[0])
    b.add(1, batches[0])
    a.merge(b)
    for name in ("weight", "count", "mean", "m2", "hist"):
        np.testing.assert_allclose(getattr(a, name), getattr(one, name), rtol=1e-12, atol=1e-12)


def test_symmetrised_statistics_are_those_of_every_relabelling():
    """``symmetrise`` gives exactly the statistics of the samples stacked under all d! orders
    of their coordinates (the symmetrised density that a random relabelling samples)."""
    from itertools import permutations

    rng = np.random.default_rng(2)
    x = rng.standard_normal((2000, 3)) * [0.5, 1.0, 2.0] + [0.0, 1.0, -1.0]
    edges = np.linspace(-6, 6, 49)
    stats = SampleStatistics(1, 3, edges)
    stats.add(0, x)
    everything = SampleStatistics(1, 3, edges)
    everything.add(0, np.concatenate([x[:, list(p)] for p in permutations(range(3))]))
    for got, want in zip(stats.observables(0, symmetrise=True), everything.observables(0)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert not np.allclose(stats.observables(0)[1], everything.observables(0)[1])  # it did act
