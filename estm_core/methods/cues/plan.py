"""The cue method's plan: hear the emotion of the content and of the ask (an emotion reference file, or a quadrant),
and choose the edits that move the content's cues by the difference. No trained weights.

    plan = emotion_plan(analyze(content), reference=analyze(reference))   # or quadrant="Q3"
    output = method.apply(samples, sample_rate, plan.moves)

The emotion of each file is recognised from its cues (cues/emotion.py: arousal and valence). The difference between
the cue profiles of the asked and the heard emotion (PROFILES, from the literature), scaled by `strength`, moves each
cue from the content's own value: never to an absolute target, so soft music asked for sadness gets softer, and
loud music asked for joy no quieter. The moves stay
within a range (RANGES): "natural" keeps to what a mixing engineer would do to a finished recording, "wide" allows
octaves and large tempo changes. With `match="cues"` the content's cues move toward the reference's raw values
instead (`plan`), the method before emotion was recognised. `cues` picks which of CUES move. The edits themselves
are the stages of this package (chain.py puts them in order).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ...cues.emotion import HIGH_SIDE, Emotion, Recogniser, active_recogniser
from ...cues.meter import Cues, tempo_ratio
from ...keys import PITCH_NAMES
from ...labels import QUADRANTS
from .tilt import Tilt

CUES = ("tempo", "register", "loudness", "dynamics", "brightness", "articulation", "mode")
MATCHES = ("emotion", "cues")


@dataclass(frozen=True)
class Range:
    """The largest move of each cue."""

    tempo_ratio: tuple[float, float]
    semitones: int  # the largest transposition of the whole mix
    whole_octaves: bool  # transpose only in whole octaves, so that the key and the melody's pitch classes stay
    gain_db: float
    dynamics_ratio: tuple[float, float]
    tilt_db_per_octave: float
    articulation: float


RANGES = {
    # a mixing engineer's moves on a finished recording: no transposition (register is where the melody sits, which
    # a finished mix cannot move; a transposed mix changes key: 3 semitones left the development corpus's outputs a
    # chroma correlation with their content of 0.18), about x0.75-x1.33 of tempo before the stretch is heard, a
    # mastering tilt (1 dB/octave is about 3 dB at 100 Hz and 8 kHz against 1 kHz; 2 dB/octave moved Wesnoth's
    # spectral centroids up to x2.5), a transient designer's range
    "natural": Range(tempo_ratio=(0.75, 4 / 3), semitones=0, whole_octaves=False, gain_db=10.0,
                     dynamics_ratio=(2 / 3, 1.5), tilt_db_per_octave=1.0, articulation=1.0),
    # the stretcher's and the EQ's whole range: the scores corpus's quadrants lie up to 3.7x apart in tempo and two
    # octaves in register
    "wide": Range(tempo_ratio=(0.25, 4.0), semitones=12, whole_octaves=True, gain_db=20.0,
                  dynamics_ratio=(0.25, 4.0), tilt_db_per_octave=4.0, articulation=1.5),
}

# Each quadrant's cues relative to the middle of the emotion plane (spec/EMOTION_CUES.md, "The quadrants as cue
# directions": Juslin & Laukka 2003, Eerola et al. 2013, CMERS). A transfer moves the cues by the difference between
# the profiles of the asked and the heard emotion, each the quadrants' profiles weighed by the emotion's quadrant
# probabilities. Sizes: arousal's sides an octave of tempo apart (Eerola's levels are 1.4-1.7x apart, calm and excited
# music 2-4x) and 10 dB (half Eerola's 20 dB span); register an octave between Q1 and Q3, Q2 and Q4 between them;
# small tilts and articulation steps. Not fitted to any corpus.
#             tempo octaves  level dB  register semitones  tilt dB/oct  articulation (+ detached, - legato)
PROFILES = {
    "Q1": np.array([+0.5, +5.0, +6.0, +1.0, +0.5]),  # happy: fast, loud, high, bright, staccato-ish
    "Q2": np.array([+0.5, +5.0, -3.0, +1.5, +1.0]),  # tense: fast, loud, middle-low, bright and harsh, sharp attacks
    "Q3": np.array([-0.5, -5.0, -6.0, -1.5, -0.75]),  # sad: slow, soft, low, dull, legato
    "Q4": np.array([-0.5, -5.0, +3.0, -1.0, -0.75]),  # calm: slow, soft, middle-high, mellow, legato
}
MODE_STEP = 0.25  # the mode changes for a valence step (Plan.steps) of at least this much
# Moves smaller than these are not made: no one hears them, and the stretcher alone costs 1.4 dB of log-mel distance
# even at x1.003 (transfer_artifacts: the content asked for its own emotion must come back nearly unchanged)
SMALLEST_MOVES = {"tempo_ratio": 0.02, "gain_db": 0.25, "semitones": 0.5, "tilt_db_per_octave": 0.1,
                  "articulation": 0.05}
LOUDEST_LUFS, QUIETEST_LUFS = -9.0, -45.0  # a gain never takes the output beyond these (a loud master: -9 LUFS)

# Where the asked tilt EQ would leave the tilt or an octave move going the wrong way (as the meter reads them), plan
# picks the EQ nearest it, in steps of 0.05 within the limit, that moves the tilt by TILT_MARGIN and keeps
# REGISTER_MARGIN of the octave (the meter's thresholds for a move; twice it for the register, whose prediction errs)
TILT_SETTINGS = np.arange(-80, 81) / 20.0
TILT_MARGIN, REGISTER_MARGIN = 0.5, 2.0  # dB per octave, semitones
ARTICULATION_PER_DECAY = 3.0  # transient-designer amount per unit of onset_decay difference (articulation.Articulation)
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


@dataclass(frozen=True)
class Plan:
    """What a transfer heard and what it does about it."""

    moves: Moves
    content: Emotion  # the content's emotion, recognised
    target: Emotion  # the emotion asked: the reference's, recognised, or the quadrant's typical one
    steps: dict[str, float] | None  # arousal and valence: how many whole steps the moves take (None: cues matched)
    reasons: dict[str, str]  # for each move made, why

    def to_dict(self) -> dict:
        return {"content_emotion": self.content.to_dict(), "target_emotion": self.target.to_dict(),
                "steps": self.steps, "reasons": self.reasons, "moves": self.moves.to_dict()}


def _check(strength: float, cues: tuple[str, ...], range_: str) -> Range:
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1 (got {strength})")
    unknown = sorted(set(cues) - set(CUES))
    if unknown:
        raise ValueError(f"unknown cue(s) {', '.join(unknown)} (known: {', '.join(CUES)})")
    if range_ not in RANGES:
        raise ValueError(f"range must be one of {', '.join(RANGES)} (got {range_!r})")
    return RANGES[range_]


def emotion_plan(content: Cues, *, reference: Cues | None = None, quadrant: str | None = None,
                 strength: float = 1.0, cues: tuple[str, ...] = CUES, range_: str = "natural",
                 match: str = "emotion", recogniser: Recogniser | None = None) -> Plan:
    """The moves that take `content` toward the emotion of `reference` (recognised) or of `quadrant` (its typical
    emotion: a quadrant ask moves each axis only toward the quadrant's side, never back from it), `strength` of the
    way, within `range_`. With `match="cues"` (a reference only), toward the reference's raw cue values instead."""
    limits = _check(strength, cues, range_)
    if (reference is None) == (quadrant is None):
        raise ValueError("emotion_plan needs either a reference or a quadrant")
    if quadrant is not None and quadrant not in QUADRANTS.labels:
        raise ValueError(f"quadrant must be one of {', '.join(QUADRANTS.labels)} (got {quadrant!r})")
    if match not in MATCHES:
        raise ValueError(f"match must be one of {', '.join(MATCHES)} (got {match!r})")
    recogniser = recogniser or active_recogniser()
    heard = recogniser.recognise(content)
    target = recogniser.typical[quadrant] if quadrant else recogniser.recognise(reference)
    if match == "cues":
        if reference is None:
            raise ValueError("matching cue values needs a reference")
        return Plan(plan(content, reference, strength=strength, cues=cues, range_=range_), heard, target, None,
                    {"all": "the reference's cue values, matched"})
    steps, planned = {}, {}
    for axis in ("arousal", "valence"):
        high = np.mean([getattr(recogniser.typical[q], axis) for q in HIGH_SIDE[axis]])
        low = np.mean([getattr(recogniser.typical[q], axis) for q in QUADRANTS.labels if q not in HIGH_SIDE[axis]])
        difference = getattr(target, axis) - getattr(heard, axis)
        if quadrant is not None:  # toward the quadrant's side only: music already past its typical stays
            difference = max(difference, 0.0) if quadrant in HIGH_SIDE[axis] else min(difference, 0.0)
        planned[axis] = getattr(target, axis) - difference
        steps[axis] = float(strength * difference / max(high - low, 1e-6))
    change = strength * (_profile(target) - _profile(Emotion(planned["arousal"], planned["valence"])))
    moves, reasons = _profile_moves(content, change, steps["valence"], cues, limits)
    return Plan(moves, heard, target, steps, reasons)


def _profile(emotion: Emotion) -> np.ndarray:
    """The cue profile of an emotion: the quadrants' PROFILES weighed by its quadrant probabilities."""
    return sum(p * PROFILES[quadrant] for quadrant, p in emotion.probabilities.items())


def _profile_moves(content: Cues, change: np.ndarray, valence: float, cues: tuple[str, ...],
                   limits: Range) -> tuple[Moves, dict[str, str]]:
    """The moves for a `change` of the cue profile (PROFILES' columns) and a `valence` step (the mode), from the
    content's own cues and within `limits`, with the reason for each."""
    tempo_octaves, gain_db, semitones, tilt, articulation = (float(value) for value in change)
    moves, reasons = {}, {}

    def move(name: str, field_: str, asked: float, value: float, words: tuple[str, str]) -> None:
        if abs(value - getattr(Moves(), field_)) >= SMALLEST_MOVES[field_]:
            moves[field_] = float(value)
            reasons[name] = words[asked < 0] + (" (held by the range)" if not math.isclose(asked, value) else "")

    if "tempo" in cues and tempo_octaves:
        move("tempo", "tempo_ratio", tempo_octaves, np.clip(2.0 ** tempo_octaves, *limits.tempo_ratio),
             ("faster", "slower"))
    if "loudness" in cues and gain_db and _finite(content.loudness_lufs):
        held = float(np.clip(gain_db, -limits.gain_db, limits.gain_db))  # and never past LOUDEST / QUIETEST
        sane = min(held, max(0.0, LOUDEST_LUFS - content.loudness_lufs)) if held > 0 else \
            max(held, min(0.0, QUIETEST_LUFS - content.loudness_lufs))
        move("loudness", "gain_db", gain_db, sane, ("louder", "softer"))
    if "register" in cues and semitones:
        move("register", "semitones", semitones, _transposition(semitones, limits), ("higher", "lower"))
    if "brightness" in cues and tilt:
        held = float(np.clip(tilt, -limits.tilt_db_per_octave, limits.tilt_db_per_octave))
        if content.spectra is not None:
            held = _tilt_setting(content, round(moves.get("semitones", 0.0)), held, limits.tilt_db_per_octave)
        move("brightness", "tilt_db_per_octave", tilt, held, ("brighter", "darker"))
    if "articulation" in cues and articulation and _finite(content.onset_decay):
        held = float(np.clip(articulation, -limits.articulation, limits.articulation))
        # the meter reads decay from 0 to 1: legato music at 1 cannot be made more legato
        decay = float(np.clip(content.onset_decay - held / ARTICULATION_PER_DECAY, 0.0, 1.0))
        move("articulation", "articulation", articulation, ARTICULATION_PER_DECAY * (content.onset_decay - decay),
             ("more detached", "more legato"))
    wanted = "major" if valence > 0 else "minor"
    if ("mode" in cues and abs(valence) >= MODE_STEP and content.mode and content.mode != wanted
            and _finite(content.key_confidence) and content.key_confidence >= MIN_KEY_CONFIDENCE):
        moves["key"] = (PITCH_NAMES.index(content.tonic), content.mode)
        moves["mode"] = wanted
        reasons["mode"] = f"to {wanted}"
    return Moves(**moves), reasons


def _transposition(semitones: float, limits: Range) -> float:
    """`semitones` as the range allows: whole semitones, or whole octaves, up to its largest transposition."""
    unit = 12 if limits.whole_octaves else 1
    whole = unit * round(semitones / unit)
    return float(np.clip(whole, -limits.semitones, limits.semitones))


def _finite(*values: float) -> bool:
    return all(value is not None and math.isfinite(value) for value in values)


def plan(content: Cues, target: Cues, *, strength: float = 1.0, cues: tuple[str, ...] = CUES,
         range_: str = "wide") -> Moves:
    """The moves that take `content`'s cues `strength` of the way to `target`'s raw values, for the cues named in
    `cues`, within `range_`. A cue that either measurement lacks (NaN) does not move."""
    limits = _check(strength, cues, range_)
    moves = {}
    tempo = tempo_ratio(content, target)
    if "tempo" in cues and _finite(tempo):
        moves["tempo_ratio"] = float(np.clip(tempo ** strength, *limits.tempo_ratio))
    if "register" in cues and _finite(content.pitch_centroid_midi, target.pitch_centroid_midi):
        moves["semitones"] = _transposition(strength * (target.pitch_centroid_midi - content.pitch_centroid_midi),
                                            limits)
    if "loudness" in cues and _finite(content.loudness_lufs, target.loudness_lufs):
        moves["gain_db"] = float(np.clip(strength * (target.loudness_lufs - content.loudness_lufs),
                                         -limits.gain_db, limits.gain_db))
    if "dynamics" in cues and _finite(content.dynamic_range_db, target.dynamic_range_db) and \
            content.dynamic_range_db > 0 < target.dynamic_range_db:
        ratio = (content.dynamic_range_db / target.dynamic_range_db) ** strength
        moves["dynamics_ratio"] = float(np.clip(ratio, *limits.dynamics_ratio))
    if "brightness" in cues and _finite(content.tilt_db_per_octave, target.tilt_db_per_octave):
        ask = float(np.clip(strength * (target.tilt_db_per_octave - content.tilt_db_per_octave),
                            -limits.tilt_db_per_octave, limits.tilt_db_per_octave))
        moves["tilt_db_per_octave"] = ask if content.spectra is None or ask == 0 else _tilt_setting(
            content, round(moves.get("semitones", 0.0)), ask, limits.tilt_db_per_octave)
    if "articulation" in cues and _finite(content.onset_decay, target.onset_decay):
        moves["articulation"] = float(np.clip(
            strength * ARTICULATION_PER_DECAY * (content.onset_decay - target.onset_decay),
            -limits.articulation, limits.articulation))
    if ("mode" in cues and strength >= 0.5 and content.mode and target.mode and content.mode != target.mode
            and _finite(content.key_confidence) and content.key_confidence >= MIN_KEY_CONFIDENCE):
        moves["key"] = (PITCH_NAMES.index(content.tonic), content.mode)
        moves["mode"] = target.mode
    return Moves(**moves)


def _tilt_setting(content: Cues, semitones: int, ask: float, limit: float) -> float:
    """The tilt EQ for a tilt move of `ask`: `ask` itself where the content's long-term spectra predict that, after
    the transposition, it moves the tilt the asked way and leaves the transposition in the pitch centroid; else the
    setting within +-`limit` nearest it that does both (else `ask`). An octave up raises the tilt of orchestral music
    by 1.5-6 dB/oct (an octave down lowers it), and the EQ moves the pitch centroid by about 3 semitones per dB/oct:
    with the two asked opposite ways, the asked EQ alone moves one of them the wrong way."""
    if not ask:
        return ask
    margin = min(REGISTER_MARGIN, abs(semitones) / 2)

    def moves_both(setting: float) -> bool:
        gain = Tilt(content.spectra.sample_rate, 1, setting).power_gain if setting else None
        tilt_change, register_change = content.spectra.changes(semitones, gain)
        return (tilt_change * np.sign(ask) >= min(TILT_MARGIN, abs(ask)) and
                (not semitones or not _finite(register_change) or
                 register_change * np.sign(semitones) >= margin))

    settings = TILT_SETTINGS[np.abs(TILT_SETTINGS) <= limit]
    for setting in [ask, *sorted(settings, key=lambda setting: abs(setting - ask))]:
        if moves_both(setting):
            return float(setting)
    return ask
