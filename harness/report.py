"""The published leaderboard: reads only the results store and writes results/LEADERBOARD.md,
results/leaderboard.csv and results/index.html (tables and plots). The same store gives
byte-identical tables: rows are sorted, numbers formatted at fixed precision, and no clock is read."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness.store import Store

GROUP = ["problem", "params", "d", "solver", "preset"]
SHOWN = ["density_l1", "density_l1_floor", "var_rel_l2", "mean_rmse", "mean_rel_l2",
         "paper_mean_err", "paper_var_err"]


def _pm(values: pd.Series) -> str:
    """'mean ± std' over seeds at three significant digits ('—' when nothing is finite)."""
    v = values.dropna().to_numpy(dtype=float)
    if v.size == 0:
        return "—"
    return f"{v.mean():.3g}" if v.size == 1 else f"{v.mean():.3g} ± {v.std(ddof=1):.2g}"


def _statuses(rows: pd.DataFrame) -> str:
    parts = []
    for status, group in sorted(rows.groupby("status"), key=lambda kv: kv[0] != "ok"):
        text = f"{status}×{len(group)}"
        if status != "ok":
            text += f" ({sorted(group['error'].astype(str))[0][:80]})"
        parts.append(text)
    return ", ".join(parts)


def leaderboard(table: pd.DataFrame) -> pd.DataFrame:
    """One row per problem × params × d × solver × preset, ranked by mean density_l1."""
    rows = []
    for key, runs in table.groupby(GROUP, sort=True):
        ok = runs[runs.status == "ok"]
        row = dict(zip(GROUP, key))
        row.update(seeds=len(runs), status=_statuses(runs))
        for metric in SHOWN:
            row[metric] = _pm(ok[metric])
        row["density_l1_mean"] = ok["density_l1"].mean() if len(ok) else np.nan
        row["total_s"] = _pm(ok["total_s"])
        row["peak_rss_mb"] = f"{runs['peak_rss_mb'].max():.0f}" if runs["peak_rss_mb"].notna().any() else "—"
        first = runs.sort_values("run_key").iloc[0]
        row["ref"] = (f"{first.ref_kind}: var ≤ {first.ref_var_bound:.1g}, "
                      f"density ≤ {first.ref_density_bound:.1g}") if first.ref_kind else "—"
        row["device"] = ", ".join(sorted(set(runs.device)))
        row["versions"] = " ".join(f"{n}={first[f'{n}_version']}" for n in
                                   ("qdbench", "python", "numpy", "torch", "jax", "netket")
                                   if first[f"{n}_version"])
        rows.append(row)
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    board["rank"] = (board.groupby(["problem", "params", "d"])["density_l1_mean"]
                     .rank(method="min", na_option="bottom").astype(int))
    return board.sort_values(["problem", "params", "d", "rank", "solver"]).reset_index(drop=True)


def _section_title(problem: str, params: str, d: int) -> str:
    values = {k: v for k, v in json.loads(params).items() if k != "d"}
    return f"{problem}, d = {d} ({', '.join(f'{k}={v:g}' for k, v in values.items())})"


COLUMNS = ["rank", "solver", "preset", "seeds", "status", "density_l1", "density_l1_floor",
           "var_rel_l2", "mean_rmse", "paper_var_err", "total_s", "peak_rss_mb", "device"]


def markdown(board: pd.DataFrame, header: str = "") -> str:
    lines = ["# qdbench leaderboard", ""]
    if header:
        lines += [header.strip(), ""]
    lines += ["Solvers ranked by density_l1 (mean ± std over seeds); `density_l1_floor` is the "
              "histogram noise of exact samples of the same size; times in seconds, memory in MB.", ""]
    for (problem, params, d), part in board.groupby(["problem", "params", "d"], sort=True):
        lines += [f"## {_section_title(problem, params, d)}", "",
                  f"Reference: {part.iloc[0]['ref']}. Versions: {part.iloc[0]['versions']}.", "",
                  "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for _, row in part.iterrows():
            lines.append("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
        lines.append("")
    return "\n".join(lines)


def write(store: Store, out: Path, problems: list[str] | None = None, header: str = "") -> list[Path]:
    """Write the leaderboard files (and plots) under ``out``; return the paths written."""
    from harness import plots

    table = store.table()
    if problems:
        table = table[table.problem.isin(problems)]
    board = leaderboard(table)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "LEADERBOARD.md"
    md.write_text(markdown(board, header))
    csv = out / "leaderboard.csv"
    board.drop(columns=["density_l1_mean"], errors="ignore").to_csv(csv, index=False)
    figures = plots.all_plots(store, table, out / "plots")
    page = out / "index.html"
    page.write_text(_html(board, figures, out, header))
    return [md, csv, page, *figures]


def _html(board: pd.DataFrame, figures: list[Path], out: Path, header: str) -> str:
    parts = ["<!doctype html><meta charset='utf-8'><title>qdbench leaderboard</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:48%}</style>",
             "<h1>qdbench leaderboard</h1>", f"<pre>{html.escape(header.strip())}</pre>" if header else ""]
    for (problem, params, d), part in board.groupby(["problem", "params", "d"], sort=True):
        parts.append(f"<h2>{html.escape(_section_title(problem, params, d))}</h2>")
        parts.append(f"<p>Reference: {html.escape(part.iloc[0]['ref'])}</p>")
        parts.append(part[COLUMNS].to_html(index=False, escape=True))
    parts.append("<h2>Plots</h2>")
    parts += [f"<img src='{p.relative_to(out).as_posix()}'>" for p in figures if p.suffix == ".png"]
    return "\n".join(parts) + "\n"
