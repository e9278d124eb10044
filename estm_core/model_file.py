"""The model file: one `.safetensors` file whose metadata key "estm" holds JSON: the family, the constructor
arguments, label names, audio settings, a training summary and the estm version, so the file alone rebuilds its
model. Loading never unpickles. Here: the metadata classes and their checks, the registry of model classes, and
saving, reading and loading one file given its path (finding it by name is `store`'s).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import EstmError, FileError, StoreError
from .families import FAMILIES, current_name, model_class, registered
from .files import atomic_write

if TYPE_CHECKING:
    import torch

METADATA_KEY = "estm"

# What a model file's audio settings may say: what the data commands can make (their own bounds, in
# datasets/limits.py), so that no hostile number reaches an allocation (a segment_length of 2**29 made classify
# allocate 4.45 GB)
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 192_000
MAX_SEGMENT_SECONDS = 600
MIN_VQVAE_SEGMENT = 255  # the transfer families' deepest encoder (7 unpadded stride-2 convolutions) needs this
MAX_MU_LAW_CLASSES = 1 << 16
MAX_LABELS = 1024

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
    middle: dict | None = None  # wavenet on cue curves: the training audio's median cues (curves.summary), from
    #                             which generation's quadrant profiles move
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
    if info.family not in FAMILIES and not registered(info.family):
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
    needs = {"classifier": ("segment_length", "features"), "vqvae": ("segment_length",),
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
    within("segment_length", MIN_VQVAE_SEGMENT if recipe == "vqvae" else 1, longest)
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
    if not registered(family):
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


def load(path: Path, name: str, family: str | None = None, device="cpu") -> LoadedModel:
    """Rebuild model `name` from its file `path` alone, in eval mode on `device` (`store.load_model` finds the file).

    The file's tensors are checked before the model is built: their names, shapes and dtypes against a model built
    on torch's meta device (no memory, so a config asking for a huge model fails here, not in an allocation), and
    their values for NaN and infinities."""
    import torch
    from safetensors.torch import load_file

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
    return LoadedModel(name, model.to(device).eval(), info)


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
