"""Writing files safely: never overwrite without being asked, never leave a half-written file."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import FileError


def check_writable(path: str | os.PathLike, force: bool = False) -> Path:
    """Refuse an existing output unless `force`; create the parent folder. A name the system refuses (too long,
    not encodable) is one line, as is a folder that cannot be made."""
    path = Path(path)
    try:
        if path.is_dir():
            raise FileError(path, "is a folder, not a file name")
        if path.exists() and not force:
            raise FileError(path, "already exists (use --force to overwrite)")
        path.parent.mkdir(parents=True, exist_ok=True)
    except (OSError, UnicodeError) as error:
        raise _unwritable(path, error) from None
    return path


@contextmanager
def atomic_write(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`, on failure delete it.

    The temporary name keeps the extension, so libraries that infer a format from it still work, and names this
    host and process: the folder's temporaries that killed runs left behind are removed first. A write that fails for
    want of room or a writable place (WRITE_ERRNOS) is one line naming `path` and the cause."""
    path = check_writable(path, force)
    remove_stale_temporaries(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{OWNER}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as error:
        raise _unwritable(path, error) from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        try:
            yield tmp
        except OSError as error:
            if error.errno not in WRITE_ERRNOS:
                raise
            raise _unwritable(path, error) from None
        if not force and path.exists():  # appeared while we were writing
            raise FileError(path, "already exists (use --force to overwrite)")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        try:
            os.replace(tmp, path)
        except OSError as error:
            raise _unwritable(path, error) from None
    finally:
        tmp.unlink(missing_ok=True)


OWNER = f"{socket.gethostname().replace('.', '-')}-{os.getpid()}"  # HOST-PID in temporary names
# How a write fails for want of room or a writable place, whatever the body was doing: named as the output's failure
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
# A temporary this old is a leftover whoever wrote it (another host's, or one whose process id was reused): no write
# of ours leaves its file untouched for a day
STALE_SECONDS = 24 * 3600
_TEMPORARY = re.compile(r"^\..*\.(?P<host>[^.]+)-(?P<pid>\d+)\.[^.]+\.tmp(\.[^.]*)?$")


def _unwritable(path: Path, error: Exception) -> FileError:
    if isinstance(error, UnicodeError):
        return FileError(path, "cannot write: the name is not valid text in this system's encoding")
    return FileError(path, f"cannot write: {(error.strerror or str(error)).lower()}")


def remove_stale_temporaries(folder: Path, now: float | None = None) -> list[Path]:
    """Delete the temporaries of atomic_write in `folder`, whatever output they were for, whose writer (a process of
    this host) is gone, and any older than STALE_SECONDS: a killed write leaves one, and its name may never come
    again. Returns them. Every atomic write sweeps its folder first; the store sweeps a model's folder when it
    removes or trains one."""
    host, _ = OWNER.rsplit("-", 1)
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    removed = []
    for entry in entries:
        found = _TEMPORARY.match(entry.name)
        if not found:
            continue
        try:
            dead = found["host"] == host and not writer_alive(int(found["pid"]))
            if dead or now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already, or not ours to remove (a read-only store: it stays, harmless)
            continue
    return removed


def writer_alive(pid: int) -> bool:
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
