"""The contracts of qdbench: Problem, Solver, Prediction and the run Context.

Data flows one way: a Problem goes to a Solver, which returns a Prediction (moments and marginals
at the requested times); the harness scores it against a Reference it never shows the solver.
A reader learns the whole system from this module and one solver in ``solvers/``.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

__all__ = ["Context", "Prediction", "Problem", "Solver", "UserError", "SolverDiverged"]


class UserError(ValueError):
    """Bad input from the user (problem, solver, parameter, preset): one line, exit code 2."""


class SolverDiverged(RuntimeError):
    """Raised by a solver whose iteration blew up (NaN or runaway loss): stored as `diverged`,
    with ``diagnostics``, what the solver had recorded until then (e.g. its loss curve)."""

    def __init__(self, message: str, diagnostics: dict[str, Any] | None = None):
        super().__init__(message)
        self.diagnostics = diagnostics or {}


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------


@dataclass
class Prediction:
    """What every solver returns, whatever it computes internally, at the requested times.

    ``marginals[k, i, b]`` is coordinate i's density averaged over bin b of ``edges`` (each row
    integrates to the mass inside the edges, 1 for a problem whose box holds the state).
    ``n_samples`` is set by sample-based solvers so that the harness can report the histogram's
    own noise floor; ``samples`` (optional, kept small) and ``diagnostics`` are free-form extras.
    """

    times: np.ndarray  # (K,)
    mean: np.ndarray  # (K, d)
    var: np.ndarray  # (K, d)
    marginals: np.ndarray  # (K, d, B)
    edges: np.ndarray  # (B + 1,)
    n_samples: int | None = None
    samples: np.ndarray | None = None  # (K, n, d)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=float)
        self.mean = np.asarray(self.mean, dtype=float)
        self.var = np.asarray(self.var, dtype=float)
        self.marginals = np.asarray(self.marginals, dtype=float)
        self.edges = np.asarray(self.edges, dtype=float)
        k, d = self.mean.shape
        if self.times.shape != (k,) or self.var.shape != (k, d):
            raise ValueError(f"Prediction shapes disagree: times {self.times.shape}, "
                             f"mean {self.mean.shape}, var {self.var.shape}")
        if self.marginals.shape != (k, d, self.edges.size - 1):
            raise ValueError(f"marginals shape {self.marginals.shape} != {(k, d, self.edges.size - 1)}")

    @property
    def finite(self) -> bool:
        """True when every moment and marginal is a finite number."""
        return bool(np.isfinite(self.mean).all() and np.isfinite(self.var).all()
                    and np.isfinite(self.marginals).all())


# --------------------------------------------------------------------------------------------
# Problem
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem(ABC):
    """A TDSE  iħ ∂ψ/∂t = −(ħ²/2m) Δψ + V(x, t) ψ  on R^d with initial state ψ0, for t in [0, T].

    Subclasses are frozen dataclasses whose fields are the named parameters (with defaults);
    ``potential``, ``grad_potential``, ``log_psi0``, ``u0`` and ``v0`` take ``x`` of shape
    ``(..., d)`` as a numpy, torch or jax array and return the same kind of array; the time ``t``
    is a Python float (one time per call).
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    #: named variants: registry name -> parameter overrides (e.g. the DSM paper's 1-D cases)
    variants: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: number of bins of the standard marginal grid
    n_bins: ClassVar[int] = 120
    #: whether V depends on t (a static V lets grid solvers cache its phase factors)
    time_dependent: ClassVar[bool] = False
    #: whether ψ0 vanishes on nodal surfaces (fermions): there log|ψ0| and the osmotic velocity
    #: u0 are singular, so a solver built on them handles nodes or refuses the problem
    has_nodes: ClassVar[bool] = False

    d: int = 1
    hbar: float = 0.1
    m: float = 1.0
    T: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"parameter {f.name}={value!r} of {self.name} must be a number")
            if not math.isfinite(value):
                raise UserError(f"parameter {f.name}={value} of {self.name} must be finite")
        if int(self.d) != self.d or self.d < 1:
            raise UserError(f"d must be a positive integer, got {self.d}")
        object.__setattr__(self, "d", int(self.d))
        for key in ("hbar", "m", "T"):
            if getattr(self, key) <= 0:
                raise UserError(f"{key} must be > 0, got {getattr(self, key)}")
        self.validate()

    def validate(self) -> None:
        """Check parameter values beyond being finite numbers; raise UserError."""

    # -- identity -----------------------------------------------------------------------------
    def params(self) -> dict[str, float]:
        """The named parameters and their values (the problem's identity)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    # -- geometry -----------------------------------------------------------------------------
    @property
    @abstractmethod
    def box(self) -> tuple[float, float]:
        """Per-axis bounds (the same on every axis) holding essentially all mass for all t."""

    def marginal_edges(self) -> np.ndarray:
        """The bin edges of the standard marginal grid on which every prediction is scored."""
        lo, hi = self.box
        return np.linspace(lo, hi, self.n_bins + 1)

    # -- Hamiltonian --------------------------------------------------------------------------
    @abstractmethod
    def potential(self, x, t):
        """V(x, t), shape (...,)."""

    @abstractmethod
    def grad_potential(self, x, t):
        """∇V(x, t), shape (..., d)."""

    def separable_com(self) -> tuple[float, float] | None:
        """(ω, ω0) when the centre of mass y0 = Σx_i/√d separates: V = ½mω²y0² plus a function
        of the relative coordinates only, and ψ0 = the ground state of frequency ω0 in y0 times
        a function of them (ω0 = ω: it stays in its ground state; else it breathes, exactly
        known); None otherwise. A reference may then solve on a grid of one dimension fewer
        (DESIGN §6); the declaration is checked numerically there."""
        return None

    def exchangeable(self) -> bool:
        """True when V(·, t) and ψ0 are unchanged by relabelling the coordinates (identical
        particles): then ψ stays symmetric, every coordinate has the same marginal, and a solver
        may relabel its samples at random. Checked numerically on random points by default."""
        if self.d == 1:
            return True
        rng = np.random.default_rng(0)
        x = 2.0 * self.sample_initial(64, rng)
        perm = np.roll(np.arange(self.d), 1)
        swap = np.arange(self.d)
        swap[:2] = 1, 0  # a cycle and a transposition generate every permutation
        ok = True
        for p in (perm, swap):
            for t in (0.0, 0.37 * self.T):
                ok &= np.allclose(np.asarray(self.potential(x, t)),
                                  np.asarray(self.potential(x[:, p], t)), rtol=1e-10, atol=1e-12)
            ok &= all(np.allclose(a, b, atol=1e-10)
                      for a, b in zip(self.log_psi0(x), self.log_psi0(x[:, p])))
        return bool(ok)

    # -- initial state ------------------------------------------------------------------------
    @abstractmethod
    def log_psi0(self, x):
        """(log|ψ0|, arg ψ0) at x, each of shape (...,); ψ0 is normalised on R^d."""

    def psi0(self, x: np.ndarray) -> np.ndarray:
        """ψ0(x) as a complex numpy array."""
        log_abs, phase = self.log_psi0(np.asarray(x, dtype=float))
        return np.exp(log_abs + 1j * phase)

    @abstractmethod
    def sample_initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n independent samples of |ψ0|², shape (n, d)."""

    @abstractmethod
    def u0(self, x):
        """Osmotic velocity (ħ/2m) ∇ log|ψ0|² at x, shape (..., d)."""

    @abstractmethod
    def v0(self, x):
        """Current velocity (ħ/m) ∇ arg ψ0 at x, shape (..., d)."""

    # -- exact solution -----------------------------------------------------------------------
    def exact(self, times: np.ndarray) -> Prediction | None:
        """Exact moments and marginals at ``times``, or None when no closed form is known."""
        return None


# --------------------------------------------------------------------------------------------
# Solver
# --------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What the harness hands a solver besides the problem: seed, device and two callbacks.

    ``progress(fraction, **info)`` drives the harness's progress display (fraction in [0, 1]);
    ``checkpoint(prediction)`` lets a training solver hand over an intermediate prediction,
    which the harness scores for error-versus-wall-time curves. ``checkpoint_every`` is how many
    seconds the harness would like between checkpoints (None: no checkpoints wanted).
    """

    seed: int = 0
    device: str = "cpu"
    progress: Callable[..., None] = lambda fraction, **info: None
    checkpoint: Callable[[Prediction], None] = lambda prediction: None
    checkpoint_every: float | None = None

    def rng(self, stream: int = 0) -> np.random.Generator:
        """An independent numpy generator for this run's seed (stream numbers separate uses)."""
        return np.random.default_rng([self.seed, stream])


class Solver(ABC):
    """One backend: a typed ``Settings`` dataclass with documented defaults, named presets,
    ``supports`` (refuse a problem with a reason) and ``solve``.

    ``presets`` map a name (``smoke`` for tests, ``quick`` for the default run, ``paper`` for
    the published settings) to overrides of the Settings defaults.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    Settings: ClassVar[type]
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {"smoke": {}, "quick": {}, "paper": {}}
    default_preset: ClassVar[str] = "quick"
    #: True for a solver whose result does not depend on the seed (a grid solver): a sweep
    #: runs it once, at the first of its seeds, instead of repeating the same numbers
    deterministic: ClassVar[bool] = False

    def supports(self, problem: Problem, settings: Any = None) -> tuple[bool, str]:
        """(True, "") when this solver can run ``problem`` (with ``settings``, when given: e.g. a
        grid that must fit in memory), else (False, reason). The one refusal hook: the harness
        calls it once before ``solve``, and a refusal is stored as an ``unsupported`` row."""
        return True, ""

    def ladder(self, problem: Problem, settings: Any) -> list[dict[str, Any]]:
        """Settings overrides from cheap to expensive (each applied on ``settings``) whose runs
        draw this solver's work–precision line on ``problem`` (``harness sweep --ladder``), the
        rung that is ``settings`` itself given as {} (it is the fixed-budget table's row, the
        others only points of the line); [] for a solver whose line comes from its training
        checkpoints, or that has one cost."""
        return []

    @abstractmethod
    def solve(self, problem: Problem, times: np.ndarray, settings: Any, ctx: Context) -> Prediction:
        """Evolve ``problem`` and return moments and marginals at ``times`` (t = 0 may be among them)."""
