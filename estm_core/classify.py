"""Classify whole files: cut into each model's segment length, classify the segments in batches on the device, and
average the probabilities into one decision per file. Memory stays bounded: audio streams through in blocks.

A task is named after the family that serves it: mer (Russell quadrants), genre, gems (GEMS emotions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import audio, audio_checks, features, model_file, store, windowing
from .device import autocast
from .errors import EstmError, StoreError
from .families import trained_by

TASKS = trained_by("classifier")  # a task is named after the family that serves it: mer, genre, gems


@dataclass
class FileResult:
    path: str
    duration: float  # seconds decoded
    decisions: dict[str, dict] = field(default_factory=dict)  # task -> label, probability, probabilities, model...
    segments: list[dict] = field(default_factory=list)  # per segment: task, start, end, probabilities


def load_classifiers(tasks: list[str], models: dict[str, str] | None = None, device="cpu",
                     skip_missing: bool = False) -> list[model_file.LoadedModel]:
    """The models serving `tasks` (TASKS): the named one (models[task]) or the newest of the task's family. With
    `skip_missing`, tasks with no model are left out instead of failing (for `--task all`)."""
    loaded = []
    for task in tasks:
        family = task
        try:
            path = store.find_model(family, (models or {}).get(task))
        except StoreError:
            if skip_missing:
                continue
            raise
        loaded.append(store.load_model(path, family, device))
    if not loaded:
        families = ", ".join(f"estm train {task}" for task in tasks)
        raise EstmError(f"no classifier in the store ({store.models_dir()}); make one with {families}")
    return loaded


MAX_BATCH_SAMPLES = 1 << 26  # waveform samples classified at once: 256 MB of float32, and the features beside it


def check_batch_size(batch_size: int, segment_length: int, option: str = "--batch-size") -> None:
    """An EstmError where `batch_size` segments of `segment_length` samples would be more than MAX_BATCH_SAMPLES at
    once (or fewer than one): checked before any work."""
    largest = max(1, MAX_BATCH_SAMPLES // max(segment_length or 1, 1))
    if not 1 <= batch_size <= largest:
        raise EstmError(f"{option} must be from 1 to {largest} for segments of {segment_length} samples "
                        f"(got {batch_size})")


@torch.no_grad()
def classify_file(path: str | Path, classifiers: list[model_file.LoadedModel], *, hop_seconds: float | None = None,
                  batch_size: int = 16, keep_segments: bool = False, block_frames: int = audio.STREAM_BLOCK,
                  require_sound: bool = False) -> FileResult:
    """Every classifier's clip decision for `path` (the mean of its segments' probabilities). The file is decoded
    `block_frames` at a time and its windows classified as they come, so the memory does not grow with its length;
    the results do not depend on the block size. With `require_sound`, audio too short or silent is refused as every
    command refuses it (audio_checks.check_sound) once the first classifier has read it; the library's own callers
    (judges of generated clips) classify whatever they get."""
    if batch_size < 1:
        raise EstmError(f"batch_size must be at least 1 (got {batch_size})")
    result = FileResult(str(path), 0.0)
    for index, classifier in enumerate(classifiers):
        rate, length = classifier.sample_rate, classifier.segment_length
        hop = round(hop_seconds * rate) if hop_seconds else length
        if hop < 1:
            raise EstmError(f"a hop of {hop_seconds} s is less than one sample at {rate} Hz")
        total = torch.zeros(len(classifier.info.labels), dtype=torch.float64)
        count = 0
        level = audio_checks.Level()
        decoded = windowing.Counted(audio.Stream(path, sample_rate=rate, block_frames=block_frames, level=level))
        for batch in windowing.batched(windowing.windows(decoded, length, hop), batch_size):
            probabilities = segment_probabilities(classifier, np.stack([window for _, window in batch]))
            total += probabilities.sum(dim=0)
            count += len(batch)
            if keep_segments:
                for (start, _), row in zip(batch, probabilities.tolist()):
                    result.segments.append({
                        "task": classifier.family, "start": start / rate,
                        "end": min(start + length, decoded.samples) / rate,  # a padded last window ends with the file
                        "probabilities": dict(zip(classifier.info.labels, row)),
                    })
        if require_sound and index == 0:
            audio_checks.check_sound(path, level)
        mean = (total / count).tolist()
        best = int(np.argmax(mean))
        result.duration = decoded.samples / rate
        result.decisions[classifier.family] = {
            "label": classifier.info.labels[best],
            "probability": mean[best],
            "probabilities": dict(zip(classifier.info.labels, mean)),
            "segments": count,
            "model": classifier.name,
            "model_version": classifier.info.estm_version,
        }
    return result


RECOGNISER = "cue recogniser"  # the model column of a mer decision made by the cue recogniser


def recognised_decision(path: str | Path) -> dict:
    """A mer decision without a mer model: the quadrant the cue recogniser (cues/emotion.py) hears in the whole file,
    with its arousal and valence."""
    from . import __version__
    from .cues.emotion import active_recogniser
    from .cues.meter import analyze

    emotion = active_recogniser().recognise(analyze(path))
    probabilities = emotion.probabilities
    return {"label": emotion.quadrant, "probability": probabilities[emotion.quadrant], "probabilities": probabilities,
            "segments": 1, "model": RECOGNISER, "model_version": __version__, "arousal": emotion.arousal,
            "valence": emotion.valence}


def segment_probabilities(classifier: model_file.LoadedModel, waveforms: np.ndarray) -> torch.Tensor:
    """(n, segment_length) waveforms -> (n, classes) softmax probabilities (float64 on the CPU)."""
    device = classifier.device
    waveforms = torch.from_numpy(waveforms).to(device)
    with autocast(device):
        mel = features.classifier_input(waveforms, classifier.sample_rate, classifier.info.audio.features)
        logits = classifier.model(mel)
    return torch.softmax(logits.float(), dim=1).double().cpu()


@torch.no_grad()
def predict_segments(classifier: model_file.LoadedModel, dataset, *, batch_size: int = 32,
                     on_progress=None) -> np.ndarray:
    """(segments, classes) probabilities for every item of a SegmentDataset, whose cache must fit the model."""
    from torch.utils.data import DataLoader

    from .datasets.segment import check_fits

    if classifier.family not in TASKS:
        raise EstmError(f"a {classifier.family} model is not a classifier ({', '.join(TASKS)})")
    check_fits(dataset.cache_dir, classifier)
    loader = DataLoader(dataset, batch_size=batch_size)
    probabilities = []
    for index, (waveforms, _) in enumerate(loader):
        probabilities.append(segment_probabilities(classifier, waveforms.numpy()))
        if on_progress:
            on_progress(index + 1, len(loader))
    return torch.cat(probabilities).numpy()


def label_segments(model_name: str | None, cache_dir: str | Path, *, device="cpu", batch_size: int = 32,
                   on_progress=None):
    """A mer model's quadrant probabilities for every segment of a cache, in the columns of the original's
    deam_predictions.csv (mer_Q1..mer_Q4, song_id = the segment's file name) plus segment_id, part, the argmax
    `style_label` that ESTM trains on, and the `mer_model` that made them."""
    import pandas as pd

    from .datasets.cache import SegmentDataset

    labeller = store.load_model(store.find_model("mer", model_name), "mer", device)
    labels = labeller.info.labels
    dataset = SegmentDataset(cache_dir, part=None, label_column=None)
    probabilities = predict_segments(labeller, dataset, batch_size=batch_size, on_progress=on_progress)
    table = pd.DataFrame(probabilities, columns=[f"mer_{label}" for label in labels])
    table["song_id"] = dataset.manifest["segment_id"] + ".wav"
    table["segment_id"] = dataset.manifest["segment_id"]
    table["part"] = dataset.manifest["part"]
    table["style_label"] = [labels[i] for i in probabilities.argmax(axis=1)]
    table["mer_model"] = labeller.name  # so a judge can be told apart from it
    return table
