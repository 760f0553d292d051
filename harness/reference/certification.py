"""Certification of a reference (DESIGN §6): grid runs, the box and spectrum checks, and the
refine-and-compare loop whose last difference is the stored error bound.

The base run is repeated with a finer spacing, a larger box and a smaller step (each refined; a
box and point count grown together at one spacing would prove nothing). The refined run is the
reference and its difference from the base run its error bound: the bound holds whenever the
refinement at least halves the error (measured: it cuts it 5 to 50-fold, the spatial error
falling spectrally). When the bound misses ``tol`` the refined run becomes the base and is
refined again. The box is checked at every scored time for mass in its outer layer (a periodic
grid wraps escaping mass around) and grown when needed, and the spectrum for mass near the
Nyquist wave number (a spacing too coarse) and refined when needed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.api import Prediction, Problem
from harness.observables import symmetrised
from harness.reference.errors import BoxTooSmall, NotCertified
from harness.reference.geometry import fold_parities, geometry
from harness.reference.grid_settings import GridSettings
from harness.reference.memory import check_fits, describe
from harness.split_operator import evolve

#: most mass allowed in the outer layer of the box at any scored time
EDGE_MAX = 1e-8
#: most spectral mass allowed in the outer fifth of the Nyquist range before certifying: a guard
#: against a grossly coarse grid (measured, bosons d = 4: 2.5e-4 there still gives Var to 6e-7)
TAIL_MAX = 1e-3


@dataclass
class GridRun:
    """One grid run's prediction and what it measured about its own grid (``shape``: the
    points it held per axis, folded axes at n/2 + 1)."""

    prediction: Prediction
    settings: GridSettings
    shape: list[int]
    edge_mass: float
    spectrum_tail: float
    norm_drift: float
    wall_s: float

    def summary(self) -> dict:
        """Settings and measurements as a JSON-able dict (kept in the reference's settings)."""
        return {**dataclasses.asdict(self.settings), "dx": self.settings.dx, "shape": self.shape,
                "asymmetry": self.prediction.diagnostics.get("asymmetry"),
                "edge_mass": self.edge_mass,
                "spectrum_tail": self.spectrum_tail, "norm_drift": self.norm_drift, "wall_s": self.wall_s}


def run_grid(problem: Problem, times: np.ndarray, settings: GridSettings) -> GridRun:
    """One split-operator run on the grid ``settings`` describes, observed at ``times``
    (sorted, ≥ 0), with moments and marginals on ``problem.marginal_edges()``. For identical
    particles (``Problem.exchangeable``) those of the symmetrised density
    (``observables.symmetrised``), the exact ones being equal for every coordinate (a
    projection: it can only bring them closer; with the centre of mass split off it makes each
    mean exactly 0, where complex64 rounding left ~1e-6); the largest relative spread of the
    variances before it is kept as the diagnostic ``asymmetry``."""
    start = time.perf_counter()
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or (times < 0).any() or (np.diff(times) < 0).any():
        raise ValueError("reference times must be a sorted 1-D array of times ≥ 0")
    geo = geometry(problem, settings)
    edges = problem.marginal_edges()
    k, d = times.size, problem.d
    mean, var, marg = np.empty((k, d)), np.empty((k, d)), np.empty((k, d, edges.size - 1))

    def observe(idx: int, mass: np.ndarray) -> None:
        mean[idx], var[idx], marg[idx] = geo.observe(mass, edges, float(times[idx]))

    prop = evolve(geo.psi0(), geo.grid, geo.potential, static=not problem.time_dependent, hbar=problem.hbar,
                  m=problem.m, times=times, dt=settings.dt, order=settings.order, observe=observe,
                  dtype=settings.precision)
    diagnostics = {"norm_drift": prop.norm_drift, "steps": prop.steps, "stages": prop.stages}
    if d > 1 and problem.exchangeable():  # the exact marginals are equal: average out rounding
        diagnostics["asymmetry"] = float((np.abs(var - var.mean(axis=1, keepdims=True)) / var.mean(axis=1, keepdims=True)).max())
        mean, var, marg = symmetrised(mean, var, marg)
    pred = Prediction(times, mean, var, marg, edges, diagnostics=diagnostics)
    return GridRun(pred, settings, list(geo.grid.shape), prop.edge_mass, prop.spectrum_tail, prop.norm_drift,
                   time.perf_counter() - start)


def difference(a: Prediction, b: Prediction) -> dict[str, float]:
    """The bound's three figures for ``a`` against ``b``: max |Δmean|, max |Δvar| / var_a and
    the mean over times and coordinates of the L1 distance of the marginals."""
    widths = np.diff(a.edges)
    return {"mean": float(np.abs(a.mean - b.mean).max()),
            "var": float((np.abs(a.var - b.var) / np.abs(a.var)).max()),
            "density_l1": float((np.abs(a.marginals - b.marginals) @ widths).mean())}


def certify(problem: Problem, times: np.ndarray, start: GridSettings, tol: float, max_runs: int,
            progress: Callable[[str], None] = lambda line: None):
    """Run, check the box and spectrum, refine and compare until the difference meets ``tol``;
    return the coarser run, the refined run, their difference and every run made.

    A box with edge mass above EDGE_MAX is grown, a spectrum with more than TAIL_MAX of its
    mass in the outer fifth of the Nyquist range is refined, before a certification is tried.
    Every grid is checked against the memory budget before it runs (GridTooLarge), and
    announced to ``progress`` in one line (its points, stages, memory and expected time)."""
    def fits(settings: GridSettings) -> tuple[int, ...]:
        parity = fold_parities(problem, settings)
        check_fits(problem, settings.n, settings.dims(problem.d), settings, parity)
        return parity

    def run(settings: GridSettings) -> GridRun:
        parity = fits(settings)
        progress(f"reference for {problem.name} d={problem.d}, grid run {len(runs) + 1}: "
                 f"{describe(problem, settings, settings.dims(problem.d), parity)}")
        return run_grid(problem, times, settings)

    for grid in (start, start.refined()):  # refuse before the first run, not after it
        fits(grid)
    runs: list[GridRun] = []
    runs.append(run(start))
    while len(runs) < max_runs:
        base = runs[-1]
        if base.edge_mass > EDGE_MAX:
            runs.append(run(base.settings.grown()))
            continue
        if base.spectrum_tail > TAIL_MAX:
            runs.append(run(base.settings.finer()))
            continue
        check = run(base.settings.refined())
        runs.append(check)
        bound = difference(check.prediction, base.prediction)
        scale = math.sqrt(float(np.abs(check.prediction.var).min()))
        if bound["var"] <= tol and bound["mean"] <= tol * scale:
            return base, check, bound, runs
    if runs[-1].edge_mass > EDGE_MAX:
        raise BoxTooSmall(f"{problem.name}: mass {runs[-1].edge_mass:.2e} at the edge of a box of "
                          f"half-width {runs[-1].settings.half:.3g} after {len(runs)} runs")
    last = runs[-1].settings
    raise NotCertified(f"{problem.name}: reference not certified to {tol:g} in {max_runs} runs "
                       f"(last: {last.n} points per axis, half-width {last.half:.3g}, dt {last.dt:.3g})")

