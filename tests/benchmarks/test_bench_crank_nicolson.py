"""One Crank–Nicolson step (potential half-steps around the per-axis tridiagonal solves) for
interacting bosons at d = 2 on 100² points (the paper's grid; LAPACK path) and d = 4 on 32⁴
points (numpy Thomas sweep).

Skipped by default (addopts has --benchmark-skip); run with
``pytest tests/benchmarks/test_bench_crank_nicolson.py --benchmark-only``."""

from __future__ import annotations

import numpy as np
import pytest

from problems import Bosons
from solvers.crank_nicolson import CNKinetic, strang_step


@pytest.mark.parametrize("d, n", [(2, 100), (4, 32)])
def test_bench_cn_step(benchmark, d, n):
    problem, tau = Bosons(d=d), 1e-3
    a, b = problem.box
    h = (b - a) / (n + 1)
    x = a + h * np.arange(1, n + 1)
    grid = np.stack(np.meshgrid(*[x] * d, indexing="ij"), axis=-1)
    shape = (n,) * d + (1,)
    psi = problem.psi0(grid).reshape(shape)
    phase = np.exp(-0.5j * tau / problem.hbar * problem.potential(grid, 0.0)).reshape(shape)
    kinetic = CNKinetic(n, h, tau, problem.hbar, problem.m, n ** (d - 1))
    work = np.empty_like(psi)
    norm = np.vdot(psi, psi).real
    benchmark.pedantic(strang_step, args=(psi, phase, kinetic, work), rounds=20, warmup_rounds=2)
    assert np.vdot(psi, psi).real == pytest.approx(norm, rel=1e-12)
