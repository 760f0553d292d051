"""The scores of DESIGN §7, computed identically for every solver from two Predictions (the
solver's and the reference's) at the same times; metrics never see a solver."""

from __future__ import annotations

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


def score(pred: Prediction, ref: Prediction) -> dict[str, float]:
    """Every accuracy metric of DESIGN §7 for ``pred`` against ``ref`` (same times and bins).

    Scored times are t > 0; the paper's errors include t = 0 where it was requested."""
    if not np.allclose(pred.times, ref.times) or not np.allclose(pred.edges, ref.edges):
        raise ValueError("prediction and reference disagree on times or bins")
    on = ref.times > 0
    spread = float(np.sqrt(np.mean(ref.var[on])))
    d_mean = pred.mean[on] - ref.mean[on]
    scale_t = np.sqrt(np.mean(ref.var, axis=0)) * np.sqrt(ref.times.size)
    out = {
        "mean_rmse": float(np.sqrt(np.mean(d_mean**2))),
        "mean_rel_l2": _rel_l2(pred.mean[on], ref.mean[on], spread * np.sqrt(d_mean.size)),
        "var_rel_l2": _rel_l2(pred.var[on], ref.var[on], spread**2 * np.sqrt(d_mean.size)),
        "paper_mean_err": _paper_err(pred.mean, ref.mean, scale_t),
        "paper_var_err": _paper_err(pred.var, ref.var, scale_t**2),
        "density_l1": density_l1(pred.marginals[on], ref.marginals[on], ref.edges),
        "density_l1_floor": float("nan"),
    }
    if pred.n_samples:
        scored = Prediction(ref.times[on], ref.mean[on], ref.var[on], ref.marginals[on], ref.edges)
        out["density_l1_floor"] = noise_floor(scored, pred.n_samples)
    return out
