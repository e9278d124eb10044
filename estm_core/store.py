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
import struct
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import EstmError, FileError
from .families import FAMILIES, FORMER_NAMES, current_name
from .files import atomic_write

if TYPE_CHECKING:
    import pandas as pd
    import torch

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs of one name are not kept apart there
    fcntl = None

MODEL_SUFFIX = ".safetensors"
HISTORY_SUFFIX = ".history.csv"
HISTORY_NEEDS = ("epoch", "loss")  # every family's history has these (estm_core.training.loop)
RESUME_SUFFIX = ".resume"  # NAME.resume: the last epoch's weights and optimiser, for `estm train --resume`
METADATA_KEY = "estm"

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
    def from_json(cls, fields: dict) -> ModelInfo:
        audio, training = fields.get("audio") or None, fields.get("training") or {}
        return cls(**{**fields, "family": current_name(fields["family"]),
                      "audio": None if audio is None else _known(AudioSettings, audio),
                      "training": _known(TrainingSummary, training)})


def _known(cls, values: dict):
    """`cls(**values)` with the keys `cls` does not have kept in its `other`."""
    names = {item.name for item in dataclasses.fields(cls)}
    other = {key: value for key, value in values.items() if key not in names}
    known = {key: value for key, value in values.items() if key in names}
    return cls(**{**known, "other": {**known.get("other", {}), **other}})


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
    its family's folder). Names are literal: '*' and '?' are no wildcards."""
    if not name or name in (".", "..") or name.startswith(".") or any(bad in name for bad in ("/", "\\", "\0")):
        raise StoreError(f"{name!r} is not a valid {what}: use a plain name, without '/', '\\' or a leading '.'")
    return name


def model_path(family: str, name: str) -> Path:
    """Where the store keeps model `name` of `family`."""
    return models_dir() / check_name(family, "family") / f"{check_name(name)}{MODEL_SUFFIX}"


def _family_folders() -> list[Path]:
    return sorted(folder for folder in models_dir().glob("*") if folder.is_dir() and not folder.name.startswith("."))


def _folders_of(family: str | None) -> list[Path]:
    """The store's folders of `family` (its own and those of its former names), or of every family."""
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
    if text.endswith(MODEL_SUFFIX) or path.is_file():
        if not os.path.lexists(path):
            raise StoreError(f"{text}: no such model file")
        return path
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
    with training_lock(path, doing="remove it"):
        removed = [candidate for candidate in (path, history_path(path), resume_path(path))
                   if os.path.lexists(candidate)]
        for candidate in removed:
            candidate.unlink()
    return removed


@contextmanager
def training_lock(path: Path, doing: str = "train it"):
    """Hold the lock of model file `path` (.NAME.lock beside it) while a run trains it or a command removes it; a
    second holder is refused at once with one line. The lock file goes when released."""
    if fcntl is None:
        yield
        return
    lock = path.with_name(f".{model_name(path)}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(descriptor)
            raise StoreError(f"{path.parent.name}/{model_name(path)} is being trained (pid {holder}); "
                             f"wait for it to finish to {doing}") from None
        try:  # the file may have been removed by the holder we waited on: lock the one at the path now
            if os.fstat(descriptor).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(descriptor)
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, str(os.getpid()).encode(), 0)
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(descriptor)


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
    from safetensors.torch import save_model as save_safetensors

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
    with atomic_write(path, force=force) as temporary:
        save_safetensors(model, str(temporary), metadata=metadata)
    return Path(path)


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
        fields = json.loads(metadata[METADATA_KEY])
        return ModelInfo.from_json(fields)
    except KeyError:
        raise StoreError(f"{path}: a safetensors file without estm metadata (not an estm model)") from None
    except Exception as error:  # a damaged header or metadata of another shape
        raise StoreError(f"{path}: unreadable model file ({error})") from None


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
    cls = model_class(info.family)
    try:
        with torch.device("meta"):
            expected = cls(**info.config).state_dict()
    except Exception as error:  # a config the class does not take
        raise StoreError(f"{path}: its config does not make a {info.family} model ({error})") from None
    tensors = load_file(str(path))
    mismatch = _mismatch(expected, tensors)
    if mismatch:
        raise StoreError(f"{path}: weights do not fit the {info.family} model its config describes ({mismatch})")
    bad = nonfinite_weights(tensors)
    if bad:
        raise StoreError(f"{path}: weight {bad} holds NaN or infinite values (a diverged run); not loaded")
    model = cls(**info.config)
    model.load_state_dict(tensors, strict=True)
    return LoadedModel(model_name(path), model.to(device).eval(), info)


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
