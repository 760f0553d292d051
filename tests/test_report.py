"""The leaderboard: one row per solver setting, columns read from the metric schema, statuses
shown with their reason, and bad input refused in one line with exit code 2."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from cli_call import call
from harness import cli, numbers, report, stats, workprecision
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


# --- work–precision, time to target, statistics and the page, on a small synthetic store -------

BOSONS = "bosons"


def _bosons(key, solver, d, seed, settings=None, **metrics):
    params = json.dumps({"d": d, "g": 1.0}, sort_keys=True)
    return Record(run_key=key, problem=BOSONS, d=d, params=params, solver=solver, preset="quick",
                  settings=json.dumps(settings or {}, sort_keys=True), seed=seed, device="cpu",
                  ref_kind="split-operator", ref_var_bound=1e-7, ref_density_bound=1e-6, **metrics)


#: dsm's checkpoints per seed: (wall_s, var_rel_l2); seed 2 never reaches 0.1
CHECKPOINTS = {0: ([10.0, 20.0, 30.0], [0.2, 0.08, 0.02]),
               1: ([12.0, 22.0, 32.0], [0.15, 0.09, 0.05]),
               2: ([11.0, 21.0, 31.0], [0.3, 0.2, 0.12])}
#: crank_nicolson's refinement ladder: settings → (total_s, var_rel_l2), the same for each seed
LADDER = {32: (1.0, 0.2), 64: (4.0, 0.05), 128: (16.0, 0.005)}


def synthetic_store(path) -> Store:
    """bosons at d = 2, 3 and 10 (so text order would differ): static; a crank_nicolson ladder;
    dsm with checkpoints; tvmc whose density_l1 interval overlaps dsm's (a tie); pinn no better
    than static (overlapping intervals)."""
    store = Store(path)
    for d in (10, 2, 3):
        for seed in range(3):
            store.put(_bosons(f"s{d}{seed}", "static", d, seed, density_l1=0.5, var_rel_l2=0.6,
                              total_s=0.01))
            for n, (wall, var) in LADDER.items():
                store.put(_bosons(f"c{d}{seed}{n}", "crank_nicolson", d, seed, {"n": n},
                                  density_l1=var / 10, var_rel_l2=var, total_s=wall * d))
            wall, var = CHECKPOINTS[seed]
            store.put(_bosons(f"d{d}{seed}", "dsm", d, seed, density_l1=0.11 + 0.01 * seed,
                              var_rel_l2=var[-1], total_s=35.0 * d, density_l1_floor=0.02),
                      extras={"wall_s": [w * d for w in wall], "var_rel_l2": var,
                              "density_l1": [0.3, 0.2, 0.11 + 0.01 * seed]})
            store.put(_bosons(f"t{d}{seed}", "tvmc", d, seed, density_l1=(0.1, 0.14, 0.12)[seed],
                              var_rel_l2=0.2, total_s=5.0 * d))
            store.put(_bosons(f"p{d}{seed}", "pinn", d, seed, density_l1=(0.45, 0.55, 0.5)[seed],
                              var_rel_l2=0.4, total_s=20.0 * d))
    return store


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    store = synthetic_store(tmp_path_factory.mktemp("store") / "runs.parquet")
    table = report.load_runs(store)
    return store, table, report.leaderboard(table)


def test_time_to_target_takes_the_least_wall_time_of_checkpoints_and_ladder_median_over_seeds(synthetic):
    store, table, _ = synthetic
    long = report.reached(table, workprecision.points(store, table))
    got = {(r.solver, r.target): (r.seconds, r.reached) for r in long[long.d == 2].itertuples()}
    # dsm at d=2: seeds reach 0.1 at 40, 44 and never → median 44; 0.03 only seed 0 → never
    assert got[("dsm", 0.1)] == (44.0, 2)
    assert got[("dsm", 0.03)] == (np.inf, 1) and got[("dsm", 0.01)] == (np.inf, 0)
    # the ladder: the cheapest setting that reaches each target (total_s = wall × d)
    assert [got[("crank_nicolson", t)] for t in (0.1, 0.03, 0.01)] == [(8.0, 3), (32.0, 3), (32.0, 3)]
    assert got[("static", 0.1)] == (np.inf, 0)
    wide = report.time_to_target(long)
    row = wide[(wide.d == 2) & (wide.solver == "dsm")].iloc[0]
    assert row["var_rel_l2 ≤ 0.1"] == "44.0 s (2/3 seeds)" and row["var_rel_l2 ≤ 0.03"] == "not reached"


def test_overlapping_intervals_tie_and_rows_no_better_than_static_are_marked(synthetic):
    _, _, board = synthetic
    part = board[board.d == 2].set_index("label")
    # each rung of the ladder is a row; dsm and tvmc tie (intervals overlap) behind the three
    assert [part.loc[f"crank_nicolson (n={n})", "rank"] for n in (128, 64, 32)] == [1, 2, 3]
    assert part.loc["dsm", "rank"] == part.loc["tvmc", "rank"] == 4
    assert part.loc["pinn", "rank"] == part.loc["static", "rank"]
    assert part.loc["pinn", "vs static"] == report.NOT_BETTER
    assert part.loc["dsm", "vs static"] == "" and part.loc["static", "vs static"] == ""
    lo, hi = (float(v) for v in part.loc["dsm", report.CI].strip("[]").split(", "))
    assert lo < 0.12 < hi  # the bootstrap interval of the mean over the three seeds


def test_one_seed_has_no_interval_and_the_bootstrap_is_reproducible():
    assert np.isnan(stats.mean_interval([0.3])[1:]).all()
    assert stats.mean_interval([0.1, 0.3, 0.2]) == stats.mean_interval([0.1, 0.3, 0.2])
    assert list(stats.tied_ranks([1.0, 2.0, 3.0, np.nan], [0.5, 1.5, 2.9, np.nan],
                                 [1.6, 2.5, 3.1, np.nan])) == [1, 1, 3, 4]
    assert list(stats.tied_ranks([1.0, 2.0], [np.nan] * 2, [np.nan] * 2, "higher")) == [2, 1]


def test_one_notation_per_column():
    values = [9.05e-05, 0.0428]
    sci = numbers.scientific(values)
    assert [numbers.with_spread(v, e, 3, sci) for v, e in zip(values, [0.0, 0.0035])] == \
        ["9.05e-05", "4.28e-02 ± 3.5e-03"]
    assert not numbers.scientific([0.0428, 1200.0])
    assert numbers.with_spread(1234.5, 12.0, 3, False) == "1230 ± 12"
    assert numbers.with_spread(0.0114, 2e-18, 3, False) == "0.0114"  # rounding noise, no ±


HEADER = "Made by **these** commands:\n\n```\nharness sweep\n```\n\n<script>x()</script>\n"


@pytest.fixture(scope="module")
def written(synthetic, tmp_path_factory):
    """The synthetic store's report, written once for the tests that read it."""
    out = tmp_path_factory.mktemp("report")
    report.write(synthetic[0], out, header=HEADER)
    return out


def test_sections_sort_d_as_numbers_and_the_page_renders_the_header(synthetic, written):
    md = report.markdown(synthetic[2])
    assert [md.index(f"## bosons, d = {d} ") for d in (2, 3, 10)] == \
        sorted(md.index(f"## bosons, d = {d} ") for d in (2, 3, 10))
    tmp_path = written
    html = (tmp_path / "index.html").read_text()
    assert "<strong>these</strong>" in html and "<code>harness sweep\n</code>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html  # raw HTML is text
    assert [html.index(f'data-d="{d}"') for d in (2, 3, 10)] == \
        sorted(html.index(f'data-d="{d}"') for d in (2, 3, 10))
    assert "http://" not in html and "https://" not in html
    for src in re.findall(r'src="([^"]+)"', html):
        assert (tmp_path / src).is_file(), src
    assert 'src="plots/workprecision_bosons_d10_' in html and 'src="plots/scaling_bosons.png"' in html


def test_the_same_store_gives_byte_identical_reports_and_figures(synthetic, written, tmp_path):
    report.write(synthetic[0], tmp_path, header=HEADER)
    files = [{p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
             for out in (written, tmp_path)]
    assert files[0] == files[1]
    assert {p.suffix for p in files[0]} == {".md", ".csv", ".html", ".png", ".svg"}
