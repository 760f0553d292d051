"""The DSM solver: derivatives, residuals, settings, determinism, divergence, and accuracy.

Fast tests (CI, -m "not slow") run in well under two minutes on 2 CPU cores; the quick-preset
accuracy checks against the exact oscillator and the certified bosons reference are slow."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from dsm_epochs import eager_and_compiled
from harness.api import Context, SolverDiverged, UserError
from harness.metrics import score
from problems import Bosons, Oscillator
from problems.driven_trap import DrivenTrap
from solvers.dsm import DSMSolver, Settings
from solvers.dsm.loss import func_derivatives, residuals, time_weights
from solvers.dsm.nets import PairMLP
from solvers.dsm.sampling import predict, sample_paths
from solvers.dsm.train import param_groups, training_points

TIMES = np.linspace(0.0, 1.0, 101)[1:]


def settings(preset: str, **overrides) -> Settings:
    return Settings(**{**DSMSolver.presets[preset], **overrides})


def static_prediction(problem, times):
    """The static baseline: the t = 0 state at every time."""
    from harness.api import Prediction

    ex = problem.exact(np.zeros(1))
    k = len(times)
    return Prediction(times, np.repeat(ex.mean, k, 0), np.repeat(ex.var, k, 0),
                      np.repeat(ex.marginals, k, 0), ex.edges)


def test_smoke_follows_a_driven_trap():
    """A time-dependent potential (∇V at one time per loss point): the smoke preset tracks the
    driven centre (mean RMSE 0.010, var_rel_l2 0.11 when written; static: 0.098, 0.32)."""
    problem = DrivenTrap(d=1)
    times = np.linspace(0.0, problem.T, 101)[1:]
    ours = score(DSMSolver().solve(problem, times, settings("smoke"), Context(seed=0)),
                 problem.exact(times))
    assert ours["mean_rmse"] <= 0.03 and ours["var_rel_l2"] <= 0.2


def tiny_net(d, depth=1, activation="tanh", width=12, seed=0, time_readout=False):
    """A float64 net; with ``time_readout``, its readout's time slope set at random (not 0)."""
    net = PairMLP(d, width, depth, activation, torch.Generator().manual_seed(seed), torch.float64,
                  time_readout=time_readout)
    if time_readout:
        with torch.no_grad():
            net.readout_t.normal_(generator=torch.Generator().manual_seed(seed + 1))
    return net


# ---------------------------------------------------------------------------------------------
# derivatives
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d,depth,activation,time_readout", [
    (1, 1, "tanh", False), (3, 1, "tanh", False), (2, 2, "sin", False), (4, 2, "tanh", False),
    (3, 2, "tanh", True)])
def test_jet_matches_torch_func(d, depth, activation, time_readout):
    """The fused derivative sweep agrees with nested torch.func jvp/jacfwd to rounding."""
    net = tiny_net(d, depth, activation, time_readout=time_readout)
    x = torch.randn(9, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = torch.rand(9, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fast = net.jet(x, t)
    ref = func_derivatives(net, x, t)
    for name, a, b in zip(("out", "out_t", "jac", "grad_div"), fast, ref):
        assert a.shape == b.shape, name
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)
    torch.testing.assert_close(fast[0], net(x, t), rtol=1e-12, atol=1e-12)


def test_onednn_layers_match_torch_matmul():
    """The oneDNN fp32 path (the default on AVX-512 CPUs; its own backward and weight-gradient
    op) gives the same derivatives and parameter gradient as torch's own linear to fp32 rounding."""
    problem = Bosons(d=3)
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(8)) * 0.3
    t = torch.rand(200, 1, generator=torch.Generator().manual_seed(9))
    outs, grads = [], []
    for onednn in (True, False):
        net = PairMLP(3, 48, 2, "tanh", torch.Generator().manual_seed(0), onednn=onednn)
        outs.append(net.jet(x, t))
        r_u, r_v = residuals(net, problem, x, t)
        ((r_u**2).sum() + (r_v**2).sum()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-4 * grads[1].abs().max().item())


def test_jet_matches_finite_differences():
    """∂t NN, the Jacobian and ∇(div NN) against central differences of the plain network."""
    d, h = 3, 1e-4
    net = tiny_net(d)
    x = torch.randn(5, d, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    t = torch.rand(5, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out, out_t, jac, grad_div = net.jet(x, t)
        fd_t = (net(x, t + h) - net(x, t - h)) / (2 * h)
        eye = torch.eye(d, dtype=torch.float64)
        fd_jac = torch.stack([(net(x + h * eye[k], t) - net(x - h * eye[k], t)) / (2 * h)
                              for k in range(d)], dim=-1)

        def div(y):
            return sum((net(y + h * eye[i], t)[..., i] - net(y - h * eye[i], t)[..., i]) / (2 * h)
                       for i in range(d))

        H = 1e-3
        fd_gdiv = torch.stack([(div(x + H * eye[k]) - div(x - H * eye[k])) / (2 * H)
                               for k in range(d)], dim=-1)
    torch.testing.assert_close(out_t, fd_t, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(jac, fd_jac, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad_div, fd_gdiv, rtol=1e-4, atol=1e-5)


def test_parameter_gradient_matches_func_engine():
    """The loss gradient through the fused sweep equals the one through torch.func."""
    problem = Bosons(d=2)
    x = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(7)) * 0.3
    t = torch.rand(8, 1, dtype=torch.float64)
    grads = []
    for engine in ("adjoint", "func"):
        net = tiny_net(2)
        r_u, r_v = residuals(net, problem, x, t, engine)
        ((r_u**2).sum() + (r_v**2).sum()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-11)


def test_residuals_vanish_on_the_exact_oscillator_velocities():
    """A Gaussian packet in a harmonic trap has u = −(ħ/2m)(x − μ)/σ², v = μ' + (x − μ)σ²'/(2σ²)
    (exact TDSE velocities); networks reproducing them give zero residuals, which checks every
    sign and factor of R_u, R_v and of the hard initial condition."""
    from torch.func import jacfwd, vmap

    problem = Oscillator(d=2, p0=0.5, sigma0=0.3, hbar=0.1)
    w, s0, hbar, m = problem.omega, problem.sigma0, problem.hbar, problem.m
    c = hbar / (2 * m * w * s0)

    def fields(x, t):
        var = s0**2 * torch.cos(w * t) ** 2 + c**2 * torch.sin(w * t) ** 2
        dvar = 2 * w * (c**2 - s0**2) * torch.sin(w * t) * torch.cos(w * t)
        mu = problem.p0 / (m * w) * torch.sin(w * t)
        dmu = problem.p0 / m * torch.cos(w * t)
        return -(hbar / (2 * m)) * (x - mu) / var, dmu + (x - mu) * dvar / (2 * var)

    class Analytic(PairMLP):
        def jet(self, x, t, probes=None):
            res = []
            for n, f0 in enumerate((problem.u0, problem.v0)):
                def f(xs, ts, n=n, f0=f0):  # the network output the hard constraint needs
                    return (fields(xs, ts)[n] - f0(xs)) / ts

                def div(xs, ts, f=f):
                    return torch.diagonal(jacfwd(f)(xs, ts)).sum()

                res.append((vmap(f)(x, t), vmap(jacfwd(f, argnums=1))(x, t)[..., 0],
                            vmap(jacfwd(f))(x, t), vmap(jacfwd(div))(x, t)))
            return tuple(torch.stack([r[i] for r in res]) for i in range(4))

    net = Analytic(2, 4, dtype=torch.float64)
    x = torch.randn(16, 2, dtype=torch.float64) * 0.3
    t = 0.05 + 0.9 * torch.rand(16, 1, dtype=torch.float64)
    r_u, r_v = residuals(net, problem, x, t)
    assert r_u.abs().max() < 1e-10 and r_v.abs().max() < 1e-10
    # and a wrong field (v off by a constant) does not
    r_u, r_v = residuals(net, Oscillator(d=2, p0=0.5, sigma0=0.3, hbar=0.2), x, t)
    assert r_u.abs().max() > 1e-3


@pytest.mark.parametrize("scheme,lo,hi", [("euler", 0.03, 0.06), ("heun", -0.012, 0.012)])
def test_prediction_scheme_weak_order(scheme, lo, hi):
    """With the nets' outputs zeroed the drift is u0 = −ω x (the ground state's osmotic velocity):
    an Ornstein–Uhlenbeck process whose variance stays ħ/(2mω). Ten steps of ε = 0.1: Euler–
    Maruyama inflates it by ωε/2 (+4.6 %), stochastic Heun errs by O(ε²) (−0.3 %)."""
    problem = Oscillator(d=1, sigma0=math.sqrt(0.05))  # ħ = 0.1, m = ω = 1: the ground state
    net = tiny_net(1)
    with torch.no_grad():
        net.weights[-1].zero_()
        net.biases[-1].zero_()
    gen = torch.Generator().manual_seed(0)
    x0 = torch.as_tensor(problem.sample_initial(200_000, np.random.default_rng(0)))
    last = sample_paths(net, problem, x0, np.linspace(0.0, 1.0, 11), gen, scheme=scheme)[-1]
    rel = float(last.var()) / 0.05 - 1  # sampling error ≈ √(2/n) = 0.3 %
    assert lo < rel < hi


def test_training_points_times_and_count():
    """B(M+1) points: X0 at t = 0 and B·M off-grid points at distinct times inside (0, T)."""
    problem = Bosons(d=3)
    net = PairMLP(3, 8, generator=torch.Generator().manual_seed(0))
    x0 = torch.as_tensor(problem.sample_initial(10, np.random.default_rng(0)), dtype=torch.float32)
    X, T = training_points(net, problem, x0, 50, 7, torch.Generator().manual_seed(1),
                           torch.Generator().manual_seed(2))
    assert X.shape == (80, 3) and T.shape == (80, 1)
    assert (T[:10] == 0).all() and (T[10:] > 0).all() and (T[10:] < problem.T).all()
    # the off-grid times are t_k + s with s ~ U(0, ε), not snapped to the grid
    frac = (T[10:] * 50) % 1
    assert frac.std() > 0.1


def test_the_time_slope_steps_at_the_rate_over_T():
    """Adam's first step moves each parameter by its group's rate: the readout's by lr, its
    time slope's by lr/T, so that both move NN(x, T) alike (at lr the slope moved it T times
    more: the double well, T = 5, lost accuracy)."""
    net = PairMLP(2, 8, generator=torch.Generator().manual_seed(0), time_readout=True)
    groups = param_groups(net, 5.0, 1e-2)
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
    before_w, before_t = net.weights[-1].detach().clone(), net.readout_t.detach().clone()
    opt = torch.optim.Adam(groups)
    x, t = torch.randn(16, 2), torch.rand(16, 1) * 5
    net(x, t).sum().backward()
    opt.step()
    np.testing.assert_allclose((net.weights[-1] - before_w).abs().detach(), 1e-2, rtol=1e-3)
    np.testing.assert_allclose((net.readout_t - before_t).abs().detach(), 2e-3, rtol=1e-3)
    assert len(param_groups(PairMLP(2, 8), 5.0, 1e-2)) == 1  # no slope, one group


def test_time_weights_vanish_from_T_on():
    """Off-grid times of the last step, t_999 + s with s ~ U(0, ε) as training_points draws them,
    round past T in float32 (about 1 in 10⁵); their weights must be 0, not √(negative) = NaN,
    which turned a whole epoch's loss into NaN (a paper-preset run at d = 2, epoch 1170)."""
    eps = 1.0 / 1000
    s = torch.rand((10**6, 1), generator=torch.Generator().manual_seed(0)) * eps
    t = torch.tensor(999.0) * eps + s
    assert (t > 1.0).any()  # the rounding does happen
    w_u, w_v = time_weights(t, 1.0, "paper")
    assert torch.isfinite(w_u).all() and torch.isfinite(w_v).all()
    assert (w_u[t >= 1.0] == 0).all() and (w_v[t >= 1.0] == 0).all()
    inside = t[t < 1.0]
    np.testing.assert_allclose(time_weights(inside, 1.0, "paper")[0],
                               torch.sqrt(torch.expm1(2 * (1.0 - inside))))


@pytest.mark.parametrize("onednn", [True, False])
def test_compiled_epoch_matches_eager(onednn):
    """What the quick and paper presets run (compiled path step and loss, with the products
    through oneDNN, kept as an opaque op, or through torch's own) gives the eager epoch's points,
    losses and update: the compiler changes the speed, not the maths. A compiler failure (the
    eager fallback's warning) fails the test."""
    out = eager_and_compiled(
        Bosons(d=2), lambda mode: settings("smoke", width=16, N=20, M=5, batch=8, compile=mode),
        lambda s: PairMLP(2, s.width, generator=torch.Generator().manual_seed(0), onednn=onednn))
    for eager, fast in zip(out[False], out[True]):
        torch.testing.assert_close(fast, eager, rtol=1e-4, atol=1e-6)


def test_compiled_sampler_matches_eager():
    """The prediction's compiled integrator step gives the eager one's samples, moments and
    marginals (a compiler failure fails the test)."""
    problem = Bosons(d=2)
    net = PairMLP(2, 16, generator=torch.Generator().manual_seed(0))
    preds = []
    for mode in (False, True):
        s = settings("smoke", width=16, compile=mode)
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="dsm: torch.compile")
            preds.append(predict(net, problem, TIMES[::10], s, torch.device("cpu"), 0, 500))
    np.testing.assert_allclose(preds[1].var, preds[0].var, rtol=1e-4)
    np.testing.assert_allclose(preds[1].marginals, preds[0].marginals, atol=1e-6)


def test_prediction_does_not_depend_on_the_number_of_workers():
    """Every batch of paths has its own seeds, so one worker or two give the same statistics
    (to the rounding of merging them); identical particles get equal coordinates."""
    problem = Bosons(d=3)
    net = PairMLP(3, 16, generator=torch.Generator().manual_seed(0))
    preds = [predict(net, problem, TIMES[::10], settings("smoke", width=16, compile=False,
                                                          threads=n, predict_batch=250),
                     torch.device("cpu"), 0, 1000) for n in (1, 2)]
    np.testing.assert_allclose(preds[1].var, preds[0].var, rtol=1e-12)
    np.testing.assert_allclose(preds[1].marginals, preds[0].marginals, rtol=1e-12, atol=1e-15)
    assert preds[0].n_samples == 1000 and np.ptp(preds[0].var, axis=1).max() == 0


def test_loss_workers_give_the_serial_update():
    """Two workers, each with its own chunks and gradient sum, make the update that one thread
    makes from the same chunks (gradients accumulated in .grad)."""
    from solvers.dsm.train import epoch_step
    from solvers.dsm.workers import Workers

    problem = Oscillator(d=3, p0=0.5)
    x0 = torch.as_tensor(problem.sample_initial(8, np.random.default_rng(0)), dtype=torch.float32)
    updates = []
    for workers in (None, Workers(2)):
        s = settings("smoke", width=16, compile=False, chunk=50)
        net = PairMLP(3, 16, generator=torch.Generator().manual_seed(0))
        opt = torch.optim.Adam(net.parameters(), lr=s.lr)
        X, T = training_points(net, problem, x0, s.N, s.M, torch.Generator().manual_seed(1),
                               torch.Generator().manual_seed(2))
        losses = epoch_step(net, opt, problem, X, T, s, torch.Generator().manual_seed(3),
                            workers=workers)
        updates.append((torch.stack(losses), [p.detach().clone() for p in net.parameters()]))
        if workers is not None:
            workers.close()
    torch.testing.assert_close(updates[1][0], updates[0][0], rtol=1e-6, atol=0)
    for got, want in zip(updates[1][1], updates[0][1]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# settings, solver plumbing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [dict(N=0), dict(width=0), dict(lr=-1e-3), dict(batch=0),
                                 dict(M=20, N=10), dict(epochs=0), dict(depth=0),
                                 dict(activation="relu"), dict(engine="jax"), dict(lr=float("nan")),
                                 dict(probes=-2), dict(lr_final=0.0), dict(time_weights="exp"),
                                 dict(ema=1.0), dict(ema=-0.1)])
def test_settings_refuse_nonsense(bad):
    with pytest.raises(UserError) as err:
        Settings(**bad)
    assert "\n" not in str(err.value)


def test_presets_are_valid_settings():
    for name, overrides in DSMSolver.presets.items():
        Settings(**overrides)
    p = settings("paper")
    assert (p.N, p.batch, p.width, p.M, p.lr, p.epochs) == (1000, 100, 500, 150, 1e-5, 10_000)


def test_the_prediction_costs_what_it_does_at_d_predict():
    """Past D_PREDICT the quick preset's prediction keeps the cost of its paths (number ×
    (d + width)·width) at that of D_PREDICT, though the width doubles past D_AUTO."""
    from solvers.dsm import D_PREDICT

    q = settings("quick")
    base = q.for_dimension(D_PREDICT)
    assert (base.width, base.n_predict) == (q.width, q.n_predict)
    cost = base.n_predict * (D_PREDICT + base.width) * base.width
    for d in (32, 100, 1000):
        s = q.for_dimension(d)
        assert s.width == q.width_probes and s.lr == q.lr_probes
        assert s.n_predict * (d + s.width) * s.width == pytest.approx(cost, rel=1e-3)
        assert s.checkpoint_samples < q.checkpoint_samples


def test_smoke_run_beats_static_on_the_moving_oscillator():
    """The smoke preset (seconds) follows a packet with momentum far better than static."""
    problem = Oscillator(p0=0.5)
    progress = []
    pred = DSMSolver().solve(problem, np.concatenate([[0.0], TIMES]), settings("smoke"),
                             Context(seed=0, progress=lambda f, **kw: progress.append((f, kw))))
    assert pred.finite and pred.n_samples == 4000
    assert pred.times[0] == 0.0
    np.testing.assert_allclose(pred.var[0], problem.sigma0**2, rtol=0.1)  # X0 ~ |ψ0|²
    ref = problem.exact(TIMES)
    ours = score(_drop_first(pred), ref)
    static = score(static_prediction(problem, TIMES), ref)
    assert ours["density_l1"] < static["density_l1"] / 4
    assert ours["mean_rmse"] < static["mean_rmse"] / 10
    assert ours["var_rel_l2"] < 0.1
    assert progress and progress[-1][0] == pytest.approx(1.0) and "loss" in progress[-1][1]
    diag = pred.diagnostics
    assert diag["epochs"] == 150 and diag["n_params"] > 0 and diag["s_per_epoch"] > 0
    assert len(diag["loss_curve"]["loss_u"]) == len(diag["loss_curve"]["epoch"]) > 1


def _drop_first(pred):
    from harness.api import Prediction

    return Prediction(pred.times[1:], pred.mean[1:], pred.var[1:], pred.marginals[1:], pred.edges,
                      n_samples=pred.n_samples)


def test_deterministic_for_a_seed():
    problem = Bosons(d=2)
    s = settings("smoke", epochs=20, n_predict=500)
    a = DSMSolver().solve(problem, TIMES[::10], s, Context(seed=3))
    b = DSMSolver().solve(problem, TIMES[::10], s, Context(seed=3))
    c = DSMSolver().solve(problem, TIMES[::10], s, Context(seed=4))
    np.testing.assert_array_equal(a.var, b.var)
    np.testing.assert_array_equal(a.marginals, b.marginals)
    assert a.diagnostics["loss_curve"]["loss"] == b.diagnostics["loss_curve"]["loss"]
    assert not np.array_equal(a.var, c.var)


def test_checkpoints_are_handed_over():
    problem = Oscillator(p0=0.5)
    got = []
    s = settings("smoke", epochs=30, checkpoint_samples=300)
    DSMSolver().solve(problem, TIMES[::20], s,
                      Context(seed=0, checkpoint=got.append, checkpoint_every=1e-9))
    assert len(got) == 3 and all(p.n_samples == 300 for p in got)
    assert [p.diagnostics["epoch"] for p in got] == [10, 20, 30]


def test_prediction_uses_the_moving_average_of_the_parameters(monkeypatch):
    """With ``ema`` = β the prediction's weights are θ̄ ← β θ̄ + (1 − β) θ after every epoch,
    starting from the first epoch's θ; without it, the last iterate."""
    import solvers.dsm.train as train_mod

    iterates, predicted = [], []
    step = train_mod.epoch_step

    def recording_step(net, *args, **kwargs):
        out = step(net, *args, **kwargs)
        iterates.append([p.detach().clone() for p in net.parameters()])
        return out

    def recording_predict(model, *args, **kwargs):
        predicted.append([p.detach().clone() for p in model.parameters()])
        return predict(model, *args, **kwargs)

    monkeypatch.setattr(train_mod, "epoch_step", recording_step)
    monkeypatch.setattr(train_mod, "predict", recording_predict)
    for beta in (0.5, 0.0):
        iterates.clear()
        s = settings("smoke", epochs=4, n_predict=200, ema=beta)
        DSMSolver().solve(Oscillator(p0=0.5), TIMES[::20], s, Context(seed=0))
        expected = iterates[0]
        for theta in iterates[1:]:
            expected = [beta * a + (1 - beta) * b for a, b in zip(expected, theta)]
        for got, want in zip(predicted[-1], expected):
            torch.testing.assert_close(got, want)
    assert not torch.equal(iterates[-1][1], iterates[-2][1])  # the iterates did move


def test_time_limit_stops_training():
    s = settings("smoke", epochs=1_000_000, time_limit=1.0, n_predict=500)
    pred = DSMSolver().solve(Oscillator(p0=0.5), TIMES[::10], s, Context(seed=0))
    diag = pred.diagnostics
    assert diag["time_limited"] and 1 <= diag["epochs"] < 1_000_000 and pred.finite
    assert diag["fit_s"] < 1.0 + 10 * diag["s_per_epoch"] + 5


def test_blow_up_raises_solver_diverged():
    """A learning rate far too large makes the loss explode: SolverDiverged, not garbage."""
    problem = Oscillator(p0=0.5)
    s = settings("smoke", lr=50.0, lr_final=None, epochs=200, log_every=5, blowup=10.0)
    with pytest.raises(SolverDiverged) as err:
        DSMSolver().solve(problem, TIMES[::10], s, Context(seed=0))
    kept = err.value.diagnostics  # what was learnt before, for the store
    assert kept["epochs"] > 5 and kept["loss_curve"]["epoch"][0] == 5


def test_nan_raises_solver_diverged(monkeypatch):
    import solvers.dsm.train as train_mod

    def poisoned(*args, **kwargs):
        nan = torch.tensor(float("nan"))
        return nan, nan

    monkeypatch.setattr(train_mod, "loss_terms", poisoned)
    monkeypatch.setattr(torch.Tensor, "backward", lambda self, *a, **k: None)
    monkeypatch.setattr(torch.autograd, "grad",  # the loss workers' gradients
                        lambda outputs, inputs, *a, **k: [torch.zeros_like(p) for p in inputs])
    with pytest.raises(SolverDiverged, match="not finite"):
        DSMSolver().solve(Bosons(d=2), TIMES[::10], settings("smoke", epochs=10), Context(seed=0))


def test_bosons_without_interaction_stay_stationary():
    """g = 0: the ground state does not move; the smoke preset keeps Var ≈ ħ/(2mω) = 0.05."""
    problem = Bosons(d=2, g=0.0)
    pred = DSMSolver().solve(problem, TIMES[::10], settings("smoke"), Context(seed=0))
    ref = problem.exact(TIMES[::10])
    noise = 0.05 * math.sqrt(2 / pred.n_samples) * 4  # 4σ of the sample variance
    assert np.abs(pred.var - ref.var).max() < 0.05 * 0.1 + noise
    assert np.abs(pred.mean).max() < 0.02


# ---------------------------------------------------------------------------------------------
# accuracy at the quick preset (minutes)
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_quick_oscillator_with_momentum():
    problem = Oscillator(p0=0.5)
    pred = DSMSolver().solve(problem, TIMES, settings("quick"), Context(seed=0))
    ref = problem.exact(TIMES)
    ours = score(pred, ref)
    static = score(static_prediction(problem, TIMES), ref)
    assert ours["var_rel_l2"] <= 0.05
    assert ours["density_l1"] * 10 <= static["density_l1"]


@pytest.mark.slow
@pytest.mark.parametrize("d,target", [(32, 0.03), (100, 0.05)])
def test_quick_oscillator_at_large_d(d, target):
    """The O(d) path (probes) reaches issue 19's targets: var_rel_l2 ≤ 0.03 at d = 32, and
    density_l1 and var_rel_l2 ≤ 0.05 at d = 100 (static: 0.142). The quick preset (width 256
    past d = 8) for a fixed 400 epochs instead of its 200 s, so that the check does not depend
    on the machine's speed (d = 32: 0.0085 at 400 epochs on one core; without the time-sloped
    readout 0.031). `harness run --problem oscillator --param p0=0.5 --d 100 --solver dsm`:
    var_rel_l2 0.032 in its 200 s on 2 cores of an AMD EPYC (seed 0)."""
    problem = Oscillator(d=d, p0=0.5)
    s = settings("quick", time_limit=None, epochs=400)
    pred = DSMSolver().solve(problem, TIMES, s, Context(seed=0))
    ref = problem.exact(TIMES)
    ours = score(pred, ref)
    assert ours["density_l1"] <= 0.05
    assert ours["var_rel_l2"] <= target < score(static_prediction(problem, TIMES), ref)["var_rel_l2"]
    assert pred.diagnostics["probes"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("d,target", [(2, 0.01), (3, 0.03), (4, 0.03)])
def test_quick_bosons_against_certified_reference(d, target, tmp_path_factory):
    from harness.reference import compute_reference

    problem = Bosons(d=d)
    ref = compute_reference(problem, TIMES, tmp_path_factory.mktemp("ref"))
    pred = DSMSolver().solve(problem, TIMES, settings("quick"), Context(seed=0))
    assert pred.diagnostics["fit_s"] < 300 * 1.5  # the quick preset's budget, some slack
    assert score(pred, ref.prediction)["var_rel_l2"] <= target
