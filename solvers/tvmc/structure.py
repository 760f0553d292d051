"""What the t-VMC ansatz needs to know about a problem, and the sample statistics: numpy only,
so that importing the solver stays cheap (NetKet and jax load when a run starts)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from harness.api import Problem

if TYPE_CHECKING:
    from solvers.tvmc import Settings


@dataclass(frozen=True)
class Initial:
    """ψ0 as the ansatz's Gaussian: log ψ0 = a Σx² + b Σx + c Σ_{i<j}(x_i − x_j)² + const"""

    a: complex
    b: complex
    c: complex
    spread: float  # per-coordinate standard deviation of |ψ0|²


def pairs_sq(x: np.ndarray) -> np.ndarray:
    d = x.shape[-1]
    iu = np.triu_indices(d, 1)
    return (x[..., iu[0]] - x[..., iu[1]]) ** 2


def fit_initial(problem: Problem, rng: np.random.Generator) -> tuple[Initial, float]:
    """Least-squares fit of log ψ0 to the symmetric Gaussian form; (fit, relative residual)."""
    x0 = problem.sample_initial(512, rng)
    spread = float(np.sqrt(np.mean(np.var(x0, axis=0))))
    centre = x0.mean(axis=0)
    x = centre + 1.5 * (x0 - centre)
    log_abs, phase = problem.log_psi0(x)
    target = np.asarray(log_abs) + 1j * np.asarray(phase)
    cols = [np.sum(x**2, -1), np.sum(x, -1), np.ones(len(x))]
    if problem.d > 1:
        cols.append(np.sum(pairs_sq(x), -1))
    A = np.stack(cols, -1)
    coef, *_ = np.linalg.lstsq(A, target, rcond=None)
    resid = np.linalg.norm(A @ coef - target) / max(np.linalg.norm(target - target.mean()), 1e-300)
    c = coef[3] if problem.d > 1 else 0.0
    if abs(c) < 1e-10 * abs(coef[0]):  # no correlations in ψ0: no quadratic pair parameter
        c = 0.0
    return Initial(complex(coef[0]), complex(coef[1]), complex(c), spread), float(resid)


def couples_coordinates(problem: Problem, rng: np.random.Generator) -> bool:
    """True when V has mixed second differences (it is not a sum of one-coordinate terms)."""
    if problem.d == 1:
        return False
    x = problem.sample_initial(64, rng) * 3.0
    h = 0.3
    scale = 1e-12
    for i in range(problem.d):
        for j in range(i + 1, problem.d):
            ei, ej = np.eye(problem.d)[i] * h, np.eye(problem.d)[j] * h
            v = lambda y: np.asarray(problem.potential(y, 0.0))  # noqa: E731
            mixed = v(x + ei + ej) - v(x + ei) - v(x + ej) + v(x)
            scale = max(scale, float(np.max(np.abs(v(x)))))
            if np.max(np.abs(mixed)) > 1e-9 * scale:
                return True
    return False


def parity_even(problem: Problem, fit: Initial, rng: np.random.Generator) -> bool:
    """True when V(−x) = V(x) and ψ0 is even: parity is conserved, so odd terms stay zero and
    are left out of the ansatz (they would only carry Monte Carlo noise)."""
    if abs(fit.b) > 1e-10 * abs(fit.a) * max(fit.spread, 1e-300):
        return False
    x = problem.sample_initial(64, rng) * 2.0
    v, v_mirror = np.asarray(problem.potential(x, 0.0)), np.asarray(problem.potential(-x, 0.0))
    return bool(np.allclose(v_mirror, v, rtol=1e-10, atol=1e-12))


def proposal_factor(x: np.ndarray, s: Settings) -> np.ndarray:
    """Cholesky factor L of the Metropolis proposal covariance L Lᵀ: σ² I with a fixed σ, else
    (step_scale² / d) × the covariance of samples x (n, d) (Haario's adaptive Metropolis)."""
    d = x.shape[-1]
    if s.sigma:
        return s.sigma * np.eye(d)
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    cov = cov + 1e-10 * np.trace(cov) / d * np.eye(d)
    return s.step_scale / math.sqrt(d) * np.linalg.cholesky(cov)


def chain_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, variance and their MC errors per coordinate from samples (chains, L, d).

    Errors come from the spread of the chain averages (chains are independent; each chain's own
    autocorrelation is inside its average)."""
    n_chains = x.shape[0]
    flat = x.reshape(-1, x.shape[-1])
    mean = flat.mean(0)
    var = flat.var(0)
    chain_mean = x.mean(1)
    chain_sq = ((x - mean) ** 2).mean(1)
    k = math.sqrt(max(n_chains - 1, 1))
    return mean, var, chain_mean.std(0) / k, chain_sq.std(0) / k
