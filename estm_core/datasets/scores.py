"""The scores corpus: real compositions played by real instrument samples, each excerpt in all four quadrants.

An excerpt is a passage of a work from music21's bundled corpus (Bach chorales, Irish fiddle tunes, Palestrina
masses, Monteverdi madrigals, trecento songs, string quartets; nothing downloads) that starts on a bar line. It is
played in a quadrant by editing the score and the performance with the cues listeners read as emotion
(../shared/spec/EMOTION_CUES.md): parallel mode (Livingstone et al. 2010, CMERS), tempo as notes per second,
dynamics, articulation and register (Eerola, Friberg & Bresin 2013, whose cue levels the factorial design uses),
and timbre (Juslin & Laukka 2003). `CUES` is the one table. Each excerpt draws its cues around the table's values
(`SPREAD`): real recordings differ in level and tempo, and a model should learn more than one cue.

The notes are rendered through a General MIDI SoundFont with tinysoundfont (by default the small GM SoundFont that
pretty_midi's wheel ships), in a small room, about a thousand times faster than real time. Parsing the score is most
of the cost (0.1 s for a chorale, a few seconds for a quartet movement).

The corpus folder has SynthEmo's layout and tables (a folder per quadrant, `synthemo.csv` with the cues and the
source work, `pairs.csv`), so `estm data split/segment` and training read it unchanged. A work gives one excerpt,
and `group` names the work, so a split holds out whole works; `collection` lets a split hold out whole collections.
With `factorial`, each excerpt is instead played four times with every cue drawn from its own levels (Eerola's
design), the cue values in the table and no quadrant label: data for fitting how cues map to emotion.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from .. import audio
from ..errors import EstmError
from ..files import sha256
from ..keys import PITCH_NAMES, find_key
from ..workers import in_order
from . import synth

SAMPLE_RATE = 22050
SECONDS = synth.SECONDS
SOURCE_VERSION = 2  # bump when a rendering would sound different with the same table; 2: fermatas held


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
RENDERINGS_PER_EXCERPT = 4  # so a factorial corpus has as many files as a quadrant corpus of the same count

# Collections of music21's corpus: name -> (folder in the corpus, file types read). Each is a different kind of
# music: four-part chorales, monophonic fiddle tunes, Renaissance polyphony, madrigals, 14th-century songs, quartets.
COLLECTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bach": (("bach",), (".mxl",)),
    "ryans-mammoth": (("ryansMammoth",), (".abc",)),
    "palestrina": (("palestrina",), (".krn",)),
    "monteverdi": (("monteverdi",), (".mxl",)),
    "trecento": (("trecento",), (".xml", ".mxl")),
    "quartets": (("haydn", "mozart", "beethoven"), (".mxl",)),
}

MIN_KEY_CORRELATION = 0.75  # excerpts whose key analysis is less sure than this are skipped (modal, chromatic)
MELODY_ACCENT = 12  # the top part plays this much louder (velocity): it carries the tune
MIN_SOUNDING_S = 0.05  # no note is shorter, however staccato
MIN_QPM, MAX_QPM = 12.0, 600.0  # quarter notes a minute; wide, as old notations beat in halves or wholes
FADE_S = 0.02  # at the excerpt's end, so that it does not end in a click
PEAK = 0.98  # no rendering peaks above this
ROOM_DAMPING_HZ = 2000.0  # the room's tail is darker than the instruments (synth.in_a_room)
MAX_VOICES = 128


# ------------------------------------------------------------------------------------------------------ the score


@dataclass(frozen=True)
class Work:
    """A work of the corpus: several files when it has movements (quartets) or mass sections (Palestrina)."""

    name: str  # "bach/bwv66.6", "quartets/mozart/k155": the split's group
    collection: str
    files: tuple[str, ...]  # paths relative to music21's corpus folder, POSIX


@dataclass(frozen=True)
class Excerpt:
    """A passage of a work, in quarter notes from its first bar line; note arrays are all (notes,)."""

    work: Work
    file: str  # the file the passage is from
    start_bar: int  # the number of the bar it starts on
    onset_quarters: np.ndarray
    duration_quarters: np.ndarray  # written, ties merged
    midi: np.ndarray  # int
    part: np.ndarray  # int, 0 = the top part in the score
    parts: int
    tonic: int  # pitch class of the key music21 analyses
    mode: str
    key_correlation: float

    @property
    def id(self) -> str:
        return re.sub(r"[^A-Za-z0-9.-]+", "_", f"{self.work.name}-b{self.start_bar}").strip("_")


def music21_corpus() -> Path:
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise EstmError("the scores corpus needs music21: pip install music21")
    return Path(spec.submodule_search_locations[0]) / "corpus"


def catalogue(collections: Iterable[str] | None = None) -> list[Work]:
    """Every work of `collections` (default all of COLLECTIONS) in music21's corpus, sorted by name."""
    root = music21_corpus()
    names = list(COLLECTIONS) if collections is None else list(collections)
    unknown = sorted(set(names) - set(COLLECTIONS))
    if unknown:
        raise EstmError(f"unknown collection(s) {', '.join(unknown)} (known: {', '.join(COLLECTIONS)})")
    works: dict[str, list[str]] = {}
    for collection in names:
        folders, suffixes = COLLECTIONS[collection]
        for folder in folders:
            for path in sorted((root / folder).rglob("*")):
                if path.suffix in suffixes:
                    relative = path.relative_to(root).as_posix()
                    works.setdefault(f"{collection}/{_work_of(relative, len(folders) > 1)}", []).append(relative)
    return [Work(name, name.split("/")[0], tuple(files)) for name, files in sorted(works.items())]


def _work_of(relative: str, keep_folder: bool) -> str:
    """The work a corpus file belongs to: a quartet's movements share their folder, a Palestrina mass's sections
    their number ("Credo_25_b" -> "mass025"), anything else is its own work."""
    path = PurePosixPath(relative)
    inner = path.parts[1:] if not keep_folder else path.parts
    if path.stem.startswith("movement"):
        return "/".join(inner[:-1])
    number = re.search(r"_(\d+)", path.stem) if path.parts[0] == "palestrina" else None
    if number:
        return f"mass{int(number.group(1)):03d}"
    return "/".join([*inner[:-1], path.stem])


def candidates(works: list[Work], seed: int) -> list[Work]:
    """`works` in the order a corpus takes them: each collection shuffled by `seed`, then one from each in turn, so
    that any prefix mixes the collections."""
    rng = np.random.default_rng(seed)
    by_collection: dict[str, list[Work]] = {}
    for work in works:
        by_collection.setdefault(work.collection, []).append(work)
    queues = [[group[i] for i in rng.permutation(len(group))] for _, group in sorted(by_collection.items())]
    order = []
    for turn in range(max((len(queue) for queue in queues), default=0)):
        order += [queue[turn] for queue in queues if turn < len(queue)]
    return order


def onsets_needed(seconds: float) -> int:
    """Distinct onsets an excerpt holds, so that its fastest possible rendering still fills `seconds`."""
    rate = max(max(cue.notes_per_second for cue in CUES.values()) * SPREAD.tempo_ratio,
               max(FACTORIAL["notes_per_second"]))
    return math.ceil(seconds * rate) + 1


def read_excerpt(work: Work, *, seed: int = 0, seconds: float = SECONDS) -> Excerpt:
    """Parse one file of `work` (drawn by `seed`) and cut an excerpt that starts on a bar line drawn by `seed`.

    A passage shorter than the fastest rendering needs is repeated (as a strophic hymn or a dance tune would be).
    Raises EstmError when the work has no usable passage (unreadable, no notes, no clear key).
    """
    from music21 import corpus, stream

    rng = _rng(seed, work.name)
    file = work.files[int(rng.integers(len(work.files)))]
    try:
        score = corpus.parse(file)
    except Exception as error:  # music21 raises many kinds for files it cannot read
        raise EstmError(f"{file}: music21 cannot read it ({type(error).__name__})") from None
    parts = list(getattr(score, "parts", [])) or [score]
    onset, duration, midi, part_of = _notes(parts)
    if onset.size == 0:
        raise EstmError(f"{file}: no notes")

    needed = onsets_needed(seconds)
    bars = [(int(bar.number), float(bar.offset)) for bar in parts[0].getElementsByClass(stream.Measure)] or [(0, 0.0)]
    distinct = np.unique(onset)
    usable = [(number, offset) for number, offset in bars if np.sum(distinct >= offset) >= needed]
    start_bar, start = usable[int(rng.integers(len(usable)))] if usable else bars[0]

    keep = onset >= start
    onset, duration, midi, part_of = onset[keep] - start, duration[keep], midi[keep], part_of[keep]
    block = float(max(np.max(onset + duration), 1e-3))
    repeats = math.ceil(needed / np.unique(onset).size)
    onset = np.concatenate([onset + block * k for k in range(repeats)])
    duration, midi, part_of = (np.tile(array, repeats) for array in (duration, midi, part_of))
    distinct = np.unique(onset)
    cut = distinct[needed] if distinct.size > needed else block * repeats
    keep = onset < cut
    onset, duration, midi, part_of = onset[keep], duration[keep], midi[keep], part_of[keep]

    tonic, mode, correlation = key_of(midi, duration)
    if correlation < MIN_KEY_CORRELATION:
        raise EstmError(f"{file}: no clear key (correlation {correlation:.2f} < {MIN_KEY_CORRELATION})")
    return Excerpt(work, file, start_bar, onset, duration, midi, part_of, len(parts), tonic, mode, correlation)


def _notes(parts: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(onset, duration) in quarters, MIDI note and part index of every sounding note, tied notes merged into one
    (music21's stripTies does the same but takes seconds on a quartet movement). A note under a fermata is held until
    the next note of the score starts, as players do (a chorale's phrase ends on a fermata and a rest), and so is
    every note that starts with it."""
    rows: list[list[float]] = []
    fermatas: set[float] = set()  # onsets under a fermata
    for index, part in enumerate(parts):
        sounding: dict[int, int] = {}  # MIDI note -> row of the note a tie continues
        for element in part.flatten().notes:
            length = float(element.quarterLength)
            if length <= 0:  # grace notes
                continue
            offset = float(element.offset)
            members = element.notes if element.isChord else [element]
            for member in members:
                if member.pitch is None or getattr(member, "isUnpitched", False):
                    continue
                key = int(member.pitch.midi)
                tie = member.tie.type if member.tie is not None else None
                if tie in ("continue", "stop") and key in sounding:
                    row = rows[sounding[key]]
                    row[1] = offset + length - row[0]
                else:
                    sounding[key] = len(rows)
                    rows.append([offset, length, key, index])
                if any(type(mark).__name__ == "Fermata" for mark in element.expressions):
                    fermatas.add(rows[sounding.get(key, len(rows) - 1)][0])
                if tie not in ("start", "continue"):
                    sounding.pop(key, None)
    table = np.array(rows, dtype=float).reshape(-1, 4)
    held = np.isin(table[:, 0], list(fermatas))
    if held.any():
        onsets = np.unique(table[:, 0])
        ends = table[held, 0] + table[held, 1]
        following = onsets[np.minimum(np.searchsorted(onsets, ends - 1e-9), onsets.size - 1)]
        table[held, 1] = np.maximum(table[held, 1], following - table[held, 0])
    order = np.lexsort((table[:, 2], table[:, 0]))
    table = table[order]
    return table[:, 0], table[:, 1], table[:, 2].astype(int), table[:, 3].astype(int)


def key_of(midi: np.ndarray, duration: np.ndarray) -> tuple[int, str, float]:
    """The key of these notes, their pitch classes weighted by duration (keys.find_key: what music21's key analysis
    finds, without building its note objects, which costs 100x more): (tonic pitch class, mode, correlation)."""
    return find_key(np.bincount(np.asarray(midi) % 12, weights=np.asarray(duration, dtype=float), minlength=12))


MODE_DEGREES = {"major": (4, 9, 11), "minor": (3, 8, 10)}  # semitones above the tonic of degrees 3, 6 and 7


def to_mode(midi: np.ndarray, tonic: int, mode: str, target: str) -> np.ndarray:
    """The parallel-mode rule (CMERS): from major to minor, degrees 3, 6 and 7 of the key a semitone down; from minor
    to major, the minor ones a semitone up. Pitch height is kept: no other note moves, none by more than a semitone."""
    midi = np.asarray(midi)
    if mode == target:
        return midi.copy()
    degree = (midi - tonic) % 12
    step = -1 if mode == "major" else 1
    return np.where(np.isin(degree, MODE_DEGREES[mode]), midi + step, midi)


# ------------------------------------------------------------------------------------------------ performance


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
    wet = np.stack([synth.in_a_room(mixed[:, c], sample_rate, seed=[*seed, c], damping_hz=ROOM_DAMPING_HZ)
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


# ------------------------------------------------------------------------------------------------------ corpus


def cues_version() -> str:
    """A short hash of the source version and every table a rendering reads."""
    tables = {"source": SOURCE_VERSION, "room_damping_hz": ROOM_DAMPING_HZ, "cues": {q: asdict(c) for q, c in CUES.items()}, "spread": asdict(SPREAD),
              "factorial": FACTORIAL, "instruments": INSTRUMENTS, "collections": COLLECTIONS}
    return f"{SOURCE_VERSION}-{hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()[:12]}"


def _rng(seed: int, *keys) -> np.random.Generator:
    """A generator for one (seed, work, ...) whatever order works are processed in."""
    digest = hashlib.sha256(json.dumps([seed, *keys]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def factorial_levels(count: int, seed: int) -> list[dict]:
    """`count` cue combinations in which each cue's levels appear equally often (within one), each cue shuffled on
    its own: a balanced random draw from Eerola's factorial design."""
    rng = np.random.default_rng([seed, 1])
    columns = {cue: [levels[i] for i in rng.permutation(np.resize(np.arange(len(levels)), count))]
               for cue, levels in FACTORIAL.items()}
    return [{cue: columns[cue][row] for cue in FACTORIAL} for row in range(count)]


def factorial_cues(levels: dict) -> ScoreCues:
    return ScoreCues(mode=levels["mode"], notes_per_second=levels["notes_per_second"],
                     level_db=FACTORIAL_LEVEL_DB + levels["dynamics_db"],
                     velocity=int(FACTORIAL_VELOCITY + VELOCITY_PER_DB * levels["dynamics_db"]),
                     articulation=levels["articulation"], register_octaves=levels["register_octaves"],
                     instruments=(levels["instrument"],))


def excerpt_or_reason(job: tuple[Work, int, float]) -> Excerpt | str:
    """read_excerpt(work, seed=, seconds=), or why the work gives no excerpt: what a worker process runs.

    An excerpt is kept only where each quadrant's performance, as far as it is heard, is in the excerpt's key and
    the quadrant's mode by key analysis: the parallel-mode rule can otherwise make a minor piece sound like its
    relative major, and a short slow rendering may not establish the key at all."""
    work, seed, seconds = job
    try:
        excerpt = read_excerpt(work, seed=seed, seconds=seconds)
    except EstmError as error:
        return str(error)
    for quadrant, cues in CUES.items():
        played = perform(excerpt, cues, _rng(seed, work.name, quadrant), SPREAD, seconds)
        if key_of(played.midi, played.sounding_s)[:2] != (excerpt.tonic, cues.mode):
            return f"{excerpt.file}: its {quadrant} rendering is not heard in {cues.mode} (key analysis)"
    return excerpt


def excerpt_rows(excerpt: Excerpt, plays: list[tuple[str, ScoreCues, Spread, dict]], *, seed: int, seconds: float,
                 sample_rate: int, channels: int, soundfont: Path) -> Iterator[tuple[dict, np.ndarray]]:
    """(table row, audio) of each rendering of `excerpt`; `plays` names each and gives its cues, spread and factorial
    levels ({} for a quadrant)."""
    for name, cues, spread, levels in plays:
        samples, drawn = render(excerpt, cues, _rng(seed, excerpt.work.name, name), soundfont=soundfont,
                                spread=spread, seconds=seconds, sample_rate=sample_rate, channels=channels)
        song_id = f"{excerpt.id}-{name}"
        row = {"song_id": song_id, "path": f"{'factorial' if levels else name}/{song_id}.wav",
               "label": "" if levels else name, "group": excerpt.work.name, "collection": excerpt.work.collection,
               "content": excerpt.id, "file": excerpt.file, "start_bar": excerpt.start_bar,
               "key": f"{PITCH_NAMES[excerpt.tonic]} {excerpt.mode}",
               "key_correlation": round(excerpt.key_correlation, 3), **drawn}
        if levels:
            row["dynamics_db"] = levels["dynamics_db"]
        yield row, samples


def generate(
    out_dir: str | os.PathLike,
    *,
    count: int = 32,
    seconds: float = SECONDS,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    channels: int = 1,
    soundfont: str | os.PathLike | None = None,
    factorial: bool = False,
    collections: Iterable[str] | None = None,
    jobs: int = 1,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Render `count` excerpts (one per work, the collections interleaved) into `out_dir`; return the table.

    Each excerpt is played in Q1..Q4 (folders Q1..Q4) or, with `factorial`, four times with factorial cue levels
    (folder `factorial/`). Works without a usable excerpt are skipped. A folder that already holds this corpus is
    reused as it is; one holding another is an EstmError unless `force`. `on_progress(done, count)` follows excerpts.
    """
    if count < 1:
        raise EstmError(f"count must be at least 1 (got {count})")
    if channels not in (1, 2):
        raise EstmError(f"channels must be 1 or 2 (got {channels})")
    synth.check_parameters(seconds, seed, sample_rate)
    soundfont = check_soundfont(soundfont).resolve()
    import music21

    works = candidates(catalogue(collections), seed)
    out_dir = Path(out_dir)
    parameters = {"source": "scores", "count": count, "seconds": seconds, "seed": seed, "sample_rate": sample_rate,
                  "channels": channels, "factorial": factorial, "collections": sorted(collections or COLLECTIONS),
                  "soundfont": _file_digest(soundfont), "music21": music21.__version__,
                  "cues_version": cues_version()}
    previous = synth.reuse_or_refuse(out_dir, parameters, force)
    if previous is not None:
        return previous

    synth.check_room(out_dir, count * RENDERINGS_PER_EXCERPT, seconds, sample_rate, channels)
    synth.start_corpus(out_dir, parameters)
    rows = _render_excerpts(out_dir, works, count, seed=seed, seconds=seconds, sample_rate=sample_rate,
                            channels=channels, soundfont=soundfont, factorial=factorial, jobs=jobs,
                            on_progress=on_progress)
    table = pd.DataFrame(rows)
    synth.finish_corpus(out_dir, table)
    return table


def _render_excerpts(out_dir: Path, works: list[Work], count: int, *, seed: int, seconds: float, sample_rate: int,
                     channels: int, soundfont: Path, factorial: bool, jobs: int,
                     on_progress: Callable[[int, int], None] | None) -> list[dict]:
    """Render the first `count` usable excerpts of `works` into `out_dir`; their table rows."""
    levels = factorial_levels(count * RENDERINGS_PER_EXCERPT, seed) if factorial else None
    rows: list[dict] = []
    accepted = 0
    excerpts = in_order(excerpt_or_reason, [(work, seed, seconds) for work in works], jobs)
    for excerpt in excerpts:
        if isinstance(excerpt, str):
            continue
        for row, samples in excerpt_rows(excerpt, _plays(levels, accepted), seed=seed, seconds=seconds,
                                         sample_rate=sample_rate, channels=channels, soundfont=soundfont):
            audio.save(out_dir / row["path"], samples, sample_rate, force=True)
            rows.append(row)
        accepted += 1
        if on_progress is not None:
            on_progress(accepted, count)
        if accepted == count:
            excerpts.close()
            break
    if accepted < count:
        raise EstmError(f"only {accepted} of the {len(works)} works have a usable excerpt; ask for at most that many")
    return rows


def _plays(levels: list[dict] | None, accepted: int) -> list[tuple[str, ScoreCues, Spread, dict]]:
    """How excerpt number `accepted` is played: in the four quadrants, or with its own factorial levels."""
    if levels is None:
        return [(quadrant, cues, SPREAD, {}) for quadrant, cues in CUES.items()]
    own = levels[RENDERINGS_PER_EXCERPT * accepted: RENDERINGS_PER_EXCERPT * (accepted + 1)]
    return [(f"F{index + 1}", factorial_cues(level), NO_SPREAD, level) for index, level in enumerate(own)]


def _file_digest(path: Path) -> str:
    return f"{path.name} sha256:{sha256(path)[:16]}"
