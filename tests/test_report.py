"""The leaderboard: one row per solver setting, columns read from the metric schema, statuses
shown with their reason, and bad input refused in one line with exit code 2."""

import json

import pandas as pd
import pytest

from cli_call import call
from harness import cli, report
from harness.metrics import SCHEMA
from harness.record import METRICS, STATUSES, Record
from harness.store import Store
from problems import Oscillator

PARAMS = json.dumps({"d": 1, "x0": 0.3})


def _record(key, settings, seed=0, solver="dsm", **kw):
    return Record(run_key=key, problem="oscillator", d=1, params=PARAMS, solver=solver,
                  preset="quick", settings=json.dumps(settings, sort_keys=True), seed=seed,
                  device="cpu", **kw)


def _store(tmp_path, *records) -> Store:
    store = Store(tmp_path / "runs.parquet")
    for r in records:
        store.put(r)
    return store


def test_two_settings_of_one_solver_give_two_rows_and_seeds_are_averaged(tmp_path):
    store = _store(tmp_path,
                   _record("a0", {"epochs": 1000, "lr": 1e-3}, seed=0, density_l1=0.1),
                   _record("a1", {"epochs": 1000, "lr": 1e-3}, seed=1, density_l1=0.2),
                   _record("b0", {"epochs": 2000, "lr": 1e-3}, seed=0, density_l1=0.05),
                   _record("s0", {}, solver="static", density_l1=0.5))
    board = report.leaderboard(report.load_runs(store))
    assert list(board.label) == ["dsm (epochs=2000)", "dsm (epochs=1000)", "static"]
    assert list(board.seeds) == [1, 2, 1]
    assert list(board["rank"]) == [1, 2, 3]
    assert board.density_l1[1] == "0.15 ± 0.071"  # the two seeds of one setting, averaged
    md = report.markdown(board)
    assert "| 1 | dsm (epochs=2000) | quick | 1 |" in md and "| 2 | dsm (epochs=1000) | quick | 2 |" in md


def test_a_plugin_sharing_a_builtins_name_is_kept_apart_and_long_differences_are_cut(tmp_path):
    builtin = {"epochs": 1000, "lr": 1e-3}
    plugin = {"epochs": 5, "lr": 0.5, "alpha": 1, "beta": [1, 2], "gamma": "x"}
    store = _store(tmp_path, _record("a", builtin, density_l1=0.1),
                   _record("b", plugin, density_l1=0.3))
    names = report.labels(report.load_runs(store))
    assert names[("dsm", "quick", json.dumps(builtin, sort_keys=True))] == "dsm (epochs=1000, lr=0.001)"
    cut = names[("dsm", "quick", json.dumps(plugin, sort_keys=True))]
    # settings both have come first; past three, a hash of the settings keeps names apart
    assert cut.startswith("dsm (epochs=5, lr=0.5, alpha=1, … #") and cut.endswith(")")
    assert len(report.leaderboard(report.load_runs(store))) == 2


def test_the_same_runs_in_any_order_give_the_same_tables(tmp_path):
    store = _store(tmp_path, *(_record(f"k{i}", {"epochs": 1000 * (i % 3)}, seed=i, density_l1=0.1 * i,
                                       total_s=float(i)) for i in range(6)))
    table = report.load_runs(store)
    shuffled = table.sample(frac=1.0, random_state=3)
    a, b = report.leaderboard(table), report.leaderboard(shuffled)
    assert report.markdown(a) == report.markdown(b)
    assert a.to_csv(index=False) == b.to_csv(index=False)


def test_the_schema_drives_the_record_the_report_and_the_cli_table(tmp_path, capsys):
    names = [m.name for m in SCHEMA]
    assert list(METRICS) == names
    assert set(names) <= set(Record.__dataclass_fields__)
    shown = [m.name for m in SCHEMA if m.report]
    assert shown and all(c in report.COLUMNS for c in shown)
    store = _store(tmp_path, _record("a", {}, **{n: 0.25 for n in names}))
    out = tmp_path / "out"
    report.write(store, out)
    header = next(line for line in (out / "LEADERBOARD.md").read_text().splitlines()
                  if line.startswith("| rank"))
    assert [c.strip() for c in header.strip("|").split("|")] == report.COLUMNS
    hidden = [m.name for m in SCHEMA if not m.report]
    assert hidden and not any(f"| {n} " in header for n in hidden)
    assert set(names) <= set(pd.read_csv(out / "leaderboard.csv").columns)

    values = {m.name: 101.0 + 2 * i for i, m in enumerate(SCHEMA)}  # each metric its own value
    cli._print_rows("oscillator", Oscillator(d=1), [_record("a", {}, **values).as_row()], store)
    text = capsys.readouterr().out
    for m in SCHEMA:
        assert (f" {m.format(values[m.name])} " in text) == m.cli, m.name
        assert (f" {m.label} " in text) == m.cli, m.name


def test_unscored_is_a_status_shown_like_the_other_failures(tmp_path, capsys):
    assert "unscored" in STATUSES
    bad = _record("u", {}, status="unscored", error="no certified reference: grid too large")
    store = _store(tmp_path, bad, _record("o", {}, seed=1, density_l1=0.2))
    board = report.leaderboard(report.load_runs(store))
    assert board.status[0] == "ok×1, unscored×1 (no certified reference: grid too large)"
    assert board.density_l1[0] == "0.2"  # only ok runs are scored
    cli._print_rows("oscillator", Oscillator(d=1), [bad.as_row()], store)
    assert "unscored: no certified reference" in capsys.readouterr().out


@pytest.mark.parametrize("case, message", [
    ("missing store", "no runs in"),
    ("empty store", "no runs in"),
    ("unknown problem", "no runs of bosons in"),
    ("out is a file", "is an existing file"),
    ("out unwritable", "--out /proc/x cannot be written"),
    ("foreign table", "lacks the columns"),
])
def test_report_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, case, message):
    path = tmp_path / "runs.parquet"
    args = ["report", "--store", str(path), "--out", str(tmp_path / "out")]
    if case == "empty store":
        pd.DataFrame(columns=list(Record.__dataclass_fields__)).to_parquet(path)
    elif case == "foreign table":
        pd.DataFrame({"a": [1, 2]}).to_parquet(path)
    elif case != "missing store":
        _store(tmp_path, _record("a", {}, density_l1=0.1))
    if case == "unknown problem":
        args += ["--problem", "bosons"]
    elif case == "out is a file":
        (tmp_path / "file").write_text("x")
        args += ["--out", str(tmp_path / "file")]
    elif case == "out unwritable":
        args += ["--out", "/proc/x"]
    code, out, err = call(monkeypatch, capsys, *args)
    assert code == 2, (out, err)
    assert message in err and err.count("\n") == 1, err
    if case == "unknown problem":
        assert "it holds oscillator" in err
    if case == "foreign table":
        assert "run_key" in err
    assert not (tmp_path / "out").exists()  # nothing is written for bad input
