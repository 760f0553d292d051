"""The results store: one Parquet table of runs (``pandas.read_parquet(path)`` reads it) plus
each run's curves as ``curves/<run_key>.npz`` beside it.

Every write goes to a temporary file that replaces the old one atomically (``os.replace``), under
a file lock, so a killed process never leaves a half-written table and writers never interleave."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import pandas as pd
from filelock import FileLock

from harness.api import Prediction, UserError
from harness.persist import CorruptFile, atomic_path, load_npz, save_npz
from harness.record import Record

DEFAULT = Path("results") / "runs.parquet"
#: the columns without which a Parquet file is not a qdbench store
IDENTITY = ("run_key", "problem", "d", "params", "solver", "preset", "settings", "seed", "status")


def default_path() -> Path:
    """``$QDBENCH_STORE`` or ``results/runs.parquet`` under the working directory."""
    return Path(os.environ.get("QDBENCH_STORE") or DEFAULT)


class Store:
    """Runs table at ``path``; curves under ``path.parent / 'curves'``; references (cached by the
    reference module) under ``path.parent / 'references'``."""

    def __init__(self, path: str | Path | None = None):
        if path is not None and not str(path).strip():
            raise UserError("--store: the path is empty")
        self.path = Path(path) if path is not None else default_path()
        if self.path.is_dir():
            raise UserError(f"store {self.path} is a directory; name a file such as "
                            f"{self.path / 'runs.parquet'}")
        self.curves_dir = self.path.parent / "curves"
        self.references_dir = self.path.parent / "references"
        self.claims_dir = self.path.parent / "claims"
        self._lock = FileLock(str(self.path) + ".lock")

    def ensure_writable(self) -> None:
        """Refuse, before anything is computed, a store whose folder cannot be written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path.parent):
                pass
            with self._lock:
                pass
        except OSError as exc:
            raise UserError(f"store {self.path} cannot be written: {exc.strerror or exc}") from None

    def table(self) -> pd.DataFrame:
        """All stored runs (empty with the Record columns when nothing is stored yet); a file
        that is not a readable qdbench table is a UserError naming it."""
        if not self.path.exists():
            return pd.DataFrame(columns=list(Record.__dataclass_fields__))
        # one open handle pins one file: read by path, pyarrow may take the size of the old
        # table and the bytes of the one a writer has just swapped in (a torn read)
        try:
            with open(self.path, "rb") as fh:
                table = pd.read_parquet(fh)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(f"store {self.path} is not a readable Parquet table ({reason}); "
                            f"move it aside or name another with --store") from None
        missing = [c for c in IDENTITY if c not in table.columns]
        if missing:
            raise UserError(f"store {self.path} is not a qdbench store: it lacks the columns "
                            f"{', '.join(missing)}")
        # a store written before a column was added reads with that column empty
        for name, f in Record.__dataclass_fields__.items():
            if name not in table.columns:
                table[name] = f.default if isinstance(f.default, (str, int, float)) else None
        return table

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
        row = pd.DataFrame([record.as_row()])
        wrote = curves is not None or any((extras or {}).values()) or bool(diagnostics)
        if wrote:
            self.put_curves(record.run_key, curves, extras, diagnostics)
        try:
            with self._lock:
                table = self.table()
                table = table[table["run_key"] != record.run_key]
                table = row if table.empty else pd.concat([table, row], ignore_index=True)
                with atomic_path(self.path, ".parquet") as tmp:
                    table.to_parquet(tmp, index=False)
        except BaseException:
            if wrote:  # the row did not land: leave no orphan curves
                (self.curves_dir / f"{record.run_key}.npz").unlink(missing_ok=True)
            raise

    def put_curves(self, key: str, curves: Prediction | None, extras: dict[str, list] | None = None,
                   diagnostics: dict | None = None) -> None:
        """Write ``curves/<key>.npz``: moments and marginals over time (if any), ``extras``
        (named arrays such as checkpoint scores) and the solver's diagnostics."""
        if curves is not None:  # the diagnostics are kept once, beside; samples are not kept
            curves = dataclasses.replace(curves, diagnostics={}, samples=None)
        save_npz(self.curves_dir / f"{key}.npz", curves, extras, diagnostics)

    def curves(self, key: str) -> Prediction | None:
        """The stored curves of ``key`` (extras and diagnostics in ``.diagnostics``), or None
        (nothing stored, or a run that ended without curves: see ``diagnostics``)."""
        pred, arrays, meta = self._load(key)
        if pred is not None:
            pred.diagnostics = {**meta, **arrays}
        return pred

    def diagnostics(self, key: str) -> dict:
        """The stored diagnostics and extras of ``key``, whatever its status ({} if none)."""
        _, arrays, meta = self._load(key)
        return {**meta, **arrays}

    def _load(self, key: str):
        path = self.curves_dir / f"{key}.npz"
        if not path.exists():
            return None, {}, {}
        try:
            return load_npz(path)
        except CorruptFile as exc:
            raise UserError(str(exc)) from None
