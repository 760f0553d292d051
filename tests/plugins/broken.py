"""Solvers and problems that each break one contract on purpose, for the tests of `harness check`:
``BROKEN`` maps each class to the check it must fail."""

from dataclasses import dataclass

import numpy as np

from harness.api import Prediction, Solver
from problems.oscillator import Oscillator
from solvers.static import StaticSolver


class WrongTimes(StaticSolver):
    """Drops the last requested time."""

    name = "broken_times"

    def solve(self, problem, times, settings, ctx):
        return super().solve(problem, times[:-1], settings, ctx)


class OtherBins(StaticSolver):
    """Bins of its own choosing instead of problem.marginal_edges()."""

    name = "broken_bins"

    def solve(self, problem, times, settings, ctx):
        pred = super().solve(problem, times, settings, ctx)
        edges = np.linspace(-1.0, 1.0, pred.edges.size)
        return Prediction(pred.times, pred.mean, pred.var, pred.marginals, edges)


class Unseeded(StaticSolver):
    """Noise from a generator that ignores ctx.seed."""

    name = "broken_seed"

    def solve(self, problem, times, settings, ctx):
        pred = super().solve(problem, times, settings, ctx)
        noise = np.random.default_rng().normal(0.0, 1e-3, pred.mean.shape)
        return Prediction(pred.times, pred.mean + noise, pred.var, pred.marginals, pred.edges)


class NoBetter(StaticSolver):
    """The static prediction under another name: no better than the baseline."""

    name = "broken_no_better"


@dataclass
class LaxSettings:
    dt: float = 0.01  # never validated


@dataclass
class NoSettings:
    pass


class AcceptsNonsense(StaticSolver):
    """Settings without a __post_init__: dt = −1 goes through."""

    name = "broken_settings"
    Settings = LaxSettings
    presets = {"smoke": {}, "quick": {}, "paper": {}}

    def solve(self, problem, times, settings, ctx):
        return super().solve(problem, times, StaticSolver.Settings(n_samples=10_000), ctx)


class NoPresets(StaticSolver):
    """No presets at all: the registry refuses to load it."""

    name = "broken_presets"
    presets = {}


class BareSupports(StaticSolver):
    """supports() answers a bare bool instead of (bool, reason)."""

    name = "broken_supports"

    def supports(self, problem, settings=None):
        return True


class Crashes(Solver):
    """solve() raises: the kit reports it as a failed check, it does not crash."""

    name = "broken_crash"
    Settings = NoSettings

    def solve(self, problem, times, settings, ctx):
        raise RuntimeError("deliberate crash")


@dataclass(frozen=True)
class WrongGradient(Oscillator):
    """∇V twice what V says."""

    name = "broken_gradient"
    variants = {}

    def grad_potential(self, x, t):
        return 2 * super().grad_potential(x, t)


@dataclass(frozen=True)
class Unnormalised(Oscillator):
    """log|ψ0| shifted by 0.3: ∫|ψ0|² = e^0.6."""

    name = "broken_norm"
    variants = {}

    def log_psi0(self, x):
        log_abs, phase = super().log_psi0(x)
        return log_abs + 0.3, phase


@dataclass(frozen=True)
class WideSampler(Oscillator):
    """sample_initial draws 20 % wider than |ψ0|²."""

    name = "broken_sampler"
    variants = {}

    def sample_initial(self, n, rng):
        return self.x0 + 1.2 * self.sigma0 * rng.standard_normal((n, self.d))


@dataclass(frozen=True)
class FlippedOsmotic(Oscillator):
    """u0 of the wrong sign (points away from the packet's centre)."""

    name = "broken_u0"
    variants = {}

    def u0(self, x):
        return -super().u0(x)


@dataclass(frozen=True)
class NumpyOnly(Oscillator):
    """v0 returns numpy whatever array it is given: torch and jax callers get the wrong kind."""

    name = "broken_v0"
    variants = {}

    def v0(self, x):
        return np.asarray(super().v0(np.asarray(x)))


@dataclass(frozen=True)
class SmallBox(Oscillator):
    """A box of ±2 widths: a few per cent of the mass lies outside it."""

    name = "broken_box"
    variants = {}

    @property
    def box(self):
        return -2 * self.sigma0, 2 * self.sigma0


@dataclass(frozen=True)
class PhaseOfOtherSign(Oscillator):
    """arg ψ0 of the opposite momentum to v0: the current velocity contradicts ψ0."""

    name = "broken_phase"
    variants = {}
    p0: float = 0.5

    def log_psi0(self, x):
        log_abs, phase = super().log_psi0(x)
        return log_abs, -phase


@dataclass(frozen=True)
class WrongCentreOfMass(Oscillator):
    """Declares a centre of mass in a trap of twice the real frequency."""

    name = "broken_com"
    variants = {}

    def separable_com(self):
        return 2 * self.omega, self.omega


BROKEN = {
    WrongTimes: "solve", OtherBins: "solve", Unseeded: "reproducible", NoBetter: "beats_static",
    AcceptsNonsense: "settings_refuse_nonsense", NoPresets: "contract", BareSupports: "supports",
    Crashes: "solve",
    WrongGradient: "grad_potential", Unnormalised: "psi0_normalised", WideSampler: "sample_initial",
    FlippedOsmotic: "u0", NumpyOnly: "v0", SmallBox: "box", PhaseOfOtherSign: "v0",
    WrongCentreOfMass: "separable_com",
}
