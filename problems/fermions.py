"""Spinless fermions in a quenched harmonic trap: an antisymmetric ψ0 with nodes, exact at any d
without interaction (every orbital breathes alike), a certified grid reference with it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from array_api_compat import array_namespace

from harness.api import Prediction, Problem, UserError
from harness.observables import relabel
from problems import slater
from problems.bosons import Bosons


@dataclass(frozen=True)
class Fermions(Problem):
    """d spinless fermions in 1-D: ψ0 is the Slater determinant of the d lowest orbitals of a
    trap ω0, evolved in a trap ω (a quench) with the bosons' pair term (g, s2; same formula):
    V = Σ ½mω²x_i² + (g/2) Σ_{i<j} exp(−(x_i−x_j)²/(2s²)) / √(2πs²).

    ψ0 = C Π_{i<j}(x_j − x_i) Π_i exp(−x_i²/(4σ0²)), σ0² = ħ/(2mω0) (a Vandermonde determinant,
    see problems/slater.py): it vanishes wherever x_i = x_j (``has_nodes``), changes sign under
    every transposition (phase 0 or π), and u0 = (ħ/m)[Σ_{j≠i} 1/(x_i − x_j) − x_i/(2σ0²)] is
    infinite on those nodes (finite off them; samples of |ψ0|² avoid them almost surely).

    Exact for g = 0 at any d. Each ω0 orbital evolves in the trap ω as the scaled state
    φ_n(x, t) = b^{−1/2} φ_n(x/b) exp(i m ḃ x²/(2ħb) − i(n + ½)ω0 τ(t)), τ̇ = 1/b², which solves
    the TDSE when b̈ + ω²b = ω0²/b³ (Ermakov), b(0) = 1, ḃ(0) = 0, i.e.
    b(t)² = cos²ωt + (ω0/ω)² sin²ωt. The x-dependent phase is common to every orbital and the
    n-dependent ones leave the determinant as constants, so ψ(x, t) is b^{−d/2} ψ0(x/b) times a
    phase: |ψ|² is |ψ0|² rescaled by b. Each coordinate's marginal is the one-body density
    n(x) = Σ_{n<d}|φ_n(x)|² over d, with mean 0 and Var(x_i, t) = b(t)² d σ0²
    (Σ_{n<d} ⟨x²⟩_n = σ0² Σ (2n + 1) = σ0² d²). The defaults (ω0 = 1, ω = 2) squeeze the cloud
    to a quarter of its variance at t = π/4 and let it breathe back to 0.38 of it by T = 1."""

    name = "fermions"
    summary = "spinless fermions (Slater determinant, nodes) in a quenched harmonic trap"
    #: ψ0 vanishes on the hyperplanes x_i = x_j, where u0 = (ħ/2m)∇log|ψ0|² is infinite and
    #: log|ψ0| is −∞: a solver that needs a smooth, positive ψ0 should refuse this problem
    has_nodes: ClassVar[bool] = True

    d: int = 2
    omega0: float = 1.0
    omega: float = 2.0
    g: float = 0.0
    s2: float = 0.1
    hbar: float = 0.1
    m: float = 1.0
    T: float = 1.0

    def validate(self) -> None:
        if self.omega0 <= 0 or self.omega <= 0 or self.s2 <= 0:
            raise UserError(f"fermions needs omega0, omega and s2 > 0, got omega0={self.omega0}, "
                            f"omega={self.omega}, s2={self.s2}")

    @property
    def sigma0(self) -> float:
        """The initial trap's ground-state width, σ0² = ħ/(2mω0)."""
        return math.sqrt(self.hbar / (2 * self.m * self.omega0))

    @property
    def ell0(self) -> float:
        """The initial trap's oscillator length ℓ0 = √(ħ/(mω0)) = √2 σ0 (the orbitals' ξ = x/ℓ0)."""
        return math.sqrt(2) * self.sigma0

    def scale(self, times) -> np.ndarray:
        """b(t) = √(cos²ωt + (ω0/ω)² sin²ωt): the g = 0 state at t is ψ0 rescaled by b."""
        wt = self.omega * np.asarray(times, dtype=float)
        return np.sqrt(np.cos(wt) ** 2 + (self.omega0 / self.omega) ** 2 * np.sin(wt) ** 2)

    @property
    def box(self) -> tuple[float, float]:
        # The Fermi sea reaches the outermost turning point ξ_t = √(2d+1) (in ℓ0 units); past it
        # the density falls below 1e-11 within 3 ℓ0. The half-width 1.12 ξ_t + 3.5 keeps the outer
        # tenth of the box (the reference's edge layer) 2.5 ℓ0 or more past ξ_t (< 1e-9 there),
        # times the widest b over [0, T] (b² rises until ωt = π/2 when ω0 > ω). A pair term
        # spreads the cloud: (1 + |g|)^{1/4} more keeps < 1e-9 outside at d = 2, ω0 = ω = 1 for
        # g = 1, 3, 10 (measured on the certified reference: 1e-8, 1e-5, 8e-2 without it).
        b_max = 1.0
        if self.omega0 > self.omega:
            b_max = float(self.scale(min(self.T, math.pi / (2 * self.omega))))
        half = b_max * self.ell0 * (1.12 * slater.turning_point(self.d) + 3.5)
        if self.g != 0 and self.d > 1:
            half *= (1 + abs(self.g)) ** 0.25
        return -half, half

    # -- Hamiltonian: the bosons' trap and pair term ----------------------------------------
    def _bosons(self) -> Bosons:
        return Bosons(d=self.d, g=self.g, s2=self.s2, omega=self.omega, hbar=self.hbar, m=self.m,
                      T=self.T)

    def potential(self, x, t):
        return self._bosons().potential(x, t)

    def grad_potential(self, x, t):
        return self._bosons().grad_potential(x, t)

    def separable_com(self) -> tuple[float, float] | None:
        # The Gaussian factor of ψ0 is the ω0 trap's COM ground state times a relative part and
        # the Vandermonde factor depends on differences only; V is the ω trap plus pair terms.
        return self.omega, self.omega0

    def exchangeable(self) -> bool:
        """True: V is symmetric and ψ0 antisymmetric, so |ψ|² (hence every density, moment and
        marginal) stays symmetric, every coordinate has the same marginal and a sampler may
        relabel its samples, which is what the flag is read for. ψ itself is not symmetric.
        Checked numerically: V and log|ψ0| unchanged, the phase shifted by π × the parity."""
        if self.d == 1:
            return True
        x = 2.0 * self.sample_initial(64, np.random.default_rng(0))
        log_abs, phase = self.log_psi0(x)
        ok = True
        for shift in (1, 0):  # a cycle of all d (parity d − 1) and the transposition (0 1)
            p = np.roll(np.arange(self.d), 1) if shift else np.r_[1, 0, 2:self.d]
            parity = (self.d - 1) % 2 if shift else 1
            for t in (0.0, 0.37 * self.T):
                ok &= np.allclose(self.potential(x, t), self.potential(x[:, p], t), rtol=1e-10,
                                  atol=1e-12)
            log_p, phase_p = self.log_psi0(x[:, p])
            ok &= np.allclose(log_p, log_abs, atol=1e-10)
            ok &= np.allclose(np.cos(phase_p - phase), (-1) ** parity, atol=1e-10)
        return bool(ok)

    # -- initial state ------------------------------------------------------------------------
    def log_psi0(self, x):
        """log|ψ0| from the Vandermonde form (exact and O(d²) per point), arg ψ0 = π × the
        parity of the number of pairs i < j with x_j < x_i (the determinant's sign)."""
        xp = array_namespace(x)
        d, ell = self.d, self.ell0
        log_pairs, inversions = slater.log_vandermonde(x)
        const = slater.log_norm(d) - (d / 2 + d * (d - 1) / 2) * math.log(ell)
        log_abs = const + log_pairs - xp.sum(x**2, axis=-1) / (2 * ell**2)
        return log_abs, math.pi * xp.remainder(inversions, 2.0)

    def sample_initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        # |ψ0(x)|² ∝ Π|x_j − x_i|² Π exp(−x_i²/(2σ0²)): GUE eigenvalues times σ0, in random order
        return relabel(self.sigma0 * slater.sample_gue(n, self.d, rng), rng)

    def u0(self, x):
        return (self.hbar / self.m) * (slater.vandermonde_gradient(x) - x / (2 * self.sigma0**2))

    def v0(self, x):
        return 0.0 * x

    # -- exact solution -----------------------------------------------------------------------
    def exact(self, times: np.ndarray) -> Prediction | None:
        """Without interaction: mean 0, Var = b² d σ0², and each marginal the one-body density
        of ψ0 rescaled by b over d, integrated over each bin (slater.cumulative_mass)."""
        if self.g != 0 and self.d > 1:
            return None
        times = np.asarray(times, dtype=float)
        b = self.scale(times)
        edges = self.marginal_edges()
        mass = slater.cumulative_mass(edges[None, :] / (b[:, None] * self.ell0), self.d)
        marg = np.diff(mass, axis=-1) / (self.d * np.diff(edges))
        var = np.repeat((b**2 * self.d * self.sigma0**2)[:, None], self.d, axis=1)
        return Prediction(times, np.zeros_like(var), var,
                          np.repeat(marg[:, None, :], self.d, axis=1), edges)
