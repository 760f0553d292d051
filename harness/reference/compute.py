"""The entry point: ``compute_reference`` gives the exact solution where the problem has one,
else a certified split-operator grid run, read from or written to the disk cache."""

from __future__ import annotations

import dataclasses
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.api import Prediction, Problem
from harness.reference import cache
from harness.reference.certification import EDGE_MAX, certify
from harness.reference.grid_settings import GridSettings, default_tol, initial_settings
from harness.reference.memory import MIN_POINTS, check_fits
from harness.split_operator import EDGE_LAYER

#: bump when a change alters the numbers a reference produces (it invalidates the disk cache)
ALGORITHM = "split-operator/3"


@dataclass
class Reference:
    """Moments and marginals at the requested times on ``problem.marginal_edges()``, with the
    certified error ``bound`` (``mean``: max abs diff, ``var``: max relative diff,
    ``density_l1``: mean L1 diff of the marginals; zeros when exact), the worst mass fraction in
    the outer layer of the box over the scored times, the grid settings, and the wall time."""

    prediction: Prediction
    kind: str  # "exact" or "split-operator"
    bound: dict[str, float]
    edge_mass: float
    settings: dict
    wall_s: float


def compute_reference(problem: Problem, times: np.ndarray, cache_dir: pathlib.Path | None = None, *,
                      full_grid: bool = False, tol: float | None = None, start: GridSettings | None = None,
                      max_runs: int = 6, progress: Callable[[str], None] = lambda line: None) -> Reference:
    """The reference at ``times``: ``problem.exact`` when it has one, else a certified grid run
    that differs from its coarser twin by at most ``tol`` (relative, in every variance; by
    default 1e-6, 1e-5 on grids of 4 or more axes: ``default_tol``).

    ``full_grid`` forces the plain grid over all d coordinates; ``start`` overrides the first
    grid (otherwise chosen from the physics); at most ``max_runs`` grid runs are made. A grid
    past the memory budget raises GridTooLarge before anything of the grid's size (or of
    ψ0's samples, 20 000 × d) is made; a cache entry that cannot be read is recomputed.
    ``progress`` receives a line as each grid run starts (they can take minutes)."""
    begin = time.perf_counter()
    times = np.asarray(times, dtype=float)
    exact = problem.exact(times)
    if exact is not None:
        return Reference(exact, "exact", {"mean": 0.0, "var": 0.0, "density_l1": 0.0}, 0.0,
                         {"source": "exact"}, time.perf_counter() - begin)
    reduced = not full_grid and problem.d > 1 and problem.separable_com() is not None
    dims = problem.d - 1 if reduced else problem.d
    check_fits(problem, MIN_POINTS, dims)
    tol = default_tol(dims) if tol is None else tol
    start = start or initial_settings(problem, times, reduced, tol)
    spec = {"problem": f"{type(problem).__module__}.{type(problem).__qualname__}", "params": problem.params(),
            "times": [float(t) for t in times], "tol": tol, "start": dataclasses.asdict(start),
            "max_runs": max_runs, "algorithm": ALGORITHM}
    key = cache.cache_key(spec)
    cached = cache.load(cache_dir, key) if cache_dir is not None else None
    if cached is not None:
        prediction, meta = cached
        return Reference(prediction, meta["kind"], meta["bound"], meta["edge_mass"], meta["settings"],
                         meta["wall_s"])
    base, check, bound, runs = certify(problem, times, start, tol, max_runs, progress)
    settings = {"algorithm": ALGORITHM, "tol": tol, "reference": check.summary(), "coarser": base.summary(),
                "runs": [r.summary() for r in runs], "edge_layer": EDGE_LAYER, "edge_max": EDGE_MAX}
    ref = Reference(check.prediction, "split-operator", bound, check.edge_mass, settings,
                    time.perf_counter() - begin)
    if cache_dir is not None:
        cache.save(cache_dir, key, ref.prediction,
                   {"kind": ref.kind, "bound": ref.bound, "edge_mass": ref.edge_mass, "settings": ref.settings,
                    "wall_s": ref.wall_s})
    return ref
