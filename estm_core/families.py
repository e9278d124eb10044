"""Every model family estm knows, in one table: the module that defines it, what it does, and the roles the rest
of estm gives it. Everything that needs a list of families (the store's lazy imports, classify, training, transfer,
the codebook plots) derives it from here, so a new family is one entry here and one module in estm_core/models.
A family's name is also the name of the task it serves (`estm classify --task mer`, the `mer` output columns).
Below it, the transfer methods that need no trained weights (`--method`), in a table of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .labels import QUADRANTS


@dataclass(frozen=True)
class Family:
    name: str
    module: str  # estm_core.models.MODULE registers the family's class (store.register)
    task: str  # what it does, in a few words
    recipe: str  # how it trains: "classifier" (labelled segments), "transfer" (segments and style labels) or
    #   "wavenet" (windows of raw audio)
    about: str = ""  # more on it: the help of `estm train FAMILY`
    labels: tuple[str, ...] | None = None  # the labels it decides or takes; None: the training data's own
    decides: str = ""  # classifiers: what one decision is called (the heading of its column in `estm classify`)
    codebooks: bool = False  # holds VQ codebooks (`estm plot codebook`)
    transfers: bool = False  # an emotion-transfer model (`estm transfer --model`)
    options: dict = field(default_factory=dict)  # the model's options `estm train` offers, with their defaults
    training: dict = field(default_factory=dict)  # where its training departs from TrainConfig()'s defaults


# The ESTM paper's training: Adam 1e-3, batch 128, up to 50 epochs, early stopping on the training loss with patience 3
# from epoch 25 (spec/ESTM.md); its model options are the final scripts' choices.
ESTM_TRAINING = {"epochs": 50, "monitor": "loss", "mode": "min", "patience": 3, "start_epoch": 25}


FAMILIES: dict[str, Family] = {family.name: family for family in (
    Family("mer", "mer", "the Russell quadrant of a song (the paper's MER CNN)", "classifier",
           "The MER paper's CNN (1 793 220 parameters): four quadrants from 10.08 s log-mel segments.",
           labels=QUADRANTS.labels, decides="quadrant", options={"width": 1.0}),
    Family("genre", "resnet", "a song's genre (ResNet on log-mel)", "classifier",
           "A ResNet genre classifier (labels from the manifest, e.g. GTZAN's ten), trained from scratch.",
           decides="genre"),
    Family("gems", "resnet", "a song's GEMS emotion category (ResNet on log-mel)", "classifier",
           "A ResNet emotion classifier (e.g. Emotify's GEMS-9, or any folder labels), trained from scratch.",
           decides="GEMS"),
    Family("hvqvae", "estm", "content-only reconstruction (hierarchical VQ-VAE)", "transfer",
           "The content-only hierarchical VQ-VAE (reconstruction); the paper's grid with --grid.", labels=(),
           codebooks=True, options={"latent_dim": 20, "beta": 0.25, "codebook_size": 1024}, training=ESTM_TRAINING),
    Family("estm1", "estm", "emotion transfer to a given quadrant (ESTM-1)", "transfer",
           "ESTM-1: the emotion as a one-hot quadrant appended to the quantised latents; --grid for the paper's 12.",
           labels=QUADRANTS.labels, codebooks=True, transfers=True,
           options={"d": 24, "beta": 1.5, "codebook_size": 1024}, training=ESTM_TRAINING),
    Family("estm2", "estm", "emotion transfer from an emotion reference (ESTM-2)", "transfer",
           "ESTM-2: the emotion in the last 4 latent channels, taken from the emotion audio; --grid for the "
           "paper's 36.", labels=QUADRANTS.labels, codebooks=True, transfers=True,
           options={"d": 24, "beta": 0.25, "beta_e": 0.25, "codebook_size": 1024}, training=ESTM_TRAINING),
    Family("wavenet", "wavenet", "music generation, conditioned on a label (WaveNet)", "wavenet",
           "A WaveNet on mu-law audio at 16 kHz, conditioned on the data's labels (emotion, genre, any folder "
           "label).", training={"epochs": 10, "batch_size": 16}),
)}


@dataclass(frozen=True)
class Method:
    """A transfer method that needs no trained weights, chosen by `--method` (a learned one is a family, chosen by
    `--model`). Its module (estm_core.MODULE) has `transfer_file` for `estm transfer` and `evaluation_method` for
    `estm evaluate transfer`."""

    name: str
    module: str
    about: str


METHODS: dict[str, Method] = {method.name: method for method in (
    Method("cues", "cues.transfer", "the content's tempo, register, loudness, dynamics, brightness, articulation and "
                                    "mode moved toward the emotion's"),
)}


def method_module(name: str):
    """The module of the transfer method `name`; an EstmError names the known ones."""
    import importlib

    from .errors import EstmError

    if name not in METHODS:
        raise EstmError(f"unknown --method {name!r} (known: {', '.join(METHODS)})")
    return importlib.import_module(f"estm_core.{METHODS[name].module}")


# Names a family had before: model files and store folders of these names still load, as the family named here.
FORMER_NAMES = {"emotion": "gems"}


def current_name(family: str) -> str:
    """The family's name today (a model file written before a rename says the former one)."""
    return FORMER_NAMES.get(family, family)


def trained_by(recipe: str) -> tuple[str, ...]:
    """The families a training recipe makes, in the table's order."""
    return tuple(name for name, family in FAMILIES.items() if family.recipe == recipe)


def with_codebooks() -> tuple[str, ...]:
    return tuple(name for name, family in FAMILIES.items() if family.codebooks)


def transferring() -> tuple[str, ...]:
    return tuple(name for name, family in FAMILIES.items() if family.transfers)
