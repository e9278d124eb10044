"""Audio I/O: decode any file soundfile reads (whole, or streamed block by block), mix to mono, resample, save.

Samples are float32 in soundfile's layout: (frames,) when mono, (frames, channels) otherwise.
libsndfile's own errors mislead, so every decode checks what it got against what the header declared
(audio_checks.py, with the one rule every command applies to what it decoded). Cutting into windows: windowing.py.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import soundfile as sf

from .audio_checks import (check_file, check_rate, check_samples, declared_frames, libsndfile_message, os_reason,
                           shortfall)
from .errors import AudioError
from .files import atomic_write

if TYPE_CHECKING:
    from .audio_checks import Level

SAMPLE_RATE = 22050  # the ESTM and MER rate (librosa's default)

# What a folder search picks up; a file named explicitly is always tried, whatever its extension.
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .ogg .oga .opus .mp3 .aif .aiff .aifc .au .snd .caf .w64 .rf64".split()
)

WRITE_BLOCK = 1 << 16  # frames written at a time

# Extension -> (soundfile format, subtype) for writing.
WRITE_FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
    ".aiff": ("AIFF", "PCM_16"),
    ".aif": ("AIFF", "PCM_16"),
    ".au": ("AU", "PCM_16"),
}
MP3_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


# --------------------------------------------------------------------------------------------------- decoding


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what C decoders (mpg123) print straight to file descriptor 2; our own errors say it better."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def opened(path: Path) -> Iterator[sf.SoundFile]:
    """Open `path` for reading, turning libsndfile's errors into an AudioError with the real cause.

    The file goes to libsndfile as an open Python file, not a name: given a name, libsndfile also looks for a macOS
    resource fork ("._song.mp3") beside it and refuses a good mp3 when it finds one.
    """
    check_file(path)
    try:
        file = open(path, "rb")
    except OSError as error:
        raise AudioError(path, "missing", f"cannot read ({os_reason(error)})") from None
    with file:
        try:
            with _quiet_native_stderr():
                handle = sf.SoundFile(file)
        except sf.LibsndfileError as error:
            message = libsndfile_message(error)
            if "not recognised" in message:
                raise AudioError(path, "not_audio", "not an audio file (format not recognised)") from None
            if "does not exist" in message:  # what libsndfile says when mpg123 finds no frame in an existing file
                message = "no decodable frame found"
            raise AudioError(path, "corrupt", f"corrupt or truncated ({message})") from None
        with handle:
            check_rate(path, handle.samplerate)
            yield handle


@dataclass(frozen=True)
class Header:
    """What a file's header says, without decoding it."""

    format: str
    sample_rate: int
    channels: int
    frames: int  # libsndfile's count: exact for wav/flac, an estimate for some mp3s

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def probe(path: str | os.PathLike) -> Header:
    """Open `path` and read its header only (fast); AudioError if it is not usable audio at all."""
    path = Path(path)
    with opened(path) as handle:
        return _header(path, handle)


def _header(path: Path, handle: sf.SoundFile) -> Header:
    """The header of the opened `handle`; AudioError, kind empty, where it declares no frames."""
    header = Header(handle.format, handle.samplerate, handle.channels, handle.frames)
    if header.frames <= 0:
        raise AudioError(path, "empty", "no audio frames (empty or truncated)")
    return header


def load(
    path: str | os.PathLike,
    *,
    sample_rate: int | None = None,
    mono: bool = False,
    offset: float = 0.0,
    duration: float | None = None,
    min_duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode `path` as float32, reading only [offset, offset + duration) seconds.

    Returns (samples, rate): samples (frames,) if `mono` else (frames, channels); rate is `sample_rate` if given
    (resampled with soxr), else the file's own. Raises AudioError for every kind of unusable file; `min_duration`
    (seconds, measured before resampling) rejects files too short for the caller.
    """
    path = Path(path)
    with opened(path) as handle:
        rate = handle.samplerate
        start = round(offset * rate)
        wanted = -1 if duration is None else round(duration * rate)
        samples = read_block(handle, path, wanted, seek=min(start, handle.frames) if start else None)
        declared = declared_frames(handle, path)
        subtype = handle.subtype

    if declared is not None:
        declared = max(declared - start, 0) if wanted < 0 else min(wanted, max(declared - start, 0))
    problem = shortfall(len(samples), declared, rate)
    if problem:
        raise AudioError(path, "truncated", problem)
    if len(samples) == 0:
        what = "nothing at that offset" if start else "no audio frames (empty or truncated)"
        raise AudioError(path, "empty", what)
    check_samples(path, samples, subtype)
    if min_duration is not None and len(samples) < round(min_duration * rate):
        raise AudioError(
            path, "too_short", f"too short: {len(samples) / rate:.3f} s, needs at least {min_duration:g} s"
        )

    if mono:
        samples = to_mono(samples)
    elif samples.shape[1] == 1:
        samples = samples[:, 0]
    if sample_rate is not None and sample_rate != rate:
        samples = resample(samples, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(samples), rate


STREAM_BLOCK = 1 << 18  # frames a Stream decodes at a time by default: a few seconds, whatever the file's length


class Stream:
    """One decode pass over `path`, block by block, never seeking: a file of any length is read once, in bounded
    memory. Opening it checks what `probe` checks (an unusable file is an AudioError before any work); iterating
    decodes `block_frames` of the file's frames at a time (or `block_seconds` of them) and yields float32 blocks:
    (frames,) mixed to mono if `mono`, else (frames, channels), resampled to `sample_rate` without seams (a streaming
    soxr) where it is given and not the file's. The samples are checked as `load` checks them; a truncation is raised
    after the last block, when it becomes known. `level`, if given, measures the blocks as decoded, before the
    mixdown and the resampling (whose first samples ramp up from silence), for audio_checks.check_sound.

    `sample_rate` and `channels` are the blocks', `header` the file's. The file closes at the end of the pass, on
    close() or on leaving a `with` block; a stream is read once.
    """

    def __init__(self, path: str | os.PathLike, *, block_frames: int = STREAM_BLOCK,
                 block_seconds: float | None = None, mono: bool = True, sample_rate: int | None = None,
                 level: Level | None = None):
        self.path = Path(path)
        self._open = ExitStack()
        self._handle = self._open.enter_context(opened(self.path))
        try:
            self.header = _header(self.path, self._handle)
        except AudioError:
            self.close()
            raise
        rate = self.header.sample_rate
        self.block_frames = block_frames if block_seconds is None else round(block_seconds * rate)
        if self.block_frames < 1:
            self.close()
            raise ValueError(f"a stream's blocks hold at least one frame, not {self.block_frames}")
        self.mono, self.level = mono, level
        self.sample_rate = sample_rate or rate
        self.channels = 1 if mono else self.header.channels
        if level is not None:
            level.sample_rate = rate

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._handle is None:
            raise ValueError(f"{self.path}: a stream is read once")
        handle, path, rate = self._handle, self.path, self.header.sample_rate
        resampler = None
        if self.sample_rate != rate:
            import soxr

            resampler = soxr.ResampleStream(rate, self.sample_rate, self.channels, dtype="float32", quality="HQ")
        decoded = 0
        try:
            while True:
                block = read_block(handle, path, self.block_frames)
                check_samples(path, block, handle.subtype)
                if self.level is not None:
                    self.level.push(block)
                decoded += len(block)
                last = len(block) == 0
                if self.mono:
                    block = to_mono(block)
                if resampler is not None:
                    block = resampler.resample_chunk(block, last=last)
                if len(block):
                    yield np.ascontiguousarray(block)
                if last:
                    break
            declared = declared_frames(handle, path)
        finally:
            self.close()
        if decoded == 0:
            raise AudioError(path, "empty", "no audio frames (empty or truncated)")
        problem = shortfall(decoded, declared, rate)
        if problem:
            raise AudioError(path, "truncated", problem)

    def close(self) -> None:
        self._handle = None
        self._open.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exception) -> None:
        self.close()


def read_block(handle: sf.SoundFile, path: Path, frames: int, seek: int | None = None) -> np.ndarray:
    """Up to `frames` frames (-1: the rest) from where `handle` stands (or from frame `seek`), float32
    (frames, channels); a decoder's failure is an AudioError, kind corrupt."""
    try:
        with _quiet_native_stderr():
            if seek is not None:
                handle.seek(seek)
            return handle.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(path, "corrupt", f"corrupt or truncated ({libsndfile_message(error)})") from None


CLIP_SECONDS = 30.0  # what a figure shows of a file by default


@dataclass
class Clip:
    """Mono audio to show: `samples` (frames,) float32 at `sample_rate`; `duration` is the whole source's, in
    seconds (more than the samples hold when only its start was read; by default what they hold)."""

    name: str
    samples: np.ndarray
    sample_rate: int
    duration: float | None = None

    def __post_init__(self) -> None:
        self.samples = np.asarray(self.samples, dtype=np.float32)
        if self.samples.ndim != 1:
            raise ValueError(f"a Clip holds mono samples (frames,), not an array of shape {self.samples.shape}")
        if self.duration is None:
            self.duration = self.shown

    @property
    def shown(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def cut(self) -> bool:
        return self.duration > self.shown + 0.5 / self.sample_rate


def load_clip(path: str | os.PathLike, seconds: float | None = CLIP_SECONDS) -> Clip:
    """The first `seconds` of a file (all of it if None), mixed to mono at its own rate."""
    header = probe(path)
    samples, rate = load(path, mono=True, duration=seconds)
    shown = len(samples) / rate
    duration = max(header.duration, shown) if seconds is not None and shown >= seconds - 1 / rate else shown
    return Clip(Path(path).name, samples, rate, duration)


# -------------------------------------------------------------------------------------------------- transforms


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) or (frames,) -> (frames,), the mean of the channels."""
    if samples.ndim == 1:
        return samples
    channels = samples.shape[1]
    if channels == 1:
        return samples[:, 0]
    if channels == 2:  # far faster than .mean(axis=1) on long arrays
        return 0.5 * (samples[:, 0] + samples[:, 1])
    total = samples[:, 0].copy()
    for channel in range(1, channels):
        total += samples[:, channel]
    return total / np.float32(channels)


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resample along axis 0 with soxr (high quality); length becomes round(frames * target_rate / rate)."""
    import soxr

    if rate == target_rate:
        return samples
    return soxr.resample(samples, rate, target_rate, quality="HQ").astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------------------------ saving


def write_format(path: Path, sample_rate: int, channels: int) -> tuple[str, str]:
    """(soundfile format, subtype) to write `path` in, by its extension; AudioError where that format cannot hold
    the audio. Commands check it before their work, not after."""
    try:
        format_, subtype = WRITE_FORMATS[Path(path).suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(WRITE_FORMATS))
        raise AudioError(path, "unwritable", f"cannot write '{Path(path).suffix}' files (use one of {known})") from None
    if format_ == "MP3" and (sample_rate not in MP3_SAMPLE_RATES or channels > 2):
        raise AudioError(path, "unwritable", "mp3 holds 1 or 2 channels at 8-48 kHz; write .flac or .wav instead")
    return format_, subtype


def save(
    path: str | os.PathLike,
    samples: np.ndarray,
    sample_rate: int,
    *,
    clip: str = "rescale",
    force: bool = False,
) -> Path:
    """Write (frames,) or (frames, channels) float samples; the format follows the extension.

    `clip` decides what happens to samples beyond [-1, 1]: "rescale" divides the whole signal by its peak (no
    distortion), "clamp" cuts them off. The file appears atomically; an existing one is kept unless `force`.
    """
    path = Path(path)
    samples = np.asarray(samples, dtype=np.float32)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    format_, subtype = write_format(path, sample_rate, channels)
    if not np.isfinite(samples).all():
        raise AudioError(path, "nonfinite", "refusing to write NaN or infinite samples")
    if clip not in ("rescale", "clamp"):
        raise ValueError(f"clip must be 'rescale' or 'clamp', not {clip!r}")
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > 1.0:
        samples = samples / np.float32(peak) if clip == "rescale" else np.clip(samples, -1.0, 1.0)
    with atomic_write(path, force) as temporary:
        with output_file(temporary, path, sample_rate, channels, (format_, subtype)) as handle:
            for start in range(0, len(samples), WRITE_BLOCK):  # libsndfile's ogg encoder crashed on minutes at once
                handle.write(samples[start:start + WRITE_BLOCK])
    return path


@contextmanager
def output_file(temporary: Path, path: Path, sample_rate: int, channels: int,
                output_format: tuple[str, str]) -> Iterator[sf.SoundFile]:
    """libsndfile's writer on `temporary`, the atomic write's file for `path`. A failed write is one line naming
    `path` and the cause; libsndfile says only "System error", so a full disk is told by the space left there."""
    try:
        # a name as bytes: soundfile encodes a str strictly, and a name that is not UTF-8 would fail there
        with sf.SoundFile(os.fsencode(temporary), "w", sample_rate, channels, format=output_format[0],
                          subtype=output_format[1]) as handle:
            yield handle
    except sf.LibsndfileError as error:
        raise AudioError(path, "unwritable", f"cannot write: {_write_failure(Path(temporary), error)}") from None


def _write_failure(temporary: Path, error: Exception) -> str:
    try:
        space = os.statvfs(temporary.parent)
        if space.f_bavail * space.f_frsize < 1 << 20:
            return "no space left on device"
    except OSError:
        pass
    return libsndfile_message(error)
