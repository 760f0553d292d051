"""Conformance checks of a Problem class (DESIGN §3): ∇V against V and u0, v0 against ψ0 by
central finite differences on numpy, torch and jax (float64) arrays, ψ0 normalised and sampled
by ``sample_initial``, the box holding the state, ``exchangeable``, a declared
``separable_com`` and ``exact``.

Integrals of |ψ0|² are a tensor-product quadrature on twice the box for d ≤ 2, importance
sampling from a widened Gaussian fitted to ``sample_initial`` beyond; both give the same
weighted-points summary (with standard errors, zero for quadrature)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import numpy as np

from harness.api import Prediction, Problem, UserError
from harness.check_result import CheckFailed, CheckResult, contract, run_checks
from harness.runner import DEFAULT_TIMES, scored_times

SEED = 7
N_SAMPLES = 40_000  #: draws of sample_initial compared with the integrals of |ψ0|²
N_POINTS = 16  #: random points per finite-difference check
FD_RTOL = 1e-6  #: finite differences against the analytic gradient, relative to its scale
NORM_TOL = 1e-4  #: |∫|ψ0|² − 1| allowed (plus 5 standard errors when sampled)
OUTSIDE_TOL = 1e-6  #: mass of |ψ0|² (and of exact marginals) allowed outside the box
Z = 5.0  #: sampled quantities agree within this many standard errors
BACKENDS = ("numpy", "torch", "jax")


def _call(backend: str, fn: Callable, x: np.ndarray, *args):
    """``fn(x, *args)`` with x as a float64 array of ``backend``; its result (an array or a tuple
    of them) back in numpy, after checking that it is the same kind of array as x."""
    if backend == "numpy":
        out, kind = fn(x, *args), np.ndarray
    elif backend == "torch":
        import torch

        out, kind = fn(torch.from_numpy(x), *args), torch.Tensor
    else:
        import jax
        import jax.numpy as jnp

        with jax.enable_x64(True):  # scoped: float64 here without changing jax's global default
            out, kind = fn(jnp.asarray(x), *args), jax.Array
            out = jax.block_until_ready(out)
    parts = out if isinstance(out, tuple) else (out,)
    for part in parts:
        if not isinstance(part, kind):
            raise CheckFailed(f"{getattr(fn, '__name__', fn)} given a {backend} array returned "
                              f"{type(part).__name__}")
    arrays = tuple(np.asarray(part, dtype=float) for part in parts)
    return arrays if isinstance(out, tuple) else arrays[0]


def _compare(what: str, analytic: np.ndarray, fd: np.ndarray, scale: float) -> float:
    """Largest |analytic − fd| over the FD scale; CheckFailed past FD_RTOL."""
    if analytic.shape != fd.shape:
        raise CheckFailed(f"{what} has shape {analytic.shape}, expected {fd.shape}")
    scale = max(scale, float(np.max(np.abs(fd))), float(np.max(np.abs(analytic))), 1e-300)
    err = float(np.max(np.abs(analytic - fd))) / scale
    if not err <= FD_RTOL:
        raise CheckFailed(f"{what} differs from central finite differences by {err:.2g} "
                          f"relative (allowed {FD_RTOL:g})")
    return err


def _shifted(x: np.ndarray, h: float) -> np.ndarray:
    """x + h e_k and x − h e_k for every axis k, stacked: shape (2, d, n, d)."""
    steps = h * np.eye(x.shape[-1])[:, None, :]
    return np.stack([x[None] + steps, x[None] - steps])


@dataclasses.dataclass
class _Weighted:
    """∫|ψ0|² (norm), the mass outside the box and each coordinate's mean and variance under
    |ψ0|²/norm, with standard errors; from quadrature or importance-sampling weights."""

    how: str
    norm: float
    outside: float
    mean: np.ndarray
    var: np.ndarray
    norm_se: float = 0.0
    outside_se: float = 0.0
    mean_se: np.ndarray | float = 0.0
    var_se: np.ndarray | float = 0.0

    @classmethod
    def from_points(cls, how: str, x: np.ndarray, w: np.ndarray, box: tuple[float, float],
                    sampled: bool) -> "_Weighted":
        """Weights w (quadrature weights × density, or density / proposal / n) at points x."""
        out = ~np.all((x >= box[0]) & (x <= box[1]), axis=-1)
        norm = float(w.sum())
        mean = w @ x / norm
        dev2 = (x - mean) ** 2
        var = w @ dev2 / norm
        if not sampled:
            return cls(how, norm, float(w[out].sum()), mean, var)
        n = w.size
        return cls(how, norm, float(w[out].sum()), mean, var,
                   norm_se=float(np.std(w * n) / math.sqrt(n)),
                   outside_se=float(np.std(w * n * out) / math.sqrt(n)),
                   mean_se=np.sqrt((w**2) @ dev2) / norm,
                   var_se=np.sqrt((w**2) @ (dev2 - var) ** 2) / norm)


@dataclasses.dataclass
class _Instance:
    """One problem instance and what several of its checks share, computed once on demand."""

    problem: Problem

    @cached_property
    def samples(self) -> np.ndarray:
        x = self.problem.sample_initial(N_SAMPLES, np.random.default_rng(SEED))
        x = np.asarray(x, dtype=float)
        if x.shape != (N_SAMPLES, self.problem.d) or not np.isfinite(x).all():
            raise CheckFailed(f"sample_initial({N_SAMPLES}) gave shape {x.shape} "
                              f"(expected {(N_SAMPLES, self.problem.d)}) or non-finite values")
        return x

    @cached_property
    def spread(self) -> float:
        """The narrowest axis's standard deviation of the samples: the scale of ψ0."""
        return float(self.samples.std(axis=0).min())

    @cached_property
    def density(self) -> _Weighted:
        """|ψ0|² integrated: quadrature for d ≤ 2 (spacing a quarter of the samples' spread,
        within a cap), importance sampling beyond."""
        p = self.problem
        lo, hi = p.box
        if p.d <= 2:
            centre, half = (lo + hi) / 2, hi - lo  # twice the box: mass outside it is seen
            cap = 40_001 if p.d == 1 else 1_201
            n = int(min(cap, max(401, math.ceil(2 * half / (self.spread / 4)) + 1)))
            axis = np.linspace(centre - half, centre + half, n)
            x = np.stack(np.meshgrid(*[axis] * p.d, indexing="ij"), axis=-1).reshape(-1, p.d)
            log_abs, _ = p.log_psi0(x)
            w = np.exp(2 * np.asarray(log_abs)) * (axis[1] - axis[0]) ** p.d
            dx = (axis[1] - axis[0]) / self.spread
            return _Weighted.from_points(f"quadrature on twice the box ({n}^{p.d} points, "
                                         f"spacing {dx:.2g} widths)", x, w, p.box, sampled=False)
        rng = np.random.default_rng(SEED + 1)
        mu = self.samples.mean(axis=0)
        chol = np.linalg.cholesky(np.cov(self.samples.T) * 1.5**2)  # proposal: 1.5× wider
        z = rng.standard_normal((4 * N_SAMPLES, p.d))
        x = mu + z @ chol.T
        log_g = (-0.5 * np.sum(z**2, axis=1) - np.log(np.diag(chol)).sum()
                 - p.d / 2 * math.log(2 * math.pi))
        log_abs, _ = p.log_psi0(x)
        w = np.exp(2 * np.asarray(log_abs) - log_g) / x.shape[0]
        how = f"importance sampling ({x.shape[0]} points, Gaussian 1.5× wider than the samples)"
        return _Weighted.from_points(how, x, w, p.box, sampled=True)


def check_problem(cls: type[Problem], params: Mapping[str, Any] | None = None) -> list[CheckResult]:
    """Every check of ``cls`` at ``params`` (default: its defaults) and also at d = 2 when the
    problem accepts it; check names carry the instance's d."""
    params = dict(params or {})
    results, problems = run_checks([("contract", lambda: contract(cls))]), []
    for extra in ({}, {"d": 2}):
        try:
            problem = cls(**(params | extra))
        except Exception as exc:
            if extra and isinstance(exc, UserError):  # d = 2 not allowed: nothing to check there
                results.append(CheckResult("construct (d=2)", True,
                                           f"skipped: d=2 refused ({exc})"))
                continue
            results.append(CheckResult("construct (d=2)" if extra else "construct", False,
                                       f"{cls.__name__}(**{params | extra}) raised "
                                       f"{type(exc).__name__}: {exc}"))
            continue
        if all(p.d != problem.d for p in problems):
            problems.append(problem)
    checks = (("construct", _construct), ("grad_potential", _grad_potential),
              ("psi0_normalised", _normalised), ("sample_initial", _sampler), ("u0", _osmotic),
              ("v0", _current), ("box", _box), ("exchangeable", _exchangeable),
              ("separable_com", _separable_com), ("exact", _exact))
    for problem in problems:
        inst = _Instance(problem)
        results += run_checks((f"{name} (d={problem.d})", lambda fn=fn, inst=inst: fn(inst))
                              for name, fn in checks)
    return results


def _construct(inst: _Instance) -> str:
    p = inst.problem
    spec = getattr(type(p), "__dataclass_params__", None)
    if spec is None or not spec.frozen:
        raise CheckFailed(f"{type(p).__name__} is not a frozen dataclass (@dataclass(frozen=True))")
    lo, hi = p.box
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise CheckFailed(f"box {p.box} is not finite bounds lo < hi")
    edges = p.marginal_edges()
    if not (np.all(np.diff(edges) > 0) and np.isclose(edges[0], lo) and np.isclose(edges[-1], hi)):
        raise CheckFailed("marginal_edges() do not increase from box[0] to box[1]")
    hash(p)
    params = ", ".join(f"{k}={v:g}" for k, v in p.params().items())
    return f"frozen dataclass ({params}), box [{lo:.3g}, {hi:.3g}]"


def _grad_potential(inst: _Instance) -> str:
    p = inst.problem
    lo, hi = p.box
    x = np.random.default_rng(SEED).uniform(lo, hi, (N_POINTS, p.d))
    h = 1e-5 * (hi - lo)
    worst = 0.0
    for backend in BACKENDS:
        for t in (0.0, 0.37 * p.T, p.T):
            v = _call(backend, p.potential, x, t)
            plus, minus = _call(backend, p.potential, _shifted(x, h), t)
            fd = np.moveaxis((plus - minus) / (2 * h), 0, -1)
            grad = _call(backend, p.grad_potential, x, t)
            worst = max(worst, _compare(f"{backend} ∇V at t={t:g}", grad, fd,
                                        float(np.max(np.abs(v))) / (hi - lo)))
    return (f"{N_POINTS} points in the box, t = 0, 0.37T, T, numpy/torch/jax float64: "
            f"largest relative gap {worst:.1g}")


def _velocity(inst: _Instance, which: str) -> str:
    """u0 = (ħ/m)∇log|ψ0| or v0 = (ħ/m)∇arg ψ0 against finite differences of ``log_psi0``."""
    p = inst.problem
    x = inst.samples[:N_POINTS]
    h = 1e-4 * inst.spread
    part = 0 if which == "u0" else 1
    worst = 0.0
    for backend in BACKENDS:
        plus, minus = (_call(backend, p.log_psi0, _shifted(x, h))[part])
        diff = plus - minus
        if part:  # arg ψ0 may be wrapped to (−π, π]: difference modulo 2π
            diff = (diff + math.pi) % (2 * math.pi) - math.pi
        fd = np.moveaxis(diff / (2 * h), 0, -1) * (p.hbar / p.m)
        got = _call(backend, getattr(p, which), x)
        worst = max(worst, _compare(f"{backend} {which}", got, fd, 0.0))
    formula = "(ħ/m)∇log|ψ0|" if part == 0 else "(ħ/m)∇arg ψ0"
    return (f"{which} = {formula} at {N_POINTS} samples, numpy/torch/jax: largest relative gap "
            f"{worst:.1g}")


def _osmotic(inst: _Instance) -> str:
    return _velocity(inst, "u0")


def _current(inst: _Instance) -> str:
    return _velocity(inst, "v0")


def _normalised(inst: _Instance) -> str:
    dens = inst.density
    allowed = NORM_TOL + Z * dens.norm_se
    if not abs(dens.norm - 1) <= allowed:
        raise CheckFailed(f"∫|ψ0|² = {dens.norm:.6g}, not 1 (± {allowed:.2g}); {dens.how}")
    return f"∫|ψ0|² = {dens.norm:.6g} by {dens.how}"


def _sampler(inst: _Instance) -> str:
    dens, x = inst.density, inst.samples
    n = x.shape[0]
    mean, var = x.mean(axis=0), x.var(axis=0)
    mean_se = np.sqrt(var / n)
    var_se = np.sqrt(np.mean((x - mean) ** 4, axis=0) - var**2) / math.sqrt(n)
    for what, got, want, se in (("mean", mean, dens.mean, np.hypot(mean_se, dens.mean_se)),
                                ("variance", var, dens.var, np.hypot(var_se, dens.var_se))):
        gap = np.abs(got - want) / se
        if not np.all(gap <= Z):
            i = int(np.argmax(gap))
            raise CheckFailed(f"sample {what} of coordinate {i} is {got[i]:.5g}, |ψ0|² has "
                              f"{want[i]:.5g} ({gap[i]:.1f} standard errors apart)")
    return (f"{n} samples: means and variances within {Z:g} standard errors of |ψ0|²'s "
            f"(variance {', '.join(f'{v:.4g}' for v in dens.var)})")


def _box(inst: _Instance) -> str:
    p, dens = inst.problem, inst.density
    outside = dens.outside / dens.norm
    if not outside <= OUTSIDE_TOL + Z * dens.outside_se:
        raise CheckFailed(f"|ψ0|² has mass {outside:.2g} outside the box {p.box} "
                          f"(allowed {OUTSIDE_TOL:g})")
    text = f"mass of |ψ0|² outside the box {outside:.1g}"
    times = scored_times(p, DEFAULT_TIMES)
    exact = p.exact(times)
    if exact is None:
        return text
    inside = np.sum(exact.marginals * np.diff(exact.edges), axis=-1)
    k, i = np.unravel_index(np.argmin(inside), inside.shape)
    if not 1 - inside[k, i] <= OUTSIDE_TOL:
        raise CheckFailed(f"the exact marginal of coordinate {i} at t={times[k]:.3g} has mass "
                          f"{1 - inside[k, i]:.2g} outside the box (allowed {OUTSIDE_TOL:g})")
    return f"{text}; exact marginals at {times.size} times: at most {1 - inside.min():.1g} outside"


def _exchangeable(inst: _Instance) -> str:
    answer = inst.problem.exchangeable()
    if not isinstance(answer, bool):
        raise CheckFailed(f"exchangeable() returned {answer!r} ({type(answer).__name__}), "
                          f"not a bool")
    return f"exchangeable() = {answer}"


def _separable_com(inst: _Instance) -> str:
    from harness.reference.geometry import check_com, helmert

    p = inst.problem
    declared = p.separable_com()
    if declared is None:
        return "none declared (a reference solves all d coordinates)"
    if p.d < 2:
        return f"declared {declared}; nothing to split off at d = 1"
    try:
        check_com(p, *declared, helmert(p.d))
    except ValueError as exc:
        raise CheckFailed(f"separable_com() = {declared}, but {exc}") from None
    return (f"(ω, ω0) = {declared}: V separates off ½mω²y0² and ψ0 off the ω0 ground state "
            f"(8 points, 2 shifts of y0, 3 times)")


def _exact(inst: _Instance) -> str:
    p = inst.problem
    times = scored_times(p, 5)
    pred = p.exact(times)
    if pred is None:
        return "no exact solution (exact() is None)"
    if not isinstance(pred, Prediction):
        raise CheckFailed(f"exact() returned {type(pred).__name__}, not a Prediction or None")
    if pred.times.shape != times.shape or not np.allclose(pred.times, times, rtol=0, atol=1e-12):
        raise CheckFailed("exact() times differ from the requested times")
    edges = p.marginal_edges()
    if pred.edges.shape != edges.shape or not np.allclose(pred.edges, edges):
        raise CheckFailed("exact() marginals are not on problem.marginal_edges()")
    if pred.mean.shape[1] != p.d or not pred.finite or not np.all(pred.var > 0):
        raise CheckFailed(f"exact() has {pred.mean.shape[1]} coordinates (d={p.d}), NaN or a "
                          f"variance <= 0")
    mass = np.sum(pred.marginals * np.diff(edges), axis=-1)
    if not (np.all(pred.marginals >= 0) and np.all(mass <= 1 + 1e-6)):
        raise CheckFailed(f"exact() marginals are negative or hold mass {mass.max():.6g} > 1")
    dens = inst.density
    scale = math.sqrt(float(np.max(dens.var)))
    for what, got, want, se, unit in (("mean", pred.mean[0], dens.mean, dens.mean_se, scale),
                                      ("variance", pred.var[0], dens.var, dens.var_se, scale**2)):
        allowed = 1e-6 * unit + Z * np.asarray(se)
        if not np.all(np.abs(got - want) <= allowed):
            raise CheckFailed(f"exact() {what} at t=0 is {got.tolist()}, |ψ0|² has {want.tolist()}")
    return "a valid Prediction on the problem's bins; at t=0 its moments are |ψ0|²'s"
