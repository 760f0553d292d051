"""The results store: atomic Parquet rows that pandas reads in one line, curves beside them."""

import os
import stat
import threading
import time

import numpy as np
import pandas as pd

from harness.record import METRICS, Record
from harness.persist import atomic_path
from harness.store import IDENTITY, Store
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


def test_reading_while_a_writer_replaces_the_table_never_tears(tmp_path):
    """pandas.read_parquet(path) can take the size of one file and the bytes of its replacement
    (measured here: a quarter of reads fail while a writer loops); Store.table() reads one file."""
    store = Store(tmp_path / "runs.parquet")

    def frame(n: int, text: str) -> pd.DataFrame:
        return pd.DataFrame({**{c: [text] * n for c in IDENTITY}, "d": np.arange(n)})

    frame(1, "").to_parquet(store.path)
    done = threading.Event()

    def writer():
        i = 0
        while not done.is_set():
            i += 1
            n = 50 + (i % 7) * 200  # tables of different sizes
            with atomic_path(store.path, ".parquet") as tmp:
                frame(n, "x" * (i % 13)).to_parquet(tmp)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.time() + 2.0
        while time.time() < deadline:
            assert len(store.table()) >= 1
    finally:
        done.set()
        thread.join()


def test_store_files_take_the_users_umask(tmp_path):
    """The table and the curves are created as any new file is (0644 under umask 022), not with
    the 0600 of a bare temporary file."""
    old = os.umask(0o022)
    try:
        store = Store(tmp_path / "runs.parquet")
        store.put(_record(), Oscillator(p0=0.5).exact(np.linspace(0, 1, 3)))
    finally:
        os.umask(old)
    for path in (store.path, store.curves_dir / "k1.npz"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
