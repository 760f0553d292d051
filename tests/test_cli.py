"""The `harness` command line end to end: listing, running, storing, plugins and bad input."""

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from cli_call import call
from harness.record import Record

ROOT = Path(__file__).resolve().parent.parent
HARNESS = str(Path(sys.executable).parent / "harness")


def readme_plugin(tmp_path) -> Path:
    """The README's "Add a solver" example, exactly as printed there."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Add a solver.*?```python\n(.*?)```", text, re.S).group(1)
    path = tmp_path / "classical.py"
    path.write_text(code)
    return path


PLUGIN = str(ROOT / "tests" / "plugins" / "misbehaving.py")


def test_list_shows_problems_variants_and_solvers(monkeypatch, capsys):
    code, out, _ = call(monkeypatch, capsys, "list")
    assert code == 0
    for name in ("bosons", "oscillator", "oscillator_paper", "oscillator_paper_momentum", "s2=0.1",
                 "crank_nicolson", "static", "smoke", "paper"):
        assert name in out


def test_exit_code_2_from_the_installed_command(tmp_path):
    proc = subprocess.run([HARNESS, "run", "--problem", "bosons", "--d", "-3"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and proc.stdout == ""


def test_readme_plugin_runs_through_the_cli_and_is_served_from_the_store(tmp_path):
    """The README's example solver, run exactly as documented, stored, then served again."""
    plugin = readme_plugin(tmp_path)
    store = tmp_path / "runs.parquet"
    args = [HARNESS, "run", "--problem", "oscillator", "--param", "p0=0.5", "--plugin", str(plugin),
            "--solver", "classical,static", "--store", str(store)]
    first = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    raw = pd.read_parquet(store)
    assert set(Record.__dataclass_fields__) <= set(raw.columns)
    table = raw.set_index("solver")
    assert set(table.index) == {"classical", "static"}
    assert (table.status == "ok").all()
    # Newton is exact for the mean in a harmonic trap: only sampling noise remains
    sigma = 0.25
    assert table.loc["classical", "mean_rmse"] < 5 * sigma / 20_000**0.5
    assert table.loc["static", "mean_rmse"] > 0.2
    second = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert second.returncode == 0 and "yes" in second.stdout  # the "from store" column
    assert len(pd.read_parquet(store)) == 2


def test_failing_solvers_become_rows_and_others_still_run(monkeypatch, capsys, tmp_path):
    store = tmp_path / "runs.parquet"
    code, out, _ = call(monkeypatch, capsys, "run", "--problem", "oscillator", "--plugin", PLUGIN,
                        "--solver", "raises", "--solver", "nans", "--solver", "static",
                        "--solver", "refuses", "--store", str(store), "--times", "5",
                        "--preset", "smoke")
    assert code == 0
    table = pd.read_parquet(store).set_index("solver")
    assert table.loc["raises", "status"] == "failed"
    assert "deliberate failure" in table.loc["raises", "error"]
    assert table.loc["nans", "status"] == "failed" and "NaN" in table.loc["nans", "error"]
    assert table.loc["static", "status"] == "ok"
    assert table.loc["refuses", "status"] == "unsupported"
    assert table.loc["refuses", "error"] == "refuses every problem"
    assert "unsupported" in out
