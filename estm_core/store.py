"""Model files and the model store.

A model file is one `.safetensors` file whose metadata key "estm" holds JSON: the family, the constructor arguments,
label names, audio settings, a training summary and the estm version, so the file alone rebuilds its model. Loading
never unpickles. The store is `$ESTM_HOME/models/FAMILY/NAME.safetensors` (default `~/.local/share/estm`), with a
training history `NAME.history.csv` beside each model.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import math
import os
import struct
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .errors import EstmError
from .files import atomic_write

MODEL_SUFFIX = ".safetensors"
HISTORY_SUFFIX = ".history.csv"
RESUME_SUFFIX = ".resume"  # NAME.resume: the last epoch's weights and optimiser, for `estm train --resume`
METADATA_KEY = "estm"

# Family -> module under estm_core.models that registers it (imported on first use, so torch loads lazily).
FAMILY_MODULES = {
    "mer": "mer",
    "genre": "resnet",
    "emotion": "resnet",
    "hvqvae": "estm",
    "estm1": "estm",
    "estm2": "estm",
    "wavenet": "wavenet",
}
_REGISTRY: dict[str, type] = {}


class StoreError(EstmError):
    """A model that cannot be found, read or rebuilt."""


@dataclass
class ModelInfo:
    """The JSON metadata stored in every model file."""

    family: str
    config: dict  # constructor arguments: family class(**config) rebuilds the model
    labels: list[str] = field(default_factory=list)
    audio: dict = field(default_factory=dict)  # sample rate, segment length, feature settings
    training: dict = field(default_factory=dict)  # hyperparameters, data, final metrics
    estm_version: str = __version__
    created: str = ""


@dataclass
class StoredModel:
    """One file in the store, as `estm models list` shows it."""

    name: str
    family: str
    path: Path
    size_bytes: int
    modified: datetime
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
    """The class registered for `family`, importing its module on first use."""
    if family not in _REGISTRY and family in FAMILY_MODULES:
        try:
            importlib.import_module(f"estm_core.models.{FAMILY_MODULES[family]}")
        except ModuleNotFoundError as error:
            if error.name != f"estm_core.models.{FAMILY_MODULES[family]}":
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


def model_path(family: str, name: str) -> Path:
    """Where the store keeps model `name` of `family`."""
    return models_dir() / family / f"{name}{MODEL_SUFFIX}"


def history_path(path: Path) -> Path:
    """NAME.safetensors -> NAME.history.csv beside it."""
    return path.with_name(path.name.removesuffix(MODEL_SUFFIX) + HISTORY_SUFFIX)


def resume_path(path: Path) -> Path:
    """NAME.safetensors -> NAME.resume beside it (a safetensors file, named so it is never taken for a model)."""
    return path.with_name(path.name.removesuffix(MODEL_SUFFIX) + RESUME_SUFFIX)


def list_models(family: str | None = None) -> list[StoredModel]:
    """Every model file in the store (of `family`, if given), newest first."""
    found = []
    for path in sorted(models_dir().glob(f"{family or '*'}/*{MODEL_SUFFIX}")):
        stat = path.stat()
        try:
            info, problem = read_info(path), None
        except StoreError as error:
            info, problem = None, str(error)
        found.append(StoredModel(
            name=model_name(path),
            family=path.parent.name,
            path=path,
            size_bytes=stat.st_size,
            modified=datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc),
            info=info,
            problem=problem,
        ))
    return sorted(found, key=lambda model: model.modified, reverse=True)


def resolve(name_or_path: str | os.PathLike, family: str | None = None) -> Path:
    """A model file from a path, a store name (`NAME` or `FAMILY/NAME`), searched in `family` if given."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith(MODEL_SUFFIX) or path.is_file():
        if not path.is_file():
            raise StoreError(f"{text}: no such model file")
        return path
    if "/" in text and text.count("/") == 1 and not path.is_absolute():
        family, text = text.split("/")
    candidates = sorted(models_dir().glob(f"{family or '*'}/{text}{MODEL_SUFFIX}"))
    if not candidates:
        where = f"{family} models" if family else "models"
        raise StoreError(f"no {where} named {text!r} in the store ({models_dir()}); `estm models list` shows them")
    if len(candidates) > 1:
        names = ", ".join(f"{candidate.parent.name}/{text}" for candidate in candidates)
        raise StoreError(f"{text!r} is ambiguous: say which of {names}")
    return candidates[0]


def newest(family: str) -> Path | None:
    """The most recently written model of `family` in the store, or None; a model whose training is still running
    (its file holds its best epoch so far) only when there is no other."""
    paths = sorted(models_dir().glob(f"{family}/*{MODEL_SUFFIX}"), key=lambda path: path.stat().st_mtime)
    if not paths:
        return None

    def running(path: Path) -> bool:
        try:
            return read_info(path).training.get("status") == "running"
        except StoreError:
            return True

    finished = [path for path in paths if not running(path)]
    return (finished or paths)[-1]


def find_model(family: str, name_or_path: str | os.PathLike | None = None) -> Path:
    """The model a task should use: the one named, else the newest of `family`; says how to make one if none."""
    if name_or_path is not None:
        return resolve(name_or_path, family)
    path = newest(family)
    if path is None:
        raise StoreError(f"no {family} model in the store ({models_dir()}); make one with `estm train {family}`")
    return path


def remove(name: str, family: str | None = None) -> list[Path]:
    """Delete a stored model, its history and its resume checkpoint; returns the files removed."""
    path = resolve(name, family).resolve()
    if models_dir().resolve() not in path.parents:
        raise StoreError(f"{name}: not in the model store ({models_dir()}); delete files outside it yourself")
    removed = [candidate for candidate in (path, history_path(path), resume_path(path)) if candidate.exists()]
    for candidate in removed:
        candidate.unlink()
    return removed


# ------------------------------------------------------------------------------------------------ model files


def save_model(
    model,
    path: str | os.PathLike,
    *,
    labels=(),
    audio: dict | None = None,
    training: dict | None = None,
    force: bool = False,
) -> Path:
    """Write a registered model's weights and metadata to one safetensors file, atomically."""
    from safetensors.torch import save_model as save_safetensors

    family = getattr(model, "family", None)
    if family not in _REGISTRY:
        raise StoreError(f"{type(model).__name__} is not a registered model family; decorate it with @register")
    info = ModelInfo(
        family=family,
        config=model.config,
        labels=list(labels),
        audio=dict(audio or {}),
        training=dict(training or {}),
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
    with open(path, "rb") as file:
        head = file.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header
    if len(head) < 9 or head[8:9] != b"{" or struct.unpack("<Q", head[:8])[0] > path.stat().st_size:
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
        return ModelInfo(**fields)
    except KeyError:
        raise StoreError(f"{path}: a safetensors file without estm metadata (not an estm model)") from None
    except Exception as error:  # a damaged header or metadata of another shape
        raise StoreError(f"{path}: unreadable model file ({error})") from None


def load_model(name_or_path, family: str | None = None, device="cpu"):
    """Rebuild a model from its file alone. Returns (model in eval mode on `device`, ModelInfo)."""
    from safetensors.torch import load_model as load_safetensors

    path = resolve(name_or_path, family)
    info = read_info(path)
    if family is not None and info.family != family:
        raise StoreError(f"{path}: a {info.family} model, but this needs a {family} model")
    model = model_class(info.family)(**info.config)
    try:
        load_safetensors(model, str(path), strict=True)
    except Exception as error:
        raise StoreError(f"{path}: weights do not fit the {info.family} model they claim to be ({error})") from None
    return model.to(device).eval(), info
