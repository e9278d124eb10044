"""Cut the songs of a split into fixed-length segments, once, into an int16 cache that training memory-maps.

The original's recipe (ESTM.md): decode at 22 050 Hz mono, peak-normalise the song, cut consecutive 222 264-sample
segments, zero-pad the last, drop a segment when over 50 % of its samples are exactly 0, peak-normalise each segment.

Output folder:
    manifest.csv    one row per segment: segment_id, index (row in the cache), position (k), start (s), and the
                    song's split columns (song_id, path, label, group, part, ...)
    segments.npy    int16 (segments, segment_length), read with numpy.load(..., mmap_mode="r")
    segments.json   the settings and the split it was made from
    wav/            {song_id}-{k}.wav per segment, with write_wav (as the original did)
While it runs, each finished song is a shard in `songs/`; a rerun skips those, and the cache and manifest appear
only when every song is done, so the folder never holds a partial cache.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import __version__, audio
from ..errors import EstmError
from ..files import atomic_write, write_csv

MANIFEST = "manifest.csv"
CACHE = "segments.npy"
SETTINGS = "segments.json"
INT16_SCALE = 32767.0


@dataclass(frozen=True)
class SegmentSettings:
    sample_rate: int = 22050
    segment_length: int = 222264  # 10.08 s at 22 050 Hz
    hop: int | None = None  # None: consecutive segments (hop = segment_length)
    max_zero_fraction: float = 0.5  # drop segments with more exact zeros than this (padding, digital silence)
    normalise_song: bool = True
    normalise_segment: bool = True

    @property
    def step(self) -> int:
        return self.hop or self.segment_length


@dataclass
class SegmentResult:
    manifest: pd.DataFrame
    problems: list[tuple[str, str]]  # (song path, cause) of songs skipped
    songs_done_before: int  # finished in an earlier, interrupted run
    audio_seconds: float  # of the songs decoded in this run


def song_segments(samples: np.ndarray, settings: SegmentSettings) -> tuple[np.ndarray, list[int]]:
    """Mono float samples -> (int16 (n, segment_length) segments that pass the silence filter, their positions k)."""
    if settings.normalise_song:
        samples = audio.peak_normalise(samples)
    windows = audio.segment(samples, settings.segment_length, settings.step)
    kept, positions = [], []
    for position, window in enumerate(windows):
        if audio.zero_fraction(window) > settings.max_zero_fraction:
            continue
        if settings.normalise_segment:
            window = audio.peak_normalise(window)
        kept.append(np.round(np.clip(window, -1.0, 1.0) * INT16_SCALE).astype(np.int16))
        positions.append(position)
    segments = np.stack(kept) if kept else np.zeros((0, settings.segment_length), np.int16)
    return segments, positions


def to_float(segments: np.ndarray) -> np.ndarray:
    """int16 cache rows -> float32 in [-1, 1]."""
    return segments.astype(np.float32) / np.float32(INT16_SCALE)


def _shard_path(out_dir: Path, song_id: str) -> Path:
    # song ids can hold '/' (folder layout); a digest makes a flat, safe file name
    return out_dir / "songs" / f"{hashlib.sha1(song_id.encode()).hexdigest()[:20]}.npz"


def _process_song(song_id: str, path: str, out_dir: Path, settings: SegmentSettings, write_wav: bool) -> float:
    """Decode, segment and write one song's shard (and wav files). Returns the song's duration in seconds.
    Runs in worker processes: everything it needs comes in as arguments, and it writes its own output."""
    samples, rate = audio.load(path, sample_rate=settings.sample_rate, mono=True)
    segments, positions = song_segments(samples, settings)
    if not len(segments):
        raise audio.AudioError(path, "too_short", "no segment passes the silence filter (too short or silent)")
    if write_wav:
        for segment, position in zip(segments, positions):
            wav = out_dir / "wav" / f"{song_id}-{position}.wav"
            audio.save(wav, to_float(segment), rate, force=True)
    with atomic_write(_shard_path(out_dir, song_id), force=True) as temporary:
        with open(temporary, "wb") as file:
            np.savez(file, segments=segments, positions=np.array(positions, dtype=np.int64))
    return len(samples) / rate


def _check_settings(out_dir: Path, recorded: dict, force: bool) -> None:
    """Refuse to mix the work of different settings or splits in one folder."""
    settings_file = out_dir / SETTINGS
    if not settings_file.exists():
        return
    previous = json.loads(settings_file.read_text())
    same = {key: previous.get(key) for key in recorded} == recorded
    if not same and not force:
        raise EstmError(
            f"{out_dir} holds segments of another split or other settings; use --force to redo it, or another -o"
        )
    if not same:
        for name in (MANIFEST, CACHE, SETTINGS):
            (out_dir / name).unlink(missing_ok=True)
        shutil.rmtree(out_dir / "songs", ignore_errors=True)
        shutil.rmtree(out_dir / "wav", ignore_errors=True)


def segment_split(
    split: pd.DataFrame,
    out_dir: str | Path,
    settings: SegmentSettings = SegmentSettings(),
    *,
    jobs: int = 1,
    write_wav: bool = False,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> SegmentResult:
    """Segment every song of `split` into `out_dir` (see the module docstring), `jobs` songs at a time."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = hashlib.sha1(pd.util.hash_pandas_object(split[["song_id", "path", "part"]], index=False).values)
    recorded = {"settings": asdict(settings), "split": fingerprint.hexdigest()}
    _check_settings(out_dir, recorded, force)
    if (out_dir / MANIFEST).exists() and (out_dir / CACHE).exists():
        manifest = read_manifest(out_dir)
        return SegmentResult(manifest, [], songs_done_before=manifest["song_id"].nunique(), audio_seconds=0.0)
    with atomic_write(out_dir / SETTINGS, force=True) as temporary:
        temporary.write_text(json.dumps({**recorded, "complete": False, "estm_version": __version__}, indent=2))

    songs = list(zip(split["song_id"], split["path"]))
    todo = [(song_id, path) for song_id, path in songs if not _shard_path(out_dir, song_id).exists()]
    done_before = len(songs) - len(todo)
    problems: list[tuple[str, str]] = []
    seconds = 0.0
    finished = done_before
    if on_progress:
        on_progress(finished, len(songs))

    def record(path: str, outcome: Callable[[], float]) -> None:
        nonlocal seconds, finished
        try:
            seconds += outcome()
        except audio.AudioError as error:
            problems.append((path, error.cause))
        finished += 1
        if on_progress:
            on_progress(finished, len(songs))

    if jobs > 1 and len(todo) > 1:
        # spawn, not fork: a forked copy of a parent that has loaded torch's thread pools can hang
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {
                pool.submit(_process_song, song_id, path, out_dir, settings, write_wav): path for song_id, path in todo
            }
            for future in as_completed(futures):
                record(futures[future], future.result)
    else:
        for song_id, path in todo:
            record(path, lambda: _process_song(song_id, path, out_dir, settings, write_wav))

    manifest = _assemble(split, out_dir, settings)
    with atomic_write(out_dir / SETTINGS, force=True) as temporary:
        summary = {"segments": len(manifest), "songs": int(manifest["song_id"].nunique())}
        temporary.write_text(json.dumps({**recorded, **summary, "complete": True, "estm_version": __version__}, indent=2))
    shutil.rmtree(out_dir / "songs", ignore_errors=True)
    return SegmentResult(manifest, problems, done_before, seconds)


def _assemble(split: pd.DataFrame, out_dir: Path, settings: SegmentSettings) -> pd.DataFrame:
    """Join the song shards, in split order, into the one cache and its manifest (both written atomically)."""
    shards = [(row, _shard_path(out_dir, row.song_id)) for row in split.itertuples(index=False)]
    shards = [(row, shard) for row, shard in shards if shard.exists()]
    loaded = []
    total = 0
    for row, shard in shards:
        with np.load(shard) as data:
            positions = data["positions"]
        loaded.append((row, shard, positions))
        total += len(positions)
    if total == 0:
        raise EstmError(f"no song in the split gave a segment; nothing written to {out_dir}")

    rows = []
    with atomic_write(out_dir / CACHE, force=True) as temporary:
        cache = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.int16,
                                          shape=(total, settings.segment_length))
        index = 0
        for row, shard, positions in loaded:
            with np.load(shard) as data:
                cache[index: index + len(positions)] = data["segments"]
            for position in positions:
                rows.append({
                    "segment_id": f"{row.song_id}-{position}",
                    "index": index,
                    "position": int(position),
                    "start": position * settings.step / settings.sample_rate,
                    **row._asdict(),
                })
                index += 1
        cache.flush()
        del cache
    manifest = pd.DataFrame(rows)
    write_csv(manifest, out_dir / MANIFEST, force=True)
    return manifest


def read_manifest(cache_dir: str | Path) -> pd.DataFrame:
    """The manifest of a segment cache (ids stay strings)."""
    path = Path(cache_dir) / MANIFEST
    if not path.is_file():
        raise EstmError(f"{cache_dir}: no segment manifest here; make one with `estm data segment SPLIT.csv -o DIR`")
    return pd.read_csv(path, dtype={"song_id": str, "segment_id": str, "group": str, "label": str},
                       keep_default_na=False)


def read_settings(cache_dir: str | Path) -> SegmentSettings:
    """The settings a finished cache was made with."""
    path = Path(cache_dir) / SETTINGS
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    if not recorded.get("complete"):
        raise EstmError(f"{cache_dir}: no finished segment cache here; make one with `estm data segment SPLIT.csv -o DIR`")
    return SegmentSettings(**recorded["settings"])


def open_cache(cache_dir: str | Path) -> np.ndarray:
    """The int16 (segments, segment_length) cache, memory-mapped read-only."""
    path = Path(cache_dir) / CACHE
    if not path.is_file():
        raise EstmError(f"{cache_dir}: no segment cache here; make one with `estm data segment SPLIT.csv -o DIR`")
    return np.load(path, mmap_mode="r")
