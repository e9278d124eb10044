"""Dataset layouts: find the songs of a dataset folder and their labels, as one table.

`read_dataset(root)` recognises the layout (or takes the one named), lists the songs the layout defines, checks
every file with `audio.probe` (header only) and returns a `DatasetTable`: one row per usable song with the columns
song_id, path (absolute), label ("" where the layout has none) and group (the unit a split keeps together), plus
what the layout knows about each song. Files that are listed but unusable are skipped and reported in `problems`.

The layouts, as the datasets ship, and their readers: layout_readers.py.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from ..audio import probe
from ..audio_info import inspect
from ..errors import AudioError, EstmError
from ..finding import visible
from ..workers import process_pool
from .layout_readers import CORE_COLUMNS, MATCHES, READERS, Problem

LAYOUTS = ("deam", "taffc", "gtzan", "emotify", "synthemo", "folder")

# Tried in this order: SynthEmo also has Q1..Q4 folders, so its manifest decides first; "folder" is the fallback.
DETECTION_ORDER = ("synthemo", "deam", "taffc", "gtzan", "emotify")

# What each layout looks like, for the messages that say what was expected.
EXPECTED = {
    "synthemo": "synthemo.csv",
    "deam": "MEMD_audio/ (or DEAM_audio/MEMD_audio/) and the static annotation CSVs",
    "taffc": "folders Q1/ Q2/ Q3/ Q4/",
    "gtzan": "genre folders blues/ .. rock/ of {genre}.000NN files (optionally inside genres_original/)",
    "emotify": "folders classical/ rock/ electronic/ pop/ and data.csv",
    "folder": "audio files in any folders",
}

ProgressCallback = Callable[[int, int], None]


@dataclass
class DatasetTable:
    layout: str
    root: Path
    table: pd.DataFrame  # one row per usable song/clip: song_id, path, label, group, then the layout's columns
    problems: list[Problem] = field(default_factory=list)  # files listed but unusable, skipped


# ------------------------------------------------------------------------------------------------- public API


def detect_layout(root: str | os.PathLike) -> str:
    """The layout of the dataset folder `root`; EstmError saying what each layout looks like when none fits."""
    root = _existing_folder(root)
    for layout in DETECTION_ORDER:
        if MATCHES[layout](root):
            return layout
    if MATCHES["folder"](root):  # any audio at all
        return "folder"
    raise EstmError(f"{root}: no audio files found; {_what_each_layout_expects()}")


def read_dataset(
    root: str | os.PathLike, layout: str = "auto", on_progress: ProgressCallback | None = None
) -> DatasetTable:
    """Read the dataset folder `root` in `layout` ("auto" to detect it).

    `on_progress(done, total)` is called after each file is probed. Rows are sorted by song_id in natural order
    ("2" before "10"). Raises EstmError when the folder is missing or does not look like the layout named, or is a
    corpus `estm data synth` started and did not finish (whatever the layout: its part would split as if whole).
    """
    from . import synth

    root = _existing_folder(root)
    if synth.unfinished(root):
        raise EstmError(f"{root}: an unfinished corpus (`estm data synth` stopped before the end); finish it with "
                        f"`{synth.rerun_command(root)}`")
    if layout == "auto":
        layout = detect_layout(root)
    elif layout not in LAYOUTS:
        raise EstmError(f"unknown layout {layout!r} (expected auto or one of {', '.join(LAYOUTS)})")
    elif not MATCHES[layout](root):
        raise EstmError(
            f"{root} does not look like a {layout} dataset: expected {EXPECTED[layout]}; found {_contents(root)}"
        )
    candidates, problems = READERS[layout](root)
    table, unusable = _keep_usable(_with_core_columns(candidates), on_progress)
    return DatasetTable(layout, root, table, _sorted_problems(problems + unusable))


def without_bad_audio(dataset: DatasetTable, jobs: int = 1,
                      on_progress: ProgressCallback | None = None) -> DatasetTable:
    """`dataset` without the songs whose audio does not decode to the end or holds NaN or infinite samples; they
    join its problems. Decodes every file in full (a header can look fine on a truncated file), `jobs` at a time."""
    paths = dataset.table["path"].tolist()
    if jobs > 1 and len(paths) > 1:
        with process_pool(jobs) as pool:
            causes = _with_progress(pool.map(_decode_problem, paths), len(paths), on_progress)
    else:
        causes = _with_progress(map(_decode_problem, paths), len(paths), on_progress)
    bad = [(path, cause) for path, cause in zip(paths, causes) if cause is not None]
    table = dataset.table[[cause is None for cause in causes]].reset_index(drop=True)
    return DatasetTable(dataset.layout, dataset.root, table, _sorted_problems(dataset.problems + bad))


def _decode_problem(path: str) -> str | None:
    """Why the audio at `path` cannot be trusted, or None. Runs in worker processes."""
    try:
        return inspect(path).problem
    except AudioError as error:
        return error.cause


def _with_progress(results, total: int, on_progress: ProgressCallback | None) -> list:
    """The results of an iterator as a list, calling on_progress(done, total) after each."""
    done = []
    for result in results:
        done.append(result)
        if on_progress is not None:
            on_progress(len(done), total)
    return done


def _sorted_problems(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda item: _natural_key(item[0]))


# ---------------------------------------------------------------------------------------------------- helpers


def _with_core_columns(candidates: pd.DataFrame) -> pd.DataFrame:
    """song_id, path, label, group first and as text; group defaults to the song itself, label to ""."""
    candidates = candidates.copy()
    if "label" not in candidates.columns:
        candidates["label"] = ""
    if "group" not in candidates.columns:
        candidates["group"] = candidates["song_id"]
    for name in CORE_COLUMNS:
        candidates[name] = candidates[name].fillna("").astype(str)
    rest = [name for name in candidates.columns if name not in CORE_COLUMNS]
    return candidates[[*CORE_COLUMNS, *rest]]


def _keep_usable(candidates: pd.DataFrame, on_progress: ProgressCallback | None) -> tuple[pd.DataFrame, list[Problem]]:
    """Sort by song_id (natural order), drop repeated song ids, probe every file; (usable rows, problems)."""
    keys = [(_natural_key(song_id), _natural_key(path))
            for song_id, path in zip(candidates["song_id"], candidates["path"])]
    candidates = candidates.iloc[sorted(range(len(keys)), key=keys.__getitem__)]
    problems: list[Problem] = []
    repeated = candidates["song_id"].duplicated()
    first_path = dict(zip(candidates["song_id"][~repeated], candidates["path"][~repeated]))
    for song_id, path in candidates.loc[repeated, ["song_id", "path"]].itertuples(index=False):
        problems.append((path, f"song id {song_id!r} is already taken by {first_path[song_id]}"))
    candidates = candidates[~repeated]

    usable = []  # row positions
    total = len(candidates)
    for row, path in enumerate(candidates["path"]):
        try:
            probe(path)
            usable.append(row)
        except AudioError as error:
            problems.append((error.path, error.cause))
        if on_progress is not None:
            on_progress(row + 1, total)
    return candidates.iloc[usable].reset_index(drop=True), problems


def _existing_folder(root: str | os.PathLike) -> Path:
    """`root` as an absolute path; EstmError unless it is a folder."""
    root = Path(root).expanduser()
    if not root.exists():
        raise EstmError(f"{root}: no such folder; {_what_each_layout_expects()}")
    if not root.is_dir():
        raise EstmError(f"{root}: is a file; give the dataset's folder ({_what_each_layout_expects()})")
    return root.resolve()


def _what_each_layout_expects() -> str:
    return "expected a dataset folder: " + "; ".join(f"{layout}: {EXPECTED[layout]}" for layout in LAYOUTS)


def _contents(root: Path, shown: int = 8) -> str:
    """A short list of what `root` holds, folders with a trailing slash, for error messages."""
    entries = sorted((entry for entry in root.iterdir() if visible(entry.name)), key=lambda entry: entry.name)
    if not entries:
        return "an empty folder"
    names = [entry.name + ("/" if entry.is_dir() else "") for entry in entries[:shown]]
    more = f" and {len(entries) - shown} more" if len(entries) > shown else ""
    return " ".join(names) + more


def _natural_key(text: str) -> tuple:
    """Sort key that orders the digits in `text` by value: '2' < '10', 'blues.00002' < 'blues.00010'."""
    return tuple((0, int(part), "") if part.isdecimal() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)
