"""The reference's disk cache: one ``<key>.npz`` per reference (harness.persist: the prediction
plus a JSON meta dict, written atomically), keyed by a hash of everything that fixes its numbers.
An entry that cannot be read back is a miss: the caller recomputes it and overwrites it."""

from __future__ import annotations

import hashlib
import json
import pathlib
import warnings
from typing import Any

from harness.api import Prediction
from harness.persist import CorruptFile, load_npz, save_npz


def cache_key(spec: dict[str, Any]) -> str:
    """A 32-hex-digit hash of the JSON-able ``spec`` (key order does not matter)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def entry_path(cache_dir: str | pathlib.Path, key: str) -> pathlib.Path:
    """Where the entry of ``key`` lives."""
    return pathlib.Path(cache_dir) / f"{key}.npz"


def load(cache_dir: str | pathlib.Path, key: str) -> tuple[Prediction, dict[str, Any]] | None:
    """The cached (prediction, meta) of ``key``; None when absent or unreadable (with a warning
    naming the file, which the next ``save`` overwrites)."""
    path = entry_path(cache_dir, key)
    try:
        prediction, _, meta = load_npz(path)
    except FileNotFoundError:
        return None
    except CorruptFile as exc:
        warnings.warn(f"reference cache entry ignored, recomputing: {exc}", stacklevel=2)
        return None
    if prediction is None:
        warnings.warn(f"reference cache entry ignored, recomputing: {path} holds no prediction", stacklevel=2)
        return None
    return prediction, meta


def save(cache_dir: str | pathlib.Path, key: str, prediction: Prediction, meta: dict[str, Any]) -> None:
    """Write the entry of ``key`` atomically (a reader sees the old entry or the new, whole)."""
    save_npz(entry_path(cache_dir, key), prediction, meta=meta)
