"""The results store: atomic Parquet rows that pandas reads in one line, curves beside them."""

import numpy as np
import pandas as pd

from harness.record import METRICS, Record
from harness.store import Store
from problems import Oscillator


def _record(key="k1", **kw):
    return Record(run_key=key, problem="oscillator", d=1, params="{}", solver="static",
                  preset="quick", settings="{}", seed=0, device="cpu", **kw)


def test_round_trip_and_replace(tmp_path):
    store = Store(tmp_path / "runs.parquet")
    assert store.get("k1") is None and store.table().empty
    pred = Oscillator(p0=0.5).exact(np.linspace(0, 1, 5))
    store.put(_record(density_l1=0.5), pred, extras={"wall_s": [1.0, 2.0]}, diagnostics={"a": np.ones(2)})
    store.put(_record("k2", status="failed", error="boom"))
    store.put(_record(density_l1=0.25))  # same key: replaces the row
    table = pd.read_parquet(tmp_path / "runs.parquet")
    assert list(table.run_key) == ["k2", "k1"]
    assert store.get("k1")["density_l1"] == 0.25
    assert store.get("k2")["status"] == "failed"
    assert set(METRICS) <= set(table.columns)
    curves = store.curves("k1")
    np.testing.assert_allclose(curves.var, pred.var)
    # no temporary files are left behind by the atomic writes
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == \
        ["k1.npz", "runs.parquet", "runs.parquet.lock"]
