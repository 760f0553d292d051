"""One DSM training epoch at the paper's hyperparameters (N = 1000, batch 100, M = 150,
width 500, Adam): fresh paths, loss points, loss, backward, optimiser step.

Skipped by default (addopts has --benchmark-skip); run with
``pytest tests/benchmarks/test_bench_dsm.py --benchmark-only``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from problems import Bosons
from solvers.dsm import DSMSolver, Settings
from solvers.dsm.nets import PairMLP
from solvers.dsm.train import epoch_step, path_threads, training_points
from solvers.training import threads


@pytest.mark.parametrize("d", [2, 4])
def test_bench_paper_epoch(benchmark, d):
    s = Settings(**DSMSolver.presets["paper"])
    problem = Bosons(d=d)
    net = PairMLP(d, s.width, s.depth, s.activation, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    gen, cpu_gen = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    rng = np.random.default_rng(0)

    def epoch():
        x0 = torch.as_tensor(problem.sample_initial(s.batch, rng), dtype=torch.float32)
        with threads(path_threads(s, torch.device("cpu"))):  # the solver's own policy
            X, T = training_points(net, problem, x0, s.N, s.M, gen, cpu_gen)
        lu, lv = epoch_step(net, opt, problem, X, T, s, gen)
        return float(lu + lv)

    loss = benchmark.pedantic(epoch, rounds=3, warmup_rounds=1, iterations=1)
    assert np.isfinite(loss)
