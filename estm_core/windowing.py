"""The window rule of every command that cuts audio (classify, transfer, plots, segmenting), on arrays or on a
stream of blocks (counted as it goes by, its windows batched), and what segmenting measures in a window. Samples are
mono float32 (frames,)."""

from __future__ import annotations

from itertools import islice
from typing import Iterable, Iterator

import numpy as np


def window_starts(total: int, length: int, hop: int) -> list[int]:
    """The window rule of every command that cuts audio (classify, transfer, plots, segmenting): `length`-sample
    windows every `hop` samples from the start, and where that leaves a tail, one more window ending at the end (it
    overlaps its neighbour, so no window holds padding). A signal of at most `length` samples gives one window at 0
    (padded with zeros); an empty one none."""
    if hop < 1:
        raise ValueError(f"hop must be at least one sample, not {hop}")
    if total <= length:
        return [0] if total else []
    starts = list(range(0, total - length + 1, hop))
    if starts[-1] + length < total:
        starts.append(total - length)
    return starts


def segment(samples: np.ndarray, length: int, hop: int | None = None) -> tuple[np.ndarray, list[int]]:
    """A mono signal (frames,) cut by the window rule (window_starts; default hop: no overlap): the (n, length)
    windows and their starts. An empty signal gives (0, length)."""
    starts = window_starts(len(samples), length, hop or length)
    if len(samples) < length:
        samples = np.pad(samples, (0, length - len(samples)))
    windows = np.lib.stride_tricks.sliding_window_view(samples, length)
    return np.ascontiguousarray(windows[starts]) if starts else np.zeros((0, length), samples.dtype), starts


def windows(blocks: Iterable[np.ndarray], length: int, hop: int) -> Iterator[tuple[int, np.ndarray]]:
    """The windows of `segment` (with their starts) over a stream of blocks, holding little more than a window: a
    file of any length is cut as its whole array would be."""
    if hop < 1:
        raise ValueError(f"hop must be at least one sample, not {hop}")
    buffer = np.zeros(0, np.float32)
    offset = 0  # the absolute sample index of buffer[0]
    next_start = 0
    emitted_end = 0
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        while offset + len(buffer) >= next_start + length:
            yield next_start, buffer[next_start - offset: next_start - offset + length]
            emitted_end = next_start + length
            next_start += hop
        keep_from = max(min(next_start, offset + len(buffer) - length), offset)  # enough for an end-aligned window
        buffer, offset = buffer[keep_from - offset:], keep_from
    total = offset + len(buffer)
    if emitted_end == 0 and total > 0:
        yield 0, np.pad(buffer, (0, length - len(buffer)))
    elif total > emitted_end:
        yield total - length, buffer[len(buffer) - length:]


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Lists of `size` items, the last one shorter if need be (itertools.batched from Python 3.12)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class Counted:
    """Blocks passed through unchanged, counting their samples in `samples`: a stream's length is known only once
    it has gone by."""

    def __init__(self, blocks: Iterable[np.ndarray]):
        self.blocks, self.samples = blocks, 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self.blocks:
            self.samples += len(block)
            yield block


def peak_normalise(samples: np.ndarray) -> np.ndarray:
    """Scale so that max |sample| is 1; digital silence is returned unchanged."""
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    return samples / np.float32(peak) if peak > 0 else samples


def zero_fraction(samples: np.ndarray) -> float:
    """Fraction of samples that are exactly 0 (padding and digital silence)."""
    return 1.0 - np.count_nonzero(samples) / samples.size if samples.size else 1.0
