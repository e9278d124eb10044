"""SynthEmo's composition and score: what a content is (`Content`, drawn by `compose`) and how it is played in a
quadrant (`Cues`), turned into the notes of a rendering (`score`: melody, chords, bass and the dissonance cue).

`synth_sound` sounds these notes; `synth` holds the quadrant cue table (`CUES`) and makes the corpus. A change here
that changes what a rendering sounds like bumps `synth.SYNTH_VERSION`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import EstmError


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

