"""A segment cache folder as it lies on disk, and the checks a reader makes before trusting it: the record that
commits the cache (segments.json, written last), the int16 array (segments.npy, whole and of the recorded shape)
and the manifest (manifest.csv, every index a row of the array). A cache is data from disk, not a promise: each
problem is a CacheError naming the file and how to remake it. segment.py writes caches and reads them through these.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import EstmError, FileError

MANIFEST = "manifest.csv"
CACHE = "segments.npy"
SETTINGS = "segments.json"
CACHE_DTYPE = np.dtype("<i2")
MANIFEST_COLUMNS = ("segment_id", "index", "position", "start", "song_id", "path", "label", "group", "part")


class CacheError(FileError):
    """A segment cache file that the code cannot use as it stands (unreadable, out of range, truncated)."""


def read_record(cache_dir: Path) -> dict:
    """What segments.json says (empty when there is none); CacheError when it is not a JSON object."""
    path = cache_dir / SETTINGS
    if not path.is_file():
        return {}
    try:
        recorded = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CacheError(path, f"unreadable ({error_reason(error)}); {remake_hint(cache_dir, {})}") from None
    if not isinstance(recorded, dict):
        raise CacheError(path, f"not a segment cache's settings (not a JSON object); {remake_hint(cache_dir, {})}")
    return recorded


def error_reason(error: Exception) -> str:
    """An error's cause in one lower-case line, for a CacheError's message."""
    return (getattr(error, "strerror", None) or str(error).splitlines()[0]).lower()


def remake_hint(cache_dir: Path, recorded: dict) -> str:
    """How to remake the cache in `cache_dir`, from the split file its record names."""
    split_file = recorded.get("split_file") if isinstance(recorded.get("split_file"), str) else "SPLIT.csv"
    return f"remake it with `estm data segment {split_file} -o {cache_dir} --force`"


def committed_record(cache_dir: Path) -> dict:
    """segments.json of a finished cache; EstmError saying what `cache_dir` lacks otherwise."""
    recorded = read_record(cache_dir)
    if recorded.get("complete") is True:
        return recorded
    if recorded or (cache_dir / MANIFEST).exists() or (cache_dir / CACHE).exists():
        split_file = recorded.get("split_file") or "SPLIT.csv"
        raise EstmError(f"incomplete cache {cache_dir} (its segmenting stopped before the end): "
                        f"rerun `estm data segment {split_file} -o {cache_dir}`")
    raise EstmError(f"{cache_dir}: no segment cache here; make one with `estm data segment SPLIT.csv -o DIR`")


def cache_rows(cache_dir: Path, segment_length: int, recorded: dict) -> int:
    """The rows of segments.npy, after checking from its header that it holds whole int16 segments of the
    recorded length (a truncated file would fail, or read garbage, deep inside training)."""
    path = cache_dir / CACHE
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read_header(file)
            data_start, size = file.tell(), os.fstat(file.fileno()).st_size
    except (OSError, ValueError) as error:
        raise CacheError(path, f"not a readable segment array ({error_reason(error)}); "
                               f"{remake_hint(cache_dir, recorded)}") from None
    length = segment_length
    if dtype.kind != "i" or dtype.itemsize != 2 or fortran_order or len(shape) != 2 or shape[1] != length \
            or shape[0] < 1:
        raise CacheError(path, f"holds {dtype} {shape}, not int16 segments of {length} samples as "
                               f"{SETTINGS} says; {remake_hint(cache_dir, recorded)}")
    expected = data_start + shape[0] * length * 2
    if size < expected:
        raise CacheError(path, f"truncated: {size} bytes of {expected}; {remake_hint(cache_dir, recorded)}")
    return shape[0]


def manifest_problem(manifest: pd.DataFrame, rows: int) -> str | None:
    """What makes `manifest` unusable beside an array of `rows` segments, or None."""
    from .split import PARTS

    missing = [name for name in MANIFEST_COLUMNS if name not in manifest.columns]
    if missing:
        return f"no {', '.join(missing)} column"
    if manifest.empty:
        return "no segments listed"
    index = manifest["index"]
    if not pd.api.types.is_integer_dtype(index) or index.min() < 0 or index.max() >= rows:
        return f"an index that is not a row of its {rows}-row {CACHE} (each must be a whole number 0..{rows - 1})"
    if manifest["segment_id"].duplicated().any():
        return f"segment id {manifest['segment_id'][manifest['segment_id'].duplicated()].iloc[0]!r} listed twice"
    unknown = sorted(set(manifest["part"]) - set(PARTS))
    if unknown:
        return f"unknown part(s) {', '.join(map(str, unknown))}"
    return None
