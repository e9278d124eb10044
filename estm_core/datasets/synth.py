"""SynthEmo: a synthetic music-emotion corpus where each piece of *content* is rendered in all four quadrants.

A content is a seeded melody (scale degrees and durations in beats), a chord progression (scale degrees), an
accompaniment rhythm and an instrument (harmonic colour and envelope). What it means to be in a quadrant is the
`CUES` table below: the performance and composition cues that listeners read as emotion (Gabrielsson & Lindström
2010, "The role of structure in the musical expression of emotions"; Juslin & Laukka 2003). Arousal is carried by
tempo, loudness, brightness, articulation and percussion; valence by mode, register and dissonance.

Rendering is additive synthesis through band-limited wavetables: each note's harmonics are summed once into one
period (an inverse FFT), and every sample of every note is then read from its table in one vectorised pass. That
costs the same per sample however many partials a note has: a 10 s rendering takes about 20 ms on one core.

On disk the corpus has the MER TAFFC layout (a folder per quadrant) plus three tables: `synthemo.csv` (one row per
file with its cues), `pairs.csv` (one row per content: the four renderings an emotion transfer should map between)
and `synthemo.json` (the parameters, so a rerun can tell whether the folder already holds what it is asked for).
A run marks the folder unfinished (`.synthemo-unfinished`) before anything else and removes the mark after the
tables, last: until then `estm data split` refuses the folder (a part of a corpus would split as if whole), and a
rerun with the same options finishes it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import audio
from ..errors import EstmError
from ..files import atomic_write
from ..labels import QUADRANTS
from .limits import MAX_SAMPLE_RATE, MAX_SECONDS, available_memory, check_free_space, size, writing

SAMPLE_RATE = 22050
MIN_SAMPLE_RATE = 8000
SECONDS = 10.08  # the ESTM/MER clip length
RENDER_BYTES_PER_FRAME = 48  # a rendering's peak memory per frame (of its FFT size): the room's spectra, the copies


@dataclass(frozen=True)
class Cues:
    """How one quadrant is played. Every field is a cue from the music-emotion literature."""

    mode: str  # "major" or "minor" (natural minor): the scale the content's degrees are read in (valence)
    tempo_bpm: float  # beats per minute (arousal)
    loudness_db: float  # peak level of the rendering, dB relative to full scale (arousal)
    rolloff_db_per_octave: float  # slope of the partials' amplitudes, dB per octave above the fundamental;
    #                               nearer 0 is brighter and harsher, steeper is darker (arousal)
    articulation: float  # fraction of its rhythmic duration a note sounds: ~0.3 staccato, 1.0 legato (arousal)
    register_octaves: int  # octaves the melody moves from the content's home octave (valence and arousal);
    #                        whole octaves, so the key and the pitch classes stay those of the content
    dissonance: float  # level of a tritone above each chord root, relative to a chord tone; 0 = none (valence)
    percussion: float  # level of a metallic tick on every beat, relative to the melody; 0 = none (arousal)


# The one table to tune. Q1 happy/excited, Q2 angry/tense, Q3 sad, Q4 calm (see labels.QUADRANTS).
CUES: dict[str, Cues] = {
    "Q1": Cues(mode="major", tempo_bpm=140.0, loudness_db=-4.0, rolloff_db_per_octave=-6.0, articulation=0.4,
               register_octaves=1, dissonance=0.0, percussion=0.5),
    "Q2": Cues(mode="minor", tempo_bpm=150.0, loudness_db=-2.0, rolloff_db_per_octave=-2.0, articulation=0.3,
               register_octaves=0, dissonance=0.8, percussion=0.8),
    "Q3": Cues(mode="minor", tempo_bpm=65.0, loudness_db=-20.0, rolloff_db_per_octave=-18.0, articulation=1.0,
               register_octaves=-1, dissonance=0.0, percussion=0.0),
    "Q4": Cues(mode="major", tempo_bpm=75.0, loudness_db=-16.0, rolloff_db_per_octave=-12.0, articulation=0.9,
               register_octaves=0, dissonance=0.0, percussion=0.0),
}

# Bump when the synthesis itself (not the table) changes what a rendering sounds like.
SYNTH_VERSION = 2  # 2: a room around every rendering

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}  # semitones of degrees 0..6
BEATS_PER_BAR = 4
PHRASE_BARS = 4  # a content is a 4-bar phrase, looped to fill the clip

# Rhythms of one bar of melody, in beats; the phrase ends on one of the last kind so it closes on a long note.
BAR_RHYTHMS = (
    (1, 1, 1, 1), (2, 1, 1), (0.5, 0.5, 1, 1, 1), (1, 0.5, 0.5, 1, 1), (1.5, 0.5, 1, 1),
    (0.5, 0.5, 0.5, 0.5, 1, 1), (1, 1, 0.5, 0.5, 1),
)
CLOSING_RHYTHMS = ((1, 1, 2), (0.5, 0.5, 1, 2))
# Progressions of chord roots (scale degrees), one chord a bar, all starting on the tonic so the key is clear. In minor
# a tritone above any of these roots misses both thirds of the tonic, so the dissonance cue does not blur the mode.
PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 0, 4), (0, 1, 4, 0), (0, 5, 1, 4))
MELODY_LOWEST, MELODY_HIGHEST = -3, 9  # scale degrees the melody stays within

PARTIALS = 24  # harmonics of the instrument, before band-limiting
NYQUIST_MARGIN = 0.45  # partials above this fraction of the sample rate are dropped (no aliasing)
TABLE_BITS = 11
TABLE_SIZE = 1 << TABLE_BITS  # samples in one period of a wavetable
RELEASE_S = 0.03  # fade at a note's end, so that no note ends in a click
TICK_S = 0.05  # length of the percussive tick
ROOM_RT60_S = 0.5  # seconds for the room's tail to fall 60 dB
ROOM_WET = 0.3  # level of the room's sound relative to the instruments' (RMS)
MELODY_GAIN, CHORD_GAIN, BASS_GAIN = 1.0, 0.3, 0.6  # voice levels before the mix is scaled to the loudness cue


@dataclass(frozen=True)
class Content:
    """What stays the same across the four renderings of one content. Durations are in beats, pitches in scale
    degrees from the tonic (0 = tonic, 7 = the octave above), so a quadrant's tempo and mode can be applied."""

    tonic_midi: int  # MIDI note of the melody's home tonic
    melody_degrees: tuple[int, ...]  # (notes,) one phrase
    melody_beats: tuple[float, ...]  # (notes,) onset-to-onset durations, summing to the phrase length
    chord_degrees: tuple[int, ...]  # (bars,) root of each bar's triad
    chord_strikes_per_bar: int  # how often the chord is played in a bar
    bass_strikes_per_bar: int  # how often the bass plays the root in a bar
    partial_colour: tuple[float, ...]  # (PARTIALS,) relative amplitudes of harmonics 1.., before the rolloff cue
    partial_phases: tuple[float, ...]  # (PARTIALS,) radians; they set the waveform's shape, not its sound
    attack_s: float  # linear rise at a note's start
    decay_per_s: float  # exponential decay rate while a note sounds: high is plucked, low is organ-like
    tick_hz: tuple[float, ...]  # inharmonic partials of the percussive tick

    @property
    def phrase_beats(self) -> float:
        return float(sum(self.melody_beats))


def compose(content: int, seed: int = 0) -> Content:
    """The content numbered `content` of the corpus with `seed`: always the same for the same pair."""
    if content < 0 or seed < 0:
        raise EstmError(f"content and seed must be 0 or more (got content {content}, seed {seed})")
    rng = np.random.default_rng([seed, content])
    chords = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    rhythms = [BAR_RHYTHMS[i] for i in rng.integers(len(BAR_RHYTHMS), size=PHRASE_BARS - 1)]
    rhythms.append(CLOSING_RHYTHMS[rng.integers(len(CLOSING_RHYTHMS))])
    degrees = _melody(rng, chords, rhythms)

    harmonic = np.arange(1, PARTIALS + 1)
    colour = rng.lognormal(0.0, 0.4, PARTIALS)  # about +-3.5 dB of formant-like unevenness
    colour[harmonic % 2 == 0] *= rng.uniform(0.3, 1.0)  # hollow (clarinet-like) to full (string-like)
    return Content(
        tonic_midi=int(rng.integers(55, 67)),  # G3..F#4
        melody_degrees=tuple(degrees),
        melody_beats=tuple(float(beat) for rhythm in rhythms for beat in rhythm),
        chord_degrees=tuple(int(degree) for degree in chords),
        chord_strikes_per_bar=int(rng.choice((1, 2, 4))),
        bass_strikes_per_bar=int(rng.choice((1, 2))),
        partial_colour=tuple((colour / colour[0]).tolist()),
        partial_phases=tuple(rng.uniform(0, 2 * np.pi, PARTIALS).tolist()),
        attack_s=float(rng.uniform(0.005, 0.03)),
        decay_per_s=float(rng.uniform(0.5, 4.0)),
        tick_hz=tuple(np.sort(rng.uniform(2500.0, 8000.0, 6)).tolist()),
    )


def _melody(rng: np.random.Generator, chords: tuple[int, ...], rhythms: list[tuple]) -> list[int]:
    """Scale degrees of a melody over `rhythms` (one per bar): each bar opens on a tone of its chord, moves mostly
    by step, and the phrase closes on the tonic."""
    degrees: list[int] = []
    previous = int(rng.choice((0, 2, 4)))
    for root, rhythm in zip(chords, rhythms):
        chord_tones = np.array([root + offset + 7 * octave for octave in (-1, 0, 1) for offset in (0, 2, 4)])
        chord_tones = chord_tones[(chord_tones >= MELODY_LOWEST) & (chord_tones <= MELODY_HIGHEST)]
        for note in range(len(rhythm)):
            if note == 0:  # the nearest chord tone, with a random tie-break
                distance = np.abs(chord_tones - previous) + rng.uniform(0, 1.5, len(chord_tones))
                degree = int(chord_tones[np.argmin(distance)])
            else:
                step = int(rng.choice((-2, -1, 0, 1, 2, 3, -3), p=(0.2, 0.3, 0.1, 0.25, 0.1, 0.025, 0.025)))
                degree = int(np.clip(previous + step, MELODY_LOWEST, MELODY_HIGHEST))
            degrees.append(degree)
            previous = degree
    degrees[-1] = 0 if abs(previous) <= abs(previous - 7) else 7
    return degrees


# ------------------------------------------------------------------------------------------------------ scores


@dataclass(frozen=True)
class Notes:
    """A score in seconds, one entry per note: all arrays (notes,)."""

    onset_s: np.ndarray
    sounding_s: np.ndarray  # how long the note sounds before its release
    midi: np.ndarray
    gain: np.ndarray


def semitones(degrees: np.ndarray, mode: str) -> np.ndarray:
    """Scale degrees (any integers; 7 is the octave) -> semitones above the tonic in `mode`."""
    octave, step = np.divmod(np.asarray(degrees), 7)
    return np.asarray(SCALES[mode])[step] + 12 * octave


def score(content: Content, cues: Cues, seconds: float) -> Notes:
    """Every note of `content` played with `cues` that starts within `seconds`: melody, chords, bass, dissonance."""
    beat_s = 60.0 / cues.tempo_bpm
    phrases = math.ceil(seconds / (content.phrase_beats * beat_s))
    phrase_offsets = content.phrase_beats * np.arange(phrases)

    melody_beats = np.array(content.melody_beats)
    melody_onsets = (phrase_offsets[:, None] + (np.cumsum(melody_beats) - melody_beats)[None, :]).ravel()
    melody_home = content.tonic_midi + 12 * cues.register_octaves
    melody = (
        melody_onsets,
        np.tile(melody_beats, phrases),
        melody_home + semitones(np.tile(content.melody_degrees, phrases), cues.mode),
        np.full(melody_onsets.size, MELODY_GAIN),
    )

    bars = phrases * PHRASE_BARS
    roots = np.tile(content.chord_degrees, phrases)
    chord_beats = BEATS_PER_BAR / content.chord_strikes_per_bar
    chord_onsets = np.arange(bars * content.chord_strikes_per_bar) * chord_beats
    chord_roots = np.repeat(roots, content.chord_strikes_per_bar)
    chord_home = content.tonic_midi - 12
    triad = [semitones(chord_roots + offset, cues.mode) for offset in (0, 2, 4)]
    tritone = semitones(chord_roots, cues.mode) + 6
    chords = (
        np.tile(chord_onsets, 4),
        np.full(4 * chord_onsets.size, chord_beats),
        chord_home + np.concatenate([*triad, tritone]),
        np.repeat([CHORD_GAIN] * 3 + [CHORD_GAIN * cues.dissonance], chord_onsets.size),
    )

    bass_beats = BEATS_PER_BAR / content.bass_strikes_per_bar
    bass_onsets = np.arange(bars * content.bass_strikes_per_bar) * bass_beats
    bass = (
        bass_onsets,
        np.full(bass_onsets.size, bass_beats),
        content.tonic_midi - 24 + semitones(np.repeat(roots, content.bass_strikes_per_bar), cues.mode),
        np.full(bass_onsets.size, BASS_GAIN),
    )

    onset_beats, duration_beats, midi, gain = (np.concatenate(parts) for parts in zip(melody, chords, bass))
    onset_s = onset_beats * beat_s
    keep = (onset_s < seconds) & (gain > 0)
    return Notes(onset_s[keep], (cues.articulation * duration_beats * beat_s)[keep], midi[keep].astype(float),
                 gain[keep])


# ------------------------------------------------------------------------------------------------- synthesis


def midi_to_hz(midi: np.ndarray) -> np.ndarray:
    """Equal temperament, A4 (MIDI 69) = 440 Hz."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


def partial_amplitudes(content: Content, cues: Cues) -> np.ndarray:
    """(PARTIALS,) amplitudes of harmonics 1..PARTIALS: the content's colour tilted by the brightness cue."""
    octaves_up = np.log2(np.arange(1, PARTIALS + 1))
    return np.array(content.partial_colour) * 10.0 ** (cues.rolloff_db_per_octave * octaves_up / 20.0)


def wavetables(amplitudes: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """(PARTIALS,) amplitudes and phases -> (PARTIALS, TABLE_SIZE + 1) float32: row k is one period of the sum of
    harmonics 1..k+1, so a note reads the row that keeps its partials below Nyquist. The extra last column repeats
    the first, so interpolation never wraps."""
    spectra = np.zeros((PARTIALS, TABLE_SIZE // 2 + 1), dtype=complex)
    harmonics = amplitudes * np.exp(1j * np.asarray(phases)) * (TABLE_SIZE / 2)
    for row in range(PARTIALS):
        spectra[row, 1 : row + 2] = harmonics[: row + 1]
    tables = np.fft.irfft(spectra, TABLE_SIZE, axis=1)
    return np.concatenate([tables, tables[:, :1]], axis=1).astype(np.float32)


def attack_decay(content: Content, frames: int, sample_rate: int) -> np.ndarray:
    """(frames,) float32: the content's envelope from a note's onset: a linear attack, then exponential decay."""
    time_s = np.arange(frames, dtype=np.float32) / np.float32(sample_rate)
    attack = np.minimum(time_s / np.float32(content.attack_s), 1.0)
    return attack * np.exp(-np.float32(content.decay_per_s) * time_s)


def synthesise(notes: Notes, content: Content, cues: Cues, frames: int, sample_rate: int) -> np.ndarray:
    """Sum every note of `notes` into a (frames,) float32 signal.

    All notes are laid out end to end in one flat array and read from their wavetables in one vectorised pass:
    a 32-bit phase accumulator per note (integer multiplication wraps exactly where a period ends, far cheaper than
    a float modulo) indexes the table that keeps the note's partials below Nyquist, with linear interpolation.
    Each note is then shaped by its envelope and added into place, slice by slice.
    """
    start = np.round(notes.onset_s * sample_rate).astype(np.int64)
    length = np.minimum(np.round((notes.sounding_s + RELEASE_S) * sample_rate).astype(np.int64), frames - start)
    frequency = midi_to_hz(notes.midi)
    partials_below_nyquist = np.clip(np.floor(NYQUIST_MARGIN * sample_rate / frequency), 1, PARTIALS).astype(int)
    phase_step = np.round(frequency * 2.0**32 / sample_rate).astype(np.uint32)
    tables = wavetables(partial_amplitudes(content, cues), content.partial_phases).ravel()

    fraction_bits = 32 - TABLE_BITS  # the phase's low bits, below one table step
    flat_start = np.cumsum(length) - length
    elapsed = np.arange(length.sum()) - np.repeat(flat_start, length)  # frames since the note's onset
    phase = elapsed.astype(np.uint32) * np.repeat(phase_step, length)
    position = np.repeat((partials_below_nyquist - 1) * (TABLE_SIZE + 1), length) + (phase >> fraction_bits)
    fraction = (phase & np.uint32((1 << fraction_bits) - 1)).astype(np.float32) * np.float32(2.0**-fraction_bits)
    below = tables[position]
    wave = below + fraction * (tables[position + 1] - below)

    envelope = attack_decay(content, int(length.max(initial=0)), sample_rate)
    release_frames = round(RELEASE_S * sample_rate)
    release = np.arange(release_frames, 0, -1, dtype=np.float32) / np.float32(release_frames)
    mix = np.zeros(frames, dtype=np.float32)
    for onset, offset, count, gain in zip(start, flat_start, length, notes.gain.astype(np.float32)):
        note = wave[offset : offset + count]
        note *= envelope[:count]
        tail = min(count, release_frames)
        note[count - tail :] *= release[release_frames - tail :]
        mix[onset : onset + count] += gain * note
    return mix


def ticks(content: Content, cues: Cues, frames: int, sample_rate: int) -> np.ndarray:
    """(frames,) float32: a short metallic tick (the content's inharmonic partials, fast decay) on every beat, the
    first beat of each bar accented. Partials above Nyquist are left out, as for the notes."""
    tick_frames = round(TICK_S * sample_rate)
    t = np.arange(tick_frames) / sample_rate
    tick_hz = np.array(content.tick_hz)
    audible = (tick_hz < NYQUIST_MARGIN * sample_rate)[:, None]
    partials = (audible * np.sin(2 * np.pi * tick_hz[:, None] * t)).sum(axis=0)
    tick = (partials * np.exp(-t / (TICK_S / 6)) / len(tick_hz)).astype(np.float32)

    beat_frames = 60.0 / cues.tempo_bpm * sample_rate
    beats = np.arange(math.ceil(frames / beat_frames))
    starts = np.round(beats * beat_frames).astype(np.int64)
    accents = np.where(beats % BEATS_PER_BAR == 0, 1.0, 0.6)
    position = starts[:, None] + np.arange(tick_frames)
    inside = position < frames
    weights = (accents[:, None] * tick[None, :])[inside]
    return np.bincount(position[inside], weights=weights, minlength=frames).astype(np.float32)


def render(content: int, quadrant: str, *, seconds: float = SECONDS, seed: int = 0,
           sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Content number `content` of the corpus with `seed`, played in `quadrant` ("Q1".."Q4").

    Returns (round(seconds * sample_rate),) float32, mono, its peak at the quadrant's loudness (so never above 1).
    """
    quadrant = QUADRANTS.labels[QUADRANTS.index(quadrant)]
    check_parameters(seconds, seed, sample_rate)
    cues = CUES[quadrant]
    piece = compose(content, seed)
    frames = round(seconds * sample_rate)
    mix = synthesise(score(piece, cues, seconds), piece, cues, frames, sample_rate)
    if cues.percussion:
        mix += np.float32(cues.percussion) * ticks(piece, cues, frames, sample_rate)
    mix = in_a_room(mix, sample_rate, seed=[seed, content])
    peak = float(np.abs(mix).max())
    return mix * np.float32(10.0 ** (cues.loudness_db / 20.0) / peak) if peak > 0 else mix


def in_a_room(dry: np.ndarray, sample_rate: int, seed, damping_hz: float | None = None) -> np.ndarray:
    """`dry` played in a small room: an exponentially decaying noise tail (RT60 ROOM_RT60_S) mixed in at
    ROOM_WET. Real recordings are never digitally silent between staccato notes; without a room a third of a
    staccato rendering would be exact zeros, which the segmenter's silence filter rightly drops. With `damping_hz`
    the tail loses its highs above that frequency (6 dB per octave), as walls and air absorb them."""
    length = round(ROOM_RT60_S * sample_rate)
    time = np.arange(length) / sample_rate
    response = np.random.default_rng(seed).standard_normal(length) * np.exp(-6.9 * time / ROOM_RT60_S)
    response /= np.sqrt(np.sum(response**2))
    size = 1 << int(np.ceil(np.log2(len(dry) + length)))
    spectrum = np.fft.rfft(response, size)
    if damping_hz is not None:
        spectrum /= np.sqrt(1.0 + (np.fft.rfftfreq(size, 1.0 / sample_rate) / damping_hz) ** 2)
    wet = np.fft.irfft(np.fft.rfft(dry, size) * spectrum, size)[: len(dry)]
    dry_rms, wet_rms = np.sqrt(np.mean(dry**2)), np.sqrt(np.mean(wet**2))
    return (dry + ROOM_WET * wet * (dry_rms / wet_rms if wet_rms > 0 else 0.0)).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- corpus


MANIFEST_NAME, PAIRS_NAME, PARAMETERS_NAME = "synthemo.csv", "pairs.csv", "synthemo.json"
UNFINISHED_NAME = ".synthemo-unfinished"  # hidden: folder readers list no such file


def cues_version() -> str:
    """A short hash of the synthesis version and the cue table: it changes whenever a rendering would."""
    table = json.dumps({"synth": SYNTH_VERSION, "cues": {q: asdict(c) for q, c in CUES.items()}}, sort_keys=True)
    return f"{SYNTH_VERSION}-{hashlib.sha256(table.encode()).hexdigest()[:12]}"


def relative_path(content: int, quadrant: str) -> str:
    """Where a rendering lives in the corpus folder, POSIX style: "Q1/synthemo-c000-Q1.wav"."""
    return f"{quadrant}/synthemo-c{content:03d}-{quadrant}.wav"


def manifest(contents: int) -> pd.DataFrame:
    """The table of a corpus of `contents` contents, one row per rendering, contents in order and the quadrants in
    order within each: song_id, path (relative, POSIX), label (the quadrant), group (the content), then the cues."""
    rows = []
    for content in range(contents):
        for quadrant, cues in CUES.items():
            path = relative_path(content, quadrant)
            rows.append({"song_id": Path(path).stem, "path": path, "label": quadrant, "group": f"c{content:03d}",
                         **asdict(cues)})
    return pd.DataFrame(rows)


def pairs(table: pd.DataFrame) -> pd.DataFrame:
    """One row per content of a manifest: its id ("content") and the paths of its four renderings ("Q1".."Q4")."""
    wide = table.pivot(index="group", columns="label", values="path").loc[table["group"].unique(), list(CUES)]
    return wide.rename_axis(index="content", columns=None).reset_index()


def generate(
    out_dir: str | os.PathLike,
    *,
    contents: int = 32,
    seconds: float = SECONDS,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Render `contents` contents in the four quadrants into `out_dir` and return the manifest (see the module doc).

    A folder already holding this corpus is reused: only missing files are rendered, so an interrupted run resumes.
    A folder holding another one is an EstmError unless `force`, which renders everything again and removes
    renderings the new corpus lacks. `on_progress(done, total)` is called after each file, rendered or reused.
    """
    if contents < 1:
        raise EstmError(f"contents must be at least 1 (got {contents})")
    check_parameters(seconds, seed, sample_rate)
    out_dir = Path(out_dir)
    parameters = {"contents": contents, "seconds": seconds, "seed": seed, "sample_rate": sample_rate,
                  "cues_version": cues_version()}
    table = manifest(contents)
    previous = reuse_or_refuse(out_dir, parameters, force)
    if previous is not None:
        return previous
    targets = [out_dir / relative_path(content, quadrant) for content, quadrant in product(range(contents), CUES)]
    check_room(out_dir, sum(force or not target.exists() for target in targets), seconds, sample_rate)
    if force:
        _remove_other_renderings(out_dir, set(table["path"]))

    start_corpus(out_dir, parameters)
    for done, (target, (content, quadrant)) in enumerate(zip(targets, product(range(contents), CUES)), start=1):
        if force or not target.exists():
            samples = render(content, quadrant, seconds=seconds, seed=seed, sample_rate=sample_rate)
            audio.save(target, samples, sample_rate, force=force)
        if on_progress is not None:
            on_progress(done, len(targets))
    finish_corpus(out_dir, table)
    return table


def check_parameters(seconds: float, seed: int, sample_rate: int) -> None:
    # Below 8 kHz the melody's highest notes would pass Nyquist; nan fails every comparison, so it is refused too.
    if not (seconds * sample_rate >= 0.5 and seconds <= MAX_SECONDS) \
            or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE or seed < 0:
        raise EstmError(f"SynthEmo needs at least one frame and at most {MAX_SECONDS:g} s, a sample rate of at least "
                        f"{MIN_SAMPLE_RATE} Hz and at most {MAX_SAMPLE_RATE} Hz and a seed of 0 or more "
                        f"(got {seconds} s, {sample_rate} Hz, seed {seed})")


def check_room(out_dir: Path, files: int, seconds: float, sample_rate: int, channels: int = 1) -> None:
    """Before a run starts: refuse one whose renderings would not fit the disk (16-bit wav), or one of them the
    memory."""
    frames = round(seconds * sample_rate)
    check_free_space(out_dir, files * (frames * channels * 2 + 44), f"{files} renderings")
    needed = (1 << math.ceil(math.log2(frames + 1))) * RENDER_BYTES_PER_FRAME * channels
    if needed > available_memory():
        raise EstmError(f"a rendering of {seconds:g} s at {sample_rate} Hz needs about {size(needed)} of memory, "
                        f"more than is available ({size(available_memory())}): ask for fewer seconds or a lower rate")


def start_corpus(out_dir: Path, parameters: dict) -> None:
    """Mark `out_dir` unfinished, then record the parameters (so that the next run recognises and resumes it)."""
    mark = out_dir / UNFINISHED_NAME
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        mark.write_text("`estm data synth` has not finished this corpus; rerun it with the same options\n")
    write_json(out_dir / PARAMETERS_NAME, parameters, force=True)


def unfinished(root: Path) -> bool:
    """Whether `root` is a corpus that `estm data synth` started and did not finish: it holds the mark of an
    unfinished run, or (made before that mark) its parameters without its table, which came last."""
    return (root / UNFINISHED_NAME).exists() or (
        (root / PARAMETERS_NAME).is_file() and not (root / MANIFEST_NAME).is_file())


def rerun_command(root: Path) -> str:
    """The `estm data synth` command that finishes the unfinished corpus `root`, its options from the parameters."""
    try:
        parameters = _read_parameters(root / PARAMETERS_NAME) or {}
    except EstmError:
        parameters = {}
    flags = ["--source tones"] if "contents" in parameters else []
    for key, flag in (("contents", "-n"), ("count", "-n"), ("seconds", "--seconds"), ("seed", "--seed"),
                      ("sample_rate", "--sample-rate"), ("channels", "--channels")):
        if key in parameters and not (key == "channels" and parameters[key] == 1):
            flags.append(f"{flag} {parameters[key]}")
    if parameters.get("factorial"):
        flags.append("--factorial")
    if "count" in parameters:
        from .scores import COLLECTIONS

        if parameters.get("collections") != sorted(COLLECTIONS):
            flags.extend(f"--collection {name}" for name in parameters.get("collections", []))
        if not str(parameters.get("soundfont", "")).startswith("TimGM6mb.sf2 "):
            flags.append("--soundfont SF2")
    return " ".join(["estm data synth", *flags, f"-o {root}"])


def reuse_or_refuse(out_dir: Path, parameters: dict, force: bool) -> pd.DataFrame | None:
    """The table of the corpus `out_dir` holds when it was made with `parameters` and is complete; None where it is
    to be made (again). A folder holding a corpus made otherwise is an EstmError unless `force`."""
    existing = None if force else _read_parameters(out_dir / PARAMETERS_NAME)
    if existing is not None and existing != parameters:
        differing = ", ".join(f"{key} {existing.get(key)!r} (asked {value!r})" for key, value in parameters.items()
                              if existing.get(key) != value)
        raise EstmError(f"{out_dir}: holds another corpus ({differing}); "
                        "use --force to replace it or choose another folder")
    manifest_path = out_dir / MANIFEST_NAME
    if existing is None or not manifest_path.is_file() or (out_dir / UNFINISHED_NAME).exists():
        return None
    table = pd.read_csv(manifest_path, dtype={"song_id": str, "group": str, "label": str}, keep_default_na=False)
    complete = all((out_dir / path).exists() for path in table["path"])
    return table if complete and (out_dir / PAIRS_NAME).exists() == ("Q1" in set(table["label"])) else None


def finish_corpus(out_dir: Path, table: pd.DataFrame) -> None:
    """Write the corpus tables (pairs.csv where the files are quadrant renderings), after removing the files of the
    corpus the folder held before that this one lacks, so that folder readers find only this one; then commit the
    corpus by removing its unfinished mark."""
    manifest_path = out_dir / MANIFEST_NAME
    if manifest_path.is_file():
        before = pd.read_csv(manifest_path, usecols=["path"])["path"].astype(str)
        for path in set(before) - set(table["path"]):
            (out_dir / path).unlink(missing_ok=True)
    write_table(out_dir / MANIFEST_NAME, table)
    if set(table["label"]) == set(CUES):
        write_table(out_dir / PAIRS_NAME, pairs(table))
    else:
        (out_dir / PAIRS_NAME).unlink(missing_ok=True)
    (out_dir / UNFINISHED_NAME).unlink(missing_ok=True)


def _read_parameters(path: Path) -> dict | None:
    """The parameters a corpus folder was made with, or None where there is no corpus yet."""
    if not path.exists():
        return None
    try:
        parameters = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise EstmError(f"{path}: unreadable corpus parameters ({error}); use --force to replace them") from None
    if not isinstance(parameters, dict):
        raise EstmError(f"{path}: not corpus parameters; use --force to replace them")
    return parameters


def _remove_other_renderings(out_dir: Path, keep: set[str]) -> None:
    """Delete SynthEmo renderings in `out_dir` that are not in `keep` (relative paths), so that a smaller corpus made
    with --force leaves none of the old one's files for folder readers to find."""
    for quadrant in CUES:
        for path in (out_dir / quadrant).glob("synthemo-c*-Q?.wav"):
            if f"{quadrant}/{path.name}" not in keep:
                path.unlink()


def write_json(path: Path, value: dict, force: bool) -> None:
    with atomic_write(path, force=force) as temporary:
        temporary.write_text(json.dumps(value, indent=2) + "\n")


def write_table(path: Path, table: pd.DataFrame) -> None:
    # Always replaced: the tables describe the files, which have just been checked or written.
    with atomic_write(path, force=True) as temporary:
        table.to_csv(temporary, index=False)
