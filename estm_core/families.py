"""Every model family estm knows, in one table: the module that defines it, what it does, and the roles the rest
of estm gives it. Everything that needs a list of families (the store's lazy imports, classify, training, transfer,
the codebook plots) derives it from here, so a new family is one entry here and one module in estm_core/models.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    module: str  # estm_core.models.MODULE registers the family's class (store.register)
    task: str  # what it does, in a few words
    recipe: str  # how it trains: "classifier" (labelled segments), "transfer" (segments and style labels) or
    #   "wavenet" (windows of raw audio)
    codebooks: bool = False  # holds VQ codebooks (`estm plot codebook`)
    transfers: bool = False  # an emotion-transfer model (`estm transfer --model`)


FAMILIES: dict[str, Family] = {family.name: family for family in (
    Family("mer", "mer", "the Russell quadrant of a song (the paper's MER CNN)", "classifier"),
    Family("genre", "resnet", "a song's genre (ResNet on log-mel)", "classifier"),
    Family("emotion", "resnet", "a song's GEMS emotion category (ResNet on log-mel)", "classifier"),
    Family("hvqvae", "estm", "content-only reconstruction (hierarchical VQ-VAE)", "transfer", codebooks=True),
    Family("estm1", "estm", "emotion transfer to a given quadrant (ESTM-1)", "transfer", codebooks=True,
           transfers=True),
    Family("estm2", "estm", "emotion transfer from an emotion reference (ESTM-2)", "transfer", codebooks=True,
           transfers=True),
    Family("wavenet", "wavenet", "music generation, conditioned on a label (WaveNet)", "wavenet"),
)}


def trained_by(recipe: str) -> tuple[str, ...]:
    """The families a training recipe makes, in the table's order."""
    return tuple(name for name, family in FAMILIES.items() if family.recipe == recipe)


def with_codebooks() -> tuple[str, ...]:
    return tuple(name for name, family in FAMILIES.items() if family.codebooks)


def transferring() -> tuple[str, ...]:
    return tuple(name for name, family in FAMILIES.items() if family.transfers)
