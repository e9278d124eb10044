"""SynthEmo's synthesis: the notes of a score (`synth_music.score`) summed into audio by additive synthesis through
band-limited wavetables (`synthesise`), the percussive ticks (`ticks`) and the room around a rendering (`in_a_room`).

Each note's harmonics are summed once into one period (an inverse FFT), and every sample of every note is then read
from its table in one vectorised pass. That costs the same per sample however many partials a note has: a 10 s
rendering takes about 20 ms on one core. A change here that changes what a rendering sounds like bumps
`synth.SYNTH_VERSION`.
"""

from __future__ import annotations

import math

import numpy as np

from .synth_music import BEATS_PER_BAR, PARTIALS, Content, Cues, Notes

NYQUIST_MARGIN = 0.45  # partials above this fraction of the sample rate are dropped (no aliasing)
TABLE_BITS = 11
TABLE_SIZE = 1 << TABLE_BITS  # samples in one period of a wavetable
RELEASE_S = 0.03  # fade at a note's end, so that no note ends in a click
TICK_S = 0.05  # length of the percussive tick
ROOM_RT60_S = 0.5  # seconds for the room's tail to fall 60 dB
ROOM_WET = 0.3  # level of the room's sound relative to the instruments' (RMS)


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
