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

The spectra, onsets and tempo are librosa's methods written in numpy (estm_core/dsp.py), so that measuring does not
import librosa; scipy and pyloudnorm are imported inside the functions that use them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .. import audio, dsp
from ..keys import PITCH_NAMES, find_key
from ..workers import process_pool

SAMPLE_RATE = 22050  # everything but loudness is measured on a mono 22 050 Hz signal
N_FFT = 2048  # 93 ms analysis windows
HOP = 512  # 23 ms between frames: 43 frames a second
N_MELS = 128
BLOCK_SECONDS = 60.0  # decoded and analysed at a time
MIN_SECONDS = audio.MIN_SECONDS  # shorter files are refused (audio.check_sound: the rule of every command)
SILENCE_DBFS = audio.SILENCE_DBFS  # a file whose peak, DC removed, is below this is silent, and refused

TILT_BAND_EDGES_HZ = 100.0 * 2.0 ** (np.arange(20) / 3)  # 19 third-octave bands, 100 Hz to 8 kHz
TILT_FLOOR_DB = 100.0  # bands further below the strongest one count as this far below it

MEL_HPSS_KERNEL = (31, 15)  # percussive share: median over 31 frames (0.7 s) / over 15 of the 128 mel bands
CQT_LOWEST_MIDI = 24  # C1; 84 semitone bins up to B7 (3 951 Hz), tuned to A = 440 Hz
CQT_BINS = 84
CQT_HOP = 1024  # 46 ms: enough for the pitch content
# The pitched part: librosa's HPSS soft masks with medians over 3 frames (140 ms) and over 5 semitones. A longer time
# median would call every note shorter than half its length percussive, and staccato playing would lose its pitches;
# this one drops only single-frame transients. Keys right on 416 scores-corpus renderings: 84 %; with (17, 17) 76 %.
CQT_HPSS_KERNEL = (3, 5)
SALIENCE_WEIGHTS = (1.0, 0.6, 0.36, 0.216)  # a pitch's salience: its own bin and its 2nd, 3rd and 4th harmonics

# An onset is a peak of the spectral flux (mean rise over the mel bands, in dB) this far above its mean over +-100 ms.
# Steady white noise gives about one onset in 10 s; on 416 renderings of the scores corpus, onset_rate / the notes
# per second they were played at has median 0.98 and correlation 0.94 (librosa's default, 0.86 and 0.90).
ONSET_DELTA_DB = 1.0
# librosa.onset.onset_detect's peak-picking windows at 43 frames a second: a peak is the largest from 1 frame before
# (30 ms) to itself, compared with the mean from 4 frames before (100 ms) to 4 after, and 1 frame (30 ms) from the last
ONSET_PEAK_WINDOWS = dict(pre_max=1, post_max=1, pre_avg=4, post_avg=5, wait=1)
TEMPOGRAM_FRAMES = 384  # librosa's default autocorrelation window, 8.9 s
TEMPOGRAM_CHUNK = 4096  # tempogram frames computed at a time
MIN_ONSETS_FOR_TEMPO = 4

DECAY_PEAK_FRAMES = (-1, 3)  # an onset's peak level: the loudest 23 ms frame from 1 frame before to 3 after it
DECAY_MIN_FRAMES = 4  # onsets closer than this (93 ms) to the next one are not measured

LOUDNESS_STEP_SECONDS = 0.1  # BS.1770's gating blocks (400 ms) overlap by 75 %: they are made of 100 ms steps
GATING_BLOCK_STEPS = 4
SHORT_TERM_STEPS = 30  # 3 s windows, every 100 ms: EBU Tech 3342's short-term loudness
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0  # BS.1770-4 integrated loudness
RANGE_RELATIVE_GATE_LU = -20.0  # EBU Tech 3342 loudness range
RANGE_PERCENTILES = (10.0, 95.0)
CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770 (L, R, C, Ls, Rs), as pyloudnorm; further channels weigh 1
LOUDNESS_CHUNK = 1 << 17  # frames filtered at a time


FREQUENCIES = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)  # the STFT's bins
PITCH_HZ = 440.0 * 2.0 ** ((CQT_LOWEST_MIDI + np.arange(CQT_BINS) - 69) / 12.0)  # the constant-Q bins


@dataclass(frozen=True)
class Spectra:
    """The long-term spectra that brightness (tilt) and register (pitch centroid) are read from, kept with the cues
    so that a transfer can predict how its edits move both: an octave shift moves the tilt (partials leave or enter
    the 100 Hz-8 kHz bands, some from above the meter's 11 kHz), and a tilt EQ moves the pitch centroid (it weighs
    the high partials)."""

    power_density: np.ndarray  # mean power per bin of the mono mix at the file's own rate, up to its Nyquist
    sample_rate: int  # that rate
    pitch_power: np.ndarray  # (CQT_BINS,) the pitched part's power in each semitone from CQT_LOWEST_MIDI

    def changes(self, semitones: int, power_gain: Callable[[np.ndarray], np.ndarray] | None = None
                ) -> tuple[float, float]:
        """How much the tilt (dB per octave) and the pitch centroid (semitones) the meter reads would change after a
        pitch shift of `semitones` (whole) and then a filter of power response `power_gain(hz)`."""
        own = np.linspace(0.0, self.sample_rate / 2, len(self.power_density))
        # read on the meter's bins; nothing above the file's Nyquist (a low-rate file: the meter's floor there)
        before = np.interp(FREQUENCIES, own, self.power_density, right=0.0)
        after = np.interp(FREQUENCIES / 2.0 ** (semitones / 12.0), own, self.power_density, right=0.0)
        pitch = np.zeros(CQT_BINS)  # the semitones move; those pushed past either end are lost
        pitch[max(semitones, 0): CQT_BINS + min(semitones, 0)] = \
            self.pitch_power[max(-semitones, 0): CQT_BINS - max(semitones, 0)]
        if power_gain is not None:
            after, pitch = after * power_gain(FREQUENCIES), pitch * power_gain(PITCH_HZ)
        return (_tilt(after, FREQUENCIES) - _tilt(before, FREQUENCIES),
                _pitch_centroid(pitch) - _pitch_centroid(self.pitch_power))


class _LongTermSpectrum:
    """Spectra.power_density, pushed in pieces: Hann frames of about N_FFT / SAMPLE_RATE (93 ms), end to end."""

    def __init__(self, rate: int):
        self.size = 1 << round(math.log2(N_FFT * rate / SAMPLE_RATE))
        self.window = dsp.hann(self.size).astype(np.float32)
        self.total = np.zeros(self.size // 2 + 1)
        self.count = 0
        self.rest = np.zeros(0, np.float32)

    def push(self, mono: np.ndarray) -> None:
        samples = np.concatenate([self.rest, mono])
        whole = len(samples) // self.size * self.size
        frames = samples[:whole].reshape(-1, self.size)
        self.total += (np.abs(np.fft.rfft(frames * self.window, axis=1)) ** 2).sum(axis=0)
        self.count += len(frames)
        self.rest = samples[whole:]

    def mean(self) -> np.ndarray:
        return self.total / max(self.count, 1)


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
    `sample_rate`. Raises audio.AudioError (one line: the file and the cause) for unusable, silent (peak below
    SILENCE_DBFS, kind "silent") or too short (under MIN_SECONDS) audio."""
    if isinstance(path_or_samples, (str, os.PathLike)):
        name = Path(path_or_samples)
        rate, channels, blocks = _file_blocks(name)
    else:
        if sample_rate is None:
            raise ValueError("analyze(samples) needs the sample_rate")
        name = "<samples>"
        rate, channels, blocks = _array_blocks(path_or_samples, int(sample_rate))
    return _measure(name, rate, channels, blocks)


def analyze_files(paths: list, jobs: int = 1) -> Iterator[tuple[str, Cues | Exception]]:
    """(path, Cues, or the exception that stopped it: an AudioError, or any other, so that one file's failure never
    ends the others) for each path, in order; with jobs > 1 in that many processes, never more than 2 * jobs files
    ahead."""
    if jobs <= 1 or len(paths) <= 1:
        for path in paths:
            yield str(path), _analyze_or_error(path)
        return
    with process_pool(jobs) as pool:
        pending = [(path, pool.submit(_analyze_or_error, path)) for path in paths[: 2 * jobs]]
        following = 2 * jobs
        try:
            while pending:
                path, future = pending.pop(0)
                if following < len(paths):
                    pending.append((paths[following], pool.submit(_analyze_or_error, paths[following])))
                    following += 1
                yield str(path), future.result()
        finally:
            for _, future in pending:
                future.cancel()


def _analyze_or_error(path) -> Cues | Exception:
    try:
        return analyze(path)
    except Exception as error:  # returned, not raised: the caller lists it as this file's failure
        return error


# --------------------------------------------------------------------------------------------------- reading


def _file_blocks(path: Path) -> tuple[int, int, Iterator[np.ndarray]]:
    """(rate, channels, blocks of (frames, channels) float32 at the file's own rate), each BLOCK_SECONDS long."""
    header = audio.probe(path)
    rate, block = header.sample_rate, round(BLOCK_SECONDS * header.sample_rate)

    def blocks() -> Iterator[np.ndarray]:
        index = 0
        while True:
            try:
                samples, _ = audio.load(path, offset=index * block / rate, duration=block / rate)
            except audio.AudioError as error:
                if error.kind == "empty" and index > 0:  # the file ended on a block boundary
                    return
                raise
            yield samples.reshape(len(samples), -1)
            if len(samples) < block:
                return
            index += 1

    return rate, header.channels, blocks()


def _array_blocks(samples, rate: int) -> tuple[int, int, Iterator[np.ndarray]]:
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim not in (1, 2) or rate <= 0:
        raise ValueError("samples must be (frames,) or (frames, channels), at a positive sample_rate")
    samples = samples.reshape(len(samples), -1)
    if len(samples) == 0:
        raise audio.AudioError("<samples>", "empty", "no audio frames")
    if not np.isfinite(samples).all():
        raise audio.AudioError("<samples>", "nonfinite", "contains NaN or infinite samples")
    block = round(BLOCK_SECONDS * rate)
    return rate, samples.shape[1], (samples[start:start + block] for start in range(0, len(samples), block))


# ------------------------------------------------------------------------------------------------- measuring


def _measure(name, rate: int, channels: int, blocks: Iterator[np.ndarray]) -> Cues:
    import soxr

    loudness = _Loudness(rate, channels)
    spectrum = _Spectrum()
    long_term = _LongTermSpectrum(rate)
    resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32",
                                                                     quality="HQ")
    level = audio.Level(rate)
    offset = None  # the first block's DC offset (audio.Level.dc): the meters start from it, as a transfer removes it
    for block in blocks:
        level.push(block)
        if offset is None:
            first = audio.Level()
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

    audio.check_sound(name, level)
    duration = level.frames / rate

    lufs, loudness_range = loudness.finish()
    measured = spectrum.finish()
    return Cues(duration_s=duration, loudness_lufs=lufs, dynamic_range_db=loudness_range, **measured,
                spectra=Spectra(long_term.mean(), rate, spectrum.pitch_power))


def loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (BS.1770-4) of (frames,) or (frames, channels) samples, any number of channels, in LUFS;
    NaN where no block is above the gate or the signal is shorter than one 400 ms block."""
    samples = np.asarray(samples)
    samples = samples[:, None] if samples.ndim == 1 else samples
    meter = _Loudness(sample_rate, samples.shape[1])
    meter.push(samples)
    return float(meter.finish()[0])


class _Loudness:
    """BS.1770-4 integrated loudness and EBU Tech 3342 loudness range, block by block.

    The K-weighting filters are pyloudnorm's (its IIRfilter, with BS.1770's shelf and high-pass), run with their
    state carried across blocks; the gating is pyloudnorm's, on 100 ms steps so that nothing but 10 numbers a second
    is kept. On a whole signal it gives what pyloudnorm.Meter.integrated_loudness gives (tests check it)."""

    def __init__(self, rate: int, channels: int):
        from pyloudnorm.iirfilter import IIRfilter

        shelf = IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, rate, "high_shelf")
        high_pass = IIRfilter(0.0, 0.5, 38.0, rate, "high_pass")
        self.sos = np.array([np.concatenate([stage.passband_gain * stage.b, stage.a]) for stage in (shelf, high_pass)])
        self.state = np.zeros((len(self.sos), 2, channels))
        self.weights = np.array([CHANNEL_WEIGHTS[c] if c < len(CHANNEL_WEIGHTS) else 1.0 for c in range(channels)])
        self.rate = rate
        self.total = 0  # frames seen
        self.steps: list[float] = []  # channel-weighted sum of squares of each complete 100 ms step
        self.partial = 0.0  # ... of the step under way

    def _boundary(self, step: int) -> int:
        return int(step * LOUDNESS_STEP_SECONDS * self.rate)  # where pyloudnorm's blocks start

    def settle(self, offset: np.ndarray) -> None:
        """Start the filters as if each channel had always sat at `offset`, not at silence: a DC offset (which
        K-weighting removes) would otherwise ring as a loud step through the first block. Before the first push."""
        import scipy.signal

        self.state = scipy.signal.sosfilt_zi(self.sos)[:, :, None] * np.asarray(offset, np.float64)

    def push(self, block: np.ndarray) -> None:
        for start in range(0, len(block), LOUDNESS_CHUNK):  # bounds the float64 copies of a long multichannel block
            self._push(block[start:start + LOUDNESS_CHUNK])

    def _push(self, block: np.ndarray) -> None:
        import scipy.signal

        filtered, self.state = scipy.signal.sosfilt(self.sos, block.astype(np.float64), axis=0, zi=self.state)
        cumulative = np.concatenate([[0.0], np.cumsum(np.square(filtered) @ self.weights)])
        start, end = self.total, self.total + len(block)
        boundaries = []
        step = len(self.steps) + 1
        while self._boundary(step) <= end:
            boundaries.append(self._boundary(step) - start)
            step += 1
        previous = 0
        for boundary in boundaries:
            self.steps.append(self.partial + cumulative[boundary] - cumulative[previous])
            self.partial, previous = 0.0, boundary
        self.partial += cumulative[-1] - cumulative[previous]
        self.total = end

    def finish(self) -> tuple[float, float]:
        """(integrated loudness in LUFS, loudness range in LU); NaN where the signal does not allow them."""
        seconds = self.total / self.rate
        steps = np.array(self.steps + [self.partial, 0.0, 0.0, 0.0])  # the last block may reach past the end
        block_count = int(round((seconds - GATING_BLOCK_STEPS * LOUDNESS_STEP_SECONDS) / LOUDNESS_STEP_SECONDS)) + 1
        integrated = math.nan
        if block_count > 0:
            windows = np.lib.stride_tricks.sliding_window_view(steps, GATING_BLOCK_STEPS)[:block_count]
            power = windows.sum(axis=1) / (GATING_BLOCK_STEPS * LOUDNESS_STEP_SECONDS * self.rate)
            integrated = _gated_mean_loudness(power, RELATIVE_GATE_LU)

        loudness_range = math.nan
        complete = np.array(self.steps)
        if len(complete) >= SHORT_TERM_STEPS:
            windows = np.lib.stride_tricks.sliding_window_view(complete, SHORT_TERM_STEPS)
            short_term = _lufs(windows.sum(axis=1) / (SHORT_TERM_STEPS * LOUDNESS_STEP_SECONDS * self.rate))
            loud = short_term[short_term >= ABSOLUTE_GATE_LUFS]
            if len(loud):
                gate = _lufs(np.mean(_power(loud))) + RANGE_RELATIVE_GATE_LU
                kept = loud[loud >= gate]
                low, high = np.percentile(kept, RANGE_PERCENTILES)
                loudness_range = float(high - low)
        return integrated, loudness_range


def _lufs(power):
    return -0.691 + 10.0 * np.log10(np.maximum(power, 1e-300))


def _power(lufs):
    return 10.0 ** ((lufs + 0.691) / 10.0)


def _gated_mean_loudness(power: np.ndarray, relative_gate: float) -> float:
    """BS.1770-4's two-stage gate over block powers: the loudness of the mean power of the blocks above -70 LUFS
    and above (that mean's loudness + relative_gate)."""
    loudness = _lufs(power)
    above = loudness >= ABSOLUTE_GATE_LUFS
    if not above.any():
        return math.nan
    gate = _lufs(power[above].mean()) + relative_gate
    kept = above & (loudness > gate)
    return float(_lufs(power[kept].mean()))


class _Spectrum:
    """Everything measured on the mono 22 050 Hz signal, pushed in pieces of any length.

    Frame t of the STFT is centred on sample t * HOP (the first is zero-padded, as librosa's centred STFT), however
    the signal was cut; frames are analysed once BLOCK_SECONDS of them are ready, and at `finish`."""

    def __init__(self):
        self.mel_basis = dsp.mel_filters(SAMPLE_RATE, N_FFT, N_MELS, area_normalised=False)  # sums power
        self.buffer = np.zeros(N_FFT // 2, np.float32)  # from sample next_frame * HOP - N_FFT / 2 on
        self.pieces: list[np.ndarray] = []
        self.waiting = 0  # samples in pieces
        self.total = 0  # samples pushed
        self.next_frame = 0
        self.previous_mel_db: np.ndarray | None = None
        self.onset_envelope: list[np.ndarray] = []
        self.rms: list[np.ndarray] = []
        self.energy = self.weighted_centroid = 0.0
        self.power_spectrum = np.zeros(N_FFT // 2 + 1)  # summed over frames
        self.frame_count = 0
        self.percussive = self.harmonic = 0.0
        self.pitch_power = np.zeros(CQT_BINS)  # harmonic part's power per semitone, summed over frames
        self.pitch_magnitude = np.zeros(CQT_BINS)

    def push(self, samples: np.ndarray) -> None:
        block = round(BLOCK_SECONDS * SAMPLE_RATE)
        while len(samples):
            piece, samples = samples[: block - self.waiting], samples[block - self.waiting:]
            self.pieces.append(piece)
            self.waiting += len(piece)
            self.total += len(piece)
            if self.waiting >= block:
                self._advance(final=False)

    def _advance(self, final: bool) -> None:
        buffer = np.concatenate([self.buffer, *self.pieces])
        self.pieces, self.waiting = [], 0
        if final:
            buffer = np.concatenate([buffer, np.zeros(N_FFT // 2, np.float32)])
            last = self.total // HOP
        else:
            last = (self.total - N_FFT // 2) // HOP
        count = last - self.next_frame + 1
        if count <= 0:
            self.buffer = buffer
            return
        own = slice(N_FFT // 2, N_FFT // 2 + count * HOP)  # the samples [next_frame, last + 1) * HOP
        centred = slice(N_FFT // 2 - HOP // 2, N_FFT // 2 - HOP // 2 + count * HOP)  # HOP samples around each frame
        self._analyse(buffer[: (count - 1) * HOP + N_FFT], buffer[centred], buffer[own], count)
        self.next_frame = last + 1
        self.buffer = buffer[count * HOP:]

    def _analyse(self, windowed: np.ndarray, centred: np.ndarray, own: np.ndarray, count: int) -> None:
        magnitude = dsp.stft_magnitude(windowed, N_FFT, HOP)
        power = magnitude**2
        energy = power.sum(axis=0)
        magnitude_sum = magnitude.sum(axis=0)
        centroid = np.divide(FREQUENCIES @ magnitude, magnitude_sum, out=np.zeros(count, np.float32),
                             where=magnitude_sum > 0)
        self.weighted_centroid += float(centroid @ energy)
        self.energy += float(energy.sum())
        self.power_spectrum += power.sum(axis=1)
        self.frame_count += count

        mel = self.mel_basis @ power
        mel_db = dsp.power_to_db(mel)
        # the frame before the first is silence (a note at the very start is an onset)
        previous = mel_db.min(axis=1) if self.previous_mel_db is None else self.previous_mel_db
        flux = dsp.spectral_flux(np.column_stack([previous, mel_db]))
        self.onset_envelope.append(flux.astype(np.float32))
        self.previous_mel_db = mel_db[:, -1]
        self.rms.append(np.sqrt(np.mean(np.square(centred.reshape(count, HOP)), axis=1)))

        harmonic_mask, percussive_mask = _hpss_masks(np.sqrt(mel), MEL_HPSS_KERNEL)
        self.harmonic += float((harmonic_mask**2 * mel).sum())
        self.percussive += float((percussive_mask**2 * mel).sum())

        cqt = dsp.cqt_magnitude(own, SAMPLE_RATE, CQT_HOP, CQT_LOWEST_MIDI, CQT_BINS)
        harmonic_mask, _ = _hpss_masks(cqt, CQT_HPSS_KERNEL)
        harmonic_power = (harmonic_mask * cqt) ** 2
        self.pitch_power += harmonic_power.sum(axis=1)
        self.pitch_magnitude += np.sqrt(harmonic_power).sum(axis=1)

    def finish(self) -> dict:
        """The fields of Cues that come from the mono signal."""
        self._advance(final=True)
        envelope = np.concatenate(self.onset_envelope)
        # the last frames' windows reach into the zero padding: a file that stops is not an onset
        envelope[max((self.total - N_FFT // 2) // HOP + 1, 1):] = 0.0
        rms = np.concatenate(self.rms)
        onsets = _onsets(envelope)
        tonic, mode, confidence = None, None, math.nan
        if self.pitch_magnitude.sum() > 0:
            tonic_index, mode, confidence = find_key(_pitch_class_profile(self.pitch_magnitude))
            tonic = PITCH_NAMES[tonic_index]
        return dict(
            tempo_bpm=_tempo(envelope) if len(onsets) >= MIN_ONSETS_FOR_TEMPO else math.nan,
            onset_rate=len(onsets) / (self.total / SAMPLE_RATE),
            centroid_hz=self.weighted_centroid / self.energy if self.energy > 0 else math.nan,
            tilt_db_per_octave=_tilt(self.power_spectrum / max(self.frame_count, 1), FREQUENCIES),
            percussive_ratio=(self.percussive / (self.percussive + self.harmonic)
                              if self.percussive + self.harmonic > 0 else math.nan),
            onset_decay=_onset_decay(onsets, rms),
            pitch_centroid_midi=_pitch_centroid(self.pitch_power),
            tonic=tonic,
            mode=mode,
            key_confidence=float(confidence),
        )


def _hpss_masks(magnitude: np.ndarray, kernel: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive soft masks of a (bins, frames) magnitude, as librosa.decompose.hpss(mask=True) makes
    them (Fitzgerald's median filtering: over `kernel[0]` frames for the harmonic part, `kernel[1]` bins for the
    percussive; Wiener-like masks of power 2, 0.5 each where both parts are zero)."""
    from scipy.ndimage import median_filter

    harmonic = median_filter(magnitude, size=(1, kernel[0]), mode="reflect")
    percussive = median_filter(magnitude, size=(kernel[1], 1), mode="reflect")
    largest = np.maximum(harmonic, percussive)
    silent = largest < np.finfo(magnitude.dtype).tiny
    largest[silent] = 1
    harmonic_power, percussive_power = (harmonic / largest) ** 2, (percussive / largest) ** 2
    total = harmonic_power + percussive_power
    total[silent] = 1
    return tuple(np.where(silent, 0.5, power / total).astype(magnitude.dtype)
                 for power in (harmonic_power, percussive_power))


def _onsets(envelope: np.ndarray) -> np.ndarray:
    """Frames of the onsets librosa's onset_detect finds in the onset-strength envelope, with an absolute threshold
    (ONSET_DELTA_DB) in place of librosa's default, a fraction of the envelope's maximum: that one finds onsets in
    any steady noise, and fewer in music whose loudest attack stands far above the rest."""
    if not np.any(envelope > 0):
        return np.zeros(0, dtype=int)
    return dsp.peak_pick(envelope, delta=ONSET_DELTA_DB, **ONSET_PEAK_WINDOWS)


def _tempo(envelope: np.ndarray) -> float:
    """librosa's tempo estimate (the one beat_track starts from) on the mean tempogram of the whole envelope, built
    TEMPOGRAM_CHUNK frames at a time, and refined by a parabola through the autocorrelation around its peak (lags
    are whole frames: at 120 bpm they are 3 bpm apart)."""
    half = TEMPOGRAM_FRAMES // 2
    padded = np.pad(envelope, half, mode="linear_ramp", end_values=0)  # as librosa's centred tempogram
    total = np.zeros(TEMPOGRAM_FRAMES)
    for start in range(0, len(envelope), TEMPOGRAM_CHUNK):
        piece = padded[start: start + TEMPOGRAM_CHUNK + TEMPOGRAM_FRAMES - 1]
        total += dsp.tempogram_sum(piece, TEMPOGRAM_FRAMES)
    mean = total / len(envelope)
    lag = dsp.tempo_lag(mean, SAMPLE_RATE / HOP)
    if 1 < lag < TEMPOGRAM_FRAMES - 1:
        before, peak, after = mean[lag - 1: lag + 2]
        curvature = before - 2 * peak + after
        if curvature < 0 and peak >= max(before, after):
            lag += float(np.clip(0.5 * (before - after) / curvature, -0.5, 0.5))
    return 60.0 * SAMPLE_RATE / (HOP * lag)


def _onset_decay(onsets: np.ndarray, rms: np.ndarray) -> float:
    """Median over onsets of the mean RMS over the second half of the gap to the next onset (its last frame left out:
    the next attack may start in it) over the onset's peak RMS; NaN without a gap of DECAY_MIN_FRAMES or more."""
    ratios = []
    for onset, following in zip(onsets[:-1], onsets[1:]):
        gap = following - onset
        if gap < DECAY_MIN_FRAMES:
            continue
        peak = rms[max(onset + DECAY_PEAK_FRAMES[0], 0): onset + DECAY_PEAK_FRAMES[1] + 1].max()
        if peak > 0:
            ratios.append(min(rms[onset + gap // 2: following - 1].mean() / peak, 1.0))
    return float(np.median(ratios)) if ratios else math.nan


def _tilt(power_density: np.ndarray, frequencies: np.ndarray) -> float:
    """Least-squares slope, dB per octave, of the mean power density in third-octave bands against log2(f)."""
    edges = TILT_BAND_EDGES_HZ
    bands = np.array([power_density[(frequencies >= low) & (frequencies < high)].mean()
                      for low, high in zip(edges[:-1], edges[1:])])
    if bands.max() <= 0:
        return math.nan
    levels = 10 * np.log10(np.maximum(bands, bands.max() * 10 ** (-TILT_FLOOR_DB / 10)))
    octaves = np.log2(np.sqrt(edges[:-1] * edges[1:]))
    return float(np.polyfit(octaves, levels, 1)[0])


def _pitch_centroid(pitch_power: np.ndarray) -> float:
    """The power-weighted mean MIDI pitch of (CQT_BINS,) powers per semitone; NaN where all are zero."""
    total = pitch_power.sum()
    return float(pitch_power @ (CQT_LOWEST_MIDI + np.arange(CQT_BINS)) / total) if total > 0 else math.nan


def _pitch_class_profile(magnitude_by_semitone: np.ndarray) -> np.ndarray:
    """(CQT_BINS,) magnitudes of the pitched part -> (12,) pitch-class weights, C..B.

    Harmonic summation: each semitone's weight is its magnitude plus its harmonics' (SALIENCE_WEIGHTS), so that a
    note's 3rd harmonic adds less to the pitch a fifth above than the note adds to itself; then folded over octaves.
    On 416 renderings of the scores corpus this finds the score's key 84 % of the time, against 77 % without."""
    salience = np.zeros_like(magnitude_by_semitone)
    for harmonic, weight in enumerate(SALIENCE_WEIGHTS, start=1):
        shift = round(12 * math.log2(harmonic))
        salience[: CQT_BINS - shift] += weight * magnitude_by_semitone[shift:]
    return salience.reshape(-1, 12).sum(axis=0)  # bin 0 is a C
