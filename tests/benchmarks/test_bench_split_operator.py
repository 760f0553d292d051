"""One split-operator step of the reference (4th-order triple jump: three Strang stages, each a
potential kick, a forward FFT, a kinetic factor and an inverse FFT) for interacting bosons at
d = 2 on 100² points and d = 4 on 32⁴ points, beside the bare FFT pair at the same sizes: the
step's time over three FFT pairs says how close it is to the FFT's own limit.

Skipped by default (addopts has --benchmark-skip); run with
``pytest tests/benchmarks/test_bench_split_operator.py --benchmark-only``."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sfft

from harness.split_operator import Grid, SplitOperator
from problems import Bosons

SIZES = [(2, 100), (4, 32)]


def _state(d: int, n: int):
    problem = Bosons(d=d)
    lo, hi = problem.box
    grid = Grid(d, n, (hi - lo) / 2)
    x = np.stack(np.meshgrid(*[grid.axis()] * d, indexing="ij"), axis=-1)
    return problem, grid, problem.psi0(x), problem.potential(x, 0.0)


@pytest.mark.parametrize("d, n", SIZES)
def test_bench_split_operator_step(benchmark, d, n):
    problem, grid, psi, v = _state(d, n)
    stepper = SplitOperator(grid, lambda t: v, static=True, hbar=problem.hbar, m=problem.m, order=4)
    state = {"psi": psi}

    def step():
        state["psi"], _ = stepper.step(state["psi"], 0.0, 0.01)

    norm = np.vdot(psi, psi).real
    step()  # fills the phase cache, as every step after the first finds it
    benchmark.pedantic(step, rounds=20, warmup_rounds=2)
    benchmark.extra_info["fft_pairs_per_step"] = stepper.fractions.size
    assert np.vdot(state["psi"], state["psi"]).real == pytest.approx(norm, rel=1e-12)


@pytest.mark.parametrize("d, n", SIZES)
def test_bench_fft_pair(benchmark, d, n):
    _, _, psi, _ = _state(d, n)
    state = {"psi": psi.astype(np.complex128)}

    def pair():
        state["psi"] = sfft.ifftn(sfft.fftn(state["psi"], workers=-1, overwrite_x=True),
                                  workers=-1, overwrite_x=True)

    benchmark.pedantic(pair, rounds=20, warmup_rounds=2)
