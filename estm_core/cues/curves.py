"""Cue curves: the cue meter's measurements frame by frame, what a WaveNet is conditioned on.

    curves = measure(samples)   # (frames, len(CHANNELS)) float32; frame f describes the samples [f * HOP, (f+1) * HOP)

The same functions as the meter's (spectral.py, dsp.py), on the WaveNet's 16 kHz mono signal, one frame every 16 ms.
Each channel is scaled to about -3..3, so that a network takes it as it is:

    level       RMS of the frame's own samples in dBFS, (dB + 20) / 20: silence (-100 dB) -4, 0 dBFS +1
    onset       the mel spectral flux into the frame (the meter's onset strength: where notes start), dB / 4
    brightness  the spectral centroid, log2(Hz / 1000): 0 at 1 kHz
    register    the pitched part's power-weighted mean MIDI pitch (the meter's register: overtones count), (MIDI - 72) / 12
    C .. B      the pitched part's pitch-class salience (what the meter reads the key and mode from), largest 1

Brightness, register and the pitch classes read 0 in silent frames (below SILENT_DB), where they mean nothing.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import dsp
from ..keys import PITCH_NAMES
from .spectral import (CQT_BINS, CQT_HPSS_KERNEL, CQT_LOWEST_MIDI, ONSET_DELTA_DB, ONSET_PEAK_WINDOWS, pitch_centroid,
                       pitch_class_profile)

SAMPLE_RATE = 16000  # the WaveNet's
HOP = 256  # 16 ms; a multiple of 64, as the constant-Q transform's seven octaves need
N_FFT = 1024
N_MELS = 64
SILENT_DB = -70.0
CUT_FRAMES = -(-(N_FFT // 2 + HOP // 2) // HOP)  # the last frames, whose onset analysis reaches past the audio's end
CHANNELS = ("level", "onset", "brightness", "register", *PITCH_NAMES)
LEVEL, ONSET, BRIGHTNESS, REGISTER = range(4)


@functools.cache
def _mel_basis() -> np.ndarray:
    return dsp.mel_filters(SAMPLE_RATE, N_FFT, N_MELS, area_normalised=False)


def frames_of(samples: int) -> int:
    """How many frames describe `samples` samples (the last one may be partly past the end)."""
    return -(-samples // HOP)


def measure(samples: np.ndarray) -> np.ndarray:
    """(frames_of(len(samples)), len(CHANNELS)) float32 curves of mono audio at SAMPLE_RATE."""
    frames = frames_of(len(samples))
    padded = np.zeros(frames * HOP, np.float32)
    padded[:len(samples)] = samples
    rms = np.sqrt(np.mean(np.square(padded.reshape(frames, HOP), dtype=np.float64), axis=1))
    level_db = 20.0 * np.log10(np.maximum(rms, 1e-5))
    shifted = padded[HOP // 2:]  # centred analyses of this put frame f on sample f * HOP + HOP / 2 of the audio
    magnitude = dsp.stft_magnitude(np.pad(shifted, N_FFT // 2), N_FFT, HOP)[:, :frames]
    mel_db = dsp.power_to_db(_mel_basis() @ magnitude.astype(np.float64) ** 2)
    onset = dsp.spectral_flux(np.column_stack([mel_db.min(axis=1), mel_db]))  # the frame before the first: silence
    total = magnitude.sum(axis=0)
    centroid = np.divide(np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1) @ magnitude, total,
                         out=np.full(frames, 1000.0), where=total > 0)
    cqt = dsp.cqt_magnitude(shifted, SAMPLE_RATE, HOP, CQT_LOWEST_MIDI, CQT_BINS)[:, :frames]
    harmonic_mask, _ = dsp.hpss_masks(cqt, CQT_HPSS_KERNEL)
    pitched = harmonic_mask * cqt
    register = pitch_centroid(pitched**2)
    chroma = pitch_class_profile(pitched)
    chroma = np.divide(chroma, chroma.max(axis=0), out=np.zeros_like(chroma), where=chroma.max(axis=0) > 0)
    sounding = (level_db >= SILENT_DB) & np.isfinite(register)
    curves = np.column_stack([
        (level_db + 20.0) / 20.0,
        onset / 4.0,
        np.where(sounding, np.log2(np.maximum(centroid, 1.0) / 1000.0), 0.0),
        np.where(sounding, (np.nan_to_num(register, nan=72.0) - 72.0) / 12.0, 0.0),
        chroma.T * sounding[:, None],
    ])
    return np.clip(curves, -4.0, 4.0).astype(np.float32)


def measure_coded(samples: np.ndarray) -> np.ndarray:
    """measure() after the WaveNet's 8-bit mu-law coding, as the training audio's curves were measured (its cache is
    mu-law): what a generation asks for is then what such a model learned; the coding's noise hides the softest
    onsets."""
    import torch

    from ..features import mu_law_decode, mu_law_encode

    return measure(mu_law_decode(mu_law_encode(torch.from_numpy(np.ascontiguousarray(samples)))).numpy())


def summary(curves: np.ndarray) -> dict[str, float]:
    """What a listener would say the curves ask for, in units: the median level (dBFS) and register (MIDI) of the
    sounding frames, and the onsets per second (the meter's peak picking on the onset curve, before the last
    CUT_FRAMES: where music is cut mid-note, the cut's click reads as an attack there). NaN where nothing sounds."""
    sounding = curves[:, LEVEL] * 20.0 - 20.0 >= SILENT_DB
    counted = max(len(curves) - CUT_FRAMES, 1)
    onsets = dsp.peak_pick(curves[:, ONSET] * 4.0, delta=ONSET_DELTA_DB, **ONSET_PEAK_WINDOWS)
    if not sounding.any():
        return {"level_db": float("nan"), "register_midi": float("nan"), "onset_rate": 0.0}
    return {"level_db": float(np.median(curves[sounding, LEVEL])) * 20.0 - 20.0,
            "register_midi": float(np.median(curves[sounding, REGISTER])) * 12.0 + 72.0,
            "onset_rate": int((onsets < counted).sum()) * SAMPLE_RATE / (HOP * counted)}
