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


class TrapGroundState:
    """ψ0 = the ground state of the trap ½mω²|x|² (a problem with fields ``hbar``, ``m``,
    ``omega`` and ``d``), for trapped particles whose pair interaction depends on x_i − x_j only:
    then the centre of mass separates and stays in its ground state."""

    @property
    def sigma0(self) -> float:
        """Ground-state width: Var(x_i, 0) = ħ/(2mω)."""
        return math.sqrt(self.hbar / (2 * self.m * self.omega))

    def separable_com(self) -> tuple[float, float] | None:
        return self.omega, self.omega

    def log_psi0(self, x):
        return log_psi0(x, 0.0, self.sigma0, 0.0, self.hbar)

    def sample_initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return sample(n, self.d, 0.0, self.sigma0, rng)

    def u0(self, x):
        return osmotic(x, 0.0, self.sigma0, self.hbar, self.m)

    def v0(self, x):
        return 0.0 * x
