"""Audio for WaveNet: every file of a dataset decoded once at 16 kHz mono, mu-law encoded, and kept in one
memory-mapped uint8 cache, from which training draws random windows; for a WaveNet conditioned on cue curves, the
curves of every file (estm_core.cues.curves, measured on the audio as the codes give it back) in a second one.

Held-out data never overlaps the training windows: whole files (by file) or the last part of every file (by time).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from .. import audio, features
from ..errors import AudioError, EstmError, FileError
from ..files import atomic_write, write_csv

SAMPLE_RATE = 16000
CODES = "codes.u8"
INDEX = "index.csv"
CURVES = "curves.f32"
CURVES_VERSION = 1  # bump when estm_core.cues.curves measures differently


def cache_folder(data: str | Path) -> Path:
    """Where the codes of a dataset folder (or split CSV) are kept: in the store, by the data's name."""
    from ..store import store_root

    return store_root() / "cache" / "wavenet" / Path(data).resolve().name


@dataclass
class MulawCache:
    folder: Path
    index: pd.DataFrame  # one row per file: song_id, path, label, part, start, length (in codes)
    problems: list[tuple[str, str]]

    def codes(self) -> np.ndarray:
        return np.memmap(self.folder / CODES, dtype=np.uint8, mode="r")

    def audio(self, start: int, length: int) -> np.ndarray:
        """The float32 audio of the codes [start, start + length), as the WaveNet hears it."""
        codes = torch.from_numpy(np.array(self.codes()[start:start + length], dtype=np.int64))
        return features.mu_law_decode(codes).numpy()

    def first_frames(self) -> pd.Series:
        """The row in the curves of each file's first frame, by the file's start in the codes."""
        from ..cues.curves import frames_of

        frames = self.index["length"].map(frames_of)
        return pd.Series((frames.cumsum() - frames).to_numpy(), index=self.index["start"].to_numpy())

    def curves(self) -> np.ndarray:
        from ..cues.curves import CHANNELS

        return np.memmap(self.folder / CURVES, dtype=np.float32, mode="r").reshape(-1, len(CHANNELS))


def build_curves(cache: MulawCache, on_progress=None) -> None:
    """Measure the cue curves of every file of `cache` (unless they are there for exactly these codes)."""
    from ..cues.curves import measure

    stamp = {"codes": _recorded(cache.folder / "cache.json").get("fingerprint"), "version": CURVES_VERSION}
    if _recorded(cache.folder / "curves.json") == stamp and (cache.folder / CURVES).is_file():
        return
    with atomic_write(cache.folder / CURVES, force=True) as temporary, open(temporary, "wb") as output:
        for done, row in enumerate(cache.index.itertuples(index=False), start=1):
            output.write(measure(cache.audio(row.start, row.length)).tobytes())
            if on_progress:
                on_progress(done, len(cache.index))
    with atomic_write(cache.folder / "curves.json", force=True) as temporary:
        temporary.write_text(json.dumps(stamp))


def build_cache(table: pd.DataFrame, folder: str | Path, *, sample_rate: int = SAMPLE_RATE,
                on_progress=None) -> MulawCache:
    """Encode every file of `table` (song_id, path, label, part) into `folder`, unless it already holds exactly
    these files at this rate. Unreadable files are skipped and returned as problems."""
    folder = Path(folder)
    fingerprint = hashlib.sha1(json.dumps(
        [sample_rate, *table[["song_id", "path", "part"]].astype(str).values.tolist()]).encode()).hexdigest()
    recorded = _recorded(folder / "cache.json")
    if recorded.get("fingerprint") == fingerprint and isinstance(recorded.get("problems"), list):
        return MulawCache(folder, _read_index(folder), recorded["problems"])
    folder.mkdir(parents=True, exist_ok=True)
    rows, problems, start = [], [], 0
    with atomic_write(folder / CODES, force=True) as temporary, open(temporary, "wb") as output:
        for done, row in enumerate(table.itertuples(index=False), start=1):
            try:
                samples, _ = audio.load(row.path, sample_rate=sample_rate, mono=True)
            except AudioError as error:
                problems.append((str(row.path), error.cause))
            else:
                codes = features.mu_law_encode(torch.from_numpy(samples)).numpy().astype(np.uint8)
                output.write(codes.tobytes())
                rows.append({"song_id": row.song_id, "path": row.path, "label": row.label, "part": row.part,
                             "start": start, "length": len(codes)})
                start += len(codes)
            if on_progress:
                on_progress(done, len(table))
    index = pd.DataFrame(rows, columns=["song_id", "path", "label", "part", "start", "length"])
    if index.empty:
        raise EstmError("no file of the dataset could be decoded; nothing to train on")
    write_csv(index, folder / INDEX, force=True)
    with atomic_write(folder / "cache.json", force=True) as temporary:
        temporary.write_text(json.dumps({"fingerprint": fingerprint, "sample_rate": sample_rate,
                                         "problems": problems}))
    return MulawCache(folder, index, problems)


def built_cache(folder: str | Path) -> MulawCache | None:
    """The cache a training run built in `folder` (its skipped files not listed), or None when there is none."""
    folder = Path(folder)
    return MulawCache(folder, _read_index(folder), []) if (folder / INDEX).is_file() else None


def _recorded(path: Path) -> dict:
    """cache.json, or {} where it is missing or unreadable: the cache is then built again (it is the store's own)."""
    try:
        recorded = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def _read_index(folder: Path) -> pd.DataFrame:
    """The cache's index, checked against its codes: a span past their end would read garbage, or fail deep inside
    training."""
    path, size = folder / INDEX, (folder / CODES).stat().st_size if (folder / CODES).is_file() else 0
    try:
        index = pd.read_csv(path, dtype={"song_id": str, "label": str}, keep_default_na=False)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise FileError(path, f"unreadable ({str(error).splitlines()[0]}); remove {folder} to build it again") from None
    start, length = index.get("start"), index.get("length")
    whole = all(column is not None and pd.api.types.is_integer_dtype(column) for column in (start, length))
    if not whole or {"song_id", "label", "part"} - set(index.columns) \
            or (start < 0).any() or (length < 1).any() or (start + length > size).any():
        raise FileError(path, f"does not describe the {size} codes of {CODES} (start, length, song_id, label, part); "
                              f"remove {folder} to build it again")
    return index


def spans(index: pd.DataFrame, part: str, holdout: str, holdout_fraction: float = 0.1) -> pd.DataFrame:
    """The (start, length, label, file_start) spans of the cache that belong to `part` ("train" or "validation").

    by "file": the files the split put in that part; by "time": the first (1 - holdout_fraction) of every file for
    training and the rest for validation, so no training window reaches into held-out audio.
    """
    if holdout == "file":
        chosen = index[index["part"] == part]
        return pd.DataFrame({"start": chosen["start"], "length": chosen["length"], "label": chosen["label"],
                             "file_start": chosen["start"]}).reset_index(drop=True)
    cut = (index["length"] * (1 - holdout_fraction)).astype(int)
    if part == "train":
        return pd.DataFrame({"start": index["start"], "length": cut, "label": index["label"],
                             "file_start": index["start"]})
    return pd.DataFrame({"start": index["start"] + cut, "length": index["length"] - cut, "label": index["label"],
                         "file_start": index["start"]})


class WindowDataset(Dataset):
    """Random windows of `window` codes from the given spans, with their label index (-1 unlabelled), and with
    `curves` the (channels, frames) cue curves of the window, which then starts on a frame of its file.

    Item i of epoch e is always the same window (seeded by seed, e, i), so a resumed epoch repeats exactly.
    Spans shorter than a window are skipped; a span is drawn in proportion to its length.
    """

    def __init__(self, cache: MulawCache, spans_: pd.DataFrame, window: int, labels: list[str], *,
                 windows: int | None = None, seed: int = 0, curves: bool = False):
        from ..cues.curves import HOP, frames_of

        self.step = HOP if curves else 1  # where a window may start: every sample, or every frame's first
        first = spans_["file_start"] + -(-(spans_["start"] - spans_["file_start"]) // self.step) * self.step
        room = (spans_["start"] + spans_["length"] - window - first) // self.step + 1
        usable = room >= 1
        if not usable.any():
            raise EstmError(f"no file is longer than a training window ({window / SAMPLE_RATE:.2f} s)")
        self.cache, self.window, self.seed, self.epoch = cache, window, seed, 0
        self.starts, self.room = first[usable].to_numpy(), room[usable].to_numpy()
        self.weights = self.room / self.room.sum()
        self.targets = np.array([labels.index(label) if label in labels else -1
                                 for label in spans_.loc[usable, "label"]])
        self.frames = None
        if curves:  # each usable span's first window's first frame, and the frames a window needs
            first_frames = cache.first_frames().loc[spans_.loc[usable, "file_start"]].to_numpy()
            self.first_frames = first_frames + (self.starts - spans_.loc[usable, "file_start"].to_numpy()) // HOP
            self.frames = frames_of(window)
        self.size = windows or max(1, int(self.room.sum()) * self.step // window)
        self._codes = self._curves = None

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        """Other windows each epoch (the training loop calls this before every epoch)."""
        self.epoch = epoch

    def __getitem__(self, item: int) -> tuple[torch.Tensor, ...]:
        if self._codes is None:
            self._codes = self.cache.codes()
        rng = np.random.default_rng([self.seed, self.epoch, item])
        span = rng.choice(len(self.starts), p=self.weights)
        offset = rng.integers(self.room[span])
        start = self.starts[span] + offset * self.step
        codes = torch.from_numpy(np.array(self._codes[start:start + self.window], dtype=np.int64))
        if self.frames is None:
            return codes, torch.tensor(self.targets[span])
        if self._curves is None:
            self._curves = self.cache.curves()
        frame = self.first_frames[span] + offset
        curves = torch.from_numpy(np.array(self._curves[frame:frame + self.frames]).T)
        return codes, torch.tensor(self.targets[span]), curves

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_codes": None, "_curves": None}
