"""An excerpt played and rendered: the performance a quadrant's cues make of it (tempo, dynamics, articulation,
mode, register, instruments), then the notes through a General MIDI SoundFont with tinysoundfont, in a small room."""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .. import audio
from ..errors import EstmError
from .score_cues import CUES, INSTRUMENTS, SAMPLE_RATE, SECONDS, SPREAD, ScoreCues, Spread
from .score_excerpts import Excerpt, to_mode
from .synth_sound import in_a_room

MELODY_ACCENT = 12  # the top part plays this much louder (velocity): it carries the tune
MIN_SOUNDING_S = 0.05  # no note is shorter, however staccato
MIN_QPM, MAX_QPM = 12.0, 600.0  # quarter notes a minute; wide, as old notations beat in halves or wholes
FADE_S = 0.02  # at the excerpt's end, so that it does not end in a click
PEAK = 0.98  # no rendering peaks above this
ROOM_DAMPING_HZ = 2000.0  # the room's tail is darker than the instruments (synth_sound.in_a_room)
MAX_VOICES = 128


@dataclass(frozen=True)
class Performance:
    """An excerpt as played: note arrays (notes,) in seconds, the instrument of each part, the cue values used."""

    onset_s: np.ndarray
    sounding_s: np.ndarray
    midi: np.ndarray
    velocity: np.ndarray
    part: np.ndarray
    programs: tuple[int, ...]  # (parts,)
    cues: dict  # the values this rendering drew, for the corpus table


def perform(excerpt: Excerpt, cues: ScoreCues, rng: np.random.Generator, spread: Spread = SPREAD,
            seconds: float = SECONDS) -> Performance:
    """Play `excerpt` with `cues`, each drawn within `spread` by `rng`: the notes that start within `seconds`."""
    # the tempo at which the asked number of distinct onsets is heard within `seconds`
    asked = cues.notes_per_second * spread.tempo_ratio ** rng.uniform(-1, 1)
    distinct = np.unique(excerpt.onset_quarters)
    heard_quarters = float(np.interp(asked * seconds, np.arange(distinct.size), distinct))
    qpm = float(np.clip(60.0 * heard_quarters / seconds, MIN_QPM, MAX_QPM))
    notes_per_second = float(np.interp(qpm * seconds / 60.0, distinct, np.arange(distinct.size))) / seconds
    velocity = int(np.clip(cues.velocity + rng.integers(-spread.velocity, spread.velocity + 1), 1, 127 - MELODY_ACCENT))
    articulation = float(np.clip(cues.articulation + rng.uniform(-1, 1) * spread.articulation, 0.15, 1.0))
    level_db = cues.level_db + rng.uniform(-1, 1) * spread.level_db

    midi = to_mode(excerpt.midi, excerpt.tonic, excerpt.mode, cues.mode)
    everything = sorted({program for cue in CUES.values() for program in cue.instruments} | set(cues.instruments))
    programs, shifts = [], []
    for part in range(excerpt.parts):
        pitches = midi[excerpt.part == part]
        pool = everything if rng.uniform() < spread.other_instrument else cues.instruments
        program, shift = _instrument(pitches, cues.register_octaves, pool, rng)
        programs.append(program)
        shifts.append(shift)
    midi = midi + 12 * np.asarray(shifts, dtype=int)[excerpt.part] if excerpt.parts else midi

    beat_s = 60.0 / qpm
    onset_s = excerpt.onset_quarters * beat_s
    sounding_s = np.maximum(excerpt.duration_quarters * beat_s * articulation, MIN_SOUNDING_S)
    keep = onset_s < seconds
    velocities = np.where(excerpt.part == 0, velocity + MELODY_ACCENT, velocity)
    realised = {"mode": cues.mode, "notes_per_second": round(notes_per_second, 3), "tempo_qpm": round(qpm, 2),
                "velocity": velocity, "articulation": round(articulation, 3), "level_db": round(level_db, 2),
                "register_octaves": cues.register_octaves,
                "mean_pitch": round(float(midi[keep].mean()), 2) if keep.any() else float("nan")}
    return Performance(onset_s[keep], sounding_s[keep], midi[keep], velocities[keep], excerpt.part[keep],
                       tuple(programs), realised)


def _instrument(pitches: np.ndarray, octaves: int, pool: Iterable[int], rng: np.random.Generator) -> tuple[int, int]:
    """An instrument from `pool` for a part, and the octaves the part moves: `octaves`, brought back toward 0 by
    whole octaves while the part leaves the instrument's range. Instruments whose range holds the part's middle
    after the move are preferred."""
    pool = list(pool)
    if pitches.size == 0:
        return pool[int(rng.integers(len(pool)))], 0
    middle = float(np.median(pitches)) + 12 * octaves
    fitting = [program for program in pool if INSTRUMENTS[program][1] <= middle <= INSTRUMENTS[program][2]]
    if fitting:
        program = fitting[int(rng.integers(len(fitting)))]
    else:
        program = min(pool, key=lambda p: abs((INSTRUMENTS[p][1] + INSTRUMENTS[p][2]) / 2 - middle))
    _, lowest, highest = INSTRUMENTS[program]
    shift = octaves
    while shift != 0 and (pitches.min() + 12 * shift < lowest or pitches.max() + 12 * shift > highest):
        shift -= int(np.sign(shift))
    return program, shift


# -------------------------------------------------------------------------------------------------- rendering


def default_soundfont() -> Path:
    """The small General MIDI SoundFont (TimGM6mb) that pretty_midi's wheel ships."""
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise EstmError("the default SoundFont comes with pretty_midi: pip install pretty_midi, or give --soundfont")
    return Path(spec.submodule_search_locations[0]) / "TimGM6mb.sf2"


_SOUNDFONTS: dict[str, bytes] = {}  # path -> contents: read once a process


def _synth(soundfont: Path, sample_rate: int):
    """A new synthesiser with `soundfont` loaded: (tinysoundfont.Synth, its soundfont id). New for every rendering,
    as a used one keeps state that reset() leaves (a rendering would depend on the one before)."""
    try:
        import tinysoundfont
    except ImportError:
        raise EstmError("the scores corpus needs tinysoundfont: pip install --no-deps tinysoundfont") from None
    key = str(soundfont)
    if key not in _SOUNDFONTS:
        if not soundfont.is_file():
            raise EstmError(f"{soundfont}: no such SoundFont file")
        _SOUNDFONTS[key] = soundfont.read_bytes()
    synth_ = tinysoundfont.Synth(samplerate=sample_rate)
    try:
        soundfont_id = synth_.sfload(_SOUNDFONTS[key], max_voices=MAX_VOICES)
    except Exception as error:  # tinysoundfont raises a bare Exception for data it cannot parse
        _SOUNDFONTS.pop(key)
        raise EstmError(f"{soundfont}: not a readable SoundFont ({error})") from None
    return synth_, soundfont_id


def check_soundfont(soundfont: str | os.PathLike | None) -> Path:
    """The SoundFont to render with (default: default_soundfont()), loaded once to check it."""
    path = Path(soundfont) if soundfont is not None else default_soundfont()
    _synth(path, SAMPLE_RATE)
    return path


def synthesise(performance: Performance, soundfont: Path, sample_rate: int, frames: int) -> np.ndarray:
    """(frames, 2) float32: the performance through the SoundFont, a channel per part (the percussion channel
    skipped), parts spread across the stereo field."""
    synth_, soundfont_id = _synth(soundfont, sample_rate)
    channels = [channel for channel in range(16) if channel != 9]
    parts = len(performance.programs)
    for part, program in enumerate(performance.programs[: len(channels)]):
        channel = channels[part]
        try:
            synth_.program_select(channel, soundfont_id, 0, program)
        except Exception:  # not a General MIDI SoundFont: its first preset plays every part
            synth_.program_select(channel, soundfont_id, *_first_preset(synth_, soundfont_id))
        pan = 64 + round(40 * (part / (parts - 1) - 0.5)) if parts > 1 else 64
        synth_.control_change(channel, 10, pan)

    channel_of = np.asarray(channels)[performance.part % len(channels)]
    start = np.round(performance.onset_s * sample_rate).astype(np.int64)
    end = start + np.maximum(np.round(performance.sounding_s * sample_rate).astype(np.int64), 1)
    # a repeated note on one channel ends where the next one starts
    for channel in np.unique(channel_of):
        for key in np.unique(performance.midi[channel_of == channel]):
            same = np.flatnonzero((channel_of == channel) & (performance.midi == key))
            end[same[:-1]] = np.minimum(end[same[:-1]], start[same[1:]])
    events = sorted([(int(s), 1, int(c), int(k), int(v)) for s, c, k, v in
                     zip(start, channel_of, performance.midi, performance.velocity)]
                    + [(int(e), 0, int(c), int(k), 0) for e, c, k in zip(end, channel_of, performance.midi)])
    out = np.zeros((frames, 2), dtype=np.float32)
    position = 0
    for frame, kind, channel, key, velocity in events:
        frame = min(frame, frames)
        if frame > position:
            out[position:frame] = np.frombuffer(synth_.generate(frame - position), np.float32).reshape(-1, 2)
            position = frame
        if kind:
            synth_.noteon(channel, key, velocity)
        else:
            synth_.noteoff(channel, key)
    if position < frames:
        out[position:] = np.frombuffer(synth_.generate(frames - position), np.float32).reshape(-1, 2)
    return out


def _first_preset(synth_, soundfont_id: int) -> tuple[int, int]:
    for bank in (0, 128):
        for preset in range(128):
            if synth_.sfpreset_name(soundfont_id, bank, preset) is not None:
                return bank, preset
    raise EstmError("the SoundFont has no presets")


def render(excerpt: Excerpt, cues: ScoreCues, rng: np.random.Generator, *, soundfont: Path, spread: Spread = SPREAD,
           seconds: float = SECONDS, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> tuple[np.ndarray, dict]:
    """Play `excerpt` with `cues` in a small room. Returns ((frames,) or (frames, 2) float32 at the drawn level,
    never above PEAK; the cue values drawn, the instruments and the level reached)."""
    frames = round(seconds * sample_rate)
    performance = perform(excerpt, cues, rng, spread, seconds)
    stereo = synthesise(performance, soundfont, sample_rate, frames)
    mixed = stereo if channels == 2 else audio.to_mono(stereo)[:, None]
    seed = [int(value) for value in rng.integers(0, 2**31, size=2)]
    wet = np.stack([in_a_room(mixed[:, c], sample_rate, seed=[*seed, c], damping_hz=ROOM_DAMPING_HZ)
                    for c in range(mixed.shape[1])], axis=1)
    fade = min(round(FADE_S * sample_rate), frames)
    wet[frames - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    rms = float(np.sqrt(np.mean(wet.astype(np.float64) ** 2)))
    peak = float(np.abs(wet).max())
    gain = 0.0 if rms == 0 else min(10 ** (performance.cues["level_db"] / 20) / rms, PEAK / peak)
    wet *= np.float32(gain)
    cues_drawn = dict(performance.cues, level_db=round(20 * math.log10(max(rms * gain, 1e-10)), 2),
                      instruments=" ".join(str(program) for program in performance.programs))
    return (wet[:, 0] if channels == 1 else wet), cues_drawn
