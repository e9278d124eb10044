"""What the judged transfer (transfer_evaluation) measures in one sound and between two, besides the judges' verdicts:
log-mel and chroma frames, their distances after the best uniform tempo alignment, and each cue's change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import audio
from .cues.meter import Cues, analyze, tempo_ratio

RATE = 22050  # the distances are measured on mono 22 050 Hz audio
HOP = 512
N_MELS = 64
TIME_SCALES = 2.0 ** np.linspace(-2.0, 2.0, 81)  # uniform tempo alignments tried: a quarter to four times as fast,
#   1/20 octave (3.5 %) apart; then FINE_SCALES more between the best one's neighbours (0.17 % apart): a 1.7 % error
#   leaves the end of a 30 s excerpt 0.5 s out, and cost the cue method's chroma correlation 0.05
FINE_SCALES = 41
MIN_OVERLAP = 0.25  # an alignment must cover at least this share of the frames it is measured on

# The cues whose moves are compared, as (name, how to read the change from a to b, the change that counts as a move)
CUE_CHANGES: tuple[tuple[str, Callable[[Cues, Cues], float], float], ...] = (
    ("tempo", lambda a, b: _octaves(tempo_ratio(a, b)), 0.1),  # octaves, as the cue method reads tempo: 0.1 is 7 %
    ("loudness", lambda a, b: b.loudness_lufs - a.loudness_lufs, 1.0),  # LU
    ("dynamics", lambda a, b: b.dynamic_range_db - a.dynamic_range_db, 1.0),  # LU of loudness range
    ("brightness", lambda a, b: b.tilt_db_per_octave - a.tilt_db_per_octave, 0.5),  # dB per octave
    ("articulation", lambda a, b: a.onset_decay - b.onset_decay, 0.05),  # up = more detached
    ("register", lambda a, b: b.pitch_centroid_midi - a.pitch_centroid_midi, 1.0),  # semitones
)


# ------------------------------------------------------------------------------------------ aligned distances


def log_mel_frames(samples: np.ndarray) -> np.ndarray:
    """(frames, N_MELS) log-mel power in dB of mono RATE audio (absolute, so that level counts)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=samples, sr=RATE, n_fft=2048, hop_length=HOP, n_mels=N_MELS)
    return (10 * np.log10(mel + 1e-10)).T


def chroma_frames(samples: np.ndarray) -> np.ndarray:
    import warnings

    import librosa

    with warnings.catch_warnings():  # a near-silent output (a collapsed model's) has no pitch to estimate tuning from
        warnings.filterwarnings("ignore", message="Trying to estimate tuning from empty frequency set")
        return librosa.feature.chroma_stft(y=samples, sr=RATE, n_fft=4096, hop_length=HOP).T


def best_alignment(reference: np.ndarray, other: np.ndarray, score: Callable[[np.ndarray, np.ndarray], float],
                   better: Callable[[float, float], bool]) -> float:
    """The best `score(reference frames, other frames)` over uniform time scalings of `other` onto `reference`
    (frame i of the reference meets frame round(i * scale) of the other), both starting together: the best of
    TIME_SCALES, then of FINE_SCALES around it; NaN when none overlaps enough."""
    def best_of(scales: np.ndarray) -> tuple[float, float]:
        best, best_scale = math.nan, math.nan
        frames = np.arange(len(reference))
        for scale in scales:
            index = np.round(frames * scale).astype(int)
            keep = index < len(other)
            if keep.sum() < max(2, MIN_OVERLAP * len(reference)):
                continue
            value = score(reference[keep], other[index[keep]])
            if math.isfinite(value) and (math.isnan(best) or better(value, best)):
                best, best_scale = value, scale
        return best, best_scale

    best, scale = best_of(TIME_SCALES)
    if math.isnan(best):
        return best
    step = float(np.diff(np.log2(TIME_SCALES)).max())
    return best_of(scale * 2.0 ** np.linspace(-step, step, FINE_SCALES))[0]  # the middle one is `scale` itself


def mel_distance(target: np.ndarray, output: np.ndarray) -> float:
    """Mean over the target's frames of the RMS difference in dB from the output's aligned frames."""
    return best_alignment(target, output, lambda a, b: float(np.mean(np.sqrt(np.mean((a - b) ** 2, axis=1)))),
                          lambda value, best: value < best)


def chroma_correlation(content: np.ndarray, output: np.ndarray) -> float:
    """Pearson correlation of the content's chroma with the output's aligned chroma (1: the same pitches)."""
    def correlation(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
        norm = math.sqrt(float(a @ a) * float(b @ b))
        return float(a @ b) / norm if norm > 0 else math.nan

    return best_alignment(content, output, correlation, lambda value, best: value > best)


# ------------------------------------------------------------------------------------------------- one sound


@dataclass
class Heard:
    """What the evaluation measures in one sound: its cues, its judgements and its alignment features."""

    cues: Cues
    mel: np.ndarray
    chroma: np.ndarray
    mer: str | None = None
    cue_judge: str | None = None


def hear(samples: np.ndarray, rate: int, cues: Cues | None = None) -> Heard:
    """What the evaluation measures in `samples` (their cues unless already measured), before judging."""
    mono = audio.resample(audio.to_mono(np.asarray(samples, np.float32)), rate, RATE)
    return Heard(cues or analyze(samples, rate), log_mel_frames(mono), chroma_frames(mono))


def cue_changes(before: Cues, after: Cues, asked: Cues | None = None) -> dict[str, float]:
    """The change of each cue from `before` to `after`. With `asked`, the tempo change is measured wherever the ask
    could be read (tempo_ratio), even where the output's onsets fall below the rate the meter reads an ask at."""
    changes = {name: change(before, after) for name, change, _ in CUE_CHANGES}
    if asked is not None:
        readable = math.isfinite(tempo_ratio(before, asked))  # then before.onset_rate > 0
        changes["tempo"] = _octaves(after.onset_rate / before.onset_rate) if readable else math.nan
    return changes


def _octaves(ratio: float) -> float:
    return -math.inf if ratio == 0 else math.log2(ratio)  # NaN stays NaN
