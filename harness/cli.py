"""The ``harness`` command line: ``harness list`` and ``harness run`` (click for parsing, rich for
tables and progress). Bad input ends in one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import dataclasses
import math
import sys

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.api import UserError
from harness.registry import discover
from harness.runner import DEFAULT_TIMES, plan, resolve_device, run
from harness.settings import parse_pairs
from harness.store import Store

# A pipe gets a wide table rather than an 80-column one with every cell cut short.
console = Console(width=None if sys.stdout.isatty() else 200)
plugin_option = click.option("--plugin", "plugins", multiple=True, metavar="FILE",
                             help="Python file defining extra Solver/Problem classes (repeatable).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """qdbench: one arena for time-dependent Schrödinger equation solvers."""


def _defaults(cls) -> str:
    return ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls)
                     if f.default is not dataclasses.MISSING)


@cli.command("list")
@plugin_option
def list_cmd(plugins: tuple[str, ...]) -> None:
    """List problems and solvers with their parameters, defaults and presets."""
    reg = discover(plugins)
    table = Table(title="problems", show_lines=True)
    for col in ("name", "description", "parameters (defaults)"):
        table.add_column(col)
    for name, (cls, overrides) in sorted(reg.problems.items()):
        summary = cls.summary if not overrides else f"variant of {cls.name}"
        params = ", ".join(f"{k}={v:g}" for k, v in cls(**overrides).params().items())
        table.add_row(name, summary, params)
    console.print(table)
    table = Table(title="solvers", show_lines=True)
    for col in ("name", "description", "settings (defaults)", "presets"):
        table.add_column(col)
    for name, cls in sorted(reg.solvers.items()):
        presets = "\n".join(f"{p}: " + (", ".join(f"{k}={v}" for k, v in o.items()) or "defaults")
                            for p, o in cls.presets.items())
        table.add_row(name, cls.summary, _defaults(cls.Settings), presets)
    for name, reason in sorted(reg.unavailable.items()):
        table.add_row(name, f"[red]unavailable[/]: {reason}", "", "")
    console.print(table)


def _fmt(value: float, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


@cli.command("run")
@click.option("--problem", required=True, help="Problem name (see `harness list`).")
@click.option("--d", type=int, default=None, help="Dimension (number of particles / axes).")
@click.option("--param", "params", multiple=True, metavar="K=V", help="Problem parameter (repeatable).")
@click.option("--solver", "solver_names", multiple=True, metavar="NAME",
              help="Solver to run (repeatable or comma-separated); default: every solver that supports the problem.")
@click.option("--preset", default=None, help="Settings preset: smoke, quick (default) or paper.")
@click.option("--set", "sets", multiple=True, metavar="K=V", help="Solver setting (repeatable).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--times", "n_times", type=click.IntRange(min=1), default=DEFAULT_TIMES, show_default=True,
              help="Number of scored times in (0, T].")
@click.option("--store", "store_path", default=None, metavar="PATH",
              help="Results table (default $QDBENCH_STORE or results/runs.parquet).")
@click.option("--force", is_flag=True, help="Recompute runs already in the store.")
@plugin_option
def run_cmd(problem, d, params, solver_names, preset, sets, seed, device, n_times, store_path,
            force, plugins) -> None:
    """Run solvers on a problem, score them against the reference, store and print the rows."""
    reg = discover(plugins)
    prob = reg.problem(problem, d, parse_pairs(params, "--param"))
    device = resolve_device(device)
    names = [n for arg in solver_names for n in arg.split(",") if n]
    if names:
        solvers = [reg.solver(n) for n in names]
    else:
        solvers = [cls for cls in reg.solvers.values() if cls().supports(prob)[0]]
        for name, reason in reg.unavailable.items():
            console.print(f"[yellow]solver {name} unavailable[/]: {reason}")
    jobs = plan(problem, prob, solvers, preset, parse_pairs(sets, "--set"), seed, device, n_times)
    store = Store(store_path)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%  {task.fields[info]}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:

        def on_progress(name: str):
            task = bar.add_task(name, total=1.0, info="")

            def update(fraction: float, **info) -> None:
                text = "  ".join(f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in info.items())
                bar.update(task, completed=fraction, info=text)
            return update

        rows = run(jobs, store, force=force, on_progress=on_progress)
    _print_rows(problem, prob, rows, store)


def _print_rows(name, prob, rows, store) -> None:
    ref = rows[0]
    console.print(f"[bold]{name}[/] d={prob.d}  "
                  + ", ".join(f"{k}={v:g}" for k, v in prob.params().items() if k != "d"))
    console.print(f"reference: {ref['ref_kind']}; certified bounds: var {_fmt(ref['ref_var_bound'])} "
                  f"(relative), mean {_fmt(ref['ref_mean_bound'])}, density_l1 "
                  f"{_fmt(ref['ref_density_bound'])}; edge mass {_fmt(ref['ref_edge_mass'])}")
    table = Table()
    for col in ("solver", "status", "density_l1", "noise floor", "var_rel_l2", "mean_rmse",
                "paper var err", "total s", "peak MB", "from store"):
        table.add_column(col, justify="right" if col not in ("solver", "status") else "left")
    for r in rows:
        status = r["status"] if r["status"] == "ok" else f"[red]{r['status']}[/]: {r['error'][:60]}"
        table.add_row(r["solver"], status, _fmt(r["density_l1"]), _fmt(r["density_l1_floor"]),
                      _fmt(r["var_rel_l2"]), _fmt(r["mean_rmse"]), _fmt(r["paper_var_err"]),
                      _fmt(r["total_s"]), _fmt(r["peak_rss_mb"], 4),
                      "yes" if r.get("served_from_store") else "")
    console.print(table)
    console.print(f"stored in {store.path}")


def main() -> None:
    """Entry point: one-line errors with exit code 2 for bad input."""
    try:
        cli.main(standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
