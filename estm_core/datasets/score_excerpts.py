"""A passage of a work from music21's corpus, read as note arrays: an excerpt that starts on a bar line and holds
enough distinct onsets for the fastest rendering, its key, and the parallel-mode rule that moves it to the other
mode (CMERS)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import EstmError
from ..keys import MODE_DEGREES, find_key
from .score_cues import CUES, FACTORIAL, SECONDS, SPREAD, rng_for

MIN_KEY_CORRELATION = 0.75  # excerpts whose key analysis is less sure than this are skipped (modal, chromatic)


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

    rng = rng_for(seed, work.name)
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


def to_mode(midi: np.ndarray, tonic: int, mode: str, target: str) -> np.ndarray:
    """The parallel-mode rule (CMERS): from major to minor, degrees 3, 6 and 7 of the key a semitone down; from minor
    to major, the minor ones a semitone up. Pitch height is kept: no other note moves, none by more than a semitone."""
    midi = np.asarray(midi)
    if mode == target:
        return midi.copy()
    degree = (midi - tonic) % 12
    step = -1 if mode == "major" else 1
    return np.where(np.isin(degree, MODE_DEGREES[mode]), midi + step, midi)
