"""Cut the songs of a split into fixed-length segments, once, into an int16 cache that training memory-maps.

The original's recipe (ESTM.md): decode at 22 050 Hz mono, peak-normalise the song, cut consecutive 222 264-sample
segments, zero-pad the last, drop a segment when over 50 % of its samples are exactly 0, peak-normalise each segment.

Output folder:
    manifest.csv    one row per segment: segment_id, index (row in the cache), position (k), start (s), and the
                    song's split columns (song_id, path, label, group, part, ...)
    segments.npy    int16 (segments, segment_length), read with numpy.load(..., mmap_mode="r")
    segments.json   the settings and the split it was made from, the songs skipped, and "complete"
    wav/            {song_id}-{k}.wav per segment, with write_wav (as the original did)
While it runs, each finished song is a shard in `songs/`; a rerun skips those. The cache is committed by one step
written last: segments.json with "complete": true. Until then the folder is unfinished whatever else it holds (a run
killed between writing the manifest and that step leaves both), so a rerun finishes it and readers refuse it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from .. import __version__, audio
from ..errors import EstmError
from ..files import atomic_write, write_csv
from ..workers import process_pool

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


def song_segments(samples: np.ndarray, settings: SegmentSettings) -> tuple[np.ndarray, list[int], list[int]]:
    """Mono float samples -> (int16 (n, segment_length) segments that pass the silence filter, their positions k,
    their starts in samples), cut by the window rule (audio.window_starts).

    The paper zero-padded the last segment, and its silence filter then dropped it when more than half of it was
    zeros; here the last segment ends at the song's end instead (real audio, no padding), and is kept where the
    paper's padded one was, so a song gives the paper's segments."""
    if settings.normalise_song:
        samples = audio.peak_normalise(samples)
    length, step = settings.segment_length, settings.step
    windows, starts = audio.segment(samples, length, step)
    if len(starts) > 1 and starts[-1] % step:  # an end-aligned last window
        tail = samples[starts[-2] + step:]  # what the paper's padded segment held
        if (length - len(tail) + np.count_nonzero(tail == 0)) / length > settings.max_zero_fraction:
            windows, starts = windows[:-1], starts[:-1]
    kept, positions, kept_starts = [], [], []
    for position, (window, start) in enumerate(zip(windows, starts)):
        if audio.zero_fraction(window) > settings.max_zero_fraction:
            continue
        if settings.normalise_segment:
            window = audio.peak_normalise(window)
        kept.append(np.round(np.clip(window, -1.0, 1.0) * INT16_SCALE).astype(np.int16))
        positions.append(position)
        kept_starts.append(start)
    segments = np.stack(kept) if kept else np.zeros((0, length), np.int16)
    return segments, positions, kept_starts


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
    segments, positions, starts = song_segments(samples, settings)
    if not len(segments):
        raise audio.AudioError(path, "too_short", "no segment passes the silence filter (too short or silent)")
    if write_wav:
        for segment, position in zip(segments, positions):
            wav = out_dir / "wav" / f"{song_id}-{position}.wav"
            audio.save(wav, to_float(segment), rate, force=True)
    with atomic_write(_shard_path(out_dir, song_id), force=True) as temporary:
        with open(temporary, "wb") as file:
            np.savez(file, segments=segments, positions=np.array(positions, dtype=np.int64),
                     starts=np.array(starts, dtype=np.int64))
    return len(samples) / rate


def _recorded(cache_dir: Path) -> dict:
    """What segments.json says (empty when there is none)."""
    path = cache_dir / SETTINGS
    return json.loads(path.read_text()) if path.is_file() else {}


def _remove_cache(out_dir: Path) -> None:
    """Delete what segmenting writes into `out_dir`, and nothing else the folder may hold."""
    for name in (SETTINGS, MANIFEST, CACHE):  # the commit marker first: a kill part-way leaves an unfinished cache
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
    split_file: str | Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> SegmentResult:
    """Segment every song of `split` into `out_dir` (see the module docstring), `jobs` songs at a time.

    A finished cache of the same split and settings is returned as it is (with the songs it skipped); an unfinished
    one is finished; `force` always starts over. `split_file` is only recorded, for the rerun hint of readers."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = hashlib.sha1(pd.util.hash_pandas_object(split[["song_id", "path", "part"]], index=False).values)
    recorded = {"settings": asdict(settings), "split": fingerprint.hexdigest()}
    previous = _recorded(out_dir)
    if force:
        _remove_cache(out_dir)
    elif previous and {key: previous.get(key) for key in recorded} != recorded:
        raise EstmError(
            f"{out_dir} holds segments of another split or other settings; use --force to redo it, or another -o"
        )
    elif previous.get("complete"):
        manifest = read_manifest(out_dir)
        skipped = [tuple(problem) for problem in previous.get("skipped", [])]
        return SegmentResult(manifest, skipped, songs_done_before=manifest["song_id"].nunique(), audio_seconds=0.0)
    recorded.update(split_file=None if split_file is None else str(split_file), estm_version=__version__)
    with atomic_write(out_dir / SETTINGS, force=True) as temporary:
        temporary.write_text(json.dumps({**recorded, "complete": False}, indent=2))

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
        with process_pool(jobs) as pool:
            futures = {
                pool.submit(_process_song, song_id, path, out_dir, settings, write_wav): path for song_id, path in todo
            }
            for future in as_completed(futures):
                record(futures[future], future.result)
    else:
        for song_id, path in todo:
            record(path, lambda: _process_song(song_id, path, out_dir, settings, write_wav))

    manifest = _assemble(split, out_dir, settings)
    summary = {"segments": len(manifest), "songs": int(manifest["song_id"].nunique()), "skipped": problems}
    with atomic_write(out_dir / SETTINGS, force=True) as temporary:  # the commit: written after everything else
        temporary.write_text(json.dumps({**recorded, **summary, "complete": True}, indent=2))
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
            # shards written before the window rule have no starts: their segments lay every step
            starts = data["starts"] if "starts" in data else positions * settings.step
        loaded.append((row, shard, positions, starts))
        total += len(positions)
    if total == 0:
        raise EstmError(f"no song in the split gave a segment; nothing written to {out_dir}")

    rows = []
    with atomic_write(out_dir / CACHE, force=True) as temporary:
        cache = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.int16,
                                          shape=(total, settings.segment_length))
        index = 0
        for row, shard, positions, starts in loaded:
            with np.load(shard) as data:
                cache[index: index + len(positions)] = data["segments"]
            for position, start in zip(positions, starts):
                rows.append({
                    "segment_id": f"{row.song_id}-{position}",
                    "index": index,
                    "position": int(position),
                    "start": int(start) / settings.sample_rate,
                    **row._asdict(),
                })
                index += 1
        cache.flush()
        del cache
    manifest = pd.DataFrame(rows)
    write_csv(manifest, out_dir / MANIFEST, force=True)
    return manifest


def _committed(cache_dir: str | Path) -> dict:
    """segments.json of a finished cache; EstmError saying what `cache_dir` lacks otherwise."""
    cache_dir = Path(cache_dir)
    recorded = _recorded(cache_dir)
    if recorded.get("complete"):
        return recorded
    if recorded or (cache_dir / MANIFEST).exists() or (cache_dir / CACHE).exists():
        split_file = recorded.get("split_file") or "SPLIT.csv"
        raise EstmError(f"incomplete cache {cache_dir} (its segmenting stopped before the end): "
                        f"rerun `estm data segment {split_file} -o {cache_dir}`")
    raise EstmError(f"{cache_dir}: no segment cache here; make one with `estm data segment SPLIT.csv -o DIR`")


def read_manifest(cache_dir: str | Path) -> pd.DataFrame:
    """The manifest of a finished segment cache (ids stay strings)."""
    _committed(cache_dir)
    return pd.read_csv(Path(cache_dir) / MANIFEST, dtype={"song_id": str, "segment_id": str, "group": str,
                                                          "label": str}, keep_default_na=False)


def read_settings(cache_dir: str | Path) -> SegmentSettings:
    """The settings a finished cache was made with."""
    return SegmentSettings(**_committed(cache_dir)["settings"])


def open_cache(cache_dir: str | Path) -> np.ndarray:
    """The int16 (segments, segment_length) cache of a finished segment cache, memory-mapped read-only."""
    _committed(cache_dir)
    return np.load(Path(cache_dir) / CACHE, mmap_mode="r")


# ------------------------------------------------------------------------------------- segments for a model


def file_segments(path: str | Path, sample_rate: int, segment_length: int) -> np.ndarray:
    """A file's (n, segment_length) float32 segments, made as `estm data segment` makes a cache's: the song
    peak-normalised, cut by the window rule (song_segments), mostly-silent ones dropped, each
    peak-normalised. AudioError if no segment is left."""
    samples, _ = audio.load(path, sample_rate=sample_rate, mono=True)
    settings = SegmentSettings(sample_rate=sample_rate, segment_length=segment_length)
    segments, _, _ = song_segments(samples, settings)
    if not len(segments):
        raise audio.AudioError(path, "too_short", f"no segment to encode: silent, or shorter than half a segment "
                                                  f"({segment_length / sample_rate / 2:.2f} s)")
    return to_float(segments)


def check_fits(cache_dir: str | Path, model) -> SegmentSettings:
    """The cache's settings, after checking its segments are what `model` (a store.LoadedModel) takes: its sample
    rate and segment length."""
    settings = read_settings(cache_dir)
    if (settings.sample_rate, settings.segment_length) != (model.sample_rate, model.segment_length):
        raise EstmError(f"{model.name} takes {model.segment_length} samples at {model.sample_rate} Hz, but "
                        f"{cache_dir} holds {settings.segment_length} at {settings.sample_rate} Hz")
    return settings


def cache_segments(cache_dir: str | Path, model, *, part: str | None = None, max_segments: int | None = None,
                   batch_size: int = 8) -> tuple[int, Iterator[np.ndarray]]:
    """The segments of a segment cache (of `part`, if given; at most `max_segments`, evenly spread) as
    (count, iterator of float32 (≤ batch_size, segment_length) batches). The cache must fit `model` (check_fits)."""
    check_fits(cache_dir, model)
    manifest = read_manifest(cache_dir)
    if part is not None:
        manifest = manifest[manifest["part"] == part]
        if manifest.empty:
            raise EstmError(f"{cache_dir}: no segments in part {part!r}")
    rows = np.sort(manifest["index"].to_numpy())
    if max_segments is not None and len(rows) > max_segments:
        rows = rows[np.linspace(0, len(rows) - 1, max_segments).round().astype(int)]
    cache = open_cache(cache_dir)

    def batches() -> Iterator[np.ndarray]:
        for start in range(0, len(rows), batch_size):
            yield to_float(cache[rows[start:start + batch_size]])

    return len(rows), batches()
