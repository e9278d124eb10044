"""Emotion transfer in cue space: measure the cues of the content and of the emotion reference, then edit the
content's audio so that its cues move toward the reference's (render.py). No trained weights.

    moves = plan(analyze(content), analyze(reference), strength=1.0)
    output = apply(samples, sample_rate, moves)

Each cue moves by `strength` (0 nothing, 1 all the way) of the distance between the two measurements, within limits
that keep the audio natural (LIMITS). `cues` picks which of CUES move.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..keys import PITCH_NAMES
from . import render
from .analysis import Cues, loudness

CUES = ("tempo", "register", "loudness", "dynamics", "brightness", "articulation", "mode")
LIMITS = {  # the largest move of each cue
    "tempo_ratio": (0.25, 4.0),  # the stretcher's range; the scores corpus's quadrants lie up to 3.7x apart
    "octaves": 1,  # register moves in whole octaves, so the key and the melody's pitch classes stay
    "gain_db": 20.0,
    "dynamics_ratio": (0.25, 4.0),
    "tilt_db_per_octave": 4.0,
    "articulation": 1.5,
}
# Where the asked tilt EQ would leave the tilt or an octave move going the wrong way (as the meter reads them), plan
# picks the EQ nearest it, in steps of 0.05 within the limit, that moves the tilt by TILT_MARGIN and keeps
# REGISTER_MARGIN of the octave (the meter's thresholds for a move; twice it for the register, whose prediction errs)
TILT_SETTINGS = np.arange(-80, 81) / 20.0
TILT_MARGIN, REGISTER_MARGIN = 0.5, 2.0  # dB per octave, semitones
ARTICULATION_PER_DECAY = 3.0  # transient-designer amount per unit of onset_decay difference (render.articulation)
MIN_ONSET_RATE = 0.5  # onsets per second below which the meter cannot read a tempo (steady noise gives 0.1)
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


# `--emotion Q1..Q4` without a reference file: each quadrant's cue directions (spec/EMOTION_CUES.md: Juslin & Laukka
# 2003, Eerola et al. 2013, CMERS) as a step from wherever the content is. Tempo one step of Eerola's levels (they
# are 1.4-1.7x apart); loudness to a level (BS.1770 is absolute: 10 LU apart, half Eerola's +-10 dB span, around the
# -15 LUFS of commercial orchestral recordings); register an octave for the high and the low quadrants; brightness
# and articulation a small step; the mode as the quadrant's valence asks. Not fitted on any corpus.
QUADRANT_PROFILES = {
    #       mode     tempo x  loudness LUFS  octaves  tilt dB/oct  articulation (+ staccato, - legato)
    "Q1": ("major", 1.3, -14.0, +1, +1.5, +0.5),  # happy: fast, loud, high, bright, detached
    "Q2": ("minor", 1.3, -14.0, 0, +2.0, +1.0),  # tense: fast, loud, middle-low, harsh, sharp attacks
    "Q3": ("minor", 0.7, -24.0, -1, -2.0, -0.75),  # sad: slow, soft, low, dull, legato
    "Q4": ("major", 0.8, -24.0, 0, -1.5, -0.75),  # calm: slow, soft, middle-high, mellow, legato
}


def quadrant_target(content: Cues, quadrant: str) -> Cues:
    """The cues `content` would have in `quadrant` (QUADRANT_PROFILES): the target for `plan` without a reference."""
    mode, tempo, lufs, octaves, tilt, articulation = QUADRANT_PROFILES[quadrant]
    decay = content.onset_decay - articulation / ARTICULATION_PER_DECAY  # the meter reads 0 to 1: legato music at 1
    #   cannot be asked to be more legato
    return replace(content, onset_rate=content.onset_rate * tempo, loudness_lufs=lufs,
                   pitch_centroid_midi=content.pitch_centroid_midi + 12 * octaves,
                   tilt_db_per_octave=content.tilt_db_per_octave + tilt, onset_decay=float(np.clip(decay, 0.0, 1.0)),
                   mode=mode)


def quadrant_plan(content: Cues, quadrant: str, *, strength: float = 1.0,
                  cues: tuple[str, ...] = CUES) -> tuple[Cues, Moves]:
    """quadrant_target and the plan toward it. The profile's tempo is a step from wherever the content is, so it is
    taken even where the meter hears too few onsets to read a tempo (which a reference's tempo needs)."""
    target = quadrant_target(content, quadrant)
    moves = plan(content, target, strength=strength, cues=cues)
    if "tempo" in cues:
        moves = replace(moves, tempo_ratio=QUADRANT_PROFILES[quadrant][1] ** strength)
    return target, moves


def _finite(*values: float) -> bool:
    return all(value is not None and math.isfinite(value) for value in values)


def tempo_ratio(content: Cues, target: Cues) -> float:
    """How much faster the target is, in notes (onsets) per second; NaN where the meter hears too few onsets in
    either to read a tempo (MIN_ONSET_RATE). Onsets follow the notes played; a beat tracker does not: on the scores
    corpus, correlation 0.87 against 0.38 with the true ratio; on the 26 Wesnoth tracks with 0.5 onsets/s or more, each
    stretched x1.25 and x0.8, the onset rate moved the stretch's way 51 times in 52, librosa's beat estimate 26."""
    if not _finite(content.onset_rate, target.onset_rate) or \
            min(content.onset_rate, target.onset_rate) < MIN_ONSET_RATE:
        return math.nan
    return target.onset_rate / content.onset_rate


def plan(content: Cues, target: Cues, *, strength: float = 1.0, cues: tuple[str, ...] = CUES) -> Moves:
    """The moves that take `content`'s cues `strength` of the way to `target`'s, for the cues named in `cues`.
    A cue that either measurement lacks (NaN) does not move."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1 (got {strength})")
    unknown = sorted(set(cues) - set(CUES))
    if unknown:
        raise ValueError(f"unknown cue(s) {', '.join(unknown)} (known: {', '.join(CUES)})")
    moves = {}
    tempo = tempo_ratio(content, target)
    if "tempo" in cues and _finite(tempo):
        low, high = LIMITS["tempo_ratio"]
        moves["tempo_ratio"] = float(np.clip(tempo ** strength, low, high))
    if "register" in cues and _finite(content.pitch_centroid_midi, target.pitch_centroid_midi):
        octaves = strength * (target.pitch_centroid_midi - content.pitch_centroid_midi) / 12
        moves["semitones"] = float(12 * np.clip(round(octaves), -LIMITS["octaves"], LIMITS["octaves"]))
    if "loudness" in cues and _finite(content.loudness_lufs, target.loudness_lufs):
        moves["gain_db"] = float(np.clip(strength * (target.loudness_lufs - content.loudness_lufs),
                                         -LIMITS["gain_db"], LIMITS["gain_db"]))
    if "dynamics" in cues and _finite(content.dynamic_range_db, target.dynamic_range_db) and \
            content.dynamic_range_db > 0 < target.dynamic_range_db:
        low, high = LIMITS["dynamics_ratio"]
        ratio = (content.dynamic_range_db / target.dynamic_range_db) ** strength
        moves["dynamics_ratio"] = float(np.clip(ratio, low, high))
    if "brightness" in cues and _finite(content.tilt_db_per_octave, target.tilt_db_per_octave):
        ask = float(np.clip(strength * (target.tilt_db_per_octave - content.tilt_db_per_octave),
                            -LIMITS["tilt_db_per_octave"], LIMITS["tilt_db_per_octave"]))
        moves["tilt_db_per_octave"] = ask if content.spectra is None or ask == 0 else _tilt_setting(
            content, round(moves.get("semitones", 0.0)), ask)
    if "articulation" in cues and _finite(content.onset_decay, target.onset_decay):
        moves["articulation"] = float(np.clip(
            strength * ARTICULATION_PER_DECAY * (content.onset_decay - target.onset_decay),
            -LIMITS["articulation"], LIMITS["articulation"]))
    if ("mode" in cues and strength >= 0.5 and content.mode and target.mode and content.mode != target.mode
            and _finite(content.key_confidence) and content.key_confidence >= MIN_KEY_CONFIDENCE):
        moves["key"] = (PITCH_NAMES.index(content.tonic), content.mode)
        moves["mode"] = target.mode
    return Moves(**moves)


def _tilt_setting(content: Cues, semitones: int, ask: float) -> float:
    """The tilt EQ for a tilt move of `ask`: `ask` itself where the content's long-term spectra predict that, after
    the octave move, it moves the tilt the asked way and leaves the octave move in the pitch centroid; else the
    setting nearest it that does both (else `ask`). An octave up raises the tilt of orchestral music by 1.5-6 dB/oct
    (an octave down lowers it), and the EQ moves the pitch centroid by about 3 semitones per dB/oct: with the
    octave and the tilt asked opposite ways, the asked EQ alone moves one of them the wrong way."""
    def moves_both(setting: float) -> bool:
        gain = render.Tilt(content.spectra.sample_rate, 1, setting).power_gain if setting else None
        tilt_change, register_change = content.spectra.changes(semitones, gain)
        return (tilt_change * np.sign(ask) >= min(TILT_MARGIN, abs(ask)) and
                (not semitones or not _finite(register_change) or
                 register_change * np.sign(semitones) >= REGISTER_MARGIN))

    for setting in [ask, *sorted(TILT_SETTINGS, key=lambda setting: abs(setting - ask))]:
        if moves_both(setting):
            return float(setting)
    return ask


def apply(samples: np.ndarray, sample_rate: int, moves: Moves, *, block_frames: int | None = None,
          jobs: int = 1) -> np.ndarray:
    """`samples` (frames,) or (frames, channels) with `moves` made, in the shape they came in: the mode first (in
    the content's key), then tempo and register in one stretch, then
    articulation, brightness, dynamics and level; a peak limiter keeps it within PEAK.

    The block pipeline transfer_file streams a file through (render.edit), here `block_frames` at a time (default:
    all at once; the result does not depend on it), with the stretch on `jobs` worker processes."""
    mono = np.asarray(samples).ndim == 1
    if moves == Moves():
        return np.array(samples, dtype=np.float32)
    samples = render._as_2d(samples)
    step = block_frames or max(len(samples), 1)
    blocks = (samples[start:start + step] for start in range(0, len(samples), step))
    with render.workers(jobs) as pool:
        edited = list(render.edit(blocks, sample_rate, samples.shape[1], moves,
                                  content_loudness=loudness(samples, sample_rate), ceiling=PEAK, pool=pool,
                                  ahead=2 * jobs))
    edited = np.concatenate([np.zeros((0, samples.shape[1]), np.float32), *edited])
    return edited[:, 0] if mono else edited


def transfer_file(content_path, emotion_path, output_path, *, strength: float = 1.0, cues: tuple[str, ...] = CUES,
                  force: bool = False, quadrant: str | None = None, measure_output: bool = True,
                  jobs: int | None = None) -> dict:
    """The content of `content_path` with its cues moved toward those of `emotion_path` (or, with `emotion_path`
    None, toward `quadrant`'s profile: quadrant_plan), written to `output_path` at the content's own rate and
    channels (atomically; an existing file is kept unless `force`). Returns the moves and the cues measured in the
    content, the reference (or the quadrant's target) and the output (None unless `measure_output`: that reads the
    output once more).

    Any length in bounded memory: the content is decoded once, in blocks that the analysis reads and a float32 spool
    file beside the output keeps for the edit (render.edit, which spools its first pass too), and written in blocks;
    the spools take 8 bytes a frame and channel of disk until the end. `jobs` worker processes (default
    render.default_jobs()) analyse the reference while this process analyses the content, then stretch the pieces of
    the content."""
    from pathlib import Path

    import soundfile as sf

    from .. import audio
    from ..files import atomic_write, check_writable
    from .analysis import _file_blocks, _measure, analyze

    output_path = check_writable(output_path, force)
    if (emotion_path is None) == (quadrant is None):
        raise ValueError("transfer_file needs either an emotion file or a quadrant")
    header = audio.probe(content_path)
    if emotion_path is not None:
        audio.probe(emotion_path)  # the quick checks before any work
    format_, subtype = audio.write_format(output_path, header.sample_rate, header.channels)
    jobs = render.default_jobs() if jobs is None else jobs
    rate, channels, blocks = _file_blocks(Path(content_path))
    with render.workers(jobs) as pool, render.float32_spool(output_path.parent, channels) as decoded:
        analysing = pool.submit(analyze, emotion_path) if pool and emotion_path is not None else None

        def kept(blocks):  # the content is decoded once: the blocks the analysis reads are the edit's input
            for block in blocks:
                decoded.write(block)
                yield block

        content = _measure(Path(content_path), rate, channels, kept(blocks))
        if emotion_path is None:
            reference, moves = quadrant_plan(content, quadrant, strength=strength, cues=cues)
        else:
            reference = analysing.result() if analysing else analyze(emotion_path)
            moves = plan(content, reference, strength=strength, cues=cues)
        written = 0
        with atomic_write(output_path, force) as temporary:
            with sf.SoundFile(temporary, "w", rate, channels, format=format_, subtype=subtype) as output:
                for block in render.edit(decoded.read(), rate, channels, moves,
                                         content_loudness=content.loudness_lufs, ceiling=PEAK, pool=pool,
                                         ahead=2 * jobs, spool_folder=output_path.parent):
                    output.write(block)
                    written += len(block)
    return {"content": str(content_path), "emotion": str(emotion_path) if emotion_path is not None else quadrant,
            "output": str(output_path),
            "content_duration": content.duration_s, "duration": written / rate, "moves": moves.to_dict(), "cues": {
                "content": content.to_dict(), "emotion": reference.to_dict(),
                "output": analyze(output_path).to_dict() if measure_output else None}}


def evaluation_method(strength: float = 1.0, *, asked: str = "reference", range_: str = "natural"):
    """The cue method as `estm evaluate transfer` calls it (a transfer_evaluation.Method): a pair's content moved
    toward its reference's emotion (`asked` "reference", as `estm transfer C R`) or toward the pair's target quadrant
    (`asked` "quadrant", as `estm transfer C --emotion Qk`), each file analysed once."""
    from .. import audio
    from .analysis import analyze

    if asked not in ("reference", "quadrant"):
        raise ValueError(f"asked must be reference or quadrant, not {asked!r}")
    analysed: dict[str, Cues] = {}

    def cues_of(path: str) -> Cues:
        if path not in analysed:
            analysed[path] = analyze(path)
        return analysed[path]

    def run(pair) -> tuple[np.ndarray, int]:
        samples, rate = audio.load(pair.content)
        if asked == "quadrant":
            _, moves = quadrant_plan(cues_of(pair.content), pair.target_quadrant, strength=strength)
        else:
            moves = plan(cues_of(pair.content), cues_of(pair.reference), strength=strength)
        return apply(samples, rate, moves), rate

    return run
