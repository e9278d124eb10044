"""Loudness, as BS.1770-4 and EBU Tech 3342 define it, measured block by block so that any length fits in memory.

    meter = LoudnessMeter(sample_rate, channels)
    for block in blocks:                          # (frames, channels) float32
        meter.push(block)
    lufs, loudness_range = meter.finish()         # or integrated_loudness(samples, sample_rate)

The cue meter reads a file's loudness and loudness range with it; the cue method measures its output's loudness
with it, so that both hear loudness alike. The K-weighting filters are pyloudnorm's (its IIRfilter, with BS.1770's
shelf and high-pass), run with their state carried across blocks; the gating is pyloudnorm's, on 100 ms steps so
that nothing but 10 numbers a second is kept. On a whole signal it gives what pyloudnorm.Meter.integrated_loudness
gives (tests check it). scipy and pyloudnorm are imported inside the functions that use them.
"""

from __future__ import annotations

import math

import numpy as np

LOUDNESS_STEP_SECONDS = 0.1  # BS.1770's gating blocks (400 ms) overlap by 75 %: they are made of 100 ms steps
GATING_BLOCK_STEPS = 4
SHORT_TERM_STEPS = 30  # 3 s windows, every 100 ms: EBU Tech 3342's short-term loudness
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0  # BS.1770-4 integrated loudness
RANGE_RELATIVE_GATE_LU = -20.0  # EBU Tech 3342 loudness range
RANGE_PERCENTILES = (10.0, 95.0)
CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770 (L, R, C, Ls, Rs), as pyloudnorm; further channels weigh 1
LOUDNESS_CHUNK = 1 << 17  # frames filtered at a time


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (BS.1770-4) of (frames,) or (frames, channels) samples, any number of channels, in LUFS;
    NaN where no block is above the gate or the signal is shorter than one 400 ms block."""
    samples = np.asarray(samples)
    samples = samples[:, None] if samples.ndim == 1 else samples
    meter = LoudnessMeter(sample_rate, samples.shape[1])
    meter.push(samples)
    return float(meter.finish()[0])


def lufs(power):
    """Loudness (LUFS) of a channel-weighted mean square of the K-weighted signal (BS.1770's -0.691 offset)."""
    return -0.691 + 10.0 * np.log10(np.maximum(power, 1e-300))


def power(loudness):
    """The channel-weighted mean square of the K-weighted signal that reads `loudness` LUFS: lufs' inverse."""
    return 10.0 ** ((loudness + 0.691) / 10.0)


class LoudnessMeter:
    """BS.1770-4 integrated loudness and EBU Tech 3342 loudness range of `channels` channels at `rate`, pushed
    block by block."""

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
        return self._integrated(), self._range()

    def _integrated(self) -> float:
        seconds = self.total / self.rate
        steps = np.array(self.steps + [self.partial, 0.0, 0.0, 0.0])  # the last block may reach past the end
        block_count = int(round((seconds - GATING_BLOCK_STEPS * LOUDNESS_STEP_SECONDS) / LOUDNESS_STEP_SECONDS)) + 1
        if block_count <= 0:
            return math.nan
        windows = np.lib.stride_tricks.sliding_window_view(steps, GATING_BLOCK_STEPS)[:block_count]
        return gated_mean_loudness(windows.sum(axis=1) / (GATING_BLOCK_STEPS * LOUDNESS_STEP_SECONDS * self.rate),
                                   RELATIVE_GATE_LU)

    def _range(self) -> float:
        complete = np.array(self.steps)
        if len(complete) < SHORT_TERM_STEPS:
            return math.nan
        windows = np.lib.stride_tricks.sliding_window_view(complete, SHORT_TERM_STEPS)
        short_term = lufs(windows.sum(axis=1) / (SHORT_TERM_STEPS * LOUDNESS_STEP_SECONDS * self.rate))
        loud = short_term[short_term >= ABSOLUTE_GATE_LUFS]
        if not len(loud):
            return math.nan
        gate = lufs(np.mean(power(loud))) + RANGE_RELATIVE_GATE_LU
        low, high = np.percentile(loud[loud >= gate], RANGE_PERCENTILES)
        return float(high - low)


def gated_mean_loudness(block_power: np.ndarray, relative_gate: float) -> float:
    """BS.1770-4's two-stage gate over block powers: the loudness of the mean power of the blocks above -70 LUFS
    and above (that mean's loudness + relative_gate)."""
    loudness = lufs(block_power)
    above = loudness >= ABSOLUTE_GATE_LUFS
    if not above.any():
        return math.nan
    gate = lufs(block_power[above].mean()) + relative_gate
    kept = above & (loudness > gate)
    return float(lufs(block_power[kept].mean()))
