"""Signal-processing building blocks in numpy (and soxr for halving a rate): mel filters, short-time and constant-Q
spectra, peak picking, the autocorrelation tempo and HPSS masks. The cue meter used librosa's; importing librosa
(numba and its own modules) cost 1.4 s of every `estm transfer` and `estm analyze`, about as long as measuring three
minutes of music. Each function says which librosa call it stands for; tests/test_dsp.py checks each against that
call on music (a SoundFont-rendered chorale, a synthesised band), within the tolerance its docstring states (float
rounding where it says nothing), and against hand-made signals. Anything not needed at the cue meter's start-up uses
librosa itself.
"""

from __future__ import annotations

import math

import numpy as np

# ---------------------------------------------------------------------------------------------------------- mel


def hz_to_mel(hz):
    """Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    log_step = math.log(6.4) / 27.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / log_step, hz / (200.0 / 3.0))


def mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    log_step = math.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(log_step * (mel - 15.0)), mel * (200.0 / 3.0))


def mel_filters(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None, *,
                area_normalised: bool = True) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float64 triangular filters on Slaney's mel scale, as librosa.filters.mel (htk=False);
    `area_normalised` is its norm="slaney" (each filter's area 1), False its norm=None (peaks of 1)."""
    f_max = sample_rate / 2.0 if f_max is None else f_max
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    filters = np.maximum(0.0, np.minimum(-ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]))
    return filters * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None] if area_normalised else filters


# ----------------------------------------------------------------------------------------------- short-time


def hann(length: int, periodic: bool = True) -> np.ndarray:
    """The Hann window every part of estm uses: periodic (scipy's get_window("hann", length), which STFTs use), or
    with `periodic` False symmetric (np.hanning(length): zero at both ends, for one window over a whole clip)."""
    if not periodic:
        return np.hanning(length)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


def stft_magnitude(signal: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(n_fft // 2 + 1, frames) float32 magnitudes of Hann-windowed frames of `signal` starting every `hop` samples,
    as np.abs(librosa.stft(signal, center=False))."""
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(signal, np.float32), n_fft)[::hop]
    return np.abs(np.fft.rfft(frames * hann(n_fft).astype(np.float32), axis=1)).T.astype(np.float32)


def power_to_db(power: np.ndarray, amin: float = 1e-10, top_db: float = 80.0) -> np.ndarray:
    """10 log10(power) (reference 1), floored at amin and at top_db below the largest value, as librosa.power_to_db."""
    decibels = 10.0 * np.log10(np.maximum(power, amin))
    return np.maximum(decibels, decibels.max() - top_db)


def spectral_flux(spectrogram: np.ndarray) -> np.ndarray:
    """(frames - 1,): the mean over bins of each frame's rise above the frame before (falls count 0), as
    librosa.onset.onset_strength(S=spectrogram, center=False)[1:]."""
    return np.maximum(0.0, np.diff(spectrogram, axis=1)).mean(axis=0)


# ---------------------------------------------------------------------------------------------------- peaks


def _window_sums(values: np.ndarray, before: int, after: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum, count) of values[max(0, n - before): n + after] for each n, the window cut at both ends."""
    cumulative = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    index = np.arange(len(values))
    low, high = np.maximum(index - before, 0), np.minimum(index + after, len(values))
    return cumulative[high] - cumulative[low], high - low


def peak_pick(values: np.ndarray, *, pre_max: int, post_max: int, pre_avg: int, post_avg: int, delta: float,
              wait: int) -> np.ndarray:
    """Indices of the peaks of `values` (1-D), as librosa.util.peak_pick: n is a peak where values[n] is the largest
    of values[n - pre_max: n + post_max], at least `delta` above the mean of values[n - pre_avg: n + post_avg]
    (both windows cut at the ends), and more than `wait` after the previous peak."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return np.zeros(0, dtype=int)
    padded = np.concatenate([np.full(pre_max, -np.inf), values, np.full(post_max - 1, -np.inf)])
    largest = np.lib.stride_tricks.sliding_window_view(padded, pre_max + post_max).max(axis=1)
    total, count = _window_sums(values, pre_avg, post_avg)
    candidates = np.flatnonzero((values == largest) & (values >= total / count + delta))
    peaks, last = [], -math.inf
    for index in candidates:  # few: a loop is fine
        if index > last + wait:
            peaks.append(index)
            last = index
    return np.array(peaks, dtype=int)


# ---------------------------------------------------------------------------------------------------- tempo


def tempogram_sum(envelope: np.ndarray, window: int) -> np.ndarray:
    """(window,): the sum over frames of the autocorrelation tempogram of an onset envelope already padded by
    window - 1 frames (one frame per window-long stretch of it), each frame Hann-windowed, autocorrelated and scaled
    to a peak of 1 (an all-zero frame stays zero); as librosa.feature.tempogram(center=False).sum(axis=1)."""
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(envelope, np.float64), window) * hann(window)
    spectrum = np.fft.rfft(frames, n=2 * window, axis=1)
    autocorrelation = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=2 * window, axis=1)[:, :window]
    peak = np.abs(autocorrelation).max(axis=1, keepdims=True)
    return (autocorrelation / np.where(peak < np.finfo(np.float64).tiny, 1.0, peak)).sum(axis=0)


def tempo_lag(tempogram: np.ndarray, frame_rate: float, *, prior_bpm: float = 120.0, prior_octaves: float = 1.0,
              max_bpm: float = 320.0) -> int:
    """The lag (in frames) of the beat in a (mean) tempogram: the largest log(1 + 1e6 x) plus a log-normal prior
    around `prior_bpm` (`prior_octaves` wide), lags faster than `max_bpm` left out; as librosa.feature.tempo."""
    lags = np.arange(len(tempogram))
    with np.errstate(divide="ignore"):
        bpm = 60.0 * frame_rate / lags  # lag 0 is infinitely fast
        prior = -0.5 * ((np.log2(bpm) - math.log2(prior_bpm)) / prior_octaves) ** 2
    prior[bpm >= max_bpm] = -np.inf
    return int(np.argmax(np.log1p(1e6 * tempogram) + prior))


# ------------------------------------------------------------------------------------------------ constant Q


def cqt_magnitude(signal: np.ndarray, sample_rate: int, hop: int, lowest_midi: int, bins: int) -> np.ndarray:
    """(bins, 1 + len(signal) // hop) float64 constant-Q magnitudes, one bin a semitone from `lowest_midi` (A = 440
    Hz), frame t centred on sample t * hop (zeros beyond the ends): librosa.cqt's, read in amplitude (a sine of
    amplitude A at a bin's frequency reads about A there), that is 2 |librosa.cqt(scale=False)| / each filter's
    length; on music within 2.5 % of the loudest bin and 1.5 % in RMS (librosa builds its filters in the frequency
    domain and resamples its octaves its own way). Each bin is a Hann-windowed complex exponential as long as
    librosa's filters (Q = 17.3: their main lobes reach the next bin but one), applied in the time domain; each
    octave below the top one is measured on the signal at half the rate of the octave above (soxr), where its
    filters are as long as the top octave's. `hop` must be divisible by 2 ** (octaves - 1)."""
    import soxr

    octaves = -(-bins // 12)
    if hop % 2 ** (octaves - 1):
        raise ValueError(f"the hop ({hop}) must be divisible by {2 ** (octaves - 1)} for {octaves} octaves")
    ratio = 2.0 ** (2 / 12)
    quality = (ratio + 1) / (ratio - 1)  # librosa's Q for 12 bins an octave
    count = 1 + len(signal) // hop
    magnitude = np.zeros((bins, count))
    rate, current = float(sample_rate), np.asarray(signal, np.float64)
    for octave in range(octaves):  # from the top octave down
        top = bins - 12 * octave
        members = np.arange(max(top - 12, 0), top)
        hz = 440.0 * 2.0 ** ((lowest_midi + members - 69) / 12.0)
        lengths = np.round(quality * rate / hz).astype(int)
        span = 2 * (lengths.max() // 2) + 1  # odd: frames centred on their sample
        kernels = np.zeros((len(members), span), np.complex128)
        for row, (length, frequency) in enumerate(zip(lengths, hz)):
            offsets = np.arange(length) - (length - 1) / 2.0
            window = 0.5 + 0.5 * np.cos(2.0 * np.pi * offsets / length)  # symmetric, centred
            start = (span - length) // 2
            kernels[row, start:start + length] = window * np.exp(-2j * np.pi * frequency * offsets / rate) * (
                2.0 / window.sum())
        step = hop // 2 ** octave
        padded = np.pad(current, (span // 2, max((count - 1) * step + span // 2 + 1 - len(current), 0)))
        frames = np.lib.stride_tricks.sliding_window_view(padded, span)[::step][:count]
        magnitude[members] = np.abs(frames @ kernels.T).T
        if octave < octaves - 1:
            current, rate = soxr.resample(current, 2, 1, quality="HQ"), rate / 2.0
    return magnitude


# ------------------------------------------------------------------------------------------------------ HPSS


def hpss_masks(magnitude: np.ndarray, kernel: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive soft masks of a (bins, frames) magnitude, in its dtype: librosa.decompose.hpss(
    magnitude, kernel_size=kernel, mask=True) with its defaults power=2 and margin=1 (Fitzgerald's median filtering,
    scipy's with edges reflected as librosa's: over `kernel[0]` frames for the harmonic part, `kernel[1]` bins for the
    percussive; Wiener-like masks of power 2, 0.5 each where both parts are zero). Tolerance: none, the masks are
    librosa's to the bit (tests/test_dsp.py: on music, on noise with silence, in float32 and float64)."""
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
