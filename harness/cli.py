"""The ``harness`` command line: ``harness list`` and ``harness run`` (click for parsing, rich for
tables and progress). Bad input ends in one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import dataclasses
import math
import signal
import sys

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.api import UserError
from harness.record import STATUSES
from harness.registry import discover
from harness.runner import DEFAULT_TIMES, resolve_device
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


#: seeds are stored as 64-bit integers
MAX_SEED = 2**63 - 1
#: most runs one sweep takes (each is planned, and checked, before anything runs)
MAX_GRID = 100_000


def _finite(ctx, param, value):
    """Refuse NaN and infinity for an option of seconds."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number of seconds")
    return value


def _names(values: tuple[str, ...] | str, option: str) -> list[str]:
    """The names given to a repeatable or comma-separated option (which was given): naming
    nothing (``--solver ,``) is a UserError, not a silent "all"."""
    names = _split(",".join(values) if isinstance(values, tuple) else values)
    if not names:
        raise UserError(f"{option} names nothing")
    return names


@cli.command("run")
@click.option("--problem", required=True, help="Problem name (see `harness list`).")
@click.option("--d", type=int, default=None, help="Dimension (number of particles / axes).")
@click.option("--param", "params", multiple=True, metavar="K=V", help="Problem parameter (repeatable).")
@click.option("--solver", "solver_names", multiple=True, metavar="NAME",
              help="Solver to run (repeatable or comma-separated); default: every solver "
                   "(those that refuse the problem are stored as `unsupported`).")
@click.option("--preset", default=None, help="Settings preset: smoke, quick (default) or paper.")
@click.option("--set", "sets", multiple=True, metavar="K=V", help="Solver setting (repeatable).")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--times", "n_times", type=click.IntRange(min=1), default=DEFAULT_TIMES, show_default=True,
              help="Number of scored times in (0, T].")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              callback=_finite, help="Seconds a run may take before it is stopped and stored "
                                     "as `timeout`.")
@click.option("--store", "store_path", default=None, metavar="PATH",
              help="Results table (default $QDBENCH_STORE or results/runs.parquet).")
@click.option("--force", is_flag=True, help="Recompute runs already in the store.")
@plugin_option
def run_cmd(problem, d, params, solver_names, preset, sets, seed, device, n_times, timeout,
            store_path, force, plugins) -> None:
    """Run solvers on a problem, score them against the reference, store and print the rows.

    Each solver runs in a child process of its own, as in a sweep: whatever it does, even
    exiting or being killed, becomes a stored row with its status and reason."""
    from harness import sweep

    reg = sweep.registry(tuple(plugins))
    prob = reg.problem(problem, d, parse_pairs(params, "--param"))
    names = _names(solver_names, "--solver") if solver_names else list(reg.solvers)
    requests = sweep.grid([problem], [d], names, [seed], params=parse_pairs(params, "--param"),
                          preset=preset, sets=parse_pairs(sets, "--set"),
                          device=resolve_device(device), n_times=n_times, plugins=tuple(plugins))
    if not solver_names:  # every solver; those that refuse the problem are stored as `unsupported`
        for name, reason in reg.unavailable.items():
            console.print(f"[yellow]solver {name} unavailable[/]: {reason}")
    store = Store(store_path)
    redo = sweep.EVERY if force else ()
    todo = sweep.pending(requests, store, redo)
    store.ensure_writable()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%  {task.fields[info]}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:

        def on_progress(req):
            task = bar.add_task(req.solver, total=1.0, info="")

            def update(fraction: float, **info) -> None:
                text = "  ".join(f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in info.items())
                bar.update(task, completed=fraction, info=text)
            return update

        sweep.execute(todo, store, timeout=timeout, redo=redo, on_progress=on_progress,
                      on_done=_claimed, on_note=_note)
    fresh = {r.job().key for r in todo}
    rows = [dict(store.get(r.job().key) or {}, served_from_store=r.job().key not in fresh)
            for r in requests]
    _print_rows(problem, prob, [r for r in rows if "run_key" in r], store)


def _note(text: str) -> None:
    console.print(f"[yellow]{text}[/]")


def _claimed(req, status: str) -> None:
    if status == "claimed":
        _note(f"{req.problem} {req.solver} seed={req.seed}: being computed by another process; "
              f"not computed twice (rerun later to see it)")


def _print_rows(name, prob, rows, store) -> None:
    from harness.metrics import SCHEMA

    ref = rows[0]
    console.print(f"[bold]{name}[/] d={prob.d}  "
                  + ", ".join(f"{k}={v:g}" for k, v in prob.params().items() if k != "d"))
    if not ref["ref_kind"]:
        console.print("reference: none could be certified; the runs are stored unscored")
    else:
        console.print(f"reference: {ref['ref_kind']}; certified bounds: var "
                      f"{_fmt(ref['ref_var_bound'])} (relative), mean {_fmt(ref['ref_mean_bound'])}, "
                      f"density_l1 {_fmt(ref['ref_density_bound'])}; edge mass "
                      f"{_fmt(ref['ref_edge_mass'])}")
    shown = [m for m in SCHEMA if m.cli]
    table = Table()
    for col in ("solver", "status"):
        table.add_column(col)
    for col in [m.label for m in shown] + ["from store"]:
        table.add_column(col, justify="right")
    for r in rows:
        status = r["status"] if r["status"] == "ok" else f"[red]{r['status']}[/]: {r['error'][:60]}"
        table.add_row(r["solver"], status, *(m.format(r.get(m.name)) for m in shown),
                      "yes" if r.get("served_from_store") else "")
    console.print(table)
    console.print(f"stored in {store.path}")


@cli.command("sweep")
@click.option("--problem", "problems", required=True, metavar="NAME ...", help="Problem name(s).")
@click.option("--d", "ds", default=None, metavar="N ...", help="Dimensions (default: the problem's).")
@click.option("--param", "params", multiple=True, metavar="K=V", help="Problem parameter (repeatable).")
@click.option("--solver", "solver_names", default=None, metavar="NAME ...",
              help="Solvers (default: every registered one).")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Number of seeds (0 … seeds-1).")
@click.option("--preset", default=None, help="Settings preset for every solver.")
@click.option("--set", "sets", multiple=True, metavar="K=V", help="Solver setting (repeatable).")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--times", "n_times", type=click.IntRange(min=1), default=DEFAULT_TIMES, show_default=True)
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler to join.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              callback=_finite,
              help="Seconds a run may take before it is stopped and stored as `timeout`.")
@click.option("--checkpoint-every", type=click.FloatRange(min=0, min_open=True), default=None,
              callback=_finite, metavar="S",
              help="Score the training solvers' prediction every S seconds (the "
                   "error-versus-wall-time plot).")
@click.option("--ladder", is_flag=True,
              help="Work–precision curves: each solver's runs at its ladder of settings from "
                   "cheap to expensive (grid solvers, t-VMC), training solvers with scored "
                   "checkpoints (every --checkpoint-every, default 20 s).")
@click.option("--dry-run", is_flag=True, help="Print the grid and what is already stored.")
@click.option("--store", "store_path", default=None, metavar="PATH")
@click.option("--force", is_flag=True, help="Recompute runs already in the store.")
@click.option("--redo", multiple=True, metavar="STATUS",
              type=click.Choice([s for s in STATUSES if s not in ("ok", "unscored")]),
              help="Recompute the stored runs that ended with this status (repeatable), e.g. "
                   "`failed` after a fix.")
@plugin_option
def sweep_cmd(problems, ds, params, solver_names, seeds, preset, sets, device, n_times, executor,
              scheduler, workers, timeout, checkpoint_every, ladder, dry_run, store_path, force,
              redo, plugins) -> None:
    """Run the grid problem × d × solver × seed, each run isolated; resume what is stored."""
    from harness import sweep

    reg = sweep.registry(tuple(plugins))
    dims = [_int(v, "--d") for v in _names(ds, "--d")] if ds is not None else [None]
    names = _names(solver_names, "--solver") if solver_names is not None else sorted(reg.solvers)
    problem_names = _names(problems, "--problem")
    size = len(problem_names) * len(dims) * len(names) * seeds
    if size > MAX_GRID:
        raise UserError(f"the grid has {size} runs, more than the {MAX_GRID} a sweep takes; "
                        f"split it")
    requests = sweep.grid(problem_names, dims, names, list(range(seeds)),
                          params=parse_pairs(params, "--param"), preset=preset,
                          sets=parse_pairs(sets, "--set"), device=resolve_device(device),
                          n_times=n_times, plugins=tuple(plugins),
                          checkpoint_every=checkpoint_every, ladder=ladder)
    store = Store(store_path)
    redo = sweep.EVERY if force else redo
    todo = sweep.pending(requests, store, redo)
    if not dry_run:
        store.ensure_writable()
    if dry_run:
        table = Table(title=f"{len(requests)} runs, {len(requests) - len(todo)} stored")
        for col in ("problem", "d", "solver", "seed", "settings", "run key", "stored"):
            table.add_column(col)
        stored = store.table().set_index("run_key")["status"].to_dict()
        for r in requests:
            key = r.job().key
            table.add_row(r.problem, str(r.job().problem.d), r.solver, str(r.seed),
                          " ".join(f"{k}={v}" for k, v in r.sets), key,
                          stored.get(key, "") if not force else "")
        console.print(table)
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task(f"sweep ({len(requests) - len(todo)} of {len(requests)} stored)",
                            total=len(todo))

        def done(req, status: str) -> None:
            bar.advance(task)
            if status != "ok":
                console.print(f"{req.problem} d={req.d} {req.solver} seed={req.seed}: {status}")

        sweep.execute(todo, store, executor=executor, workers=workers, scheduler=scheduler,
                      timeout=timeout, redo=redo, on_done=done, on_note=_note)
    console.print(f"stored in {store.path}")


@cli.command("report")
@click.option("--problem", "problems", multiple=True, metavar="NAME", help="Only these problems.")
@click.option("--store", "store_path", default=None, metavar="PATH")
@click.option("--out", default="results", show_default=True, help="Folder for the leaderboard.")
@click.option("--header", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Markdown placed at the top (e.g. the commands that produced the store).")
def report_cmd(problems, store_path, out, header) -> None:
    """Write LEADERBOARD.md, leaderboard.csv, index.html and plots from the store."""
    from pathlib import Path

    from harness import report

    text = Path(header).read_text() if header else ""
    paths = report.write(Store(store_path), Path(out), list(problems), text)
    console.print(f"wrote {len(paths)} files under {out}")


@cli.command("check")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@plugin_option
def check_cmd(names: tuple[str, ...], plugins: tuple[str, ...]) -> None:
    """Check solvers and problems against qdbench's contracts: the registered ones called NAME,
    or, without names, every one a --plugin FILE defines. Exit 1 when a check fails."""
    from harness.check import run_kit

    if not run_kit(list(names), list(plugins), echo=click.echo):
        sys.exit(1)


def _split(text: str) -> list[str]:
    return [v for part in text.replace(",", " ").split() for v in [part.strip()] if v]


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UserError(f"{option}: {text!r} is not a valid integer") from None


#: options that take several space-separated values (``--d 2 3 4``), joined before click parses
_MULTI = {"sweep": ("--problem", "--d", "--solver"), "run": ("--solver",)}


def _join_multi(argv: list[str]) -> list[str]:
    """``--d 2 3 4`` -> ``--d 2,3,4`` for the options of _MULTI (click options take one value)."""
    options = _MULTI.get(argv[0], ()) if argv else ()
    out, i = [], 0
    while i < len(argv):
        out.append(argv[i])
        if argv[i] in options:
            values = []
            while i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                values.append(argv[i + 1])
                i += 1
            out.append(",".join(values))
        i += 1
    return out


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: one-line errors with exit code 2 for bad input; Ctrl-C or SIGTERM stop the
    running children and keep every finished run (exit 130)."""
    from harness.sweep import SweepAborted

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored (`&`)
    try:
        cli.main(args=_join_multi(sys.argv[1:]), standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except SweepAborted as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted: finished runs are stored; rerun the command to resume", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
