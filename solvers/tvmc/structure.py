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
    """True when V has mixed second differences (it is not a sum of one-coordinate terms).
    The solver runs exchangeable problems only, where every pair behaves as (0, 1): O(1) in d."""
    if problem.d == 1:
        return False
    x = problem.sample_initial(64, rng) * 3.0
    e0, e1 = np.eye(problem.d)[:2] * 0.3
    v = lambda y: np.asarray(problem.potential(y, 0.0))  # noqa: E731
    mixed = v(x + e0 + e1) - v(x + e0) - v(x + e1) + v(x)
    return bool(np.max(np.abs(mixed)) > 1e-9 * max(float(np.max(np.abs(v(x)))), 1e-12))


def quadratic_potential(problem: Problem, rng: np.random.Generator) -> bool:
    """True when V is a symmetric quadratic, α Σx² + β (Σx)² + γ Σx + δ: then a Gaussian ψ0 stays
    Gaussian (the Gaussian closure), and the Gaussian part of the ansatz is exact at all times."""
    x = problem.sample_initial(256, rng) * 3.0
    v = np.asarray(problem.potential(x, 0.0))
    total = np.sum(x, -1)
    A = np.stack([np.sum(x**2, -1), total**2, total, np.ones(len(x))], -1)
    coef, *_ = np.linalg.lstsq(A, v, rcond=None)
    return bool(np.linalg.norm(A @ coef - v) <= 1e-9 * max(np.linalg.norm(v), 1e-300))


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


def exchangeable_gaussian(x: np.ndarray) -> np.ndarray:
    """(μ, α, β): the Gaussian N(μ1, αI + β11ᵀ) with the symmetrised mean and covariance of
    samples x (n, d) of an exchangeable density (the independence proposal's state; 3 numbers
    whatever d, so the estimate is sharp and the proposal costs O(d) a move)."""
    n, d = x.shape
    mu = float(x.mean())
    y = x - mu
    diag = float(np.mean(y**2))
    total = float(np.mean(np.sum(y, -1) ** 2))  # 1ᵀΣ1 = d·diag + d(d − 1)·off
    off = (total - d * diag) / (d * (d - 1)) if d > 1 else 0.0
    alpha = diag - off
    beta = max(off, -alpha / d * (1 - 1e-6))  # α + βd > 0: a covariance
    return np.array([mu, alpha, beta])


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


#: bytes NetKet's generic Laplacian (a Hessian, d directions × the ansatz's intermediates) may
#: hold at once; past it the expectation values run in chunks
HESSIAN_BYTES = 2**29


def ansatz_width(d: int, n_hermite: int, pair: str, n_pair: int, jastrow_width: int) -> int:
    """Complex numbers per sample in the ansatz's widest intermediate (terms × coordinates)."""
    n_pairs = d * (d - 1) // 2
    width = d * (2 + max(n_hermite - 2, 0))
    width += {"gauss": n_pairs * (1 + n_pair), "hermite": d * n_pair}.get(pair, 0)
    return width + n_pairs * (1 + jastrow_width) * (jastrow_width > 0)


def chunk_rule(d: int, width: int, n_samples: int) -> int | None:
    """Samples per chunk of the expectation values (None: all at once): the Hessian of a chunk,
    16 bytes × d directions × ``width`` × 4 (jvp, vjp and their residuals), fits HESSIAN_BYTES;
    a power of two. All at once at d ≤ 4 (bosons d = 4: 3 kB a sample); 256 at d = 100 with
    the Gaussian closure."""
    per_sample = 64 * d * width
    if per_sample * n_samples <= HESSIAN_BYTES:
        return None
    return max(1, 2 ** int(math.floor(math.log2(max(HESSIAN_BYTES // per_sample, 1)))))
