"""The published leaderboard: reads only the results store and writes results/LEADERBOARD.md,
results/leaderboard.csv and results/index.html (tables and plots). The same store gives
byte-identical tables: rows are sorted, numbers formatted at fixed precision, and no clock is read."""

from __future__ import annotations

import hashlib
import html
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from harness.api import UserError
from harness.metrics import RANK_BY, SCHEMA, Metric
from harness.store import Store

#: one section of the report: a problem instance
SECTION = ["problem", "params", "d"]
#: one row of a section: runs that differ only in their seed
GROUP = [*SECTION, "solver", "preset", "settings"]
VERSIONS = ("qdbench", "python", "numpy", "torch", "jax", "netket")
#: the columns the report reads besides the metrics (a store written before a metric existed
#: reads that metric as NaN)
NEEDED = (*GROUP, "run_key", "seed", "status", "error", "device", "ref_key", "ref_kind",
          "ref_var_bound", "ref_density_bound", *(f"{n}_version" for n in VERSIONS))
#: the columns of the markdown and HTML tables ("solver" shows the row's label)
COLUMNS = ["rank", "solver", "preset", "seeds", "status", *(m.name for m in SCHEMA if m.report),
           "device"]
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


def _summary(metric: Metric, runs: pd.DataFrame) -> str:
    """The metric over seeds: the max over every run, or 'mean ± std' over the ok runs."""
    if metric.summary == "max":
        return metric.format(float(runs[metric.name].max()))
    v = runs.loc[runs.status == "ok", metric.name].dropna().to_numpy(dtype=float)
    if v.size == 0:
        return "—"
    mean = metric.format(v.mean())
    return mean if v.size == 1 else f"{mean} ± {v.std(ddof=1):.2g}"


def leaderboard(table: pd.DataFrame) -> pd.DataFrame:
    """One row per problem × params × d × solver × preset × settings (seeds averaged), ranked
    within each problem × params × d by the mean of metrics.RANK_BY."""
    rows = []
    for section, part in table.groupby(SECTION, sort=True):
        names = labels(part)
        for key, runs in part.groupby(["solver", "preset", "settings"], sort=True):
            ok = runs[runs.status == "ok"]
            row = dict(zip(GROUP, (*section, *key)), label=names[key], seeds=len(runs),
                       status=_statuses(runs))
            row.update({m.name: _summary(m, runs) for m in SCHEMA})
            row["rank_value"] = ok[RANK_BY.name].mean() if len(ok) else np.nan
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
    board["rank"] = (board.groupby(SECTION)["rank_value"]
                     .rank(method="min", ascending=RANK_BY.better == "lower", na_option="bottom")
                     .astype(int))
    return board.sort_values([*SECTION, "rank", "solver", "preset", "settings"]).reset_index(drop=True)


def _section_title(problem: str, params: str, d: int) -> str:
    values = {k: v for k, v in json.loads(params).items() if k != "d"}
    return f"{problem}, d = {d} ({', '.join(f'{k}={v:g}' for k, v in values.items())})"


def _shown(part: pd.DataFrame) -> pd.DataFrame:
    """A section's rows as the tables show them: the label in the solver column."""
    return part.assign(solver=part["label"])[COLUMNS]


def markdown(board: pd.DataFrame, header: str = "") -> str:
    lines = ["# qdbench leaderboard", ""]
    if header:
        lines += [header.strip(), ""]
    lines += [f"Solvers ranked by {RANK_BY.name} (mean ± std over the seeds of one setting; "
              "a solver run with several settings shows those that differ):", ""]
    lines += [f"- `{m.name}`: {m.description}" for m in SCHEMA if m.report] + [""]
    for (problem, params, d), part in board.groupby(SECTION, sort=True):
        lines += [f"## {_section_title(problem, params, d)}", "",
                  f"Reference: {part.iloc[0]['ref']}. Versions: {part.iloc[0]['versions']}.", "",
                  "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for _, row in _shown(part).iterrows():
            lines.append("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
        lines.append("")
    return "\n".join(lines)


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
    """Write the leaderboard files (and plots) under ``out``; return the paths written."""
    from harness import plots

    table = load_runs(store, problems)
    _output_folder(out)
    board = leaderboard(table)
    md = out / "LEADERBOARD.md"
    md.write_text(markdown(board, header))
    csv = out / "leaderboard.csv"
    board.drop(columns=["rank_value"]).to_csv(csv, index=False)
    figures = plots.all_plots(store, table, out / "plots")
    page = out / "index.html"
    page.write_text(_html(board, figures, out, header))
    return [md, csv, page, *figures]


def _html(board: pd.DataFrame, figures: list[Path], out: Path, header: str) -> str:
    parts = ["<!doctype html><meta charset='utf-8'><title>qdbench leaderboard</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:48%}</style>",
             "<h1>qdbench leaderboard</h1>", f"<pre>{html.escape(header.strip())}</pre>" if header else ""]
    for (problem, params, d), part in board.groupby(SECTION, sort=True):
        parts.append(f"<h2>{html.escape(_section_title(problem, params, d))}</h2>")
        parts.append(f"<p>Reference: {html.escape(part.iloc[0]['ref'])}</p>")
        parts.append(_shown(part).to_html(index=False, escape=True))
    parts.append("<h2>Plots</h2>")
    parts += [f"<img src='{p.relative_to(out).as_posix()}'>" for p in figures if p.suffix == ".png"]
    return "\n".join(parts) + "\n"
