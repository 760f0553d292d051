"""The results store: one Parquet table of runs (``pandas.read_parquet(path)`` reads it) plus
each run's curves as ``curves/<run_key>.npz`` beside it.

Every write goes to a temporary file that replaces the old one atomically (``os.replace``), under
a file lock, so a killed process never leaves a half-written table and writers never interleave."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from harness.api import Prediction
from harness.record import Record

DEFAULT = Path("results") / "runs.parquet"


def default_path() -> Path:
    """``$QDBENCH_STORE`` or ``results/runs.parquet`` under the working directory."""
    return Path(os.environ.get("QDBENCH_STORE", DEFAULT))


@contextmanager
def _atomic(path: Path, suffix: str):
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _jsonable(obj):
    """numpy arrays and scalars in diagnostics become lists and floats."""
    return obj.tolist() if hasattr(obj, "tolist") else str(obj)


class Store:
    """Runs table at ``path``; curves under ``path.parent / 'curves'``; references (cached by the
    reference module) under ``path.parent / 'references'``."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()
        self.curves_dir = self.path.parent / "curves"
        self.references_dir = self.path.parent / "references"
        self._lock = FileLock(str(self.path) + ".lock")

    def table(self) -> pd.DataFrame:
        """All stored runs (empty with the Record columns when nothing is stored yet)."""
        if not self.path.exists():
            return pd.DataFrame(columns=list(Record.__dataclass_fields__))
        # one open handle pins one file: read by path, pyarrow may take the size of the old
        # table and the bytes of the one a writer has just swapped in (a torn read)
        with open(self.path, "rb") as fh:
            return pd.read_parquet(fh)

    def get(self, key: str) -> dict | None:
        """The stored row of ``key`` as a dict, or None."""
        table = self.table()
        rows = table[table["run_key"] == key]
        return None if rows.empty else rows.iloc[-1].to_dict()

    def put(self, record: Record, curves: Prediction | None = None,
            extras: dict[str, list] | None = None, diagnostics: dict | None = None) -> None:
        """Store ``record`` (replacing any row with its key) and what the run produced: its
        curves, and its extras and diagnostics even when it ended without curves (a diverged
        run keeps its checkpoint scores and loss curve)."""
        if curves is not None or any((extras or {}).values()) or diagnostics:
            self.put_curves(record.run_key, curves, extras, diagnostics)
        with self._lock:
            table = self.table()
            table = table[table["run_key"] != record.run_key]
            row = pd.DataFrame([record.as_row()])
            table = row if table.empty else pd.concat([table, row], ignore_index=True)
            with _atomic(self.path, ".parquet") as tmp:
                table.to_parquet(tmp, index=False)

    def put_curves(self, key: str, curves: Prediction | None, extras: dict[str, list] | None = None,
                   diagnostics: dict | None = None) -> None:
        """Write ``curves/<key>.npz``: moments and marginals over time (if any), ``extras``
        (named arrays such as checkpoint scores) and the solver's diagnostics as JSON."""
        self.curves_dir.mkdir(parents=True, exist_ok=True)
        arrays = {f"extra_{k}": np.asarray(v) for k, v in (extras or {}).items()}
        if curves is not None:
            arrays.update(times=curves.times, mean=curves.mean, var=curves.var,
                          marginals=curves.marginals, edges=curves.edges)
        blob = json.dumps(diagnostics or {}, default=_jsonable)
        with _atomic(self.curves_dir / f"{key}.npz", ".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, diagnostics=np.array(blob), **arrays)

    def curves(self, key: str) -> Prediction | None:
        """The stored curves of ``key`` (extras and diagnostics in ``.diagnostics``), or None
        (nothing stored, or a run that ended without curves: see ``diagnostics``)."""
        path = self.curves_dir / f"{key}.npz"
        if not path.exists():
            return None
        with np.load(path) as z:
            if "times" not in z.files:
                return None
            return Prediction(z["times"], z["mean"], z["var"], z["marginals"], z["edges"],
                              diagnostics=self._diagnostics(z))

    def diagnostics(self, key: str) -> dict:
        """The stored diagnostics and extras of ``key``, whatever its status ({} if none)."""
        path = self.curves_dir / f"{key}.npz"
        if not path.exists():
            return {}
        with np.load(path) as z:
            return self._diagnostics(z)

    @staticmethod
    def _diagnostics(z) -> dict:
        diagnostics = json.loads(str(z["diagnostics"]))
        diagnostics.update({k[6:]: z[k] for k in z.files if k.startswith("extra_")})
        return diagnostics
