"""The Slater determinant of the d lowest harmonic-oscillator orbitals, in oscillator units
ξ = x/ℓ (ℓ = √(ħ/(mω))): its one-body density and the binned integrals of it, its Vandermonde
form, and exact samples of |det|² (the GUE eigenvalue law). Stable for d up to thousands.

Orbitals: the Hermite functions ψ_n(ξ) = (2ⁿ n! √π)^{−1/2} H_n(ξ) e^{−ξ²/2}, orthonormal in ξ.
Since H_n(ξ) = 2ⁿξⁿ + (lower powers), column operations reduce det[ψ_n(ξ_i)] to
Π_n (2ⁿ/(n!√π))^{1/2} · Π_{i<j}(ξ_j − ξ_i) · Π_i e^{−ξ_i²/2}, and the normalised Slater
determinant is that divided by √(d!)."""

from __future__ import annotations

import math

import numpy as np
from array_api_compat import array_namespace
from scipy.linalg import lapack

#: Gauss–Legendre nodes per piece, and the longest piece in units of the orbitals' shortest
#: wavelength scale 1/√(2d+1): the error of 8 nodes on a piece where the density turns by 3 rad is
#: ~1e-15 relative (measured: the binned mass of d = 1000 agrees with a piece half as long to 1e-13)
GL_NODES, PIECE = 8, 1.5
#: the density is below 1e-80 of its peak this far (in ξ) past the outermost turning point
TAIL = 10.0
#: rescale the Hermite recurrence every this many orders (growth per block < 1e30 for ξ < 60)
RESCALE_EVERY = 16


def turning_point(d: int) -> float:
    """ξ of the outermost classical turning point, √(2d − 1), rounded up to √(2d + 1)."""
    return math.sqrt(2 * d + 1)


def one_body_density(xi: np.ndarray, d: int) -> np.ndarray:
    """Σ_{n<d} ψ_n(ξ)², by the three-term recurrence
    ψ_n = √(2/n) ξ ψ_{n−1} − √((n−1)/n) ψ_{n−2}, started without e^{−ξ²/2} and rescaled every
    RESCALE_EVERY orders (the log of the scale carried apart), so nothing under- or overflows."""
    xi = np.asarray(xi, dtype=float)
    log_scale = -(xi**2) / 2
    prev, cur = np.zeros_like(xi), np.full_like(xi, math.pi**-0.25)
    total = cur**2
    for n in range(1, d):
        prev, cur = cur, math.sqrt(2 / n) * xi * cur - math.sqrt((n - 1) / n) * prev
        total += cur**2
        if n % RESCALE_EVERY == 0:
            s = np.maximum(np.abs(cur), np.abs(prev))
            s[s == 0] = 1.0
            cur, prev, total = cur / s, prev / s, total / s**2
            log_scale += np.log(s)
    return total * np.exp(2 * log_scale)


def cumulative_mass(xi: np.ndarray, d: int) -> np.ndarray:
    """∫ Σ_{n<d} ψ_n² from a common lower limit up to each ξ (any shape): differences of it are
    the one-body mass between two points (d in all).

    The distinct points (clipped to TAIL past the turning point) cut the line into gaps, each gap
    into pieces no longer than PIECE/√(2d+1), each piece integrated by GL_NODES-point
    Gauss–Legendre; the sums accumulate in order, so the result never decreases with ξ."""
    xi = np.asarray(xi, dtype=float)
    cut = turning_point(d) + TAIL
    points, where = np.unique(np.clip(xi, -cut, cut), return_inverse=True)
    if points.size == 1:
        return np.zeros_like(xi)
    gaps = np.diff(points)
    pieces = np.ceil(gaps * turning_point(d) / PIECE).astype(int)
    first = np.cumsum(pieces) - pieces  # index of each gap's first piece
    length = np.repeat(gaps / pieces, pieces)
    start = np.repeat(points[:-1], pieces) + (np.arange(pieces.sum()) - np.repeat(first, pieces)) * length
    nodes, weights = np.polynomial.legendre.leggauss(GL_NODES)
    at = start[:, None] + length[:, None] * (nodes + 1) / 2
    per_piece = one_body_density(at, d) @ weights * length / 2
    per_gap = np.add.reduceat(per_piece, first)
    return np.concatenate([[0.0], np.cumsum(per_gap)])[where].reshape(xi.shape)


def log_norm(d: int) -> float:
    """log of the constant C in Ψ(ξ) = C · Π_{i<j}(ξ_j − ξ_i) · Π_i e^{−ξ_i²/2}, the normalised
    Slater determinant (1/√(d!)) det[ψ_n(ξ_i)] in oscillator units."""
    return 0.5 * (d * (d - 1) / 2 * math.log(2) - sum(math.lgamma(n + 1) for n in range(d))
                  - d / 2 * math.log(math.pi) - math.lgamma(d + 1))


def log_vandermonde(x):
    """(Σ_{i<j} log|x_j − x_i|, number of pairs with x_j < x_i) over the last axis, array API;
    the pairs are taken one offset j − i at a time so memory stays (..., d) at any d."""
    xp = array_namespace(x)
    d = x.shape[-1]
    log_abs = 0.0 * x[..., 0]
    inversions = 0.0 * x[..., 0]
    with np.errstate(divide="ignore"):  # log 0 = −∞ on a node is the right value
        for k in range(1, d):
            diff = x[..., k:] - x[..., :-k]
            log_abs = log_abs + xp.sum(xp.log(xp.abs(diff)), axis=-1)
            inversions = inversions + xp.sum(xp.astype(diff < 0, x.dtype), axis=-1)
    return log_abs, inversions


def vandermonde_gradient(x):
    """∇ Σ_{i<j} log|x_j − x_i|: component i is Σ_{j≠i} 1/(x_i − x_j) (array API, memory
    (..., d)); infinite where two coordinates coincide."""
    xp = array_namespace(x)
    grad = 0.0 * x
    with np.errstate(divide="ignore", invalid="ignore"):  # ±∞ (or ∞ − ∞) on a node
        for k in range(1, x.shape[-1]):
            r = 1.0 / (x[..., k:] - x[..., :-k])  # 1/(x_{p+k} − x_p): + for p + k, − for p
            zeros = 0.0 * x[..., :k]
            grad = grad + xp.concat([zeros, r], axis=-1) - xp.concat([r, zeros], axis=-1)
    return grad


def sample_gue(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """n draws of the d eigenvalues (ascending) of the Gaussian unitary ensemble, whose joint
    density is ∝ Π_{i<j}|λ_j − λ_i|² Π_i e^{−λ_i²/2}, i.e. |Ψ(λ/√2)|²: exact samples.

    Dumitriu–Edelman's tridiagonal model (β = 2): diagonal N(0, 1), off-diagonals χ_{2k}/√2 for
    k = d−1, …, 1; eigenvalues by LAPACK's dsterf, O(d²) per draw (measured on 2 shared cores:
    2 µs at d = 2, 0.2 ms at d = 100, 21 ms at d = 1000)."""
    diag = rng.standard_normal((n, d))
    if d == 1:
        return diag
    off = np.sqrt(rng.chisquare(2 * np.arange(d - 1, 0, -1), size=(n, d - 1)) / 2)
    out = np.empty((n, d))
    for k in range(n):
        out[k], info = lapack.dsterf(diag[k], off[k])
        if info != 0:
            raise RuntimeError(f"LAPACK dsterf failed (info={info}) on a GUE draw at d={d}")
    return out
