"""DSM's prediction: fresh trajectories of the learned diffusion dX = (u + v) dt + √(ħ/m) dW,
reduced to moments and binned marginals at the scored times while they run.

Nothing of a path is kept: at each scored time the batch's states go straight into a
``SampleStatistics`` (memory O(batch · (d + width)) plus the statistics, whatever the number of
paths). On the CPU the batches are shared among worker threads that run one intra-op thread
each (``workers`` says why); every batch has its own seeds, so the samples do not depend on
how many workers there are.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from harness.observables import SampleStatistics
from solvers.dsm.workers import Workers, cpu_workers
from solvers.training import threads


def drift(net, problem, x, t):
    """(u + v)(x, t) for a batch x (B, d) at one time t (a (1, 1) tensor, so that a compiled
    step is not specialised to each time): t·(NN_u + NN_v) + u0 + v0."""
    out = net(x, t.expand(x.shape[0], 1))
    return t * (out[0] + out[1]) + problem.u0(x) + problem.v0(x)


def sampler_step(net, problem, scheme: str = "heun"):
    """step(x, drift, t, dt, kick) -> (next state, drift there) of the prediction's integrator:
    Euler–Maruyama (``"euler"``, weak order 1) or the stochastic Heun predictor–corrector
    (``"heun"``: weak order 2 for this additive noise, two drift evaluations a step). ``drift``
    is the drift at x, t the next grid time and dt the step, both (1, 1) tensors (so that a
    compiled step is specialised to neither), ``kick`` the step's noise √(ħ dt/m) z."""
    def step(x, f, t, dt, kick):
        guess = x + f * dt + kick
        next_drift = drift(net, problem, guess, t)
        if scheme == "euler":
            return guess, next_drift
        x = x + 0.5 * (f + next_drift) * dt + kick
        return x, drift(net, problem, x, t)
    return step


@torch.no_grad()
def sample_paths(net, problem, x0, times, gen, record=None, scheme="heun", step=None, visit=None):
    """Paths of dX = (u + v) dt + √(ħ/m) dW from x0 (B, d) along the grid ``times`` (increasing,
    times[0] = 0), by ``step`` (from ``sampler_step``, possibly compiled; built from ``scheme``
    when not given). No autograd graph is built.

    ``record`` (bool per grid time) selects the states handed over: to ``visit(j, x)`` (j counts
    the recorded states from 0) as soon as they are computed, or, without ``visit``, returned
    as a list."""
    step = step or sampler_step(net, problem, scheme)
    out = []
    hand = visit or (lambda j, state: out.append(state))
    x = x0
    j = 0
    if record is None or record[0]:
        hand(j, x)
        j += 1
    sqrt_ratio = math.sqrt(problem.hbar / problem.m)
    at = torch.as_tensor(np.asarray(times), dtype=x.dtype, device=x.device).view(-1, 1, 1)
    dts = at[1:] - at[:-1]
    f = drift(net, problem, x, at[0])
    for i in range(len(times) - 1):
        dt = float(times[i + 1] - times[i])
        kick = sqrt_ratio * math.sqrt(dt) * torch.randn(x.shape, generator=gen, device=x.device,
                                                        dtype=x.dtype)
        x, f = step(x, f, at[i + 1], dts[i], kick)
        if record is None or record[i + 1]:
            hand(j, x)
            j += 1
    return out


def time_grid(T: float, times: np.ndarray, eps: float):
    """(grid, record, owners): the integrator's grid, steps of ``eps`` over [0, max(T, times)]
    refined to hit every requested time (near-equal times merged), which grid times are
    recorded, and for the j-th recorded one the indices of the requested times it answers."""
    t_end = max(T, float(times.max()))
    base = np.linspace(0.0, t_end, int(round(t_end / eps)) + 1)
    grid = np.sort(np.concatenate([base, times]))
    grid = grid[np.concatenate([[True], np.diff(grid) > 1e-9])]
    pos = np.abs(grid[None, :] - times[:, None]).argmin(axis=1)
    record = np.zeros(grid.size, dtype=bool)
    record[pos] = True
    slot = (np.cumsum(record) - 1)[pos]  # the recorded state of each requested time
    owners = [np.flatnonzero(slot == j) for j in range(int(record.sum()))]
    return grid, record, owners


def batch_seeds(seed: int, b: int) -> tuple[np.random.Generator, int]:
    """(numpy generator for batch b's initial states, seed of its torch noise generator)."""
    seq = np.random.SeedSequence([seed, 7, b])
    return np.random.default_rng(seq), int(seq.generate_state(1, np.uint64)[0] >> 1)


@torch.no_grad()
def predict(net, problem, times, settings, device, seed, n_samples=None, diagnostics=None,
            step=None):
    """Moments and binned marginals at ``times`` of ``n_samples`` (default ``n_predict``)
    fresh trajectories, steps of T/predict_N (default T/N), the grid refined to hit every
    requested time. ``step``: the integrator step (``sampler_step``, possibly compiled).

    Batches of ``predict_batch`` paths are shared among ``workers.Workers`` of one intra-op
    thread each on the CPU (a worker per batch at most), each filling its own statistics
    (merged at the end). Identical particles (``relabel`` and ``Problem.exchangeable``): the
    statistics of the samples relabelled by every permutation (``SampleStatistics.observables``)."""
    times = np.asarray(times, dtype=float)
    n_samples = n_samples or settings.n_predict
    grid, record, owners = time_grid(problem.T, times, problem.T / (settings.predict_N or settings.N))
    dtype = next(net.parameters()).dtype
    edges = problem.marginal_edges()
    step = step or sampler_step(net, problem, settings.scheme)
    n_batches = math.ceil(n_samples / settings.predict_batch)
    size = math.ceil(n_samples / n_batches)  # equal batches: one shape for a compiled step
    n = cpu_workers(settings, device, at_most=n_batches)

    def run(batches) -> SampleStatistics:
        stats = SampleStatistics(times.size, problem.d, edges)
        for b in batches:
            rng, torch_seed = batch_seeds(seed, b)
            gen = torch.Generator(device=device).manual_seed(torch_seed)
            x0 = torch.as_tensor(problem.sample_initial(size, rng), dtype=dtype, device=device)

            def visit(j, x):
                state = x.cpu().numpy()
                for k in owners[j]:
                    stats.add(int(k), state)
            sample_paths(net, problem, x0, grid, gen, record, step=step, visit=visit)
        return stats

    with threads(1 if device.type == "cpu" else None), Workers(n) as workers:
        if n > 1:  # a first step here, so that a compiled step compiles once, before the threads
            x, f, kick = (torch.zeros((size, problem.d), dtype=dtype, device=device)
                          for _ in range(3))  # distinct tensors, as in the paths (dynamo
            step(x, f, *torch.ones((2, 1, 1), dtype=dtype, device=device), kick)  # guards aliasing)
        parts = workers.map(run, [range(w, n_batches, n) for w in range(n)])
    for other in parts[1:]:
        parts[0].merge(other)
    symmetric = settings.relabel and problem.exchangeable()
    return parts[0].prediction(times, diagnostics, symmetrise=symmetric)
