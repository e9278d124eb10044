"""The vqvae recipe: training the VQ-VAE families `hvqvae` (content only), `estm1` and `estm2` (emotion transfer)
(spec/ESTM.md).

Loss: reconstruction mean((x - x_hat)^2) / train_variance, plus the three VQ losses, plus beta_e * the style loss for
ESTM-2. The original's training: Adam 1e-3, batch 128, up to 50 epochs, early stopping on the training loss with
patience 3 from epoch 25. Its flaw is fixed: the validation songs are held out (and reported per epoch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import model_file
from ..datasets.segment import INT16_SCALE, open_cache, read_manifest, read_settings
from ..datasets.style_labels import read_style_labels
from ..errors import EstmError
from ..families import ESTM_TRAINING, FAMILIES
from ..labels import QUADRANTS
from .loop import TrainConfig, TrainResult, fit, unwrap
from .recipe import check_family, check_segment_length, seeded_model, segment_parts

ORIGINAL_CONFIG = TrainConfig(**ESTM_TRAINING)
COLLAPSED_RECONSTRUCTION = 0.9  # the original's collapsed runs ended near 0.99: a near-silent output


def training_variance(cache_dir: str | Path, part: str = "train", chunk: int = 64) -> float:
    """The variance of the training audio (0.0438 on DEAM in the original), the reconstruction loss's scale."""
    cache = open_cache(cache_dir)
    rows = read_manifest(cache_dir).query("part == @part")["index"].to_numpy()
    total = total_squares = 0.0
    for start in range(0, len(rows), chunk):
        block = cache[np.sort(rows[start:start + chunk])].astype(np.float64) / INT16_SCALE
        total += block.sum()
        total_squares += np.square(block).sum()
    count = len(rows) * cache.shape[1]
    mean = total / count
    return float(total_squares / count - mean**2)


def vqvae_step(train_variance: float):
    """The training step of every transfer family: reconstruction + VQ (+ style) losses, and codebook usage."""

    def step(model, batch, device) -> dict:
        audio, emotion = (tensor.to(device, non_blocking=True) for tensor in batch)
        core = unwrap(model)
        result = model(audio, emotion if core.family != "hvqvae" else None)
        reconstruction = torch.mean((audio - result["output"].float()) ** 2) / train_variance
        terms = {"reconstruction": reconstruction}
        terms.update({f"vq_{level}": loss for level, loss in result["vq_losses"].items()})
        loss = reconstruction + sum(result["vq_losses"].values())
        if "style_loss" in result:
            loss = loss + core.beta_e * result["style_loss"]
            terms["style_loss"] = result["style_loss"]
            terms["style_accuracy"] = result["style_accuracy"]
        terms.update(core.hierarchy.usage(result["indices"]))
        return {"loss": loss, **terms}

    return step


def train_vqvae(
    family: str,
    cache_dir: str | Path,
    name: str,
    config: TrainConfig = ORIGINAL_CONFIG,
    *,
    style_labels: str | Path = "truth",
    model_options: dict | None = None,
    resume: bool = False,
    resume_totals: dict[str, int] | None = None,
    force: bool = False,
    on_step=None,
    on_epoch=None,
) -> TrainResult:
    """Train `family` on the train part of a segment cache (its validation part held out and reported)."""
    check_family(family, "vqvae")
    segments = read_settings(cache_dir)
    check_segment_length(family, cache_dir, segments.sample_rate, segments.segment_length,
                         lambda samples: samples >= model_file.MIN_VQVAE_SEGMENT)
    learns_emotion = FAMILIES[family].transfers
    label_map, teacher = read_style_labels(style_labels, cache_dir) if learns_emotion else (None, None)
    data = segment_parts(cache_dir, read_manifest(cache_dir), labels=QUADRANTS.labels, label_map=label_map,
                         label_column=None if label_map is None else "label")
    variance = training_variance(cache_dir)
    if variance <= 0:
        raise EstmError(f"{cache_dir}: the training audio is silent")
    model = seeded_model(family, config.seed, **(model_options or {}))
    summary = model_file.TrainingSummary(data=str(Path(cache_dir).resolve()), train_variance=variance,
                                         style_labels=_source(style_labels) if learns_emotion else None,
                                         style_labeller=teacher,
                                         segments={part: len(dataset) for part, dataset in data.items()})
    return fit(model, vqvae_step(variance), data["train"], data.get("validation"), config, name=name,
               labels=FAMILIES[family].labels,
               audio=model_file.AudioSettings(segments.sample_rate, segments.segment_length), training=summary,
               options={"data": summary.data, "style_labels": summary.style_labels}, resume=resume,
               resume_totals=resume_totals, force=force, on_step=on_step, on_epoch=on_epoch)


def _source(style_labels: str | Path) -> str:
    """"truth", or the predictions file as an absolute path, so the model can be evaluated from anywhere."""
    return "truth" if str(style_labels) == "truth" else str(Path(style_labels).resolve())


def run_status(info: model_file.ModelInfo) -> str:
    """ok, NaN or collapsed (judged on the saved, best epoch), from a trained model's summary; "running" while
    unfinished."""
    training = info.training
    if training.status == "nan":
        return "NaN"
    if training.status == "imported":
        return "collapsed" if training.collapsed else "ok"
    reconstruction = training.best.get("reconstruction")
    if reconstruction is not None and reconstruction >= COLLAPSED_RECONSTRUCTION:
        return "collapsed"
    return "ok" if training.status in ("finished", "early-stopped", "max-steps") else "running"
