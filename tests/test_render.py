"""The cue edits on audio: each moves its own cue the asked way, measured from the output, and the identity
settings return the input."""

from __future__ import annotations

import numpy as np
import pytest

from estm_core.cues import render

RATE = 22050


def sine(frequency: float, seconds: float, amplitude: float = 0.3, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)[:, None]


def peak_hz(samples: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples[:, 0] * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def band_db(samples: np.ndarray, low: float, high: float, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples[:, 0])) ** 2
    frequencies = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(10 * np.log10(spectrum[(frequencies >= low) & (frequencies < high)].mean()))


def level_db(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(samples.astype(np.float64) ** 2))))


@pytest.mark.parametrize("edit", [
    lambda x: render.stretch(x, RATE, 1.0, 0.0), lambda x: render.gain(x, 0.0),
    lambda x: render.dynamics(x, RATE, 1.0), lambda x: render.tilt(x, RATE, 0.0),
    lambda x: render.articulation(x, RATE, 0.0), lambda x: render.change_mode(x, RATE, 0, "major", "major")])
def test_identity_settings_return_the_input(edit):
    samples = np.random.default_rng(0).standard_normal((RATE, 2)).astype(np.float32) * 0.1
    np.testing.assert_array_equal(edit(samples), samples)


def test_tempo_changes_length_not_pitch_and_register_changes_pitch_not_length():
    tone = sine(440.0, 25.0)
    faster = render.stretch(tone, RATE, tempo_ratio=1.25)
    assert faster.shape == (round(25.0 * RATE / 1.25), 1)  # 25 s x the tempo ratio
    assert peak_hz(faster[RATE:-RATE]) == pytest.approx(440.0, abs=2.0)
    assert level_db(faster[RATE:-RATE]) == pytest.approx(level_db(tone), abs=1.0)
    octave_up = render.stretch(sine(440.0, 4.0), RATE, semitones=12.0)
    assert octave_up.shape == (4 * RATE, 1)
    assert peak_hz(octave_up[RATE // 2:-RATE // 2]) == pytest.approx(880.0, abs=3.0)


def test_the_stretch_keeps_time_aligned():
    clicks = np.zeros((4 * RATE, 1), np.float32)
    clicks[RATE::RATE] = 1.0  # at 1, 2, 3 s
    slower = render.stretch(clicks, RATE, tempo_ratio=0.5)
    loudest = np.argsort(np.abs(slower[:, 0]))[::-1]
    found = sorted({round(index / RATE) for index in loudest[:200]})
    assert found == [2, 4, 6]  # each click twice as late


def test_dynamics_compress_and_expand_the_swings_about_the_level():
    loud, quiet = sine(440.0, 1.0, 0.5), sine(440.0, 1.0, 0.05)  # 20 dB apart
    swings = np.concatenate([loud, quiet, loud, quiet])
    for ratio, expected in ((2.0, 10.0), (0.5, 40.0)):
        edited = render.dynamics(swings, RATE, ratio)
        middle = slice(RATE // 4, 3 * RATE // 4)
        difference = level_db(edited[middle]) - level_db(edited[RATE:][middle])
        assert difference == pytest.approx(expected, abs=1.5), ratio


def test_tilt_makes_the_spectrum_brighter_or_darker_about_1_khz():
    noise = np.random.default_rng(1).standard_normal((4 * RATE, 1)).astype(np.float32) * 0.1
    for slope in (3.0, -3.0):
        edited = render.tilt(noise, RATE, slope)
        change_high = band_db(edited, 3500, 4500) - band_db(noise, 3500, 4500)  # two octaves above 1 kHz
        change_low = band_db(edited, 230, 270) - band_db(noise, 230, 270)  # two octaves below
        change_pivot = band_db(edited, 950, 1050) - band_db(noise, 950, 1050)
        assert change_high - change_low == pytest.approx(4 * slope, abs=2.5), slope
        assert abs(change_pivot) < 1.5


def test_articulation_sharpens_or_softens_the_notes():
    """Plucked notes: more staccato leaves less of each note's energy in its second half, more legato more."""
    rate, note = RATE, RATE // 2
    t = np.arange(note) / rate
    pluck = (np.sin(2 * np.pi * 330 * t) * np.exp(-3 * t)).astype(np.float32)
    notes = np.tile(pluck, 6)[:, None] * 0.3

    def tail_share(samples):
        energy = (samples[:, 0].astype(np.float64) ** 2).reshape(6, note)
        return float(energy[:, note // 2:].sum() / energy.sum())

    original = tail_share(notes)
    assert tail_share(render.articulation(notes, RATE, 1.0)) < original - 0.05
    assert tail_share(render.articulation(notes, RATE, -1.0)) > original + 0.05


def test_the_mode_edit_moves_the_third_and_nothing_else():
    """A C-major triad (C4 E4 G4) becomes C-minor: the energy at E moves to Eb, C and G stay."""
    triad = sine(261.63, 3.0, 0.2) + sine(329.63, 3.0, 0.2) + sine(392.0, 3.0, 0.2)
    minor = render.change_mode(triad, RATE, tonic=0, mode="major", target="minor")
    assert minor.shape == triad.shape
    middle = slice(RATE // 2, -RATE // 2)

    def near(samples, hz):
        return band_db(samples[middle], hz * 0.985, hz * 1.015)

    assert near(minor, 311.13) - near(triad, 311.13) > 20  # Eb appears
    assert near(triad, 329.63) - near(minor, 329.63) > 15  # E is gone
    for kept in (261.63, 392.0):
        assert abs(near(minor, kept) - near(triad, kept)) < 1.5
    back = render.change_mode(minor, RATE, tonic=0, mode="minor", target="major")
    assert near(back, 329.63) - near(back, 311.13) > 15


def test_the_limiter_turns_down_only_the_peaks():
    quiet = sine(440.0, 2.0, 0.2)
    loud = quiet.copy()
    loud[RATE // 2: RATE // 2 + 200] *= 8.0  # a 9 ms burst to 1.6
    limited = render.limit(loud, RATE, 0.99)
    assert np.abs(limited).max() <= 0.99
    far = slice(RATE, 2 * RATE)  # half a second after the burst: untouched
    np.testing.assert_allclose(limited[far], loud[far])
    assert level_db(limited) > level_db(loud / (np.abs(loud).max() / 0.99)) + 3  # not scaled down as a whole
    np.testing.assert_array_equal(render.limit(quiet, RATE, 0.99), quiet)
