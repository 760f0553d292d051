"""DSM training: Euler–Maruyama paths under no_grad, the residual loss at points subsampled
from them, Adam; the prediction (fresh trajectories) is ``sampling.predict``, called from here.

One epoch (paper settings): B fresh paths X_{i+1} = X_i + (u + v)(X_i, t_i) ε + √(ħε/m) z from
X_0 ~ |ψ0|², with ε = T/N; M of the N steps k chosen at random and at each an off-grid point
X_k + s (u + v)(X_k, t_k) + √(ħs/m) ξ at time t_k + s, s ~ U(0, ε); the loss points are X_0 (at
t = 0) and these B·M points. The loss is evaluated in chunks of points, each chunk's graph freed
by its own backward (gradients accumulate), so memory does not grow with B·M or across epochs.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from solvers.dsm.loss import (initial_velocities, loss_terms, probe_initial_velocities,
                              probe_network_terms)
from solvers.dsm.nets import PairMLP
from solvers.dsm.sampling import drift, predict, sampler_step
from solvers.dsm.workers import Workers, cpu_workers
from solvers.training import Budget, TrainingLoop, for_matmul, reuse_freed_memory, threads


def path_threads(settings, device: torch.device) -> int | None:
    """Threads for the sequential path steps on the CPU: their matmuls set the pace. At the
    paper's 100 × 500² two threads take 1000 steps in 1.05 s against 1.83 s on one (idle
    machine); at the quick preset's 100 × 128² a second thread gains 12 % and costs much more
    on a loaded machine, so one thread below 10⁷ multiply-adds."""
    if device.type != "cpu":
        return None
    return for_matmul(settings.batch, settings.width, settings.threads, small=1e7)


def path_step(net, problem, eps: float):
    """step(x, t, z) -> (drift at x, next state) of Euler–Maruyama with step ``eps``, z ~ N(0, 1)."""
    kick = math.sqrt(problem.hbar / problem.m * eps)

    def step(x, t, z):
        f = drift(net, problem, x, t)
        return f, x + f * eps + kick * z
    return step


def compiled(fn, enabled: bool, what: str):
    """``fn`` torch.compile'd (shapes fixed) when ``enabled``; the first call compiles, and where
    inductor cannot (no C++ compiler, an op it cannot lower) ``fn`` runs eagerly from then on."""
    if not enabled:
        return fn
    fast = torch.compile(fn, dynamic=False)
    chosen = []

    def call(*args):
        if not chosen:
            try:
                with warnings.catch_warnings():  # dynamo's note on array-api-compat's lru_cache
                    warnings.filterwarnings("ignore", message="Dynamo detected a call to a")
                    out = fast(*args)
                chosen.append(fast)
                return out
            except Exception as err:  # noqa: BLE001 - any compiler failure means: run eager
                warnings.warn(f"dsm: torch.compile of the {what} failed ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:120]}); running it eagerly")
                chosen.append(fn)
        return chosen[0](*args)
    return call


@torch.no_grad()
def training_points(net, problem, x0, N, M, gen, cpu_gen, step=None):
    """The loss points of one epoch: (X (B(M+1), d), t (B(M+1), 1)), built under no_grad.

    ``step``: the path step from ``path_step`` (possibly compiled; built here when not given)."""
    B, d = x0.shape
    dev, dtype = x0.device, x0.dtype
    eps = problem.T / N
    steps = torch.randperm(N, generator=cpu_gen)[:M].sort().values  # host: no device sync
    last = int(steps[-1]) + 1
    step = step or path_step(net, problem, eps)
    noise = torch.randn((last, B, d), generator=gen, device=dev, dtype=dtype)
    at = torch.arange(last, device=dev, dtype=dtype).view(last, 1, 1) * eps
    xs = torch.empty((last, B, d), device=dev, dtype=dtype)
    drifts = torch.empty_like(xs)
    x = x0
    for i in range(last):
        xs[i] = x
        drifts[i], x = step(x, at[i], noise[i])
    idx = steps.to(dev)
    s = torch.rand((M, B, 1), generator=gen, device=dev, dtype=dtype) * eps
    xi = torch.randn((M, B, d), generator=gen, device=dev, dtype=dtype)
    pts = xs[idx] + s * drifts[idx] + torch.sqrt(s * (problem.hbar / problem.m)) * xi
    t = idx.to(dtype).view(M, 1, 1) * eps + s  # the off-grid point's own time t_k + s
    X = torch.cat([x0, pts.reshape(M * B, d)])
    T = torch.cat([torch.zeros((B, 1), device=dev, dtype=dtype), t.reshape(M * B, 1)])
    return X, T


def auto_chunk(d: int, width: int, probes: int) -> int:
    """Points per loss chunk: about 6·10⁶ floats in each (point × direction × width) tensor.
    Measured side by side at the paper settings (compiled loss step): d = 4, 1200 points 4–6 %
    faster than 581, 2400 within this machine's noise of 1200 and 5100 11 % slower; d = 2, 2000
    points 1 % faster than 1000. Smaller chunks pay more per-call overhead, larger ones leave
    the cache. With K probes a network's products have 2K + 4 rows a point (value, t and K
    tangents, K probe adjoints, 2 cotangents) and its (point × direction × d) tensors as many."""
    if probes == 0:
        return max(128, int(6e6 / ((1 + 2 * d) * width)))
    return max(128, int(6e6 / ((2 * probes + 4) * (width + d))))
def chunking(P: int, target: int, workers: int = 1) -> tuple[int, int]:
    """(number of chunks, points per chunk): equal chunks (one shape for torch.compile), the
    last padded with zero-weight points, each at most ``target`` points, as many for each of
    ``workers`` (a multiple of it)."""
    k = workers * math.ceil(max(1, math.ceil(P / target)) / workers)
    return k, math.ceil(P / k)


def loss_function(net, problem, settings):
    """loss_terms(x, t, probes, init, mask) for this net and problem: torch.compile'd when
    ``settings.compile`` (inductor fuses the elementwise work between the matmuls; the problem's
    initial velocities are computed outside it, in eager mode). With probes only the networks'
    part (``probe_network_terms``) is compiled: a whole compiled O(d) loss crashed inductor's
    generated code here (segmentation fault, torch 2.13 CPU), and its eager rest is O(P·d)."""
    if settings.probes_for(problem.d):
        network = compiled(lambda *args: probe_network_terms(net, *args), settings.compile,
                           "network terms")
        return lambda x, t, probes, init, mask: loss_terms(
            net, problem, x, t, settings.time_weights, settings.engine, probes, init, mask,
            network)

    def eager(x, t, probes, init, mask):
        return loss_terms(net, problem, x, t, settings.time_weights, settings.engine, probes,
                          init, mask)
    return compiled(eager, settings.compile, "loss")


def loss_workers(settings, device: torch.device) -> Workers | None:
    """The Workers sharing a run's loss chunks on the CPU, the first epoch in the calling thread
    alone (a compiled loss compiles); None (one chunk after another) on other devices."""
    return Workers(cpu_workers(settings, device), warm=False) if device.type == "cpu" else None


def epoch_step(net, opt, problem, X, T, settings, gen, loss=None, workers=None):
    """One optimiser step on the points X, T; returns the detached (L_u, L_v).

    ``loss``: the function from ``loss_function`` (built here when not given); ``workers``:
    ``loss_workers`` sharing the chunks (at least one chunk each), else the chunks one by one."""
    loss = loss or loss_function(net, problem, settings)
    opt.zero_grad(set_to_none=True)
    P, d = X.shape
    K = settings.probes_for(d)
    n = 1 if workers is None else workers.n
    k, chunk = chunking(P, settings.chunk or auto_chunk(d, settings.width, K), n)
    pad = k * chunk - P
    mask = None
    if pad:  # repeat the first points, weighted 0, so that every chunk has the same shape
        X = torch.cat([X, X[:pad]])
        T = torch.cat([T, T[:pad]])
        mask = torch.ones((k * chunk, 1), device=X.device, dtype=X.dtype)
        mask[P:] = 0
    denom = P * d
    Z = None
    if K:  # Rademacher probes, one set per point
        Z = torch.randint(0, 2, (X.shape[0], K, d), generator=gen, device=X.device).to(X.dtype) * 2 - 1
        init = probe_initial_velocities(problem, X, Z)
    else:
        init = initial_velocities(problem, X)  # once for all points: per chunk, vmap's overhead
    params = [p for p in net.parameters() if p.requires_grad]

    def chunk_loss(lo):
        x, t = X[lo:lo + chunk], T[lo:lo + chunk]
        probes = None if Z is None else Z[lo:lo + chunk]
        m = None if mask is None else mask[lo:lo + chunk]
        return loss(x, t, probes, tuple(a[lo:lo + chunk] for a in init), m)

    def run(starts):  # (gradient sum or None, L_u sum, L_v sum) over these chunks
        grads, total_u, total_v = None, X.new_zeros(()), X.new_zeros(())
        for lo in starts:
            lu, lv = chunk_loss(lo)
            scaled = (lu + lv) / (2 * denom)
            if workers is None:  # gradients accumulate in .grad
                scaled.backward()
            else:
                g = torch.autograd.grad(scaled, params)
                grads = g if grads is None else [a + b for a, b in zip(grads, g)]
            total_u, total_v = total_u + lu.detach(), total_v + lv.detach()
        return grads, total_u, total_v

    starts = list(range(0, k * chunk, chunk))
    if workers is None:
        _, total_u, total_v = run(starts)
    else:
        parts = workers.map(run, [starts[w::n] for w in range(n)])
        for p, *gs in zip(params, *(part[0] for part in parts)):
            p.grad = sum(gs[1:], gs[0])
        total_u = sum(part[1] for part in parts)
        total_v = sum(part[2] for part in parts)
    opt.step()
    return total_u / denom, total_v / denom


def param_groups(net, T: float, lr: float) -> list[dict]:
    """Adam's groups at rate ``lr`` times each group's ``scale``: the readout's time slope
    (W_t, b_t) at lr/T, so that a step moves the output at T as much as a step of the readout
    itself (at the full rate it moved T times more: double_well, T = 5, 0.33 against 0.24)."""
    rest = [p for name, p in net.named_parameters() if name != "readout_t"]
    groups = [dict(params=rest, scale=1.0, lr=lr)]
    if net.readout_t is not None:
        groups.append(dict(params=[net.readout_t], scale=1.0 / T, lr=lr / T))
    return groups


def train(problem, times, settings, ctx):
    """Train u_θ, v_θ and return the Prediction at ``times`` (DSMSolver.solve's body)."""
    device = torch.device(ctx.device)
    if device.type == "cpu":
        reuse_freed_memory()
    dtype = {"float32": torch.float32, "float64": torch.float64}[settings.dtype]
    torch.manual_seed(ctx.seed)
    init_gen = torch.Generator().manual_seed(ctx.seed)
    net = PairMLP(problem.d, settings.width, settings.depth, settings.activation, init_gen, dtype,
                  time_readout=settings.time_readout)
    net.to(device)
    # the weights that predict: an average over the last epochs' iterates, or the iterate itself
    avg = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(settings.ema)) if settings.ema else None
    model = avg.module if avg else net
    opt = torch.optim.Adam(param_groups(net, problem.T, settings.lr))
    ratio = 1.0 if settings.lr_final is None else settings.lr_final / settings.lr
    gen = torch.Generator(device=device).manual_seed(ctx.seed + 1)
    cpu_gen = torch.Generator().manual_seed(ctx.seed + 2)
    rng = ctx.rng(1)

    loss_fn = loss_function(net, problem, settings)
    path = compiled(path_step(net, problem, problem.T / settings.N), settings.compile, "path step")
    paths_n = path_threads(settings, device)
    workers = loss_workers(settings, device)
    loss_threads = 1 if workers is not None else None  # the workers' own intra-op threads
    block = 64
    x0_block = None

    def step(epoch: int, progress: float):
        """One epoch on fresh paths; the rate decays exponentially with the training progress."""
        nonlocal x0_block
        for group in opt.param_groups:
            group["lr"] = group["scale"] * settings.lr * ratio ** min(progress, 1.0)
        if epoch % block == 0:  # one host-to-device copy per block of epochs
            x0_block = torch.as_tensor(
                np.stack([problem.sample_initial(settings.batch, rng) for _ in range(block)]),
                dtype=dtype, device=device)
        with threads(paths_n):
            X, T = training_points(net, problem, x0_block[epoch % block], settings.N, settings.M,
                                   gen, cpu_gen, path)
        with threads(loss_threads):
            lu, lv = epoch_step(net, opt, problem, X, T, settings, gen, loss_fn, workers)
        if avg:
            avg.update_parameters(net)
        return (lu + lv) / 2, {"u": lu, "v": lv}

    sampler = compiled(sampler_step(model, problem, settings.scheme), settings.compile,
                       "sampler step")

    def predict_with(n_samples):
        return lambda diagnostics: predict(model, problem, times, settings, device, ctx.seed,
                                           n_samples, diagnostics, sampler)

    budget = Budget(settings.epochs, settings.time_limit, settings.log_every, settings.blowup)
    loop = TrainingLoop("dsm", budget, ctx, sum(p.numel() for p in net.parameters()))
    try:
        loop.run(step, predict_with(settings.checkpoint_samples))
    finally:
        if workers is not None:
            workers.close()
    return loop.finish(predict_with(None), points_per_epoch=settings.batch * (settings.M + 1),
                       probes=settings.probes_for(problem.d), n_predict=settings.n_predict)
