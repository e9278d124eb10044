"""Where the cue method keeps audio between its passes, and the processes it works in.

A float32 spool holds frames written once and read back in order: an unnamed temporary file (gone when closed, so a
kill leaves nothing) or memory. The worker processes stretch the pieces of the content (stretch.Stretch) and measure
an emotion reference while the content is measured.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from contextlib import contextmanager
from concurrent.futures import Executor
from typing import Iterator

import numpy as np

from ...workers import process_pool

SPOOL_BLOCK = 1 << 18  # frames read back from the spool at a time


class _MemorySpool:
    def __init__(self):
        self.blocks: deque[np.ndarray] = deque()

    def write(self, block: np.ndarray) -> None:
        self.blocks.append(block)

    def read(self) -> Iterator[np.ndarray]:
        while self.blocks:
            yield self.blocks.popleft()


class _FileSpool:
    """Raw float32 frames in an unnamed temporary file (gone when closed, whatever happens)."""

    def __init__(self, folder, channels: int):
        self.file = tempfile.TemporaryFile(dir=folder)
        self.channels = channels

    def write(self, block: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(block, dtype=np.float32).data)

    def read(self) -> Iterator[np.ndarray]:
        self.file.seek(0)
        while data := self.file.read(SPOOL_BLOCK * self.channels * 4):
            yield np.frombuffer(data, np.float32).reshape(-1, self.channels)


@contextmanager
def float32_spool(folder, channels: int):
    """Float32 frames written once and read back in order: a temporary file in `folder` (gone when closed, so a
    kill leaves nothing), or memory where `folder` is None."""
    if folder is None:
        yield _MemorySpool()
        return
    spool = _FileSpool(folder, channels)
    try:
        yield spool
    finally:
        spool.file.close()


# ------------------------------------------------------------------------------------------------ other cores


def default_jobs() -> int:
    """Worker processes a transfer uses by default: one per core, at most 4 (beyond that the edits this process makes
    in order bound the speed). On a machine other work keeps busy, 1 (no workers) is faster: their start-up, one
    more import of the meter's libraries, only adds to the work there."""
    return min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@contextmanager
def workers(jobs: int) -> Iterator[Executor | None]:
    """A pool of `jobs` worker processes, or None for jobs <= 1 (everything in this process)."""
    if jobs <= 1:
        yield None
        return
    pool = process_pool(jobs)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
