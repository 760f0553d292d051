"""The PINN's prediction: |ψ|² normalised on a product grid over the box (small d) or
importance-sampled (any d), turned into moments and marginals, with the norm drift."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from harness.api import Prediction, SolverDiverged
from harness.observables import grid_observables, sample_observables

if TYPE_CHECKING:
    from solvers.pinn.train import Trainer

#: grid points per axis for the grid prediction when ``grid_points`` = 0
AUTO_GRID = {1: 401, 2: 161, 3: 61}


@torch.no_grad()
def _density(tr: Trainer, x: torch.Tensor, t: float, batch: int) -> torch.Tensor:
    out = []
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        psi = tr.ansatz.psi(xb, torch.full((xb.shape[0],), t, dtype=xb.dtype, device=xb.device))
        out.append((psi * psi).sum(-1))
    return torch.cat(out)


def predict(tr: Trainer, times: np.ndarray, s, coarse: bool, diagnostics: dict) -> Prediction:
    d = tr.problem.d
    method = s.predict
    if method == "auto":
        method = "grid" if d <= 3 else "is"
    if method == "grid":
        return _predict_grid(tr, times, s, coarse, diagnostics)
    return _predict_is(tr, times, s, coarse, diagnostics)


def _predict_grid(tr: Trainer, times, s, coarse, diagnostics) -> Prediction:
    """|ψ|² on a product grid over the box, normalised per time; moments and marginals from
    ``grid_observables``. The unnormalised mass is the norm drift."""
    problem = tr.problem
    d = problem.d
    n = s.grid_points or AUTO_GRID.get(d, 41)
    if coarse:
        n = max(21, n // 3)
    lo, hi = problem.box
    axis = np.linspace(lo, hi, n)
    mesh = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1).reshape(-1, d)
    x = torch.as_tensor(mesh, dtype=tr.dtype, device=tr.device)
    cell = (axis[1] - axis[0]) ** d
    edges = problem.marginal_edges()
    K = len(times)
    mean, var, marg = np.empty((K, d)), np.empty((K, d)), np.empty((K, d, edges.size - 1))
    mass = np.empty(K)
    for k, t in enumerate(times):
        rho = _density(tr, x, float(t), s.predict_batch).double().cpu().numpy().reshape((n,) * d)
        mass[k] = rho.sum() * cell
        if not (np.isfinite(mass[k]) and mass[k] > 0):
            raise SolverDiverged(f"pinn: |ψ|² has mass {mass[k]} at t = {t:g}")
        mean[k], var[k], marg[k] = grid_observables([axis] * d, rho / mass[k], edges)
    diagnostics = dict(diagnostics, predict_method="grid", grid_points=n)
    diagnostics.update(_norm_diagnostics(times, mass))
    return Prediction(times, mean, var, marg, edges, diagnostics=diagnostics)


def _norm_diagnostics(times, mass) -> dict:
    ref = 1.0 if times[0] > 0 else mass[0]  # ψ0 is normalised on R^d
    drift = mass / ref - 1
    idx = np.unique(np.linspace(0, len(times) - 1, min(len(times), 51)).round().astype(int))
    return {"norm_drift_max": float(np.max(np.abs(drift))),
            "norm_curve": {"t": [float(times[i]) for i in idx], "norm": [float(mass[i]) for i in idx]}}


def _predict_is(tr: Trainer, times, s, coarse, diagnostics) -> Prediction:
    """Self-normalised importance sampling of |ψ|² restricted to the box, per time, from a
    proposal adapted along the time grid: a Gaussian with the previous time's moments (widened
    1.5×, the initial cloud's at the first time) mixed with 10 % uniform on the box."""
    problem = tr.problem
    d = problem.d
    n = s.n_samples if not coarse else max(1000, s.n_samples // 10)
    lo, hi = problem.box
    vol = (hi - lo) ** d
    edges = problem.marginal_edges()
    rng = np.random.default_rng([tr.gen.initial_seed(), 7])
    mu = tr.sampler.mu.double().cpu().numpy()
    sd = tr.sampler.sd.double().cpu().numpy() / s.focus_width * 1.5
    K = len(times)
    mean, var, marg = np.empty((K, d)), np.empty((K, d)), np.empty((K, d, edges.size - 1))
    mass, ess = np.empty(K), np.empty(K)
    mix = 0.1
    for k, t in enumerate(times):
        n_uni = rng.binomial(n, mix)
        xs = np.concatenate([mu + sd * rng.standard_normal((n - n_uni, d)),
                             rng.uniform(lo, hi, (n_uni, d))])
        log_g = (-0.5 * ((xs - mu) / sd) ** 2 - np.log(sd * math.sqrt(2 * math.pi))).sum(-1)
        q = (1 - mix) * np.exp(log_g) + mix / vol
        inside = np.all((xs >= lo) & (xs <= hi), axis=1)
        rho = np.zeros(n)
        xin = torch.as_tensor(xs[inside], dtype=tr.dtype, device=tr.device)
        rho[inside] = _density(tr, xin, float(t), s.predict_batch).double().cpu().numpy()
        w = rho / q
        mass[k] = w.mean()
        if not (np.isfinite(mass[k]) and mass[k] > 0):
            raise SolverDiverged(f"pinn: |ψ|² has mass {mass[k]} at t = {t:g}")
        w = w / w.sum()
        ess[k] = 1.0 / np.sum(w * w)
        mean[k], var[k], marg[k] = sample_observables(xs, edges, weights=w)
        mu, sd = mean[k], 1.5 * np.sqrt(np.maximum(var[k], 1e-12))
    diagnostics = dict(diagnostics, predict_method="is", is_samples=n,
                       ess_min=float(ess.min()), ess_median=float(np.median(ess)),
                       ess_curve=[float(e) for e in ess[:: max(1, K // 50)]])
    diagnostics.update(_norm_diagnostics(times, mass))
    return Prediction(times, mean, var, marg, edges, n_samples=int(np.median(ess)),
                      diagnostics=diagnostics)
