"""Training recipes for the classifier families: `mer` (the paper's CNN, four quadrants) and `genre`/`gems`
(ResNets with the manifest's labels). Log-mel is computed per batch on the training device."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch.nn.functional as F

from .. import features, model_file
from ..features import FeatureSettings
from ..datasets.segment import read_manifest, read_settings
from ..errors import EstmError
from ..families import FAMILIES, model_class, trained_by
from .loop import TrainConfig, TrainResult, fit, unwrap
from .recipe import check_family, check_segment_length, seeded_model, segment_parts

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


def takes_segments(family: str, settings: FeatureSettings, **model_options) -> Callable[[int], bool]:
    """Whether a `family` network takes the log-mel of a segment of so many samples (at least one n_fft window, as
    many frames as its pooling needs, no more than its dense layers take): tried on the meta device, where a forward
    pass costs nothing."""
    import torch

    with torch.device("meta"):
        skeleton = model_class(family)(**model_options)

    def takes(samples: int) -> bool:
        if samples < settings.n_fft:
            return False
        try:
            skeleton(torch.empty(1, 1, settings.n_mels, features.frame_count(samples, settings.hop_length),
                                 device="meta"))
        except RuntimeError:  # "Output size is too small", or shapes that cannot be multiplied
            return False
        return True

    return takes


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
    resume_totals: dict[str, int] | None = None,
    force: bool = False,
    on_step=None,
    on_epoch=None,
) -> TrainResult:
    """Train a `family` classifier on the train part of a segment cache, validating on its validation part."""
    check_family(family, "classifier")
    segments = read_settings(cache_dir)
    manifest = read_manifest(cache_dir)
    labels = list(FAMILIES[family].labels or sorted(set(manifest[label_column]) - {""}))
    if len(labels) < 2:
        raise EstmError(f"{cache_dir}: a classifier needs at least two labels in column {label_column!r}")
    options = {"classes": len(labels), **(model_options or {})}
    check_segment_length(family, cache_dir, segments.sample_rate, segments.segment_length,
                         takes_segments(family, feature_settings, **options))
    data = segment_parts(cache_dir, manifest, label_column=label_column, labels=labels)
    model = seeded_model(family, config.seed, **options)
    settings = asdict(feature_settings)
    audio = model_file.AudioSettings(segments.sample_rate, segments.segment_length, features=settings)
    summary = model_file.TrainingSummary(data=str(Path(cache_dir).resolve()), label_column=label_column,
                                         segments={part: len(data.get(part, [])) for part in ("train", "validation")})
    return fit(model, classifier_step(segments.sample_rate, settings), data["train"], data.get("validation"), config,
               name=name, labels=labels, audio=audio, training=summary, resume=resume, resume_totals=resume_totals,
               options={"data": summary.data, "label_column": label_column, "features": settings}, force=force,
               on_step=on_step, on_epoch=on_epoch)
