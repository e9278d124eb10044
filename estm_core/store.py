"""Model files and the model store.

A model file is one `.safetensors` file whose metadata key "estm" holds JSON: the family, the constructor arguments,
label names, audio settings, a training summary and the estm version, so the file alone rebuilds its model. Loading
never unpickles. The store is `$ESTM_HOME/models/FAMILY/NAME.safetensors` (default `~/.local/share/estm`), with a
training history `NAME.history.csv` beside each model.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import math
import os
import re
import struct
import time
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import EstmError, FileError
from .families import FAMILIES, FORMER_NAMES, current_name
from .files import _OWNER, _alive, atomic_write

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd
    import torch

MODEL_SUFFIX = ".safetensors"
HISTORY_SUFFIX = ".history.csv"
HISTORY_NEEDS = ("epoch", "loss")  # every family's history has these (estm_core.training.loop)
RESUME_SUFFIX = ".resume"  # NAME.resume: the last epoch's weights and optimiser, for `estm train --resume`
METADATA_KEY = "estm"
MAX_NAME_BYTES = 150  # NAME.history.csv's temporary adds up to 99 bytes (a 64-byte host name): within 255

# What a model file's audio settings may say: what the data commands can make (their own bounds, in
# datasets/limits.py), so that no hostile number reaches an allocation (a segment_length of 2**29 made classify
# allocate 4.45 GB)
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 192_000
MAX_SEGMENT_SECONDS = 600
MIN_TRANSFER_SEGMENT = 255  # the transfer families' deepest encoder (7 unpadded stride-2 convolutions) needs this
MAX_MU_LAW_CLASSES = 1 << 16
MAX_LABELS = 1024
STALE_SECONDS = 24 * 3600  # a temporary this old is a dead write's, whoever wrote it

_REGISTRY: dict[str, type] = {}


class StoreError(EstmError):
    """A model that cannot be found, read or rebuilt."""


@dataclass
class AudioSettings:
    """What a model takes in: the rate it runs at and, per family, how much audio at once."""

    sample_rate: int
    segment_length: int | None = None  # classifiers and transfer models: samples per segment
    features: dict | None = None  # classifiers: their log-mel settings (features.FeatureSettings as a dict)
    mu_law_classes: int | None = None  # wavenet: its quantisation
    receptive_field: int | None = None  # wavenet: samples of context per prediction
    output_length: int | None = None  # wavenet: samples predicted per training window
    other: dict = field(default_factory=dict)  # keys this version does not know (kept, so a rewrite loses none)


@dataclass
class TrainingSummary:
    """How a model was made: what it learned from (the trainer's part) and how the run went (training.loop's)."""

    data: str | None = None  # the segment cache or audio folder it learned from
    label_column: str = "label"  # classifiers: the manifest column their labels came from
    segments: dict = field(default_factory=dict)  # classifiers and transfer models: segments per part
    files: dict = field(default_factory=dict)  # wavenet: files per part
    train_variance: float | None = None  # transfer models: the training audio's variance, MSE_C's scale
    style_labels: str | None = None  # transfer models: "truth" or the labels file they learned
    style_labeller: str | None = None  # the mer model that made those labels (a judge must be another)
    preset: str | None = None  # wavenet
    holdout: str | None = None  # wavenet: what was held out for validation, whole files ("file") or ends ("time")
    source: dict | None = None  # imported models: the original file, its sha256, the tool that made it
    collapsed: bool | None = None  # imported VQ models: whether they decode a test signal to near-silence
    status: str | None = None  # running, finished, early-stopped, max-steps, nan, imported
    config: dict = field(default_factory=dict)  # the TrainConfig it ran with
    epochs_run: int | None = None
    steps: int | None = None
    monitor: str | None = None
    best_epoch: int | None = None
    best_value: float | None = None
    best: dict = field(default_factory=dict)  # the saved epoch's history row
    final: dict = field(default_factory=dict)  # the last epoch's history row
    device: str | None = None
    world_size: int | None = None
    other: dict = field(default_factory=dict)  # keys this version does not know (kept, so a rewrite loses none)


@dataclass
class ModelInfo:
    """The JSON metadata stored in every model file."""

    family: str
    config: dict  # constructor arguments: family class(**config) rebuilds the model
    labels: list[str] = field(default_factory=list)
    audio: AudioSettings | None = None
    training: TrainingSummary = field(default_factory=TrainingSummary)
    estm_version: str = __version__
    created: str = ""

    @classmethod
    def from_json(cls, fields) -> ModelInfo:
        """The metadata of a model file, every part checked against what estm can use (EstmError says which)."""
        if not isinstance(fields, dict):
            raise EstmError(f"the metadata is a JSON {type(fields).__name__}, not an object")
        missing = [key for key in ("family", "config") if key not in fields]
        unknown = sorted(set(fields) - {item.name for item in dataclasses.fields(cls)})
        if missing or unknown:
            raise EstmError(f"no {missing[0]} in the metadata" if missing else f"unknown metadata {', '.join(unknown)}")
        for key, kinds in (("family", (str,)), ("config", (dict,)), ("labels", (list,)), ("audio", (dict, type(None))),
                           ("training", (dict, type(None))), ("estm_version", (str,)), ("created", (str,))):
            if key in fields and not isinstance(fields[key], kinds):
                raise EstmError(f"{key} is {_shown(fields[key])}, not {_kind_name(kinds)}")
        audio, training = fields.get("audio"), fields.get("training") or {}
        if audio is not None and "sample_rate" not in audio:
            raise EstmError("audio has no sample_rate")
        info = cls(**{**fields, "family": current_name(fields["family"]),
                      "audio": None if audio is None else _known(AudioSettings, audio),
                      "training": _known(TrainingSummary, training)})
        _check_info(info)
        return info


def _known(cls, values: dict):
    """`cls(**values)` with the keys `cls` does not have kept in its `other`."""
    names = {item.name for item in dataclasses.fields(cls)}
    other = {key: value for key, value in values.items() if key not in names}
    known = {key: value for key, value in values.items() if key in names}
    return cls(**{**known, "other": {**known.get("other", {}), **other}})


def _shown(value) -> str:
    """A value as an error line quotes it: short."""
    text = json.dumps(value) if isinstance(value, (dict, list, str, type(None))) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_KINDS = {"int": (int,), "float": (int, float), "str": (str,), "dict": (dict,), "bool": (bool,),
          "None": (type(None),)}


def _kind_name(kinds: tuple) -> str:
    names = {int: "a whole number", float: "a number", str: "a string", dict: "an object", list: "a list",
             bool: "true or false", type(None): "null"}
    return " or ".join(names[kind] for kind in kinds if not (kind is int and float in kinds))


def _check_types(instance, what: str) -> None:
    """Each field of a metadata dataclass holds what its annotation says (a bool is no number here)."""
    for item in dataclasses.fields(instance):
        value = getattr(instance, item.name)
        kinds = tuple(kind for part in str(item.type).split("|") for kind in _KINDS[part.strip()])
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise EstmError(f"{what}.{item.name} is {_shown(value)}, not {_kind_name(kinds)}")


def _check_info(info: ModelInfo) -> None:
    """EstmError unless what `info` holds is within what estm can use: a known family, distinct labels, audio
    settings in range (what a task needs of them is checked when it loads the model: `_check_usable`)."""
    if info.family not in FAMILIES and info.family not in _REGISTRY:
        raise EstmError(f"model family {info.family!r} is not available in estm {__version__}")
    _check_types(info.training, "training")
    labels = info.labels
    if not all(isinstance(label, str) and label.strip() for label in labels):
        raise EstmError(f"labels must be non-empty strings (got {_shown(labels)})")
    if len(set(labels)) != len(labels) or len(labels) > MAX_LABELS:
        raise EstmError(f"labels must be distinct, at most {MAX_LABELS} (got {_shown(labels)})")
    if info.audio is not None:
        _check_types(info.audio, "audio")
        _check_audio(info.audio, FAMILIES[info.family].recipe if info.family in FAMILIES else None)


def _check_usable(info: ModelInfo) -> None:
    """EstmError unless `info` has what its family's tasks read: audio settings and the labels they decide."""
    family = FAMILIES.get(info.family)
    if family is None:
        return
    if info.audio is None:
        raise EstmError("no audio settings (audio is null)")
    needs = {"classifier": ("segment_length", "features"), "transfer": ("segment_length",),
             "wavenet": ("mu_law_classes", "receptive_field", "output_length")}[family.recipe]
    missing = [name for name in needs if getattr(info.audio, name) is None]
    if missing:
        raise EstmError(f"audio settings without {', '.join(missing)}")
    if family.labels is not None and tuple(info.labels) != tuple(family.labels):
        raise EstmError(f"a {info.family} model's labels are {_shown(list(family.labels))} "
                        f"(got {_shown(info.labels)})")
    if family.recipe == "classifier" and len(info.labels) < 2:
        raise EstmError(f"a classifier needs at least two labels (got {_shown(info.labels)})")


def _check_audio(audio: AudioSettings, recipe: str | None) -> None:
    """The audio settings within what the code can use."""
    from .features import FeatureSettings

    def within(name: str, low: int, high: int) -> None:
        value = getattr(audio, name)
        if value is not None and not low <= value <= high:
            raise EstmError(f"audio.{name} is {value}, outside {low}..{high}")

    within("sample_rate", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    longest = MAX_SEGMENT_SECONDS * audio.sample_rate
    within("segment_length", MIN_TRANSFER_SEGMENT if recipe == "transfer" else 1, longest)
    within("mu_law_classes", 2, MAX_MU_LAW_CLASSES)
    within("receptive_field", 2, longest)
    within("output_length", 1, longest)
    if audio.features is not None:
        try:
            features = FeatureSettings.from_dict(audio.features)
        except (EstmError, TypeError) as error:
            raise EstmError(f"audio.features: {error}") from None
        if audio.segment_length is not None and audio.segment_length < features.n_fft:
            raise EstmError(f"audio.segment_length {audio.segment_length} is shorter than n_fft {features.n_fft}")


@dataclass
class LoadedModel:
    """A model rebuilt from its file (in eval mode on its device), with what the file says about it."""

    name: str
    model: torch.nn.Module
    info: ModelInfo

    @property
    def family(self) -> str:
        return self.info.family

    @property
    def sample_rate(self) -> int:
        return self.info.audio.sample_rate

    @property
    def segment_length(self) -> int | None:
        return self.info.audio.segment_length

    @property
    def device(self):
        return next(self.model.parameters()).device


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


# ------------------------------------------------------------------------------------------------ the registry


def register(family: str):
    """Class decorator: make `family` rebuildable from a file. Records the constructor's arguments (defaults
    filled in) as `model.config`, so saving needs nothing else from the class."""

    def decorate(cls: type) -> type:
        original_init = cls.__init__
        signature = inspect.signature(original_init)

        @functools.wraps(original_init)
        def __init__(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            original_init(self, *args, **kwargs)
            self.config = {name: value for name, value in bound.arguments.items() if name != "self"}

        cls.__init__ = __init__
        cls.family = family
        _REGISTRY[family] = cls
        return cls

    return decorate


def model_class(family: str) -> type:
    """The class registered for `family` (or a former name of it), importing its module on first use."""
    family = current_name(family)
    if family not in _REGISTRY and family in FAMILIES:  # imported on first use, so torch loads lazily
        module = f"estm_core.models.{FAMILIES[family].module}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise
    if family not in _REGISTRY:
        raise StoreError(f"model family {family!r} is not available in estm {__version__}")
    return _REGISTRY[family]


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


# a temporary of atomic_write: .STEM.HOST-PID.RANDOM.tmp.SUFFIX (files.atomic_write names them so)
_TEMPORARY = re.compile(r"^\.(?P<stem>.+)\.(?P<host>[^.]+)-(?P<pid>\d+)\.[^.]+\.tmp(\.[^.]*)?$")


def remove_stale_temporaries(folder: Path, now: float | None = None) -> list[Path]:
    """Delete the temporaries of killed writes in a store folder (a name never written again keeps its own
    forever otherwise): those of a process of this host that is gone, and any a day old. Returns them."""
    host, _ = _OWNER.rsplit("-", 1)
    now = time.time() if now is None else now
    removed = []
    for candidate in folder.glob(".*.tmp*"):
        match = _TEMPORARY.match(candidate.name)
        try:
            if not match or not candidate.is_file():
                continue
            dead = match["host"] == host and not _alive(int(match["pid"]))
            if dead or now - candidate.stat().st_mtime > STALE_SECONDS:
                candidate.unlink()
                removed.append(candidate)
        except OSError:  # gone meanwhile, or a read-only store: it stays, harmless
            continue
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


# ------------------------------------------------------------------------------------------------ model files


def save_model(
    model,
    path: str | os.PathLike,
    *,
    labels=(),
    audio: AudioSettings | None = None,
    training: TrainingSummary | None = None,
    force: bool = False,
) -> Path:
    """Write a registered model's weights and metadata to one safetensors file, atomically."""
    family = getattr(model, "family", None)
    if family not in _REGISTRY:
        raise StoreError(f"{type(model).__name__} is not a registered model family; decorate it with @register")
    bad = nonfinite_weights(model.state_dict())
    if bad:
        raise StoreError(f"{path}: not saved: the weights hold NaN or infinite values ({bad})")
    info = ModelInfo(
        family=family,
        config=model.config,
        labels=list(labels),
        audio=audio,
        training=training or TrainingSummary(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    try:
        metadata = {METADATA_KEY: json.dumps(_finite(asdict(info)), allow_nan=False)}
    except (TypeError, ValueError) as error:
        raise StoreError(f"model metadata must be plain JSON: {error}") from None
    try:  # never write a file that read_info would refuse
        ModelInfo.from_json(json.loads(metadata[METADATA_KEY]))
    except EstmError as error:
        raise StoreError(f"{path}: not saved: its metadata is unusable: {error}") from None
    write_tensors(path, model.state_dict(), metadata, force=force)
    return Path(path)


def write_tensors(path: str | os.PathLike, tensors: dict, metadata: dict, force: bool = False) -> None:
    """Tensors and string metadata as one safetensors file, atomically. Serialised in memory and written by Python,
    so that a full disk is an OSError with its errno (safetensors' own writer raises an opaque SafetensorError)."""
    from safetensors.torch import save

    data = save({key: value.detach().cpu().contiguous() for key, value in tensors.items()}, metadata=metadata)
    try:
        with atomic_write(path, force=force) as temporary:
            temporary.write_bytes(data)
    except OSError as error:  # a full disk, a read-only store: one line naming the file, as atomic_write's own
        raise FileError(path, f"cannot write: {(error.strerror or str(error)).lower()}") from None


def _finite(value):
    """NaN and infinities (a diverged metric) become null, which JSON can hold."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def read_info(path: str | os.PathLike) -> ModelInfo:
    """The metadata of a model file, after checking it is a safetensors file and not a pickle."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with open(path, "rb") as file:
            head = file.read(9)
        size = path.stat().st_size
    except OSError as error:  # a folder, a dangling or looping link
        raise StoreError(f"{path}: unreadable ({error.strerror or error})") from None
    # safetensors: an 8-byte little-endian header length, then the JSON header
    if len(head) < 9 or head[8:9] != b"{" or struct.unpack("<Q", head[:8])[0] > size:
        if head[:2] == b"PK" or head[:1] == b"\x80":  # torch.save's zip archive, or a bare pickle
            raise StoreError(
                f"{path}: a pickled PyTorch checkpoint; estm loads only .safetensors model files "
                "(unpickling can run arbitrary code)"
            )
        raise StoreError(f"{path}: not a safetensors model file")
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
    except Exception as error:  # a damaged header
        raise StoreError(f"{path}: unreadable model file ({error})") from None
    if METADATA_KEY not in metadata:
        raise StoreError(f"{path}: a safetensors file without estm metadata (not an estm model)")
    try:
        fields = json.loads(metadata[METADATA_KEY])
    except ValueError as error:
        raise StoreError(f"{path}: unreadable model metadata (not JSON: {error})") from None
    try:
        return ModelInfo.from_json(fields)
    except EstmError as error:
        raise StoreError(f"{path}: unusable model metadata: {error}") from None
    except Exception as error:  # metadata of another shape
        raise StoreError(f"{path}: unusable model metadata ({type(error).__name__}: {error})") from None


def nonfinite_weights(tensors: dict) -> str | None:
    """The name of the first floating-point tensor of `tensors` with a NaN or an infinity, or None."""
    import torch

    floating = {key: tensor for key, tensor in tensors.items() if tensor.is_floating_point()}
    if not floating or bool(torch.stack([tensor.isfinite().all() for tensor in floating.values()]).all()):
        return None  # one check on the device for them all; only a bad model pays for finding which
    return next(key for key, tensor in floating.items() if not bool(tensor.isfinite().all()))


def load_model(name_or_path, family: str | None = None, device="cpu") -> LoadedModel:
    """Rebuild a model from its file alone, in eval mode on `device`.

    The file's tensors are checked before the model is built: their names, shapes and dtypes against a model built
    on torch's meta device (no memory, so a config asking for a huge model fails here, not in an allocation), and
    their values for NaN and infinities."""
    import torch
    from safetensors.torch import load_file

    path = resolve(name_or_path, family)
    info = read_info(path)
    if family is not None and info.family != current_name(family):
        raise StoreError(f"{path}: a {info.family} model, but this needs a {family} model")
    try:
        _check_usable(info)
    except EstmError as error:
        raise StoreError(f"{path}: unusable model metadata: {error}") from None
    cls = model_class(info.family)
    try:
        with torch.device("meta"):
            skeleton = cls(**info.config).eval()
    except Exception as error:  # a config the class does not take
        raise StoreError(f"{path}: its config does not make a {info.family} model ({_first_line(error)})") from None
    misfit = _misfit(skeleton, info)
    if misfit:
        raise StoreError(f"{path}: {misfit}")
    tensors = load_file(str(path))
    mismatch = _mismatch(skeleton.state_dict(), tensors)
    if mismatch:
        raise StoreError(f"{path}: weights do not fit the {info.family} model its config describes ({mismatch})")
    bad = nonfinite_weights(tensors)
    if bad:
        raise StoreError(f"{path}: weight {bad} holds NaN or infinite values (a diverged run); not loaded")
    model = cls(**info.config)
    model.load_state_dict(tensors, strict=True)
    return LoadedModel(model_name(path), model.to(device).eval(), info)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _misfit(skeleton, info: ModelInfo) -> str | None:
    """How a model built on the meta device does not fit its file's audio settings and labels, or None: a classifier
    must take the log-mel its settings make and decide one class per label (tried on the meta device, so it costs
    no memory); a wavenet must quantise and look back as its settings say."""
    import torch

    family, audio = FAMILIES.get(info.family), info.audio
    if family is None or audio is None:
        return None
    if family.recipe == "classifier":
        from .features import FeatureSettings, frame_count

        settings = FeatureSettings.from_dict(audio.features)
        frames = frame_count(audio.segment_length, settings.hop_length)
        try:
            with torch.device("meta"):
                classes = skeleton(torch.empty(1, 1, settings.n_mels, frames)).shape[-1]
        except Exception as error:
            return (f"its network does not take the {settings.n_mels} x {frames} log-mel its audio settings make "
                    f"({_first_line(error)})")
        if classes != len(info.labels):
            return f"its network decides {classes} classes, but it has {len(info.labels)} labels"
    if family.recipe == "wavenet":
        for name, value in (("mu_law_classes", skeleton.classes), ("receptive_field", skeleton.receptive_field)):
            if getattr(audio, name) != value:
                return f"audio.{name} is {getattr(audio, name)}, but its network's is {value}"
        if skeleton.config["labels"] != len(info.labels):
            return f"its network is conditioned on {skeleton.config['labels']} labels, but it has {len(info.labels)}"
    return None


def _mismatch(expected: dict, found: dict) -> str | None:
    """How the tensors `found` differ from those `expected` (names, shapes, dtypes), or None."""
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        return f"missing {', '.join(missing[:3]) or 'none'}; unexpected {', '.join(unexpected[:3]) or 'none'}"
    for key, tensor in expected.items():
        if tuple(found[key].shape) != tuple(tensor.shape):
            return f"{key} is {tuple(found[key].shape)}, the config makes {tuple(tensor.shape)}"
        if found[key].dtype != tensor.dtype:
            return f"{key} is {found[key].dtype}, the model takes {tensor.dtype}"
    return None
