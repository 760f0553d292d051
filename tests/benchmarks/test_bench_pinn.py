"""One PINN training epoch for 2 bosons (fresh collocation points, residual through the
forward-mode jet, backward, Adam step) at the quick and paper presets, with its FLOP count
(torch's FlopCounterMode: matmuls of the forward jet and of the backward pass) set against
this machine's measured matmul rate at the same shapes.

The figures land in the benchmark's ``extra_info``: ``gflop`` per epoch, ``matmul_gflops``
(rate of a bare matmul of the layer's shape), ``achieved_gflops`` (FLOPs / median epoch time)
and ``fraction`` (their ratio: how much of the epoch is matmul-bound work).

Skipped by default (addopts has --benchmark-skip; --benchmark-only overrides it):
run with ``pytest tests/benchmarks/test_bench_pinn.py --benchmark-only``.

Measured here (2 shared CPU cores, busy): quick 0.091 s/epoch, 1.42 GFLOP, 16 % of the 1-thread
matmul rate; paper 22.8 s/epoch, 132 GFLOP (float64), 28 % of the 2-thread matmul rate."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.api import Context
from problems import Bosons
from solvers.pinn import PINNSolver, Settings
from solvers.pinn.train import DTYPES, Trainer, thread_count
from solvers.training import threads


def matmul_rate(rows: int, width: int, dtype, repeats: int = 30) -> float:
    """GFLOP/s of a (rows × width) @ (width × width) matmul, median of ``repeats``."""
    a = torch.randn(rows, width, dtype=dtype)
    w = torch.randn(width, width, dtype=dtype)
    spent = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ w
        spent.append(time.perf_counter() - start)
    return 2 * rows * width * width / float(np.median(spent)) / 1e9


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_bench_epoch_d2(benchmark, preset):
    s = Settings(**PINNSolver.presets[preset])
    tr = Trainer(Bosons(d=2), s, Context(seed=0))
    opt = torch.optim.Adam(tr.net.parameters(), lr=s.lr)

    def epoch():
        loss, _ = tr.loss(tr.points())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    rows = s.n_colloc * (2 + 2 * 2)  # value, ∂t, two ∂x, two ∂²x per point
    with threads(thread_count(s, 2, "cpu")):  # the solver's own thread policy
        with FlopCounterMode(display=False) as counter:
            epoch()
        flops = counter.get_total_flops()
        loss = benchmark.pedantic(epoch, rounds=5, warmup_rounds=1, iterations=1)
        rate = matmul_rate(rows, s.width, DTYPES[s.dtype])
        n_threads = torch.get_num_threads()
    assert np.isfinite(loss)
    achieved = flops / benchmark.stats.stats.median / 1e9
    benchmark.extra_info.update(gflop=flops / 1e9, matmul_gflops=rate, achieved_gflops=achieved,
                                fraction=achieved / rate, threads=n_threads)
