"""Training recipe for the `wavenet` family: any folder of audio (labels from subfolders) or a split CSV, 16 kHz mono
mu-law in a memory-mapped cache, random windows of receptive field + output length, cross-entropy on the last
`output_length` steps (the seed's recipe), validation on held-out files or on the held-out end of every file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import model_file
from ..datasets.layouts import read_dataset
from ..cues.curves import CHANNELS, HOP, frames_of, summary as curve_summary
from ..datasets.mulaw import SAMPLE_RATE, WindowDataset, build_cache, build_curves, cache_folder, spans
from ..datasets.split import read_split, split_table
from ..errors import EstmError
from ..models.wavenet import PRESETS, wavenet_step
from .loop import TrainConfig, TrainResult, fit
from .recipe import seeded_model


def training_table(data: str | Path, validation: float, seed: int):
    """(songs with a part, problems) from a folder (any layout; labels as it defines them) or a split CSV."""
    data = Path(data)
    if data.suffix == ".csv":
        return read_split(data), []
    dataset = read_dataset(data)
    return split_table(dataset.table, test=0.0, validation=validation, seed=seed), dataset.problems


def train_wavenet(
    data: str | Path,
    name: str,
    config: TrainConfig,
    *,
    preset: str = "small",
    model_options: dict | None = None,
    conditioned: bool = True,
    curves: bool = False,
    output_length: int = 16,
    holdout: str = "auto",
    validation: float = 0.1,
    windows_per_epoch: int | None = None,
    on_step=None,
    on_epoch=None,
    on_cache_progress=None,
    resume: bool = False,
    resume_totals: dict[str, int] | None = None,
    force: bool = False,
) -> tuple[TrainResult, list[tuple[str, str]]]:
    """Train a WaveNet on `data`, conditioned on its labels (where `conditioned` and there are two or more) and on
    the cue curves of its audio (where `curves`); returns (the result, files skipped as unreadable)."""
    if preset not in PRESETS:
        raise EstmError(f"unknown preset {preset!r} (use {', '.join(PRESETS)})")
    table, problems = training_table(data, validation, config.seed)
    labels = sorted(set(table["label"]) - {""}) if conditioned else []
    if conditioned and len(labels) < 2:
        labels = []  # one label or none: nothing to condition on
    cache = build_cache(table, cache_folder(data), on_progress=on_cache_progress)
    problems = problems + [tuple(problem) for problem in cache.problems]
    requested_holdout = holdout
    if holdout == "auto":  # whole files when there are enough to spare, else the end of every file
        holdout = "file" if (cache.index["part"] == "validation").sum() >= 1 else "time"
    local = {"curves": len(CHANNELS), "hop": HOP} if curves else {}
    model = seeded_model("wavenet", config.seed,
                         **{**PRESETS[preset], **(model_options or {}), "labels": len(labels), **local})
    window = model.receptive_field + output_length
    middle = None
    if curves:
        build_curves(cache, on_progress=on_cache_progress)
        middle = training_middle(cache, spans(cache.index, "train", holdout))
    train = WindowDataset(cache, spans(cache.index, "train", holdout), window, labels, windows=windows_per_epoch,
                          seed=config.seed, curves=curves)
    validation_spans = spans(cache.index, "validation", holdout)
    held_out = None
    if (validation_spans["length"] >= window).any():
        held_out = WindowDataset(cache, validation_spans, window, labels, curves=curves,
                                 windows=max(1, (windows_per_epoch or len(train)) // 10), seed=config.seed + 1)
    audio = model_file.AudioSettings(SAMPLE_RATE, mu_law_classes=model.classes, receptive_field=model.receptive_field,
                                     output_length=output_length)
    summary = model_file.TrainingSummary(data=str(Path(data).resolve()), preset=preset, holdout=holdout, middle=middle,
                                         files={part: int((cache.index["part"] == part).sum())
                                           for part in ("train", "validation")})
    result = fit(model, wavenet_step(model.receptive_field), train, held_out, config, name=name, labels=labels,
                 audio=audio, training=summary, resume=resume, resume_totals=resume_totals, force=force,
                 options={"data": summary.data, "preset": preset, "conditioned": conditioned, "curves": curves,
                          "output_length": output_length, "holdout": requested_holdout, "validation": validation,
                          "windows_per_epoch": windows_per_epoch},
                 on_step=on_step, on_epoch=on_epoch)
    return result, problems


def training_middle(cache, training_spans) -> dict[str, float]:
    """The median over the training spans of each one's cue summary (curves.summary): what a quadrant's profile
    moves from when the model generates for it."""
    curves, first = cache.curves(), cache.first_frames()
    summaries = []
    for span in training_spans.itertuples(index=False):
        frame = first[span.file_start] + (span.start - span.file_start) // HOP
        summaries.append(curve_summary(np.array(curves[frame:frame + frames_of(span.length)])))
    return {key: float(np.nanmedian([item[key] for item in summaries])) for key in summaries[0]}
