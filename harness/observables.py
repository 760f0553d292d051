"""Turn what a solver computes (samples, or a density on a grid) into a Prediction's moments and
marginals on the problem's standard bins, identically for every solver."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.special import ndtr

from harness.api import Prediction


def sample_observables(samples: np.ndarray, edges: np.ndarray, weights: np.ndarray | None = None):
    """Per-coordinate mean, variance and binned density of samples (n, d), optionally weighted
    (importance sampling: ``weights`` are normalised here).

    Bins hold the weight falling in them over the bin width, so mass outside the edges is lost,
    as for an exact density."""
    samples = np.asarray(samples, dtype=float)
    n, d = samples.shape
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
    mean = w @ samples
    var = w @ (samples - mean) ** 2
    widths = np.diff(edges)
    marg = np.stack([np.histogram(samples[:, i], bins=edges, weights=w)[0] / widths for i in range(d)])
    return mean, var, marg


def relabel(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each sample (last axis: coordinates) with its coordinates in a random order: samples of
    the symmetrised density, the physical one for identical particles (Problem.exchangeable)."""
    if samples.shape[-1] < 2:  # one coordinate: nothing to relabel
        return samples
    order = np.argsort(rng.random(samples.shape), axis=-1)
    return np.take_along_axis(samples, order, axis=-1)


def prediction_from_samples(times, samples_at, edges, diagnostics=None) -> Prediction:
    """A Prediction from samples per time: ``samples_at`` is (K, n, d) or a list of (n_k, d)."""
    stats = [sample_observables(s, edges) for s in samples_at]
    return Prediction(
        times=times,
        mean=np.stack([s[0] for s in stats]),
        var=np.stack([s[1] for s in stats]),
        marginals=np.stack([s[2] for s in stats]),
        edges=edges,
        n_samples=min(len(s) for s in samples_at),
        diagnostics=diagnostics or {},
    )


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
