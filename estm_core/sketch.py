"""The cue curves a generation asks for: a quadrant's (`estm generate --emotion Qk`) or a reference file's
(`estm generate --like REF`, moved toward a quadrant with `--emotion`).

A quadrant's curves are those of a sketch: a SynthEmo phrase (datasets/synth_music.py) chosen by the seed, played in the
quadrant's cue profile — the one the cue transfer moves by (methods/cues/plan.PROFILES: tempo, level, register,
brightness, articulation; the mode with valence) — around the middle of the model's training audio (its median level,
register and onset rate, which the model file keeps), with some natural variation by seed, and measured as the
training audio was (cues/curves.py). A reference's curves are its own; with a quadrant, those of the reference moved
toward it by the cue method, as `estm transfer REF --emotion Qk` moves it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import audio
from .cues.curves import SAMPLE_RATE, frames_of, measure_coded, summary
from .cues.emotion import HIGH_SIDE
from .labels import QUADRANTS

VARIATION = {"onset_rate": 0.1, "level_db": 1.0, "register_midi": 1.0}  # by seed: octaves of tempo, dB, semitones
FIRST_TEMPO_BPM = 100.0  # the sketch is first played at this tempo, to hear how many onsets a beat brings
PEAK = 0.99


def quadrant_curves(quadrant: str, middle: dict, seconds: float, seed: int = 0) -> np.ndarray:
    """(frames_of(seconds), channels) curves of a sketch in `quadrant`'s profile around `middle` (curves.summary's
    keys: the training audio's median level_db, register_midi and onset_rate)."""
    return measure_coded(quadrant_sketch(quadrant, middle, seconds, seed))


def quadrant_sketch(quadrant: str, middle: dict, seconds: float, seed: int = 0) -> np.ndarray:
    """The sketch itself: mono audio at the WaveNet's rate."""
    from .datasets.synth_music import Cues, compose
    from .methods.cues.plan import PROFILES

    tempo_octaves, level_db, register, tilt, articulation = PROFILES[quadrant]
    rng = np.random.default_rng([seed, QUADRANTS.index(quadrant)])
    target = {"onset_rate": middle["onset_rate"] * 2.0 ** (tempo_octaves + rng.normal(0, VARIATION["onset_rate"])),
              "level_db": middle["level_db"] + level_db + rng.normal(0, VARIATION["level_db"]),
              "register_midi": middle["register_midi"] + register + rng.normal(0, VARIATION["register_midi"])}
    content = compose(seed, seed)
    cues = Cues(mode="major" if quadrant in HIGH_SIDE["valence"] else "minor", tempo_bpm=FIRST_TEMPO_BPM,
                      loudness_db=0.0, rolloff_db_per_octave=-9.0 + 3.0 * tilt,
                      articulation=float(np.clip(0.7 - 0.3 * articulation, 0.3, 1.0)), register_octaves=0,
                      dissonance=0.0, percussion=0.0)
    # played once to hear how fast and how high this phrase sounds, then again at the tempo and tonic that put it on
    # the target (its onsets come in proportion to the tempo)
    heard = summary(measure_coded(_play(content, cues, seconds, seed)))
    if heard["onset_rate"] > 0:
        cues = replace(cues, tempo_bpm=float(np.clip(FIRST_TEMPO_BPM * target["onset_rate"] / heard["onset_rate"],
                                                     20.0, 400.0)))
    if np.isfinite(heard["register_midi"]):
        content = replace(content, tonic_midi=content.tonic_midi + round(target["register_midi"]
                                                                         - heard["register_midi"]))
    samples = _play(content, cues, seconds, seed)
    heard = summary(measure_coded(samples))
    gain = 10.0 ** ((target["level_db"] - heard["level_db"]) / 20.0) if np.isfinite(heard["level_db"]) else 1.0
    peak = float(np.abs(samples).max())
    return samples * np.float32(min(gain, PEAK / peak) if peak > 0 else 1.0)


def _play(content, cues, seconds: float, seed: int) -> np.ndarray:
    from .datasets.synth_music import score
    from .datasets.synth_sound import in_a_room, synthesise

    frames = round(seconds * SAMPLE_RATE)
    dry = synthesise(score(content, cues, seconds), content, cues, frames, SAMPLE_RATE)
    return in_a_room(dry, SAMPLE_RATE, seed=[seed])


def reference_curves(path, seconds: float | None = None, quadrant: str | None = None) -> np.ndarray:
    """The curves of the file at `path` (moved toward `quadrant` by the cue method first, where one is given), for
    `seconds` (default: the file's length; a longer time repeats them)."""
    samples, _ = audio.load(path, sample_rate=SAMPLE_RATE, mono=True)
    if quadrant is not None:
        from .cues.meter import analyze
        from .methods.cues.method import apply
        from .methods.cues.plan import emotion_plan

        samples = apply(samples, SAMPLE_RATE, emotion_plan(analyze(samples, SAMPLE_RATE), quadrant=quadrant).moves)
    curves = measure_coded(samples)
    if seconds is None:
        return curves
    return np.resize(curves, (frames_of(round(seconds * SAMPLE_RATE)), curves.shape[1]))
