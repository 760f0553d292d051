"""The NetKet side of t-VMC, built lazily (importing netket costs seconds and the harness imports
every solver): the symmetric ansatz (flax), the adaptive Metropolis rule and H/ħ."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from harness.api import Problem


@functools.lru_cache(maxsize=1)
def netket_lib():
    """Import jax/flax/netket once and define the ansatz and the sampler rule."""
    import jax
    import jax.numpy as jnp
    import netket as nk
    import netket.experimental as nkx
    from flax import linen as nn

    jax.config.update("jax_enable_x64", True)

    def hermite_functions(y, n_max):
        """h_0 … h_{n_max} (orthonormal Hermite functions) of y, stacked on a new last axis."""
        h0 = jnp.exp(-0.5 * y**2) * math.pi**-0.25
        hs = [h0]
        if n_max >= 1:
            hs.append(math.sqrt(2.0) * y * h0)
        for k in range(1, n_max):
            hs.append(math.sqrt(2.0 / (k + 1)) * y * hs[k] - math.sqrt(k / (k + 1)) * hs[k - 1])
        return jnp.stack(hs, axis=-1)

    def const(value):
        return lambda key, *_: jnp.asarray(value, dtype=jnp.complex128)

    def czeros(key, shape):
        return jnp.zeros(shape, dtype=jnp.complex128)

    class Ansatz(nn.Module):
        """The symmetric ansatz of the module docstring; x has shape (..., d)."""

        d: int
        a0: complex
        b0: complex
        c0: complex
        ell: float  # Hermite length scale
        n_hermite: int
        pair: str  # "gauss", "hermite", "quadratic" (the r² term alone, O(d)) or "none"
        n_pair: int
        widths: tuple  # Gaussian pair widths
        jastrow_width: int
        even: bool  # parity-even state: no odd terms

        @nn.compact
        def __call__(self, x):
            x = jnp.asarray(x)
            a = self.param("a", const(self.a0))
            out = a * jnp.sum(x**2, -1)
            if not self.even:
                b = self.param("b", const(self.b0))
                out = out + b * jnp.sum(x, -1)
            orders = [n for n in range(3, self.n_hermite + 1) if not (self.even and n % 2)]
            if orders:
                c = self.param("hermite", czeros, (len(orders),))
                h = hermite_functions(x / self.ell, self.n_hermite)[..., np.asarray(orders)]
                out = out + jnp.sum(h @ c, -1)
            if self.d > 1 and self.pair == "quadratic":  # Σ_{i<j} r² = d Σx² − (Σx)², O(d)
                w0 = self.param("pair_r2", const(self.c0))
                out = out + w0 * (self.d * jnp.sum(x**2, -1) - jnp.sum(x, -1) ** 2)
            elif self.d > 1:
                iu = np.triu_indices(self.d, 1)
                r2 = (x[..., iu[0]] - x[..., iu[1]]) ** 2  # (..., P)
                if self.pair == "gauss":
                    w = np.asarray(self.widths, dtype=float)
                    feats = jnp.concatenate(
                        [r2[..., None], jnp.exp(-r2[..., None] / (2 * w**2))], -1)
                    init = np.zeros(1 + w.size, dtype=complex)
                    init[0] = self.c0
                    wk = self.param("pair", const(init))
                    out = out + jnp.sum(feats @ wk, -1)
                elif self.pair == "hermite":
                    if self.c0 != 0:  # ψ0 with correlations: keep the exact quadratic pair term
                        w0 = self.param("pair_r2", const(self.c0))
                        out = out + w0 * jnp.sum(r2, -1)
                    table = self.param("pair_table", czeros, (self.n_pair, self.n_pair))
                    sym = 0.5 * (table + table.T)
                    if self.even:  # h_n(x_i) h_k(x_j) is odd when n + k is
                        n = np.arange(self.n_pair)
                        sym = sym * ((n[:, None] + n[None, :]) % 2 == 0)
                    hp = hermite_functions(x / self.ell, self.n_pair - 1).astype(sym.dtype)
                    total = jnp.sum(hp, -2)  # Σ_i h(x_i)
                    full = jnp.einsum("...n,nm,...m->...", total, sym, total)
                    diag = jnp.einsum("...in,nm,...im->...", hp, sym, hp)
                    out = out + 0.5 * (full - diag)
                elif self.c0 != 0:
                    w0 = self.param("pair_r2", const(self.c0))
                    out = out + w0 * jnp.sum(r2, -1)
                if self.jastrow_width:
                    z = r2[..., None] / self.ell**2
                    z = nn.tanh(nn.Dense(self.jastrow_width, param_dtype=jnp.float64)(z))
                    z = nn.tanh(nn.Dense(self.jastrow_width, param_dtype=jnp.float64)(z))
                    z = nn.Dense(2, param_dtype=jnp.float64, kernel_init=nn.initializers.zeros,
                                 bias_init=nn.initializers.zeros)(z)  # zero: ψ = ψ0 exactly
                    out = out + jnp.sum(z[..., 0] + 1j * z[..., 1], -1)
            return out

    class AdaptiveGaussianRule(nk.sampler.rules.MetropolisRule):
        """All coordinates moved at once by N(0, L Lᵀ); the factor L lives in the sampler state
        (``rule_state``) so that it can follow the packet's covariance (adaptive Metropolis)
        without resetting the chains or recompiling."""

        scale0: Any

        def __init__(self, scale0):
            self.scale0 = np.asarray(scale0, dtype=np.float64)

        def init_state(self, sampler, machine, params, key):
            return jnp.asarray(self.scale0, dtype=jnp.float64)

        def transition(self, sampler, machine, parameters, state, key, r):
            z = jax.random.normal(key, shape=r.shape, dtype=r.dtype)
            return r + (z @ state.rule_state.T).astype(r.dtype), None

    class IndependentGaussianRule(nk.sampler.rules.MetropolisRule):
        """Independence proposals from N(μ1, αI + β11ᵀ) (the state (μ, α, β) of
        ``structure.exchangeable_gaussian``, refitted at every collection), with the
        Metropolis–Hastings correction log N(x) − log N(x'). Under the Gaussian closure |ψ|² is
        that Gaussian up to the fit and the motion since it: acceptance near 1 and nearly
        independent samples from one move of O(d) cost, where a random walk needs O(d) moves."""

        state0: Any

        def __init__(self, state0):
            self.state0 = np.asarray(state0, dtype=np.float64)

        def init_state(self, sampler, machine, params, key):
            return jnp.asarray(self.state0, dtype=jnp.float64)

        def transition(self, sampler, machine, parameters, state, key, r):
            mu, alpha, beta = state.rule_state
            d = r.shape[-1]
            root = jnp.sqrt(alpha)
            gamma = (jnp.sqrt(alpha + beta * d) - root) / d  # (root I + γ11ᵀ)² = αI + β11ᵀ
            z = jax.random.normal(key, shape=r.shape, dtype=r.dtype)
            new = mu + root * z + gamma * jnp.sum(z, -1, keepdims=True)

            def log_q(y):  # log N up to a constant: Σ⁻¹ = (I − β/(α + βd) 11ᵀ)/α
                y = y - mu
                return -0.5 * (jnp.sum(y**2, -1)
                               - beta / (alpha + beta * d) * jnp.sum(y, -1) ** 2) / alpha

            return new.astype(r.dtype), log_q(r) - log_q(new)

    return dict(jax=jax, jnp=jnp, nk=nk, nkx=nkx, Ansatz=Ansatz, Rule=AdaptiveGaussianRule,
                IndependentRule=IndependentGaussianRule)


@functools.lru_cache(maxsize=16)
def hamiltonian(problem: Problem):
    """NetKet's Hilbert space and H/ħ: kinetic energy with mass m/ħ and the potential V/ħ
    (NetKet has ħ = 1). Cached per problem so that repeated solves reuse the compiled code."""
    lib = netket_lib()
    nk, nkx = lib["nk"], lib["nkx"]
    hbar = problem.hbar

    def potential(x):
        return problem.potential(x, 0.0) / hbar

    hilbert = nkx.hilbert.Particle(N=problem.d, geometry=nkx.geometry.FreeSpace(d=1))
    ekin = nk.operator.KineticEnergy(hilbert, mass=problem.m / hbar)
    epot = nk.operator.PotentialEnergy(hilbert, potential)
    return hilbert, ekin + epot
