"""The PINN solver: its derivatives (network jet, ansatz, TDSE residual on an exact solution),
settings validation, determinism, divergence, and accuracy against the static baseline.

The fast tests take well under a minute on 2 CPU cores; the preset acceptance checks are
``slow`` (minutes)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.api import Context, Prediction, SolverDiverged, UserError
from harness.metrics import score
from harness.settings import resolve_settings
from problems import Bosons, Oscillator
from solvers.pinn import PINNSolver, Settings
from solvers.pinn.net import PsiNet
from solvers.pinn.ansatz import Ansatz
from solvers.pinn.collocation import directions
from solvers.pinn.train import Trainer

TIMES = np.linspace(0.0, 1.0, 21)


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: a second intra-op thread only waits at barriers (on a busy
    machine, 10× slower); the solver picks its own count, the derivative checks run on one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def static(ref: Prediction) -> Prediction:
    """The static baseline: the t = 0 state at every time."""
    k = ref.times.size
    rep = lambda a: np.repeat(a[:1], k, axis=0)  # noqa: E731
    return Prediction(ref.times, rep(ref.mean), rep(ref.var), rep(ref.marginals), ref.edges)


# --------------------------------------------------------------------------------------------
# Derivatives
# --------------------------------------------------------------------------------------------


def jet_by_jvp(f, z, tangents, n_curv):
    """Reference jet by nested torch.func.jvp: f (N, d+1) -> (N, 2)."""
    n = z.shape[0]
    first, second = [], []
    for j, v in enumerate(tangents):
        v = v.expand(n, z.shape[1])
        along = lambda y, v=v: torch.func.jvp(f, (y,), (v,))[1]  # noqa: E731
        d1, d2 = torch.func.jvp(along, (z,), (v,))
        first.append(d1)
        if j >= tangents.shape[0] - n_curv:
            second.append(d2)
    return f(z), torch.stack(first), torch.stack(second)


@pytest.mark.parametrize("per_point", [False, True])
def test_jet_matches_nested_forward_mode(per_point):
    d, n = 3, 17
    net = PsiNet(d, 24, 2, torch.Generator().manual_seed(1), torch.float64)
    z = torch.rand(n, d + 1, dtype=torch.float64) * 2 - 1
    if per_point:  # Hutchinson-style: a direction per point
        tangents = torch.randn(4, n, d + 1, dtype=torch.float64)
    else:
        tangents = torch.eye(d + 1, dtype=torch.float64)[:, None, :]
    got = net.jet(z, tangents, 3)
    want = jet_by_jvp(net, z, tangents, 3)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("form", ["additive", "log"])
@pytest.mark.parametrize("hard_ic,hard_bc", [(True, False), (False, True), (True, True)])
def test_ansatz_derivatives_match_autograd(hard_ic, hard_bc, form):
    """∂tψ and Δψ of the composite ansatz (ψ0 + τ B A N) against torch.func on ansatz.psi."""
    problem = Bosons(d=2)
    net = PsiNet(2, 16, 1, torch.Generator().manual_seed(2), torch.float64)
    ansatz = Ansatz(problem, net, hard_ic, hard_bc, amplitude=1.7, form=form)
    n = 9
    x = (torch.rand(n, 2, dtype=torch.float64) - 0.5) * 2
    t = torch.rand(n, dtype=torch.float64)
    dirs = directions(2, n, 0, None, torch.float64, "cpu")
    psi, psi_t, lap = ansatz.derivatives(x, t, dirs)

    def one(xi, ti):
        return ansatz.psi(xi[None], ti[None])[0]

    want_t = torch.stack([torch.func.jacfwd(one, argnums=1)(x[i], t[i]) for i in range(n)])
    hess = torch.stack([torch.func.hessian(one, argnums=0)(x[i], t[i]) for i in range(n)])
    torch.testing.assert_close(psi, ansatz.psi(x, t))
    torch.testing.assert_close(psi_t, want_t)
    torch.testing.assert_close(lap, torch.diagonal(hess, dim1=-2, dim2=-1).sum(-1))


def exact_packet(problem: Oscillator):
    """The oscillator's exact ψ(x, t) in closed form (a squeezed coherent state, every axis
    alike): ψ = Π_i exp(α y_i² + β y_i + γ), y = x − c, with Γ = 2ħα/(im) solving Γ' = −Γ² − ω²:
    D = ω cos ωt + Γ0 sin ωt, Γ = D'/D, β = β0 ω/D, γ = γ0 − ½ log(D/ω) + i(ħ/2m) β0² sin(ωt)/D."""
    hb, m, w, c = problem.hbar, problem.m, problem.omega, problem.centre
    s2, y0, p0 = problem.sigma0**2, problem.x0 - problem.centre, problem.p0
    a0 = -1 / (4 * s2)
    b0 = y0 / (2 * s2) + 1j * p0 / hb
    g0 = -y0**2 / (4 * s2) + 1j * p0 * c / hb - 0.25 * math.log(2 * math.pi * s2)
    G0 = -2j * hb * a0 / m

    def psi(x, t, log=False):  # x (N, d), t (N,) real tensors -> (N, 2): ψ or log ψ
        t = t.to(torch.complex128)[:, None]
        D = w * torch.cos(w * t) + G0 * torch.sin(w * t)
        Gam = w * (G0 * torch.cos(w * t) - w * torch.sin(w * t)) / D
        alpha = 1j * m * Gam / (2 * hb)
        beta = b0 * w / D
        gamma = g0 - 0.5 * torch.log(D / w) + 1j * hb / (2 * m) * b0**2 * torch.sin(w * t) / D
        y = x.to(torch.complex128) - c
        val = (alpha * y * y + beta * y + gamma).sum(-1)
        val = val if log else torch.exp(val)
        return torch.stack([val.real, val.imag], dim=-1)

    return psi


@pytest.mark.parametrize("form", ["additive", "log"])
@pytest.mark.parametrize("d", [1, 2])
def test_residual_vanishes_on_exact_packet(d, form):
    """The residual code, fed the exact moving squeezed packet through a stand-in network whose
    jet is computed by nested forward mode, gives ~0; a slightly wrong ψ does not."""
    problem = Oscillator(d=d, p0=0.5, x0=0.2, centre=0.1, sigma0=0.3)
    exact = exact_packet(problem)

    class ExactNet(torch.nn.Module):
        def __init__(self, scale=1.0):
            super().__init__()
            self.scale = scale

        def physical(self, z):
            lo, hi = problem.box
            x = 0.5 * (lo + hi) + 0.5 * (hi - lo) * z[:, :-1]
            t = (z[:, -1] + 1) * problem.T / 2
            return x, t

        def forward(self, z):
            x, t = self.physical(z)
            return exact(x, self.scale * t, log=form == "log")

        def jet(self, z, tangents, n_curv):
            return jet_by_jvp(self.forward, z, tangents, n_curv)

    n = 64
    gen = torch.Generator().manual_seed(3)
    lo, hi = problem.box
    x = lo + (hi - lo) * torch.rand(n, d, generator=gen, dtype=torch.float64) * 0.5 + (hi - lo) / 4
    t = torch.rand(n, generator=gen, dtype=torch.float64)
    dirs = directions(d, n, 0, None, torch.float64, "cpu")
    ansatz = Ansatz(problem, ExactNet(), hard_ic=False, hard_bc=False, amplitude=1.0, form=form)
    psi0 = ansatz.psi(x, torch.zeros(n, dtype=torch.float64))
    torch.testing.assert_close(psi0, ansatz.psi0(x))  # the closed form starts at ψ0
    r = ansatz.residual(x, t, dirs, 1.0)
    scale = ansatz.psi(x, t).abs().max()
    assert float(r.abs().max()) < 1e-9 * max(1.0, float(scale))
    wrong = Ansatz(problem, ExactNet(scale=1.05), hard_ic=False, hard_bc=False, amplitude=1.0,
                   form=form)
    assert float(wrong.residual(x, t, dirs, 1.0).abs().max()) > 1e-2
    if form == "log":  # the relative residual (÷ ψ) agrees with the plain one divided by ψ
        rel = ansatz.residual(x, t, dirs, 1.0, relative=True)
        assert float(rel.abs().max()) < 1e-9
        plain = torch.complex(*wrong.residual(x, t, dirs, 1.0).unbind(-1))
        psi = torch.complex(*wrong.psi(x, t).unbind(-1))
        torch.testing.assert_close(torch.view_as_complex(
            wrong.residual(x, t, dirs, 1.0, relative=True).contiguous()), plain / psi)


def test_hutchinson_laplacian_is_unbiased():
    problem = Bosons(d=3)
    net = PsiNet(3, 16, 1, torch.Generator().manual_seed(4), torch.float64)
    ansatz = Ansatz(problem, net, True, False, amplitude=1.0)
    x = torch.full((1, 3), 0.3, dtype=torch.float64).expand(20000, 3)
    t = torch.full((20000,), 0.5, dtype=torch.float64)
    exact = ansatz.derivatives(x[:1], t[:1], directions(3, 1, 0, None, torch.float64, "cpu"))[2]
    gen = torch.Generator().manual_seed(5)
    est = ansatz.derivatives(x, t, directions(3, 20000, 1, gen, torch.float64, "cpu"))[2]
    spread = est.std(0) / math.sqrt(est.shape[0])
    assert torch.all((est.mean(0) - exact[0]).abs() < 5 * spread + 1e-12)


# --------------------------------------------------------------------------------------------
# Settings, determinism, divergence
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [dict(width=0), dict(epochs=-5), dict(lr=0.0), dict(lr=float("inf")),
                                 dict(focus=1.0), dict(dtype="float16"), dict(collocation="sobol"),
                                 dict(predict="mcmc"), dict(probes=-1), dict(w_residual=0.0),
                                 dict(pool=10, n_colloc=100), dict(grid_points=3),
                                 dict(depth=1.5), dict(focus_on="density"),
                                 dict(flow_jitter=0.0), dict(residual="relative")])
def test_bad_settings_are_refused_in_one_line(bad):
    with pytest.raises(UserError) as info:
        Settings(**bad)
    assert "\n" not in str(info.value) and str(info.value).startswith("pinn:")


def test_presets_resolve_and_bad_overrides_are_refused():
    for preset in PINNSolver.presets:
        resolve_settings(PINNSolver, preset, {})
    with pytest.raises(UserError):
        resolve_settings(PINNSolver, "quick", {"width": "-3"})
    with pytest.raises(UserError):
        resolve_settings(PINNSolver, "quick", {"collocation": "halton"})


def test_supports_refuses_where_static_is_not_beaten_clearly():
    """The refusal rule: d ≤ 4 (measured), and only where the variance moves (by the classical
    flow) at least MARGIN times the PINN's measured error at that d; where it was measured to
    beat static clearly (oscillator d = 1, bosons d = 2, 3) it runs."""
    from problems.harmonic_bosons import HarmonicBosons

    solver = PINNSolver()
    for problem in (Oscillator(d=1, p0=0.5), Bosons(d=2), Bosons(d=3), HarmonicBosons(d=3)):
        assert solver.supports(problem) == (True, ""), problem
    for problem in (Oscillator(d=8, p0=0.5), HarmonicBosons(d=32)):
        ok, reason = solver.supports(problem)
        assert not ok and f"d = {problem.d}" in reason and "static" in reason
    # bosons d = 4: static 0.87 < 2 × 0.473; g = 0: stationary, static is exact
    for problem in (Bosons(d=4), Bosons(d=2, g=0.0)):
        ok, reason = solver.supports(problem)
        assert not ok and "would not beat static clearly" in reason, reason


def test_supports_refuses_grids_too_large():
    solver = PINNSolver()
    assert solver.supports(Bosons(d=2), Settings(predict="grid", grid_points=3000)) == (
        False, "pinn: a grid of 3000^2 points is too large to evaluate; use predict=is")
    assert solver.supports(Bosons(d=2), Settings()) == (True, "")


TINY = dict(width=16, depth=1, epochs=20, n_colloc=200, log_every=5, grid_points=101)


def test_seeded_runs_are_identical_and_seeds_differ():
    problem = Oscillator(p0=0.5)
    run = lambda seed: PINNSolver().solve(problem, TIMES, Settings(**TINY), Context(seed=seed))  # noqa: E731
    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a.marginals, b.marginals)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert not np.array_equal(a.mean, c.mean)
    dg = a.diagnostics
    assert dg["epochs"] == 20 and dg["n_params"] > 0 and dg["fit_s"] > 0 and dg["predict_s"] > 0
    assert "loss_residual" in dg["loss_curve"] and "norm_drift_max" in dg
    assert a.finite and np.allclose(a.marginals.sum(-1) * np.diff(a.edges)[0], 1, atol=1e-3)


def test_nan_loss_raises_diverged():
    with pytest.raises(SolverDiverged):
        PINNSolver().solve(Oscillator(), TIMES, Settings(**dict(TINY, lr=1e30)), Context())


def test_progress_checkpoints_and_soft_conditions():
    seen, ckpts = [], []
    ctx = Context(progress=lambda f, **i: seen.append((f, i)), checkpoint=ckpts.append,
                  checkpoint_every=1e-9)
    s = Settings(**dict(TINY, hard_ic=False, hard_bc=False, lbfgs_steps=3, w_norm=1.0,
                        norm_times=2, n_norm=32))
    pred = PINNSolver().solve(Bosons(d=2), TIMES, s, ctx)
    assert seen and seen[-1][0] == pytest.approx(1.0) and "loss" in seen[-1][1]
    assert ckpts and all(isinstance(p, Prediction) and p.finite for p in ckpts)
    assert {"loss_initial", "loss_boundary", "loss_norm"} <= set(pred.diagnostics["loss_curve"])


def test_importance_sampling_prediction_records_ess():
    s = Settings(**dict(TINY, epochs=5, predict="is", n_samples=3000))
    pred = PINNSolver().solve(Bosons(d=2), TIMES[:4], s, Context())
    assert pred.finite and pred.n_samples and 0 < pred.diagnostics["ess_min"] <= 3000


def test_smoke_beats_static_on_the_moving_oscillator():
    problem = Oscillator(p0=0.5)
    ref = problem.exact(TIMES)
    s = resolve_settings(PINNSolver, "smoke", {})
    pred = PINNSolver().solve(problem, TIMES, s, Context(seed=0))
    ours, base = score(pred, ref), score(static(ref), ref)
    assert ours["density_l1"] < 0.5 * base["density_l1"], (ours, base)


# --------------------------------------------------------------------------------------------
# Acceptance (quick preset; minutes)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_quick_oscillator_beats_static_fivefold():
    problem = Oscillator(d=1, p0=0.5)
    times = np.linspace(0.0, problem.T, 101)
    ref = problem.exact(times)
    s = resolve_settings(PINNSolver, "quick", {})
    pred = PINNSolver().solve(problem, times, s, Context(seed=0))
    ours, base = score(pred, ref), score(static(ref), ref)
    assert ours["density_l1"] * 5 <= base["density_l1"], (ours, base)


@pytest.mark.slow
def test_quick_bosons_d2_beats_static(tmp_path):
    reference = pytest.importorskip("harness.reference")
    problem = Bosons(d=2)
    times = np.linspace(0.0, problem.T, 101)
    ref = reference.compute_reference(problem, times, tmp_path).prediction
    s = resolve_settings(PINNSolver, "quick", {})
    pred = PINNSolver().solve(problem, times, s, Context(seed=0))
    ours, base = score(pred, ref), score(static(ref), ref)
    assert ours["density_l1"] < base["density_l1"], (ours, base)
    assert ours["var_rel_l2"] < base["var_rel_l2"], (ours, base)


def test_time_dependent_potential_with_scalar_time():
    """A potential that takes one float time per call (a plugin's driven trap written with
    math.sin) is evaluated per distinct collocation time; the residual stays correct."""
    import math
    from dataclasses import dataclass

    from problems.driven_trap import DrivenTrap

    @dataclass(frozen=True)
    class ScalarTimeTrap(DrivenTrap):
        def _centre(self, t, xp):
            return self.A * math.sin(self.Omega * t)

    problem = ScalarTimeTrap()
    s = Settings(**dict(TINY, epochs=3))
    tr = Trainer(problem, s, Context())
    assert not tr.ansatz.vector_time and tr.sampler.discrete_time
    x, t = tr.sampler.interior(50)
    assert torch.unique(t).numel() <= 50
    V = tr.ansatz.potential(x, t)
    want = torch.stack([problem.potential(x[i:i + 1], float(t[i]))[0] for i in range(50)])
    torch.testing.assert_close(V, want)
    assert Trainer(Bosons(d=2), s, Context()).ansatz.vector_time
    assert Trainer(DrivenTrap(), s, Context()).ansatz.vector_time


def test_found_by_the_registry():
    from harness.registry import discover

    assert discover().solver("pinn") is PINNSolver


# --------------------------------------------------------------------------------------------
# Collocation that follows the state (focus_on="flow")
# --------------------------------------------------------------------------------------------


def test_flow_is_exact_in_distribution_for_a_quadratic_potential():
    """ψ0's samples moved by Newton's equations (momenta m·v0 plus the osmotic rms spread)
    reproduce the exact moments of a Gaussian packet in a quadratic potential."""
    from problems.harmonic_bosons import HarmonicBosons
    from solvers.pinn.flow import Flow

    t = np.linspace(0.0, 1.0, 6)
    hb = HarmonicBosons(d=3)  # inverted relative modes: Var(x_1) grows 4.7×
    mean, sd = Flow(hb, 20_000, 100, np.random.default_rng(0)).moments(t)
    np.testing.assert_allclose(sd**2, np.repeat(hb.exact_var(t)[:, None], 3, 1), rtol=0.04)
    osc = Oscillator(d=2, p0=0.5)
    mean, sd = Flow(osc, 20_000, 100, np.random.default_rng(1)).moments(t)
    ex = osc.exact(t)
    np.testing.assert_allclose(mean, ex.mean, atol=0.01)
    np.testing.assert_allclose(sd**2, ex.var, rtol=0.04)


def test_flow_focus_points_follow_the_packet_and_norm_weights_are_unbiased():
    """Focus points at late times sit around the moved packet, not ψ0's cloud; the norm term's
    weights 1/q integrate a density normalised on the box to 1."""
    from solvers.pinn.collocation import Sampler

    problem = Oscillator(d=2, p0=0.5)
    s = Settings(focus=1.0 - 1e-9, focus_on="flow", focus_width=3.0)
    gen = torch.Generator().manual_seed(0)
    sampler = Sampler(problem, s, gen, torch.float64, "cpu", np.random.default_rng(0))
    x, t = sampler.interior(20_000)
    late = t > 0.9
    want = problem.exact(np.array([0.95])).mean[0]
    np.testing.assert_allclose(x[late].mean(0).numpy(), want, atol=0.02)
    tn, xs, inv_q = sampler.norm_points(4, 20_000)
    ex = problem.exact(tn.numpy())
    mu, var = (torch.as_tensor(a)[:, None, :] for a in (ex.mean, ex.var))
    rho = torch.exp(-0.5 * (xs - mu) ** 2 / var).prod(-1) / (2 * math.pi * var).sqrt().prod(-1)
    mass = (rho * inv_q).mean(-1)
    torch.testing.assert_close(mass, torch.ones(4, dtype=torch.float64), atol=0.03, rtol=0)


def test_backbone_derivatives_match_autograd_and_it_nearly_solves_a_gaussian_problem():
    """The flow's Gaussian backbone in the log ansatz: ∂tψ and Δψ against torch.func; with the
    network's output zeroed, the backbone alone leaves a residual far below ψ0's on the
    inverted harmonic bosons (a Gaussian ψ0 in a quadratic potential)."""
    from problems.harmonic_bosons import HarmonicBosons
    from solvers.pinn.backbone import Backbone
    from solvers.pinn.flow import Flow

    problem = HarmonicBosons(d=3)
    net = PsiNet(3, 16, 1, torch.Generator().manual_seed(2), torch.float64)
    ansatz = Ansatz(problem, net, True, False, amplitude=1.0, form="log")
    flow = Flow(problem, 20_000, 200, np.random.default_rng(0))
    ansatz.backbone = Backbone(flow, problem.hbar, torch.float64, "cpu")
    n = 7
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(n, 3, generator=gen, dtype=torch.float64) * 0.3
    t = torch.rand(n, generator=gen, dtype=torch.float64)
    dirs = directions(3, n, 0, None, torch.float64, "cpu")
    psi, psi_t, lap = ansatz.derivatives(x, t, dirs)

    def one(xi, ti):
        return ansatz.psi(xi[None], ti[None])[0]

    want_t = torch.stack([torch.func.jacfwd(one, argnums=1)(x[i], t[i]) for i in range(n)])
    fwd2 = torch.func.jacfwd(torch.func.jacfwd(one, argnums=0), argnums=0)  # forward only: the
    hess = torch.stack([fwd2(x[i], t[i]) for i in range(n)])  # backbone is computed under no_grad
    torch.testing.assert_close(psi, ansatz.psi(x, t))
    torch.testing.assert_close(psi_t, want_t)
    torch.testing.assert_close(lap, torch.diagonal(hess, dim1=-2, dim2=-1).sum(-1))
    with torch.no_grad():
        net.w_out.zero_()
        net.b_out.zero_()
    x = torch.randn(2000, 3, generator=gen, dtype=torch.float64) * 0.3
    t = torch.full((2000,), 0.7, dtype=torch.float64)
    with torch.no_grad():
        with_g = ansatz.residual(x, t, dirs, 1.0, relative=True)
    ansatz.backbone = None
    with torch.no_grad():
        without = ansatz.residual(x, t, dirs, 1.0, relative=True)
    # the global phase (the energy) is left to the network: compare spreads at one time
    spread = lambda r: float((r - r.mean(0)).square().sum(-1).mean().sqrt())  # noqa: E731
    assert spread(with_g) < 0.05 * spread(without), (spread(with_g), spread(without))
