"""The reference's memory budget, checked before any grid-sized array is made: a grid that
cannot fit raises GridTooLarge, whatever d (the size is computed in logarithms, never as n^d),
saying what it would need in memory and, from the measured cost of a stage, in time."""

from __future__ import annotations

import math
import os

import numpy as np

from harness.api import Problem
from harness.reference.errors import GridTooLarge
from harness.reference.grid_settings import GridSettings
from harness.spectral_grid import kept_points
from harness.split_operator import composition, phase_arrays

#: fewest points per axis of any grid run (none resolves a state with fewer): the floor checked
#: before the first grid is even chosen, which needs samples of ψ0 (n × d numbers)
MIN_POINTS = 8
#: seconds per grid point per composition stage (an FFT pair and two phase products), measured
#: on 2 cores of an AMD EPYC (AVX512) with 4-axis grids of 48⁴–88⁴ points
SECONDS_PER_POINT_STAGE = {"complex64": 30e-9, "complex128": 50e-9}
#: the cost of a point of a folded grid over a plain one's: its cosine transforms take ~2× an
#: FFT's work a point on their axes (bosons d = 5: 38 ns a point a stage, observations included,
#: on 2 cores shared with another job; 21–27 ns for the bare stage on a quiet machine)
FOLDED_COST = 1.3


def bytes_per_point(precision: str, order: int) -> int:
    """Bytes held per grid point during a run: ψ, the cached potential phases, V, the float64
    density, and 4 for what is done a slab at a time (measured: 37.7 B a point in all for an
    80⁴ complex64 run, where this gives 40)."""
    item = np.dtype(precision).itemsize
    return item * (1 + phase_arrays(order)) + item // 2 + 8 + 4


def memory_budget_gb() -> float:
    """The reference's memory budget: $QDBENCH_REFERENCE_GB, default 8 GB."""
    return float(os.environ.get("QDBENCH_REFERENCE_GB", 8))


def _scaled(log10_value: float) -> str:
    """A figure given by its log10, readable even past the float range."""
    return f"{10**log10_value:.3g}" if log10_value < 300 else f"10^{math.floor(log10_value)}"


def _shape(n: int, dims: int, parity: tuple[int, ...]) -> str:
    """The grid's points as a product, folded axes first: 56^2·110^2."""
    sizes = [kept_points(n, p) for p in parity]
    counts = [(size, sizes.count(size)) for size in dict.fromkeys(sizes)] + [(n, dims - len(parity))]
    return "·".join(f"{size}^{count}" for size, count in counts if count)


def _log10_points(n: int, dims: int, parity: tuple[int, ...]) -> float:
    return (dims - len(parity)) * math.log10(n) + sum(math.log10(kept_points(n, p)) for p in parity)


def _log10_hours(problem: Problem, settings: GridSettings, log10_points: float, folded: bool) -> tuple[float, int, float]:
    """log10 of the hours a run takes, its stages and the cost of a point a stage (seconds)."""
    stages = math.ceil(problem.T / settings.dt - 1e-9) * composition(settings.order).size
    cost = SECONDS_PER_POINT_STAGE[settings.precision] * (FOLDED_COST if folded else 1.0)
    return log10_points + math.log10(stages * cost / 3600), stages, cost


def describe(problem: Problem, settings: GridSettings, dims: int, parity: tuple[int, ...]) -> str:
    """One line on a grid run about to start: its points, stages, memory and expected time."""
    log10_points = _log10_points(settings.n, dims, parity)
    gb = 10 ** (log10_points - 9) * bytes_per_point(settings.precision, settings.order)
    log10_hours, stages, _ = _log10_hours(problem, settings, log10_points, bool(parity))
    return (f"{_shape(settings.n, dims, parity)} points, {stages} stages: {gb:.2g} GB, "
            f"about {_scaled(log10_hours + math.log10(60))} min on 2 CPU cores")


def check_fits(problem: Problem, n: int, dims: int, settings: GridSettings | None = None,
               parity: tuple[int, ...] = ()) -> None:
    """Raise GridTooLarge when a grid run of ``n``^``dims`` points with ``settings`` passes the
    budget (the first axes folded with ``parity``, ``kept_points`` each); without ``settings`` it is the MIN_POINTS
    floor, at the fewest bytes a point any run takes (the message then says "at least")."""
    per_point = (bytes_per_point(settings.precision, settings.order) if settings
                 else bytes_per_point("complex64", 2))
    log10_points = _log10_points(n, dims, parity)
    log10_need = log10_points + math.log10(per_point)
    budget = memory_budget_gb()
    if budget > 0 and log10_need <= math.log10(budget) + 9:
        return
    least = "" if settings else "at least "
    need = f"{least}{_scaled(log10_need - 9)} GB"
    if settings:
        hours, stages, cost = _log10_hours(problem, settings, log10_points, bool(parity))
        need += f" and about {_scaled(hours)} h ({stages} stages at {cost * 1e9:.0f} ns a point, 2 CPU cores)"
    raise GridTooLarge(f"no certified reference for {problem.name} d={problem.d}: its grid of {least}"
                       f"{_shape(n, dims, parity)} points needs {need}, budget {budget:g} GB (QDBENCH_REFERENCE_GB)")
