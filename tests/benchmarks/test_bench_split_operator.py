"""One composition stage of the reference's split-operator (a potential kick, an FFT pair, the
kinetic factor) beside the bare floor of a stage, an FFT pair and two phase products on the same
grid and dtype, measured alternately in one run: their ratio says how close the stepper is to
the FFT's own limit.
Grids: the d = 4 reference's 98³, a 4-axis 48⁴, and the d = 5 reference's first grid, 88 points
on 4 axes of which two are folded (45²·88²): its stage is timed beside the bare stage on the full
88⁴ grid it stands for (``ratio``, the saving) and on an array of its own size (``ratio_same_size``:
what the cosine transforms cost over FFTs).

Skipped by default (addopts has --benchmark-skip); run with
``pytest tests/benchmarks/test_bench_split_operator.py --benchmark-only``: each grid and dtype is
timed stage by bare stage, alternately, and ``--benchmark-json`` keeps the medians and their
ratio in each benchmark's extra_info."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.fft as sfft

from harness.spectral_grid import Grid
from harness.split_operator import SplitOperator
from problems import Bosons

CASES = [(3, 98, "complex128", 0), (3, 98, "complex64", 0), (4, 48, "complex128", 0), (4, 48, "complex64", 0),
         (4, 88, "complex64", 2)]


def _state(dims: int, n: int, precision: str, folded: int):
    """ψ0 and V of the bosons' relative grid (d = dims + 1) on n points an axis, the first
    ``folded`` axes folded (even)."""
    problem = Bosons(d=dims + 1)
    grid = Grid(dims, n, 3.5, parity=(1,) * folded)
    y = np.stack(np.meshgrid(*[grid.points(a) for a in range(dims)], indexing="ij"), axis=-1)
    x = np.concatenate([np.zeros(y.shape[:-1] + (1,)), y], axis=-1)  # COM at 0: any fixed slice
    return problem, grid, problem.psi0(x).astype(precision), problem.potential(x, 0.0)


def _bare(psi: np.ndarray, phase: np.ndarray, workers: int):
    """The floor of one stage: an in-place FFT pair and two phase products."""
    sfft.fftn(psi, workers=workers, overwrite_x=True)
    np.multiply(psi, phase, out=psi)
    sfft.ifftn(psi, workers=workers, overwrite_x=True)
    np.multiply(psi, phase, out=psi)


@pytest.mark.parametrize("dims, n, precision, folded", CASES)
def test_bench_stage_beside_bare_fft_pair(benchmark, dims, n, precision, folded):
    """Each round times one 4th-order step (three stages) and then three bare stages on the
    full grid (and, folded, three on an array of the folded size), back to back, so that all
    see the same load; extra_info holds the medians per stage and their ratios (the figures to
    report, with the CPU)."""
    problem, grid, psi, v = _state(dims, n, precision, folded)
    stepper = SplitOperator(grid, lambda t: v, static=True, hbar=problem.hbar, m=problem.m, order=4,
                            dtype=precision)
    owed = stepper.step(psi, 0.0, 0.01)[0]  # fills the phase caches, as in a run
    norm = float(stepper.density(psi, 1.0).sum())  # weighted on folded axes: what the step conserves
    rng = np.random.default_rng(0)
    floors = {"bare": (n,) * dims, **({"same_size": grid.shape} if folded else {})}
    arrays = {name: (np.exp(1j * rng.standard_normal(shape)).astype(precision),
                     np.exp(-0.01j * rng.standard_normal(shape)).astype(precision)) for name, shape in floors.items()}
    times: dict[str, list[float]] = {"stage": [], **{name: [] for name in floors}}

    def side_by_side():
        nonlocal owed
        start = time.perf_counter()
        owed, _ = stepper.step(psi, 0.0, 0.01, owed=owed)
        times["stage"].append((time.perf_counter() - start) / stepper.fractions.size)
        for name, (bare_psi, phase) in arrays.items():
            start = time.perf_counter()
            for _ in range(stepper.fractions.size):
                _bare(bare_psi, phase, stepper.workers)
            times[name].append((time.perf_counter() - start) / stepper.fractions.size)

    benchmark.group = f"{dims} axes, {n} points, {precision}, {folded} folded"
    benchmark.pedantic(side_by_side, rounds=12, warmup_rounds=1)
    median = {name: float(np.median(t)) for name, t in times.items()}
    benchmark.extra_info.update(points=grid.size, full_points=n**dims, workers=stepper.workers,
                                stage_ms=median["stage"] * 1e3, bare_ms=median["bare"] * 1e3,
                                ratio=median["stage"] / median["bare"],
                                ratio_min=min(times["stage"]) / min(times["bare"]))
    if folded:
        benchmark.extra_info.update(same_size_ms=median["same_size"] * 1e3,
                                    ratio_same_size=median["stage"] / median["same_size"])
    assert float(stepper.density(psi, 1.0).sum()) == pytest.approx(norm, rel=1e-4 if precision == "complex64" else 1e-12)
