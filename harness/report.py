"""The published leaderboard: reads only the results store and writes LEADERBOARD.md,
leaderboard.csv and index.html (tables and plots) under the output folder. The same store gives
byte-identical files: rows are sorted, numbers formatted one way per column, no clock is read."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from harness import numbers, stats, workprecision
from harness.api import UserError
from harness.metrics import RANK_BY, SCHEMA, Metric
from harness.store import Store

#: one section of the report: a problem instance (d before params, so d sorts as a number)
SECTION = ["problem", "d", "params"]
#: one row of a section: runs that differ only in their seed
GROUP = [*SECTION, "solver", "preset", "settings"]
VERSIONS = ("qdbench", "python", "numpy", "torch", "jax", "netket")
#: the columns the report reads besides the metrics (a store written before a metric existed
#: reads that metric as NaN)
NEEDED = (*GROUP, "run_key", "seed", "status", "error", "device", "ref_key", "ref_kind",
          "ref_var_bound", "ref_density_bound", *(f"{n}_version" for n in VERSIONS))
#: the bootstrap interval of the ranking metric's mean over seeds
CI = f"{RANK_BY.name} {stats.CONFIDENCE:.0%} CI"
#: marks a row whose ranking metric is not better than the static baseline's
NOT_BETTER = "≤ static"
_SHOWN = [m.name for m in SCHEMA if m.report]
#: the columns of the markdown and HTML tables ("solver" shows the row's label)
COLUMNS = ["rank", "solver", "preset", "seeds", "status",
           *(c for m in _SHOWN for c in ((m, CI) if m == RANK_BY.name else (m,))),
           "vs static", "device"]
#: differing settings named in a label before it is cut short (and told apart by a hash)
_MAX_DIFFS = 3


def load_runs(store: Store, problems: list[str] | None = None) -> pd.DataFrame:
    """The stored runs the report covers (of ``problems``, or all); bad input is a UserError."""
    table = store.table()
    missing = [c for c in NEEDED if c not in table.columns]
    if missing:
        raise UserError(f"store {store.path} lacks the columns the report needs: "
                        f"{', '.join(missing)}")
    if table.empty:
        raise UserError(f"no runs in {store.path}")
    held = sorted(set(table.problem))
    unknown = [p for p in dict.fromkeys(problems or []) if p not in held]
    if unknown:
        raise UserError(f"no runs of {', '.join(unknown)} in {store.path}; "
                        f"it holds {', '.join(held)}")
    if problems:
        table = table[table.problem.isin(problems)]
    table = table.copy()
    table["d"] = table["d"].astype(int)
    for metric in SCHEMA:
        table[metric.name] = (pd.to_numeric(table[metric.name], errors="coerce")
                              if metric.name in table.columns else np.nan)
    return table


def _value(v) -> str:
    """A setting's value as a label shows it."""
    if isinstance(v, float):
        return f"{v:g}"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def labels(part: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """The name shown for each (solver, preset, settings) group of ``part``: the solver's name,
    followed by its values of the settings that differ where one solver ran with several under
    one preset, e.g. ``dsm (epochs=2000)``; settings every variant has come first, and past
    _MAX_DIFFS a short hash of the settings keeps the names apart."""
    out = {}
    for (solver, preset), runs in part.groupby(["solver", "preset"], sort=True):
        parsed = {s: json.loads(s) for s in sorted(set(runs.settings))}
        if len(parsed) == 1:
            out.update({(solver, preset, s): solver for s in parsed})
            continue
        every = set.intersection(*(set(p) for p in parsed.values()))
        differ = {k for p in parsed.values() for k in p
                  if len({json.dumps(q.get(k), sort_keys=True) for q in parsed.values()}) > 1}
        order = sorted(differ, key=lambda k: (k not in every, k))
        for s, values in parsed.items():
            shown = [f"{k}={_value(values[k])}" for k in order if k in values]
            if len(shown) > _MAX_DIFFS:
                shown = shown[:_MAX_DIFFS] + [f"… #{hashlib.sha256(s.encode()).hexdigest()[:6]}"]
            out[(solver, preset, s)] = f"{solver} ({', '.join(shown)})" if shown else solver
    return out


def _statuses(rows: pd.DataFrame) -> str:
    parts = []
    for status, group in sorted(rows.groupby("status"), key=lambda kv: kv[0] != "ok"):
        text = f"{status}×{len(group)}"
        if status != "ok":
            text += f" ({sorted(group['error'].astype(str))[0][:80]})"
        parts.append(text)
    return ", ".join(parts)


def _numbers(metric: Metric, runs: pd.DataFrame) -> tuple[float, float]:
    """The metric over seeds as (value, spread): (max over every run, NaN), or the mean and
    standard deviation of the ok runs (NaN spread for one run)."""
    if metric.summary == "max":
        return float(runs[metric.name].max()), np.nan
    v = runs.loc[runs.status == "ok", metric.name].dropna().to_numpy(dtype=float)
    if v.size == 0:
        return np.nan, np.nan
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else np.nan)


def digits(metric: Metric) -> int | None:
    """Significant digits of a metric printed in the column-wide notation (a 'g' format), or
    None for a fixed format such as memory's '.0f'."""
    return int(metric.fmt[1:-1] or 6) if metric.fmt.endswith("g") else None


def _format_section(part: pd.DataFrame) -> pd.DataFrame:
    """A section's numeric summaries as the tables print them, one notation per column."""
    part = part.copy()
    for m in SCHEMA:
        values, spreads = part[m.name].to_numpy(float), part[f"{m.name}_spread"].to_numpy(float)
        n = digits(m)
        if n is None:
            cells = [m.format(v) for v in values]
        else:
            sci = numbers.scientific(values)
            cells = [numbers.with_spread(v, e, n, sci) for v, e in zip(values, spreads)]
            if m is RANK_BY:
                sci = numbers.scientific([*values, *part.ci_low, *part.ci_high])
                part[CI] = [numbers.interval(lo, hi, n, sci)
                            for lo, hi in zip(part.ci_low, part.ci_high)]
        part[m.name] = cells
    return part


def _rank_section(part: pd.DataFrame) -> pd.DataFrame:
    """Tied ranks by the ranking metric's bootstrap interval, and the rows not better than
    the static baseline (ranked no better than its best row) marked NOT_BETTER."""
    part = part.copy()
    part["rank"] = stats.tied_ranks(part.rank_value, part.ci_low, part.ci_high, RANK_BY.better)
    static = part[(part.solver == "static") & np.isfinite(part.rank_value)]
    bar = static["rank"].min() if len(static) else np.inf
    part["vs static"] = np.where((part.solver != "static") & np.isfinite(part.rank_value)
                                 & (part["rank"] >= bar), NOT_BETTER, "")
    return part


def leaderboard(table: pd.DataFrame) -> pd.DataFrame:
    """One row per problem × d × params × solver × preset × settings (seeds combined): the
    metrics as 'mean ± std' (one notation per column), ranked within each problem instance by
    metrics.RANK_BY with ties where the bootstrap intervals of the means overlap. Ladder rungs
    other than a preset's own settings are work–precision points, not rows: they are left out."""
    table = table[~table.ladder_rung.astype(bool)]
    rows = []
    for section, part in table.groupby(SECTION, sort=True):
        names = labels(part)
        for key, runs in part.groupby(["solver", "preset", "settings"], sort=True):
            ok = runs[runs.status == "ok"]
            row = dict(zip(GROUP, (*section, *key)), label=names[key], seeds=len(runs),
                       status=_statuses(runs))
            for m in SCHEMA:
                row[m.name], row[f"{m.name}_spread"] = _numbers(m, runs)
            row["rank_value"], row["ci_low"], row["ci_high"] = stats.mean_interval(ok[RANK_BY.name])
            first = runs.sort_values("run_key").iloc[0]
            row["ref"] = (f"{first.ref_kind}: var ≤ {first.ref_var_bound:.1g}, "
                          f"density ≤ {first.ref_density_bound:.1g}") if first.ref_kind else "—"
            row["device"] = ", ".join(sorted(set(runs.device)))
            row["versions"] = " ".join(f"{n}={first[f'{n}_version']}" for n in VERSIONS
                                       if first[f"{n}_version"])
            rows.append(row)
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    board = pd.concat([_format_section(_rank_section(part))
                       for _, part in board.groupby(SECTION, sort=True)])
    board["order"] = board.rank_value * (1 if RANK_BY.better == "lower" else -1)
    board = board.sort_values([*SECTION, "rank", "order", "solver", "preset", "settings"],
                              na_position="last")
    return board.drop(columns=["order", "ci_low", "ci_high",
                               *(f"{m.name}_spread" for m in SCHEMA)]).reset_index(drop=True)


def reached(table: pd.DataFrame, pts: pd.DataFrame) -> pd.DataFrame:
    """workprecision.time_to_target over the seeds of every run that was tried (solvers that
    refused the problem have no line)."""
    tried = table[table.status != "unsupported"]
    return workprecision.time_to_target(pts, tried[[*workprecision.LINE, "seed"]])


def time_to_target(long: pd.DataFrame) -> pd.DataFrame:
    """The time-to-target table: per problem instance and solver (× preset), one column per
    target of workprecision.TARGETS, cells as workprecision.format_time prints them."""
    if long.empty:
        return pd.DataFrame(columns=[*workprecision.LINE, "solver_shown", *target_columns()])
    cells = long.assign(cell=[workprecision.format_time(r) for r in long.itertuples()])
    wide = cells.pivot(index=workprecision.LINE, columns="target", values="cell")
    wide.columns = [_target_column(t) for t in wide.columns]
    wide = wide.reset_index()[[*workprecision.LINE, *target_columns()]]
    presets = wide.groupby(["problem", "d", "params", "solver"])["preset"].transform("nunique")
    wide.insert(len(workprecision.LINE), "solver_shown",
                [s if n == 1 else f"{s} [{p}]" for s, p, n in zip(wide.solver, wide.preset, presets)])
    return wide.sort_values([*SECTION, "solver", "preset"], ignore_index=True)


def _target_column(target: float) -> str:
    return f"{workprecision.TARGET_METRIC.name} ≤ {target:g}"


def target_columns() -> list[str]:
    """The time-to-target table's target columns, in the order of workprecision.TARGETS."""
    return [_target_column(t) for t in workprecision.TARGETS]


def section_title(problem: str, d: int, params: str) -> str:
    """'problem, d = N (the other parameters)'."""
    values = {k: v for k, v in json.loads(params).items() if k != "d"}
    return f"{problem}, d = {d} ({', '.join(f'{k}={v:g}' for k, v in values.items())})"


def shown(part: pd.DataFrame) -> pd.DataFrame:
    """A section's rows as the tables show them: the label in the solver column."""
    return part.assign(solver=part["label"])[COLUMNS]


def legend() -> list[str]:
    """What the tables show, one sentence each (markdown)."""
    return [f"Solvers ranked by {RANK_BY.name}: mean ± std over the seeds of one setting (no ± "
            "for one seed or identical seeds), one notation per column; rows whose "
            f"{stats.CONFIDENCE:.0%} bootstrap intervals of the mean overlap share a rank, and "
            f"'{NOT_BETTER}' marks a row ranked no better than the static baseline. A solver "
            "run with several settings shows those that differ. Time to target: the median "
            "over seeds of the least wall time (a run's total, or a training checkpoint's) at "
            f"which {workprecision.TARGET_METRIC.name} reaches each target.",
            *(f"- `{m.name}`: {m.description}" for m in SCHEMA if m.report)]


def _md_table(frame: pd.DataFrame, columns: list[str], heads: list[str] | None = None) -> list[str]:
    lines = ["| " + " | ".join(heads or columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |"
              for row in frame[columns].itertuples(index=False)]
    return lines + [""]


def markdown(board: pd.DataFrame, header: str = "", ttt: pd.DataFrame | None = None) -> str:
    lines = ["# qdbench leaderboard", ""]
    if header:
        lines += [header.strip(), ""]
    lines += [*legend(), ""]
    for (problem, d, params), part in board.groupby(SECTION, sort=True):
        lines += [f"## {section_title(problem, d, params)}", "",
                  f"Reference: {part.iloc[0]['ref']}. Versions: {part.iloc[0]['versions']}.", "",
                  *_md_table(shown(part), COLUMNS)]
        mine = _section_rows(ttt, problem, d, params)
        if len(mine):
            lines += ["Time to target (wall time):", "",
                      *_md_table(mine, ["solver_shown", *target_columns()],
                                 ["solver", *target_columns()])]
    return "\n".join(lines)


def _section_rows(frame: pd.DataFrame | None, problem: str, d: int, params: str) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame()
    return frame[(frame.problem == problem) & (frame.d == d) & (frame.params == params)]


def _output_folder(out: Path) -> Path:
    """``out`` created if need be; a file or a place that cannot be written is a UserError."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file; name a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UserError(f"--out {out} cannot be written: {exc.strerror or exc}") from None
    return out


def write(store: Store, out: Path, problems: list[str] | None = None, header: str = "") -> list[Path]:
    """Write the leaderboard files (tables, plots, the page) under ``out``; return their paths."""
    from harness import page, plots

    table = load_runs(store, problems)
    _output_folder(out)
    board = leaderboard(table)
    pts = workprecision.points(store, table)
    long = reached(table, pts)
    ttt = time_to_target(long)
    md = out / "LEADERBOARD.md"
    md.write_text(markdown(board, header, ttt))
    csv = out / "leaderboard.csv"
    board.drop(columns=["rank_value"]).to_csv(csv, index=False)
    figures = plots.all_plots(store, table, out / "plots", pts, long)
    index = out / "index.html"
    index.write_text(page.render(board, ttt, figures, out, header))
    return [md, csv, index, *(p for paths in figures.values() for p in paths)]
