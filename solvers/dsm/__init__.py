"""Deep Stochastic Mechanics (Orlova et al., ICML 2024): learn the osmotic and current velocities
u_θ, v_θ of Nelson's diffusion dX = (u + v) dt + √(ħ/m) dW from the residuals of their equations
of motion at points sampled from the model's own trajectories, then sample |ψ(·, t)|² by running
the diffusion. Modules: ``nets`` (the two networks and their derivatives), ``loss`` (residuals),
``train`` (paths, loss points, optimisation), ``sampling`` (the prediction's trajectories and
their statistics).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from harness.api import Context, Prediction, Problem, Solver, UserError
from solvers.dsm.nets import ACTIVATIONS

#: ``probes`` = 0 ("auto") computes ∇(div ·) exactly up to this d, with PROBES_AUTO probes above:
#: the exact jet pushes 2d + 1 directions through each layer, the probe jet 2K + 4 (K = 2: 8
#: against 17 at d = 8), and the exact one has no estimator noise
D_AUTO = 8
#: Rademacher probes per point past D_AUTO
PROBES_AUTO = 2
#: the d past which the prediction's paths shrink (``Settings.for_dimension``)
D_PREDICT = 8


@dataclass
class Settings:
    """DSM hyperparameters; the defaults are the paper's interacting-bosons settings."""

    N: int = 1000  #: Euler–Maruyama steps over [0, T] (ε = T/N), for training and prediction
    batch: int = 100  #: fresh trajectories per epoch (B)
    M: int = 150  #: of the N steps, how many are subsampled per epoch (off-grid loss points)
    width: int = 500  #: hidden width of each network
    depth: int = 1  #: number of skip blocks h ← h + σ(W_b σ(W_a h + b_a) + b_b)
    activation: str = "tanh"  #: σ: "tanh" (paper) or "sin"
    time_readout: bool = False  #: give the readout a time slope, NN = (W + t W_t) g + b + t b_t
    #: (W_t, b_t start at 0): the velocities' slope in x can then change with t without the
    #: hidden layers' curvature; W_t, b_t step at the rate over T (the paper's network: False)
    lr: float = 1e-5  #: Adam learning rate (initial)
    lr_final: float | None = None  #: if set, exponential decay to this rate at the last epoch
    lr_probes: float | None = None  #: if set, the initial rate where ∇(div ·) is estimated by
    #: probes (d past D_AUTO with probes auto), in place of ``lr`` (``for_dimension``)
    width_probes: int | None = None  #: if set, the hidden width there, in place of ``width``
    ema: float = 0.0  #: if > 0, predict with an exponential moving average of the parameters,
    #: updated after every epoch with this decay (0.98: a window of ~50 epochs); 0: the last ones
    epochs: int = 10_000  #: optimiser steps (one fresh batch of paths each)
    time_limit: float | None = None  #: stop training after this many seconds (lr decays by
    #: the larger of epoch and time progress; runs it cuts short are not bit-reproducible)
    time_weights: str = "paper"  #: "paper": √(e^{2(T−t)}−1), √(e^{T−t}−1) on R_u, R_v; "none"
    probes: int = 0  #: ∇(div ·): −1 exact (O(d²) a point); K > 0: Hutchinson's estimator with K
    #: Rademacher probes, every term then O(d) a point (no d × d Jacobian); 0: auto, exact at
    #: d ≤ D_AUTO, PROBES_AUTO probes above (``probes_for``)
    engine: str = "adjoint"  #: derivatives: "adjoint" (fused, fast) or "func" (torch.func)
    chunk: int = 0  #: loss points per backward chunk (memory bound); 0: chosen from d, width
    compile: bool = False  #: torch.compile the loss and the path step (~30 s once; inductor
    #: fuses the elementwise work around the products; oneDNN's are kept as an opaque op)
    dtype: str = "float32"  #: "float32" (paper) or "float64"
    threads: int = 0  #: CPU workers; 0: torch's thread count. The loss chunks and the prediction's
    #: batches are shared by that many threads of one intra-op thread each (``workers.Workers``); the
    #: paths' small per-step matmuls run on one thread (``path_threads``)
    n_predict: int = 10_000  #: fresh trajectories for the returned prediction
    predict_N: int = 0  #: integrator steps over [0, T] when predicting; 0: the same as N
    scheme: str = "heun"  #: prediction integrator: "heun" (weak order 2) or "euler" (the paper's
    #: Euler–Maruyama); training paths are always Euler–Maruyama, as in the paper
    predict_batch: int = 10_000  #: trajectories simulated at once when predicting
    relabel: bool = True  #: identical particles (Problem.exchangeable): report the statistics of
    #: the symmetrised density, every predicted sample relabelled by every permutation (the
    #: average over coordinates; the nets are not symmetric)
    checkpoint_samples: int = 2_000  #: trajectories per intermediate (checkpoint) prediction
    log_every: int = 10  #: epochs between loss read-backs (progress, divergence check)
    blowup: float = 1e6  #: diverged when the loss exceeds this multiple of its first logged value

    def __post_init__(self) -> None:
        positive = {"N": self.N, "batch": self.batch, "M": self.M, "width": self.width,
                    "depth": self.depth, "epochs": self.epochs, "n_predict": self.n_predict,
                    "predict_batch": self.predict_batch, "log_every": self.log_every,
                    "checkpoint_samples": self.checkpoint_samples}
        for key, value in positive.items():
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise UserError(f"dsm: {key} must be a positive integer, got {value!r}")
        if self.M > self.N:
            raise UserError(f"dsm: M={self.M} subsampled steps cannot exceed N={self.N}")
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise UserError(f"dsm: lr must be a positive number, got {self.lr!r}")
        wp = self.width_probes
        if wp is not None and (isinstance(wp, bool) or int(wp) != wp or wp < 1):
            raise UserError(f"dsm: width_probes must be a positive integer or None, got {wp!r}")
        for key in ("lr_final", "lr_probes"):
            value = getattr(self, key)
            if value is not None and not (value > 0 and np.isfinite(value)):
                raise UserError(f"dsm: {key} must be a positive number or None, got {value!r}")
        if self.probes < -1 or self.chunk < 0 or self.threads < 0 or self.predict_N < 0:
            raise UserError(f"dsm: probes, chunk, threads and predict_N must be >= 0, got "
                            f"{self.probes}, {self.chunk}, {self.threads}, {self.predict_N}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise UserError(f"dsm: time_limit must be > 0 seconds or None, got {self.time_limit!r}")
        if not 0 <= self.ema < 1:
            raise UserError(f"dsm: ema must be in [0, 1), got {self.ema!r}")
        if not self.blowup > 1:
            raise UserError(f"dsm: blowup must be > 1, got {self.blowup!r}")
        choices = {"activation": tuple(ACTIVATIONS), "time_weights": ("paper", "none"),
                   "engine": ("adjoint", "func"), "dtype": ("float32", "float64"),
                   "scheme": ("heun", "euler")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise UserError(f"dsm: {key} must be one of {', '.join(allowed)}, "
                                f"got {getattr(self, key)!r}")
        if self.engine == "func" and self.probes > 0:
            raise UserError("dsm: the func engine computes ∇(div ·) exactly; use probes=-1 or 0")

    def for_dimension(self, d: int) -> "Settings":
        """The settings a run at dimension d uses: past D_AUTO with probes, ``lr_probes`` and
        ``width_probes`` in place of ``lr`` and ``width``. Past d = D_PREDICT the prediction's
        paths shrink with the cost of a path, whose products are O((d + width)·width), so that
        the prediction costs what it does at D_PREDICT and the base width: the 200 s of
        training are fixed by the clock, the prediction is not. Measured on 2 cores of an AMD
        EPYC at width 256 with the paths shrunk for the width alone: 74 000 paths took 82 s of
        a 282 s run at d = 100, and 21 000 paths 195 s of 403 s at d = 1000 on one core; by
        cost, 19 000 (11 % of a 228 s run at d = 100) and 5400.
        Checkpoints shrink for d alone ((D_PREDICT + width)/(d + width)): they are few, and
        fewer samples would bury the error curve in sampling noise. At any d at most
        2.5·10⁵/d paths are simulated at once: at d = 100, 2·10⁴ paths took 8.2 s in batches of
        2500 against 9.2 s in batches of 10⁴ (a smaller batch stays in cache)."""
        probed = bool(self.probes_for(d))
        lr = self.lr_probes if self.lr_probes is not None and probed else self.lr
        width = self.width_probes if self.width_probes is not None and probed else self.width
        by_d = min(1.0, (D_PREDICT + width) / (d + width))
        by_cost = min(1.0, (D_PREDICT + self.width) * self.width / ((d + width) * width))
        return dataclasses.replace(
            self, lr=lr, width=width, n_predict=max(1000, int(self.n_predict * by_cost)),
            checkpoint_samples=max(200, int(self.checkpoint_samples * by_d)),
            predict_batch=min(self.predict_batch, max(256, 250_000 // d)))

    def probes_for(self, d: int) -> int:
        """Probes per point at dimension d (0: exact ∇(div ·)): ``probes`` resolved."""
        if self.probes == -1 or self.engine == "func":
            return 0
        if self.probes == 0:
            return 0 if d <= D_AUTO else PROBES_AUTO
        return self.probes


class DSMSolver(Solver):
    """Deep Stochastic Mechanics: two networks for the Nelson velocities, trained on their own
    trajectories; predictions are moments and histograms of fresh trajectories."""

    name = "dsm"
    summary = "Deep Stochastic Mechanics (Orlova et al. 2024): neural Nelson diffusion, torch"
    Settings = Settings
    presets = {
        # seconds, for tests
        "smoke": dict(N=40, M=20, batch=64, width=32, lr=3e-3, lr_final=3e-4, epochs=150,
                      n_predict=4000, log_every=10),
        # under 5 minutes on 2 CPU cores (bosons d = 4 included), tuned for accuracy there:
        # small nets, constant rate, training stopped by the clock at 200 s (the prediction then
        # takes ~40–60 s on a 2-core Zen 3, compile included), a compiled loss, 10⁵ Heun
        # paths for the prediction (at d = 2: var_rel_l2 0.016 with the rate decayed to 1e-5 and
        # 10⁴ Euler paths, 0.0044 with these), M = 25 points a path (more, noisier epochs: d = 4
        # 0.029 → 0.016 against M = 50 on a Zen 3) and predicting with the parameters' moving
        # average (d = 2, three seeds: 0.0048–0.0053, against 0.0049–0.0157 from the last iterate)
        # Past d = 8 (probes) the rate is 3e-3: oscillator p0 = 0.5, d = 100, 200 s on the
        # shared machine, var_rel_l2 0.072 at 1e-3 (452 epochs), 0.063 at 3e-3 (834; flat from
        # epoch ~600), 0.065 at 1e-2 (661), 0.070 at 3e-3 decayed to 1e-4 (685); and the width
        # 256, the plateau being the net's (quiet machine, lr 3e-3): d = 100 0.049 in 228 s,
        # 936 MB (the prediction's paths shrunk by cost); d = 32 0.0318 in 279 s (0.050 at width
        # 128); harmonic_bosons d = 100 0.128 in 309 s, the target 0.05 only after ~1170 s of
        # one core (DESIGN §5). The readout's time slope (``time_readout``) takes the velocities'
        # slope in x through time, which the hidden layers drew only as the t = 0 one: bosons
        # d = 4 (200 s on one core, the other busy) 0.0040 against 0.021; oscillator d = 32 (400
        # epochs) 0.0085 against 0.031; harmonic_bosons d = 100 (300 epochs) 0.118 against 0.140;
        # in the 200 s on 2 cores, oscillator d = 32 0.0090, d = 100 0.032, harmonic_bosons
        # d = 100 0.112. It costs some accuracy on anharmonic potentials even at its rate over T
        # (double_well 0.239 against 0.183, anharmonic d = 2 0.183 against 0.159, seed 0;
        # DESIGN §5).
        "quick": dict(N=100, M=25, batch=100, width=128, lr=1e-3, lr_probes=3e-3, width_probes=256,
                      epochs=100_000, time_limit=200.0, compile=True, n_predict=100_000, ema=0.98,
                      time_readout=True),
        # the published interacting-bosons settings
        "paper": dict(N=1000, M=150, batch=100, width=500, lr=1e-5, epochs=10_000, compile=True),
    }

    def supports(self, problem: Problem, settings: Settings | None = None) -> tuple[bool, str]:
        for attr in ("u0", "v0", "grad_potential", "sample_initial"):
            if not callable(getattr(problem, attr, None)):
                return False, f"dsm needs the problem's {attr}"
        if problem.has_nodes:
            return False, ("dsm starts from u0 = (ħ/2m)∇log ρ0 and its derivatives, singular on "
                           "ψ0's nodes (the loss's variance is infinite there), and its paths "
                           "can cross a node")
        return True, ""

    def solve(self, problem: Problem, times: np.ndarray, settings: Settings,
              ctx: Context) -> Prediction:
        from solvers.dsm.train import train

        return train(problem, np.asarray(times, dtype=float), settings.for_dimension(problem.d), ctx)


__all__ = ["DSMSolver", "Settings"]
