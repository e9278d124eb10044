"""The cue meter (estm_core.cues.meter) against signals whose cues are known by construction, and `estm analyze`."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from conftest import tone, write
from estm_core import audio
from estm_core.errors import AudioError
from estm_core.cues import meter
from estm_core.cues.meter import FIELDS, Cues, analyze
from estm_core.cues.emotion import recognise

RATE = 22050
MELODY = [60, 62, 64, 65, 67, 65, 64, 62] * 3  # 24 notes
MAJOR = [(48, 60, 64, 67), (53, 60, 65, 69), (55, 59, 62, 67), (48, 60, 64, 67)]  # I IV V I, bass below
MINOR = [(48, 60, 63, 67), (53, 60, 65, 68), (55, 59, 62, 67), (48, 60, 63, 67)]  # i iv V i (harmonic minor)

pytestmark = pytest.mark.filterwarnings("error")  # a numpy or librosa warning is a failure


def note(midi: float, seconds: float, rate: int = RATE, harmonics: int = 6, sounding: float = 1.0,
         amplitude: float = 0.05) -> np.ndarray:
    """A tone with `harmonics` partials at 1/k, sounding for a fraction `sounding` of `seconds`, with a 5 ms attack and
    a 30 ms raised-cosine release (an abrupt stop would itself sound like an attack)."""
    frames, on = round(seconds * rate), round(sounding * seconds * rate)
    t = np.arange(frames) / rate
    frequency = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum(np.sin(2 * np.pi * frequency * k * t) / k for k in range(1, harmonics + 1) if frequency * k < rate / 2)
    envelope = np.zeros(frames)
    envelope[:on] = 1.0
    attack, release = round(0.005 * rate), round(0.03 * rate)
    envelope[:attack] = np.linspace(0.0, 1.0, attack)
    envelope[on - release:on] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, release))
    return (amplitude * wave * envelope).astype(np.float32)


def chords(sequence, seconds: float = 0.8, shift: int = 0, repeats: int = 2) -> np.ndarray:
    return np.concatenate([sum(note(m + shift, seconds) for m in chord) for chord in sequence * repeats])


def clicks(seconds: float, bpm: float, rate: int = RATE, start: float = 0.25) -> np.ndarray:
    """10 ms decaying 2 kHz blips every beat."""
    samples = np.zeros(round(seconds * rate), np.float32)
    t = np.arange(round(0.01 * rate)) / rate
    blip = 0.5 * np.exp(-t / 0.002) * np.sin(2 * np.pi * 2000 * t)
    for beat in np.arange(start, seconds - 0.02, 60.0 / bpm):
        index = round(beat * rate)
        samples[index:index + len(blip)] += blip
    return samples


# ---------------------------------------------------------------------------------------------- tempo and onsets


@pytest.mark.parametrize("bpm", [120, 90])
def test_a_click_track_gives_its_tempo_and_onset_rate(bpm):
    cues = analyze(clicks(20.0, bpm), RATE)
    assert cues.tempo_bpm == pytest.approx(bpm, abs=2)
    assert cues.onset_rate == pytest.approx(bpm / 60, abs=0.1)
    assert cues.duration_s == pytest.approx(20.0)


def test_steady_sounds_have_no_onsets_but_their_start_and_no_tempo():
    noise = 0.1 * np.random.default_rng(0).standard_normal(10 * RATE).astype(np.float32)
    cues = analyze(noise, RATE)
    assert cues.onset_rate < 0.3 and math.isnan(cues.tempo_bpm)
    assert analyze(tone(5.0, RATE, frequency=110), RATE).onset_rate == pytest.approx(0.2)  # it stops dead: no onset


# ---------------------------------------------------------------------------------------------------- key, mode


@pytest.mark.parametrize("shift, tonic", [(0, "C"), (-3, "A"), (6, "F#")])
@pytest.mark.parametrize("mode, sequence", [("major", MAJOR), ("minor", MINOR)])
def test_chord_progressions_give_their_key_and_mode(shift, tonic, mode, sequence):
    cues = analyze(chords(sequence, shift=shift), RATE)
    assert (cues.tonic, cues.mode) == (tonic, mode)
    assert 0.5 < cues.key_confidence <= 1.0


# ---------------------------------------------------------------------------------------------------- loudness


def test_the_key_profiles_are_music21_s_aarden_essen_weights():
    from music21.analysis.discrete import AardenEssen

    from estm_core.keys import PROFILES

    for mode in ("major", "minor"):
        assert PROFILES[mode] == tuple(AardenEssen().getWeights(mode))


def test_loudness_of_sines_against_bs1770_by_hand():
    """BS.1770's K-weighting gains +0.691 dB at 997 Hz and its offset is -0.691 dB, so a 997 Hz sine of amplitude A in
    one channel reads 10 log10(A^2 / 2) LUFS: -3.01 at full scale (pyloudnorm's filters, from the RBJ cookbook rather
    than the standard's coefficients, read 0.04 LU low). Two channels add their powers: +3.01 LU."""
    rate = 48000
    sine = np.sin(2 * np.pi * 997 * np.arange(5 * rate) / rate).astype(np.float32)
    expected = 10 * math.log10(0.5**2 / 2)  # -9.03
    loud = analyze(0.5 * sine, rate).loudness_lufs
    assert loud == pytest.approx(expected, abs=0.1)
    assert analyze(0.05 * sine, rate).loudness_lufs == pytest.approx(loud - 20.0, abs=0.01)
    stereo = np.stack([0.5 * sine, 0.5 * sine], axis=1)
    assert analyze(stereo, rate).loudness_lufs == pytest.approx(loud + 3.01, abs=0.01)


def test_loudness_streamed_in_blocks_equals_pyloudnorm_on_the_whole_signal(monkeypatch):
    """Gating matters here: level steps of 20 dB, a stretch below the absolute gate, channels that differ."""
    import pyloudnorm

    rate = 44100
    rng = np.random.default_rng(1)
    levels = np.repeat([0.3, 0.03, 0.0003, 0.1, 0.01], 2 * rate)
    stereo = (rng.standard_normal((len(levels), 2)) * levels[:, None] * [1.0, 0.5]).astype(np.float32)
    monkeypatch.setattr(meter, "BLOCK_SECONDS", 2.7)  # blocks that end mid-step and mid-gating-block
    streamed = analyze(stereo, rate).loudness_lufs
    assert streamed == pytest.approx(pyloudnorm.Meter(rate).integrated_loudness(stereo.astype(np.float64)), abs=0.01)


def test_dynamic_range_is_the_spread_of_short_term_loudness():
    noise = np.random.default_rng(2).standard_normal(20 * RATE).astype(np.float32)
    steady = analyze(0.1 * noise, RATE)
    assert steady.dynamic_range_db < 1.0
    stepped = analyze(noise * np.repeat([0.1, 0.01], 10 * RATE).astype(np.float32), RATE)  # 10 s at -20 dB, 10 at -40
    assert stepped.dynamic_range_db == pytest.approx(20.0, abs=1.5)
    assert math.isnan(analyze(0.1 * noise[: 2 * RATE], RATE).dynamic_range_db)  # under 3 s: no short-term window


# ---------------------------------------------------------------------------------------------- timbre, register


def test_more_and_higher_harmonics_are_brighter():
    dull = analyze(note(45, 5.0, harmonics=1), RATE)  # a 110 Hz sine
    bright = analyze(note(45, 5.0, harmonics=40), RATE)
    assert dull.centroid_hz == pytest.approx(110, rel=0.02)
    assert bright.centroid_hz > 4 * dull.centroid_hz
    assert bright.tilt_db_per_octave > dull.tilt_db_per_octave + 3
    white = analyze(0.1 * np.random.default_rng(3).standard_normal(5 * RATE).astype(np.float32), RATE)
    assert white.tilt_db_per_octave == pytest.approx(0.0, abs=0.5)  # flat power density: 0 dB per octave


def test_the_same_chords_an_octave_up_are_twelve_semitones_higher():
    low = analyze(chords(MAJOR), RATE).pitch_centroid_midi
    high = analyze(chords(MAJOR, shift=12), RATE).pitch_centroid_midi
    assert high - low == pytest.approx(12.0, abs=0.5)
    assert 50 < low < 80


# -------------------------------------------------------------------------------------------------- articulation


def test_staccato_decays_faster_than_legato_of_the_same_melody():
    staccato = analyze(np.concatenate([note(m, 0.5, sounding=0.25) for m in MELODY]), RATE)
    legato = analyze(np.concatenate([note(m, 0.5) for m in MELODY]), RATE)
    assert staccato.onset_rate == pytest.approx(2.0, abs=0.15) and legato.onset_rate == pytest.approx(2.0, abs=0.15)
    assert staccato.onset_decay < 0.2 and legato.onset_decay > 0.8
    assert staccato.pitch_centroid_midi == pytest.approx(legato.pitch_centroid_midi, abs=1.0)  # short notes keep pitch


def test_noise_bursts_are_more_percussive_than_a_sustained_tone():
    rng = np.random.default_rng(4)
    bursts = np.zeros(10 * RATE, np.float32)
    burst = np.exp(-np.arange(2000) / 300)
    for start in range(RATE // 4, len(bursts) - 2000, RATE // 2):
        bursts[start:start + 2000] += 0.3 * burst * rng.standard_normal(2000)
    drums, sustained = analyze(bursts, RATE), analyze(note(57, 10.0), RATE)
    assert drums.percussive_ratio > 0.8 and sustained.percussive_ratio < 0.1


# ------------------------------------------------------------------------------------------------ long input, blocks


def test_a_five_minute_file_is_read_in_blocks_and_keeps_its_first_minutes_tempo(tmp_path, monkeypatch):
    rate = 8000
    track = clicks(300.0, 100, rate=rate)
    path = write(tmp_path / "long.flac", track, rate)
    blocks = []
    measure = meter.measure
    monkeypatch.setattr(meter, "measure", lambda name, rate, channels, stream: measure(
        name, rate, channels, (blocks.append(len(block)) or block for block in stream)))
    whole = analyze(path)
    assert len(blocks) >= 5 and max(blocks) <= meter.BLOCK_SECONDS * rate  # never the whole file at once
    first_minute = analyze(track[: 60 * rate], rate)
    assert whole.duration_s == pytest.approx(300.0)
    assert whole.tempo_bpm == pytest.approx(first_minute.tempo_bpm, abs=0.5)
    assert whole.tempo_bpm == pytest.approx(100, abs=2)
    assert whole.onset_rate == pytest.approx(first_minute.onset_rate, abs=0.05)


def test_block_boundaries_do_not_change_the_measures(monkeypatch):
    music = chords(MINOR, repeats=4) + clicks(12.8, 150)
    whole = analyze(music, RATE).to_dict()
    monkeypatch.setattr(meter, "BLOCK_SECONDS", 2.3)
    blocked = analyze(music, RATE).to_dict()
    for field in ("duration_s", "tempo_bpm", "onset_rate", "loudness_lufs", "dynamic_range_db", "centroid_hz",
                  "tilt_db_per_octave", "onset_decay"):
        assert blocked[field] == pytest.approx(whole[field], rel=1e-3, abs=1e-3), field  # a seamless STFT
    assert blocked["percussive_ratio"] == pytest.approx(whole["percussive_ratio"], abs=0.03)  # medians restart
    assert blocked["pitch_centroid_midi"] == pytest.approx(whole["pitch_centroid_midi"], abs=0.3)  # CQT restarts
    assert (blocked["tonic"], blocked["mode"]) == (whole["tonic"], whole["mode"]) == ("C", "minor")


# ---------------------------------------------------------------------------------------------------- bad input


def test_files_of_any_format_rate_and_channels(tmp_path):
    stereo = np.stack([clicks(6.0, 120, rate=44100)] * 2, axis=1)
    for name, rate in (("a.wav", 44100), ("b.mp3", 44100), ("c.ogg", 44100)):
        cues = analyze(audio.save(tmp_path / name, stereo, rate))
        assert cues.onset_rate == pytest.approx(2.0, abs=0.2) and cues.duration_s == pytest.approx(6.0, abs=0.1)
        assert set(cues.to_dict()) == set(FIELDS)


def test_silent_short_and_broken_input_raise_one_line_errors(tmp_path, bad_files):
    silent = write(tmp_path / "silent.wav", np.zeros(3 * RATE, np.float32), RATE)
    with pytest.raises(AudioError, match="silent.wav: silent") as error:
        analyze(silent)
    assert error.value.kind == "silent"
    with pytest.raises(AudioError, match="too short") as error:
        analyze(write(tmp_path / "blip.wav", tone(0.5, RATE), RATE))
    assert error.value.kind == "too_short"
    for kind in ("empty", "not_audio", "truncated", "corrupt", "nonfinite"):
        with pytest.raises(AudioError) as error:
            analyze(bad_files[kind])
        assert str(error.value).startswith(str(bad_files[kind])) and "\n" not in str(error.value)


def test_quiet_and_barely_long_enough_input_gives_nan_not_warnings():
    quiet = analyze(1e-4 * np.random.default_rng(5).standard_normal(5 * RATE).astype(np.float32), RATE)  # -80 dBFS
    assert math.isnan(quiet.loudness_lufs) and math.isnan(quiet.dynamic_range_db)  # below BS.1770's -70 LUFS gate
    short = analyze(note(60, 1.2), RATE)
    assert math.isnan(short.tempo_bpm) and math.isnan(short.dynamic_range_db) and short.tonic is not None
    assert all(isinstance(value, (float, str)) for value in short.to_dict().values())


# ---------------------------------------------------------------------------------------------------- the command


@pytest.fixture
def two_songs(tmp_path):
    return (write(tmp_path / "major.flac", chords(MAJOR), RATE),
            write(tmp_path / "clicks.wav", np.stack([clicks(6.0, 120, rate=44100)] * 2, axis=1), 44100))


def test_analyze_command_table_with_a_bad_file_exits_3(estm, two_songs, bad_files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short names, so that no table cell folds
    result = estm("analyze", "major.flac", "clicks.wav", "bad/cut.mp3")
    assert result.code == 3
    rows = [line for line in result.out.splitlines() if "major.flac" in line or "clicks.wav" in line]
    assert len(rows) == 2 and "C major" in rows[0] and "2.00" in rows[1] and "cut.mp3" not in result.out
    failures = [line for line in result.err.splitlines() if "cut.mp3" in line]
    assert len(failures) == 1 and "truncated" in failures[0] and "Traceback" not in result.err


def test_analyze_command_json_and_csv(estm, two_songs, bad_files):
    result = estm("analyze", *two_songs, "--json", "-q")
    assert result.code == 0
    records = [json.loads(line) for line in result.out.splitlines()]  # nothing but JSON on stdout
    assert [record["path"] for record in records] == [str(path) for path in two_songs]
    heard = ("arousal", "valence", "quadrant")  # the cue recogniser's reading of the cues
    assert set(records[0]) == {"path", *FIELDS, *heard} and (records[0]["tonic"], records[0]["mode"]) == ("C", "major")
    assert records[1]["tempo_bpm"] == pytest.approx(120, abs=2)
    for record in records:
        emotion = recognise(replace(Cues(**{name: record[name] for name in FIELDS}), spectra=None))
        assert (record["arousal"], record["valence"], record["quadrant"]) == \
            (pytest.approx(emotion.arousal, abs=1e-3), pytest.approx(emotion.valence, abs=1e-3), emotion.quadrant)

    with_bad = estm("analyze", *two_songs, bad_files["not_audio"], "--json")
    assert with_bad.code == 3
    good = [json.loads(line) for line in with_bad.out.splitlines() if "error" not in json.loads(line)]
    assert len(good) == 2 and "notes.wav" in with_bad.err

    table = estm("analyze", *two_songs, "--csv")
    lines = table.out.splitlines()
    assert table.code == 0 and len(lines) == 3
    assert lines[0].split(",") == ["path", *FIELDS, *heard, "error"]
    assert estm("analyze", bad_files["not_audio"]).code == 1  # nothing analysed
    assert estm("analyze", two_songs[0], "--json", "--csv").code == 1


def test_analyze_command_folders_and_stdin(estm, two_songs, tmp_path):
    by_folder = estm("analyze", tmp_path, "--json")
    assert {json.loads(line)["path"] for line in by_folder.out.splitlines()} == {str(path) for path in two_songs}
    piped = estm("analyze", "-", "--csv", stdin=f"{two_songs[1]}\n")
    assert piped.code == 0 and piped.out.splitlines()[1].startswith(str(two_songs[1]))


def test_analysing_and_recognising_never_import_scikit_learn():
    # the recogniser predicts from its stored weights in numpy: scikit-learn is for fitting (its import costs time
    # in every `estm analyze` and `estm transfer`)
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from estm_core.cues.meter import analyze\n"
            "from estm_core.cues.emotion import recognise\n"
            "t = np.arange(3 * 22050) / 22050\n"
            "recognise(analyze((0.1 * np.sin(2 * np.pi * 440 * t) * (t % 0.5 < 0.25)).astype(np.float32), 22050))\n"
            "assert 'sklearn' not in sys.modules, 'analysing imported scikit-learn'\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_analyze_files_returns_each_file_s_cues_or_error_in_order_with_one_job_or_two(tmp_path, bad_files):
    song = tmp_path / "song.wav"
    write(song, chords(MAJOR), RATE)
    paths = [song, bad_files["empty"], song, bad_files["not_audio"]]
    alone = list(meter.analyze_files(paths, jobs=1))
    assert [path for path, _ in alone] == [str(path) for path in paths]
    assert [type(result) for _, result in alone] == [Cues, AudioError, Cues, AudioError]
    together = list(meter.analyze_files(paths, jobs=2))
    assert [path for path, _ in together] == [str(path) for path in paths]
    measured = [json.dumps(result.to_dict()) for _, result in (alone[0], together[0], together[2])]
    assert measured == [measured[0]] * 3
    assert [str(result) for _, result in together[1::2]] == [str(result) for _, result in alone[1::2]]

