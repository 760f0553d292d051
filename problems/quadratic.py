"""Exact Gaussian propagation under a static quadratic potential, one normal mode at a time.

In normal coordinates y_k the Hamiltonian is Σ_k p_k²/2m + ½mΩ_k² y_k² (Ω_k² of any sign: an
inverted mode grows as cosh/sinh). A packet of width σ, centre q0_k and momentum p0_k with no
chirp stays a product of Gaussians: its phase-space mean follows the classical flow and its width
Hagedorn's (Q, P), which obey the same linear equations. The problems built on it
(``harmonic_bosons``, ``gaussian_network``) map modes to coordinates by an orthogonal matrix.
"""

from __future__ import annotations

import math

import numpy as np


def flow(omega2, t):
    """The classical flow's entries c = cos Ωt and s = sin(Ωt)/Ω (cosh and sinh(μt)/μ for
    Ω² = −μ² < 0, 1 and t for Ω² = 0), broadcast over ``omega2`` and ``t``: y(t) = c y0 + s ẏ0."""
    omega2, t = np.asarray(omega2, dtype=float), np.asarray(t, dtype=float)
    w = np.sqrt(np.abs(omega2))
    wt = w * t
    c = np.where(omega2 > 0, np.cos(wt), np.cosh(wt))
    s = np.where(w > 0, np.where(omega2 > 0, np.sin(wt), np.sinh(wt)) / np.where(w > 0, w, 1.0), t)
    return c, s


def moments(omega2, q0, p0, sigma: float, hbar: float, m: float, times):
    """Mean and variance of each mode at each time, shape (K, modes): the mean is the classical
    path c q0 + s p0/m, the variance σ²c² + (ħ/(2mσ))² s² (ψ0's position and momentum variances
    σ² and (ħ/2σ)², uncorrelated, carried by the flow)."""
    c, s = flow(np.asarray(omega2)[None, :], np.asarray(times, dtype=float)[:, None])
    mean = c * np.asarray(q0) + s * (np.asarray(p0) / m)
    var = (sigma * c) ** 2 + (hbar / (2 * m * sigma) * s) ** 2
    return mean, var


def wave(omega2, q0, p0, sigma: float, hbar: float, m: float, t: float):
    """Each mode's Hagedorn packet at time t, as (log_norm, curvature, q, p) arrays with
    log φ_k(y) = log_norm + (i/2ħ) curvature (y − q)² + (i/ħ) p (y − q).

    Q(0) = σ√(2/ħ), P(0) = i/Q(0) follow the classical flow (Q' = P/m, P' = −mΩ²Q); curvature
    = P/Q; log_norm = −¼ log πħ − ½ log Q (log Q continued from t = 0) + (i/ħ)(S + p0 q0), with
    the action S = ½(p q − p0 q0) of a quadratic potential and p0 q0 the phase e^{ip0 y/ħ} of ψ0
    at y = q0 (ψ0's phase is p0·y/ħ, not p0·(y − q0)/ħ)."""
    omega2 = np.asarray(omega2, dtype=float)
    q0, p0 = np.asarray(q0, dtype=float), np.asarray(p0, dtype=float)
    c, s = flow(omega2, t)
    Q0 = sigma * math.sqrt(2 / hbar)
    Q = c * Q0 + 1j * s / (m * Q0)
    P = -m * omega2 * s * Q0 + 1j * c / Q0
    q, p = c * q0 + s * p0 / m, -m * omega2 * s * q0 + c * p0
    # arg Q stays in the quadrant of Ωt for an oscillating mode (in [0, π/2) otherwise): unwrap.
    turn = np.where(omega2 > 0, np.sqrt(np.abs(omega2)) * t, 0.0)
    arg = turn + np.angle(np.exp(1j * (np.angle(Q) - turn)))
    log_q = np.log(np.abs(Q)) + 1j * arg
    log_norm = -0.25 * math.log(math.pi * hbar) - 0.5 * log_q + 0.5j * (p * q + p0 * q0) / hbar
    return log_norm, P / Q, q, p
