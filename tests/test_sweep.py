"""Sweeps: isolated runs whose crashes, timeouts and kills become rows; resuming; Dask; reports."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from harness import report
from harness.store import Store

HARNESS = str(Path(sys.executable).parent / "harness")

PLUGIN = str(Path(__file__).parent / "plugins" / "misbehaving.py")


def harness(*args, cwd, check=True):
    proc = subprocess.run([HARNESS, *args], capture_output=True, text=True, cwd=cwd)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_failures_become_rows_with_their_status_and_the_report_shows_them(tmp_path):
    store = str(tmp_path / "runs.parquet")
    harness("sweep", "--problem", "oscillator", "--solver", "raises", "sleeps", "killed", "static",
            "--preset", "smoke", "--times", "5", "--timeout", "20", "--workers", "2",
            "--plugin", PLUGIN, "--store", store, cwd=tmp_path)
    table = pd.read_parquet(store).set_index("solver")
    assert table["status"].to_dict() == {"raises": "failed", "sleeps": "timeout", "killed": "oom",
                                         "static": "ok"}
    assert table.loc["static", "threads"] == max(1, os.cpu_count() // 2)  # two runs share the cores
    harness("report", "--store", store, "--out", str(tmp_path / "out"), cwd=tmp_path)
    board = (tmp_path / "out" / "LEADERBOARD.md").read_text()
    for text in ("failed×1", "timeout×1", "oom×1", "deliberate failure", "ok×1"):
        assert text in board


def test_rerun_is_served_from_the_store_and_reports_are_byte_identical(tmp_path):
    store = str(tmp_path / "runs.parquet")
    args = ("sweep", "--problem", "oscillator", "--d", "1", "2", "--solver", "static",
            "--seeds", "2", "--preset", "smoke", "--times", "5", "--store", store)
    harness(*args, cwd=tmp_path)
    assert len(pd.read_parquet(store)) == 4
    dry = harness(*args, "--dry-run", cwd=tmp_path).stdout
    assert "4 runs, 4 stored" in dry
    stamp = os.path.getmtime(store)
    harness(*args, cwd=tmp_path)
    assert os.path.getmtime(store) == stamp  # nothing recomputed, nothing written
    outs = []
    for out in ("a", "b"):
        harness("report", "--store", store, "--out", str(tmp_path / out), cwd=tmp_path)
        outs.append([(tmp_path / out / f).read_bytes() for f in ("LEADERBOARD.md", "leaderboard.csv")])
    assert outs[0] == outs[1]
    assert (tmp_path / "a" / "plots").is_dir() and (tmp_path / "a" / "index.html").exists()


def test_redo_recomputes_the_runs_of_a_status_and_only_those(tmp_path):
    """After a fix, `--redo failed` reruns the failed rows; the ok ones stay as stored."""
    store = str(tmp_path / "runs.parquet")
    args = ("sweep", "--problem", "oscillator", "--solver", "raises", "static", "--preset",
            "smoke", "--times", "5", "--plugin", PLUGIN, "--store", store)
    harness(*args, cwd=tmp_path)
    before = pd.read_parquet(store).set_index("solver")["created_at"]
    assert "2 runs, 1 stored" in harness(*args, "--redo", "failed", "--dry-run", cwd=tmp_path).stdout
    harness(*args, "--redo", "failed", cwd=tmp_path)
    after = pd.read_parquet(store).set_index("solver")
    assert len(after) == 2 and after.loc["raises", "status"] == "failed"
    assert after.loc["raises", "created_at"] != before["raises"]
    assert after.loc["static", "created_at"] == before["static"]
    wrong = harness(*args, "--redo", "broken", cwd=tmp_path, check=False)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr


def test_dask_local_cluster_runs_a_tiny_sweep(tmp_path):
    store = str(tmp_path / "runs.parquet")
    harness("sweep", "--problem", "oscillator", "--d", "1", "2", "--solver", "static",
            "--preset", "smoke", "--times", "5", "--executor", "dask", "--workers", "2",
            "--store", store, cwd=tmp_path)
    table = pd.read_parquet(store)
    assert sorted(table.d) == [1, 2] and (table.status == "ok").all()


def test_killing_a_sweep_loses_no_finished_run_and_rerunning_resumes(tmp_path):
    store = tmp_path / "runs.parquet"
    args = [HARNESS, "sweep", "--problem", "oscillator", "--solver", "slow", "--seeds", "6",
            "--preset", "smoke", "--times", "5", "--plugin", PLUGIN, "--store", str(store)]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(Store(store).table()) < 2:  # read while it writes
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(pd.read_parquet(store))  # still readable after the kill
    assert 2 <= finished < 6
    subprocess.run(args, cwd=tmp_path, check=True, capture_output=True)
    table = pd.read_parquet(store)
    assert len(table) == 6 and (table.status == "ok").all()


def test_a_diverged_run_keeps_its_checkpoints_and_loss_curve(tmp_path):
    """Nothing computed is lost: a run that diverges is stored with its status, the checkpoint
    scores taken before it blew up and the loss curve its solver recorded."""
    store = str(tmp_path / "runs.parquet")
    harness("sweep", "--problem", "oscillator", "--solver", "diverges", "--times", "5",
            "--checkpoint-every", "1", "--plugin", PLUGIN, "--store", store, cwd=tmp_path)
    row = pd.read_parquet(store).iloc[0]
    assert (row["status"], row["error"]) == ("diverged", "loss blew up at epoch 3")
    assert Store(store).curves(row["run_key"]) is None  # no prediction to score
    kept = Store(store).diagnostics(row["run_key"])
    assert len(kept["wall_s"]) == 1 and 0 <= kept["density_l1"][0] <= 2
    assert kept["loss_curve"]["loss"] == [1.0, 9.0, 1e9] and kept["epochs"] == 3


def test_checkpoints_give_the_error_versus_wall_time_plot(tmp_path):
    """--checkpoint-every reaches the isolated runs: the stored curves hold scored checkpoints
    and the report draws error versus wall time during training."""
    store = str(tmp_path / "runs.parquet")
    harness("sweep", "--problem", "oscillator", "--param", "p0=0.5", "--solver", "dsm",
            "--preset", "smoke", "--times", "5", "--checkpoint-every", "0.2", "--store", store,
            cwd=tmp_path)
    row = pd.read_parquet(store).iloc[0]
    assert 0 < row["fit_s"] < row["total_s"]  # the solver's training time reaches the record
    curves = Store(store).curves(row["run_key"])
    assert len(curves.diagnostics["wall_s"]) >= 2
    assert all(0 <= e <= 2 for e in curves.diagnostics["density_l1"])
    harness("report", "--store", store, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert list((tmp_path / "out" / "plots").glob("training_oscillator_d1_*.png"))


def test_a_ladder_sweep_draws_a_work_precision_line_per_solver(tmp_path):
    """--ladder: crank_nicolson runs its rungs, cheap to dear, and its error falls along them;
    a training solver gets scored checkpoints instead; static stays one point."""
    from harness.sweep import LADDER_CHECKPOINT_S, grid

    requests = grid(["oscillator"], [1], ["crank_nicolson", "dsm", "static"], [0],
                    params={"p0": "0.5"}, preset="quick", sets={}, device="cpu", n_times=20,
                    ladder=True)
    rungs = [r for r in requests if r.solver == "crank_nicolson"]
    assert len(rungs) == 4 and len({r.job().key for r in rungs}) == 4
    assert [r.sets for r in rungs if not r.ladder_rung] == [()]  # the preset's own run
    (dsm,) = [r for r in requests if r.solver == "dsm"]
    assert dsm.checkpoint_every == LADDER_CHECKPOINT_S
    assert [r.sets for r in requests if r.solver == "static"] == [()]
    store = str(tmp_path / "runs.parquet")
    harness("sweep", "--problem", "oscillator", "--param", "p0=0.5", "--solver", "crank_nicolson",
            "--times", "20", "--ladder", "--store", store, cwd=tmp_path)
    table = pd.read_parquet(store)
    table = table.iloc[(-table.settings.map(lambda s: json.loads(s)["dt"])).argsort()]
    assert len(table) == 4 and (table.status == "ok").all()
    assert table.ladder_rung.tolist() == [True, True, False, True]
    (row,) = report.leaderboard(report.load_runs(Store(store))).itertuples()  # the preset's run only
    assert row.solver == "crank_nicolson" and json.loads(row.settings)["points"] is None
    errors = table.var_rel_l2.to_numpy()
    assert (errors[1:] < errors[:-1]).all(), errors  # dearer rungs are more accurate
    assert errors[0] > 3 * errors[-1]


def test_a_solver_that_refuses_the_problem_runs_once_not_once_per_rung():
    """t-VMC has a ladder, but refuses a time-dependent potential: one request (its one
    ``unsupported`` row) per seed, not one per rung."""
    from harness.sweep import grid

    requests = grid(["driven_trap", "oscillator"], [1], ["tvmc"], [0, 1], params={},
                    preset="quick", sets={}, device="cpu", n_times=20, ladder=True)
    driven = [r for r in requests if r.problem == "driven_trap"]
    assert [(r.seed, r.sets, r.ladder_rung) for r in driven] == [(0, (), False), (1, (), False)]
    assert len(requests) - len(driven) == 2 * 4  # the oscillator's full ladder, each seed


def test_a_deterministic_solver_runs_once_whatever_the_seeds():
    """crank_nicolson's numbers do not depend on the seed: three seeds ask one run of it (the
    first seed's), and three of each sampling solver."""
    from harness.sweep import grid

    requests = grid(["oscillator"], [1], ["crank_nicolson", "static"], [4, 5, 6], params={},
                    preset="quick", sets={}, device="cpu", n_times=20)
    assert [(r.solver, r.seed) for r in requests] == [
        ("crank_nicolson", 4), ("static", 4), ("static", 5), ("static", 6)]
