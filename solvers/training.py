"""What the training solvers (dsm, pinn) share: the epoch loop (budget, loss curve, divergence,
progress, checkpoints, diagnostics), thread control, heap reuse and loss-curve thinning.

Small matmuls run on one intra-op thread: on an idle machine a second thread gains little when
an op's matmul is small (rows × width² under 10⁸ multiply-adds); on a busy one every op waits at
a barrier for a descheduled thread (measured here under load: 0.3 s vs 5.4 s per PINN epoch;
the DSM smoke preset 30× slower)."""

from __future__ import annotations

import contextlib
import ctypes
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness.api import Context, Prediction, SolverDiverged

#: multiply-adds per matmul under which one thread is used
SMALL_MATMUL = 1e8
#: entries kept of a loss curve in the diagnostics
CURVE_POINTS = 400


@contextlib.contextmanager
def threads(n: int | None):
    """Run the block with n intra-op threads (None: unchanged), restoring the count after."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def for_matmul(rows: int, width: int, fixed: int = 0, small: float = SMALL_MATMUL) -> int | None:
    """``fixed`` threads when set, else 1 for a matmul of fewer than ``small`` multiply-adds
    (rows × width²), else unchanged."""
    if fixed:
        return fixed
    return 1 if rows * width**2 < small else None


def reuse_freed_memory(block: int = 32 << 20, keep: int = 1 << 30) -> bool:
    """Ask glibc's malloc to serve blocks up to ``block`` bytes from its heap and to keep up to
    ``keep`` freed bytes there, instead of mapping fresh pages for each large tensor and handing
    them back when it is freed: a training step allocates the same few-MB tensors again and
    again, and each fresh page costs a fault (measured here, paper epoch d = 4: 3·10⁵ faults
    and 0.6 s of a 4.0 s loss step). Process-wide; False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the loaded symbols, the C library's among them
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
    return bool(mallopt(M_MMAP_THRESHOLD, block)) and bool(mallopt(M_TRIM_THRESHOLD, keep))


def subsample_curve(curve: dict[str, list], keep: int) -> dict[str, list]:
    """At most ``keep`` evenly spread entries of a loss curve (parallel lists keyed by name,
    one of them ``epoch``), first and last included."""
    n = len(curve["epoch"])
    if n <= keep:
        return curve
    idx = np.unique(np.linspace(0, n - 1, keep).round().astype(int))
    return {k: [v[i] for i in idx] for k, v in curve.items()}


@dataclass
class Budget:
    """How long a training runs and how it is watched: at most ``epochs`` epochs and (if set)
    ``time_limit`` seconds of training, the loss read back every ``log_every`` epochs, and
    diverged when it exceeds ``blowup`` times its first logged value (None: only NaN/inf)."""

    epochs: int
    time_limit: float | None = None
    log_every: int = 10
    blowup: float | None = None


#: step(epoch, progress) -> (loss, {term name: value}): one optimiser step; epoch counts from 0,
#: progress in [0, 1] is how far the training is by epochs, or by time when the limit comes first
Step = Callable[[int, float], tuple[torch.Tensor, dict[str, torch.Tensor]]]
#: predict(diagnostics) -> Prediction of the model as it stands, carrying ``diagnostics``
Predict = Callable[[dict], Prediction]


class TrainingLoop:
    """The epoch loop of the training solvers (dsm, pinn): time and epoch budget, loss curve
    read back once every ``log_every`` epochs (one device sync), divergence, progress and
    checkpoints, and the diagnostics shared by both. Its clock (``fit_s``, the curve's
    ``wall_s``, the time limit) leaves out the time spent on checkpoint predictions."""

    def __init__(self, name: str, budget: Budget, ctx: Context, n_params: int,
                 share: float = 1.0):
        self.name, self.budget, self.ctx, self.n_params = name, budget, ctx, n_params
        self.share = share  # the fraction of the whole run's progress that the epochs make
        self.curve: dict[str, list] = {"epoch": [], "loss": [], "wall_s": []}
        self.epochs = 0
        self.checkpoint_s = 0.0
        self._start = time.perf_counter()
        self._last_checkpoint = self._start
        self._first_loss: float | None = None

    def elapsed(self) -> float:
        """Seconds of training since ``run`` began, checkpoint predictions left out."""
        return time.perf_counter() - self._start - self.checkpoint_s

    def run(self, step: Step, checkpoint: Predict) -> None:
        """Run ``step`` until the epoch or time budget is spent; ``checkpoint`` gives the
        intermediate predictions handed to the harness every ``ctx.checkpoint_every`` seconds."""
        b = self.budget
        self._start = self._last_checkpoint = time.perf_counter()
        pending: list[torch.Tensor] = []
        for epoch in range(b.epochs):
            progress = epoch / max(1, b.epochs - 1)
            if b.time_limit:  # then the run is no longer bit-reproducible
                progress = max(progress, self.elapsed() / b.time_limit)
                if progress >= 1.0 + 1e-9 and epoch > 0:
                    break
            loss, terms = step(epoch, progress)
            pending.append(torch.stack([loss.detach(), *(v.detach() for v in terms.values())]))
            self.epochs = epoch + 1
            last = self.epochs == b.epochs or bool(b.time_limit and self.elapsed() >= b.time_limit)
            if self.epochs % b.log_every == 0 or last:
                rows = torch.stack(pending).cpu().numpy()  # the only sync: every log_every epochs
                pending.clear()
                fraction = 1.0 if last else min(1.0, max(self.epochs / b.epochs, progress))
                self.log(self.epochs, rows, list(terms), self.share * fraction)
                self._checkpoint(checkpoint)

    def log(self, epoch: int, rows: np.ndarray, names: list[str], fraction: float) -> None:
        """Check ``rows`` (one per epoch since the last entry: the loss, then the terms ``names``),
        add the last to the loss curve and report ``fraction`` done; SolverDiverged with the
        diagnostics so far on NaN/inf or a blow-up."""
        if not np.isfinite(rows).all():
            raise SolverDiverged(f"{self.name}: loss is not finite at epoch {epoch}",
                                 self.summary())
        loss = float(rows[-1, 0])
        if self._first_loss is None:
            self._first_loss = max(loss, 1e-30)
        elif self.budget.blowup and loss > self.budget.blowup * self._first_loss:
            raise SolverDiverged(f"{self.name}: loss blew up at epoch {epoch}: {loss:.3g} > "
                                 f"{self.budget.blowup:g} × initial {self._first_loss:.3g}",
                                 self.summary())
        self.curve["epoch"].append(epoch)
        self.curve["loss"].append(loss)
        self.curve["wall_s"].append(self.elapsed())
        for name, value in zip(names, rows[-1, 1:]):
            self.curve.setdefault(f"loss_{name}", []).append(float(value))
        self.ctx.progress(fraction, loss=loss)

    def _checkpoint(self, predict: Predict) -> None:
        now = time.perf_counter()
        every = self.ctx.checkpoint_every
        if every and now - self._last_checkpoint >= every:
            self.ctx.checkpoint(predict({"epoch": self.epochs, "fit_s": self.elapsed()}))
            self._last_checkpoint = time.perf_counter()
            self.checkpoint_s += self._last_checkpoint - now

    def summary(self) -> dict[str, Any]:
        """The diagnostics of the training so far (kept by the harness even if it diverges)."""
        fit_s = self.elapsed()
        return {
            "epochs": self.epochs,
            "time_limited": self.epochs < self.budget.epochs,
            "n_params": self.n_params,
            "fit_s": fit_s,  # the record's training time
            "s_per_epoch": fit_s / max(1, self.epochs),
            "checkpoint_s": self.checkpoint_s,
            "loss_curve": subsample_curve(self.curve, CURVE_POINTS),
            "final_loss": self.curve["loss"][-1] if self.curve["loss"] else None,
        }

    def finish(self, predict: Predict, **extra: Any) -> Prediction:
        """The final prediction, carrying the summary, ``extra`` and its own ``predict_s``."""
        start = time.perf_counter()
        pred = predict(dict(self.summary(), **extra))
        pred.diagnostics["predict_s"] = time.perf_counter() - start
        return pred
