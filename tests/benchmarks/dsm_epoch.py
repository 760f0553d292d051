"""One DSM training epoch at the paper's hyperparameters, built from the solver's own functions
(fresh paths, loss points, loss, backward, optimiser step): what the pytest benchmark times and
what the side-by-side comparison with the official code runs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from problems import Bosons
from solvers.dsm import DSMSolver, Settings
from solvers.dsm.nets import PairMLP
from solvers.dsm.train import (compiled, epoch_step, loss_function, path_step, path_threads,
                               training_points)
from solvers.training import reuse_freed_memory, threads


def paper_epoch(d: int) -> Callable[[], float]:
    """A function that runs one paper-preset epoch on ``d`` bosons (CPU) and returns its loss;
    the first call compiles."""
    reuse_freed_memory()  # as the solver does on the CPU
    s = Settings(**DSMSolver.presets["paper"])
    problem = Bosons(d=d)
    net = PairMLP(d, s.width, s.depth, s.activation, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    gen, cpu_gen = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    rng = np.random.default_rng(0)
    loss_fn = loss_function(net, problem, s)
    step = compiled(path_step(net, problem, problem.T / s.N), s.compile, "path step")

    def epoch() -> float:
        x0 = torch.as_tensor(problem.sample_initial(s.batch, rng), dtype=torch.float32)
        with threads(path_threads(s, torch.device("cpu"))):  # the solver's own policy
            X, T = training_points(net, problem, x0, s.N, s.M, gen, cpu_gen, step)
        lu, lv = epoch_step(net, opt, problem, X, T, s, gen, loss_fn)
        return float(lu + lv)
    return epoch
