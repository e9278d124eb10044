"""Level and dynamics: a gain, a compressor or expander of the level's swings, and a look-ahead peak limiter."""

from __future__ import annotations

import numpy as np

from .stages import LEVEL_FLOOR, FrameQueue, as_2d, mean_square, peak_over_channels, rms, run_whole

LEVEL_WINDOW_S = 0.4  # the level follower of the dynamics edit: BS.1770's momentary window, slow enough to leave the
#   notes' attacks alone (at 50 ms a 4x expansion doubled the onsets the meter hears)
LIMITER_LOOKAHEAD_S = 0.005  # the limiter's gain reaches its floor this long before a peak, and recovers as fast


def gain(samples: np.ndarray, decibels: float) -> np.ndarray:
    return as_2d(samples) * np.float32(10.0 ** (decibels / 20.0))


class Gain:
    """The gain as a stage."""

    def __init__(self, channels: int, decibels: float):
        self.channels, self.factor = channels, np.float32(10.0 ** (decibels / 20.0))

    def process(self, block: np.ndarray) -> np.ndarray:
        return block * self.factor

    def flush(self) -> np.ndarray:
        return np.zeros((0, self.channels), np.float32)


def dynamics(samples: np.ndarray, sample_rate: int, ratio: float) -> np.ndarray:
    """Compress (`ratio` > 1) or expand (< 1) the level's swings about the signal's own RMS level: a passage
    `d` dB above (below) it ends up `d / ratio` dB above (below). 1 is the identity. The overall level stays."""
    samples = as_2d(samples)
    reference = rms(samples)
    if ratio == 1.0 or reference == 0:
        return samples.copy()
    return run_whole(Dynamics(sample_rate, samples.shape[1], ratio, reference), samples)


class Dynamics:
    """The dynamics edit as a stage: the gain follows the RMS over all channels in a centred window of
    LEVEL_WINDOW_S (shortened at the ends), relative to `reference`; below LEVEL_FLOOR of the reference it stays."""

    def __init__(self, sample_rate: int, channels: int, ratio: float, reference: float):
        self.window = max(1, round(LEVEL_WINDOW_S * sample_rate))
        self.before = self.window // 2  # the window reaches this far back, and window - before - 1 ahead
        self.exponent = 1.0 / ratio - 1.0
        self.reference, self.floor = reference, reference * LEVEL_FLOOR
        self.samples = FrameQueue(channels)  # not yet edited, from self.done on
        self.power = np.zeros(0)  # mean square over the channels, from max(self.done - self.before, 0) on
        self.done = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        self.samples.append(block)
        self.power = np.concatenate([self.power, mean_square(block)])
        return self._edit(self.samples.end - (self.window - self.before) + 1, self.samples.end)

    def flush(self) -> np.ndarray:
        return self._edit(self.samples.end, self.samples.end)

    def _edit(self, stop: int, known: int) -> np.ndarray:
        """Frames [done, stop), with the power known up to `known`."""
        if stop <= self.done:
            return np.zeros((0, self.samples.channels), np.float32)
        first = max(self.done - self.before, 0)  # the position of self.power[0]
        cumulative = np.concatenate([[0.0], np.cumsum(self.power)])
        positions = np.arange(self.done, stop)
        starts = np.maximum(positions - self.before, 0)
        ends = np.minimum(positions - self.before + self.window, known)
        mean_square = np.maximum((cumulative[ends - first] - cumulative[starts - first]) / (ends - starts), 0.0)
        level = np.maximum(np.sqrt(mean_square.astype(np.float32)), np.float32(self.floor))
        relative = level / np.float32(self.reference)
        edited = self.samples.read(self.done, stop) * (relative ** np.float32(self.exponent))[:, None]
        self.samples.drop(stop)
        self.power = self.power[max(stop - self.before, 0) - first:]
        self.done = stop
        return edited


def limit(samples: np.ndarray, sample_rate: int, ceiling: float) -> np.ndarray:
    """Keep every sample within +-`ceiling` by turning the gain down around the peaks only (a look-ahead peak
    limiter), rather than the whole signal: the level of everything else stays where the other edits put it."""
    samples = as_2d(samples)
    return run_whole(Limiter(sample_rate, samples.shape[1], ceiling), samples)


class Limiter:
    """The limiter as a stage. A sample's gain depends on the peaks within `reach` frames either side, so each block
    is computed with that much of its neighbours (and 'nearest' edges only at the very start and end)."""

    def __init__(self, sample_rate: int, channels: int, ceiling: float):
        self.window = 2 * max(1, round(LIMITER_LOOKAHEAD_S * sample_rate)) + 1
        self.reach = (self.window - 1) + self.window // 2  # the minimum's half-width plus the mean's
        self.ceiling = ceiling
        self.history = np.zeros((0, channels), np.float32)  # up to `reach` frames already given out
        self.pending = FrameQueue(channels)

    def process(self, block: np.ndarray) -> np.ndarray:
        self.pending.append(block)
        return self._limit(self.pending.end - self.reach)

    def flush(self) -> np.ndarray:
        return self._limit(self.pending.end)

    def _limit(self, stop: int) -> np.ndarray:
        start = self.pending.start
        if stop <= start:
            return np.zeros((0, self.history.shape[1]), np.float32)
        span = np.concatenate([self.history, self.pending.read(start, self.pending.end)])
        own = slice(len(self.history), len(self.history) + stop - start)
        peak = peak_over_channels(span)
        if peak.max() > self.ceiling:
            # float32 rounding of sample x gain can land an ulp above the ceiling: the clip takes no more than that
            limited = np.clip(span[own] * self._gain(peak)[own, None], -self.ceiling, self.ceiling)
        else:
            limited = span[own]
        self.history = span[max(own.stop - self.reach, 0): own.stop]
        self.pending.drop(stop)
        return limited.astype(np.float32, copy=False)

    def _gain(self, peak: np.ndarray) -> np.ndarray:
        from scipy.ndimage import maximum_filter1d, uniform_filter1d

        needed = np.minimum(1.0, self.ceiling / np.maximum(peak, 1e-12))
        # the lowest gain any sample nearby needs, then smoothed over the same window: it moves gradually and, being the
        # mean of minima over a window that holds each peak, never lets a peak through
        floor = -maximum_filter1d(-needed, size=2 * self.window - 1, mode="nearest")
        smooth = uniform_filter1d(floor, size=self.window, mode="nearest")
        return np.minimum(smooth, needed)
