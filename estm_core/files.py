"""Writing files safely: never overwrite without being asked, never leave a half-written file."""

from __future__ import annotations

import glob
import hashlib
import os
import socket
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(path, error) from None
    return path


@contextmanager
def atomic_write(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`, on failure delete it.

    The temporary name keeps the extension, so libraries that infer a format from it still work, and names this
    host and process: temporaries that a killed run of the same output left behind are removed first."""
    path = check_writable(path, force)
    _remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{_OWNER}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as error:
        raise _unwritable(path, error) from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if not force and path.exists():  # appeared while we were writing
            raise FileError(path, "already exists (use --force to overwrite)")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        try:
            os.replace(tmp, path)
        except OSError as error:
            raise _unwritable(path, error) from None
    finally:
        tmp.unlink(missing_ok=True)


_OWNER = f"{socket.gethostname().replace('.', '-')}-{os.getpid()}"  # HOST-PID in temporary names


def _unwritable(path: Path, error: OSError) -> FileError:
    return FileError(path, f"cannot write: {(error.strerror or str(error)).lower()}")


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of `path` whose writer, a process of this host, is gone (killed mid-write)."""
    host, _ = _OWNER.rsplit("-", 1)
    for candidate in path.parent.glob(f".{glob.escape(path.stem)}.{glob.escape(host)}-*.tmp{glob.escape(path.suffix)}"):
        owner = candidate.name[len(f".{path.stem}.{host}-"):].split(".", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            candidate.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv(frame, path: str | os.PathLike, force: bool = False) -> Path:
    """Write a pandas DataFrame as CSV (no index), atomically; an existing file is kept unless `force`."""
    with atomic_write(path, force) as temporary:
        frame.to_csv(temporary, index=False)
    return Path(path)


def sha256(path: str | os.PathLike) -> str:
    """The file's SHA-256, hex, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
