"""Work–precision data from the store: every scored point of error against wall time (a run's
final scores at its total_s; a training run's checkpoints at their wall_s), the lines they form
per solver (seeds combined), and the least wall time at which a solver reaches a target error."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.metrics import BY_NAME, SCHEMA
from harness.store import Store

#: the errors drawn against wall time: the metrics scored at checkpoints
ERRORS = tuple(m.name for m in SCHEMA if m.checkpoint)
#: the time-to-target view: the wall time at which this metric first reaches each target
TARGET_METRIC = BY_NAME["var_rel_l2"]
TARGETS = (0.1, 0.03, 0.01)
#: one work–precision line: a solver at one preset on one problem instance (its settings differ
#: along a refinement ladder)
LINE = ["problem", "d", "params", "solver", "preset"]


def points(store: Store, table: pd.DataFrame) -> pd.DataFrame:
    """One row per scored point: LINE, settings, seed, kind ('run' or 'checkpoint'), step (the
    checkpoint's index, -1 for a run), wall_s and the ERRORS. Runs count when ok; checkpoints
    of any run that stored them (a run that timed out was measured until then)."""
    rows = []
    for r in table.sort_values("run_key").itertuples(index=False):
        base = dict(problem=r.problem, params=r.params, d=int(r.d), solver=r.solver,
                    preset=r.preset, settings=r.settings, seed=int(r.seed))
        if r.status == "ok":
            rows.append({**base, "kind": "run", "step": -1, "wall_s": float(r.total_s),
                         **{e: float(getattr(r, e)) for e in ERRORS}})
        diag = store.diagnostics(r.run_key)
        wall = np.asarray(diag.get("wall_s", []), dtype=float)
        for i, w in enumerate(wall):
            rows.append({**base, "kind": "checkpoint", "step": i, "wall_s": float(w),
                         **{e: float(np.asarray(diag.get(e, [np.nan] * wall.size))[i])
                            for e in ERRORS}})
    columns = [*LINE, "settings", "seed", "kind", "step", "wall_s", *ERRORS]
    return pd.DataFrame(rows, columns=columns)


def lines(pts: pd.DataFrame) -> pd.DataFrame:
    """The points combined over seeds: per LINE, settings, kind and step, the median wall time
    and, per error, the median with its min–max band (``<error>_lo``, ``<error>_hi``); sorted
    by line and wall time."""
    keys = [*LINE, "settings", "kind", "step"]
    if pts.empty:
        return pd.DataFrame(columns=[*keys, "seeds", "wall_s",
                                     *(f"{e}{s}" for e in ERRORS for s in ("", "_lo", "_hi"))])
    grouped = pts.groupby(keys, sort=True)
    out = grouped.agg(seeds=("seed", "nunique"), wall_s=("wall_s", "median"),
                      **{f"{e}{s}": (e, f) for e in ERRORS
                         for s, f in (("", "median"), ("_lo", "min"), ("_hi", "max"))})
    return out.reset_index().sort_values([*LINE, "kind", "settings", "wall_s"], kind="stable",
                                         ignore_index=True)


def time_to_target(pts: pd.DataFrame, seeds: pd.DataFrame) -> pd.DataFrame:
    """Per LINE and target of TARGETS: the median over seeds of the least wall time at which a
    seed's point (a checkpoint, or a ladder run) reaches the target, a seed that never does
    counting as never (inf), and how many seeds reached it. ``seeds`` lists each line's seeds
    (LINE and seed columns: every run, whatever its status)."""
    metric = TARGET_METRIC.name
    rows = []
    for key, line_seeds in seeds.groupby(LINE, sort=True):
        mine = pts
        for col, value in zip(LINE, key):
            mine = mine[mine[col] == value]
        for target in TARGETS:
            hit = mine[TARGET_METRIC.reached(mine[metric].to_numpy(dtype=float), target)]
            first = hit.groupby("seed")["wall_s"].min()
            times = [float(first.get(s, np.inf)) for s in sorted(set(line_seeds.seed))]
            rows.append(dict(zip(LINE, key), target=target, seconds=float(np.median(times)),
                             reached=int(np.isfinite(times).sum()), seeds=len(times)))
    return pd.DataFrame(rows, columns=[*LINE, "target", "seconds", "reached", "seeds"])


def format_time(row) -> str:
    """A time-to-target cell: '12.3 s', with '(2/3 seeds)' when not every seed reached it, or
    'not reached'."""
    if not np.isfinite(row.seconds):
        return "not reached"
    text = f"{row.seconds:#.3g}".rstrip(".") + " s" if row.seconds < 1000 else f"{row.seconds:.0f} s"
    return text if row.reached == row.seeds else f"{text} ({row.reached}/{row.seeds} seeds)"
