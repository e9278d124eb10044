"""Artifact checks of the cue transfer (issue 23; DESIGN.md, Evaluation): what a listener hears as damage rather than
emotion, measured on small deterministic synthetic signals whose right answer is known.

    results = check_all()   # {"identity_mel": {"value": 0.0, "limit": 1.0, "passed": True, "what": "..."}, ...}

    identity_mel      the content asked for its own emotion comes back nearly unchanged (log-mel distance, dB)
    identity_chroma   ... with the same pitches (chroma correlation)
    joins             no click where the stream's blocks, the stretch's pieces or the mode edit's chunks meet
    mode              a major triad through the mode edit comes out a minor triad and nothing else
    mode_third        ... with its third moved, not lost
    limiter           a loud master asked for Q1 is not pumped by the limiter

Each check_* function takes the signal it runs on and the edit under test (`edit`: the cue method's, cue_edit, by
default), so that a test can hand it a signal or an edit of its own; the measures take plain arrays. The plans come
from plan.emotion_plan, in own_emotion_moves and quadrant_moves only.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .cues.meter import analyze
from .dsp import hann
from .loudness import integrated_loudness
from .methods.cues.chain import edit as chain_edit
from .methods.cues.level import limit
from .methods.cues.mode import MODE_CHUNK, mode_fft
from .methods.cues.plan import PEAK, Moves, emotion_plan
from .methods.cues.stages import as_2d
from .methods.cues.stretch import STRETCH_SEGMENT_S, Stretch

RATE = 22050
PIECE_S = 8.0  # the synthetic piece: longer than one chunk of the mode edit (MODE_CHUNK hops, 5.9 s), so that
#   the mode edit has a join in it
TRIAD_S = 4.0
TRIAD_HZ = (293.66, 369.99, 440.0)  # D4 F#4 A4: D major (a tonic other than C, so that the key is not assumed)
TRIAD_TONIC = 2  # D
MINOR_TRIAD_HZ = (293.66, 349.23, 440.0)  # D4 F4 A4
TRIAD_HARMONICS = 6  # partials of each tone, at 1/k of the fundamental's amplitude: as an instrument has (with 5
#   or more, the root's and the fifth's 5th partials fall on degrees 3 and 7, and the mode edit must leave them)
PARTIAL_HZ = 2.0  # a partial's half-width on the long FFT of the mode check (its resolution is a third of a hertz)
TRIAD_EDGE_S = 0.5  # the mode check skips the triad's fade in and out
NOISE_FLOOR_DB = -70.0  # the piece's white noise floor (RMS, dBFS), as a recording has: on a synthetic signal's
#   empty bands the log-mel distance reads rounding noise (a 0.007 articulation move read 6 dB without it, 0.2 with)
LOUD_LUFS = -9.0  # the loud master of the limiter check (plan.LOUDEST_LUFS: loud commercial masters)

MEL_DB_LIMIT = 1.0  # identity: log-mel distance from the content
CHROMA_LIMIT = 0.98  # identity: chroma correlation with the content
SPURIOUS_DB_LIMIT = -30.0  # mode: power off the minor triad's partials relative to the power on them
THIRD_DB_LIMIT = 3.0  # mode: the minor third keeps the major third's power within this (an edit that only removes
#   the third leaves nothing spurious)
GAIN_REDUCTION_DB_LIMIT = 3.0  # limiter: its deepest gain reduction; more is heard as pumping
STEP_DB_LIMIT = 0.0  # joins: the largest step near a join relative to the content's largest, scaled (check_joins)

JOIN_BLOCK = 1999  # frames streamed at a time: small and odd, so that joins fall at every phase of the music
JOIN_SEGMENT_S = 1.0  # the stretch's pieces in the join check: seven joins in the piece (STRETCH_SEGMENT_S is 30 s)
JOIN_MOVES = Moves(tempo_ratio=0.85, semitones=2.0, gain_db=-2.0, dynamics_ratio=1.25, tilt_db_per_octave=1.0,
                   articulation=0.5, key=(0, "major"), mode="minor")  # every stage of chain.edit, in the natural range

Edit = Callable[..., np.ndarray]  # (samples, rate, moves, *, block_frames, segment_seconds, ceiling) -> output


# ----------------------------------------------------------------------------------------------- test signals


def _harmonic_tone(hz: float, t: np.ndarray, harmonics: int) -> np.ndarray:
    return sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, harmonics + 1))


def _fades(t: np.ndarray, seconds: float = 0.05) -> np.ndarray:
    """A gain rising over `seconds` from t[0] and falling over the last `seconds`."""
    return np.clip(np.minimum(t - t[0], t[-1] - t) / seconds, 0.0, 1.0)


PARTS = ("notes", "chords", "drums")


def _notes(t: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Plucked harmonic notes of the C-major scale every quarter second, at random."""
    music = np.zeros(len(t))
    for start in range(0, len(t), round(0.25 * rate)):
        degree = (0, 2, 4, 5, 7, 9, 11, 12)[rng.integers(8)]
        since = t[: len(t) - start]
        music[start:] += 0.3 * _harmonic_tone(261.63 * 2 ** (degree / 12), since, 6) * np.exp(-6 * since)
    return music


def _chords(t: np.ndarray, rate: int) -> np.ndarray:
    """Sustained I-IV-V-I chords of C major, 1.5 s each, faded in and out."""
    music, chord = np.zeros(len(t)), round(1.5 * rate)
    for index, start in enumerate(range(0, len(t), chord)):
        span = t[start:start + chord]
        root = (0, 5, 7, 0)[index % 4]
        music[start:start + chord] = 0.08 * _fades(span) * sum(
            _harmonic_tone(130.81 * 2 ** ((root + interval) / 12), span, 4) for interval in (0, 4, 7))
    return music


def _drums(t: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A kick every half second and a noise hi-hat between."""
    music = np.zeros(len(t))
    for start in range(0, len(t), round(0.5 * rate)):
        kick = t[: min(round(0.3 * rate), len(t) - start)]
        music[start:start + len(kick)] += 0.6 * np.sin(2 * np.pi * (50 + 80 * np.exp(-30 * kick)) * kick) * \
            np.exp(-12 * kick)
        hat = start + round(0.25 * rate)
        length = max(0, min(round(0.05 * rate), len(t) - hat))
        music[hat:hat + length] += 0.1 * np.diff(rng.standard_normal(length + 1)) * np.exp(-80 * t[:length])
    return music


def piece(seconds: float = PIECE_S, rate: int = RATE, seed: int = 0, parts: tuple[str, ...] = PARTS) -> np.ndarray:
    """(frames, 2) float32, peak about 0.5: a C-major piece of `parts`, deterministic for a `seed`: plucked notes
    over sustained chords with drums (_notes, _chords, _drums); the right channel a little quieter and later; over a
    noise floor at NOISE_FLOOR_DB."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    makers = {"notes": lambda: _notes(t, rate, rng), "chords": lambda: _chords(t, rate),
              "drums": lambda: _drums(t, rate, rng)}
    music = sum(makers[part]() for part in PARTS if part in parts)
    stereo = np.stack([music, 0.85 * np.roll(music, 40)], axis=1)
    floor = 10 ** (NOISE_FLOOR_DB / 20) * rng.standard_normal(stereo.shape)
    return (0.5 * stereo / np.abs(stereo).max() + floor).astype(np.float32)


def triad(hz: tuple[float, ...] = TRIAD_HZ, seconds: float = TRIAD_S, rate: int = RATE,
          harmonics: int = TRIAD_HARMONICS) -> np.ndarray:
    """(frames, 1) float32: the tones `hz` sustained together, each of `harmonics` partials at 1/k, faded in and
    out over 50 ms."""
    t = np.arange(round(seconds * rate)) / rate
    tones = sum(_harmonic_tone(frequency, t, harmonics) for frequency in hz)
    return (0.1 * tones * _fades(t)).astype(np.float32)[:, None]


def mastered(samples: np.ndarray, rate: int, lufs: float = LOUD_LUFS) -> np.ndarray:
    """`samples` brought to `lufs` integrated loudness as a loud master is: gain, then the peaks limited to PEAK
    (level.limit), three times over, since the limiting lowers the loudness a little."""
    for _ in range(3):
        samples = limit(samples * np.float32(10 ** ((lufs - integrated_loudness(samples, rate)) / 20)), rate, PEAK)
    return samples


# ------------------------------------------------------------------------------------------------- the method


def cue_edit(samples: np.ndarray, rate: int, moves: Moves, *, block_frames: int | None = None,
             segment_seconds: float = STRETCH_SEGMENT_S, ceiling: float = PEAK) -> np.ndarray:
    """What method.apply makes of `samples` (frames[, channels]): chain.edit over them in blocks of
    `block_frames` (default all at once), with the stretch's piece length and the limiter's ceiling open to the
    checks. Returns (frames, channels) float32."""
    samples = as_2d(samples)
    if moves == Moves():
        return samples.copy()  # as method.apply does
    step = block_frames or max(len(samples), 1)
    blocks = (samples[start:start + step] for start in range(0, len(samples), step))
    edited = chain_edit(blocks, rate, samples.shape[1], moves, content_loudness=integrated_loudness(samples, rate),
                        ceiling=ceiling, segment_seconds=segment_seconds)
    return np.concatenate([np.zeros((0, samples.shape[1]), np.float32), *edited])


def own_emotion_moves(content, range_: str = "natural") -> dict[str, Moves]:
    """The moves the cue method makes to `content` (Cues) asked for its own emotion: with itself as the emotion
    reference, and as `--emotion` of the quadrant the recogniser hears in it. {how it was asked: moves}."""
    from .cues.emotion import recognise

    quadrant = recognise(content).quadrant
    return {"as its own reference": emotion_plan(content, reference=content, range_=range_).moves,
            f"as --emotion {quadrant}": emotion_plan(content, quadrant=quadrant, range_=range_).moves}


def quadrant_moves(content, quadrant: str, range_: str = "natural") -> Moves:
    """The moves the cue method makes to `content` (Cues) asked for `quadrant` (`estm transfer --emotion`)."""
    return emotion_plan(content, quadrant=quadrant, range_=range_).moves


def _result(value: float, limit: float, passed: bool, what: str) -> dict:
    return {"value": float(value), "limit": float(limit), "passed": bool(passed), "what": what}


# -------------------------------------------------------------------------------------------------- identity


def identity_distance(content: np.ndarray, output: np.ndarray, rate: int) -> tuple[float, float]:
    """(log-mel distance in dB, chroma correlation) of `output` from `content`, (frames[, channels]) at `rate`, as
    `estm evaluate transfer` measures them (transfer_measures: mono at its RATE, aligned in tempo)."""
    from . import audio, transfer_measures as measures

    def frames(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mono = audio.resample(audio.to_mono(np.asarray(samples, np.float32)), rate, measures.RATE)
        return measures.log_mel_frames(mono), measures.chroma_frames(mono)

    (content_mel, content_chroma), (output_mel, output_chroma) = frames(content), frames(output)
    return (measures.mel_distance(content_mel, output_mel),
            measures.chroma_correlation(content_chroma, output_chroma))


def check_identity(content: np.ndarray, rate: int, *, range_: str = "natural", edit: Edit = cue_edit) -> dict:
    """The content asked for its own emotion (own_emotion_moves), both ways: {"identity_mel", "identity_chroma"},
    each the worse of the two asks."""
    asks = own_emotion_moves(analyze(content, rate), range_)
    measured = {how: identity_distance(content, edit(content, rate, moves), rate) for how, moves in asks.items()}
    mel = max(distance for distance, _ in measured.values())
    chroma = min(correlation for _, correlation in measured.values())
    cases = "; ".join(f"{how} {distance:.2f} dB, r {correlation:.3f}" for how, (distance, correlation)
                      in measured.items())
    return {"identity_mel": _result(mel, MEL_DB_LIMIT, mel <= MEL_DB_LIMIT,
                                    f"log-mel distance (dB) of the content asked for its own emotion ({cases})"),
            "identity_chroma": _result(chroma, CHROMA_LIMIT, chroma >= CHROMA_LIMIT,
                                       "chroma correlation of the content asked for its own emotion, the worse ask")}


# ----------------------------------------------------------------------------------------------------- joins


def internal_joins(frames: int, rate: int, moves: Moves, *,
                   segment_seconds: float = STRETCH_SEGMENT_S) -> list[tuple[int, int]]:
    """Where an edit of `frames` input frames by `moves` (cue_edit) joins pieces of its own making, as (output frame,
    reach in frames either side): the stretch's pieces (stretch.Stretch: their crossfades) and the mode edit's chunks
    (mode.ModeChange: the short-time frames that overlap a chunk's first), each where it lands in the output."""
    ratio, found = moves.tempo_ratio, []
    if moves.tempo_ratio != 1.0 or moves.semitones != 0.0:
        stretcher = Stretch(rate, 1, ratio, moves.semitones, segment_seconds=segment_seconds)
        # a piece is cut once the input runs on past its end and context; the rest is the last piece
        pieces = sum(1 for index in range(frames // stretcher.segment + 1)
                     if frames > (index + 1) * stretcher.segment + stretcher.context)
        found += [(round(index * stretcher.segment / ratio), stretcher.half) for index in range(1, pieces + 1)]
    if moves.mode is not None and moves.key is not None and moves.mode != moves.key[1]:
        # chunks of MODE_CHUNK hops of the input padded with a frame (mode_fft) in front
        size = mode_fft(rate)
        chunk = MODE_CHUNK * (size // 4)
        found += [(round((start - size) / ratio), round(size / ratio)) for start in range(chunk, frames + size, chunk)]
    return found


def near(frames: int, joins: list[tuple[int, int]]) -> np.ndarray:
    """(frames,) bool: the frames within reach of one of `joins` (internal_joins)."""
    mask = np.zeros(frames, bool)
    for position, reach in joins:
        mask[max(position - reach, 0): position + reach + 1] = True
    return mask


def largest_step(samples: np.ndarray, where: np.ndarray | None = None) -> float:
    """The largest |sample - the one before| over the channels of (frames[, channels]) `samples`, over the steps
    into or out of a frame of the (frames,) bool `where` (default everywhere); 0 where there is none."""
    steps = np.abs(np.diff(as_2d(samples), axis=0)).max(axis=1)
    if where is not None:
        steps = steps[where[1:] | where[:-1]]
    return float(steps.max()) if steps.size else 0.0


def join_steps_db(streamed: np.ndarray, whole: np.ndarray, joins: list[tuple[int, int]]) -> tuple[float, float]:
    """How far (dB) the largest step near a join exceeds the largest step elsewhere, in the output of an edit
    streamed in blocks (`streamed`) and of the same edit in one block (`whole`), (frames, channels): (at the blocks'
    joins: `streamed`'s largest step over `whole`'s, since the stream promises the same output and so a click
    anywhere is theirs; at the edit's own `joins` (internal_joins): `whole`'s largest step near them over its
    largest elsewhere). Positive: a click."""
    blocks = largest_step(streamed) / max(largest_step(whole), 1e-12)
    mask = near(len(whole), joins)
    internal = largest_step(whole, mask) / max(largest_step(whole, ~mask), 1e-12) if mask.any() else 1e-12
    return float(20 * np.log10(max(blocks, 1e-12))), float(20 * np.log10(max(internal, 1e-12)))


def check_joins(content: np.ndarray, rate: int, moves: Moves = JOIN_MOVES, *, block_frames: int = JOIN_BLOCK,
                segment_seconds: float = JOIN_SEGMENT_S, edit: Edit = cue_edit) -> dict:
    """`content` edited by `moves` streamed in blocks of `block_frames`, the stretch in pieces of
    `segment_seconds`: the largest step near any join relative to the content's largest step scaled for what the
    moves do to it, in dB (join_steps_db, the worse of its two). The scale is measured, as the largest step of the
    same edit away from the joins over the content's largest: besides gain, the moves ask for brightness,
    transposition and sharper attacks, all of which change the steps; and the stretcher renders partials with
    phases of its own, which moves the largest step by a dB or two from one rendering to the next, so that another
    rendering (without joins, or the content itself times the gain) is no yardstick."""
    streamed = edit(content, rate, moves, block_frames=block_frames, segment_seconds=segment_seconds)
    whole = edit(content, rate, moves, segment_seconds=segment_seconds)
    joins = internal_joins(len(content), rate, moves, segment_seconds=segment_seconds)
    blocks, internal = join_steps_db(streamed, whole, joins)
    scale = largest_step(whole, ~near(len(whole), joins)) / largest_step(content)
    value = max(blocks, internal)
    return {"joins": _result(value, STEP_DB_LIMIT, value <= STEP_DB_LIMIT,
                             f"largest step at joins over the content's x{scale:.2f} for the moves (dB): blocks of "
                             f"{block_frames} frames {blocks:+.2f}, {len(joins)} stretch pieces' and mode chunks' "
                             f"{internal:+.2f}")}


# ------------------------------------------------------------------------------------------------------ mode


def _partials_mask(frequencies: np.ndarray, tones_hz: tuple[float, ...], harmonics: int) -> np.ndarray:
    """(bins,) bool: the bins within PARTIAL_HZ of a partial of `tones_hz`."""
    partials = np.outer(tones_hz, np.arange(1, harmonics + 1)).ravel()
    return np.abs(frequencies[:, None] - partials[None, :]).min(axis=1) <= PARTIAL_HZ


def _long_spectrum(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, power) of one Hann-windowed FFT over (frames[, channels]) `samples` mixed to mono, their first
    and last TRIAD_EDGE_S left out."""
    edge = round(TRIAD_EDGE_S * rate)
    mono = as_2d(samples).astype(np.float64).mean(axis=1)[edge: -edge]
    power = np.abs(np.fft.rfft(mono * hann(len(mono), periodic=False))) ** 2
    return np.fft.rfftfreq(len(mono), 1.0 / rate), power


def spurious_partials_db(output: np.ndarray, rate: int, tones_hz: tuple[float, ...] = MINOR_TRIAD_HZ,
                         harmonics: int = TRIAD_HARMONICS) -> float:
    """The power of `output` (frames[, channels]) off the partials of the chord `tones_hz` (each with `harmonics`
    partials) relative to the power on them, in dB, on one long FFT."""
    frequencies, power = _long_spectrum(output, rate)
    on = _partials_mask(frequencies, tones_hz, harmonics)
    return float(10 * np.log10(max(power[~on].sum(), 1e-30) / max(power[on].sum(), 1e-30)))


def third_kept_db(major: np.ndarray, minor: np.ndarray, rate: int, major_hz: tuple[float, ...] = TRIAD_HZ,
                  minor_hz: tuple[float, ...] = MINOR_TRIAD_HZ, harmonics: int = TRIAD_HARMONICS) -> float:
    """How much of the major third's power (its partials in `major`) the minor third has in `minor`, in dB
    relative to the chord's other tones (so that the level of the whole does not count): 0 all of it."""
    def third_share(samples: np.ndarray, tones_hz: tuple[float, ...]) -> float:
        frequencies, power = _long_spectrum(samples, rate)
        third = _partials_mask(frequencies, tones_hz[1:2], harmonics)
        others = _partials_mask(frequencies, tones_hz[::2], harmonics) & ~third
        return float(power[third].sum() / max(power[others].sum(), 1e-30))

    return float(10 * np.log10(max(third_share(minor, minor_hz), 1e-30) / third_share(major, major_hz)))


def check_mode(major: np.ndarray, rate: int, *, tonic: int = TRIAD_TONIC, major_hz: tuple[float, ...] = TRIAD_HZ,
               minor_hz: tuple[float, ...] = MINOR_TRIAD_HZ, harmonics: int = TRIAD_HARMONICS,
               edit: Edit = cue_edit) -> dict:
    """The major triad `major` (frames[, channels]: the tones `major_hz` with `harmonics` partials, root `tonic`)
    through the mode edit: {"mode": its power off the minor triad's partials, "mode_third": the minor third's power
    against the major third's}."""
    minor = edit(major, rate, Moves(key=(tonic, "major"), mode="minor"))
    spurious = spurious_partials_db(minor, rate, minor_hz, harmonics)
    third = third_kept_db(major, minor, rate, major_hz, minor_hz, harmonics)
    return {"mode": _result(spurious, SPURIOUS_DB_LIMIT, spurious <= SPURIOUS_DB_LIMIT,
                            f"a major triad of {harmonics}-partial tones through the mode edit: power off the minor "
                            "triad's partials relative to on them (dB)"),
            "mode_third": _result(third, -THIRD_DB_LIMIT, third >= -THIRD_DB_LIMIT,
                                  "the minor third's power where the major third's was, relative to the root and "
                                  "fifth (dB)")}


# --------------------------------------------------------------------------------------------------- limiter


def gain_reduction_db(unlimited: np.ndarray, limited: np.ndarray) -> float:
    """The deepest gain reduction (dB, positive) of a limiter that made `limited` of `unlimited` (the same edit with
    no ceiling), sample by sample over the samples above -60 dB of the peak (below that, rounding rules)."""
    unlimited, limited = as_2d(unlimited).astype(np.float64), as_2d(limited).astype(np.float64)
    audible = np.abs(unlimited) > 1e-3 * np.abs(unlimited).max()
    if not audible.any():
        return 0.0
    ratio = np.abs(limited[audible]) / np.abs(unlimited[audible])
    return float(max(0.0, -20 * np.log10(max(ratio.min(), 1e-12))))


def check_limiter(content: np.ndarray, rate: int, *, quadrant: str = "Q1", range_: str = "natural",
                  edit: Edit = cue_edit) -> dict:
    """`content` (a loud master: mastered) asked for `quadrant` by the cue method: the limiter's deepest gain
    reduction, from the same edit made with and without the ceiling."""
    moves = quadrant_moves(analyze(content, rate), quadrant, range_)
    reduction = gain_reduction_db(edit(content, rate, moves, ceiling=math.inf), edit(content, rate, moves))
    return {"limiter": _result(reduction, GAIN_REDUCTION_DB_LIMIT, reduction <= GAIN_REDUCTION_DB_LIMIT,
                               f"deepest gain reduction (dB) of the limiter on a "
                               f"{integrated_loudness(content, rate):.0f} LUFS master asked for {quadrant}")}


# ------------------------------------------------------------------------------------------------------- all


def check_all(range_: str = "natural") -> dict[str, dict]:
    """Every check on its own small deterministic signals at RATE, with the cue method's moves in `range_`:
    {check name: {"value", "limit", "passed", "what"}}. About 5 s on two cores."""
    music = piece()
    results = check_identity(music, RATE, range_=range_)
    results |= check_joins(music, RATE)
    results |= check_mode(triad(), RATE)
    results |= check_limiter(mastered(music, RATE), RATE, range_=range_)
    return results
