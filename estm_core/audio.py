"""Audio I/O: decode any file soundfile reads, mix to mono, resample, normalise, segment, save.

Samples are float32 in soundfile's layout: (frames,) when mono, (frames, channels) otherwise.
libsndfile's own errors mislead (a truncated mp3 "does not exist", a truncated ogg decodes to 0 frames, a truncated
wav silently shrinks), so every decode checks what it got against what the header declared.
"""

from __future__ import annotations

import math
import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile as sf

from .errors import FileError
from .files import atomic_write

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

# A decode this much short of the header's frame count is a truncated file, not header rounding.
TRUNCATION_TOLERANCE = 0.01

# Rates a file may have: below 1 kHz nothing is audio (a 1 Hz "WAV" is data), above 768 kHz (the highest rate
# interfaces record at) resampling and the analysis frames would grow without bound.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768_000

# Samples beyond full scale. A float file stores its samples as they are: one beyond +-1 (a few float32 steps allowed
# for a mix normalised to 0 dBFS) is refused, not clipped, since clipping would change what every command measures
# and a batch's warning is easily missed. Lossy decoders overshoot full scale by design (a full-scale square wave's
# mp3 decodes to 1.42): their samples are refused only beyond +12 dBFS, which no encoder makes of real audio.
FLOAT_FULL_SCALE = 1.000001
DECODER_HEADROOM = 4.0
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")

# The one rule every command that measures or edits audio (analyze, classify, transfer) applies to what it decoded:
# shorter than MIN_SECONDS is too short to measure, and a peak below SILENCE_DBFS (about one 16-bit step) once any
# constant offset (DC) is removed is silent. Each is that file's one-line failure.
MIN_SECONDS = 1.0
SILENCE_DBFS = -90.0
# A DC offset above this (-80 dBFS) is removed before measuring spectra and before editing; a smaller one is left
# alone, so DC-free audio goes through bit for bit.
DC_OFFSET = 1e-4


class AudioError(FileError):
    """A file that cannot be used as audio. `kind` is one of: missing, not_audio, empty, truncated, corrupt,
    nonfinite, over_full_scale, bad_rate, too_short, silent, unwritable."""

    def __init__(self, path, kind: str, cause: str):
        self.kind = kind
        super().__init__(path, cause)


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
    _check_file(path)
    try:
        file = open(path, "rb")
    except OSError as error:
        raise AudioError(path, "missing", f"cannot read ({_reason(error)})") from None
    with file:
        try:
            with _quiet_native_stderr():
                handle = sf.SoundFile(file)
        except sf.LibsndfileError as error:
            message = _libsndfile_message(error)
            if "not recognised" in message:
                raise AudioError(path, "not_audio", "not an audio file (format not recognised)") from None
            if "does not exist" in message:  # what libsndfile says when mpg123 finds no frame in an existing file
                message = "no decodable frame found"
            raise AudioError(path, "corrupt", f"corrupt or truncated ({message})") from None
        with handle:
            if not MIN_SAMPLE_RATE <= handle.samplerate <= MAX_SAMPLE_RATE:
                raise AudioError(path, "bad_rate", f"sample rate {handle.samplerate} Hz is not one estm reads "
                                                   f"({MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz)")
            yield handle


def _check_file(path: Path) -> None:
    """An AudioError unless `path` is an existing, non-empty file (a name too long, a link that loops: one line)."""
    try:
        if not path.exists():
            if path.is_symlink():
                raise AudioError(path, "missing", "a symbolic link to nothing (it loops, or its target is gone)")
            raise AudioError(path, "missing", "no such file")
        if path.is_dir():
            raise AudioError(path, "not_audio", "is a folder, not an audio file")
        if path.stat().st_size == 0:
            raise AudioError(path, "empty", "empty file (0 bytes)")
    except OSError as error:  # ENAMETOOLONG and the like, which pathlib does not swallow
        raise AudioError(path, "missing", f"cannot read ({_reason(error)})") from None


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


def _check_samples(path: Path, samples: np.ndarray, subtype: str) -> None:
    """An AudioError for NaN or infinite samples, or samples beyond full scale (FLOAT_FULL_SCALE for a float file,
    DECODER_HEADROOM for any other)."""
    if not np.isfinite(samples).all():
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise AudioError(path, "nonfinite", f"contains {bad} NaN or infinite samples")
    problem = _beyond_full_scale(float(np.abs(samples).max()) if samples.size else 0.0, subtype)
    if problem:
        raise AudioError(path, "over_full_scale", problem)


def _beyond_full_scale(peak: float, subtype: str) -> str | None:
    """The refusal's message where `peak` is beyond what a file of `subtype` may hold, else None."""
    limit = FLOAT_FULL_SCALE if subtype in FLOAT_SUBTYPES else DECODER_HEADROOM
    if peak <= limit:
        return None
    where = "float samples" if subtype in FLOAT_SUBTYPES else "decoded samples"
    return (f"{where} beyond full scale (peak {20 * math.log10(peak):+.1f} dBFS): refused, not clipped; "
            "normalise the file to 0 dBFS first")


def _libsndfile_message(error: Exception) -> str:
    message = str(getattr(error, "error_string", error)).strip().rstrip(".")
    message = message.removeprefix("Error :").strip()
    return message[:1].lower() + message[1:]


_DECLARED_SIZE = re.compile(r"^\s*(?:data|SSND|Data Size)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)  # written before the length was known; not a truncation


def _declared_frames(handle: sf.SoundFile, path: Path) -> int | None:
    """Frames the file's header declares, or None where it declares nothing trustworthy.

    For wav/aiff/au libsndfile trims its count to what the file holds and only logs the header's size
    ("data : 441000 (should be 220478)"), so read it from that log. An mp3's count is exact only when its first
    frame carries a Xing/Info/VBRI length header; otherwise it is a guess from the file size.
    """
    match = _DECLARED_SIZE.search(handle.extra_info)
    if match:
        declared, actual = int(match.group(1)), int(match.group(2))
        if declared in _STREAMING_SIZES or actual == 0:
            return None
        return round(handle.frames * declared / actual)
    if handle.format == "MP3" and not _has_mp3_length_header(path):
        return None
    return handle.frames if handle.frames > 0 else None


def _has_mp3_length_header(path: Path) -> bool:
    with open(path, "rb") as file:
        head = file.read(10)
        if head[:3] == b"ID3" and len(head) == 10:  # skip the ID3v2 tag (its size is 4 x 7-bit "synchsafe" bytes)
            size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
            file.seek(10 + size)
        else:
            file.seek(0)
        first_frame = file.read(4096)
    return any(tag in first_frame for tag in (b"Xing", b"Info", b"VBRI"))


def _shortfall(decoded: int, declared: int | None, sample_rate: int) -> str | None:
    """The truncation message when `decoded` is well short of `declared`, else None."""
    if declared is None or decoded >= declared * (1 - TRUNCATION_TOLERANCE):
        return None
    return f"truncated: decoded {decoded / sample_rate:.2f} s of the {declared / sample_rate:.2f} s its header declares"


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
            raise AudioError(path, "corrupt", f"corrupt or truncated ({_libsndfile_message(error)})") from None
        declared = _declared_frames(handle, path)
        subtype = handle.subtype

    if declared is not None:
        declared = max(declared - start, 0) if wanted < 0 else min(wanted, max(declared - start, 0))
    problem = _shortfall(len(samples), declared, rate)
    if problem:
        raise AudioError(path, "truncated", problem)
    if len(samples) == 0:
        what = "nothing at that offset" if start else "no audio frames (empty or truncated)"
        raise AudioError(path, "empty", what)
    _check_samples(path, samples, subtype)
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
                raise AudioError(path, "corrupt", f"corrupt or truncated ({_libsndfile_message(error)})") from None
            _check_samples(path, block, handle.subtype)
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
        declared = _declared_frames(handle, path)
    if decoded == 0:
        raise AudioError(path, "empty", "no audio frames (empty or truncated)")
    problem = _shortfall(decoded, declared, rate)
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
            problem = f"corrupt or truncated ({_libsndfile_message(error)})"
            if frames:
                problem += f" after {frames / handle.samplerate:.2f} s"
        declared = _declared_frames(handle, path)
        info = dict(format=handle.format, subtype=handle.subtype, sample_rate=handle.samplerate,
                    channels=handle.channels)
    if frames == 0:
        if problem:
            raise AudioError(path, "corrupt", problem)
        raise AudioError(path, "empty", "no audio frames (empty or truncated)")
    problem = problem or _shortfall(frames, declared, info["sample_rate"])
    if nonfinite and not problem:
        problem = f"contains {nonfinite} NaN or infinite samples"
    problem = problem or _beyond_full_scale(peak, info["subtype"])
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


# ----------------------------------------------------------------------------------------------- the one rule


class Level:
    """Frames, and each channel's sum, lowest and highest sample, of audio at `sample_rate` pushed block by block:
    what `check_sound` reads, and the constant offset (DC) a transfer removes before editing."""

    def __init__(self, sample_rate: int | None = None):
        self.sample_rate = sample_rate
        self.frames = 0
        self.total = self.low = self.high = np.zeros(1)

    def push(self, block: np.ndarray) -> None:
        """A (frames,) or (frames, channels) block."""
        if not len(block):
            return
        block = block.reshape(len(block), -1)
        total, low, high = block.sum(axis=0, dtype=np.float64), block.min(axis=0), block.max(axis=0)
        first = self.frames == 0
        self.total = total if first else self.total + total
        self.low = low if first else np.minimum(self.low, low)
        self.high = high if first else np.maximum(self.high, high)
        self.frames += len(block)

    @property
    def offset(self) -> np.ndarray:
        """Each channel's mean: its DC offset."""
        return self.total / max(self.frames, 1)

    @property
    def dc(self) -> np.ndarray:
        """Each channel's offset where it is above DC_OFFSET, else 0 (float32): what to subtract."""
        return np.where(np.abs(self.offset) > DC_OFFSET, self.offset, 0.0).astype(np.float32)

    @property
    def swing(self) -> float:
        """The peak once each channel's offset is removed."""
        return float(np.maximum(self.high - self.offset, self.offset - self.low).max())


def check_sound(path, level: Level) -> None:
    """The one rule (MIN_SECONDS, SILENCE_DBFS): an AudioError, kind too_short or silent, for audio too short to
    measure or silent once its DC offset is removed."""
    seconds = level.frames / level.sample_rate
    if seconds < MIN_SECONDS:
        raise AudioError(path, "too_short", f"too short: {seconds:.3f} s, needs at least {MIN_SECONDS:g} s")
    swing = level.swing
    if swing > 0 and 20 * math.log10(swing) >= SILENCE_DBFS:
        return
    offset = float(np.abs(level.offset).max())
    if offset > 10 ** (SILENCE_DBFS / 20):
        what = f"a constant offset of {offset:.3g} and nothing else"
    else:
        what = "digital silence" if swing == 0 else f"peak {20 * math.log10(swing):.1f} dBFS"
    raise AudioError(path, "silent", f"silent ({what}): nothing to measure")


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


def peak_normalise(samples: np.ndarray) -> np.ndarray:
    """Scale so that max |sample| is 1; digital silence is returned unchanged."""
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    return samples / np.float32(peak) if peak > 0 else samples


def zero_fraction(samples: np.ndarray) -> float:
    """Fraction of samples that are exactly 0 (padding and digital silence)."""
    return 1.0 - np.count_nonzero(samples) / samples.size if samples.size else 1.0


def window_starts(total: int, length: int, hop: int) -> list[int]:
    """The window rule of every command that cuts audio (classify, transfer, plots, segmenting): `length`-sample
    windows every `hop` samples from the start, and where that leaves a tail, one more window ending at the end (it
    overlaps its neighbour, so no window holds padding). A signal of at most `length` samples gives one window at 0
    (padded with zeros); an empty one none."""
    if hop < 1:
        raise ValueError(f"hop must be at least one sample, not {hop}")
    if total <= length:
        return [0] if total else []
    starts = list(range(0, total - length + 1, hop))
    if starts[-1] + length < total:
        starts.append(total - length)
    return starts


def segment(samples: np.ndarray, length: int, hop: int | None = None) -> tuple[np.ndarray, list[int]]:
    """A mono signal (frames,) cut by the window rule (window_starts; default hop: no overlap): the (n, length)
    windows and their starts. An empty signal gives (0, length)."""
    starts = window_starts(len(samples), length, hop or length)
    if len(samples) < length:
        samples = np.pad(samples, (0, length - len(samples)))
    windows = np.lib.stride_tricks.sliding_window_view(samples, length)
    return np.ascontiguousarray(windows[starts]) if starts else np.zeros((0, length), samples.dtype), starts


def windows(blocks: Iterable[np.ndarray], length: int, hop: int) -> Iterator[tuple[int, np.ndarray]]:
    """The windows of `segment` (with their starts) over a stream of blocks, holding little more than a window: a
    file of any length is cut as its whole array would be."""
    if hop < 1:
        raise ValueError(f"hop must be at least one sample, not {hop}")
    buffer = np.zeros(0, np.float32)
    offset = 0  # the absolute sample index of buffer[0]
    next_start = 0
    emitted_end = 0
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        while offset + len(buffer) >= next_start + length:
            yield next_start, buffer[next_start - offset: next_start - offset + length]
            emitted_end = next_start + length
            next_start += hop
        keep_from = max(min(next_start, offset + len(buffer) - length), offset)  # enough for an end-aligned window
        buffer, offset = buffer[keep_from - offset:], keep_from
    total = offset + len(buffer)
    if emitted_end == 0 and total > 0:
        yield 0, np.pad(buffer, (0, length - len(buffer)))
    elif total > emitted_end:
        yield total - length, buffer[len(buffer) - length:]


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
    return _libsndfile_message(error)
