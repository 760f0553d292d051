"""One composition stage of the reference's split-operator (a potential kick, an FFT pair, the
kinetic factor) beside the bare floor of a stage, an FFT pair and two phase products on the same
grid and dtype, measured alternately in one run: their ratio says how close the stepper is to
the FFT's own limit.
Grids: the d = 4 reference's 98³ and a 4-axis 48⁴ (the d = 5 reduced grid's shape).

Skipped by default (addopts has --benchmark-skip); run with
``pytest tests/benchmarks/test_bench_split_operator.py --benchmark-only``: each grid and dtype is
timed stage by bare stage, alternately, and ``--benchmark-json`` keeps the medians and their
ratio in each benchmark's extra_info."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.fft as sfft

from harness.split_operator import Grid, SplitOperator
from problems import Bosons

CASES = [(3, 98, "complex128"), (3, 98, "complex64"), (4, 48, "complex128"), (4, 48, "complex64")]


def _state(dims: int, n: int, precision: str):
    """ψ0 and V of the bosons' relative grid (d = dims + 1) on n points an axis."""
    problem = Bosons(d=dims + 1)
    grid = Grid(dims, n, 3.5)
    y = np.stack(np.meshgrid(*[grid.axis()] * dims, indexing="ij"), axis=-1)
    x = np.concatenate([np.zeros(y.shape[:-1] + (1,)), y], axis=-1)  # COM at 0: any fixed slice
    return problem, grid, problem.psi0(x).astype(precision), problem.potential(x, 0.0)


def _bare(psi: np.ndarray, phase: np.ndarray, workers: int):
    """The floor of one stage: an in-place FFT pair and two phase products."""
    sfft.fftn(psi, workers=workers, overwrite_x=True)
    np.multiply(psi, phase, out=psi)
    sfft.ifftn(psi, workers=workers, overwrite_x=True)
    np.multiply(psi, phase, out=psi)


@pytest.mark.parametrize("dims, n, precision", CASES)
def test_bench_stage_beside_bare_fft_pair(benchmark, dims, n, precision):
    """Each round times one 4th-order step (three stages) and then three bare stages on a copy
    of the same ψ, back to back, so that both see the same load; extra_info holds the medians
    per stage and their ratio (the figure to report, with the CPU)."""
    problem, grid, psi, v = _state(dims, n, precision)
    stepper = SplitOperator(grid, lambda t: v, static=True, hbar=problem.hbar, m=problem.m, order=4,
                            dtype=precision)
    owed = stepper.step(psi, 0.0, 0.01)[0]  # fills the phase caches, as in a run
    bare_psi, phase = psi.copy(), np.exp(-0.01j * v).astype(precision)
    norm = float(np.vdot(psi, psi).real)
    times: dict[str, list[float]] = {"stage": [], "bare": []}

    def side_by_side():
        nonlocal owed
        start = time.perf_counter()
        owed, _ = stepper.step(psi, 0.0, 0.01, owed=owed)
        middle = time.perf_counter()
        for _ in range(stepper.fractions.size):
            _bare(bare_psi, phase, stepper.workers)
        times["stage"].append((middle - start) / stepper.fractions.size)
        times["bare"].append((time.perf_counter() - middle) / stepper.fractions.size)

    benchmark.group = f"{dims} axes, {n} points, {precision}"
    benchmark.pedantic(side_by_side, rounds=12, warmup_rounds=1)
    stage, bare = float(np.median(times["stage"])), float(np.median(times["bare"]))
    benchmark.extra_info.update(points=grid.n**dims, workers=stepper.workers, stage_ms=stage * 1e3,
                                bare_ms=bare * 1e3, ratio=stage / bare,
                                ratio_min=min(times["stage"]) / min(times["bare"]))
    assert float(np.vdot(psi, psi).real) == pytest.approx(norm, rel=1e-4 if precision == "complex64" else 1e-12)
