"""Emotion-style transfer of whole files: the content is cut into the model's segments with overlap, each segment is
decoded with the emotion, and the outputs are joined by overlap-add with crossfades, so the output has the content's
duration.

ESTM-2 takes the emotion as audio (its segments matched in time to the content's, cycled if shorter) or, as an
option of ours, as a quadrant; ESTM-1 takes a quadrant, given or decided by a mer model on the emotion audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import audio, store
from .device import autocast
from .errors import EstmError
from .labels import QUADRANTS

TRANSFER_FAMILIES = ("estm1", "estm2")


@dataclass
class TransferModel:
    name: str
    model: torch.nn.Module
    info: store.ModelInfo

    @property
    def family(self) -> str:
        return self.info.family

    @property
    def sample_rate(self) -> int:
        return self.info.audio["sample_rate"]

    @property
    def segment_length(self) -> int:
        return self.info.audio["segment_length"]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def load_transfer_model(name_or_path: str | None = None, device="cpu") -> TransferModel:
    """The named estm1/estm2 model, or the newest estm2 (then estm1) in the store."""
    if name_or_path is None:
        path = store.newest("estm2") or store.newest("estm1")
        if path is None:
            raise EstmError(f"no estm2 or estm1 model in the store ({store.models_dir()}); make one with "
                            "`estm train estm2 --data CACHE --style-labels truth`")
    else:
        path = store.resolve(name_or_path)
    model, info = store.load_model(path, device=device)
    if info.family not in TRANSFER_FAMILIES:
        raise EstmError(f"{path}: a {info.family} model; emotion transfer needs an estm1 or estm2 model")
    return TransferModel(store.model_name(path), model, info)


def window_starts(total: int, length: int, hop: int) -> list[int]:
    """Starts of `length`-sample windows every `hop` samples covering `total` samples; the last ends at the end."""
    if total <= length:
        return [0]
    starts = list(range(0, total - length + 1, hop))
    if starts[-1] + length < total:
        starts.append(total - length)
    return starts


def crossfade_window(length: int, overlap: int) -> np.ndarray:
    """Ones with raised-cosine ramps of `overlap` samples at both ends (weights for overlap-add)."""
    window = np.ones(length, np.float64)
    if overlap > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(overlap) + 0.5) / overlap)
        window[:overlap] = ramp
        window[-overlap:] = ramp[::-1]
    return window


def quadrant_one_hot(quadrant: str) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(QUADRANTS.index(quadrant)), len(QUADRANTS)).float()


@torch.no_grad()
def decode_segments(transfer: TransferModel, content: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
    """A batch of peak-normalised (B, L) content segments with (B, L) emotion audio (estm2) or (B, 4) quadrant
    one-hots -> (B, L) outputs."""
    device = transfer.device
    content, emotion = content.to(device), emotion.to(device)
    with autocast(device):
        if transfer.family == "estm2":
            output = transfer.model.transfer(content, emotion)
        else:
            output = transfer.model(content, emotion)["output"]
    return output.float()


def _normalised(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak-normalise each row, as the models were trained; returns (rows, their peaks) to restore the level."""
    peaks = np.abs(segments).max(axis=1)
    return segments / np.where(peaks > 0, peaks, 1.0)[:, None], peaks


def transfer_audio(transfer: TransferModel, content: np.ndarray, emotion: np.ndarray | str, *,
                   overlap_seconds: float = 1.0, batch_size: int = 4, on_progress=None) -> np.ndarray:
    """Mono content (T,) at the model's rate, with `emotion` (mono audio at that rate, or a quadrant) -> (T,)."""
    length = transfer.segment_length
    overlap = min(round(overlap_seconds * transfer.sample_rate), length // 2)
    total = len(content)
    padded = np.pad(content, (0, max(0, length - total))).astype(np.float32)
    starts = window_starts(len(padded), length, length - overlap)
    if isinstance(emotion, str):
        emotion_one_hot = quadrant_one_hot(emotion)
    else:
        if not len(emotion):
            raise EstmError("the emotion audio is empty")
        needed = starts[-1] + length  # cycle the emotion audio to run alongside the whole content
        emotion_tape = np.tile(emotion, -(-needed // len(emotion)))[:needed].astype(np.float32)

    window = crossfade_window(length, overlap)
    if len(starts) == 1:
        window = np.ones(length)
    output = np.zeros(len(padded), np.float64)
    weight = np.zeros(len(padded), np.float64)
    for first in range(0, len(starts), batch_size):
        batch_starts = starts[first:first + batch_size]
        segments, peaks = _normalised(np.stack([padded[start:start + length] for start in batch_starts]))
        if isinstance(emotion, str):
            emotions = emotion_one_hot.expand(len(batch_starts), -1)
        else:
            emotions = torch.from_numpy(_normalised(np.stack([emotion_tape[s:s + length] for s in batch_starts]))[0])
        decoded = decode_segments(transfer, torch.from_numpy(segments).float(), emotions.float()).cpu().numpy()
        for start, row, peak in zip(batch_starts, decoded, peaks):
            output[start:start + length] += row * peak * window
            weight[start:start + length] += window
        if on_progress:
            on_progress(min(first + batch_size, len(starts)), len(starts))
    return (output / np.maximum(weight, 1e-8))[:total].astype(np.float32)


def emotion_of(transfer: TransferModel, emotion_path: str | Path | None, quadrant: str | None,
               mer_model: str | None = None):
    """What to pass as `emotion` to transfer_audio: a quadrant (given, or for estm1 decided by a mer model on the
    emotion audio) or the emotion audio itself (estm2). Returns (emotion, the quadrant if known)."""
    if quadrant is not None:
        return QUADRANTS.labels[QUADRANTS.index(quadrant)], QUADRANTS.labels[QUADRANTS.index(quadrant)]
    if emotion_path is None:
        raise EstmError("give the emotion as an audio file or as --emotion Q1..Q4")
    if transfer.family == "estm1":
        from .classify import classify_file, load_classifiers

        classifiers = load_classifiers(["emotion"], {"emotion": mer_model} if mer_model else None,
                                       device=transfer.device)
        label = classify_file(emotion_path, classifiers).decisions["emotion"]["label"]
        return label, label
    samples, _ = audio.load(emotion_path, sample_rate=transfer.sample_rate, mono=True)
    return samples, None


def transfer_file(transfer: TransferModel, content_path: str | Path, output_path: str | Path, *,
                  emotion_path: str | Path | None = None, quadrant: str | None = None, mer_model: str | None = None,
                  overlap_seconds: float = 1.0, batch_size: int = 4, force: bool = False, on_progress=None) -> dict:
    """Transfer one file and write the result (format by extension; refuses to overwrite unless `force`)."""
    from .files import check_writable

    check_writable(output_path, force)
    content, rate = audio.load(content_path, sample_rate=transfer.sample_rate, mono=True)
    emotion, emotion_quadrant = emotion_of(transfer, emotion_path, quadrant, mer_model)
    result = transfer_audio(transfer, content, emotion, overlap_seconds=overlap_seconds, batch_size=batch_size,
                            on_progress=on_progress)
    audio.save(output_path, result, rate, force=force)
    return {"content": str(content_path), "emotion": str(emotion_path) if emotion_path else None,
            "quadrant": emotion_quadrant, "output": str(output_path), "duration": len(result) / rate,
            "model": transfer.name}


def pair_outputs(transfer: TransferModel, pairs, cache_dir: str | Path, *, batch_size: int = 8, on_progress=None):
    """Transfer the (content, style) segment pairs of a pairs table (from `estm data pairs`) within a segment
    cache. Yields (pair row number, content (L,), style (L,), output (L,)) as float32 arrays. ESTM-1 gets the
    style segment's quadrant from the labels the model was trained with (recorded in its metadata)."""
    from .datasets.segment import open_cache, read_manifest, to_float
    from .training.estm import read_style_labels

    cache = open_cache(cache_dir)
    row_of = dict(zip(*read_manifest(cache_dir)[["segment_id", "index"]].to_numpy().T))
    missing = sorted(set(pairs["content"]).union(pairs["style"]) - set(row_of))
    if missing:
        raise EstmError(f"{len(missing)} segments of the pairs are not in {cache_dir} (first: {missing[0]})")
    quadrant_of = None
    if transfer.family == "estm1":
        quadrant_of, _ = read_style_labels(transfer.info.training.get("style_labels") or "truth", cache_dir)
    for first in range(0, len(pairs), batch_size):
        rows = pairs.iloc[first:first + batch_size]
        contents = to_float(cache[[row_of[segment] for segment in rows["content"]]])
        styles = to_float(cache[[row_of[segment] for segment in rows["style"]]])
        if quadrant_of is None:
            emotion = torch.from_numpy(styles)
        else:
            emotion = torch.stack([quadrant_one_hot(quadrant_of[segment]) for segment in rows["style"]])
        outputs = decode_segments(transfer, torch.from_numpy(contents), emotion).cpu().numpy()
        yield from zip(range(first, first + len(rows)), contents, styles, outputs)
        if on_progress:
            on_progress(min(first + batch_size, len(pairs)), len(pairs))


def transfer_pairs(transfer: TransferModel, pairs, cache_dir: str | Path, out_dir: str | Path, *,
                   batch_size: int = 8, force: bool = False, on_progress=None) -> list[Path]:
    """Write OUT_DIR/{content}__{style}.wav for every pair."""
    written = []
    for index, _, _, output in pair_outputs(transfer, pairs, cache_dir, batch_size=batch_size,
                                            on_progress=on_progress):
        row = pairs.iloc[index]
        path = Path(out_dir) / f"{row['content']}__{row['style']}.wav"
        written.append(audio.save(path, output, transfer.sample_rate, force=force))
    return written
