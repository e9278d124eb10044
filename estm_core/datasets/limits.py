"""What a data run may hold and write, checked before it starts (available memory, free disk), and one line naming
the place when making an output folder fails (atomic_write and audio.save name their own files)."""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import FileError

GB = 1e9

# The ranges of the data commands' numeric options, here so that the CLI can name them without importing numpy.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 192000  # Hz
MAX_SECONDS = 600.0  # of one segment or one rendering: one of them, and its float copies, stays well within memory
MAX_COUNT = 10000  # excerpts or contents of a corpus
MAX_PAIRS = 1_000_000
MAX_BATCH = 1024  # segments labelled at once


@contextmanager
def writing(place: str | os.PathLike) -> Iterator[None]:
    """Turn an OSError raised while making the folder `place` (or a file of its own in it) into one FileError line:
    a read-only place, a full disk."""
    try:
        yield
    except OSError as error:
        raise FileError(place, f"cannot write: {(error.strerror or str(error)).lower()}") from None


def check_free_space(folder: str | os.PathLike, needed: int, what: str) -> None:
    """Refuse a run that will write about `needed` bytes into `folder` (which exists) when the disk has less free."""
    free = _free(folder)
    if needed > free:
        raise FileError(folder, f"{what} need about {size(needed)} and the disk has {size(free)} free: "
                                f"{os.strerror(errno.ENOSPC).lower()}")


def size(count: int) -> str:
    """Bytes as a person reads them: '3.2 GB', '41 MB', '353 kB'."""
    for unit, scale in (("GB", GB), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}" if unit == "GB" else f"{count / scale:.0f} {unit}"
    return f"{count} bytes"


def available_memory() -> int:
    """Bytes of memory a run can take without swapping: MemAvailable where Linux says it, else physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): assume a small machine
        return 4 << 30


def _free(place: str | os.PathLike) -> int:
    """Free bytes on the disk holding `place` (or its nearest existing parent)."""
    path = Path(place).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:  # unknown: assume room, so that nothing is refused without cause
        return 1 << 62
