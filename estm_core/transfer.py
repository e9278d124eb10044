"""Emotion-style transfer of whole files: the content is cut into the model's segments with overlap, each segment is
decoded with the emotion, and the outputs are joined by overlap-add with crossfades, so the output has the content's
duration. Files go through in blocks (the content, the emotion audio and the output alike), so the memory does not
grow with their length.

ESTM-2 takes the emotion as audio (its segments matched in time to the content's, cycled if shorter) or, as an
option of ours, as a quadrant; ESTM-1 takes a quadrant, given or decided by a mer model on the emotion audio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from . import audio, audio_checks, model_file, store, windowing
from .classify import classify_file, load_classifiers
from .errors import AudioError, EstmError
from .families import transferring
from .labels import QUADRANTS

TRANSFER_FAMILIES = transferring()


def load_transfer_model(name_or_path: str | None = None, device="cpu") -> model_file.LoadedModel:
    """The named estm1/estm2 model, or the newest of them in the store."""
    path = store.find_model(TRANSFER_FAMILIES, name_or_path)
    transfer = store.load_model(path, device=device)
    if transfer.family not in TRANSFER_FAMILIES:
        raise EstmError(f"{path}: a {transfer.family} model; emotion transfer needs an estm1 or estm2 model")
    return transfer


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
def decode_segments(transfer: model_file.LoadedModel, content: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
    """A batch of peak-normalised (B, L) content segments with (B, L) emotion audio (estm2) or (B, 4) quadrant
    one-hots -> (B, L) outputs. In float32 on every device, under any autocast: in bf16, 0.5-4 % of the codes
    differ from float32's (the original's), and the output by 5.6-8.9 % relative RMS."""
    device = transfer.device
    content, emotion = content.to(device), emotion.to(device)
    with torch.autocast(device.type, enabled=False):
        if transfer.family == "estm2":
            output = transfer.model.transfer(content, emotion)
        else:
            output = transfer.model(content, emotion)["output"]
    return output.float()


def _normalised(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak-normalise each row, as the models were trained; returns (rows, their peaks) to restore the level."""
    peaks = np.abs(segments).max(axis=1)
    return segments / np.where(peaks > 0, peaks, 1.0)[:, None], peaks


def transfer_audio(transfer: model_file.LoadedModel, content: np.ndarray, emotion: np.ndarray | str, *,
                   overlap_seconds: float = 1.0, batch_size: int = 4, on_progress=None) -> np.ndarray:
    """Mono content (T,) at the model's rate, with `emotion` (mono audio at that rate, or a quadrant) -> (T,)."""
    blocks = transfer_blocks(transfer, [np.asarray(content, np.float32)], emotion, overlap_seconds=overlap_seconds,
                             batch_size=batch_size, expected_samples=len(content), on_progress=on_progress)
    return np.concatenate([np.zeros(0, np.float32), *blocks])


def transfer_blocks(transfer: model_file.LoadedModel, content_blocks: Iterable[np.ndarray],
                    emotion: str | np.ndarray | Path, *, overlap_seconds: float = 1.0, batch_size: int = 4,
                    expected_samples: int | None = None, block_frames: int = audio.STREAM_BLOCK,
                    on_progress=None) -> Iterator[np.ndarray]:
    """Mono float32 content blocks at the model's rate, with `emotion` (a quadrant, or mono audio at that rate: an
    array or a file, cycled to run alongside the content) -> float32 output blocks, as long as the content in all.

    Only a few segments are held at a time, whatever the length, and the output does not depend on the blocks.
    `expected_samples`, the content's length if known, sizes the progress reports."""
    length = transfer.segment_length
    overlap = min(round(overlap_seconds * transfer.sample_rate), length // 2)
    hop = length - overlap
    crossfade = crossfade_window(length, overlap)
    if isinstance(emotion, str):
        emotion_one_hot = quadrant_one_hot(emotion)
    else:
        emotion_tape = _Tape(_cycled(emotion, transfer.sample_rate, block_frames))
    expected = len(windowing.window_starts(expected_samples, length, hop)) if expected_samples else None
    content = windowing.Counted(content_blocks)
    joined = _OverlapAdd()
    done = 0
    for batch, last in _with_last(windowing.batched(windowing.windows(content, length, hop), batch_size)):
        starts = [start for start, _ in batch]
        segments, peaks = _normalised(np.stack([segment for _, segment in batch]))
        if isinstance(emotion, str):
            emotions = emotion_one_hot.expand(len(batch), -1)
        else:
            emotions = torch.from_numpy(_normalised(np.stack([emotion_tape.read(start, start + length)
                                                              for start in starts]))[0])
        decoded = decode_segments(transfer, torch.from_numpy(segments).float(), emotions.float()).cpu().numpy()
        window = np.ones(length) if last and done == 0 and len(batch) == 1 else crossfade  # one segment: no fades
        for start, row, peak in zip(starts, decoded, peaks):
            joined.add(start, row * peak * window, window)
        done += len(batch)
        if on_progress:
            on_progress(done, max(expected, done) if expected else None)
        # the segments still to come start after this batch's last start: what lies before it is final
        block = joined.take(content.samples if last else starts[-1])
        if len(block):
            yield block


_END = object()


def _with_last(items: Iterable) -> Iterator[tuple]:
    """(item, whether it is the last one) for each item, looking one item ahead."""
    iterator = iter(items)
    item = next(iterator, _END)
    while item is not _END:
        following = next(iterator, _END)
        yield item, following is _END
        item = following


def _cycled(emotion, sample_rate: int, block_frames: int) -> Iterator[np.ndarray]:
    """The emotion audio (an array, or a file decoded block by block at `sample_rate`) over and over, as float32."""
    if isinstance(emotion, np.ndarray):
        if not len(emotion):
            raise EstmError("the emotion audio is empty")
        # blocks of at least block_frames, so that a very short emotion does not go by in slivers
        repeated = np.tile(np.asarray(emotion, np.float32), -(-block_frames // len(emotion)))
        while True:
            yield repeated
    while True:
        yield from audio.Stream(emotion, sample_rate=sample_rate, block_frames=block_frames)


class _Tape:
    """A stream of blocks read by position, [start, stop), the starts never going back: holds only what is read."""

    def __init__(self, blocks: Iterator[np.ndarray]):
        self.blocks = blocks
        self.held = np.zeros(0, np.float32)
        self.start = 0  # the position of held[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        self.held, self.start = self.held[start - self.start:], start
        while len(self.held) < stop - start:
            self.held = np.concatenate([self.held, next(self.blocks)])
        return self.held[:stop - start]


class _OverlapAdd:
    """Weighted windows added at increasing starts; `take` hands out the samples no later window reaches, divided by
    their summed weights, and forgets them."""

    def __init__(self):
        self.start = 0  # the position of total[0]
        self.total = np.zeros(0, np.float64)
        self.weight = np.zeros(0, np.float64)

    def add(self, start: int, values: np.ndarray, weights: np.ndarray) -> None:
        missing = start + len(values) - self.start - len(self.total)
        if missing > 0:
            self.total = np.concatenate([self.total, np.zeros(missing)])
            self.weight = np.concatenate([self.weight, np.zeros(missing)])
        at = start - self.start
        self.total[at:at + len(values)] += values
        self.weight[at:at + len(values)] += weights

    def take(self, stop: int) -> np.ndarray:
        count = stop - self.start
        samples = (self.total[:count] / np.maximum(self.weight[:count], 1e-8)).astype(np.float32)
        self.total, self.weight, self.start = self.total[count:], self.weight[count:], stop
        return samples


def emotion_of(transfer: model_file.LoadedModel, reference: str | Path | None, quadrant: str | None,
               mer_model: str | None = None):
    """What to pass as `emotion` to transfer_blocks: a quadrant (given, or for estm1 decided by a mer model on the
    emotion reference file) or the reference file itself (estm2, read as it is needed). Returns (emotion, the
    quadrant if known)."""
    if quadrant is not None:
        return QUADRANTS.labels[QUADRANTS.index(quadrant)], QUADRANTS.labels[QUADRANTS.index(quadrant)]
    if reference is None:
        raise EstmError("give the emotion as an audio file or as --emotion Q1..Q4")
    if transfer.family == "estm1":
        classifiers = load_classifiers(["mer"], {"mer": mer_model} if mer_model else None,
                                       device=transfer.device)
        label = classify_file(reference, classifiers).decisions["mer"]["label"]
        return label, label
    return Path(reference), None


def transfer_file(transfer: model_file.LoadedModel, content: str | Path, output: str | Path, *,
                  reference: str | Path | None = None, quadrant: str | None = None, mer_model: str | None = None,
                  overlap_seconds: float = 1.0, batch_size: int = 4, force: bool = False,
                  block_frames: int = audio.STREAM_BLOCK, on_progress=None) -> dict:
    """Transfer the file `content` toward the emotion of the file `reference` or of `quadrant` and write the result
    to `output` (format by extension; refuses to overwrite unless `force`): the arguments in the order of every
    transfer method's transfer_file (families.TransferMethod). The content and the reference are read
    `block_frames` at a time and the output written as it is made, so the memory does not grow with the length;
    the output is the same as transfer_audio's on the whole arrays."""
    from .files import check_writable

    rate = transfer.sample_rate
    output = check_writable(output, force)
    output_format = audio.write_format(output, rate, 1)  # before the work, not after it
    level = audio_checks.Level()
    with audio.Stream(content, sample_rate=rate, block_frames=block_frames, level=level) as content_blocks:
        header = content_blocks.header  # the content opened (and so checked) first
        emotion, emotion_quadrant = emotion_of(transfer, reference, quadrant, mer_model)
        expected = round(header.frames * rate / header.sample_rate)
        blocks = transfer_blocks(transfer, content_blocks, emotion, overlap_seconds=overlap_seconds,
                                 batch_size=batch_size, expected_samples=expected, block_frames=block_frames,
                                 on_progress=on_progress)
        # the rule every command keeps (too short or silent: refused), known once the content has gone by
        frames = _save_blocks(output, blocks, rate, output_format, force,
                              before_commit=lambda: audio_checks.check_sound(content, level))
    return {"content": str(content), "emotion": str(reference) if reference else None,
            "quadrant": emotion_quadrant, "output": str(output), "duration": frames / rate,
            "model": transfer.name}


def _save_blocks(path: Path, blocks: Iterable[np.ndarray], sample_rate: int, output_format: tuple[str, str],
                 force: bool, before_commit=None) -> int:
    """audio.save for mono blocks, with the same result: a signal beyond [-1, 1] is divided by its peak, which is
    known only at the end, so the blocks wait in a float32 spool beside `path` and are written in a second pass.
    `before_commit()`, called once the blocks have gone by, may raise to leave nothing written. Returns the frames
    written."""
    from .methods.cues.spool import float32_spool
    from .files import atomic_write

    peak, frames = 0.0, 0
    # the output's temporary first: an unwritable folder is named before any work
    with atomic_write(path, force) as temporary, float32_spool(path.parent, 1) as spool:
        for block in blocks:
            if not np.isfinite(block).all():
                raise AudioError(path, "nonfinite", "refusing to write NaN or infinite samples")
            peak = max(peak, float(np.abs(block).max()))
            frames += len(block)
            spool.write(block)
        if before_commit is not None:
            before_commit()
        with audio.output_file(temporary, path, sample_rate, 1, output_format) as out:
            for block in spool.read():
                block = block[:, 0] / np.float32(peak) if peak > 1.0 else block[:, 0]
                for start in range(0, len(block), audio.WRITE_BLOCK):  # as audio.save writes (ogg needs it)
                    out.write(block[start:start + audio.WRITE_BLOCK])
    return frames


def pair_outputs(transfer: model_file.LoadedModel, pairs, cache_dir: str | Path, *, batch_size: int = 8,
                 on_progress=None):
    """Transfer the segment pairs of a pairs table (from `estm data pairs`: its "content" and "style" columns, the
    style segment being the emotion reference) within a segment cache. Yields (pair row number, content (L,),
    reference (L,), output (L,)) as float32 arrays. ESTM-1 gets the reference segment's quadrant from the labels the
    model was trained with (recorded in its metadata)."""
    from .datasets.segment import open_cache, read_manifest, to_float
    from .datasets.style_labels import read_style_labels

    cache = open_cache(cache_dir)
    row_of = dict(zip(*read_manifest(cache_dir)[["segment_id", "index"]].to_numpy().T))
    missing = sorted(set(pairs["content"]).union(pairs["style"]) - set(row_of))
    if missing:
        raise EstmError(f"{len(missing)} segments of the pairs are not in {cache_dir} (first: {missing[0]})")
    quadrant_of = None
    if transfer.family == "estm1":
        quadrant_of, _ = read_style_labels(transfer.info.training.style_labels or "truth", cache_dir)
    for first in range(0, len(pairs), batch_size):
        rows = pairs.iloc[first:first + batch_size]
        contents = to_float(cache[[row_of[segment] for segment in rows["content"]]])
        references = to_float(cache[[row_of[segment] for segment in rows["style"]]])
        if quadrant_of is None:
            emotion = torch.from_numpy(references)
        else:
            emotion = torch.stack([quadrant_one_hot(quadrant_of[segment]) for segment in rows["style"]])
        outputs = decode_segments(transfer, torch.from_numpy(contents), emotion).cpu().numpy()
        yield from zip(range(first, first + len(rows)), contents, references, outputs)
        if on_progress:
            on_progress(min(first + batch_size, len(pairs)), len(pairs))


def transfer_pairs(transfer: model_file.LoadedModel, pairs, cache_dir: str | Path, out_dir: str | Path, *,
                   batch_size: int = 8, force: bool = False, on_progress=None) -> list[Path]:
    """Write OUT_DIR/{content}__{style}.wav for every pair."""
    written = []
    for index, _, _, output in pair_outputs(transfer, pairs, cache_dir, batch_size=batch_size,
                                            on_progress=on_progress):
        row = pairs.iloc[index]
        path = Path(out_dir) / f"{row['content']}__{row['style']}.wav"
        written.append(audio.save(path, output, transfer.sample_rate, force=force))
    return written
