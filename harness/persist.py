"""Files that are never half-written: ``atomic_path`` for any writer, and ``save_npz``/``load_npz``
for a Prediction, named arrays and a JSON meta dict in one ``.npz`` (the store's curves, the
reference cache).

A new file gets the mode the user's umask gives any new file (0644 under umask 022), not the
0600 of ``tempfile.mkstemp``: results are meant to be shared."""

from __future__ import annotations

import json
import os
import secrets
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from harness.api import Prediction

__all__ = ["CorruptFile", "atomic_path", "load_npz", "save_npz"]

#: written into every file by save_npz; load_npz refuses a file without it
FORMAT = "qdbench-npz/1"
_PREDICTION = ("times", "mean", "var", "marginals", "edges", "samples")


class CorruptFile(ValueError):
    """A file that exists but cannot be read back (truncated, not an npz, or not ours)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: unreadable ({reason})")
        self.path = Path(path)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a fresh empty file's path in ``path``'s folder (created if needed) for the caller
    to write; when the block ends without an exception it replaces ``path`` in one step
    (``os.replace``), otherwise it is removed. ``suffix`` ends its name (``np.savez`` and some
    writers want ``.npz``, ``.parquet``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}"
        try:  # mode 0666 filtered by the umask, as open() gives a new file
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _jsonable(obj: Any) -> Any:
    """numpy (and torch) arrays and scalars become lists and numbers; anything else its str."""
    return obj.tolist() if hasattr(obj, "tolist") else str(obj)


def save_npz(path: str | os.PathLike, prediction: Prediction | None = None,
             arrays: Mapping[str, Any] | None = None, meta: Mapping[str, Any] | None = None) -> None:
    """Write ``prediction`` (every field; its diagnostics as JSON), the named ``arrays`` and
    ``meta`` (JSON: numpy values become lists and numbers) to ``path`` atomically, compressed.
    Arrays of Python objects are refused (they would need pickle to load)."""
    items: dict[str, np.ndarray] = {}
    header: dict[str, Any] = {"format": FORMAT, "meta": dict(meta or {}), "prediction": None}
    if prediction is not None:
        for name in _PREDICTION:
            value = getattr(prediction, name)
            if value is not None:
                items[f"prediction.{name}"] = np.asarray(value)
        header["prediction"] = {"n_samples": prediction.n_samples, "diagnostics": prediction.diagnostics}
    for name, value in (arrays or {}).items():
        items[f"array.{name}"] = np.asarray(value)
    for key, value in items.items():
        if value.dtype.hasobject:
            raise TypeError(f"{path}: {key} holds Python objects, which an npz cannot keep without pickle")
    items["header"] = np.array(json.dumps(header, default=_jsonable))
    with atomic_path(path, ".npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **items)


def load_npz(path: str | os.PathLike) -> tuple[Prediction | None, dict[str, np.ndarray], dict[str, Any]]:
    """Read what ``save_npz`` wrote: (prediction or None, named arrays, meta). A missing file
    raises FileNotFoundError; one that cannot be read back raises CorruptFile naming it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {key: z[key] for key in z.files}  # read every member now: errors surface here
        header = json.loads(str(data.pop("header")))
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        arrays = {key[6:]: value for key, value in data.items() if key.startswith("array.")}
        prediction = None
        if header["prediction"] is not None:
            fields = {key[11:]: value for key, value in data.items() if key.startswith("prediction.")}
            prediction = Prediction(**fields, **header["prediction"])
        return prediction, arrays, header["meta"]
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error) as exc:
        raise CorruptFile(path, f"{type(exc).__name__}: {exc}") from exc
