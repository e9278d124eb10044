"""Emotion transfer in cue space: measure the cues of the content and of the emotion reference, then edit the
content's audio so that its cues move toward the reference's (render.py). No trained weights.

    moves = plan(analyze(content), analyze(reference), strength=1.0)
    output = apply(samples, sample_rate, moves)

Each cue moves by `strength` (0 nothing, 1 all the way) of the distance between the two measurements, within limits
that keep the audio natural (LIMITS). `cues` picks which of CUES move.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..keys import PITCH_NAMES
from . import render
from .analysis import Cues, loudness

CUES = ("tempo", "register", "loudness", "dynamics", "brightness", "articulation", "mode")
LIMITS = {  # the largest move of each cue
    "tempo_ratio": (0.5, 2.0),
    "semitones": 7,  # a fifth up or down: beyond it instruments stop sounding like themselves
    "gain_db": 20.0,
    "dynamics_ratio": (0.25, 4.0),
    "tilt_db_per_octave": 4.0,
    "articulation": 1.5,
}
ARTICULATION_PER_DECAY = 3.0  # transient-designer amount per unit of onset_decay difference (render.articulation)
MIN_KEY_CONFIDENCE = 0.6  # below this the key is too unsure to change its mode (noise reads 0.4-0.55)
PEAK = 0.99  # the output never peaks above this (no clipping)


@dataclass(frozen=True)
class Moves:
    """The edits one transfer makes; the defaults change nothing."""

    tempo_ratio: float = 1.0  # >1 faster
    semitones: float = 0.0  # register
    gain_db: float = 0.0  # loudness: the output is this much louder than the content (LUFS), whatever else moves
    dynamics_ratio: float = 1.0  # >1 compresses the level's swings, <1 expands them
    tilt_db_per_octave: float = 0.0  # brightness
    articulation: float = 0.0  # >0 more staccato and sharper attacks, <0 more legato
    key: tuple[int, str] | None = None  # the content's key (tonic pitch class, mode) where the mode changes
    mode: str | None = None  # the mode to change to, or None

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(*values: float) -> bool:
    return all(value is not None and math.isfinite(value) for value in values)


def plan(content: Cues, target: Cues, *, strength: float = 1.0, cues: tuple[str, ...] = CUES) -> Moves:
    """The moves that take `content`'s cues `strength` of the way to `target`'s, for the cues named in `cues`.
    A cue that either measurement lacks (NaN) does not move."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1 (got {strength})")
    unknown = sorted(set(cues) - set(CUES))
    if unknown:
        raise ValueError(f"unknown cue(s) {', '.join(unknown)} (known: {', '.join(CUES)})")
    moves = {}
    if "tempo" in cues and _finite(content.onset_rate, target.onset_rate) and content.onset_rate > 0 < target.onset_rate:
        low, high = LIMITS["tempo_ratio"]
        moves["tempo_ratio"] = float(np.clip((target.onset_rate / content.onset_rate) ** strength, low, high))
    if "register" in cues and _finite(content.pitch_centroid_midi, target.pitch_centroid_midi):
        semitones = strength * (target.pitch_centroid_midi - content.pitch_centroid_midi)
        moves["semitones"] = float(np.clip(round(semitones), -LIMITS["semitones"], LIMITS["semitones"]))
    if "loudness" in cues and _finite(content.loudness_lufs, target.loudness_lufs):
        moves["gain_db"] = float(np.clip(strength * (target.loudness_lufs - content.loudness_lufs),
                                         -LIMITS["gain_db"], LIMITS["gain_db"]))
    if "dynamics" in cues and _finite(content.dynamic_range_db, target.dynamic_range_db) and \
            content.dynamic_range_db > 0 < target.dynamic_range_db:
        low, high = LIMITS["dynamics_ratio"]
        ratio = (content.dynamic_range_db / target.dynamic_range_db) ** strength
        moves["dynamics_ratio"] = float(np.clip(ratio, low, high))
    if "brightness" in cues and _finite(content.tilt_db_per_octave, target.tilt_db_per_octave):
        moves["tilt_db_per_octave"] = float(np.clip(
            strength * (target.tilt_db_per_octave - content.tilt_db_per_octave),
            -LIMITS["tilt_db_per_octave"], LIMITS["tilt_db_per_octave"]))
    if "articulation" in cues and _finite(content.onset_decay, target.onset_decay):
        moves["articulation"] = float(np.clip(
            strength * ARTICULATION_PER_DECAY * (content.onset_decay - target.onset_decay),
            -LIMITS["articulation"], LIMITS["articulation"]))
    if ("mode" in cues and strength >= 0.5 and content.mode and target.mode and content.mode != target.mode
            and _finite(content.key_confidence) and content.key_confidence >= MIN_KEY_CONFIDENCE):
        moves["key"] = (PITCH_NAMES.index(content.tonic), content.mode)
        moves["mode"] = target.mode
    return Moves(**moves)


def apply(samples: np.ndarray, sample_rate: int, moves: Moves) -> np.ndarray:
    """`samples` (frames,) or (frames, channels) with `moves` made, in the shape they came in: the mode first (in
    the content's key), then tempo and register in one stretch, then
    articulation, brightness, dynamics and level; a peak limiter keeps it within PEAK."""
    mono = np.asarray(samples).ndim == 1
    if moves == Moves():
        return np.array(samples, dtype=np.float32)
    samples = render._as_2d(samples)
    edited = samples
    if moves.mode is not None and moves.key is not None:
        edited = render.change_mode(edited, sample_rate, *moves.key, moves.mode)
    edited = render.stretch(edited, sample_rate, moves.tempo_ratio, moves.semitones)
    edited = render.articulation(edited, sample_rate, moves.articulation)
    edited = render.tilt(edited, sample_rate, moves.tilt_db_per_octave)
    edited = render.dynamics(edited, sample_rate, moves.dynamics_ratio)
    before, after = loudness(samples, sample_rate), loudness(edited, sample_rate)
    level = moves.gain_db + (before - after if _finite(before, after) else 0.0)
    edited = render.limit(render.gain(edited, level), sample_rate, PEAK)
    return edited[:, 0] if mono else edited


def transfer_file(content_path, emotion_path, output_path, *, strength: float = 1.0, cues: tuple[str, ...] = CUES,
                  force: bool = False) -> dict:
    """The content of `content_path` with its cues moved toward those of `emotion_path`, written to `output_path`
    at the content's own rate and channels (atomically; an existing file is kept unless `force`). Returns the
    moves and the cues measured in the content, the reference and the output."""
    from .. import audio
    from ..files import check_writable
    from .analysis import analyze

    check_writable(output_path, force)
    content, reference = analyze(content_path), analyze(emotion_path)
    moves = plan(content, reference, strength=strength, cues=cues)
    samples, rate = audio.load(content_path)
    edited = apply(samples, rate, moves)
    audio.save(output_path, edited, rate, force=force)
    return {"content": str(content_path), "emotion": str(emotion_path), "output": str(output_path),
            "content_duration": len(samples) / rate, "duration": len(edited) / rate, "moves": moves.to_dict(), "cues": {
                "content": content.to_dict(), "emotion": reference.to_dict(), "output": analyze(edited, rate).to_dict()}}
