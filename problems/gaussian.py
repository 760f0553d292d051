"""The Gaussian wave packet that starts most problems: ψ0 ∝ exp(−|x − x0|²/(4σ²) + i p0·x/ħ),
so |ψ0|² is N(x0, σ² I). Written against the array API so numpy, torch and jax share it."""

from __future__ import annotations

import math

import numpy as np
from array_api_compat import array_namespace


def log_psi0(x, x0: float, sigma: float, p0: float, hbar: float):
    """(log|ψ0|, arg ψ0) of the normalised packet at x (..., d)."""
    xp = array_namespace(x)
    d = x.shape[-1]
    log_abs = -xp.sum((x - x0) ** 2, axis=-1) / (4 * sigma**2) - d / 4 * math.log(2 * math.pi * sigma**2)
    phase = xp.sum(x, axis=-1) * (p0 / hbar)
    return log_abs, phase


def sample(n: int, d: int, x0: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """n samples of N(x0, σ² I) in d dimensions."""
    return x0 + sigma * rng.standard_normal((n, d))


def osmotic(x, x0: float, sigma: float, hbar: float, m: float):
    """u0 = (ħ/2m) ∇ log|ψ0|² = −(ħ/2m)(x − x0)/σ²."""
    return (x - x0) * (-hbar / (2 * m * sigma**2))
