"""What a listening test plays: items, each one piece of music in the versions the systems made of it.

Two sources. An `estm evaluate transfer` report folder (made with --keep-audio): an item is a pair, asked for its
target quadrant, in the versions of copy-content, copy-reference, each method and the true target; the content is
the reference of its quality trial. Or folders of files, one folder a system: an item is a file's path within its
folder (the same in every folder), asked for the quadrant its path names (a folder or a name part Q1..Q4), and
`--reference` a folder of the originals, whose file of the same path is the reference of its quality trial.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EstmError, FileError
from ..labels import QUADRANTS

COPY_CONTENT, COPY_REFERENCE, TARGET = "copy-content", "copy-reference", "target"  # as pairs.csv names them
_QUADRANT_IN_PATH = re.compile(r"(?<![A-Za-z0-9])(Q[1-4])(?![0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class Item:
    key: str  # unique within the test (never shown to a listener)
    asked: str | None  # the quadrant the versions were asked for; None: no emotion trial
    files: dict[str, str]  # system -> its version's audio file
    reference: str | None = None  # the original: the hidden reference and the anchor of its quality trial
    rated: tuple[str, ...] = field(default=())  # the systems its quality trial rates beside those two


# ------------------------------------------------------------------------------------------- evaluation folder


def is_evaluation(folder: Path) -> bool:
    return (folder / "evaluation.json").is_file() and (folder / "pairs.csv").is_file()


def evaluation_items(folder: Path, corpus: str | None = None) -> tuple[list[Item], str]:
    """The pairs of one corpus of a judged transfer's report folder as items; returns (items, the corpus). The
    default corpus is the held-out one where the report has one (no setting was chosen on it)."""
    import pandas as pd

    from ..transfer_outputs import AUDIO_FOLDER, kept_path

    summary = _read_summary(folder / "evaluation.json")
    methods = summary["methods"]
    table = pd.read_csv(folder / "pairs.csv", keep_default_na=False, dtype=str)
    corpora = list(dict.fromkeys(table["corpus"]))
    chosen = corpus or ("held-out" if "held-out" in corpora else corpora[0])
    if chosen not in corpora:
        raise EstmError(f"{folder}: no corpus {chosen!r} (it has {', '.join(corpora)})")
    items = []
    for number, rows in table[table["corpus"] == chosen].groupby("pair", sort=False):
        row = rows.iloc[0]
        files = {}
        for system in rows["system"]:  # in the report's order: the baselines, the methods, the ceiling
            files[system] = {COPY_CONTENT: row["content"], COPY_REFERENCE: row["reference"],
                             TARGET: row["target"]}.get(system) or str(kept_path(
                                 folder / AUDIO_FOLDER, system, row["excerpt"], row["content_quadrant"],
                                 row["target_quadrant"], row["content"], row["reference"]))
        items.append(Item(f"{chosen}/{number}", row["target_quadrant"], files, row["content"],
                          (*methods, TARGET)))
    _check_kept(folder, items, methods)
    return items, chosen


def _read_summary(path: Path) -> dict:
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeError, ValueError) as error:
        raise FileError(path, f"cannot read it as JSON ({error})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("methods"), list) or "corpora" not in summary:
        raise FileError(path, "not a judged transfer's report (`estm evaluate transfer` without --pairs writes one)")
    return summary


def _check_kept(folder: Path, items: list[Item], methods: list[str]) -> None:
    """One line if the report kept none of its methods' outputs, or lost one of them or of the corpus's files."""
    kept = [Path(item.files[method]).is_file() for item in items for method in methods]
    if methods and not any(kept):
        raise EstmError(f"{folder}: the report kept no audio of its systems' outputs: rerun its `estm evaluate "
                        "transfer` command with --keep-audio")
    for item in items:
        for system, path in item.files.items():
            if not Path(path).is_file():
                raise FileError(path, f"{system}'s audio of pair {item.key} is missing")


# ------------------------------------------------------------------------------------------------ folders


def folder_items(systems: dict[str, Path], reference: Path | None = None) -> list[Item]:
    """Folders of files (system -> folder) as items: a file's path within its folder names its item."""
    from ..finding import audio_files

    found = {}
    for system, folder in systems.items():
        if not folder.is_dir():
            raise FileError(folder, "not a folder" if folder.exists() else "no such folder")
        found[system] = {_item_key(path, folder): str(path) for path in audio_files(folder)}
        if not found[system]:
            raise FileError(folder, "holds no audio files")
    originals = {} if reference is None else folder_items({"reference": reference})
    originals = {item.key: item.files["reference"] for item in originals}
    keys = sorted({key for files in found.values() for key in files} | set(originals))
    items = []
    for key in keys:
        files = {system: found[system][key] for system in systems if key in found[system]}
        rated = tuple(files) if key in originals else ()
        match = _QUADRANT_IN_PATH.search(key)
        asked = match.group(1).upper() if match else None
        if asked is None and not rated:
            continue  # neither asked for a quadrant nor beside an original: nothing to ask about it
        items.append(Item(key, asked, files, originals.get(key), rated))
    if not items:
        raise EstmError("nothing to ask about: no file's path names a quadrant (Q1..Q4) and no --reference folder "
                        "holds a file of the same path")
    return items


def _item_key(path: Path, folder: Path) -> str:
    return path.relative_to(folder).with_suffix("").as_posix()


# ------------------------------------------------------------------------------------------------ choosing


def choose(items: list[Item], count: int | None, seed: int) -> list[Item]:
    """`count` items (all when None), drawn at random but balanced: the asked quadrants taken in turn, and within
    one an item whose original is not yet chosen where there is one (so that fewer sounds repeat)."""
    if count is None or count >= len(items):
        count = len(items)
    rng = np.random.default_rng(seed)
    by_quadrant: dict[str | None, list[Item]] = {}
    for item in items:
        by_quadrant.setdefault(item.asked, []).append(item)
    queues = [[group[i] for i in rng.permutation(len(group))] for _, group in sorted(
        by_quadrant.items(), key=lambda entry: QUADRANTS.labels.index(entry[0]) if entry[0] else 4)]
    chosen: list[Item] = []
    used: set[str | None] = set()
    while len(chosen) < count:
        for queue in queues:
            if queue and len(chosen) < count:
                fresh = next((i for i, item in enumerate(queue) if item.reference not in used), 0)
                chosen.append(queue.pop(fresh))
                used.add(chosen[-1].reference)
    return chosen
