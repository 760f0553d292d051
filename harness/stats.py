"""Statistics over seeds for the leaderboard: bootstrap confidence intervals of a mean and ranks
that call two rows tied when their intervals overlap (a difference the seeds cannot resolve)."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import bootstrap

#: two-sided confidence of the intervals
CONFIDENCE = 0.95
#: resamples of one interval; with the fixed generator below the same seeds give the same interval
RESAMPLES = 2000
SEED = 0


def mean_interval(values) -> tuple[float, float, float]:
    """(mean, low, high) of the finite ``values``: the percentile bootstrap interval of their mean
    (BCa's jackknife is undefined for the few, often identical, values of a few seeds); with one
    value no interval (low = high = NaN), with none all NaN."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    if v.size == 1:
        return float(v[0]), math.nan, math.nan
    ci = bootstrap((v,), np.mean, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                   method="percentile", rng=np.random.default_rng(SEED)).confidence_interval
    return float(v.mean()), float(ci.low), float(ci.high)


def tied_ranks(centre, low, high, better: str = "lower") -> np.ndarray:
    """Rank of each row: 1 + the number of rows whose whole interval is better than this row's
    (a row without an interval is the point ``centre``). Overlapping intervals are therefore
    ties; rows whose centre is NaN come last, after every ranked row."""
    c = np.asarray(centre, dtype=float)
    lo = np.where(np.isfinite(low), low, c)
    hi = np.where(np.isfinite(high), high, c)
    if better == "higher":  # rank the negated values: the better side becomes the lower one
        c, lo, hi = -c, -hi, -lo
    valid = np.isfinite(c)
    ranks = np.empty(c.size, dtype=int)
    for i in range(c.size):
        ranks[i] = 1 + int(np.sum(valid & (hi < lo[i]))) if valid[i] else int(valid.sum()) + 1
    return ranks
