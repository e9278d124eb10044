"""Every model family estm knows, in one table: the module that defines it, what it does, and the roles the rest
of estm gives it. Everything that needs a list of families (the lazy imports of model classes, classify, training,
transfer, the codebook plots) derives it from here, so a new family is one entry here and one module in
estm_core/models, whose class registers itself here (register).
A family's name is also the name of the task it serves (`estm classify --task mer`, the `mer` output columns).
Below it, the transfer methods that need no trained weights (`--method`), in a table of their own, and the contract
each keeps (TransferMethod): a new method is one entry there and one module in estm_core/methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Protocol, runtime_checkable

from .labels import QUADRANTS


@dataclass(frozen=True)
class Family:
    name: str
    module: str  # estm_core.models.MODULE registers the family's class (register, below)
    task: str  # what it does, in a few words
    recipe: str  # how it trains: "classifier" (labelled segments), "vqvae" (segments, and style labels for the
    #   ESTMs) or "wavenet" (windows of raw audio)
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
    Family("hvqvae", "estm", "content-only reconstruction (hierarchical VQ-VAE)", "vqvae",
           "The content-only hierarchical VQ-VAE (reconstruction); the paper's grid with --grid.", labels=(),
           codebooks=True, options={"latent_dim": 20, "beta": 0.25, "codebook_size": 1024}, training=ESTM_TRAINING),
    Family("estm1", "estm", "emotion transfer to a given quadrant (ESTM-1)", "vqvae",
           "ESTM-1: the emotion as a one-hot quadrant appended to the quantised latents; --grid for the paper's 12.",
           labels=QUADRANTS.labels, codebooks=True, transfers=True,
           options={"d": 24, "beta": 1.5, "codebook_size": 1024}, training=ESTM_TRAINING),
    Family("estm2", "estm", "emotion transfer from an emotion reference (ESTM-2)", "vqvae",
           "ESTM-2: the emotion in the last 4 latent channels, taken from the emotion audio; --grid for the "
           "paper's 36.", labels=QUADRANTS.labels, codebooks=True, transfers=True,
           options={"d": 24, "beta": 0.25, "beta_e": 0.25, "codebook_size": 1024}, training=ESTM_TRAINING),
    Family("wavenet", "wavenet", "music generation, conditioned on a label or cue curves (WaveNet)", "wavenet",
           "A WaveNet on mu-law audio at 16 kHz, conditioned on the data's labels (emotion, genre, any folder "
           "label) and, with --curves, on cue curves measured from the audio itself (level, onsets, brightness, "
           "register, pitch classes), which `estm generate --emotion` draws from a quadrant's cue profile and "
           "`--like` from a reference file.", training={"epochs": 10, "batch_size": 16}),
)}


@dataclass(frozen=True)
class Method:
    """A transfer method that needs no trained weights, chosen by `--method` (a learned one is a family, chosen by
    `--model`)."""

    name: str
    module: str  # the module that keeps the contract below (TransferMethod), by its full name
    about: str  # what it does, in a few words: the help of --method


METHODS: dict[str, Method] = {method.name: method for method in (
    Method("cues", "estm_core.methods.cues.method", "the content's tempo, register, loudness, dynamics, "
                                                    "brightness, articulation and mode moved toward the emotion's"),
)}


@dataclass(frozen=True)
class TransferSettings:
    """What is asked of a transfer method besides the audio, the same for every method: `estm transfer`'s
    --strength, --cues, --range and --match. check_settings checks them against a method."""

    strength: float = 1.0  # how far the content moves toward the emotion: 0 not at all, 1 all the way
    cues: tuple[str, ...] | None = None  # which of the method's CUES move; None: all of them
    range: str = "natural"  # how large the moves may be: one of the method's RANGES
    match: str = "emotion"  # what is taken from a reference file: one of the method's MATCHES


@runtime_checkable
class TransferMethod(Protocol):
    """The contract of a transfer method that needs no trained weights: a module named in METHODS provides these
    (a module satisfies a Protocol by its attributes and functions: isinstance(module, TransferMethod) checks that
    it has them all). `estm transfer --method NAME` checks the settings
    once (check_settings), calls transfer_file and shows describe's lines (or the result, with --json);
    `estm evaluate transfer --method NAME` judges what evaluation_method makes of each pair of a paired corpus."""

    CUES: tuple[str, ...]  # the cues it can move, in the order it names them (--cues picks some)
    RANGES: Mapping[str, object]  # the sizes of move it offers, by name (--range); "natural" must be one
    MATCHES: tuple[str, ...]  # what it can take from a reference file (--match); "emotion" must be one

    def transfer_file(self, content, output, *, reference=None, quadrant: str | None = None,
                      settings: TransferSettings = TransferSettings(), force: bool = False,
                      measure_output: bool = True) -> dict:
        """`content` (a path) moved toward the emotion of `reference` (an audio file) or of `quadrant` (Q1..Q4),
        exactly one of the two, as `settings` (checked) ask; written to `output` atomically (an existing file is kept
        unless `force`), at the content's rate and channels. Returns what it did as plain data (--json prints it):
        at least "content", "emotion" (the reference or the quadrant), "output", "duration" (seconds written) and
        "content_duration"; with `measure_output`, whatever it reports about the output is measured too."""

    def describe(self, result: dict) -> list[str]:
        """transfer_file's result for a person: a few lines on what was heard and what was moved."""

    def evaluation_method(self, settings: TransferSettings = TransferSettings(), *,
                          asked: str = "reference") -> Callable:
        """The method as the evaluation runs it (a transfer_evaluation.Method): a pair -> (the output audio,
        (frames[, channels]) float32, and its rate), the pair's content moved toward the emotion of its reference
        file (`asked` "reference", as `estm transfer CONTENT REFERENCE`) or of its target quadrant ("quadrant", as
        `estm transfer CONTENT --emotion Qk`)."""


def method_module(name: str) -> TransferMethod:
    """The module of the transfer method `name`; an EstmError names the known ones."""
    import importlib

    from .errors import EstmError

    if name not in METHODS:
        raise EstmError(f"unknown --method {name!r} (known: {', '.join(METHODS)})")
    return importlib.import_module(METHODS[name].module)


def check_settings(method: TransferMethod, settings: TransferSettings) -> TransferSettings:
    """`settings` checked against `method` once, before any work, with the cues filled in (all of the method's
    CUES where none are named); an EstmError names the option at fault as `estm transfer` spells it."""
    from .errors import EstmError

    if not 0.0 <= settings.strength <= 1.0:
        raise EstmError(f"--strength must be between 0 and 1 (got {settings.strength})")
    if settings.range not in method.RANGES:
        raise EstmError(f"--range must be one of {', '.join(method.RANGES)}, not {settings.range!r}")
    if settings.match not in method.MATCHES:
        raise EstmError(f"--match must be one of {', '.join(method.MATCHES)}, not {settings.match!r}")
    cues = method.CUES if settings.cues is None else tuple(settings.cues)
    unknown = sorted(set(cues) - set(method.CUES))
    if unknown:
        raise EstmError(f"--cues: unknown {', '.join(unknown)} (known: {', '.join(method.CUES)})")
    return replace(settings, cues=cues)


# Names a family had before: model files and store folders of these names still load, as the family named here.
FORMER_NAMES = {"emotion": "gems"}


def current_name(family: str) -> str:
    """The family's name today (a model file written before a rename says the former one)."""
    return FORMER_NAMES.get(family, family)


# The class of each family, registered by its module in estm_core/models (@register): what rebuilds a model from its
# file (estm_core.model_file).
_REGISTRY: dict[str, type] = {}


def register(family: str):
    """Class decorator: make `family` rebuildable from a file. Records the constructor's arguments (defaults
    filled in) as `model.config`, so saving needs nothing else from the class."""
    import functools
    import inspect

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


def registered(family: str) -> bool:
    """Whether a class is registered for `family` (by its module, or by a test); imports nothing."""
    return family in _REGISTRY


def model_class(family: str) -> type:
    """The class registered for `family` (or a former name of it), importing its module on first use."""
    import importlib

    from . import __version__
    from .errors import StoreError

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


def trained_by(recipe: str) -> tuple[str, ...]:
    """The families a training recipe makes, in the table's order."""
    return tuple(name for name, family in FAMILIES.items() if family.recipe == recipe)


def with_codebooks() -> tuple[str, ...]:
    return tuple(name for name, family in FAMILIES.items() if family.codebooks)


def transferring() -> tuple[str, ...]:
    return tuple(name for name, family in FAMILIES.items() if family.transfers)
