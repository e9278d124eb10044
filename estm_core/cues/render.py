"""Edits of the cues that carry emotion, on audio (../shared/spec/EMOTION_CUES.md): tempo and register, level,
dynamics, brightness, articulation and mode. Each function takes and returns (frames, channels) float32 at
`sample_rate` and changes its own cue only, as far as the signal allows; the identity settings return the input.

Tempo and register go through Signalsmith Stretch (python-stretch, MIT), a time-stretcher and pitch-shifter of far
higher quality than a plain phase vocoder. The mode edit is the CMERS parallel-mode rule carried over to audio: the
energy at degrees 3, 6 and 7 of the key moves a semitone, in the short-time spectrum. It is experimental: partials of
other notes that fall on those pitch classes move too.
"""

from __future__ import annotations

import math

import numpy as np

LEVEL_WINDOW_S = 0.05  # the level follower of the dynamics edit: fast enough for notes, slow enough for no buzz
TRANSIENT_FAST_S, TRANSIENT_SLOW_S = 0.005, 0.08  # attack and sustain followers of the articulation edit
TILT_PIVOTS_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)  # shelves an octave apart make a tilt
MODE_FFT = 4096  # frames of the mode edit's short-time spectrum (186 ms at 22.05 kHz: semitone-resolving)


def _as_2d(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    return samples[:, None] if samples.ndim == 1 else samples


# ---------------------------------------------------------------------------------------------- tempo, register


def stretch(samples: np.ndarray, sample_rate: int, tempo_ratio: float = 1.0, semitones: float = 0.0) -> np.ndarray:
    """Play `tempo_ratio` times as fast (2 = twice as fast, half as long) and `semitones` higher, in one pass of
    Signalsmith Stretch. Returns (round(frames / tempo_ratio), channels), aligned with the input (the stretcher's
    latency removed)."""
    import python_stretch

    samples = _as_2d(samples)
    if tempo_ratio == 1.0 and semitones == 0.0:
        return samples.copy()
    if not (0.25 <= tempo_ratio <= 4.0):
        raise ValueError(f"tempo ratio {tempo_ratio} is outside 0.25-4")
    stretcher = python_stretch.Signalsmith.Stretch()
    stretcher.preset(samples.shape[1], float(sample_rate))
    stretcher.timeFactor = float(tempo_ratio)
    stretcher.setTransposeSemitones(float(semitones))
    latency = stretcher.inputLatency() + stretcher.outputLatency()
    # The output lags by the latency (in output frames): feed enough silence after the end to push the tail out.
    padding = math.ceil(latency * tempo_ratio) + 1
    padded = np.concatenate([samples, np.zeros((padding, samples.shape[1]), np.float32)])
    output = stretcher.process(np.ascontiguousarray(padded.T)).T
    frames = round(len(samples) / tempo_ratio)
    return np.ascontiguousarray(output[latency: latency + frames], dtype=np.float32)


# ------------------------------------------------------------------------------------------- level, dynamics


def gain(samples: np.ndarray, decibels: float) -> np.ndarray:
    return _as_2d(samples) * np.float32(10.0 ** (decibels / 20.0))


def _level_envelope(samples: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """(frames,) RMS over all channels in a sliding window of `seconds` (centred)."""
    window = max(1, round(seconds * sample_rate))
    power = np.mean(samples.astype(np.float64) ** 2, axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    half = window // 2
    starts = np.clip(np.arange(len(power)) - half, 0, len(power))
    ends = np.clip(np.arange(len(power)) + window - half, 0, len(power))
    return np.sqrt(np.maximum((cumulative[ends] - cumulative[starts]) / np.maximum(ends - starts, 1), 0.0))


def dynamics(samples: np.ndarray, sample_rate: int, ratio: float) -> np.ndarray:
    """Compress (`ratio` > 1) or expand (< 1) the level's swings about the signal's own RMS level: a passage
    `d` dB above (below) it ends up `d / ratio` dB above (below). 1 is the identity. The overall level stays."""
    samples = _as_2d(samples)
    if ratio == 1.0:
        return samples.copy()
    envelope = _level_envelope(samples, sample_rate, LEVEL_WINDOW_S)
    reference = float(np.sqrt(np.mean(envelope**2)))
    if reference == 0:
        return samples.copy()
    floor = reference * 1e-3  # below -60 dB of the level, leave the gain where it is (no lifting of the noise)
    relative = np.maximum(envelope, floor) / reference
    gain_curve = relative ** (1.0 / ratio - 1.0)
    return (samples * gain_curve[:, None]).astype(np.float32)


LIMITER_LOOKAHEAD_S = 0.005  # the limiter's gain reaches its floor this long before a peak, and recovers as fast


def limit(samples: np.ndarray, sample_rate: int, ceiling: float) -> np.ndarray:
    """Keep every sample within +-`ceiling` by turning the gain down around the peaks only (a look-ahead peak
    limiter), rather than the whole signal: the level of everything else stays where the other edits put it."""
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    samples = _as_2d(samples)
    peak = np.abs(samples).max(axis=1) if samples.size else np.zeros(0, np.float32)
    if not peak.size or peak.max() <= ceiling:
        return samples.copy()
    window = 2 * max(1, round(LIMITER_LOOKAHEAD_S * sample_rate)) + 1
    needed = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    # the lowest gain any sample nearby needs, then smoothed over the same window: it moves gradually and, being the
    # mean of minima over a window that holds each peak, never lets a peak through
    floor = -maximum_filter1d(-needed, size=2 * window - 1, mode="nearest")
    smooth = uniform_filter1d(floor, size=window, mode="nearest")
    gain = np.minimum(smooth, needed)
    return (samples * gain[:, None]).astype(np.float32)


# ------------------------------------------------------------------------------------------------- brightness


def _high_shelf(sample_rate: int, pivot_hz: float, decibels: float) -> np.ndarray:
    """One RBJ-cookbook high-shelf biquad (slope 1) as a second-order section [b0 b1 b2 1 a1 a2]."""
    amplitude = 10.0 ** (decibels / 40.0)
    omega = 2 * math.pi * min(pivot_hz, 0.45 * sample_rate) / sample_rate
    cos, alpha = math.cos(omega), math.sin(omega) / 2 * math.sqrt(2.0)
    root = 2 * math.sqrt(amplitude) * alpha
    b = np.array([amplitude * ((amplitude + 1) + (amplitude - 1) * cos + root),
                  -2 * amplitude * ((amplitude - 1) + (amplitude + 1) * cos),
                  amplitude * ((amplitude + 1) + (amplitude - 1) * cos - root)])
    a = np.array([(amplitude + 1) - (amplitude - 1) * cos + root,
                  2 * ((amplitude - 1) - (amplitude + 1) * cos),
                  (amplitude + 1) - (amplitude - 1) * cos - root])
    return np.concatenate([b / a[0], a / a[0]])


def tilt(samples: np.ndarray, sample_rate: int, db_per_octave: float) -> np.ndarray:
    """Tilt the spectrum by `db_per_octave` about 1 kHz (positive: brighter), between the outer shelves
    (125 Hz-8 kHz): a shelf an octave apart each adds `db_per_octave` above its pivot."""
    from scipy.signal import sosfilt

    samples = _as_2d(samples)
    if db_per_octave == 0.0:
        return samples.copy()
    from scipy.signal import sosfreqz

    pivots = [pivot for pivot in TILT_PIVOTS_HZ if pivot < 0.45 * sample_rate]
    sections = np.stack([_high_shelf(sample_rate, pivot, db_per_octave) for pivot in pivots])
    _, at_1k = sosfreqz(sections, worN=[1000.0], fs=sample_rate)
    filtered = sosfilt(sections, samples.astype(np.float64), axis=0)
    return (filtered / abs(at_1k[0])).astype(np.float32)  # 1 kHz keeps its level


# ----------------------------------------------------------------------------------------------- articulation


def _follower(level: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """A one-pole smoother of `level` (frames,) with time constant `seconds`, instant on the way up."""
    from scipy.signal import lfilter

    coefficient = math.exp(-1.0 / max(seconds * sample_rate, 1.0))
    smooth = lfilter([1 - coefficient], [1, -coefficient], level)
    return np.maximum(smooth, level) if seconds <= TRANSIENT_FAST_S else smooth


def articulation(samples: np.ndarray, sample_rate: int, amount: float) -> np.ndarray:
    """Shape the notes' envelopes, as a transient designer does: `amount` > 0 lifts the attacks and lets the
    sustain fall (more staccato, sharper), < 0 softens the attacks and lifts the sustain (more legato). 0 is the
    identity. The gain follows (fast envelope / slow envelope) ** amount, clipped to +-12 dB."""
    samples = _as_2d(samples)
    if amount == 0.0:
        return samples.copy()
    level = np.sqrt(np.mean(samples.astype(np.float64) ** 2, axis=1))
    fast = _follower(level, sample_rate, TRANSIENT_FAST_S)
    slow = _follower(level, sample_rate, TRANSIENT_SLOW_S)
    floor = max(float(np.sqrt(np.mean(level**2))) * 1e-3, 1e-9)
    curve = np.clip((np.maximum(fast, floor) / np.maximum(slow, floor)) ** amount, 0.25, 4.0)
    return (samples * curve[:, None]).astype(np.float32)


# ----------------------------------------------------------------------------------------------------- mode


MODE_DEGREES = {"major": (4, 9, 11), "minor": (3, 8, 10)}  # semitones above the tonic of degrees 3, 6, 7


def change_mode(samples: np.ndarray, sample_rate: int, tonic: int, mode: str, target: str) -> np.ndarray:
    """The parallel-mode rule on audio (experimental): in each short-time spectrum, the energy within a quarter tone
    of degrees 3, 6 and 7 of the key (`tonic` a pitch class, `mode` the key's) moves a semitone down (major to
    minor) or up (minor to major); everything else stays. Phases are advanced at the moved frequency (a phase
    vocoder), and frames are joined by overlap-add."""
    samples = _as_2d(samples)
    if mode == target:
        return samples.copy()
    step = -1 if mode == "major" else 1
    size, hop = MODE_FFT, MODE_FFT // 4
    window = np.hanning(size + 1)[:size].astype(np.float64)
    bins = np.fft.rfftfreq(size, 1.0 / sample_rate)
    pitch = 69 + 12 * np.log2(np.maximum(bins, 1.0) / 440.0)
    audible = (bins >= 60.0) & (bins <= 5000.0)
    nearest = np.round(pitch)
    degree = (nearest - tonic) % 12
    moving = audible & np.isin(degree, MODE_DEGREES[mode]) & (np.abs(pitch - nearest) <= 0.5)
    factor = 2.0 ** (step / 12.0)
    destination = np.clip(np.round(np.arange(bins.size) * factor).astype(int), 0, bins.size - 1)

    frames = len(samples)
    padded = np.pad(samples.astype(np.float64), ((size, size + hop), (0, 0)))
    output = np.zeros_like(padded)
    norm = np.zeros(len(padded))
    phase_advance = 2 * np.pi * hop * np.arange(bins.size) / size
    for channel in range(samples.shape[1]):
        phase = np.zeros(bins.size)
        previous = np.zeros(bins.size)
        for start in range(0, len(padded) - size, hop):
            spectrum = np.fft.rfft(padded[start:start + size, channel] * window)
            magnitude, angle = np.abs(spectrum), np.angle(spectrum)
            # the true frequency of each moving bin (phase vocoder), carried to its destination
            deviation = np.angle(np.exp(1j * (angle - previous - phase_advance)))
            previous = angle
            moved = np.zeros(bins.size, dtype=complex)
            phase[moving] += (phase_advance[moving] + deviation[moving]) * factor
            moved_values = magnitude[moving] * np.exp(1j * phase[moving])
            np.add.at(moved, destination[moving], moved_values)
            kept = np.where(moving, 0.0, spectrum)
            output[start:start + size, channel] += np.fft.irfft(kept + moved, size) * window
            if channel == 0:
                norm[start:start + size] += window**2
    output /= np.maximum(norm, 1e-8)[:, None]
    return output[size:size + frames].astype(np.float32)
