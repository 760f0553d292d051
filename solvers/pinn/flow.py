"""Where the state goes, cheaply: samples of ψ0 (positions from |ψ0|², momenta m·v0 plus a
Gaussian spread of ψ0's osmotic rms m·√⟨u0_i²⟩) moved by Newton's equations (velocity Verlet).
For a Gaussian ψ0 in a quadratic potential this is ψ's exact density (truncated Wigner); else an
estimate of where |ψ|² lies, which the PINN uses to place its collocation and norm points."""

from __future__ import annotations

import numpy as np

from harness.api import Problem


class Flow:
    """``n`` classical trajectories on ``steps`` equal steps over [0, T]: ``path`` (steps+1, n, d),
    and the cloud's per-axis ``mean`` and ``sd`` at each step (steps+1, d)."""

    def __init__(self, problem: Problem, n: int, steps: int, rng: np.random.Generator):
        m, dt = problem.m, problem.T / steps
        x = np.asarray(problem.sample_initial(n, rng), dtype=float)
        spread = np.sqrt(np.mean(np.asarray(problem.u0(x), dtype=float) ** 2, axis=0))
        v = np.asarray(problem.v0(x), dtype=float) + spread * rng.standard_normal(x.shape)
        acc = -np.asarray(problem.grad_potential(x, 0.0), dtype=float) / m
        path, vel = [x], [v]
        for k in range(steps):
            v = v + 0.5 * dt * acc
            x = x + dt * v
            acc = -np.asarray(problem.grad_potential(x, (k + 1) * dt), dtype=float) / m
            v = v + 0.5 * dt * acc
            path.append(x)
            vel.append(v)
        self.path, self.m = np.stack(path), m
        self.vel = np.stack(vel)
        self.T, self.steps = problem.T, steps
        self.mean = self.path.mean(1)
        self.sd = self.path.std(1)

    def gaussian(self) -> dict[str, np.ndarray]:
        """The Gaussian wave packet with the cloud's moments at each step: mean ``mu`` (S, d),
        mean momentum ``p`` (S, d), covariance ``cov`` (S, d, d) and phase curvature ``B``
        (S, d, d), B = Σ⁻¹ Cov(x, p) symmetrised (a Gaussian ψ with phase p·y + ½yᵀBy, y = x − μ,
        has exactly that x–p covariance)."""
        y = self.path - self.mean[:, None]
        p = self.m * self.vel
        q = p - p.mean(1, keepdims=True)
        n = y.shape[1]
        cov = np.einsum("sni,snj->sij", y, y) / n
        cxp = np.einsum("sni,snj->sij", y, q) / n
        B = np.linalg.solve(cov, cxp)
        return {"mu": self.mean, "p": p.mean(1), "cov": cov, "B": 0.5 * (B + B.transpose(0, 2, 1))}

    def level(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For times ``t``: the step below each and the fraction of the way to the next."""
        s = np.clip(np.asarray(t, dtype=float) / self.T * self.steps, 0, self.steps)
        k = np.minimum(np.floor(s).astype(int), self.steps - 1)
        return k, (s - k)[..., None]

    def positions(self, t: np.ndarray, which: np.ndarray) -> np.ndarray:
        """Trajectory ``which[i]`` at time ``t[i]`` (linear between steps), shape (len(t), d)."""
        k, f = self.level(t)
        return (1 - f) * self.path[k, which] + f * self.path[k + 1, which]

    def moments(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cloud's per-axis mean and sd at times ``t`` (linear between steps), (len(t), d)."""
        k, f = self.level(t)
        return ((1 - f) * self.mean[k] + f * self.mean[k + 1],
                (1 - f) * self.sd[k] + f * self.sd[k + 1])


def static_var_error(problem: Problem, n: int = 2048, steps: int = 50) -> float:
    """The static baseline's var_rel_l2 as the flow predicts it (seeded, so the same answer
    every call): how much the state's per-axis variance moves over [0, T]."""
    flow = Flow(problem, n, steps, np.random.default_rng(0))
    var = flow.sd[1:] ** 2
    return float(np.linalg.norm(var - flow.sd[0] ** 2) / np.linalg.norm(var))
