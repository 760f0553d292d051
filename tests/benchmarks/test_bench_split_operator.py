"""One composition stage of the reference's split-operator (a potential kick, an FFT pair, the
kinetic factor) beside the bare floor of a stage, an FFT pair and two phase products on the same
grid and dtype: the ratio of the two says how close the stepper is to the FFT's own limit.
Grids: the d = 4 reference's 98³ and a 4-axis 48⁴ (the d = 5 reduced grid's shape).

Skipped by default (addopts has --benchmark-skip); run with
``pytest tests/benchmarks/test_bench_split_operator.py --benchmark-only``: each grid and dtype is
a benchmark group, so the table sets the two side by side (min and median per call)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sfft

from harness.split_operator import Grid, SplitOperator, fft_workers
from problems import Bosons

CASES = [(3, 98, "complex128"), (3, 98, "complex64"), (4, 48, "complex128"), (4, 48, "complex64")]


def _state(dims: int, n: int, precision: str):
    """ψ0 and V of the bosons' relative grid (d = dims + 1) on n points an axis."""
    problem = Bosons(d=dims + 1)
    grid = Grid(dims, n, 3.5)
    y = np.stack(np.meshgrid(*[grid.axis()] * dims, indexing="ij"), axis=-1)
    x = np.concatenate([np.zeros(y.shape[:-1] + (1,)), y], axis=-1)  # COM at 0: any fixed slice
    return problem, grid, problem.psi0(x).astype(precision), problem.potential(x, 0.0)


@pytest.mark.parametrize("dims, n, precision", CASES)
def test_bench_stage(benchmark, dims, n, precision):
    problem, grid, psi, v = _state(dims, n, precision)
    stepper = SplitOperator(grid, lambda t: v, static=True, hbar=problem.hbar, m=problem.m, order=4,
                            dtype=precision)
    owed = {"coef": stepper.step(psi, 0.0, 0.01)[0]}  # fills the phase caches, as in a run

    def step():
        owed["coef"], _ = stepper.step(psi, 0.0, 0.01, owed=owed["coef"])

    norm = float(np.vdot(psi, psi).real)
    benchmark.group = f"{dims} axes, {n} points, {precision}"
    benchmark.extra_info.update(stages_per_call=stepper.fractions.size, points=grid.n**dims,
                                workers=stepper.workers)
    benchmark.pedantic(step, rounds=10, warmup_rounds=1)
    # the per-stage time is the per-call time / stages_per_call
    assert float(np.vdot(psi, psi).real) == pytest.approx(norm, rel=1e-5 if precision == "complex64" else 1e-12)


@pytest.mark.parametrize("dims, n, precision", CASES)
def test_bench_fft_pair_and_two_phases(benchmark, dims, n, precision):
    _, grid, psi, v = _state(dims, n, precision)
    phase = np.exp(-0.01j * v).astype(precision)
    workers = fft_workers()

    def stages():  # as many bare stages as the 4th-order step has
        for _ in range(3):
            sfft.fftn(psi, workers=workers, overwrite_x=True)
            np.multiply(psi, phase, out=psi)
            sfft.ifftn(psi, workers=workers, overwrite_x=True)
            np.multiply(psi, phase, out=psi)

    benchmark.group = f"{dims} axes, {n} points, {precision}"
    benchmark.extra_info.update(stages_per_call=3, points=grid.n**dims, workers=workers)
    benchmark.pedantic(stages, rounds=10, warmup_rounds=1)
