"""What every decode is checked against: the file itself, its header's declared length, the samples' range, and the
one rule of every command that measures or edits audio (too short or silent: refused).

libsndfile's own errors mislead (a truncated mp3 "does not exist", a truncated ogg decodes to 0 frames, a truncated
wav silently shrinks), so audio.py checks what it decoded against what the header declared, with these.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import AudioError

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


# --------------------------------------------------------------------------------------------- the file itself


def check_file(path: Path) -> None:
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
        raise AudioError(path, "missing", f"cannot read ({os_reason(error)})") from None


def check_rate(path: Path, sample_rate: int) -> None:
    """An AudioError, kind bad_rate, for a rate outside MIN_SAMPLE_RATE..MAX_SAMPLE_RATE."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(path, "bad_rate", f"sample rate {sample_rate} Hz is not one estm reads "
                                           f"({MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz)")


def os_reason(error: OSError) -> str:
    """An OSError's cause, in the lower case of a one-line message."""
    return (error.strerror or str(error)).lower()


def libsndfile_message(error: Exception) -> str:
    """libsndfile's message for `error`, without its prefix and full stop, starting in lower case."""
    message = str(getattr(error, "error_string", error)).strip().rstrip(".")
    message = message.removeprefix("Error :").strip()
    return message[:1].lower() + message[1:]


# ------------------------------------------------------------------------------------------------- the samples


def check_samples(path: Path, samples: np.ndarray, subtype: str) -> None:
    """An AudioError for NaN or infinite samples, or samples beyond full scale (FLOAT_FULL_SCALE for a float file,
    DECODER_HEADROOM for any other)."""
    if not np.isfinite(samples).all():
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise AudioError(path, "nonfinite", f"contains {bad} NaN or infinite samples")
    problem = beyond_full_scale(float(np.abs(samples).max()) if samples.size else 0.0, subtype)
    if problem:
        raise AudioError(path, "over_full_scale", problem)


def beyond_full_scale(peak: float, subtype: str) -> str | None:
    """The refusal's message where `peak` is beyond what a file of `subtype` may hold, else None."""
    limit = FLOAT_FULL_SCALE if subtype in FLOAT_SUBTYPES else DECODER_HEADROOM
    if peak <= limit:
        return None
    where = "float samples" if subtype in FLOAT_SUBTYPES else "decoded samples"
    return (f"{where} beyond full scale (peak {20 * math.log10(peak):+.1f} dBFS): refused, not clipped; "
            "normalise the file to 0 dBFS first")


# ----------------------------------------------------------------------------------------- the declared length


_DECLARED_SIZE = re.compile(r"^\s*(?:data|SSND|Data Size)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)  # written before the length was known; not a truncation


def declared_frames(handle: sf.SoundFile, path: Path) -> int | None:
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


def shortfall(decoded: int, declared: int | None, sample_rate: int) -> str | None:
    """The truncation message when `decoded` is well short of `declared`, else None."""
    if declared is None or decoded >= declared * (1 - TRUNCATION_TOLERANCE):
        return None
    return f"truncated: decoded {decoded / sample_rate:.2f} s of the {declared / sample_rate:.2f} s its header declares"


# ------------------------------------------------------------------------------------------------ the one rule


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
