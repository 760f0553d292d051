"""One fault model for `harness run` and `harness sweep`: whatever a solver does becomes a stored
row; interrupts keep what finished and leave no worker behind; two sweeps never compute one run;
runs without a certified reference are kept unscored and scored later."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

HARNESS = str(Path(sys.executable).parent / "harness")
PLUGIN = str(Path(__file__).parent / "plugins" / "misbehaving.py")
FAST = ("--preset", "smoke", "--times", "5")


def harness(*args, cwd, env=None):
    return subprocess.run([HARNESS, *args], capture_output=True, text=True, cwd=cwd,
                          env=None if env is None else {**os.environ, **env})


def test_run_isolates_every_solver_fault_into_a_stored_row(tmp_path):
    """supports() raising, sys.exit(3), SIGKILL, wrong shapes, NaN: each a row; the CLI exits 0."""
    store = tmp_path / "runs.parquet"
    proc = harness("run", "--problem", "oscillator", "--plugin", PLUGIN, "--solver",
                   "supports_raises,exits,killed,wrong_shapes,nans,static", *FAST,
                   "--store", str(store), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = pd.read_parquet(store).set_index("solver")
    expected = {"supports_raises": ("failed", "RuntimeError: supports exploded"),
                "exits": ("failed", "solver called sys.exit(3)"),
                "killed": ("oom", "killed by the OS (SIGKILL)"),
                "wrong_shapes": ("failed", "prediction shapes"),
                "nans": ("failed", "NaN"),
                "static": ("ok", "")}
    for solver, (status, reason) in expected.items():
        assert rows.loc[solver, "status"] == status, (solver, rows.loc[solver, "error"])
        assert reason in rows.loc[solver, "error"], (solver, rows.loc[solver, "error"])
    assert "supports_raises" in proc.stdout and "oom" in proc.stdout


def _workers(folder) -> list[psutil.Process]:
    """The live harness workers started from ``folder`` (their working directory)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "harness.worker" in (p.info["cmdline"] or []) and p.cwd() == str(folder) \
                    and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_sweep_keeps_what_finished_and_leaves_no_worker(tmp_path, sig):
    """Ctrl-C (SIGINT) ends the sweep within 5 s, exit 130; SIGKILL too takes its workers with
    it (parent-death signal). Finished runs are stored, queued ones are not started."""
    store = tmp_path / "runs.parquet"
    proc = subprocess.Popen([HARNESS, "sweep", "--problem", "oscillator", "--solver", "static",
                             "halts", "--workers", "2", *FAST, "--plugin", PLUGIN,
                             "--store", str(store)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # static has finished and halts is computing
        if store.exists() and len(pd.read_parquet(store)) == 1 and \
                len(_workers(tmp_path)) == 1:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the sweep did not reach the state to interrupt")
    started = time.time()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert time.time() - started < 5
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    if sig == signal.SIGINT:
        assert "interrupted" in err and "Traceback" not in err
    time.sleep(1.0)  # the kernel delivers the parent-death signal
    assert _workers(tmp_path) == []
    table = pd.read_parquet(store)
    assert list(table.solver) == ["static"] and list(table.status) == ["ok"]


def test_two_sweeps_on_one_store_compute_each_run_once(tmp_path):
    """Each run is claimed while it computes: the second sweep skips what the first holds."""
    store = tmp_path / "runs.parquet"
    marks = tmp_path / "marks"
    marks.mkdir()
    args = [HARNESS, "sweep", "--problem", "oscillator", "--solver", "counted", "--seeds", "4",
            *FAST, "--plugin", PLUGIN, "--store", str(store)]
    env = {**os.environ, "QDBENCH_TEST_MARKS": str(marks)}
    procs = [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    table = pd.read_parquet(store)
    assert len(table) == 4 and (table.status == "ok").all()
    assert len(list(marks.iterdir())) == 4  # one mark per computation: none computed twice


def test_runs_without_a_reference_are_kept_unscored_and_scored_later(tmp_path):
    """A reference that cannot be certified loses no solver's work: the rows are `unscored`
    with the reason; once a reference exists, a rerun scores them without recomputing."""
    store = tmp_path / "runs.parquet"
    args = ("run", "--problem", "bosons", "--d", "2", "--solver", "static", *FAST,
            "--store", str(store))
    first = harness(*args, cwd=tmp_path, env={"QDBENCH_REFERENCE_GB": "1e-9"})
    assert first.returncode == 0, first.stderr
    row = pd.read_parquet(store).iloc[0]
    assert row.status == "unscored" and "no certified reference" in row.error
    assert pd.isna(row.var_rel_l2)
    second = harness(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    rescored = pd.read_parquet(store).iloc[0]
    assert rescored.status == "ok" and rescored.error == ""
    assert rescored.total_s == row.total_s and rescored.created_at == row.created_at  # not rerun
    assert 0.3 < rescored.var_rel_l2 < 2  # static on interacting bosons: far off, but scored
    assert rescored.ref_kind == "split-operator"


def test_a_sweep_whose_dask_workers_are_gone_ends_with_a_clear_message(tmp_path):
    """The only worker of a real scheduler dies mid-run: the sweep ends within its --timeout
    with one line and exit 1 instead of waiting forever; what finished before is stored."""
    info = tmp_path / "scheduler.json"
    cluster = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                                 "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", str(info)], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 60
        while not info.exists() and time.time() < deadline:
            time.sleep(0.2)
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker",
                                   "--scheduler-file", str(info), "--no-nanny", "--nthreads", "1",
                                   "--no-dashboard"], cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cluster.append(worker)
        address = __import__("json").loads(info.read_text())["address"]
        store = tmp_path / "runs.parquet"
        sweep = subprocess.Popen([HARNESS, "sweep", "--problem", "oscillator", "--solver", "halts",
                                  *FAST, "--executor", "dask", "--scheduler", address,
                                  "--timeout", "15", "--plugin", PLUGIN, "--store", str(store)],
                                 cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        while time.time() < deadline and not _workers(tmp_path):  # the run is computing
            time.sleep(0.2)
        worker.kill()
        killed = time.time()
        _, err = sweep.communicate(timeout=60)
        assert sweep.returncode == 1, err
        assert "no Dask worker left" in err and "Traceback" not in err
        assert time.time() - killed < 15 + 10
    finally:
        for proc in cluster:
            proc.kill()
            proc.wait()
