"""The cue meter: any audio -> the musical cues listeners read as emotion (spec/EMOTION_CUES.md), with units.

    cues = analyze("song.mp3")                  # or analyze(samples, sample_rate)
    cues.tempo_bpm, cues.mode, cues.to_dict()

Reading (any length, bounded memory): the file is decoded in blocks of BLOCK_SECONDS at its own rate and channels.
Loudness is measured there, on every channel (BS.1770 sums the channels' powers: a mono mixdown would read a
dual-mono file 3 dB quieter than it is). Each block is then mixed to mono and resampled without seams to 22 050 Hz
for everything else. The spectral frames run across blocks as if the file were one array (a streaming STFT); only
the constant-Q transform starts afresh in each block (it loses a fraction of a second of energy at each seam). All
of the file is analysed; what is kept for the whole of it is small: sums per frequency bin, 10 loudness values and
2 x 43 envelope values per second of audio (about 2.5 MB an hour).

What is measured where: loudness here (estm_core/loudness.py), everything read from the mono signal in spectral.py.
scipy, soxr and pyloudnorm are imported inside the functions that use them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import audio, audio_checks
from ..errors import AudioError
from ..loudness import LoudnessMeter
from ..workers import in_order
from .spectral import SAMPLE_RATE, LongTermSpectrum, Spectra, Spectrum

BLOCK_SECONDS = 60.0  # decoded and analysed at a time
MIN_SECONDS = audio_checks.MIN_SECONDS  # shorter files are refused (audio_checks.check_sound: every command's rule)
SILENCE_DBFS = audio_checks.SILENCE_DBFS  # a file whose peak, DC removed, is below this is silent, and refused
MIN_ONSET_RATE = 0.5  # onsets per second below which the meter cannot read a tempo (steady noise gives 0.1)


@dataclass(frozen=True)
class Cues:
    """What the cue meter measures in one piece of audio. NaN (or None for the key) marks a cue that the audio does
    not let one measure, as each field says."""

    duration_s: float  # seconds of audio
    tempo_bpm: float  # beats per minute: librosa's beat-tracking tempo estimate (the mean onset autocorrelation
    #   with its log-normal prior around 120 bpm), refined between autocorrelation lags; NaN with under 4 onsets
    onset_rate: float  # onsets per second ("notes per second"): librosa's peak picker on the mel spectral flux, a
    #   peak counting where it stands 1 dB above its surroundings (ONSET_DELTA_DB)
    loudness_lufs: float  # integrated loudness, BS.1770-4 (K-weighting, 400 ms blocks, gates at -70 LUFS and
    #   -10 LU), on the file's own channels at its own rate; NaN when no block is above -70 LUFS
    dynamic_range_db: float  # loudness range, EBU Tech 3342: 95th minus 10th percentile of the 3 s short-term
    #   loudness every 100 ms, gated at -70 LUFS and 20 LU below their mean; in LU (= dB); NaN under 3 s
    centroid_hz: float  # spectral centroid of each 93 ms frame, averaged with the frames' energies as weights
    tilt_db_per_octave: float  # slope of the long-term power spectral density in dB against log2(frequency),
    #   least squares over 19 third-octave bands from 100 Hz to 8 kHz: white noise 0, pink noise -3
    percussive_ratio: float  # percussive energy / (harmonic + percussive) energy of a median-filter HPSS
    #   (Fitzgerald) of the mel spectrogram: 0 sustained tones, 1 clicks and noise bursts; its 0.7 s time median
    #   also counts isolated notes shorter than about 0.35 s as percussive, so staccato playing raises it too
    onset_decay: float  # articulation: median over onsets of (mean RMS level over the second half of the gap to
    #   the next onset) / (the onset's peak level), in 23 ms frames; about 1 legato, 0 staccato (a note sounding
    #   for 3/4 of the gap gives about 0.5); NaN with no two onsets at least 93 ms apart
    pitch_centroid_midi: float  # register: mean MIDI pitch (60 = middle C) of the harmonic part's constant-Q
    #   spectrum (C1-B7), weighted by power; overtones count too, so it sits above the notes' fundamentals
    tonic: str | None  # the key's tonic, a pitch-class name (C, C#, D, Eb, ...), None when nothing is pitched
    mode: str | None  # "major" or "minor", None with the tonic
    key_confidence: float  # Pearson correlation of the pitch-class profile with the chosen key's Aarden-Essen
    #   profile (keys.find_key), NaN with the tonic. Noise reads 0.4-0.5, tonal music mostly 0.6-0.85; it tells tonal
    #   from atonal more than a right key from a wrong one (the relative and the dominant key correlate nearly as well)
    spectra: Spectra | None = field(default=None, repr=False, compare=False)  # not a cue: what plan predicts from

    def to_dict(self) -> dict[str, float | str | None]:
        """The cues as plain Python floats and strings (NaN stays NaN; the CLI writes it as null / empty)."""
        return {name: (float(value) if isinstance(value, (float, np.floating)) else value)
                for name in FIELDS for value in [getattr(self, name)]}


FIELDS = tuple(item.name for item in fields(Cues) if item.name != "spectra")


def analyze(path_or_samples, sample_rate: int | None = None) -> Cues:
    """Measure the cues of a file (any format `audio` decodes) or of samples (frames,) or (frames, channels) at
    `sample_rate`. Raises AudioError (one line: the file and the cause) for unusable, silent (peak below
    SILENCE_DBFS, kind "silent") or too short (under MIN_SECONDS) audio."""
    if isinstance(path_or_samples, (str, os.PathLike)):
        with file_blocks(path_or_samples) as blocks:
            return measure(Path(path_or_samples), blocks.sample_rate, blocks.channels, blocks)
    if sample_rate is None:
        raise ValueError("analyze(samples) needs the sample_rate")
    rate, channels, blocks = array_blocks(path_or_samples, int(sample_rate))
    return measure("<samples>", rate, channels, blocks)


def analyze_files(paths: list, jobs: int = 1) -> Iterator[tuple[str, Cues | Exception]]:
    """(path, Cues, or the exception that stopped it: an AudioError, or any other, so that one file's failure never
    ends the others) for each path, in order; with jobs > 1 in that many processes, never more than 2 * jobs files
    ahead (workers.in_order)."""
    for path, result in zip(paths, in_order(_analyze_or_error, paths, jobs)):
        yield str(path), result


def _analyze_or_error(path) -> Cues | Exception:
    try:
        return analyze(path)
    except Exception as error:  # returned, not raised: the caller lists it as this file's failure
        return error


def tempo_ratio(content: Cues, target: Cues) -> float:
    """How much faster the target is, in notes (onsets) per second; NaN where the meter hears too few onsets in
    either to read a tempo (MIN_ONSET_RATE). Onsets follow the notes played; a beat tracker does not: on the scores
    corpus, correlation 0.87 against 0.38 with the true ratio; on the 26 Wesnoth tracks with 0.5 onsets/s or more, each
    stretched x1.25 and x0.8, the onset rate moved the stretch's way 51 times in 52, librosa's beat estimate 26."""
    rates = (content.onset_rate, target.onset_rate)
    if not all(rate is not None and math.isfinite(rate) for rate in rates) or min(rates) < MIN_ONSET_RATE:
        return math.nan
    return target.onset_rate / content.onset_rate


# --------------------------------------------------------------------------------------------------- reading


def file_blocks(path) -> audio.Stream:
    """The file's one decode pass, in blocks of (frames, channels) float32 at its own rate, each BLOCK_SECONDS long
    (the last shorter): its `sample_rate` and `channels` are known once it is open, before any block is read."""
    return audio.Stream(path, block_seconds=BLOCK_SECONDS, mono=False)


def array_blocks(samples, rate: int) -> tuple[int, int, Iterator[np.ndarray]]:
    """(rate, channels, blocks) of (frames,) or (frames, channels) samples at `rate`, cut as file_blocks cuts a file
    and checked as a decoded file is."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim not in (1, 2) or rate <= 0:
        raise ValueError("samples must be (frames,) or (frames, channels), at a positive sample_rate")
    samples = samples.reshape(len(samples), -1)
    if len(samples) == 0:
        raise AudioError("<samples>", "empty", "no audio frames")
    if not np.isfinite(samples).all():
        raise AudioError("<samples>", "nonfinite", "contains NaN or infinite samples")
    block = round(BLOCK_SECONDS * rate)
    return rate, samples.shape[1], (samples[start:start + block] for start in range(0, len(samples), block))


# ------------------------------------------------------------------------------------------------- measuring


def measure(name, rate: int, channels: int, blocks: Iterator[np.ndarray]) -> Cues:
    """The cues of audio given as blocks of (frames, channels) float32 at `rate` (file_blocks, array_blocks, or any
    stream of them: the cue method measures the content on the blocks it keeps for its edit, so that the file is
    decoded once). `name` names the audio in an AudioError (silent or too short)."""
    import soxr

    loudness = LoudnessMeter(rate, channels)
    spectrum = Spectrum(BLOCK_SECONDS)
    long_term = LongTermSpectrum(rate)
    resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32",
                                                                     quality="HQ")
    level = audio_checks.Level(rate)
    offset = None  # the first block's DC offset (Level.dc): the meters start from it, as a transfer removes it
    for block in blocks:
        level.push(block)
        if offset is None:
            first = audio_checks.Level()
            first.push(block)
            offset = first.dc
            loudness.settle(offset)
        loudness.push(block)
        mono = audio.to_mono(block)
        if offset.any():
            mono = mono - np.float32(offset.mean())
        long_term.push(mono)
        spectrum.push(mono if resampler is None else resampler.resample_chunk(mono))
    if resampler is not None:
        spectrum.push(resampler.resample_chunk(np.zeros(0, np.float32), last=True))

    audio_checks.check_sound(name, level)
    duration = level.frames / rate

    lufs, loudness_range = loudness.finish()
    measured = spectrum.finish()
    return Cues(duration_s=duration, loudness_lufs=lufs, dynamic_range_db=loudness_range, **measured,
                spectra=Spectra(long_term.mean(), rate, spectrum.pitch_power))


