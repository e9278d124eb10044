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
killed between writing the manifest and that step leaves both), so a rerun finishes it and readers refuse it. A run
holds the folder's lock throughout: a second run into it is refused rather than assembling from the first's shards.

Readers check a cache against what the code can use before trusting it (settings in range, segments.npy of the
recorded shape and whole, manifest indices inside it): a cache is data from disk, not a promise. The folder's files
and those checks: cache_format.py.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import shutil
from concurrent.futures import as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from .. import __version__, audio, windowing
from ..errors import AudioError, EstmError
from ..files import atomic_write, write_csv
from ..workers import process_pool
from .cache_format import (CACHE, CACHE_DTYPE, MANIFEST, SETTINGS, CacheError, cache_rows, committed_record,
                           error_reason, manifest_problem, read_record, remake_hint)
from .limits import MAX_SAMPLE_RATE, MAX_SECONDS, MIN_SAMPLE_RATE, available_memory, check_free_space, size, writing

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


def settings_problem(settings) -> str | None:
    """Why `settings` (a SegmentSettings as a dict, e.g. read from segments.json) cannot be segmented with or read
    back; None where they can."""
    names = {field.name for field in fields(SegmentSettings)}
    if not isinstance(settings, dict) or set(settings) != names:
        return f"the settings must be exactly {', '.join(sorted(names))}"
    rate, length, hop, zeros = (settings[name] for name in ("sample_rate", "segment_length", "hop",
                                                             "max_zero_fraction"))
    if not _whole(rate) or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        return f"sample_rate {rate!r} is not a whole number of Hz from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE}"
    if not _whole(length) or not 1 <= length <= MAX_SECONDS * rate:
        return f"segment_length {length!r} is not a whole number of samples from 1 to {MAX_SECONDS:g} s"
    if hop is not None and (not _whole(hop) or hop < 1):
        return f"hop {hop!r} is not a whole number of samples of at least 1"
    if not isinstance(zeros, numbers.Real) or isinstance(zeros, bool) or not 0 <= zeros <= 1:  # refuses nan too
        return f"max_zero_fraction {zeros!r} is not a fraction from 0 to 1"
    if not all(isinstance(settings[name], bool) for name in ("normalise_song", "normalise_segment")):
        return "normalise_song and normalise_segment must be true or false"
    return None


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass
class SegmentResult:
    manifest: pd.DataFrame
    problems: list[tuple[str, str]]  # (song path, cause) of songs skipped
    songs_done_before: int  # finished in an earlier, interrupted run
    audio_seconds: float  # of the songs decoded in this run


def song_segments(samples: np.ndarray, settings: SegmentSettings) -> tuple[np.ndarray, list[int], list[int]]:
    """Mono float samples -> (int16 (n, segment_length) segments that pass the silence filter, their positions k,
    their starts in samples), cut by the window rule (windowing.window_starts).

    The paper zero-padded the last segment, and its silence filter then dropped it when more than half of it was
    zeros; here the last segment ends at the song's end instead (real audio, no padding), and is kept where the
    paper's padded one was, so a song gives the paper's segments."""
    if settings.normalise_song:
        samples = windowing.peak_normalise(samples)
    length, step = settings.segment_length, settings.step
    windows, starts = windowing.segment(samples, length, step)
    if len(starts) > 1 and starts[-1] % step:  # an end-aligned last window
        tail = samples[starts[-2] + step:]  # what the paper's padded segment held
        if (length - len(tail) + np.count_nonzero(tail == 0)) / length > settings.max_zero_fraction:
            windows, starts = windows[:-1], starts[:-1]
    kept, positions, kept_starts = [], [], []
    for position, (window, start) in enumerate(zip(windows, starts)):
        if windowing.zero_fraction(window) > settings.max_zero_fraction:
            continue
        if settings.normalise_segment:
            window = windowing.peak_normalise(window)
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
        raise AudioError(path, "too_short", "no segment passes the silence filter (too short or silent)")
    if write_wav:
        for segment, position in zip(segments, positions):
            audio.save(out_dir / "wav" / f"{song_id}-{position}.wav", to_float(segment), rate, force=True)
    # a full disk or a read-only place fails here as one line naming the file (atomic_write), the whole run with it
    with atomic_write(_shard_path(out_dir, song_id), force=True) as temporary, open(temporary, "wb") as file:
        np.savez(file, segments=segments, positions=np.array(positions, dtype=np.int64),
                 starts=np.array(starts, dtype=np.int64))
    return len(samples) / rate


def _song_cost(header: audio.Header, settings: SegmentSettings, write_wav: bool) -> tuple[int, int]:
    """(bytes of memory, bytes on disk) cutting a song of `header` takes: the decoded and resampled song, and its
    windows as float32 and int16 (with a small hop, many times the song); on disk its shard and its cache rows."""
    frames = -(-header.frames * settings.sample_rate // header.sample_rate)
    length, step = settings.segment_length, settings.step
    windows = 1 if frames <= length else (frames - length) // step + 1 + bool((frames - length) % step)
    memory = header.frames * header.channels * 4 + frames * 4 * 3 + windows * length * (4 + 2 + 2)
    return memory, windows * length * 2 * (3 if write_wav else 2)


def _plan(todo: list[tuple[str, str]], out_dir: Path, settings: SegmentSettings,
          jobs: int, write_wav: bool) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Check what the run will allocate before it starts, from the songs' headers: (songs to cut, songs refused
    because cutting one would take more memory than a job has). FileError where the disk cannot hold the rest."""
    budget = available_memory() // jobs
    kept, refused, disk = [], [], 0
    for song_id, path in todo:
        try:
            header = audio.probe(path)
        except AudioError:  # its decode reports it, after the whole file's checks
            kept.append((song_id, path))
            continue
        memory, written = _song_cost(header, settings, write_wav)
        if memory > budget:
            refused.append((path, f"too long to cut at these settings: about {size(memory)} of memory, "
                                  f"{size(budget)} available per job"))
        else:
            kept.append((song_id, path))
            disk += written
    disk += sum(shard.stat().st_size for shard in (out_dir / "songs").glob("*.npz"))  # the cache copies them
    check_free_space(out_dir, disk, "the segments")
    return kept, refused


@contextmanager
def _segmenting(out_dir: Path) -> Iterator[None]:
    """Hold the cache folder's lock for a whole run. Two runs into one folder would each assemble and commit from
    shards the other is still writing (or removing), so the second is refused at once."""
    from ..store import lock

    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    with lock(out_dir / f".{CACHE}.lock", busy=f"{out_dir}: another `estm data segment` is writing this cache folder",
              then="wait for it to finish, or use another -o"):
        yield


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
    one is finished; `force` always starts over. `split_file` is only recorded, for the rerun hint of readers.
    A second run into the same folder while one runs is an EstmError."""
    problem = settings_problem(asdict(settings))
    if problem or jobs < 1:
        raise EstmError(f"cannot segment with these settings: {problem or f'jobs {jobs} is less than 1'}")
    out_dir = Path(out_dir)
    with _segmenting(out_dir):
        fingerprint = hashlib.sha1(pd.util.hash_pandas_object(split[["song_id", "path", "part"]], index=False).values)
        recorded = {"settings": asdict(settings), "split": fingerprint.hexdigest()}
        if force:
            _remove_cache(out_dir)
        finished = _finished_before(out_dir, recorded)
        if finished is not None:
            return finished
        recorded.update(split_file=None if split_file is None else str(split_file), estm_version=__version__)
        _write_settings(out_dir, {**recorded, "complete": False})
        return _cut_and_commit(split, out_dir, settings, recorded, jobs=jobs, write_wav=write_wav,
                               on_progress=on_progress)


def _finished_before(out_dir: Path, recorded: dict) -> SegmentResult | None:
    """The result of a finished cache of these settings and split (None where there is none, or an unfinished one);
    EstmError where the folder holds another."""
    previous = read_record(out_dir)
    if previous and {key: previous.get(key) for key in recorded} != recorded:
        raise EstmError(
            f"{out_dir} holds segments of another split or other settings; use --force to redo it, or another -o"
        )
    if not previous.get("complete"):
        return None
    shutil.rmtree(out_dir / "songs", ignore_errors=True)  # a run killed right after its commit left them
    manifest = read_manifest(out_dir)
    skipped = [tuple(problem) for problem in previous.get("skipped", [])]
    return SegmentResult(manifest, skipped, songs_done_before=manifest["song_id"].nunique(), audio_seconds=0.0)


def _write_settings(out_dir: Path, recorded: dict) -> None:
    with atomic_write(out_dir / SETTINGS, force=True) as temporary:
        temporary.write_text(json.dumps(recorded, indent=2))


def _cut_and_commit(split: pd.DataFrame, out_dir: Path, settings: SegmentSettings, recorded: dict, *, jobs: int,
                    write_wav: bool, on_progress: Callable[[int, int], None] | None) -> SegmentResult:
    """Cut the songs not done yet, assemble the cache and commit it (segments.json "complete", written last)."""
    songs = list(zip(split["song_id"], split["path"]))
    todo = [(song_id, path) for song_id, path in songs if not _shard_path(out_dir, song_id).exists()]
    done_before = len(songs) - len(todo)
    todo, problems = _plan(todo, out_dir, settings, jobs, write_wav)
    seconds = 0.0
    finished = len(songs) - len(todo)
    if on_progress:
        on_progress(finished, len(songs))

    def record(path: str, outcome: Callable[[], float]) -> None:
        nonlocal seconds, finished
        try:
            seconds += outcome()
        except AudioError as error:
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

    if len(problems) == len(songs):
        path, cause = problems[0]
        raise EstmError(f"no song in the split gave a segment ({len(problems)} skipped; the first, {path}: {cause}); "
                        f"nothing written to {out_dir}")
    manifest = _assemble(split, out_dir, settings)
    summary = {"segments": len(manifest), "songs": int(manifest["song_id"].nunique()), "skipped": problems}
    _write_settings(out_dir, {**recorded, **summary, "complete": True})  # the commit: after everything else
    shutil.rmtree(out_dir / "songs", ignore_errors=True)
    return SegmentResult(manifest, problems, done_before, seconds)


def _assemble(split: pd.DataFrame, out_dir: Path, settings: SegmentSettings) -> pd.DataFrame:
    """Join the song shards, in split order, into the one cache and its manifest (both written atomically). The
    cache is written as a stream, not through a memory map: a full disk is then an error, not a crash (SIGBUS)."""
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
    header = {"descr": CACHE_DTYPE.str, "fortran_order": False, "shape": (total, settings.segment_length)}
    with atomic_write(out_dir / CACHE, force=True) as temporary, open(temporary, "wb") as file:
        np.lib.format.write_array_header_1_0(file, header)
        index = 0
        for row, shard, positions, starts in loaded:
            with np.load(shard) as data:
                file.write(np.ascontiguousarray(data["segments"], dtype=CACHE_DTYPE).tobytes())
            for position, start in zip(positions, starts):
                rows.append({
                    "segment_id": f"{row.song_id}-{position}",
                    "index": index,
                    "position": int(position),
                    "start": int(start) / settings.sample_rate,
                    **row._asdict(),
                })
                index += 1
    manifest = pd.DataFrame(rows)
    write_csv(manifest, out_dir / MANIFEST, force=True)
    return manifest


def read_settings(cache_dir: str | Path) -> SegmentSettings:
    """The settings a finished cache was made with, checked: a settings file is not trusted (a segment_length of
    10**12 would train into a useless model). Readers of the segments check the array against them (_checked)."""
    return _settings(Path(cache_dir), committed_record(Path(cache_dir)))


def _settings(cache_dir: Path, recorded: dict) -> SegmentSettings:
    problem = settings_problem(recorded.get("settings"))
    if problem:
        raise CacheError(cache_dir / SETTINGS, f"{problem}; {remake_hint(cache_dir, recorded)}")
    return SegmentSettings(**recorded["settings"])


def _checked(cache_dir: Path) -> tuple[dict, int]:
    """(segments.json, rows of segments.npy) of a finished cache whose settings and array agree."""
    recorded = committed_record(cache_dir)
    return recorded, cache_rows(cache_dir, _settings(cache_dir, recorded).segment_length, recorded)


def read_manifest(cache_dir: str | Path) -> pd.DataFrame:
    """The manifest of a finished segment cache (ids stay strings), checked against its segments.npy: the columns
    readers use, and every index a row of the cache."""
    cache_dir = Path(cache_dir)
    recorded, rows = _checked(cache_dir)
    path = cache_dir / MANIFEST
    try:
        manifest = pd.read_csv(path, dtype={"song_id": str, "segment_id": str, "group": str, "label": str},
                               keep_default_na=False)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise CacheError(path, f"unreadable ({error_reason(error)}); {remake_hint(cache_dir, recorded)}") from None
    problem = manifest_problem(manifest, rows)
    if problem:
        raise CacheError(path, f"{problem}; {remake_hint(cache_dir, recorded)}")
    return manifest


def open_cache(cache_dir: str | Path) -> np.ndarray:
    """The int16 (segments, segment_length) cache of a finished segment cache, memory-mapped read-only."""
    _checked(Path(cache_dir))
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
        raise AudioError(path, "too_short", f"no segment to encode: silent, or shorter than half a segment "
                                                  f"({segment_length / sample_rate / 2:.2f} s)")
    return to_float(segments)


def check_fits(cache_dir: str | Path, model) -> SegmentSettings:
    """The cache's settings, after checking its segments are what `model` (a model_file.LoadedModel) takes: its sample
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
