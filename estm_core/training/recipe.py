"""What the recipes do before the loop: check the family, take a segment cache's parts, build the model from the
run's seed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from .. import store
from ..datasets.cache import SegmentDataset
from ..device import seed_everything
from ..errors import EstmError
from ..families import trained_by


def check_family(family: str, recipe: str) -> None:
    """Refuse a family that the recipe ("classifier", "transfer") does not train."""
    families = trained_by(recipe)
    if family not in families:
        raise EstmError(f"unknown {recipe} family {family!r} (use {', '.join(families)})")


def segment_parts(cache_dir: str | Path, manifest: pd.DataFrame, **dataset_options) -> dict[str, SegmentDataset]:
    """The train part of a segment cache and, where its manifest has one, its validation part."""
    parts = {"train": SegmentDataset(cache_dir, "train", **dataset_options)}
    if (manifest["part"] == "validation").any():
        parts["validation"] = SegmentDataset(cache_dir, "validation", **dataset_options)
    return parts


def seeded_model(family: str, seed: int, **options) -> torch.nn.Module:
    """A new `family` model: the same seed, the same initial weights."""
    seed_everything(seed)
    return store.model_class(family)(**options)
