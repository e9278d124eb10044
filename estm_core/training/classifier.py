"""Training recipes for the classifier families: `mer` (the paper's CNN, four quadrants) and `genre`/`gems`
(ResNets with the manifest's labels). Log-mel is computed per batch on the training device."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch.nn.functional as F

from .. import features, store
from ..features import FeatureSettings
from ..datasets.cache import SegmentDataset
from ..datasets.segment import read_manifest, read_settings
from ..errors import EstmError
from ..families import trained_by
from ..labels import QUADRANTS
from ..device import seed_everything
from .loop import TrainConfig, TrainResult, fit, unwrap

CLASSIFIER_FAMILIES = trained_by("classifier")


def classifier_step(sample_rate: int, feature_settings: dict):
    """The training step: cross-entropy (plus the model's regularisation) and accuracy on a batch."""

    def step(model, batch, device) -> dict:
        waveforms, targets = (tensor.to(device, non_blocking=True) for tensor in batch)
        logits = model(features.classifier_input(waveforms, sample_rate, feature_settings))
        cross_entropy = F.cross_entropy(logits.float(), targets)
        return {
            "loss": cross_entropy + unwrap(model).regularization(),
            "cross_entropy": cross_entropy,
            "accuracy": (logits.argmax(dim=1) == targets).float().mean(),
        }

    return step


def train_classifier(
    family: str,
    cache_dir: str | Path,
    name: str,
    config: TrainConfig,
    *,
    label_column: str = "label",
    feature_settings: FeatureSettings = FeatureSettings(),
    model_options: dict | None = None,
    resume: bool = False,
    force: bool = False,
    on_step=None,
    on_epoch=None,
) -> TrainResult:
    """Train a `family` classifier on the train part of a segment cache, validating on its validation part."""
    if family not in CLASSIFIER_FAMILIES:
        raise EstmError(f"unknown classifier family {family!r} (use {', '.join(CLASSIFIER_FAMILIES)})")
    segments = read_settings(cache_dir)
    manifest = read_manifest(cache_dir)
    labels = list(QUADRANTS.labels) if family == "mer" else sorted(set(manifest[label_column]) - {""})
    if len(labels) < 2:
        raise EstmError(f"{cache_dir}: a classifier needs at least two labels in column {label_column!r}")
    train_data = SegmentDataset(cache_dir, "train", label_column=label_column, labels=labels)
    validation_data = None
    if (manifest["part"] == "validation").any():
        validation_data = SegmentDataset(cache_dir, "validation", label_column=label_column, labels=labels)

    seed_everything(config.seed)  # the same seed, the same initial weights
    model = store.model_class(family)(classes=len(labels), **(model_options or {}))
    settings = asdict(feature_settings)
    metadata = {
        "labels": labels,
        "audio": store.AudioSettings(segments.sample_rate, segments.segment_length, features=settings),
        "training": store.TrainingSummary(data=str(Path(cache_dir).resolve()), label_column=label_column,
                                          segments={"train": len(train_data),
                                                    "validation": len(validation_data or [])}),
    }
    return fit(model, classifier_step(segments.sample_rate, settings), train_data, validation_data, config,
               name=name, metadata=metadata, resume=resume, force=force, on_step=on_step, on_epoch=on_epoch)
