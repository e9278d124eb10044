"""Writing files safely: never overwrite without being asked, never leave a half-written file."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import FileError


def check_writable(path: str | os.PathLike, force: bool = False) -> Path:
    """Refuse an existing output unless `force`; create the parent folder."""
    path = Path(path)
    if path.is_dir():
        raise FileError(path, "is a folder, not a file name")
    if path.exists() and not force:
        raise FileError(path, "already exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_write(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`, on failure delete it.

    The temporary name keeps the extension, so libraries that infer a format from it still work.
    """
    path = check_writable(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if not force and path.exists():  # appeared while we were writing
            raise FileError(path, "already exists (use --force to overwrite)")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv(frame, path: str | os.PathLike, force: bool = False) -> Path:
    """Write a pandas DataFrame as CSV (no index), atomically; an existing file is kept unless `force`."""
    with atomic_write(path, force) as temporary:
        frame.to_csv(temporary, index=False)
    return Path(path)
