"""What the recipes do before the loop: check the family, take a segment cache's parts, build the model from the
run's seed."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from ..datasets.cache import SegmentDataset
from ..device import seed_everything
from ..errors import EstmError
from ..families import model_class, trained_by


def check_family(family: str, recipe: str) -> None:
    """Refuse a family that the recipe ("classifier", "vqvae", "wavenet") does not train."""
    families = trained_by(recipe)
    if family not in families:
        raise EstmError(f"unknown {recipe} family {family!r} (use {', '.join(families)})")


def check_segment_length(family: str, cache_dir: str | Path, sample_rate: int, segment_length: int,
                         takes: Callable[[int], bool]) -> None:
    """Refuse, before any training, a cache whose segments the family's network cannot take (`takes(samples)` says
    which it can; its pooling or strided convolutions would otherwise run out of input part-way, an internal error),
    in one line naming the lengths it can."""
    if takes(segment_length):
        return
    shortest = least_taken(takes)
    if segment_length < shortest:
        needs = f"at least {_length(shortest, sample_rate)}"
    else:
        needs = f"from {_length(shortest, sample_rate)} to {_length(most_taken(takes, shortest), sample_rate)}"
    raise EstmError(f"{cache_dir}: a {family} model cannot take its segments of {_length(segment_length, sample_rate)}"
                    f": it needs {needs}; segment again with other --seconds")


def _length(samples: int, sample_rate: int) -> str:
    return f"{samples / sample_rate:.3g} s ({samples} samples at {sample_rate} Hz)"


def least_taken(takes: Callable[[int], bool], most: int = 1 << 27) -> int:
    """The least n in 1..most for which `takes(n)`, where it is false below some n and true from it on (a network's
    shortest input)."""
    high = 1
    while not takes(high):
        if high >= most:
            raise EstmError(f"the network takes no input up to {most} long")
        high *= 2
    low = high // 2  # not taken (or 0)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if takes(middle) else (middle, high)
    return high


def most_taken(takes: Callable[[int], bool], least: int, most: int = 1 << 27) -> int:
    """The greatest n from `least` (taken) on for which every length up to it is taken (a network's longest input,
    where a fixed dense layer after the pooling sets one)."""
    low, high = least, 2 * least
    while takes(high):
        if high >= most:
            return most
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if takes(middle) else (low, middle)
    return low


def segment_parts(cache_dir: str | Path, manifest: pd.DataFrame, **dataset_options) -> dict[str, SegmentDataset]:
    """The train part of a segment cache and, where its manifest has one, its validation part."""
    parts = {"train": SegmentDataset(cache_dir, "train", **dataset_options)}
    if (manifest["part"] == "validation").any():
        parts["validation"] = SegmentDataset(cache_dir, "validation", **dataset_options)
    return parts


def seeded_model(family: str, seed: int, **options) -> torch.nn.Module:
    """A new `family` model: the same seed, the same initial weights."""
    seed_everything(seed)
    return model_class(family)(**options)
