"""The audio a listening test plays: each stimulus cut to length, the anchor low-passed, all at one loudness.

Loudness is matched because listeners hear louder as better and as more aroused: a transfer that only turned the
level up would otherwise win both questions. Every stimulus is set to one integrated loudness (BS.1770-4,
estm_core.loudness): LEVEL_LUFS, or lower where a stimulus's peak would pass PEAK_CEILING_DB there, so that none is
limited or clipped and all stay equal. Files are read twice (measured, then written) so that memory holds one
stimulus at a time.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import audio
from ..errors import FileError
from ..loudness import integrated_loudness
from .plan import LOW_PASSED, stimulus_file

LEVEL_LUFS = -23.0  # EBU R 128's programme level: room for the peaks of quiet and loud music alike
PEAK_CEILING_DB = -1.0  # sample peak
ANCHOR_CUTOFF_HZ = 3500.0  # ITU-R BS.1534-3's low anchor
ANCHOR_ORDER = 8  # Butterworth, run forwards and backwards: 96 dB an octave, no phase shift
FADE_SECONDS = 0.05  # a stimulus cut short fades out, so that it ends without a click


def sound(source: str, treatment: str, seconds: float | None) -> tuple[np.ndarray, int]:
    """A stimulus's samples (frames, channels) and rate: its source file's first `seconds` (all of it when None),
    faded out where cut, and for the anchor low-passed at ANCHOR_CUTOFF_HZ."""
    samples, rate = audio.load(source, duration=seconds)  # an unusable file: one line (AudioError) naming it
    samples = samples.reshape(len(samples), -1).astype(np.float64)
    if seconds is not None and len(samples) >= round(seconds * rate):  # cut short (or just that long)
        fade = min(len(samples), round(FADE_SECONDS * rate))
        samples[len(samples) - fade:] *= np.linspace(1.0, 0.0, fade)[:, None]
    if treatment == LOW_PASSED:
        samples = low_passed(samples, rate, source)
    return samples, rate


def low_passed(samples: np.ndarray, rate: int, source: str = "") -> np.ndarray:
    """`samples` (frames, channels) low-passed at ANCHOR_CUTOFF_HZ."""
    from scipy.signal import butter, sosfiltfilt

    if rate <= 2 * ANCHOR_CUTOFF_HZ:
        raise FileError(source, f"sampled at {rate} Hz: a {ANCHOR_CUTOFF_HZ / 1000:g} kHz anchor needs more than "
                                f"{2 * ANCHOR_CUTOFF_HZ / 1000:g} kHz")
    sections = butter(ANCHOR_ORDER, ANCHOR_CUTOFF_HZ, fs=rate, output="sos")
    return sosfiltfilt(sections, samples, axis=0)


def measure(samples: np.ndarray, rate: int, source: str) -> tuple[float, float]:
    """(integrated loudness in LUFS, sample peak in dBFS); one line where there is nothing loud enough to match."""
    lufs = integrated_loudness(samples, rate)
    if not math.isfinite(lufs):
        raise FileError(source, "too quiet or too short to match its loudness (no 400 ms above -70 LUFS)")
    return lufs, 20 * math.log10(max(float(np.abs(samples).max()), 1e-12))


def matched_level(measured: dict[str, tuple[float, float]], level: float = LEVEL_LUFS) -> float:
    """The one loudness every stimulus is set to: `level`, or lower so that no peak passes PEAK_CEILING_DB."""
    headroom = min(PEAK_CEILING_DB - peak + lufs for lufs, peak in measured.values())
    return min(level, headroom)


def prepare(stimuli: dict[str, dict], folder: Path, *, match: bool = True, level: float = LEVEL_LUFS,
            seconds: float | None = None, on_progress=None) -> tuple[dict[str, dict], float | None]:
    """Write each stimulus (token -> {"source", "treatment"}) into the test folder `folder`; returns each one's
    record for the plan (its source, treatment, length, loudness before and gain) and the matched level (None
    with `match` off)."""
    measured, total = {}, 2 * len(stimuli)
    for done, (token, stimulus) in enumerate(stimuli.items(), 1):
        samples, rate = sound(stimulus["source"], stimulus["treatment"], seconds)
        measured[token] = measure(samples, rate, stimulus["source"])
        if on_progress:
            on_progress(done, total)
    common = matched_level(measured, level) if match else None
    records = {}
    for done, (token, stimulus) in enumerate(stimuli.items(), len(stimuli) + 1):
        samples, rate = sound(stimulus["source"], stimulus["treatment"], seconds)
        lufs, peak = measured[token]
        gain_db = 0.0 if common is None else common - lufs
        if peak + gain_db > 0:  # only unmatched audio can peak above full scale (an anchor's ringing)
            gain_db = -peak
        audio.save(stimulus_file(folder, token), samples * 10 ** (gain_db / 20), rate, clip="clamp")
        records[token] = {**stimulus, "seconds": round(len(samples) / rate, 3), "rate": rate,
                          "channels": samples.shape[1], "lufs": round(lufs, 2), "gain_db": round(gain_db, 2)}
        if on_progress:
            on_progress(done, total)
    return records, common
