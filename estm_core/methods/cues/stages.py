"""The stage runner of the cue method's edits, and what the stages share.

A stage is an edit that streams: `process(block)` takes (frames, channels) float32 and returns what is ready,
`flush()` returns the rest once the input has ended. Each carries its state across blocks (the filters' and
followers' memories, the look-ahead of the limiter and of the level window, the mode edit's short-time spectrum and
phases), so that the result does not depend on the block size and a file of any length goes through in blocks.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Iterable, Iterator

import numpy as np

RUN_CHUNK = 1 << 16  # frames a stage is given at a time
LEVEL_FLOOR = 1e-3  # the dynamics and articulation edits leave the gain alone below -60 dB of the level


def as_2d(samples: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) samples as (frames, channels) float32."""
    samples = np.asarray(samples, dtype=np.float32)
    return samples[:, None] if samples.ndim == 1 else samples


def mean_square(block: np.ndarray) -> np.ndarray:
    """(frames,) float64: the mean square over the channels (einsum: a reduction over a short axis is slow)."""
    return (np.einsum("ij,ij->i", block, block) / block.shape[1]).astype(np.float64)


def peak_over_channels(block: np.ndarray) -> np.ndarray:
    """(frames,): the largest |sample| over the channels."""
    peak = np.abs(block[:, 0])
    for channel in range(1, block.shape[1]):
        np.maximum(peak, np.abs(block[:, channel]), out=peak)
    return peak


def rms(samples: np.ndarray) -> float:
    """RMS over all samples and channels."""
    return math.sqrt(float(np.mean(mean_square(samples)))) if samples.size else 0.0


def run_whole(stage, samples: np.ndarray) -> np.ndarray:
    """One stage over a whole array."""
    return np.concatenate([stage.process(samples), stage.flush()])


def run(stages: list, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Blocks of (frames, channels) float32 through a chain of stages, in order, at most RUN_CHUNK frames at a time
    (so that no stage makes float64 copies of a whole long block); at the end each stage's tail goes through the
    stages after it."""
    for block in blocks:
        yield from _through(stages, block)
    for index, stage in enumerate(stages):
        yield from _through(stages[index + 1:], stage.flush())


def _through(stages: list, block: np.ndarray) -> Iterator[np.ndarray]:
    if not stages:
        if len(block):
            yield block
        return
    for start in range(0, len(block), RUN_CHUNK):
        yield from _through(stages[1:], stages[0].process(block[start:start + RUN_CHUNK]))


class FrameQueue:
    """Frames appended block by block and read back by their position in the stream, without copying every block
    into one growing array."""

    def __init__(self, channels: int):
        self.channels = channels
        self.pieces: deque[tuple[int, np.ndarray]] = deque()  # (position of the first frame, frames)
        self.start = self.end = 0

    def append(self, block: np.ndarray) -> None:
        if len(block):
            self.pieces.append((self.end, block))
            self.end += len(block)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop), which must still be held."""
        assert self.start <= start <= stop <= self.end, (self.start, start, stop, self.end)
        parts = [piece[max(start - first, 0): stop - first] for first, piece in self.pieces
                 if first < stop and first + len(piece) > start]
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.zeros((0, self.channels), np.float32)

    def drop(self, before: int) -> None:
        """Forget the frames before `before`."""
        while self.pieces and self.pieces[0][0] + len(self.pieces[0][1]) <= before:
            self.pieces.popleft()
        if self.pieces and self.pieces[0][0] < before:
            first, piece = self.pieces.popleft()
            self.pieces.appendleft((before, piece[before - first:]))
        self.start = max(self.start, min(before, self.end))
