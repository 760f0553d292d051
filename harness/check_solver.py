"""Conformance checks of a Solver class (DESIGN §3): typed settings and presets, refusal of
nonsense settings, ``supports``, a valid and reproducible ``solve`` at the smoke preset on the
moving oscillator, and a score better than the ``static`` baseline there."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

import numpy as np

from harness.api import Context, Prediction, Solver, UserError
from harness.check_result import CheckFailed, CheckResult, contract, run_checks
from harness.metrics import score
from harness.runner import scored_times
from harness.settings import resolve_settings
from problems import Bosons, Oscillator
from solvers.static import StaticSolver

#: the presets every solver names (DESIGN §3); the solve checks run at ``smoke``
PRESETS = ("smoke", "quick", "paper")
#: the problem ``solve`` is checked on: one moving, spreading packet with an exact solution
OSCILLATOR = dict(d=1, p0=0.5)
N_TIMES = 5
SEED = 7
#: two solves with one seed must agree this closely (relative to each array's scale)
REPRODUCE_RTOL = 1e-6


def _numeric(kind: Any) -> tuple[bool, bool]:
    """(is numeric, admits floats) for a Settings field's annotation (bool is not numeric)."""
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) \
        else (kind,)
    return any(k in (int, float) for k in options), float in options


@dataclasses.dataclass
class _Run:
    """What the solve checks share: the oscillator, the solver's answer on it and its
    prediction (None until one passed the solve check)."""

    problem: Oscillator
    times: np.ndarray
    supported: tuple[bool, str] = (True, "")
    prediction: Prediction | None = None


def check_solver(cls: type[Solver]) -> list[CheckResult]:
    """Every check of ``cls``; later checks that need an earlier one's result fail with it."""
    problem = Oscillator(**OSCILLATOR)
    run = _Run(problem, scored_times(problem, N_TIMES))
    return run_checks([
        ("contract", lambda: contract(cls)),
        ("settings", lambda: _settings(cls)),
        ("settings_refuse_nonsense", lambda: _nonsense(cls)),
        ("supports", lambda: _supports(cls, run)),
        ("solve", lambda: _solve(cls, run)),
        ("reproducible", lambda: _reproducible(cls, run)),
        ("beats_static", lambda: _beats_static(cls, run)),
    ])


def _settings(cls: type[Solver]) -> str:
    if not dataclasses.is_dataclass(cls.Settings):
        raise CheckFailed(f"{cls.__name__}.Settings is not a dataclass")
    missing = [p for p in (*PRESETS, cls.default_preset) if p not in cls.presets]
    if missing:
        raise CheckFailed(f"no preset {', '.join(missing)} (presets: {', '.join(cls.presets)})")
    for preset in cls.presets:
        settings = resolve_settings(cls, preset, {})
        if not isinstance(settings, cls.Settings):
            raise CheckFailed(f"preset {preset} gave {type(settings).__name__}, not Settings")
    return f"Settings is a dataclass; presets {', '.join(cls.presets)} resolve"


def _nonsense(cls: type[Solver]) -> str:
    """Each numeric setting set to −1 must be refused; NaN (float settings) should be too, but
    the command line already refuses 'nan' for every float, so accepting it is only noted."""
    resolve_settings(cls, "smoke", {})  # the base every probe changes must itself be valid
    hints = typing.get_type_hints(cls.Settings)
    accepted, nan_accepted, tried = [], [], []
    for f in dataclasses.fields(cls.Settings):
        numeric, floats = _numeric(hints[f.name])
        if not numeric:
            continue
        tried.append(f.name)
        for value, where in ((-1, accepted), *(((math.nan, nan_accepted),) if floats else ())):
            try:
                resolve_settings(cls, "smoke", {f.name: value})
            except UserError:
                continue
            where.append(f.name)
    if accepted:
        raise CheckFailed(f"accepted -1 for {', '.join(accepted)} without a UserError")
    if not tried:
        return "no numeric settings"
    note = (f"; note: nan accepted for {', '.join(nan_accepted)} (refused on the command line, "
            f"not from Python)") if nan_accepted else ""
    return f"-1 refused for {', '.join(tried)}; nan tried on the float ones{note}"


def _answer(solver: Solver, problem, settings) -> tuple[bool, str]:
    answer = solver.supports(problem, settings)
    if not (isinstance(answer, tuple) and len(answer) == 2
            and isinstance(answer[0], (bool, np.bool_)) and isinstance(answer[1], str)):
        raise CheckFailed(f"supports() on {problem.name} d={problem.d} returned {answer!r}, "
                          f"not a (bool, str) tuple")
    if not answer[0] and not answer[1].strip():
        raise CheckFailed(f"supports() refused {problem.name} d={problem.d} without a reason")
    return bool(answer[0]), answer[1]


def _supports(cls: type[Solver], run: _Run) -> str:
    solver, settings = cls(), resolve_settings(cls, "smoke", {})
    run.supported = _answer(solver, run.problem, settings)
    bosons = _answer(solver, Bosons(d=2), settings)
    says = [f"{name}: {'yes' if ok else 'no (' + why + ')'}"
            for name, (ok, why) in (("oscillator d=1", run.supported), ("bosons d=2", bosons))]
    return "; ".join(says)


def _solve_once(cls: type[Solver], run: _Run) -> Prediction:
    settings = resolve_settings(cls, "smoke", {})
    return cls().solve(run.problem, run.times.copy(), settings, Context(seed=SEED))


def _solve(cls: type[Solver], run: _Run) -> str:
    if not run.supported[0]:
        return f"skipped: the solver refuses the oscillator ({run.supported[1]})"
    pred = _solve_once(cls, run)
    if not isinstance(pred, Prediction):
        raise CheckFailed(f"solve() returned {type(pred).__name__}, not a Prediction")
    times_ok = pred.times.shape == run.times.shape and np.allclose(pred.times, run.times, rtol=0,
                                                                    atol=1e-12)
    if not times_ok:
        raise CheckFailed(f"prediction times {np.round(pred.times, 4).tolist()} differ from the "
                          f"requested {np.round(run.times, 4).tolist()}")
    edges = run.problem.marginal_edges()
    if pred.edges.shape != edges.shape or not np.allclose(pred.edges, edges, rtol=0, atol=1e-12):
        raise CheckFailed(f"marginals on {pred.edges.size - 1} bins over [{pred.edges[0]:g}, "
                          f"{pred.edges[-1]:g}], not problem.marginal_edges() ({edges.size - 1} "
                          f"over [{edges[0]:g}, {edges[-1]:g}])")
    if pred.mean.shape[1] != run.problem.d:
        raise CheckFailed(f"prediction has {pred.mean.shape[1]} coordinates, the problem "
                          f"{run.problem.d}")
    if not pred.finite:
        raise CheckFailed("prediction contains NaN or inf")
    run.prediction = pred
    return (f"oscillator d=1, p0=0.5: a Prediction at the {run.times.size} requested times, on "
            f"the problem's bins, finite")


def _reproducible(cls: type[Solver], run: _Run) -> str:
    if not run.supported[0]:
        return "skipped: the solver refuses the oscillator"
    if run.prediction is None:
        raise CheckFailed("no valid prediction to reproduce (see solve)")
    again, first = _solve_once(cls, run), run.prediction
    for field in ("mean", "var", "marginals"):
        a, b = getattr(first, field), np.asarray(getattr(again, field), dtype=float)
        scale = float(np.max(np.abs(a))) or 1.0
        if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=REPRODUCE_RTOL * scale):
            gap = float(np.max(np.abs(a - b))) if a.shape == b.shape else math.inf
            raise CheckFailed(f"seed {SEED} twice: {field} differs by {gap:.3g} (allowed "
                              f"{REPRODUCE_RTOL:g} × {scale:.3g}); draw randomness from ctx.rng()")
    return f"seed {SEED} twice: mean, var and marginals agree to {REPRODUCE_RTOL:g} relative"


def _beats_static(cls: type[Solver], run: _Run) -> str:
    if cls.name == StaticSolver.name:
        return "static is the baseline itself"
    if not run.supported[0]:
        return "skipped: the solver refuses the oscillator"
    if run.prediction is None:
        raise CheckFailed("no valid prediction to score (see solve)")
    exact = run.problem.exact(run.times)
    static = StaticSolver().solve(run.problem, run.times,
                                  resolve_settings(StaticSolver, "smoke", {}), Context(seed=SEED))
    mine, base = score(run.prediction, exact), score(static, exact)
    text = ", ".join(f"{k} {mine[k]:.3g} (static {base[k]:.3g})"
                     for k in ("var_rel_l2", "density_l1"))
    if not (mine["var_rel_l2"] < base["var_rel_l2"] or mine["density_l1"] < base["density_l1"]):
        raise CheckFailed(f"no better than static on the oscillator: {text}")
    return text
