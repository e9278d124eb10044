"""Read the original ESTM project's Keras 2 `.h5` models and convert them to ours (keras_import.py stores them).

The original (Keras 2, 2023) saved its models either as weights only (top-level attributes `backend`,
`keras_version`, `layer_names`; one group per layer whose `weight_names` attribute lists its datasets, e.g.
`vq_vae/conv1d_31/kernel:0`) or as a full model, which nests the same under `model_weights/`. Both are read here.

Keras names layers by per-kind counters that run on across every model built in one session (a grid's third model
starts at conv1d_30), so layers map onto ours by creation order (the counter's order), never by name. The original
created, in this order: the three encoders (bottom, middle, top), the decoder, then the upsamplers (bottom, middle,
top); its codebooks are named `embeddings_vqvae_{0,1,2}`, bottom to top. Layouts (Keras -> torch):

    Conv1D kernel           (k, in, out)        -> (out, in, k)
    Conv1DTranspose kernel  (k, out, in)        -> (in, out, k)   no flip: both frameworks correlate the same way
    Conv2D kernel           (kh, kw, in, out)   -> (out, in, kh, kw)
    Dense kernel            (in, out)           -> (out, in)
    VQ codebook             (D, K)              -> (K, D)

The family and its constructor arguments come from the shapes; beta and beta_e from an ESTM-2 grid file's name
(`estm2_{beta_e}_{d}_{beta}.h5`), the only place the original recorded them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import EstmError, FileError
from .families import FAMILIES, model_class, with_codebooks
from .files import sha256
from .labels import QUADRANTS

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
KERAS_EXTRA = "pip install 'estm[keras]'"

HIERARCHY_FAMILIES = with_codebooks()  # the hierarchical VQ-VAE families: hvqvae, estm1, estm2
EMOTIONS = 4  # the emotion channels ESTM-1 joins to its latents and ESTM-2 keeps in its last ones
# Layers of the hierarchy by kind, in Keras' creation order: encoders 3 + 5 + 7 convolutions; decoder 3, then the
# upsamplers 1 (bottom) + 2 (middle) + 4 (top) transposed convolutions; one codebook per level.
HIERARCHY_COUNTS = {"conv1d": 15, "conv1d_transpose": 10, "codebook": 3}
DECODER_LAYERS = 3
MER_COUNTS = {"conv2d": 8, "dense": 3}

LAYER_NAME = re.compile(r"(?P<kind>conv1d_transpose|conv1d|conv2d|dense)(?:_(?P<counter>\d+))?")
GRID_NAME = re.compile(r"estm2_(?P<beta_e>\d+(?:\.\d+)?)_(?P<d>\d+)_(?P<beta>\d+(?:\.\d+)?)")


class _Refused(Exception):
    """A cause for refusing the file being read; read_keras names the file."""


@dataclass
class Imported:
    """An original model converted to ours: `model` is built from `config` and holds `state_dict` (loaded strictly)."""

    family: str
    config: dict  # the constructor arguments, defaults filled in
    state_dict: dict  # name -> float32 torch tensor, in our layout
    labels: list[str]
    provenance: dict  # source (absolute path), sha256, keras_version
    model: object  # the torch module, in eval mode
    from_name: dict = field(default_factory=dict)  # hyperparameters the file's name gave (beta, beta_e)


@dataclass
class _Layer:
    kind: str  # conv1d, conv1d_transpose, conv2d or dense
    counter: int  # Keras' creation counter for the kind
    name: str
    kernel: np.ndarray | None = None
    bias: np.ndarray | None = None


# ------------------------------------------------------------------------------------------------ reading


def read_keras(path: str | Path) -> Imported:
    """Read an original Keras `.h5` model and convert it: the family and its config from the shapes, every tensor
    into our module's layout. A file that cannot be imported raises FileError with one line naming the cause."""
    import torch

    path = Path(path)
    try:
        keras_version, layers, codebooks = _read_h5(path)
        family, config, from_name = _infer(path.stem, layers, codebooks)
        cls = model_class(family)
        with torch.device("meta"):  # the expected names and shapes, without allocating a model that may not fit
            target = cls(**config)
        tensors = _convert(family, target, layers, codebooks)
        model = cls(**config)
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as error:  # the checks above should leave nothing for this to find
            raise _Refused(f"its weights do not load into a {family} model ({str(error).splitlines()[0]})") from None
    except _Refused as refusal:
        raise FileError(path, str(refusal)) from None
    return Imported(
        family=family,
        config=dict(model.config),
        state_dict=tensors,
        labels=list(FAMILIES[family].labels),
        provenance={"source": str(path.resolve()), "sha256": sha256(path), "keras_version": keras_version},
        model=model.eval(),
        from_name=from_name,
    )


def _h5py():
    try:
        import h5py
    except ImportError:
        raise EstmError(f"reading Keras .h5 files needs h5py: {KERAS_EXTRA}") from None
    return h5py


def _read_h5(path: Path) -> tuple[str | None, dict[str, list[_Layer]], list[np.ndarray]]:
    """-> (keras version, {kind: layers in creation order}, codebooks bottom to top), the weights as float32."""
    h5py = _h5py()
    try:
        with open(path, "rb") as file:
            head = file.read(len(HDF5_SIGNATURE))
    except FileNotFoundError:
        raise _Refused("no such file") from None
    except OSError as error:
        raise _Refused(f"unreadable ({error.strerror or error})") from None
    if not head:
        raise _Refused("an empty file, not a Keras .h5 model")
    if head != HDF5_SIGNATURE:  # HDF5 may sit behind a user block, but Keras never writes one
        raise _Refused("not an HDF5 file, so not a Keras .h5 model")
    try:
        with h5py.File(path, "r") as file:
            root = file["model_weights"] if "model_weights" in file else file  # a full-model save nests the weights
            if "layer_names" not in root.attrs:
                raise _Refused("an HDF5 file but not a Keras 2 model or weights save (it has no layer_names)")
            version = file.attrs.get("keras_version", root.attrs.get("keras_version"))
            weights = {}
            for layer in root.attrs["layer_names"]:
                group = root[_text(layer)]
                for name in group.attrs.get("weight_names", []):
                    weights[_text(name)] = np.asarray(group[_text(name)], dtype=np.float32)
    except _Refused:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as error:  # how h5py reports a cut or damaged file
        cause = " ".join(str(error).split())
        raise _Refused(f"a truncated or damaged HDF5 file ({cause})") from None
    if not weights:
        raise _Refused("a Keras file without weights")
    nonfinite = [name for name, value in weights.items() if not np.isfinite(value).all()]
    if len(nonfinite) == len(weights):
        raise _Refused("weights are NaN (a diverged run); not imported")
    if nonfinite:
        raise _Refused(f"weights are NaN or infinite in {len(nonfinite)} of {len(weights)} tensors, first "
                       f"{nonfinite[0]} (a diverged run); not imported")
    layers, codebooks = _layers(weights)
    return (None if version is None else _text(version)), layers, codebooks


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _layers(weights: dict[str, np.ndarray]) -> tuple[dict[str, list[_Layer]], list[np.ndarray]]:
    """Group weights named `[outer/]layer/kernel:0` by layer, and sort each kind by Keras' counter."""
    layers: dict[str, _Layer] = {}
    codebooks = []
    for full_name, value in weights.items():
        name = re.sub(r":\d+$", "", full_name)
        *scope, parameter = name.split("/")
        if parameter.startswith("embeddings"):  # the VQ layer's own variable: embeddings_vqvae_{level}
            codebooks.append((tuple(int(number) for number in re.findall(r"\d+", name)), value))
            continue
        match = LAYER_NAME.fullmatch(scope[-1]) if scope else None
        if match is None or parameter not in ("kernel", "bias"):
            raise _Refused(f"weight {full_name} is not one the original's models have (convolution, dense and "
                           "codebook weights only)")
        layer = layers.setdefault(scope[-1], _Layer(match["kind"], int(match["counter"] or 0), scope[-1]))
        setattr(layer, parameter, value)
    by_kind: dict[str, list[_Layer]] = {}
    for layer in sorted(layers.values(), key=lambda layer: layer.counter):
        if layer.kernel is None or layer.bias is None:
            raise _Refused(f"layer {layer.name} has no {'kernel' if layer.kernel is None else 'bias'}")
        by_kind.setdefault(layer.kind, []).append(layer)
    return by_kind, [value for _, value in sorted(codebooks, key=lambda item: item[0])]


# ------------------------------------------------------------------------------------------ family and config


def _infer(stem: str, layers: dict[str, list[_Layer]], codebooks: list[np.ndarray]) -> tuple[str, dict, dict]:
    """-> (family, constructor arguments, hyperparameters read from the name)."""
    counts = {kind: len(found) for kind, found in layers.items()}
    if codebooks:
        counts["codebook"] = len(codebooks)
    if set(counts) == set(MER_COUNTS):
        return _infer_mer(counts, layers)
    if set(counts) != set(HIERARCHY_COUNTS):
        found = ", ".join(f"{count} {kind}" for kind, count in counts.items())
        raise _Refused(f"its layers ({found}) are neither the ESTM hierarchy's nor the MER CNN's")
    if counts != HIERARCHY_COUNTS:
        found = ", ".join(f"{counts[kind]} {kind}" for kind in HIERARCHY_COUNTS)
        expected = ", ".join(f"{count} {kind}" for kind, count in HIERARCHY_COUNTS.items())
        raise _Refused(f"it has {found} layers, where the ESTM hierarchy has {expected}")
    encoder, transposed = layers["conv1d"], layers["conv1d_transpose"]
    latent = encoder[0].kernel.shape[2]  # Conv1D (k, in, out)
    bottom_upsampler, middle_upsampler = transposed[DECODER_LAYERS], transposed[DECODER_LAYERS + 1]
    upsampler_in = bottom_upsampler.kernel.shape[2]  # Conv1DTranspose (k, out, in)
    c1 = middle_upsampler.kernel.shape[1]
    codebook_size = codebooks[0].shape[1]  # (D, K)
    if upsampler_in == latent and c1 == latent:
        family, config = "hvqvae", {"latent_dim": latent, "codebook_size": codebook_size}
    elif upsampler_in == latent and c1 == latent - EMOTIONS:
        family, config = "estm2", {"d": latent, "codebook_size": codebook_size}
    elif upsampler_in == latent + EMOTIONS and c1 == latent:
        family, config = "estm1", {"d": latent + EMOTIONS, "codebook_size": codebook_size}
    else:
        raise _Refused(
            f"its shapes fit no family: the upsamplers take {upsampler_in} input channels and C1 = {c1} with a "
            f"{latent}-channel latent, where hvqvae takes {latent} and C1 {latent}, estm2 {latent} and C1 "
            f"{latent - EMOTIONS}, estm1 {latent + EMOTIONS} and C1 {latent} (an unpublished variant?)")
    from_name = {}
    grid = GRID_NAME.fullmatch(stem)
    if grid:
        if family != "estm2" or int(grid["d"]) != config["d"]:
            what = f"d = {config['d']}" if family == "estm2" else f"a {family} model"
            raise _Refused(f"its name says an ESTM-2 grid model with d = {grid['d']}, but its weights are {what}")
        from_name = {"beta": float(grid["beta"]), "beta_e": float(grid["beta_e"])}
    return family, {**config, **from_name}, from_name


def _infer_mer(counts: dict[str, int], layers: dict[str, list[_Layer]]) -> tuple[str, dict, dict]:
    if counts != MER_COUNTS:
        raise _Refused(f"it has {counts['conv2d']} Conv2D and {counts['dense']} Dense layers, where the MER CNN has "
                       f"{MER_COUNTS['conv2d']} and {MER_COUNTS['dense']}")
    from .models.mer import STAGES

    classes = layers["dense"][-1].kernel.shape[1]  # (in, out)
    if classes != len(QUADRANTS):
        raise _Refused(f"a CNN of {classes} classes, where the paper's MER tells the {len(QUADRANTS)} quadrants")
    first_width = layers["conv2d"][0].kernel.shape[3]  # (kh, kw, in, out)
    config = {"classes": classes, "hidden": layers["dense"][0].kernel.shape[1], "width": first_width / STAGES[0][0][0]}
    if config["width"] == 1:
        del config["width"]  # the paper's own widths: the default, as our own training writes it
    return "mer", config, {}


# ----------------------------------------------------------------------------------------------- conversion


def _creation_order(family: str, model) -> dict[str, list[str]]:
    """Our module's parameters by Keras kind, in the order the original created the layers: {kind: [prefix]}."""
    from torch import nn

    def named(kind: type, within: str = "") -> list[str]:
        return [name for name, module in model.named_modules() if isinstance(module, kind) and name.startswith(within)]

    if family == "mer":
        return {"conv2d": named(nn.Conv2d), "dense": named(nn.Linear)}  # features, then hidden, then output
    return {
        "conv1d": named(nn.Conv1d, "hierarchy.encoders."),  # bottom, middle, top
        "conv1d_transpose": (named(nn.ConvTranspose1d, "hierarchy.decoder.")
                             + named(nn.ConvTranspose1d, "hierarchy.upsamplers.")),  # each bottom, middle, top
        "codebook": [f"hierarchy.quantizers.{level}.codebook" for level in model.hierarchy.quantizers],
    }


def _to_torch(kind: str, kernel: np.ndarray) -> np.ndarray:
    """A Keras kernel in our layout (see the module's docstring)."""
    if kind in ("conv1d", "conv1d_transpose"):
        return kernel.transpose(2, 1, 0)
    if kind == "conv2d":
        return kernel.transpose(3, 2, 0, 1)
    return kernel.T  # dense (in, out) and codebook (D, K)


def _convert(family: str, target, layers: dict[str, list[_Layer]], codebooks: list[np.ndarray]) -> dict:
    """The file's tensors under our names and in our layout, checked against `target`'s (a meta-device model)."""
    import torch

    expected = target.state_dict()
    tensors = {}
    for kind, prefixes in _creation_order(family, target).items():
        sources = codebooks if kind == "codebook" else layers[kind]
        for prefix, source in zip(prefixes, sources, strict=True):
            if kind == "codebook":
                pairs = [(prefix, _to_torch(kind, source), source.shape)]
                label = f"the {prefix.split('.')[-2]} codebook"
            else:
                pairs = [(f"{prefix}.weight", _to_torch(kind, source.kernel), source.kernel.shape),
                         (f"{prefix}.bias", source.bias, source.bias.shape)]
                label = f"layer {source.name}"
            for name, value, keras_shape in pairs:
                if tuple(value.shape) != tuple(expected[name].shape):
                    raise _Refused(f"{label} is {tuple(keras_shape)} in Keras' layout, which does not fit the "
                                   f"{family} model of {_describe(target.config)} ({name} is "
                                   f"{tuple(expected[name].shape)})")
                tensors[name] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return tensors


def _describe(config: dict) -> str:
    return ", ".join(f"{key} = {value}" for key, value in config.items())
