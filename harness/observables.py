"""Turn what a solver computes (samples, or a density on a grid) into a Prediction's moments and
marginals on the problem's standard bins, identically for every solver."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.special import ndtr

from harness.api import Prediction


class SampleStatistics:
    """Per-coordinate moments and binned marginals of samples at K times, accumulated batch by
    batch: memory O(K·d·B) whatever the number of samples (a 10⁵-path prediction at d = 100
    never holds its paths). Moments merge by Chan's parallel update (stable for any batch size);
    the histogram bins every coordinate in one vectorised pass."""

    def __init__(self, n_times: int, d: int, edges: np.ndarray):
        self.edges = np.asarray(edges, dtype=float)
        bins = self.edges.size - 1
        self.weight = np.zeros(n_times)  # total weight seen at each time
        self.count = np.zeros(n_times, dtype=np.int64)  # samples seen at each time
        self.mean = np.zeros((n_times, d))
        self.m2 = np.zeros((n_times, d))  # Σ w (x − mean)², merged
        self.hist = np.zeros((n_times, d, bins))
        self._uniform = bool(np.allclose(np.diff(self.edges), (self.edges[-1] - self.edges[0]) / bins,
                                         rtol=1e-12, atol=0))

    def add(self, k: int, samples: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Add samples (n, d) of time index k (optionally weighted, e.g. importance sampling)."""
        x = np.asarray(samples, dtype=float)
        n, d = x.shape
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        total = w.sum()
        if n == 0 or total <= 0:
            return
        mean = (w @ x) / total
        m2 = w @ (x - mean) ** 2
        seen = self.weight[k]
        delta = mean - self.mean[k]
        self.mean[k] += delta * (total / (seen + total))
        self.m2[k] += m2 + delta**2 * (seen * total / (seen + total))
        self.weight[k] += total
        self.count[k] += n
        self.hist[k] += self._histogram(x, w)

    def _histogram(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Weight per (coordinate, bin) in one bincount; a sample on the last edge counts in the
        last bin and samples outside the edges count nowhere (as numpy.histogram)."""
        bins, lo, hi = self.edges.size - 1, self.edges[0], self.edges[-1]
        if self._uniform:  # the standard bins: one multiply instead of a binary search
            idx = np.floor((x - lo) * (bins / (hi - lo))).astype(np.intp)
        else:
            idx = np.searchsorted(self.edges, x, side="right") - 1
        idx[x == hi] = bins - 1
        inside = (idx >= 0) & (idx < bins)
        flat = (np.arange(x.shape[1]) * bins + idx)[inside]
        weights = np.broadcast_to(w[:, None], x.shape)[inside]
        return np.bincount(flat, weights=weights, minlength=x.shape[1] * bins).reshape(-1, bins)

    def observables(self, k: int):
        """(mean (d,), var (d,), marginals (d, B)) at time index k."""
        return (self.mean[k], self.m2[k] / self.weight[k],
                self.hist[k] / self.weight[k] / np.diff(self.edges))

    def prediction(self, times, diagnostics=None) -> Prediction:
        """The Prediction at ``times`` (one per time index), with the fewest samples any time
        had as its ``n_samples``."""
        stats = [self.observables(k) for k in range(len(times))]
        return Prediction(times, np.stack([s[0] for s in stats]), np.stack([s[1] for s in stats]),
                          np.stack([s[2] for s in stats]), self.edges,
                          n_samples=int(self.count.min()), diagnostics=diagnostics or {})


def sample_observables(samples: np.ndarray, edges: np.ndarray, weights: np.ndarray | None = None):
    """Per-coordinate mean, variance and binned density of samples (n, d), optionally weighted
    (importance sampling: ``weights`` are normalised here).

    Bins hold the weight falling in them over the bin width, so mass outside the edges is lost,
    as for an exact density."""
    samples = np.asarray(samples, dtype=float)
    stats = SampleStatistics(1, samples.shape[1], edges)
    stats.add(0, samples, weights)
    return stats.observables(0)


def relabel(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each sample (last axis: coordinates) with its coordinates in a random order: samples of
    the symmetrised density, the physical one for identical particles (Problem.exchangeable)."""
    if samples.shape[-1] < 2:  # one coordinate: nothing to relabel
        return samples
    order = np.argsort(rng.random(samples.shape), axis=-1)
    return np.take_along_axis(samples, order, axis=-1)


def prediction_from_samples(times, samples_at, edges, diagnostics=None) -> Prediction:
    """A Prediction from samples per time: ``samples_at`` is (K, n, d) or a list of (n_k, d)."""
    stats = SampleStatistics(len(times), np.shape(samples_at[0])[-1], edges)
    for k, samples in enumerate(samples_at):
        stats.add(k, samples)
    return stats.prediction(times, diagnostics)


def bin_density(x: np.ndarray, density: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Average over each bin of a 1-D density sampled at the points x (zero outside them).

    The cubic spline through the samples is integrated exactly over each bin: fourth order in
    the spacing, so bins finer than the grid are not limited by a midpoint rule."""
    antiderivative = CubicSpline(x, density).antiderivative()
    at_edges = antiderivative(np.clip(edges, x[0], x[-1]))
    return np.diff(at_edges) / np.diff(edges)


def grid_observables(axes: list[np.ndarray], density: np.ndarray, edges: np.ndarray):
    """Per-coordinate mean, variance and binned marginal of a density on a product grid: the
    tuple (mean (d,), var (d,), marginals (d, B)), one time's row of a Prediction.

    ``density`` has one axis per coordinate (evenly spaced points ``axes[i]``) and is
    normalised so that its sum times the cell volume is the mass on the grid; the moments are
    those of the normalised marginals, and the marginals (cubic splines integrated exactly over
    each bin of ``edges``) keep the mass on the grid, so mass lost off the grid shows up."""
    d = density.ndim
    cell = np.prod([a[1] - a[0] for a in axes])
    mean, var, marg = np.empty(d), np.empty(d), np.empty((d, edges.size - 1))
    for i, x in enumerate(axes):
        others = tuple(j for j in range(d) if j != i)
        rho = density.sum(axis=others) * cell / (x[1] - x[0])
        w = rho / rho.sum()
        mean[i] = w @ x
        var[i] = w @ (x - mean[i]) ** 2
        marg[i] = bin_density(x, rho, edges)
    return mean, var, marg


def gaussian_bins(mean: np.ndarray, var: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Exact bin averages of independent Gaussian marginals: mean, var (..., d) -> (..., d, B)."""
    z = (edges - mean[..., None]) / np.sqrt(var)[..., None]
    return np.diff(ndtr(z), axis=-1) / np.diff(edges)
