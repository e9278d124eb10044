"""The scores corpus's one table: how each quadrant plays a score (`CUES`), the instruments it may choose from, how
far each rendering strays from the table (`SPREAD`), and Eerola, Friberg & Bresin's cue levels for the factorial
design; with the corpus's defaults and the seeded draws every step of it takes (rng_for)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from . import synth

SAMPLE_RATE = 22050
SECONDS = synth.SECONDS


@dataclass(frozen=True)
class ScoreCues:
    """How one quadrant plays a score. Each field is a cue from EMOTION_CUES.md, with its emotional axis."""

    mode: str  # "major" or "minor", reached by the parallel-mode rule (valence)
    notes_per_second: float  # distinct note onsets per second; the tempo follows from the score's rhythm (arousal)
    level_db: float  # RMS level of the rendering, dBFS (arousal)
    velocity: int  # MIDI key velocity: loudness and attack within the instrument's samples (arousal)
    articulation: float  # sounding duration / written duration: 1 legato, 0.25 staccato (arousal)
    register_octaves: int  # octaves every part moves, within its instrument's range (valence and arousal)
    instruments: tuple[int, ...]  # General MIDI programs (0-based) the parts are played on: the timbre (arousal)


# GM programs (0-based) with the range each plays in (MIDI notes). Brighter: brass, double reeds, bowed and plucked
# strings with bright attacks; mellower: flute, horn, low strings, nylon guitar, choir.
INSTRUMENTS: dict[int, tuple[str, int, int]] = {
    0: ("acoustic grand piano", 21, 108), 1: ("bright acoustic piano", 21, 108), 6: ("harpsichord", 29, 89),
    24: ("nylon guitar", 40, 84), 32: ("acoustic bass", 28, 55), 40: ("violin", 55, 103), 41: ("viola", 48, 91),
    42: ("cello", 36, 76), 43: ("contrabass", 28, 60), 46: ("harp", 23, 103), 48: ("string ensemble", 28, 96),
    52: ("choir aahs", 40, 79), 56: ("trumpet", 52, 84), 57: ("trombone", 34, 72), 60: ("french horn", 34, 77),
    61: ("brass section", 34, 84), 64: ("soprano sax", 56, 88), 68: ("oboe", 58, 91), 70: ("bassoon", 34, 75),
    71: ("clarinet", 50, 91), 73: ("flute", 60, 96), 74: ("recorder", 60, 96),
}

# The one table to tune. Q1 happy/excited, Q2 tense/angry, Q3 sad, Q4 calm (labels.QUADRANTS). Directions from
# EMOTION_CUES.md ("The quadrants as cue directions"); values from Eerola et al.'s levels (tempo 1.2-6 notes/s,
# dynamics -10..+10 dB, articulation 0.25-1). Each cue takes at most two values across the arousal or the valence
# axis (register three), so no single cue names the quadrant, and the instrument sets overlap.
CUES: dict[str, ScoreCues] = {
    "Q1": ScoreCues(mode="major", notes_per_second=4.4, level_db=-15.0, velocity=100, articulation=0.55,
                    register_octaves=1, instruments=(56, 68, 40, 6, 1, 64, 71)),
    "Q2": ScoreCues(mode="minor", notes_per_second=4.4, level_db=-15.0, velocity=118, articulation=0.35,
                    register_octaves=0, instruments=(56, 61, 57, 40, 6, 1, 68)),
    "Q3": ScoreCues(mode="minor", notes_per_second=1.2, level_db=-21.0, velocity=52, articulation=1.0,
                    register_octaves=-1, instruments=(42, 48, 70, 60, 52, 43, 71)),
    "Q4": ScoreCues(mode="major", notes_per_second=2.0, level_db=-21.0, velocity=62, articulation=0.9,
                    register_octaves=0, instruments=(73, 46, 24, 0, 60, 48, 71, 74)),
}


@dataclass(frozen=True)
class Spread:
    """How far one rendering's cues stray from the table, drawn per rendering (uniform)."""

    tempo_ratio: float = 1.2  # notes per second multiplied or divided by up to this (log-uniform)
    level_db: float = 6.0  # +- dB: a high-arousal rendering can be as quiet as a low-arousal one
    velocity: int = 12  # +-
    articulation: float = 0.1  # +-
    other_instrument: float = 0.2  # chance that a part's instrument comes from any quadrant's set


SPREAD = Spread()
NO_SPREAD = Spread(tempo_ratio=1.0, level_db=0.0, velocity=0, articulation=0.0, other_instrument=0.0)

# Eerola, Friberg & Bresin 2013's cue levels, for the factorial design. Dynamics are dB about FACTORIAL_LEVEL_DB;
# timbre is their three instruments (trumpet, flute, horn); register is in whole octaves, so pitch classes stay.
FACTORIAL: dict[str, tuple] = {
    "mode": ("major", "minor"),
    "notes_per_second": (1.2, 2.0, 2.8, 4.4, 6.0),
    "dynamics_db": (-10.0, -5.0, 0.0, 5.0, 10.0),
    "articulation": (1.0, 0.75, 0.5, 0.25),
    "register_octaves": (-1, 0, 1),
    "instrument": (56, 73, 60),
}
FACTORIAL_LEVEL_DB, FACTORIAL_VELOCITY, VELOCITY_PER_DB = -18.0, 80, 3.0


def rng_for(seed: int, *keys) -> np.random.Generator:
    """A generator for one (seed, work, ...) whatever order works are processed in."""
    digest = hashlib.sha256(json.dumps([seed, *keys]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))
