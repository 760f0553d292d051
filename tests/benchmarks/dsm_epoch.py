"""One DSM training epoch built from the solver's own functions (fresh paths, loss points, loss,
backward, optimiser step): at the paper's hyperparameters, what the pytest benchmark times and
the side-by-side comparison with the official code runs; at any preset and d, what
``python tests/benchmarks/dsm_epoch.py PRESET D...`` times (the O(d) scaling of the quick
preset)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from problems import Bosons, Oscillator
from solvers.dsm import DSMSolver, Settings
from solvers.dsm.nets import PairMLP
from solvers.dsm.train import (compiled, epoch_step, loss_function, loss_workers, path_step,
                               param_groups, path_threads, training_points)
from solvers.training import reuse_freed_memory, threads


def epoch(problem, s: Settings, workers: bool = False) -> Callable[[], float]:
    """A function that runs one epoch of settings ``s`` on ``problem`` (CPU) and returns its
    loss; the first call compiles. ``workers``: share the loss chunks among the solver's
    loss workers (as a run does); else one chunk after another on torch's threads (the
    side-by-side comparison with the official code's epoch)."""
    reuse_freed_memory()  # as the solver does on the CPU
    net = PairMLP(problem.d, s.width, s.depth, s.activation, torch.Generator().manual_seed(0),
                  time_readout=s.time_readout)
    opt = torch.optim.Adam(param_groups(net, problem.T, s.lr))
    gen, cpu_gen = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    rng = np.random.default_rng(0)
    loss_fn = loss_function(net, problem, s)
    step = compiled(path_step(net, problem, problem.T / s.N), s.compile, "path step")
    pool = loss_workers(s, torch.device("cpu")) if workers else None

    def run() -> float:
        x0 = torch.as_tensor(problem.sample_initial(s.batch, rng), dtype=torch.float32)
        with threads(path_threads(s, torch.device("cpu"))):  # the solver's own policy
            X, T = training_points(net, problem, x0, s.N, s.M, gen, cpu_gen, step)
        with threads(1 if pool else None):
            lu, lv = epoch_step(net, opt, problem, X, T, s, gen, loss_fn, pool)
        return float(lu + lv)
    return run


def paper_epoch(d: int) -> Callable[[], float]:
    """One paper-preset epoch on ``d`` bosons."""
    return epoch(Bosons(d=d), Settings(**DSMSolver.presets["paper"]))


def main(preset: str, dims: list[int], rounds: int = 5) -> None:
    """Seconds per epoch (median of ``rounds`` after one compiling call) of ``preset`` on the
    moving oscillator (p0 = 0.5) at each d, with the settings the solver resolves for it."""
    for d in dims:
        problem = Oscillator(d=d, p0=0.5)
        s = Settings(**DSMSolver.presets[preset]).for_dimension(d)
        run = epoch(problem, s, workers=True)
        run()
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        print(f"d={d} probes={s.probes_for(d)} width={s.width} batch={s.batch} M={s.M}: "
              f"{np.median(times):.3f} s/epoch (min {min(times):.3f})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [int(a) for a in sys.argv[2:]])
