"""Song-level splits: stratified by label, deterministic per seed, a song (or group of renderings) in one part only.

A split table is a dataset table plus `part` (train / validation / test) and the original's 0/1 flags `test` and
`validation`.
"""

from __future__ import annotations

from pathlib import Path, PureWindowsPath

import numpy as np
import pandas as pd

from ..audio import AUDIO_EXTENSIONS
from ..errors import EstmError

PARTS = ("train", "validation", "test")
HOW_TO_SPLIT = "make a split CSV from the dataset's folder with `estm data split FOLDER -o split.csv`"


def split_table(table: pd.DataFrame, *, test: float = 0.2, validation: float = 0.08, seed: int = 0,
                test_collections: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """Assign every group (a song, or a corpus's renderings of one work) to one part.

    Groups are stratified by their labels: within each stratum round(test * n) groups go to test and
    round(validation * n) to validation, so each class's proportions are within one song of the target.
    Every group of `test_collections` (values of the table's `collection` column) goes to test first, for
    cross-collection tests; the fractions then apply to the other groups. `test` 1 (with no validation) puts every
    group in test: a held-out corpus, judged beside a development corpus that its models learned from.
    """
    held_out_corpus = test == 1 and validation == 0
    if not held_out_corpus and (not 0 <= test < 1 or not 0 <= validation < 1 or test + validation >= 1):
        raise EstmError(f"--test {test} and --val {validation} must be fractions that leave songs to train on "
                        "(or --test 1 alone: a held-out corpus, all test)")
    part_of_group: dict[str, str] = {}
    if test_collections:
        if "collection" not in table.columns:
            raise EstmError("--test-collection needs a corpus with a collection column (estm data synth --source scores)")
        unknown = sorted(set(test_collections) - set(table["collection"]))
        if unknown:
            raise EstmError(f"no collection {', '.join(unknown)} in this dataset "
                            f"(it has {', '.join(sorted(table['collection'].unique()))})")
        held_out = table["collection"].isin(test_collections)
        part_of_group = dict.fromkeys(table.loc[held_out, "group"], "test")
        if held_out.all():
            raise EstmError("--test-collection holds out every collection: nothing is left to train on")
    group_labels = table[~table["group"].isin(part_of_group)].groupby("group", sort=True)["label"].agg(
        lambda labels: "+".join(sorted(set(labels))))
    rng = np.random.default_rng(seed)
    for _, groups in group_labels.groupby(group_labels, sort=True):
        shuffled = list(groups.index[rng.permutation(len(groups))])
        n_test, n_validation = round(test * len(shuffled)), round(validation * len(shuffled))
        for position, group in enumerate(shuffled):
            part_of_group[group] = (
                "test" if position < n_test else "validation" if position < n_test + n_validation else "train"
            )
    return with_parts(table, table["group"].map(part_of_group))


def with_parts(table: pd.DataFrame, parts: pd.Series) -> pd.DataFrame:
    """`table` with its `part` column and the 0/1 `test`/`validation` flags derived from it."""
    split = table.drop(columns=["part", "test", "validation"], errors="ignore").copy()
    split["part"] = parts.values
    split["test"] = (split["part"] == "test").astype(int)
    split["validation"] = (split["part"] == "validation").astype(int)
    return split


def read_split(path: str | Path) -> pd.DataFrame:
    """A split CSV written by `estm data split` (song ids stay strings)."""
    path = Path(path)
    if path.is_dir():
        raise EstmError(f"{path}: is a folder, not a split file; {HOW_TO_SPLIT}")
    if not path.is_file():
        raise EstmError(f"{path}: no such split file")
    if path.suffix.lower() in AUDIO_EXTENSIONS:
        raise EstmError(f"{path}: is an audio file, not a split file; {HOW_TO_SPLIT}")
    try:
        split = pd.read_csv(path, dtype={"song_id": str, "group": str, "label": str}, keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        raise EstmError(f"{path}: not a split file (not readable as CSV text); {HOW_TO_SPLIT}") from None
    missing = {"song_id", "path", "label", "group", "part"} - set(split.columns)
    if missing:
        raise EstmError(f"{path}: not a split file (no {', '.join(sorted(missing))} column); {HOW_TO_SPLIT}")
    unknown = set(split["part"]) - set(PARTS)
    if unknown:
        raise EstmError(f"{path}: unknown part(s) {', '.join(sorted(unknown))} (expected {', '.join(PARTS)})")
    return split


def split_from_original(table: pd.DataFrame, original: str | Path) -> tuple[pd.DataFrame, list[str], int]:
    """Apply an original split file (`deam_split.csv`: song_id; `mer_taffc_split.csv`: Windows paths) to the local
    table. Returns (split of the local songs the file names, the file's songs not found here, how many it flags
    both test and validation — counted as test, as the original's test set never trained)."""
    original = Path(original)
    try:
        flags = pd.read_csv(original, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise EstmError(f"{original}: cannot read the split file ({error})") from None
    flags.columns = flags.columns.str.strip()
    if not {"test", "validation"} <= set(flags.columns) or not ({"song_id", "path"} & set(flags.columns)):
        raise EstmError(f"{original}: expected columns test, validation and song_id or path (an original split file)")
    if "song_id" in flags.columns:
        keys = flags["song_id"].str.strip()
    else:  # 'data\MER_taffc_as_wav\Q1\MT0000040632.wav' -> MT0000040632
        keys = flags["path"].map(lambda text: PureWindowsPath(text.strip()).stem)
    is_test = flags["test"].astype(float).astype(int) == 1
    is_validation = flags["validation"].astype(float).astype(int) == 1
    part_of_song = dict(zip(keys, np.where(is_test, "test", np.where(is_validation, "validation", "train"))))
    local = table[table["song_id"].isin(part_of_song)]
    not_found = sorted(set(part_of_song) - set(table["song_id"]))
    return with_parts(local, local["song_id"].map(part_of_song)), not_found, int((is_test & is_validation).sum())


def summary(split: pd.DataFrame) -> pd.DataFrame:
    """Songs per label and part, for the CLI's table."""
    counts = split.groupby(["label", "part"]).size().unstack(fill_value=0)
    return counts.reindex(columns=[part for part in PARTS if part in counts.columns])
