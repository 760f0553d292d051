"""Plots of the leaderboard (seaborn, PNG and SVG), drawn from the store's table and curves only:
error, wall time and time per iteration versus d, density heat maps x–t, moments versus time,
training losses, and error versus wall time during training with each solver's time to reach a
fixed accuracy. Metrics, their labels and targets come from ``harness.metrics.SCHEMA``; runs are
named as the report names them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from harness.metrics import BY_NAME, RANK_BY, SCHEMA  # noqa: E402
from harness.report import labels  # noqa: E402
from harness.store import Store  # noqa: E402

# SVGs carry no random ids or dates, so the same store draws the same files
matplotlib.rcParams.update({"svg.hashsalt": "qdbench", "svg.fonttype": "none"})
_META = {"svg": {"Date": None}, "png": {"Software": None}}


def _save(fig, path: Path) -> list[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "svg"):
        target = path.with_suffix(f".{ext}")
        fig.savefig(target, dpi=110, bbox_inches="tight", metadata=_META[ext])
        out.append(target)
    plt.close(fig)
    return out


def _slug(*parts) -> str:
    return "_".join(str(p) for p in parts).replace("/", "-").replace(" ", "")


def _named(part: pd.DataFrame) -> pd.DataFrame:
    """``part`` with a ``name`` column: the report's label, and the preset where one solver ran
    under several."""
    names = labels(part)
    presets = part.groupby("solver")["preset"].nunique()
    return part.assign(name=[names[(r.solver, r.preset, r.settings)]
                             + (f" [{r.preset}]" if presets[r.solver] > 1 else "")
                             for r in part.itertuples()])


def _per_iteration(diagnostics: dict) -> float:
    """Seconds per training iteration: an epoch (dsm, pinn) or a TDVP step (tvmc); NaN else."""
    if diagnostics.get("s_per_epoch"):
        return float(diagnostics["s_per_epoch"])
    if diagnostics.get("n_steps"):
        return float(diagnostics["fit_s"]) / diagnostics["n_steps"]
    return np.nan


def scaling(store: Store, table: pd.DataFrame, out: Path) -> list[Path]:
    """Per problem: the ranking metric, wall time and time per training iteration versus d, per
    solver, log axes, with O(d), O(d²) and exponential guide lines anchored at the smallest d."""
    files = []
    ok = table[table.status == "ok"]
    for problem, part in ok.groupby("problem"):
        if part.d.nunique() < 2:
            continue
        part = _named(part).assign(per_iteration=[_per_iteration(c.diagnostics) if c else np.nan
                                                  for c in map(store.curves, part.run_key)])
        panels = [(RANK_BY.name, RANK_BY.label), ("total_s", BY_NAME["total_s"].label),
                  ("per_iteration", "time per epoch / step [s]")]
        fig, axes = plt.subplots(1, 3, figsize=(16, 4))
        for ax, (metric, label) in zip(axes, panels):
            data = part[np.isfinite(part[metric].astype(float))]
            if data.empty:
                ax.set_visible(False)
                continue
            sns.lineplot(data=data, x="d", y=metric, hue="name", marker="o", errorbar="sd", ax=ax)
            ax.set(xscale="log", yscale="log", ylabel=label, title=f"{problem}: {label} vs d")
            d = np.array(sorted(data.d.unique()), dtype=float)
            y0 = float(data[data.d == d[0]][metric].median())
            values = data[metric].astype(float)
            for guide, style, name in ((d / d[0], ":", "O(d)"), ((d / d[0]) ** 2, "--", "O(d²)"),
                                       (np.exp(np.minimum(d - d[0], 300)), "-.", "exp(d)")):
                ax.plot(d, y0 * guide, style, color="grey", lw=0.8)
                inside = y0 * guide <= values.max() * 10
                ax.text(d[inside][-1], y0 * guide[inside][-1], f" {name}", color="grey", fontsize=7)
            ax.set_ylim(values.min() / 3, values.max() * 10)  # the data, not the guides, set the scale
        files += _save(fig, out / f"scaling_{_slug(problem)}")
    return files


def _first_ok(part: pd.DataFrame) -> pd.DataFrame:
    """One ok run per named solver setting (the lowest seed) of a problem × params × d group."""
    ok = _named(part)
    ok = ok[ok.status == "ok"].sort_values(["name", "seed"])
    return ok.groupby("name", sort=True).head(1)


def per_problem(store: Store, table: pd.DataFrame, out: Path) -> list[Path]:
    """Heat maps of coordinate 1's density over x and t (reference, then each solver), moments
    versus time against the reference, training losses and error versus wall time."""
    files = []
    for (problem, params, d), part in table.groupby(["problem", "params", "d"], sort=True):
        runs = _first_ok(part)
        ref = store.curves(part.iloc[0].ref_key) if part.iloc[0].ref_key else None
        if runs.empty or ref is None:
            continue
        curves = {r.name: store.curves(r.run_key) for r in runs.itertuples()}
        curves = {k: v for k, v in curves.items() if v is not None}
        name = _slug(problem, f"d{d}", hashlib.sha256(params.encode()).hexdigest()[:6])
        panels = [("reference", ref), *curves.items()]
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3), sharey=True)
        for ax, (label, c) in zip(np.atleast_1d(axes), panels):
            ax.imshow(c.marginals[:, 0, :].T, origin="lower", aspect="auto", cmap="magma",
                      extent=(c.times[0], c.times[-1], c.edges[0], c.edges[-1]))
            ax.set(title=label, xlabel="t")
        np.atleast_1d(axes)[0].set_ylabel("x₁")
        files += _save(fig, out / f"density_{name}")

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        for label, c in panels:
            style = dict(color="black", lw=2, ls="--") if label == "reference" else {}
            axes[0].plot(c.times, c.mean[:, 0], label=label, **style)
            axes[1].plot(c.times, c.var[:, 0], label=label, **style)
        axes[0].set(xlabel="t", ylabel="mean x₁", title=f"{problem} d={d}")
        axes[1].set(xlabel="t", ylabel="Var x₁")
        axes[1].legend(fontsize=7)
        files += _save(fig, out / f"moments_{name}")

        trained = {k: c.diagnostics["loss_curve"] for k, c in curves.items()
                   if "loss_curve" in c.diagnostics}
        if trained:
            fig, ax = plt.subplots(figsize=(5, 3.5))
            for label, curve in trained.items():
                ax.plot(curve["epoch"], np.asarray(curve["loss"], dtype=float), label=label)
            ax.set(yscale="log", xlabel="epoch", ylabel="training loss", title=f"{problem} d={d}")
            ax.legend(fontsize=7)
            files += _save(fig, out / f"loss_{name}")

        tracked = {k: c.diagnostics for k, c in curves.items() if len(c.diagnostics.get("wall_s", [])) > 1}
        if tracked:  # checkpoints of sampling solvers use few samples: density_l1 sits on their
            # histogram-noise floor, so the variance error (noise ~ √(2/n)) is shown beside it
            scored = [m for m in SCHEMA if m.checkpoint]
            fig, axes = plt.subplots(1, len(scored), figsize=(5 * len(scored), 3.5), squeeze=False)
            for metric, ax in zip(scored, axes[0]):
                for label, diag in tracked.items():
                    if metric.name not in diag:
                        continue
                    wall = np.asarray(diag["wall_s"])
                    err = np.asarray(diag[metric.name], dtype=float)
                    text = label
                    if metric.target is not None:
                        hit = metric.reached(err, metric.target)
                        at = wall[np.argmax(hit)] if hit.any() else np.nan
                        sign = "≤" if metric.better == "lower" else "≥"
                        text += f" ({sign}{metric.target} at {at:.0f} s)"
                    ax.plot(wall, err, marker=".", label=text)
                if metric.target is not None:
                    ax.axhline(metric.target, color="grey", lw=0.8, ls=":")
                ax.set(xscale="log", yscale="log", xlabel="wall time [s]", ylabel=metric.label,
                       title=f"{problem} d={d}: {metric.name} during training")
                ax.legend(fontsize=7)
            files += _save(fig, out / f"training_{name}")
    return files


def all_plots(store: Store, table: pd.DataFrame, out: Path) -> list[Path]:
    sns.set_theme(style="whitegrid", context="paper")
    return scaling(store, table, out) + per_problem(store, table, out)
