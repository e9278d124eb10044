"""Brightness: a tilt of the spectrum about 1 kHz, made of high shelves an octave apart."""

from __future__ import annotations

import math

import numpy as np

from .stages import as_2d, run_whole

TILT_PIVOTS_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)  # shelves an octave apart make a tilt


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
    samples = as_2d(samples)
    if db_per_octave == 0.0:
        return samples.copy()
    return run_whole(Tilt(sample_rate, samples.shape[1], db_per_octave), samples)


class Tilt:
    """The tilt as a stage: the shelves' filter state carries over from block to block."""

    def __init__(self, sample_rate: int, channels: int, db_per_octave: float):
        pivots = [pivot for pivot in TILT_PIVOTS_HZ if pivot < 0.45 * sample_rate]
        self.sample_rate = sample_rate
        self.sections = np.stack([_high_shelf(sample_rate, pivot, db_per_octave) for pivot in pivots])
        self.scale = 1.0 / abs(self._response(np.array([1000.0]))[0])  # 1 kHz keeps its level
        self.state = np.zeros((len(self.sections), 2, channels))

    def _response(self, hz: np.ndarray) -> np.ndarray:
        """The shelves' complex response at frequencies `hz` (scipy's sosfreqz takes 3 ms a call: 1.5 s for the
        settings transfer.plan weighs)."""
        delay = np.exp(-2j * np.pi * np.asarray(hz, dtype=np.float64) / self.sample_rate)[:, None] ** np.arange(3)
        return np.prod((delay @ self.sections[:, :3].T) / (delay @ self.sections[:, 3:].T), axis=1)

    def power_gain(self, hz: np.ndarray) -> np.ndarray:
        """The power response at frequencies `hz`."""
        return np.abs(self._response(hz) * self.scale) ** 2

    def process(self, block: np.ndarray) -> np.ndarray:
        from scipy.signal import sosfilt

        # float64: the low shelves' poles sit close to the unit circle
        filtered, self.state = sosfilt(self.sections, block.astype(np.float64), axis=0, zi=self.state)
        return (filtered * self.scale).astype(np.float32)

    def flush(self) -> np.ndarray:
        return np.zeros((0, self.state.shape[2]), np.float32)
