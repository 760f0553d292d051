"""Bad input, table-driven: every command answers with one line on stderr and exit code 2, never
a traceback, and leaves the store as it found it (the trials of the hardening issue, each one)."""

import hashlib
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.record import Record
from harness.store import IDENTITY, Store

PLUGINS = {
    "import_error.py": "import nosuchmodule_qdbench\n",
    "empty.py": "x = 1\n",
    "no_settings.py": ("from harness.api import Solver\n"
                       "class NoSettings(Solver):\n    name = 'no_settings'\n"
                       "    def solve(self, problem, times, settings, ctx): pass\n"),
    "no_presets.py": ("from solvers.static import StaticSolver\n"
                      "class NoPresets(StaticSolver):\n    name = 'no_presets'\n    presets = {}\n"),
    "named_static.py": ("from solvers.static import StaticSolver\n"
                        "class Mine(StaticSolver):\n    name = 'static'\n"),
    "old_supports.py": ("from solvers.static import StaticSolver\n"
                        "class Old(StaticSolver):\n    name = 'old'\n"
                        "    def supports(self, problem):\n        return True, ''\n"),
    "named_problem.py": ("from dataclasses import dataclass\nfrom problems.oscillator import Oscillator\n"
                         "@dataclass(frozen=True)\nclass Twin(Oscillator):\n    name = 'bosons'\n"),
}


def _files(tmp: Path) -> None:
    """A corrupt, an empty (0-byte), a foreign, a run-less and a valid store, a folder, a file,
    and the broken plugins."""
    (tmp / "corrupt.parquet").write_bytes(b"not parquet at all")
    (tmp / "empty.parquet").write_bytes(b"")
    pd.DataFrame({"a": [1], "b": ["x"]}).to_parquet(tmp / "foreign.parquet")
    pd.DataFrame({c: pd.Series(dtype=object) for c in IDENTITY}).to_parquet(tmp / "norows.parquet")
    Store(tmp / "valid" / "runs.parquet").put(Record(
        run_key="k", problem="oscillator", d=1, params="{}", solver="static", preset="quick",
        settings="{}", seed=0, device="cpu", var_rel_l2=0.1, density_l1=0.2))
    (tmp / "folder").mkdir()
    (tmp / "afile").write_text("x")
    for name, text in PLUGINS.items():
        (tmp / name).write_text(text)


OSC = ["--problem", "oscillator", "--solver", "static"]
RUN = ["run", *OSC, "--store", "s.parquet"]
SWEEP = ["sweep", *OSC, "--store", "s.parquet"]
REPORT = ["report", "--out", "out"]

CASES = [
    # run: names, parameters, presets, settings
    (["run", "--problem", "nope"], "unknown problem 'nope'"),
    (["run", "--problem", "bosons", "--solver", "nope"], "unknown solver 'nope'"),
    (["run", "--problem", "bosons", "--param", "q=1"], "problem bosons has no parameter 'q'"),
    (["run", "--problem", "bosons", "--param", "g=abc"], "g='abc' is not a valid float"),
    (["run", "--problem", "bosons", "--param", "g=nan"], "g='nan' is not a valid float"),
    (["run", "--problem", "bosons", "--param", "hbar=-1"], "hbar must be > 0"),
    (["run", "--problem", "bosons", "--param", "m=0"], "m must be > 0"),
    (["run", "--problem", "bosons", "--param", "T=0"], "T must be > 0"),
    (["run", "--problem", "bosons", "--param", "g"], "--param expects key=value"),
    (["run", "--problem", "bosons", "--d", "0"], "d must be a positive integer"),
    (["run", "--problem", "bosons", "--d", "x"], "Invalid value for '--d'"),
    ([*RUN, "--preset", "huge"], "solver static has no preset 'huge'"),
    ([*RUN, "--set", "zzz=1"], "no chosen solver has a setting named zzz"),
    ([*RUN, "--set", "n_samples=1"], "static: n_samples must be an integer >= 2"),
    ([*RUN, "--param", "p0=0.5", "--param", "p0=0.7"], "--param p0 is given twice"),
    ([*RUN, "--d", "2", "--param", "d=1"], "the dimension is set with --d"),
    (["run", "--problem", "oscillator", "--solver", ",,,", "--store", "s.parquet"],
     "--solver names nothing"),
    (["run", "--problem", "bosons", "--solver", "static", "--d", "1000000000"],
     "bosons d=1000000000 with 100 scored times: a prediction"),
    ([*RUN, "--times", "100000000"], "oscillator d=1 with 100000000 scored times: a prediction"),
    ([*RUN, "--times", "0"], "Invalid value for '--times'"),
    ([*RUN, "--seed", str(10**30)], "Invalid value for '--seed'"),
    ([*RUN, "--seed", str(2**63)], "Invalid value for '--seed'"),
    ([*RUN, "--seed", "-1"], "Invalid value for '--seed'"),
    ([*RUN, "--device", "quantum"], "Invalid value for '--device'"),
    ([*RUN, "--timeout", "nan"], "Invalid value for '--timeout': nan is not a finite"),
    ([*RUN, "--timeout", "-1"], "Invalid value for '--timeout'"),
    # run: stores
    (["run", *OSC, "--store", "folder"], "store folder is a directory"),
    (["run", *OSC, "--store", ""], "--store: the path is empty"),
    (["run", *OSC, "--store", "/proc/x.parquet"], "store /proc/x.parquet cannot be written"),
    (["run", *OSC, "--store", "/sys/x.parquet"], "store /sys/x.parquet cannot be written"),
    (["run", *OSC, "--store", "corrupt.parquet"], "store corrupt.parquet is not a readable Parquet"),
    (["run", *OSC, "--store", "empty.parquet"], "store empty.parquet is not a readable Parquet"),
    (["run", *OSC, "--store", "foreign.parquet"], "store foreign.parquet is not a qdbench store"),
    (["run", *OSC], "store corrupt.parquet is not a readable Parquet"),  # via $QDBENCH_STORE
    # run: plugins
    ([*RUN, "--plugin", "missing.py"], "plugin file missing.py does not exist"),
    ([*RUN, "--plugin", "import_error.py"], "plugin import_error.py failed to import"),
    ([*RUN, "--plugin", "empty.py"], "plugin empty.py defines no Solver or Problem"),
    ([*RUN, "--plugin", "no_settings.py"], "plugin no_settings.py: class NoSettings has no `Settings`"),
    ([*RUN, "--plugin", "no_presets.py"], "plugin no_presets.py: class NoPresets has no `presets`"),
    ([*RUN, "--plugin", "named_static.py"], "plugin named_static.py: class Mine: solver name 'static' is already"),
    ([*RUN, "--plugin", "old_supports.py"], "plugin old_supports.py: class Old has `supports` with a signature"),
    ([*RUN, "--plugin", "named_problem.py"], "plugin named_problem.py: class Twin: problem name 'bosons' is already"),
    # sweep
    ([*SWEEP[:-1], "corrupt.parquet"], "store corrupt.parquet is not a readable Parquet"),
    ([*SWEEP[:-1], "corrupt.parquet", "--dry-run"], "store corrupt.parquet is not a readable Parquet"),
    ([*SWEEP[:-1], "foreign.parquet", "--dry-run"], "store foreign.parquet is not a qdbench store"),
    ([*SWEEP, "--timeout", "nan"], "Invalid value for '--timeout': nan is not a finite"),
    ([*SWEEP, "--timeout", "inf"], "Invalid value for '--timeout': inf is not a finite"),
    ([*SWEEP, "--checkpoint-every", "nan"], "Invalid value for '--checkpoint-every'"),
    ([*SWEEP, "--executor", "dask", "--scheduler", "notanaddress"],
     "--scheduler 'notanaddress' is not a Dask address"),
    ([*SWEEP, "--executor", "slurm"], "Invalid value for '--executor'"),
    (["sweep", "--problem", "oscillator", "--solver", ",", "--store", "s.parquet"], "--solver names nothing"),
    (["sweep", "--problem", ",", "--solver", "static", "--store", "s.parquet"], "--problem names nothing"),
    ([*SWEEP, "--d", ","], "--d names nothing"),
    ([*SWEEP, "--d", "2", "x"], "--d: 'x' is not a valid integer"),
    ([*SWEEP, "--seeds", "0"], "Invalid value for '--seeds'"),
    ([*SWEEP, "--seeds", "1000000000"], "the grid has 1000000000 runs"),
    ([*SWEEP, "--plugin", "named_static.py"], "solver name 'static' is already registered"),
    (["sweep", "--problem", "oscillator", "--solver", "crank_nicolson", "--ladder", "--set",
      "dt=0.1", "--store", "s.parquet"], "--ladder varies dt of crank_nicolson"),
    # report
    ([*REPORT, "--store", "missing.parquet"], "no runs in missing.parquet"),
    ([*REPORT, "--store", "norows.parquet"], "no runs in norows.parquet"),
    ([*REPORT, "--store", "empty.parquet"], "store empty.parquet is not a readable Parquet"),
    ([*REPORT, "--store", "corrupt.parquet"], "store corrupt.parquet is not a readable Parquet"),
    ([*REPORT, "--store", "foreign.parquet"], "store foreign.parquet is not a qdbench store"),
    ([*REPORT, "--store", "valid/runs.parquet", "--problem", "nosuch"], "no runs of nosuch in"),
    (["report", "--store", "valid/runs.parquet", "--out", "afile"], "--out afile is an existing file"),
    (["report", "--store", "valid/runs.parquet", "--out", "/proc/x"], "--out /proc/x cannot be written"),
    # list and the command itself
    (["list", "--plugin", "missing.py"], "plugin file missing.py does not exist"),
    (["list", "--plugin", "import_error.py"], "plugin import_error.py failed to import"),
    (["list", "--bogus"], "No such option '--bogus'"),
    (["nosuchcommand"], "No such command 'nosuchcommand'"),
]


def _snapshot(tmp: Path) -> dict[str, str]:
    return {str(p.relative_to(tmp)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(tmp.rglob("*")) if p.is_file() and p.suffix != ".lock"}


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a)[:70] for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_the_store_alone(args, message, tmp_path,
                                                                  monkeypatch, capsys):
    _files(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QDBENCH_STORE", "corrupt.parquet")
    before = _snapshot(tmp_path)
    monkeypatch.setattr(sys, "argv", ["harness", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    out = capsys.readouterr()
    assert exit_.value.code == 2, out
    assert out.err.startswith("error: ") and message in out.err, out.err
    assert len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err + out.out
    assert _snapshot(tmp_path) == before  # nothing written, nothing changed


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    """Nothing listens on port 1: a clear line after the connection timeout, no traceback."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["harness", *SWEEP, "--executor", "dask",
                                      "--scheduler", "tcp://127.0.0.1:1"])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in err and "Traceback" not in err
