"""What a file is, learnt by decoding all of it (`estm info`, and the dataset checks before a split): format, rate,
channels, the frames decoded against those its header declares, peak, level, and why it should not be trusted."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import opened, read_block
from .audio_checks import beyond_full_scale, declared_frames, shortfall
from .errors import AudioError


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


def inspect(path: str | os.PathLike, block_frames: int = 1 << 16) -> AudioInfo:
    """Decode all of `path` block by block (bounded memory) and measure it.

    Raises AudioError only when nothing at all can be decoded; a file that decodes in part comes back with its
    `problem` set.
    """
    path = Path(path)
    frames = zeros = nonfinite = 0
    peak, sum_squares = 0.0, 0.0
    problem = None
    with opened(path) as handle:
        try:
            while True:
                # read() stops at the real end; blocks() would trust the header and pad with garbage
                block = read_block(handle, path, block_frames)
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
        except AudioError as error:  # the decoder failed part-way
            problem = error.cause
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
