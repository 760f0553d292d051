"""Coordinates on a chain: an on-site potential per coordinate plus a nearest-neighbour coupling.
No exact solution; the reference is the certified split-operator grid (d ≤ 4)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from array_api_compat import array_namespace

from harness.api import UserError
from problems.packet import PacketProblem


def _neighbours(x):
    """x_{i−1} + x_{i+1} for each i of the last axis (missing neighbours count 0)."""
    xp = array_namespace(x)
    zero = xp.zeros_like(x[..., :1])
    return xp.concat([x[..., 1:], zero], axis=-1) + xp.concat([zero, x[..., :-1]], axis=-1)


@dataclass(frozen=True)
class DoubleWell(PacketProblem):
    """V = a Σ (x_i² − b²)² + κ Σ x_i x_{i+1} (a weak coupling for d > 1); the packet starts at
    rest in the left well with the well's harmonic ground-state width. With the defaults (barrier a b⁴ = 0.0625 above the
    ground energy ≈ 0.047, tunnel splitting ≈ 0.030, so full transfer takes π ħ/ΔE ≈ 10.6), about
    half the mass tunnels by T = 5 and each marginal becomes bimodal."""

    name = "double_well"
    summary = "packet tunnelling through the barrier of a quartic double well (bimodal density)"

    d: int = 1
    a: float = 1.0
    b: float = 0.5
    kappa: float = 0.05
    x0: float = -0.5
    sigma0: float = 0.188
    T: float = 5.0

    def validate(self) -> None:
        super().validate()
        if self.a <= 0 or self.b <= 0:
            raise UserError(f"double_well needs a > 0 and b > 0, got a={self.a}, b={self.b}")

    @property
    def box(self) -> tuple[float, float]:
        half = max(abs(self.x0), self.b) + 8 * self.sigma0
        return -half, half

    def potential(self, x, t):
        xp = array_namespace(x)
        v = self.a * xp.sum((x**2 - self.b**2) ** 2, axis=-1)
        return v + self.kappa * xp.sum(x[..., 1:] * x[..., :-1], axis=-1)

    def grad_potential(self, x, t):
        return 4 * self.a * x * (x**2 - self.b**2) + self.kappa * _neighbours(x)


@dataclass(frozen=True)
class Anharmonic(PacketProblem):
    """V = Σ (½mω² x_i² + λ x_i⁴) + (κ/2) Σ (x_{i+1} − x_i)²: a quartic chain whose displaced
    packet disperses anharmonically and shares its energy along the chain."""

    name = "anharmonic"
    summary = "quartic anharmonic chain with nearest-neighbour springs (displaced packet)"

    d: int = 2
    omega: float = 1.0
    lam: float = 0.5
    kappa: float = 0.5
    x0: float = 0.5
    sigma0: float = 0.2236
    T: float = 2.0

    def validate(self) -> None:
        super().validate()
        if self.omega <= 0 or self.lam < 0 or self.kappa < 0:
            raise UserError("anharmonic needs omega > 0, lam >= 0 and kappa >= 0")

    @property
    def box(self) -> tuple[float, float]:
        # Energy conservation bounds each coordinate's on-site potential by the total energy.
        onsite = 0.5 * self.m * self.omega**2 * self.x0**2 + self.lam * self.x0**4
        energy = self.d * (onsite + self.hbar * self.omega) + self.p0**2 * self.d / (2 * self.m)
        k = 0.5 * self.m * self.omega**2
        reach = math.sqrt((-k + math.sqrt(k * k + 4 * self.lam * energy)) / (2 * self.lam)) \
            if self.lam > 0 else math.sqrt(energy / k)
        half = max(reach, abs(self.x0)) + 6 * self.sigma0
        return -half, half

    def potential(self, x, t):
        xp = array_namespace(x)
        onsite = xp.sum(0.5 * self.m * self.omega**2 * x**2 + self.lam * x**4, axis=-1)
        return onsite + 0.5 * self.kappa * xp.sum((x[..., 1:] - x[..., :-1]) ** 2, axis=-1)

    def grad_potential(self, x, t):
        xp = array_namespace(x)
        # ∂/∂x_k of the springs: κ (n_k x_k − x_{k−1} − x_{k+1}), n_k the number of neighbours
        springs = self.kappa * (x * _neighbours(xp.ones_like(x)) - _neighbours(x))
        return self.m * self.omega**2 * x + 4 * self.lam * x**3 + springs
