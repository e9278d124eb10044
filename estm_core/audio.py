"""Audio I/O: decode any file soundfile reads (whole, or streamed block by block), mix to mono, resample, save.

Samples are float32 in soundfile's layout: (frames,) when mono, (frames, channels) otherwise.
libsndfile's own errors mislead, so every decode checks what it got against what the header declared
(audio_checks.py, with the one rule every command applies to what it decoded). Cutting into windows: windows.py.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import soundfile as sf

from .audio_checks import (beyond_full_scale, check_file, check_rate, check_samples, declared_frames,
                           libsndfile_message, os_reason, shortfall)
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


@dataclass(frozen=True)
class AudioInfo:
    """What `inspect` learns about a file by decoding all of it."""

    path: str
    format: str  # soundfile's major format, e.g. "WAV", "MP3"
    subtype: str  # e.g. "PCM_16", "VORBIS"
    sample_rate: int
    channels: int
    frames: int  # frames actually decoded
    header_frames: int | None  # frames the header declares, where it declares them
    peak: float  # max |sample| over finite samples
    rms_dbfs: float  # -inf for digital silence
    zero_fraction: float  # fraction of samples exactly 0
    problem: str | None  # why the file should not be trusted (truncated, NaN...), or None

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    @property
    def complete(self) -> bool:
        return self.problem is None


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
def _opened(path: Path) -> Iterator[sf.SoundFile]:
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
    with _opened(path) as handle:
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
    with _opened(path) as handle:
        rate = handle.samplerate
        start = round(offset * rate)
        wanted = -1 if duration is None else round(duration * rate)
        try:
            with _quiet_native_stderr():
                if start:
                    handle.seek(min(start, handle.frames))
                samples = handle.read(wanted, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioError(path, "corrupt", f"corrupt or truncated ({libsndfile_message(error)})") from None
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


def stream(
    path: str | os.PathLike, *, sample_rate: int | None = None, block_frames: int = 1 << 18,
    level: Level | None = None,
) -> Iterator[np.ndarray]:
    """Decode `path` block by block as mono float32, resampled to `sample_rate` without seams (a streaming soxr),
    so a long file never sits in memory whole. The same checks as `load`; a truncation is raised after the last
    block, when it becomes known. `level`, if given, measures the blocks as decoded, before the mixdown and the
    resampling (whose first samples ramp up from silence), for check_sound."""
    import soxr

    path = Path(path)
    decoded = 0
    with _opened(path) as handle:
        rate = handle.samplerate
        if level is not None:
            level.sample_rate = rate
        resampler = None
        if sample_rate is not None and sample_rate != rate:
            resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
        while True:
            try:
                with _quiet_native_stderr():
                    block = handle.read(block_frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as error:
                raise AudioError(path, "corrupt", f"corrupt or truncated ({libsndfile_message(error)})") from None
            check_samples(path, block, handle.subtype)
            if level is not None:
                level.push(block)
            decoded += len(block)
            last = len(block) == 0
            mono = to_mono(block)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if len(mono):
                yield np.ascontiguousarray(mono)
            if last:
                break
        declared = declared_frames(handle, path)
    if decoded == 0:
        raise AudioError(path, "empty", "no audio frames (empty or truncated)")
    problem = shortfall(decoded, declared, rate)
    if problem:
        raise AudioError(path, "truncated", problem)


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


def inspect(path: str | os.PathLike, block_frames: int = 1 << 16) -> AudioInfo:
    """Decode all of `path` block by block (bounded memory) and measure it.

    Raises AudioError only when nothing at all can be decoded; a file that decodes in part comes back with its
    `problem` set.
    """
    path = Path(path)
    frames = zeros = nonfinite = 0
    peak, sum_squares = 0.0, 0.0
    problem = None
    with _opened(path) as handle:
        try:
            while True:
                # read() stops at the real end; blocks() would trust the header and pad with garbage
                with _quiet_native_stderr():
                    block = handle.read(block_frames, dtype="float32", always_2d=True)
                if not len(block):
                    break
                finite = np.isfinite(block)
                if not finite.all():
                    nonfinite += int(block.size - np.count_nonzero(finite))
                    block = np.where(finite, block, 0.0)
                frames += len(block)
                zeros += int(block.size - np.count_nonzero(block))
                peak = max(peak, float(np.abs(block).max()))
                sum_squares += float(np.dot(block.ravel().astype(np.float64), block.ravel()))
        except (sf.LibsndfileError, RuntimeError) as error:
            problem = f"corrupt or truncated ({libsndfile_message(error)})"
            if frames:
                problem += f" after {frames / handle.samplerate:.2f} s"
        declared = declared_frames(handle, path)
        info = dict(format=handle.format, subtype=handle.subtype, sample_rate=handle.samplerate,
                    channels=handle.channels)
    if frames == 0:
        if problem:
            raise AudioError(path, "corrupt", problem)
        raise AudioError(path, "empty", "no audio frames (empty or truncated)")
    problem = problem or shortfall(frames, declared, info["sample_rate"])
    if nonfinite and not problem:
        problem = f"contains {nonfinite} NaN or infinite samples"
    problem = problem or beyond_full_scale(peak, info["subtype"])
    samples = frames * info["channels"]
    rms = math.sqrt(sum_squares / samples)
    return AudioInfo(
        path=str(path),
        frames=frames,
        header_frames=declared,
        peak=peak,
        rms_dbfs=20 * math.log10(rms) if rms > 0 else -math.inf,
        zero_fraction=zeros / samples,
        problem=problem,
        **info,
    )


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
