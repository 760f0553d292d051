"""DSM paper epochs on this machine, side by side with the official code's (a tool, not a test).

    python tests/benchmarks/dsm_side_by_side.py OFFICIAL_CHECKOUT [--d 2 4] [--threads 2]
        [--pairs 2] [--official-epochs 1] [--epochs 3]

OFFICIAL_CHECKOUT is a clone of github.com/elena-orlova/deep-stochastic-mechanics: its
``interacting-system/src/nn.py`` training function is imported and called as its own script
calls it, at the paper's hyperparameters (N = 1000, batch 100, M = 150, width 500, Adam 1e-5,
"interpolated" points); nothing of it is copied. Every side runs in a fresh process at the same
thread count, interleaved (official, qdbench, official, qdbench, ... per d), so that both meet
the same machine; each process reports wall time and peak RSS per epoch. qdbench's first epoch
compiles and is shown apart; the ratio is the official epoch's mean over qdbench's timed epochs'.
At d = 4 the official code runs out of 24 GB in its second epoch, hence one official epoch."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux


def _shim_official_imports() -> None:
    """Let the official ``src/nn.py`` import as published: it imports ``src.utils_fast_new``,
    which the repository does not ship (its ``src/utils.py`` holds the functions nn.py uses,
    ``u_0`` and ``V_x_i``), and utils.py imports qmsolve only for its Crank–Nicolson plots and
    reference, never called here. Both names are bound to what is at hand; no code is copied."""
    import importlib
    import types

    try:
        importlib.import_module("qmsolve")
    except ImportError:
        stub = types.ModuleType("qmsolve")
        stub.__getattr__ = lambda name: None  # `from qmsolve import X` binds X = None
        sys.modules["qmsolve"] = stub
    try:
        importlib.import_module("src.utils_fast_new")
    except ImportError:
        sys.modules["src.utils_fast_new"] = importlib.import_module("src.utils")


def _official_epochs(checkout: Path, d: int, epochs: int):
    """Yield the wall time of each official epoch (one ``train_dsm_interact`` iteration), with
    the problem and hyperparameters taken from qdbench's ``bosons`` and DSM ``paper`` preset."""
    import numpy as np
    import torch
    from torch import nn

    from problems import Bosons
    from solvers.dsm import DSMSolver, Settings

    sys.path.insert(0, str(checkout / "interacting-system"))
    _shim_official_imports()
    from src.nn import NN_connect_init, train_dsm_interact

    p, s = Bosons(d=d), Settings(**DSMSolver.presets["paper"])
    torch.manual_seed(0)
    net_u = NN_connect_init(d + 1, s.width, d, p.hbar, p.m, p.omega, 1.0, 0.0)
    net_v = NN_connect_init(d + 1, s.width, d, p.hbar, p.m, p.omega, 0.0, 1.0)
    opt = torch.optim.Adam([*net_u.parameters(), *net_v.parameters()], lr=s.lr, weight_decay=0)
    time_splits = torch.Tensor(np.linspace(0, p.T, s.N + 1))
    with tempfile.TemporaryDirectory() as out:
        for _ in range(epochs):
            start = time.perf_counter()
            # as the official script calls it: loss weights 1, "interpolated" (off-grid) points;
            # its sig2 argument is the initial standard deviation √(ħ/(2mω))
            train_dsm_interact(net_u, net_v, torch.device("cpu"), opt, nn.MSELoss(), 1.0, 1.0, 1.0,
                               s.N, time_splits, path=out, n_iter=1, batch_size=s.batch,
                               omega2=p.omega**2, mu=0.0, sig2=p.sigma0, m=p.m, h=p.hbar, T=p.T,
                               g=p.g, d=d, sampling_scheme="interpolated", M=s.M)
            yield time.perf_counter() - start


def _qdbench_epochs(d: int, epochs: int):
    """Yield the wall time of a compiling first epoch, then of ``epochs`` more."""
    from dsm_epoch import paper_epoch  # beside this script, which is sys.path[0]

    epoch = paper_epoch(d)
    for _ in range(epochs + 1):
        start = time.perf_counter()
        epoch()
        yield time.perf_counter() - start


def child(side: str, d: int, epochs: int, checkout: Path, threads: int) -> None:
    """Run one side's epochs in this process, one JSON line per epoch on stdout."""
    import torch

    torch.set_num_threads(threads)
    runs = (_official_epochs(checkout, d, epochs) if side == "official"
            else _qdbench_epochs(d, epochs))
    for i, wall in enumerate(runs):
        print(json.dumps({"side": side, "d": d, "epoch": i, "wall_s": wall,
                          "peak_rss_gb": _peak_rss_gb()}), flush=True)


def _run_child(side: str, d: int, epochs: int, args) -> list[dict]:
    from harness.isolate import thread_env

    cmd = [sys.executable, __file__, str(args.checkout), "--child", side, "--d", str(d),
           "--epochs", str(epochs), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, env=thread_env(args.threads), capture_output=True, text=True)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode:
        why = (f"killed by signal {-proc.returncode} (SIGKILL: out of memory?)" if proc.returncode < 0
               else (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1])
        print(f"  {side} d={d}: stopped after {len(rows)} epoch(s): {why}", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="clone of elena-orlova/deep-stochastic-mechanics")
    parser.add_argument("--d", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=2, help="official/qdbench pairs per d")
    parser.add_argument("--official-epochs", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3, help="timed qdbench epochs per process")
    parser.add_argument("--child", choices=["official", "qdbench"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not (args.checkout / "interacting-system" / "src" / "nn.py").is_file():
        parser.error(f"{args.checkout} holds no interacting-system/src/nn.py "
                     "(clone the official repository)")
    if args.child:
        return child(args.child, args.d[0], args.epochs, args.checkout, args.threads)

    import pandas as pd

    rows: list[dict] = []
    for d in args.d:
        for pair in range(args.pairs):
            for side, epochs in (("official", args.official_epochs), ("qdbench", args.epochs)):
                got = _run_child(side, d, epochs, args)
                rows += [{**r, "pair": pair} for r in got]
                for r in got:
                    print(f"  {time.strftime('%H:%M:%S')} {side} d={d} epoch {r['epoch']}: "
                          f"{r['wall_s']:.2f} s, peak RSS {r['peak_rss_gb']:.2f} GB", file=sys.stderr)
    if {r["side"] for r in rows} != {"official", "qdbench"}:
        sys.exit("no epoch finished on one side: nothing to compare")
    runs = pd.DataFrame(rows)
    timed = runs[(runs.side == "official") | (runs.epoch > 0)]  # qdbench's epoch 0 compiles
    table = timed.groupby(["d", "pair", "side"]).agg(
        epochs=("wall_s", "size"), mean_s=("wall_s", "mean"), min_s=("wall_s", "min"),
        max_s=("wall_s", "max"), peak_rss_gb=("peak_rss_gb", "max")).reset_index()
    means = table.pivot(index=["d", "pair"], columns="side", values="mean_s")
    means["ratio"] = means["official"] / means["qdbench"]
    compile_s = runs[(runs.side == "qdbench") & (runs.epoch == 0)].groupby("d").wall_s.mean()
    print(f"threads {args.threads}; qdbench's first (compiling) epoch, mean per d: "
          + ", ".join(f"d={d}: {s:.1f} s" for d, s in compile_s.items()))
    print(table.to_string(index=False, float_format="%.2f"))
    print(means.to_string(float_format="%.2f"))


if __name__ == "__main__":
    main()
