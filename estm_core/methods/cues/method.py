"""The cue method as estm runs it, keeping the transfer-method contract (families.TransferMethod): a file moved
toward an emotion (transfer_file, `estm transfer`), arrays (apply), and the method as `estm evaluate transfer`
judges it (evaluation_method). What to move is plan.py's; the edits are chain.py's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ... import audio
from ...audio_checks import Level
from ...cues.meter import Cues, analyze, file_blocks, measure
from ...families import TransferSettings
from ...loudness import integrated_loudness
from .chain import edit
from .plan import CUES, MATCHES, PEAK, RANGES, Moves, emotion_plan
from .spool import default_jobs, float32_spool, workers
from .stages import as_2d

__all__ = ["CUES", "MATCHES", "RANGES", "apply", "describe", "evaluation_method", "transfer_file"]


def apply(samples: np.ndarray, sample_rate: int, moves: Moves, *, block_frames: int | None = None,
          jobs: int = 1) -> np.ndarray:
    """`samples` (frames,) or (frames, channels) with `moves` made, in the shape they came in: the mode first (in
    the content's key), then tempo and register in one stretch, then
    articulation, brightness, dynamics and level; a peak limiter keeps it within PEAK. A DC offset is removed first.

    The block pipeline transfer_file streams a file through (chain.edit), here `block_frames` at a time (default:
    all at once; the result does not depend on it), with the stretch on `jobs` worker processes."""
    mono = np.asarray(samples).ndim == 1
    if moves == Moves():
        return np.array(samples, dtype=np.float32)
    samples = as_2d(samples)
    level = Level()
    level.push(samples)
    if level.dc.any():  # as transfer_file: the DC offset goes before the edit
        samples = samples - level.dc
    step = block_frames or max(len(samples), 1)
    blocks = (samples[start:start + step] for start in range(0, len(samples), step))
    with workers(jobs) as pool:
        edited = list(edit(blocks, sample_rate, samples.shape[1], moves,
                           content_loudness=integrated_loudness(samples, sample_rate), ceiling=PEAK, pool=pool,
                           ahead=2 * jobs))
    edited = np.concatenate([np.zeros((0, samples.shape[1]), np.float32), *edited])
    return edited[:, 0] if mono else edited


def transfer_file(content, output, *, reference=None, quadrant: str | None = None,
                  settings: TransferSettings = TransferSettings(), force: bool = False, measure_output: bool = True,
                  jobs: int | None = None) -> dict:
    """The content of the file `content` moved toward the emotion of the file `reference` (or, with it None, of
    `quadrant`): emotion_plan, as `settings` (families.check_settings) ask. Written to `output` at the content's own
    rate and channels (atomically; an existing file is kept unless `force`). Returns the plan (the emotions heard,
    the steps, each move and why) and the cues measured in the content, the reference (None for a quadrant) and the
    output (None unless `measure_output`: that reads the output once more).

    Any length in bounded memory: the content is decoded once, in blocks that the meter reads and a float32 spool
    file beside the output keeps for the edit (chain.edit, which spools its first pass too), and written in blocks;
    the spools take 8 bytes a frame and channel of disk until the end. Its DC offset is removed before the edit (a
    gain or a stretch of an offset is a loud step or a slow swing, not music). `jobs` worker processes (default
    spool.default_jobs()) measure the reference while this process measures the content, then stretch the pieces of
    the content."""
    from ...files import atomic_write, check_writable

    output = check_writable(output, force)
    if (reference is None) == (quadrant is None):
        raise ValueError("transfer_file needs either an emotion reference file or a quadrant")
    with file_blocks(content) as blocks:  # the content's one decode pass, opened (and so checked) first
        rate, channels = blocks.sample_rate, blocks.channels
        if reference is not None:
            audio.probe(reference)  # the quick checks before any work
        output_format = audio.write_format(output, rate, channels)
        jobs = default_jobs() if jobs is None else jobs
        # the output's temporary first: an unwritable or full place is named before any work, and a failure anywhere
        # leaves nothing behind (the spools are unnamed files)
        with atomic_write(output, force) as temporary, workers(jobs) as pool, \
                float32_spool(output.parent, channels) as decoded:
            measuring = pool.submit(analyze, reference) if pool and reference is not None else None
            content_cues, offset = _measured_and_kept(Path(content), rate, channels, blocks, decoded)
            reference_cues = None
            if reference is not None:
                reference_cues = measuring.result() if measuring else analyze(reference)
            chosen = emotion_plan(content_cues, reference=reference_cues, quadrant=quadrant,
                                  strength=settings.strength, cues=CUES if settings.cues is None else settings.cues,
                                  range_=settings.range, match=settings.match)
            edited = edit((block - offset for block in decoded.read()) if offset.any() else decoded.read(), rate,
                          channels, chosen.moves, content_loudness=content_cues.loudness_lufs, ceiling=PEAK,
                          pool=pool, ahead=2 * jobs, spool_folder=output.parent)
            written = 0
            with audio.output_file(temporary, output, rate, channels, output_format) as sink:
                for block in edited:
                    sink.write(block)
                    written += len(block)
    return {"content": str(content), "emotion": str(reference) if reference is not None else quadrant,
            "output": str(output), "range": settings.range, "match": settings.match,
            "content_duration": content_cues.duration_s, "duration": written / rate, **chosen.to_dict(), "cues": {
                "content": content_cues.to_dict(),
                "emotion": reference_cues.to_dict() if reference_cues is not None else None,
                "output": analyze(output).to_dict() if measure_output else None}}


def _measured_and_kept(path, rate: int, channels: int, blocks, spool) -> tuple[Cues, np.ndarray]:
    """The content's cues, and its DC offset per channel (Level.dc), measured on the blocks as they are kept
    in `spool` for the edit: the content is decoded once."""
    level = Level(rate)

    def kept(blocks):
        for block in blocks:
            spool.write(block)
            level.push(block)
            yield block

    return measure(path, rate, channels, kept(blocks)), level.dc


def describe(result: dict) -> list[str]:
    """transfer_file's result for a person: the emotions heard and asked, then the moves made."""
    heard, asked, moves = result["content_emotion"], result["target_emotion"], result["moves"]
    by_file = result["cues"]["emotion"] is not None
    return [f"heard: the content as {_emotion(heard)}; asked: {_emotion(asked)}"
            + (f" ({result['emotion']})" if by_file else f" ({result['emotion']}, typical)"),
            f"moves ({result['range']}): tempo x{moves['tempo_ratio']:.2f}, {moves['semitones']:+.0f} semitones, "
            f"{moves['gain_db']:+.1f} dB, dynamics ratio {moves['dynamics_ratio']:.2f}, "
            f"tilt {moves['tilt_db_per_octave']:+.1f} dB/octave, articulation {moves['articulation']:+.2f}"
            + (f", {moves['key'][1]} -> {moves['mode']}" if moves["mode"] else "")]


def _emotion(emotion: dict) -> str:
    return f"{emotion['quadrant']} (arousal {emotion['arousal']:+.2f}, valence {emotion['valence']:+.2f})"


def evaluation_method(settings: TransferSettings = TransferSettings(), *, asked: str = "reference"):
    """The cue method as `estm evaluate transfer` calls it (a transfer_evaluation.Method): a pair's content moved
    toward its reference's emotion (`asked` "reference", as `estm transfer C R`) or toward the pair's target quadrant
    (`asked` "quadrant", as `estm transfer C --emotion Qk`), as `settings` ask; each file measured once."""
    if asked not in ("reference", "quadrant"):
        raise ValueError(f"asked must be reference or quadrant, not {asked!r}")
    measured: dict[str, Cues] = {}
    cues = CUES if settings.cues is None else settings.cues

    def cues_of(path: str) -> Cues:
        if path not in measured:
            measured[path] = analyze(path)
        return measured[path]

    def run(pair) -> tuple[np.ndarray, int]:
        samples, rate = audio.load(pair.content)
        if asked == "quadrant":
            chosen = emotion_plan(cues_of(pair.content), quadrant=pair.target_quadrant, strength=settings.strength,
                                  cues=cues, range_=settings.range)
        else:
            chosen = emotion_plan(cues_of(pair.content), reference=cues_of(pair.reference),
                                  strength=settings.strength, cues=cues, range_=settings.range, match=settings.match)
        return apply(samples, rate, chosen.moves), rate

    return run
