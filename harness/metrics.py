"""The scores of DESIGN §7 and the one schema of every metric column: how each is computed,
compared, formatted and shown. The record, the runner's checkpoints, the CLI table, the report
and the plots all read ``SCHEMA``, so a new metric is one entry there."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from harness.api import Prediction

#: a reference norm below this fraction of the spread makes a relative error meaningless (NaN)
_TINY = 1e-6
#: histograms drawn to estimate the sampling-noise floor of density_l1
_FLOOR_DRAWS = 4


def _rel_l2(pred: np.ndarray, ref: np.ndarray, scale: float) -> float:
    norm = np.linalg.norm(ref)
    return float(np.linalg.norm(pred - ref) / norm) if norm > _TINY * scale else float("nan")


def _paper_err(pred: np.ndarray, ref: np.ndarray, scale: np.ndarray) -> float:
    """The DSM paper's error: relative L2 over the time grid per coordinate, averaged."""
    num = np.linalg.norm(pred - ref, axis=0)
    den = np.linalg.norm(ref, axis=0)
    rel = np.where(den > _TINY * scale, num / np.where(den > 0, den, 1.0), np.nan)
    return float(np.mean(rel))


def density_l1(pred: np.ndarray, ref: np.ndarray, edges: np.ndarray) -> float:
    """Mean over times and coordinates of ∫|ρ − ρ_ref| dx on the bins (0 … 2)."""
    return float(np.mean(np.abs(pred - ref) @ np.diff(edges)))


def noise_floor(ref: Prediction, n: int, seed: int = 0) -> float:
    """density_l1 of histograms of n exact samples: multinomial bin counts drawn from the
    reference's bin masses (plus the mass outside the bins), scored like a prediction."""
    widths = np.diff(ref.edges)
    mass = np.clip(ref.marginals * widths, 0.0, None)
    outside = np.clip(1.0 - mass.sum(axis=-1, keepdims=True), 0.0, None)
    probs = np.concatenate([mass, outside], axis=-1)
    probs /= probs.sum(axis=-1, keepdims=True)
    rng = np.random.default_rng(seed)
    flat = probs.reshape(-1, probs.shape[-1])
    total = 0.0
    for _ in range(_FLOOR_DRAWS):
        counts = np.stack([rng.multinomial(n, p) for p in flat])[:, :-1]
        total += np.abs(counts / n - flat[:, :-1]).sum(axis=-1).mean()
    return float(total / _FLOOR_DRAWS)


@dataclass
class Pair:
    """A prediction and its reference on the same times and bins, with the scored times (t > 0)
    and the scales that several metrics share."""

    pred: Prediction
    ref: Prediction
    on: np.ndarray = field(init=False)
    spread: float = field(init=False)
    scale_t: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if (not np.allclose(self.pred.times, self.ref.times)
                or not np.allclose(self.pred.edges, self.ref.edges)):
            raise ValueError("prediction and reference disagree on times or bins")
        self.on = self.ref.times > 0
        self.spread = float(np.sqrt(np.mean(self.ref.var[self.on])))
        self.scale_t = np.sqrt(np.mean(self.ref.var, axis=0)) * np.sqrt(self.ref.times.size)

    @property
    def n_scored(self) -> int:
        """Number of scored (time, coordinate) values."""
        return int(self.on.sum()) * self.ref.mean.shape[1]


def _mean_rmse(p: Pair) -> float:
    return float(np.sqrt(np.mean((p.pred.mean[p.on] - p.ref.mean[p.on]) ** 2)))


def _mean_rel_l2(p: Pair) -> float:
    return _rel_l2(p.pred.mean[p.on], p.ref.mean[p.on], p.spread * np.sqrt(p.n_scored))


def _var_rel_l2(p: Pair) -> float:
    return _rel_l2(p.pred.var[p.on], p.ref.var[p.on], p.spread**2 * np.sqrt(p.n_scored))


def _paper_mean_err(p: Pair) -> float:
    return _paper_err(p.pred.mean, p.ref.mean, p.scale_t)


def _paper_var_err(p: Pair) -> float:
    return _paper_err(p.pred.var, p.ref.var, p.scale_t**2)


def _density_l1(p: Pair) -> float:
    return density_l1(p.pred.marginals[p.on], p.ref.marginals[p.on], p.ref.edges)


def _density_l1_floor(p: Pair) -> float:
    """The noise floor for a sample-based prediction of ``n_samples``; NaN for any other."""
    if not p.pred.n_samples:
        return float("nan")
    ref = p.ref
    scored = Prediction(ref.times[p.on], ref.mean[p.on], ref.var[p.on], ref.marginals[p.on], ref.edges)
    return noise_floor(scored, p.pred.n_samples)


#: ``Metric.compute`` of the columns the runner fills (wall times, memory, the solver's counts)
HARNESS = "harness"


@dataclass(frozen=True)
class Metric:
    """One metric column: its meaning, how it is computed, which way is better, how it is
    formatted and summarised over seeds, and where it is scored and shown."""

    name: str
    description: str
    #: the scoring function of a (prediction, reference) pair, or HARNESS (filled by the runner)
    compute: Callable[[Pair], float] | Literal["harness"]
    #: short heading for the CLI table and plot axes
    label: str
    better: Literal["lower", "higher"] = "lower"
    #: format spec of one value (the spread over seeds is shown at two significant digits)
    fmt: str = ".3g"
    #: over seeds: mean ± std of the ok runs, or the max over every run (peak memory)
    summary: Literal["mean", "max"] = "mean"
    #: scored on the intermediate predictions a training solver hands over (error vs wall time)
    checkpoint: bool = False
    #: the fixed accuracy of the time-to-accuracy view (checkpoint metrics)
    target: float | None = None
    #: shown in the `harness run` table
    cli: bool = False
    #: shown in the leaderboard's markdown and HTML tables (its CSV holds every metric)
    report: bool = False

    def format(self, value: float | None) -> str:
        """One value at the metric's precision; '—' for a missing or NaN value."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        return format(value, self.fmt)

    def reached(self, value: np.ndarray, target: float) -> np.ndarray:
        """Where ``value`` is at least as good as ``target``."""
        return value <= target if self.better == "lower" else value >= target


SCHEMA: tuple[Metric, ...] = (
    Metric("density_l1", "mean over times and coordinates of ∫|ρ_i − ρ_i,ref| dx (0 … 2)",
           _density_l1, "density_l1", checkpoint=True, target=0.05, cli=True, report=True),
    Metric("density_l1_floor", "density_l1 of histograms of as many exact samples (sampling noise)",
           _density_l1_floor, "noise floor", cli=True, report=True),
    Metric("var_rel_l2", "‖Var − Var_ref‖₂ / ‖Var_ref‖₂ over scored times and coordinates",
           _var_rel_l2, "var_rel_l2", checkpoint=True, target=0.05, cli=True, report=True),
    Metric("mean_rmse", "RMS over scored times and coordinates of mean − mean_ref",
           _mean_rmse, "mean_rmse", cli=True, report=True),
    Metric("mean_rel_l2", "‖mean − mean_ref‖₂ / ‖mean_ref‖₂ (NaN where the reference mean is ~0)",
           _mean_rel_l2, "mean_rel_l2"),
    Metric("paper_mean_err", "the DSM paper's relative L2 error of the mean (t = 0 included)",
           _paper_mean_err, "paper mean err"),
    Metric("paper_var_err", "the DSM paper's relative L2 error of the variance (t = 0 included)",
           _paper_var_err, "paper var err", cli=True, report=True),
    Metric("fit_s", "the solver's training / fitting wall time [s]", HARNESS, "fit s"),
    Metric("predict_s", "the solver's prediction wall time [s]", HARNESS, "predict s"),
    Metric("total_s", "wall time of the whole run [s]", HARNESS, "total s", cli=True, report=True),
    Metric("peak_rss_mb", "peak resident memory of the run [MB]", HARNESS, "peak MB", fmt=".0f",
           summary="max", cli=True, report=True),
    Metric("peak_gpu_mb", "peak GPU memory allocated by torch [MB]", HARNESS, "peak GPU MB",
           fmt=".0f", summary="max"),
    Metric("n_params", "number of trained parameters", HARNESS, "parameters", fmt=".4g"),
)
BY_NAME: dict[str, Metric] = {m.name: m for m in SCHEMA}
#: the metric that ranks the leaderboard
RANK_BY = BY_NAME["density_l1"]


def score(pred: Prediction, ref: Prediction) -> dict[str, float]:
    """Every scored metric of the schema for ``pred`` against ``ref`` (same times and bins).

    Scored times are t > 0; the paper's errors include t = 0 where it was requested."""
    pair = Pair(pred, ref)
    return {m.name: m.compute(pair) for m in SCHEMA if m.compute != HARNESS}


def checkpoint_scores(pred: Prediction, ref: Prediction) -> dict[str, float]:
    """The checkpoint metrics of the schema for an intermediate prediction of a training solver."""
    pair = Pair(pred, ref)
    return {m.name: m.compute(pair) for m in SCHEMA if m.checkpoint}
