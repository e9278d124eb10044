"""The model store: `$ESTM_HOME/models/FAMILY/NAME.safetensors` (default `~/.local/share/estm`), with a training
history `NAME.history.csv` beside each model. Here: the store's place and names, lookup by name or path, listing,
removing, the lock, histories and resume checkpoints (what one model file holds and how it loads is `model_file`'s).
"""

from __future__ import annotations

import os
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from . import model_file
from .errors import EstmError, FileError, StoreError
from .families import FORMER_NAMES, current_name
from .files import remove_stale_temporaries
from .model_file import LoadedModel, ModelInfo, read_info

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd

MODEL_SUFFIX = ".safetensors"
HISTORY_SUFFIX = ".history.csv"
HISTORY_NEEDS = ("epoch", "loss")  # every family's history has these (estm_core.training.loop)
RESUME_SUFFIX = ".resume"  # NAME.resume: the last epoch's weights and optimiser, for `estm train --resume`
MAX_NAME_BYTES = 150  # NAME.history.csv's temporary adds up to 99 bytes (a 64-byte host name): within 255


@dataclass
class StoredModel:
    """One file in the store, as `estm models list` shows it."""

    name: str
    family: str
    path: Path
    size_bytes: int
    modified: datetime | None  # None when the entry cannot be read
    info: ModelInfo | None  # None when the file cannot be read
    problem: str | None = None


# ------------------------------------------------------------------------------------------------- the store


def store_root() -> Path:
    """$ESTM_HOME, else $XDG_DATA_HOME/estm, else ~/.local/share/estm."""
    if os.environ.get("ESTM_HOME"):
        return Path(os.environ["ESTM_HOME"]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home).expanduser() / "estm"


def models_dir() -> Path:
    return store_root() / "models"


def model_name(path: Path) -> str:
    """NAME of a model file NAME.safetensors."""
    return Path(path).name.removesuffix(MODEL_SUFFIX)


def check_name(name: str, what: str = "model name") -> str:
    """A store name is plain: a file name of its own, not hidden, no path separators (so it cannot reach outside
    its family's folder), UTF-8 (safetensors opens no other path) and short enough for its files' names. Names are
    literal: '*' and '?' are no wildcards."""
    if not name or name in (".", "..") or name.startswith(".") or any(bad in name for bad in ("/", "\\", "\0")):
        raise StoreError(f"{name!r} is not a valid {what}: use a plain name, without '/', '\\' or a leading '.'")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # bytes of another encoding, as Python decodes a command line's
        shown = name.encode("utf-8", "surrogateescape")
        raise StoreError(f"{shown!r} is not a valid {what}: it is not UTF-8 text") from None
    if size > MAX_NAME_BYTES:
        raise StoreError(f"{name[:40]}... is not a valid {what}: {size} bytes long, at most {MAX_NAME_BYTES}")
    return name


def model_path(family: str, name: str) -> Path:
    """Where the store keeps model `name` of `family`."""
    return models_dir() / check_name(family, "family") / f"{check_name(name)}{MODEL_SUFFIX}"


def _check_store() -> None:
    """StoreError when the store's place is no folder (ESTM_HOME set to a file): else every lookup would find
    nothing, and say so wrongly."""
    for place in (store_root(), models_dir()):
        if os.path.lexists(place) and not place.is_dir():
            raise StoreError(f"{place}: the model store's place is a file, not a folder (set ESTM_HOME to a folder)")


def _make_folder(folder: Path) -> Path:
    """`folder` in the store, made if need be; a place that cannot hold it is one StoreError line."""
    _check_store()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"{folder}: cannot make the model store's folder: "
                         f"{(error.strerror or str(error)).lower()}") from None
    return folder


def _family_folders() -> list[Path]:
    return sorted(folder for folder in models_dir().glob("*") if folder.is_dir() and not folder.name.startswith("."))


def _folders_of(family: str | None) -> list[Path]:
    """The store's folders of `family` (its own and those of its former names), or of every family."""
    _check_store()
    if family is None:
        return _family_folders()
    family = current_name(family)
    return [models_dir() / name for name in (family, *(old for old, new in FORMER_NAMES.items() if new == family))]


def _model_files(family: str | None = None) -> list[Path]:
    """The model files in the store (of `family`), by name; hidden files (a write under way, a lock) are none."""
    folders = _folders_of(family)
    return sorted(path for folder in folders for path in folder.glob(f"*{MODEL_SUFFIX}")
                  if not path.name.startswith("."))


def history_path(path: Path) -> Path:
    """NAME.safetensors -> NAME.history.csv beside it."""
    return path.with_name(path.name.removesuffix(MODEL_SUFFIX) + HISTORY_SUFFIX)


def resume_path(path: Path) -> Path:
    """NAME.safetensors -> NAME.resume beside it (a safetensors file, named so it is never taken for a model)."""
    return path.with_name(path.name.removesuffix(MODEL_SUFFIX) + RESUME_SUFFIX)


def read_history(path: str | os.PathLike) -> pd.DataFrame:
    """A training history CSV (NAME.history.csv: one row per epoch), checked to have epochs and a loss."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileError(path, "is a folder, not a history file" if path.is_dir() else "no such file")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise FileError(path, "empty file, not a training history") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise FileError(path, f"not a CSV file ({str(error).strip().splitlines()[0]})") from None
    check_history(frame, str(path))
    return frame


def check_history(history: pd.DataFrame, source: str = "the history") -> None:
    """EstmError unless `history` has numeric 'epoch' and 'loss' columns and at least one row."""
    import pandas as pd

    missing = [column for column in HISTORY_NEEDS if column not in history.columns]
    if missing:
        has = ", ".join(map(str, history.columns[:8])) + (", ..." if len(history.columns) > 8 else "")
        raise EstmError(f"{source}: not a training history: no {' or '.join(map(repr, missing))} column "
                        f"(it has {has or 'no columns'})")
    if history.empty:
        raise EstmError(f"{source}: the history has no epochs yet")
    for column in HISTORY_NEEDS:
        if not pd.api.types.is_numeric_dtype(history[column]):
            raise EstmError(f"{source}: the {column!r} column holds non-numbers")


def list_models(family: str | None = None) -> list[StoredModel]:
    """Every model file in the store (of `family`, if given), newest first; an entry that cannot be read (a folder, a
    dangling or looping link named like a model) is listed with its problem."""
    found = []
    for path in _model_files(family):
        try:
            stat = path.stat()
            size, modified = stat.st_size, datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)
        except OSError as error:
            found.append(StoredModel(model_name(path), current_name(path.parent.name), path, 0, None, None,
                                     f"{path}: unreadable ({error.strerror or error})"))
            continue
        try:
            info, problem = read_info(path), None
        except StoreError as error:
            info, problem = None, str(error)
        found.append(StoredModel(model_name(path), current_name(path.parent.name), path, size, modified, info,
                                 problem))
    oldest = datetime.fromtimestamp(0, tz=timezone.utc)
    return sorted(found, key=lambda model: model.modified or oldest, reverse=True)


def resolve(name_or_path: str | os.PathLike, family: str | None = None) -> Path:
    """A model file from a path, a store name (`NAME` or `FAMILY/NAME`), searched in `family` if given."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    try:
        exists = os.path.lexists(path)
    except (OSError, ValueError):  # a name too long for a path
        exists = False
    if exists and (text.endswith(MODEL_SUFFIX) or path.is_file()):
        return path
    if text.endswith(MODEL_SUFFIX) and ("/" in text or not _named(text, family)):
        raise StoreError(f"{text}: no such model file")  # a name ending so is one when the store has it
    if "/" in text and text.count("/") == 1 and not path.is_absolute():
        family, text = text.split("/")
        check_name(family, "family")
    check_name(text)
    candidates = [folder / f"{text}{MODEL_SUFFIX}" for folder in _folders_of(family)
                  if os.path.lexists(folder / f"{text}{MODEL_SUFFIX}")]
    if not candidates:
        where = f"{family} models" if family else "models"
        raise StoreError(f"no {where} named {text!r} in the store ({models_dir()}); `estm models list` shows them")
    if len(candidates) > 1:
        names = ", ".join(f"{current_name(candidate.parent.name)}/{text}" for candidate in candidates)
        raise StoreError(f"{text!r} is ambiguous: say which of {names}")
    return candidates[0]


def _named(name: str, family: str | None) -> bool:
    """Whether the store holds a model literally named `name` (of `family`)."""
    try:
        check_name(name)
    except StoreError:
        return False
    return any(os.path.lexists(folder / f"{name}{MODEL_SUFFIX}") for folder in _folders_of(family))


def newest(family: str) -> Path | None:
    """The most recently written model of `family` in the store, or None; a model whose training is still running
    (its file holds its best epoch so far) only when there is no other."""
    paths = sorted((path for path in _model_files(family) if path.is_file()), key=lambda path: path.stat().st_mtime)
    if not paths:
        return None

    def running(path: Path) -> bool:
        try:
            return read_info(path).training.status == "running"
        except StoreError:
            return True

    finished = [path for path in paths if not running(path)]
    return (finished or paths)[-1]


def find_model(family: str | tuple[str, ...], name_or_path: str | os.PathLike | None = None) -> Path:
    """The model a task should use: the one named, else the newest of `family` (or of any of several families that
    serve the task); says how to make one if none."""
    if name_or_path is not None:
        return resolve(name_or_path, family if isinstance(family, str) else None)
    families = (family,) if isinstance(family, str) else family
    paths = [path for path in map(newest, families) if path is not None]
    if not paths:
        raise StoreError(f"no {' or '.join(families)} model in the store ({models_dir()}); make one with "
                         f"`estm train {families[-1]}`")
    return max(paths, key=lambda path: path.stat().st_mtime)


def remove(name: str, family: str | None = None) -> list[Path]:
    """Delete a stored model, its history and its resume checkpoint; returns the files removed. Refused while the
    model trains (its lock is held)."""
    path = resolve(name, family)
    path = path.parent.resolve() / path.name  # a link named like a model goes, not what it points to
    if models_dir().resolve() not in path.parents:
        raise StoreError(f"{name}: not in the model store ({models_dir()}); delete files outside it yourself")
    if path.is_dir() and not path.is_symlink():
        raise StoreError(f"{path}: a folder, not a model file; remove it yourself")
    with model_lock(path, doing="remove it"):
        removed = [candidate for candidate in (path, history_path(path), resume_path(path))
                   if os.path.lexists(candidate)]
        for candidate in removed:
            try:
                candidate.unlink()
            except OSError as error:
                raise StoreError(f"{candidate}: cannot remove: {(error.strerror or str(error)).lower()}") from None
    remove_stale_temporaries(path.parent)
    return removed


def model_lock(path: Path, doing: str = "train it"):
    """Hold the lock of model file `path` (.NAME.lock beside it) while a run trains it or a command removes it."""
    _make_folder(path.parent)
    name = f"{path.parent.name}/{model_name(path)}"
    return lock(path.with_name(f".{model_name(path)}.lock"), busy=f"{name} is being trained",
                then=f"wait for it to finish to {doing}")


@contextmanager
def lock(lock_file: Path, busy: str, then: str) -> Iterator[None]:
    """Hold `lock_file` (a hidden file beside what it guards) while a run writes what it guards: a model trained or
    removed, a cache folder segmented into. A second holder, in this process or another, is refused at once with one
    line, StoreError '{busy} (pid N); {then}'. The lock file goes when released."""
    from filelock import FileLock, Timeout  # filelock >= 3.30: a refused contender leaves the holder's pid in place

    held = FileLock(lock_file, timeout=0)
    try:
        held.acquire()
    except Timeout:
        raise StoreError(f"{busy} ({_holder(lock_file)}); {then}") from None
    except OSError as error:  # a read-only place
        raise StoreError(f"{lock_file}: cannot write: {(error.strerror or str(error)).lower()}") from None
    try:
        with suppress(OSError):  # the pid only names the holder in a refusal (Windows may not let it be written)
            lock_file.write_text(str(os.getpid()))
        yield
    finally:
        # Removed while still held: a process that opened it meanwhile finds its lock on an unlinked file, and
        # filelock makes it start again on the path. (Windows removes no open file; filelock's release does there.)
        with suppress(OSError):
            lock_file.unlink()
        held.release()


def _holder(lock_file: Path) -> str:
    try:
        pid = lock_file.read_text().strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"


def load_model(name_or_path, family: str | None = None, device="cpu") -> LoadedModel:
    """Rebuild a model, named (in the store) or a path, from its file alone, in eval mode on `device`."""
    path = resolve(name_or_path, family)
    return model_file.load(path, model_name(path), family, device)
