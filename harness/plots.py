"""Plots of the leaderboard (matplotlib with seaborn's theme and palette, PNG and SVG, byte-stable),
drawn from the store's table and curves only: work–precision (error versus wall time per solver),
error, time to target and wall time versus d, density heat maps x–t, moments versus time,
training losses and error during training. Metrics, labels and targets come from
``harness.metrics.SCHEMA``; runs are named as the report names them. Each function returns its
files by the page's key: ``section_key`` of a problem instance, or ``scaling_key`` of a problem."""

from __future__ import annotations

import hashlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from harness import workprecision as wp  # noqa: E402
from harness.metrics import BY_NAME, SCHEMA  # noqa: E402
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


def section_key(problem: str, d: int, params: str) -> str:
    """The page's key (and the figures' file stem) of one problem instance."""
    return _slug(problem, f"d{d}", hashlib.sha256(params.encode()).hexdigest()[:6])


def scaling_key(problem: str) -> str:
    """The page's key of a problem's figure across d."""
    return _slug("scaling", problem)


def _colours(names) -> dict[str, tuple]:
    """One colour per name, the same in every figure of a report (sorted names)."""
    names = sorted(set(names))
    return dict(zip(names, sns.color_palette("tab10", max(len(names), 1))))


def _legend(fig, axes) -> None:
    """One legend for the figure, right of its panels, each label once."""
    seen = {}
    for ax in np.atleast_1d(axes).ravel():
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="center left", bbox_to_anchor=(1.0, 0.5),
                   fontsize=7, frameon=False)


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


def _line_name(solver: str, preset: str, presets: int) -> str:
    return solver if presets == 1 else f"{solver} [{preset}]"


def work_precision(lines: pd.DataFrame, table: pd.DataFrame, out: Path) -> dict[str, list[Path]]:
    """Per problem instance: each checkpoint metric against wall time, log–log, one colour per
    solver: its runs' scores (a ladder of settings joined by cost, a single run a marker) and its
    checkpoint curves (dashed), median over seeds with the min–max band; the reference's error
    bound (solid black), each sampling solver's noise floor (dotted, density) and the targets of
    the time-to-target table (grey) as horizontal lines."""
    files, colours = {}, _colours(lines.solver)
    bounds = {"var_rel_l2": "ref_var_bound", "density_l1": "ref_density_bound"}
    for (problem, d, params), part in lines.groupby(["problem", "d", "params"], sort=True):
        rows = table[(table.problem == problem) & (table.d == d) & (table.params == params)]
        ok = rows[rows.status == "ok"]
        fig, axes = plt.subplots(1, len(wp.ERRORS), figsize=(5 * len(wp.ERRORS), 3.6),
                                 squeeze=False)
        for ax, error in zip(axes[0], wp.ERRORS):
            for (solver, preset), line in part.groupby(["solver", "preset"], sort=True):
                name = _line_name(solver, preset, part[part.solver == solver].preset.nunique())
                style = dict(color=colours[solver])
                _draw(ax, line[line.kind == "run"].sort_values("wall_s"), error, "-", name,
                      {**style, "marker": "o"})
                for _, curve in line[line.kind == "checkpoint"].groupby("settings", sort=True):
                    _draw(ax, curve.sort_values("wall_s"), error, "--", f"{name} (checkpoints)",
                          style)
                if error == "density_l1":
                    floor = ok[ok.solver == solver].density_l1_floor.astype(float).median()
                    if floor > 0:
                        ax.axhline(floor, ls=":", lw=1, label=f"{name} noise floor", **style)
            bound = rows[bounds[error]].astype(float).max() if error in bounds else np.nan
            if bound > 0:
                ax.axhline(bound, color="black", lw=1, label="reference error bound")
            if error == wp.TARGET_METRIC.name:
                for target in wp.TARGETS:
                    ax.axhline(target, color="grey", lw=0.6, ls="-.", label="targets")
            ax.set(xscale="log", yscale="log", xlabel="wall time [s]",
                   ylabel=BY_NAME[error].label, title=f"{problem} d={d}: {error}")
        _legend(fig, axes)
        files.setdefault(section_key(problem, d, params), []).extend(
            _save(fig, out / f"workprecision_{section_key(problem, d, params)}"))
    return files


def _draw(ax, curve: pd.DataFrame, error: str, dash: str, label: str, style: dict) -> None:
    """A median line with its min–max band (positive values only: the axes are logarithmic)."""
    curve = curve[curve[error] > 0]
    if curve.empty:
        return
    x = curve.wall_s.to_numpy(float)
    ax.plot(x, curve[error], ls=dash if len(curve) > 1 else "none", label=label, **style)
    if (curve.seeds > 1).any():
        ax.fill_between(x, curve[f"{error}_lo"], curve[f"{error}_hi"], alpha=0.2, lw=0,
                        color=style["color"])
        if len(curve) == 1:
            ax.errorbar(x, curve[error], yerr=[curve[error] - curve[f"{error}_lo"],
                                               curve[f"{error}_hi"] - curve[error]],
                        color=style["color"], lw=1)


def _guides(ax, d: np.ndarray, y0: float, top: float) -> None:
    """O(d), O(d²) and exponential guide lines anchored at (d[0], y0), named where they leave
    the panel's range."""
    for guide, style, name in ((d / d[0], ":", "O(d)"), ((d / d[0]) ** 2, "--", "O(d²)"),
                               (np.exp(np.minimum(d - d[0], 300)), "-.", "exp(d)")):
        ax.plot(d, y0 * guide, style, color="grey", lw=0.8)
        inside = y0 * guide <= top
        ax.text(d[inside][-1], y0 * guide[inside][-1], f" {name}", color="grey", fontsize=7)


def _panel_across_d(ax, data: pd.DataFrame, value: str, colours: dict, label: str, title: str):
    """Median over seeds of ``value`` per name against d, min–max band, log–log, guides."""
    data = data[np.isfinite(data[value].astype(float)) & (data[value].astype(float) > 0)]
    if data.empty:
        ax.set_visible(False)
        return
    for name, part in data.groupby("name", sort=True):
        stats = part.groupby("d")[value].agg(["median", "min", "max"]).sort_index()
        ax.plot(stats.index, stats["median"], marker="o", label=name, color=colours[name])
        ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.2, lw=0,
                        color=colours[name])
    d = np.array(sorted(data.d.unique()), dtype=float)
    values = data[value].astype(float)
    top = values.max() * 10
    _guides(ax, d, float(data[data.d == d[0]][value].median()), top)
    ax.set(xscale="log", yscale="log", xlabel="d", ylabel=label, title=title)
    ax.set_ylim(values.min() / 3, top)  # the data, not the guides, set the scale


def scaling(store: Store, table: pd.DataFrame, long: pd.DataFrame, out: Path) -> dict[str, list[Path]]:
    """Per problem run at several d (COCO's view across dimension): the errors at each setting's
    fixed budget, the wall time, the time to two targets of the time-to-target table and the
    time per training iteration against d, log–log, with O(d), O(d²) and exponential guides."""
    files = {}
    ok = table[table.status == "ok"]
    for problem, part in ok.groupby("problem"):
        if part.d.nunique() < 2:
            continue
        part = _named(part).assign(per_iteration=[_per_iteration(store.diagnostics(k))
                                                  for k in part.run_key])
        reach = long[(long.problem == problem) & np.isfinite(long.seconds)]
        presets = reach.groupby("solver")["preset"].transform("nunique")
        reach = reach.assign(name=[_line_name(s, p, n) for s, p, n
                                   in zip(reach.solver, reach.preset, presets)])
        colours = _colours([*part.name, *reach.name])
        fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
        panels = [(part, m, BY_NAME[m].label, f"{BY_NAME[m].label} at fixed budget")
                  for m in ("var_rel_l2", "density_l1")]
        panels.append((part, "total_s", BY_NAME["total_s"].label, "wall time"))
        for target in wp.TARGETS[:2]:
            label = f"time to {wp.TARGET_METRIC.name} ≤ {target:g} [s]"
            panels.append((reach[reach.target == target].rename(columns={"seconds": "t"}), "t",
                           label, label.removesuffix(" [s]")))
        panels.append((part, "per_iteration", "time per epoch / step [s]", "time per iteration"))
        for ax, (data, value, label, title) in zip(axes.ravel(), panels):
            _panel_across_d(ax, data, value, colours, label, f"{problem}: {title}")
        _legend(fig, axes)
        files[scaling_key(problem)] = _save(fig, out / f"scaling_{_slug(problem)}")
    return files


def _first_ok(part: pd.DataFrame) -> pd.DataFrame:
    """One ok run per named solver setting (the lowest seed) of a problem × params × d group."""
    ok = _named(part)
    ok = ok[ok.status == "ok"].sort_values(["name", "seed"])
    return ok.groupby("name", sort=True).head(1)


def per_problem(store: Store, table: pd.DataFrame, out: Path) -> dict[str, list[Path]]:
    """Heat maps of coordinate 1's density over x and t (reference, then each solver), moments
    versus time against the reference, training losses and error versus wall time (one seed)."""
    files = {}
    for (problem, d, params), part in table.groupby(["problem", "d", "params"], sort=True):
        runs = _first_ok(part)
        ref = store.curves(part.iloc[0].ref_key) if part.iloc[0].ref_key else None
        if runs.empty or ref is None:
            continue
        curves = {r.name: store.curves(r.run_key) for r in runs.itertuples()}
        curves = {k: v for k, v in curves.items() if v is not None}
        name = section_key(problem, d, params)
        mine = files.setdefault(name, [])
        panels = [("reference", ref), *curves.items()]
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3), sharey=True)
        for ax, (label, c) in zip(np.atleast_1d(axes), panels):
            ax.imshow(c.marginals[:, 0, :].T, origin="lower", aspect="auto", cmap="magma",
                      extent=(c.times[0], c.times[-1], c.edges[0], c.edges[-1]))
            ax.set(title=label, xlabel="t")
        np.atleast_1d(axes)[0].set_ylabel("x₁")
        mine += _save(fig, out / f"density_{name}")

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        for label, c in panels:
            style = dict(color="black", lw=2, ls="--") if label == "reference" else {}
            axes[0].plot(c.times, c.mean[:, 0], label=label, **style)
            axes[1].plot(c.times, c.var[:, 0], label=label, **style)
        axes[0].set(xlabel="t", ylabel="mean x₁", title=f"{problem} d={d}")
        axes[1].set(xlabel="t", ylabel="Var x₁")
        axes[1].legend(fontsize=7)
        mine += _save(fig, out / f"moments_{name}")

        trained = {k: c.diagnostics["loss_curve"] for k, c in curves.items()
                   if "loss_curve" in c.diagnostics}
        if trained:
            fig, ax = plt.subplots(figsize=(5, 3.5))
            for label, curve in trained.items():
                ax.plot(curve["epoch"], np.asarray(curve["loss"], dtype=float), label=label)
            ax.set(yscale="log", xlabel="epoch", ylabel="training loss", title=f"{problem} d={d}")
            ax.legend(fontsize=7)
            mine += _save(fig, out / f"loss_{name}")

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
            mine += _save(fig, out / f"training_{name}")
    return files


def all_plots(store: Store, table: pd.DataFrame, out: Path, pts: pd.DataFrame,
              long: pd.DataFrame) -> dict[str, list[Path]]:
    """Every figure of the report, by the page's key (work–precision first in a section);
    ``pts`` are workprecision.points and ``long`` workprecision.time_to_target of the table."""
    sns.set_theme(style="whitegrid", context="paper")
    files = scaling(store, table, long, out)
    for key, paths in [*work_precision(wp.lines(pts), table, out).items(),
                       *per_problem(store, table, out).items()]:
        files.setdefault(key, []).extend(paths)
    return files
