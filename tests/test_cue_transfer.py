"""Cue-space transfer plans: the moves follow the two measurements, within limits, for the asked cues only."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from estm_core.cues.meter import Cues
from estm_core.methods.cues import method, plan
from estm_core.cues.emotion import Recogniser
from estm_core.errors import EstmError

CONTENT = Cues(duration_s=10.0, tempo_bpm=80.0, onset_rate=2.0, loudness_lufs=-24.0, dynamic_range_db=6.0,
               centroid_hz=600.0, tilt_db_per_octave=-8.0, percussive_ratio=0.2, onset_decay=0.9,
               pitch_centroid_midi=60.0, tonic="D", mode="minor", key_confidence=0.8)
TARGET = replace(CONTENT, onset_rate=3.0, loudness_lufs=-14.0, dynamic_range_db=3.0, tilt_db_per_octave=-5.0,
                 onset_decay=0.5, pitch_centroid_midi=72.0, tonic="A", mode="major")


def test_the_moves_take_each_cue_to_the_targets():
    moves = plan.plan(CONTENT, TARGET)
    assert moves.tempo_ratio == pytest.approx(1.5)
    assert moves.semitones == 12 and moves.gain_db == pytest.approx(10.0)  # a whole octave: the key stays
    assert moves.dynamics_ratio == pytest.approx(2.0) and moves.tilt_db_per_octave == pytest.approx(3.0)
    assert moves.articulation == pytest.approx(plan.ARTICULATION_PER_DECAY * 0.4)
    assert moves.key == (2, "minor") and moves.mode == "major"  # in the content's own key


def test_strength_scales_the_moves_and_zero_or_the_same_cues_move_nothing():
    assert plan.plan(CONTENT, TARGET, strength=0.0) == plan.Moves()
    assert plan.plan(CONTENT, CONTENT) == plan.Moves()
    half = plan.plan(CONTENT, TARGET, strength=0.5)
    assert half.tempo_ratio == pytest.approx(math.sqrt(1.5)) and half.gain_db == pytest.approx(5.0)
    assert half.semitones == 0  # half an octave rounds to none


def test_only_the_asked_cues_move_and_limits_hold():
    moves = plan.plan(CONTENT, TARGET, cues=("tempo", "mode"))
    assert moves == plan.Moves(tempo_ratio=pytest.approx(1.5), key=(2, "minor"), mode="major")
    extreme = replace(TARGET, onset_rate=40.0, loudness_lufs=30.0, pitch_centroid_midi=100.0)
    moves = plan.plan(CONTENT, extreme)
    assert moves.tempo_ratio == 4.0 and moves.gain_db == 20.0 and moves.semitones == 12
    with pytest.raises(ValueError, match="unknown cue"):
        plan.plan(CONTENT, TARGET, cues=("timbre",))


def test_an_unsure_key_or_a_missing_measurement_does_not_move():
    unsure = replace(CONTENT, key_confidence=0.3)
    assert plan.plan(unsure, TARGET).mode is None
    silent_rhythm = replace(CONTENT, onset_rate=float("nan"), tempo_bpm=float("nan"))
    assert plan.plan(silent_rhythm, TARGET).tempo_ratio == 1.0


def test_music_with_too_few_onsets_to_read_a_tempo_keeps_its_tempo():
    legato = replace(CONTENT, onset_rate=0.1, tempo_bpm=60.0)  # about what steady noise reads: not a tempo
    assert plan.plan(legato, replace(TARGET, tempo_bpm=90.0)).tempo_ratio == 1.0  # nor is the beat estimate
    assert plan.plan(CONTENT, replace(TARGET, onset_rate=0.4)).tempo_ratio == 1.0
    assert plan.plan(CONTENT, replace(TARGET, tempo_bpm=160.0)).tempo_ratio == pytest.approx(1.5)  # onsets


def fitted_recogniser(seed: int = 0) -> Recogniser:
    """A recogniser fitted on made-up cues where high arousal is fast, loud and detached, and valence is the mode."""
    rng = np.random.default_rng(seed)
    cues, labels = [], []
    for quadrant in ("Q1", "Q2", "Q3", "Q4"):
        high, positive = quadrant in ("Q1", "Q2"), quadrant in ("Q1", "Q4")
        for _ in range(12):
            cues.append(replace(CONTENT, onset_rate=(4.0 if high else 1.3) * rng.uniform(0.8, 1.25),
                                loudness_lufs=(-15.0 if high else -22.0) + rng.normal(0, 2),
                                onset_decay=(0.4 if high else 0.8) + rng.normal(0, 0.05),
                                mode="major" if positive else "minor", pitch_centroid_midi=60 + rng.normal(0, 3)))
            labels.append(quadrant)
    return Recogniser.fit(cues, labels, "made-up cues")


RECOGNISER = fitted_recogniser()
SAD = replace(CONTENT, onset_rate=1.2, loudness_lufs=-22.0, onset_decay=0.85, mode="minor")  # heard as Q3


def test_the_recogniser_hears_the_axes_and_survives_its_file():
    assert RECOGNISER.recognise(SAD).quadrant == "Q3"
    happy = replace(SAD, onset_rate=4.5, loudness_lufs=-14.0, onset_decay=0.4, mode="major")
    assert RECOGNISER.recognise(happy).quadrant == "Q1"
    assert RECOGNISER.recognise(replace(SAD, loudness_lufs=-16.0)).arousal > RECOGNISER.recognise(SAD).arousal
    again = Recogniser.from_json(RECOGNISER.to_json(), "test")
    assert again.recognise(happy) == RECOGNISER.recognise(happy) and again.typical == RECOGNISER.typical
    assert sum(RECOGNISER.recognise(happy).probabilities.values()) == pytest.approx(1.0)
    with pytest.raises(EstmError, match="bad.json: not a usable recogniser file"):
        Recogniser.from_json('{"format": 1, "axes": {}}', "bad.json")


def plan_for(content, **ask):
    return plan.emotion_plan(content, recogniser=RECOGNISER, **ask)


def test_a_quadrant_moves_every_cue_from_the_contents_own_value_the_asked_way_within_the_range():
    happy = plan_for(SAD, quadrant="Q1")
    assert happy.content.quadrant == "Q3" and happy.steps["arousal"] > 0.8 and happy.steps["valence"] > 0.8
    moves = happy.moves
    assert moves.tempo_ratio == pytest.approx(4 / 3) and moves.semitones == 0 and moves.gain_db > 5  # not transposed
    assert 0 < moves.tilt_db_per_octave <= 1.0 and moves.articulation > 0 and moves.mode == "major"
    assert set(happy.reasons) >= {"tempo", "loudness", "brightness", "articulation", "mode"}
    wide = plan_for(SAD, quadrant="Q1", range_="wide").moves
    assert wide.tempo_ratio > 1.6 and wide.semitones == 12 and wide.tilt_db_per_octave > 2.0
    assert "register" in plan_for(SAD, quadrant="Q1", range_="wide").reasons
    calm = plan_for(SAD, quadrant="Q4", range_="wide").moves  # a valence step only: the mode and the register
    assert calm.mode == "major" and calm.tempo_ratio == 1.0 and calm.gain_db == 0.0 and calm.semitones == 12


def test_loudness_moves_by_a_step_never_against_the_asked_arousal():
    quiet = replace(SAD, loudness_lufs=-30.0)  # a soft classical recording asked for sadness: softer, not louder
    assert plan_for(quiet, quadrant="Q3").moves.gain_db <= 0.0
    assert plan_for(replace(quiet, onset_rate=4.0, onset_decay=0.4), quadrant="Q3").moves.gain_db < 0.0
    loud = replace(SAD, loudness_lufs=-7.0)  # a loud master asked for joy: no quieter (nor louder past -9 LUFS)
    assert plan_for(loud, quadrant="Q1").moves.gain_db == 0.0
    assert plan_for(replace(SAD, loudness_lufs=-12.0), quadrant="Q1").moves.gain_db == pytest.approx(3.0)


def test_the_contents_own_emotion_asks_nothing():
    assert plan_for(SAD, reference=SAD).moves == plan.Moves()
    sadder = replace(SAD, onset_rate=1.0, loudness_lufs=-26.0)  # already past the typical sad music: not pulled back
    assert plan_for(sadder, quadrant="Q3").moves == plan.Moves()
    assert plan_for(SAD, quadrant="Q1", strength=0.0).moves == plan.Moves()


def test_a_reference_moves_the_content_by_the_emotions_difference_as_a_quadrant_does():
    happy = replace(SAD, onset_rate=4.5, loudness_lufs=-14.0, onset_decay=0.4, mode="major", pitch_centroid_midi=40.0)
    by_file = plan_for(SAD, reference=happy, range_="wide")
    assert by_file.target.quadrant == "Q1"
    assert by_file.moves.semitones > 0  # the emotion's direction, though the reference's register is lower
    by_quadrant = plan_for(SAD, quadrant="Q1", range_="wide").moves
    for name in ("tempo_ratio", "gain_db", "semitones", "tilt_db_per_octave", "articulation"):
        assert np.sign(getattr(by_file.moves, name) - getattr(plan.Moves(), name)) == \
            np.sign(getattr(by_quadrant, name) - getattr(plan.Moves(), name)), name
    half, quarter = (plan_for(SAD, reference=happy, strength=strength) for strength in (0.5, 0.25))
    assert 0 < quarter.steps["arousal"] == pytest.approx(half.steps["arousal"] / 2)
    matched = plan_for(SAD, reference=happy, match="cues", range_="wide")
    assert matched.moves == plan.plan(SAD, happy, range_="wide") and matched.moves.semitones < 0
    with pytest.raises(ValueError, match="range"):
        plan_for(SAD, quadrant="Q1", range_="huge")


def test_a_quadrant_moves_the_tempo_of_music_too_legato_to_read_one():
    legato = replace(SAD, onset_rate=0.1)  # no tempo to compare with a reference's, but a step is still a step
    assert plan.plan(legato, replace(legato, onset_rate=2.0)).tempo_ratio == 1.0
    assert plan_for(legato, quadrant="Q1").moves.tempo_ratio == pytest.approx(4 / 3)
    fully_legato = replace(SAD, onset_decay=1.0, onset_rate=4.0, loudness_lufs=-14.0)  # asked Q3: no more legato
    assert plan_for(fully_legato, quadrant="Q3").moves.articulation == 0.0


def test_applying_no_moves_returns_the_input_and_a_tempo_move_changes_the_length():
    samples = np.random.default_rng(0).standard_normal((22050 * 3, 2)).astype(np.float32) * 0.1
    np.testing.assert_array_equal(method.apply(samples, 22050, plan.Moves()), samples)
    faster = method.apply(samples, 22050, plan.Moves(tempo_ratio=1.5, gain_db=40.0))
    assert faster.shape == (round(22050 * 3 / 1.5), 2)
    assert np.abs(faster).max() <= plan.PEAK + 1e-6  # loud, but never clipped
    eight = np.random.default_rng(1).standard_normal((96000, 8)).astype(np.float32) * 0.1  # more than BS.1770's 5
    assert method.apply(eight, 96000, plan.Moves(semitones=3)).shape == (96000, 8)


def notes(rate: int, seconds: float, per_second: float, frequency: float, amplitude: float) -> np.ndarray:
    """Plucked notes at `per_second`, alternating `frequency` and a fifth above, as a (frames, 2) stereo clip."""
    t = np.arange(round(seconds * rate)) / rate
    onsets = np.arange(0, seconds, 1 / per_second)
    signal = np.zeros_like(t)
    for number, onset in enumerate(onsets):
        since = t - onset
        pitch = frequency * (1.5 if number % 2 else 1.0)
        signal += (since >= 0) * np.sin(2 * np.pi * pitch * since) * np.exp(-6 * np.clip(since, 0, None))
    clip = (amplitude * signal / np.abs(signal).max()).astype(np.float32)
    return np.stack([clip, 0.8 * clip], axis=1)


def test_the_command_moves_the_content_toward_the_emotion_file(estm, tmp_path):
    import json

    import soundfile as sf

    sf.write(tmp_path / "content.wav", notes(22050, 8.0, 2.0, 220.0, 0.1), 22050)
    sf.write(tmp_path / "emotion.flac", notes(44100, 6.0, 3.0, 440.0, 0.6), 44100)
    out = tmp_path / "out.wav"
    result = estm("transfer", tmp_path / "content.wav", tmp_path / "emotion.flac", "-o", out, "--json", "-q",
                  "--match", "cues", "--range", "wide")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    measured = report["cues"]
    info = sf.info(out)
    assert info.channels == 2 and info.samplerate == 22050  # the content's own format
    assert info.duration == pytest.approx(8.0 / report["moves"]["tempo_ratio"], abs=0.01)
    assert report["moves"]["tempo_ratio"] == pytest.approx(measured["emotion"]["onset_rate"] /
                                                           measured["content"]["onset_rate"])  # notes per second
    for cue in ("loudness_lufs", "pitch_centroid_midi"):
        before = abs(measured["content"][cue] - measured["emotion"][cue])
        after = abs(measured["output"][cue] - measured["emotion"][cue])
        assert after < 0.5 * before, (cue, measured)
    again = estm("transfer", tmp_path / "content.wav", tmp_path / "emotion.flac", "-o", out)
    assert again.code == 1 and "already exists" in again.err
    bad = estm("transfer", tmp_path / "missing.wav", tmp_path / "emotion.flac", "-o", tmp_path / "x.wav")
    assert bad.code == 1 and "missing.wav" in bad.err and len(bad.err.strip().splitlines()) == 1
    only_tempo = estm("transfer", tmp_path / "content.wav", tmp_path / "emotion.flac", "-o", tmp_path / "t.wav",
                      "--method", "cues", "--cues", "tempo", "--json", "-q")
    moves = json.loads(only_tempo.out)["moves"]
    assert moves["tempo_ratio"] > 1.2 and moves["gain_db"] == 0 and moves["semitones"] == 0
    by_emotion = json.loads(estm("transfer", tmp_path / "content.wav", tmp_path / "emotion.flac", "-o",
                                 tmp_path / "e.wav", "--json", "-q").out)
    assert {"content_emotion", "target_emotion", "steps", "reasons"} <= set(by_emotion)
    assert np.sign(by_emotion["moves"]["gain_db"]) == np.sign(by_emotion["steps"]["arousal"])
    for quadrant, slower in (("q3", True), ("Q1", False)):
        asked = estm("transfer", tmp_path / "content.wav", "--emotion", quadrant, "-o", tmp_path / f"{quadrant}.wav",
                     "--json", "-q")
        assert asked.code == 0, asked.err
        report = json.loads(asked.out)
        moves, cues = report["moves"], report["cues"]
        assert (moves["tempo_ratio"] <= 1) if slower else (moves["tempo_ratio"] >= 1)
        change = cues["output"]["loudness_lufs"] - cues["content"]["loudness_lufs"]  # a step from its own level
        assert change == pytest.approx(moves["gain_db"], abs=0.5) and (change <= 0.5 if slower else change >= -0.5)
    for wrong in (("--emotion", "Q3"), ("--strength", "0.5", "--model", "any"),  # a file and a quadrant; model
                  ("--method", "nope"), ("--method", "cues", "--model", "any"), ("--range", "huge"),
                  ("--range", "wide", "--model", "any")):
        refused = estm("transfer", tmp_path / "content.wav", tmp_path / "emotion.flac", *wrong, "-o",
                       tmp_path / "no.wav")
        assert refused.code == 1 and len(refused.err.strip().splitlines()) == 1, refused.err
        assert not (tmp_path / "no.wav").exists()


def test_a_move_of_another_cue_leaves_the_loudness_and_a_loudness_move_reaches_it():
    from estm_core.loudness import integrated_loudness

    clip = notes(22050, 6.0, 3.0, 440.0, 0.3)
    before = integrated_loudness(clip, 22050)
    lower = method.apply(clip, 22050, plan.Moves(semitones=-7, tilt_db_per_octave=-3.0))
    assert integrated_loudness(lower, 22050) == pytest.approx(before, abs=0.5)  # duller and lower, as loud
    louder = method.apply(clip, 22050, plan.Moves(semitones=-7, gain_db=6.0))
    assert integrated_loudness(louder, 22050) == pytest.approx(before + 6.0, abs=0.7)


def harmonic_tone(rate: int, seconds: float, midi: float) -> np.ndarray:
    """A steady tone of 12 harmonics falling 6 dB an octave, over faint noise, as (frames, 1)."""
    t = np.arange(round(seconds * rate)) / rate
    hz = 440.0 * 2 ** ((midi - 69) / 12)
    tone = sum(np.sin(2 * np.pi * k * hz * t) / k for k in range(1, 13) if k * hz < rate / 2)
    noise = 0.002 * np.random.default_rng(0).standard_normal(len(t))
    return (0.2 * (tone + noise))[:, None].astype(np.float32)


@pytest.mark.parametrize("semitones, setting", [(0, 2.0), (12, 0.0), (-12, 0.0), (12, -2.0)])
def test_the_spectra_predict_what_an_octave_and_a_tilt_do_to_the_meter(semitones, setting):
    from estm_core.cues.meter import analyze
    from estm_core.methods.cues.stretch import stretch
    from estm_core.methods.cues.tilt import Tilt, tilt

    rate = 44100
    samples = harmonic_tone(rate, 6.0, 57)
    before = analyze(samples, rate)
    assert before.spectra.changes(0) == (0.0, 0.0)
    gain = Tilt(rate, 1, setting).power_gain if setting else None
    tilt_change, register_change = before.spectra.changes(semitones, gain)
    after = analyze(tilt(stretch(samples, rate, semitones=semitones), rate, setting), rate)
    # within 15 %: the stretcher's start and end splash every frequency, which the long-term spectra do not foresee
    assert after.tilt_db_per_octave - before.tilt_db_per_octave == pytest.approx(tilt_change, rel=0.15, abs=0.5)
    assert after.pitch_centroid_midi - before.pitch_centroid_midi == pytest.approx(register_change, abs=1.5)
    if semitones:
        assert abs(tilt_change) > 0.5  # an octave moves the tilt: what plan has to allow for


def spectra_of(low_hz: float, pitches: dict[int, float]):
    """Spectra of music whose partials start at `low_hz` and fall 6 dB an octave, with the pitched power
    `pitches` (MIDI: power) at 44.1 kHz."""
    from estm_core.cues import spectral

    hz = np.linspace(0, 22050, 2049)
    pitch_power = np.zeros(spectral.CQT_BINS)
    for midi, power in pitches.items():
        pitch_power[midi - spectral.CQT_LOWEST_MIDI] = power
    return spectral.Spectra(np.where(hz >= low_hz, 1.0 / np.maximum(hz, 1.0) ** 2, 0.0), 44100, pitch_power)


def test_an_octave_down_that_would_darken_a_brighter_ask_gets_a_brighter_eq():
    from estm_core.methods.cues.tilt import Tilt

    spectra = spectra_of(110.0, {55: 1.0, 67: 0.5})
    content = replace(CONTENT, pitch_centroid_midi=60.0, tilt_db_per_octave=-6.0, spectra=spectra)
    target = replace(content, pitch_centroid_midi=46.0, tilt_db_per_octave=-5.5)  # lower, a little brighter

    def change(setting):
        return spectra.changes(-12, Tilt(44100, 1, setting).power_gain)

    assert change(0.5)[0] < plan.TILT_MARGIN  # the asked EQ alone: the octave darkens more than it brightens
    moves = plan.plan(content, target, cues=("register", "brightness"))
    assert moves.semitones == -12 and moves.tilt_db_per_octave > 0.5
    assert change(moves.tilt_db_per_octave)[0] >= plan.TILT_MARGIN
    assert change(moves.tilt_db_per_octave - 0.05)[0] < plan.TILT_MARGIN  # the nearest that does it
    assert change(moves.tilt_db_per_octave)[1] <= -plan.REGISTER_MARGIN
    # where the asked EQ already moves the tilt the asked way, or without the spectra, the EQ is the ask
    assert plan.plan(content, replace(target, tilt_db_per_octave=-10.0), cues=("register", "brightness")
                     ).tilt_db_per_octave == pytest.approx(-4.0)
    assert plan.plan(replace(content, spectra=None), target, cues=("register", "brightness")
                     ).tilt_db_per_octave == pytest.approx(0.5)


def test_a_bright_eq_that_would_undo_the_octave_is_held_back():
    from estm_core.methods.cues.tilt import Tilt

    # equal power in a low and a high cluster of pitches: a bright EQ pulls the pitch centroid far up
    spectra = spectra_of(50.0, {40: 1.0, 100: 1.0})
    content = replace(CONTENT, pitch_centroid_midi=70.0, tilt_db_per_octave=-6.0, spectra=spectra)
    target = replace(content, pitch_centroid_midi=58.0, tilt_db_per_octave=-2.0)
    setting = plan.plan(content, target, cues=("register", "brightness")).tilt_db_per_octave
    assert spectra.changes(-12, Tilt(44100, 1, 4.0).power_gain)[1] > 0  # +4 would undo the octave
    assert 0 < setting < 4.0
    assert spectra.changes(-12, Tilt(44100, 1, setting).power_gain)[1] <= -plan.REGISTER_MARGIN
