"""Articulation: the notes' envelopes shaped as a transient designer does."""

from __future__ import annotations

import math

import numpy as np

from .stages import LEVEL_FLOOR, as_2d, mean_square, rms, run_whole

TRANSIENT_FAST_S, TRANSIENT_SLOW_S = 0.005, 0.08  # attack and sustain followers of the articulation edit


def articulation(samples: np.ndarray, sample_rate: int, amount: float) -> np.ndarray:
    """Shape the notes' envelopes, as a transient designer does: `amount` > 0 lifts the attacks and lets the
    sustain fall (more staccato, sharper), < 0 softens the attacks and lifts the sustain (more legato). 0 is the
    identity. The gain follows (fast envelope / slow envelope) ** amount, clipped to +-12 dB."""
    samples = as_2d(samples)
    if amount == 0.0:
        return samples.copy()
    return run_whole(Articulation(sample_rate, samples.shape[1], amount, rms(samples)), samples)


class Articulation:
    """The articulation edit as a stage: two one-pole followers of the RMS over the channels (the fast one instant
    on the way up), their states carried over; below LEVEL_FLOOR of `reference` the followers read the floor."""

    def __init__(self, sample_rate: int, channels: int, amount: float, reference: float):
        self.amount, self.channels = amount, channels
        self.floor = max(reference * LEVEL_FLOOR, 1e-9)
        self.coefficients = [math.exp(-1.0 / max(seconds * sample_rate, 1.0))
                             for seconds in (TRANSIENT_FAST_S, TRANSIENT_SLOW_S)]
        self.states = [np.zeros(1), np.zeros(1)]

    def process(self, block: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        level = np.sqrt(mean_square(block))
        followers = []
        for index, coefficient in enumerate(self.coefficients):
            smooth, self.states[index] = lfilter([1 - coefficient], [1, -coefficient], level, zi=self.states[index])
            followers.append(smooth)
        fast, slow = np.maximum(followers[0], level), followers[1]
        ratio = (np.maximum(fast, self.floor) / np.maximum(slow, self.floor)).astype(np.float32)
        return block * np.clip(ratio ** np.float32(self.amount), 0.25, 4.0)[:, None]

    def flush(self) -> np.ndarray:
        return np.zeros((0, self.channels), np.float32)
