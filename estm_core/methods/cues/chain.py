"""The cue method's edits in their order, over a stream of blocks, in two passes (edit)."""

from __future__ import annotations

import math
from concurrent.futures import Executor
from typing import Iterable, Iterator

import numpy as np

from ...loudness import LoudnessMeter, power
from .articulation import Articulation
from .level import Dynamics, Gain, Limiter
from .mode import ModeChange
from .spool import float32_spool
from .stages import run
from .stretch import STRETCH_SEGMENT_S, Stretch
from .tilt import Tilt


def level_reference(loudness_lufs: float, channels: int) -> float:
    """The RMS level (per channel) of a signal of `loudness_lufs` integrated loudness, K-weighting aside: "the
    level" below which the dynamics and articulation edits of a transfer leave the gain alone. From the content's
    loudness, known before any edit, so that each edit needs one pass; -70 LUFS (BS.1770's gate) when unknown."""
    lufs = loudness_lufs if math.isfinite(loudness_lufs) else -70.0
    return math.sqrt(power(lufs) / channels)


def stages(sample_rate: int, channels: int, moves, reference: float, *, pool: Executor | None = None, ahead: int = 2,
           segment_seconds: float = STRETCH_SEGMENT_S) -> list:
    """The edits of `moves` (plan.Moves) in their order: the mode first (in the content's key), then tempo and
    register in one stretch, then articulation, brightness and dynamics. `reference`: the content's level."""
    chain = []
    if moves.mode is not None and moves.key is not None and moves.mode != moves.key[1]:
        chain.append(ModeChange(sample_rate, channels, *moves.key, moves.mode))
    if moves.tempo_ratio != 1.0 or moves.semitones != 0.0:
        chain.append(Stretch(sample_rate, channels, moves.tempo_ratio, moves.semitones, pool=pool, ahead=ahead,
                             segment_seconds=segment_seconds))
    if moves.articulation != 0.0:
        chain.append(Articulation(sample_rate, channels, moves.articulation, reference))
    if moves.tilt_db_per_octave != 0.0:
        chain.append(Tilt(sample_rate, channels, moves.tilt_db_per_octave))
    if moves.dynamics_ratio != 1.0:
        chain.append(Dynamics(sample_rate, channels, moves.dynamics_ratio, reference))
    return chain


def edit(blocks: Iterable[np.ndarray], sample_rate: int, channels: int, moves, *, content_loudness: float,
         ceiling: float, pool: Executor | None = None, ahead: int = 2, spool_folder=None,
         segment_seconds: float = STRETCH_SEGMENT_S) -> Iterator[np.ndarray]:
    """A cue transfer over blocks of the content, (frames, channels) float32, in two passes. The first makes the
    edits of `stages` and measures the loudness (BS.1770) of the result while keeping it in a spool: a float32 file
    in `spool_folder`, or memory when None. The second sets the level last, so that the output is
    `content_loudness` + moves.gain_db whatever the other edits did, and keeps it within +-`ceiling` with the
    look-ahead limiter. Yields the output in blocks."""
    meter = LoudnessMeter(sample_rate, channels)
    reference = level_reference(content_loudness, channels)
    with float32_spool(spool_folder, channels) as spool:
        for block in run(stages(sample_rate, channels, moves, reference, pool=pool, ahead=ahead,
                                segment_seconds=segment_seconds), blocks):
            meter.push(block)
            spool.write(block)
        after = meter.finish()[0]
        level = moves.gain_db + (content_loudness - after if math.isfinite(content_loudness) and math.isfinite(after)
                                 else 0.0)
        yield from run([Gain(channels, level), Limiter(sample_rate, channels, ceiling)], spool.read())
